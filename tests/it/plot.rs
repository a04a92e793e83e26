//! `charrnn plot`: images that decode at the requested size, SVG that parses,
//! the terminal chart, and malformed histories reported by line.

use crate::common::{charrnn, stderr, stdout, write};

/// A short run with validation, so the history has all three curves.
fn history(dir: &std::path::Path) -> std::path::PathBuf {
    write(dir, "in.txt", crate::common::small_text());
    charrnn(dir)
        .args([
            "train",
            "--data",
            "in.txt",
            "--iters",
            "400",
            "--log-every",
            "20",
            "--val-fraction",
            "0.2",
        ])
        .args(["--eval-every", "100", "--hidden-size", "16"])
        .assert()
        .success();
    dir.join("loss_history.csv")
}

#[test]
fn png_decodes_at_the_requested_size_and_is_not_blank() {
    let dir = tempfile::tempdir().unwrap();
    history(dir.path());
    let out = charrnn(dir.path())
        .args([
            "plot",
            "loss_history.csv",
            "-o",
            "loss.png",
            "--width",
            "640",
            "--height",
            "400",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("wrote loss.png (640x400, 20 rows)"),
        "{}",
        stderr(&out)
    );

    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(dir.path().join("loss.png")).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (640, 400));
    // the three curve colours are drawn somewhere on the white background
    let rgb: Vec<[u8; 3]> = pixels[..info.buffer_size()]
        .chunks(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    for colour in [[20, 70, 170], [210, 80, 30], [150, 180, 225]] {
        let n = rgb.iter().filter(|&&p| p == colour).count();
        assert!(n > 50, "colour {colour:?} drawn on {n} pixels");
    }
    // and text: dark pixels that are not curve colours (labels, axes)
    assert!(rgb.iter().filter(|p| p.iter().all(|&c| c < 60)).count() > 500);
}

#[test]
fn svg_parses_and_labels_axes_and_curves() {
    let dir = tempfile::tempdir().unwrap();
    history(dir.path());
    charrnn(dir.path())
        .args([
            "plot", "-o", "loss.svg", "--width", "800", "--height", "500",
        ])
        .assert()
        .success();
    let text = std::fs::read_to_string(dir.path().join("loss.svg")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        (root.attribute("width"), root.attribute("height")),
        (Some("800"), Some("500"))
    );
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect();
    for label in [
        "iteration",
        "loss (nats/char)",
        "bits/char",
        "smooth loss",
        "validation loss",
    ] {
        assert!(
            texts.iter().any(|t| t == label),
            "no {label:?} in {texts:?}"
        );
    }
    assert!(
        doc.descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .count()
            >= 3
    );
}

#[test]
fn terminal_chart_and_an_incomplete_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = history(dir.path());
    let mut text = std::fs::read_to_string(&path).unwrap();
    text += "420,2.5,2."; // a row being written
    std::fs::write(&path, text).unwrap();
    let out = charrnn(dir.path())
        .args(["plot", "--terminal", "--width", "50", "--height", "12"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let chart = stdout(&out);
    assert_eq!(chart.lines().count(), 12 + 3, "{chart}");
    assert!(chart.contains('*') && chart.contains('o'), "{chart}");
    assert!(chart.contains("at iteration 400"), "{chart}");
    assert!(
        stderr(&out).contains("last line is incomplete"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn malformed_and_missing_fields_are_reported_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let header = charrnn::train::history::HEADER;
    write(
        dir.path(),
        "bad.csv",
        format!("{header}\n100,2.0,2.1,5,1,\n200,2.0,oops,5,1,\n"),
    );
    let out = charrnn(dir.path())
        .args(["plot", "bad.csv", "-o", "x.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("bad.csv, line 3"), "{err}");
    assert!(!dir.path().join("x.png").exists());

    write(
        dir.path(),
        "short.csv",
        format!("{header}\n100,2.0,2.1,5,1,\n200,2.0\n"),
    );
    let out = charrnn(dir.path())
        .args(["plot", "short.csv", "--terminal"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("short.csv, line 3"),
        "{}",
        stderr(&out)
    );

    write(dir.path(), "other.csv", "a,b\n1,2\n");
    let out = charrnn(dir.path())
        .args(["plot", "other.csv", "--terminal"])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("is this a charrnn loss history?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    history(dir.path());
    let out = charrnn(dir.path())
        .args(["plot", "-o", "loss.jpg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("use a .png or .svg file name"),
        "{}",
        stderr(&out)
    );
    let out = charrnn(dir.path()).args(["plot"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "needs -o or --terminal");
    let out = charrnn(dir.path())
        .args(["plot", "missing.csv", "--terminal"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.csv"), "{}", stderr(&out));
}
