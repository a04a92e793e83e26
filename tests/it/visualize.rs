//! `charrnn visualize`: the page's data checked against the model, and the page
//! itself driven in headless Chromium (tests/browser/visualize.mjs).

use std::path::Path;
use std::process::Command;

use crate::common::{browser_scripts, charrnn, stderr, write};

/// Text with quotes, brackets and short lines, so every feature varies.
fn text() -> String {
    let mut t = String::new();
    for i in 0..200 {
        t += &format!("say \"hello {i}\" (to [the] {{world}})\nand then go on.\n");
    }
    t
}

fn page_data(html: &str) -> serde_json::Value {
    let open = "<script type=\"application/json\" id=\"data\">";
    let start = html.find(open).unwrap() + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end].replace("<\\/", "</")).unwrap()
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

fn train_and_visualize(dir: &Path) -> String {
    write(dir, "in.txt", text());
    charrnn(dir)
        .args([
            "train",
            "--data",
            "in.txt",
            "--iters",
            "300",
            "--hidden-size",
            "24",
            "--cell",
            "lstm",
            "--layers",
            "2",
        ])
        .assert()
        .success();
    let out = charrnn(dir)
        .args([
            "visualize",
            "--data",
            "in.txt",
            "--chars",
            "500",
            "-o",
            "n.html",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("wrote n.html (500 characters, 24 units of layer 2)"),
        "{}",
        stderr(&out)
    );
    std::fs::read_to_string(dir.join("n.html")).unwrap()
}

#[test]
fn page_is_self_contained_and_its_numbers_match_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let html = train_and_visualize(dir.path());
    for external in ["http://", "https://", "<link", "<script src", "<img"] {
        assert!(
            !html.contains(external),
            "page refers to something outside it: {external}"
        );
    }
    let d = page_data(&html);
    let chars: Vec<char> = d["chars"].as_str().unwrap().chars().collect();
    assert_eq!(chars, text().chars().take(500).collect::<Vec<_>>());
    let acts = d["acts"].as_array().unwrap();
    assert_eq!(acts.len(), 24);
    let acts: Vec<Vec<f64>> = acts
        .iter()
        .map(|u| {
            u.as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_f64().unwrap() / 1000.0)
                .collect()
        })
        .collect();
    assert!(
        acts.iter()
            .all(|u| u.len() == 500 && u.iter().all(|a| a.abs() <= 1.0))
    );
    assert!(
        acts.iter().any(|u| u.iter().any(|a| a.abs() > 0.05)),
        "activations are not all zero"
    );

    // top-5 predictions: distinct ids, likeliest first, a probability distribution's head
    for t in d["top"].as_array().unwrap() {
        let t = t.as_array().unwrap();
        assert_eq!(t.len(), 5);
        let p: Vec<u64> = t.iter().map(|e| e[1].as_u64().unwrap()).collect();
        assert!(
            p.windows(2).all(|w| w[0] >= w[1]) && p.iter().sum::<u64>() <= 1003,
            "{p:?}"
        );
    }

    // the listed units really are the most correlated with each feature
    let inside_brackets: Vec<f64> = chars
        .iter()
        .scan(0i32, |depth, &c| {
            *depth += match c {
                '(' | '[' | '{' => 1,
                ')' | ']' | '}' => -1,
                _ => 0,
            };
            Some(f64::from(u8::from(*depth > 0)))
        })
        .collect();
    let features = d["features"].as_array().unwrap();
    let names: Vec<&str> = features
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["quotes", "brackets", "line starts", "line position"]
    );
    let listed = features[1]["units"].as_array().unwrap();
    let (unit, r) = (
        listed[0][0].as_u64().unwrap() as usize,
        listed[0][1].as_f64().unwrap(),
    );
    assert!(
        (pearson(&acts[unit], &inside_brackets) - r).abs() < 0.02,
        "unit {unit}: r {r}"
    );
    let best = (0..24)
        .map(|u| pearson(&acts[u], &inside_brackets).abs())
        .fold(0.0, f64::max);
    assert!((best - r.abs()).abs() < 0.02, "best |r| {best}, listed {r}");
}

#[test]
fn lstm_cell_states_can_be_shown_instead() {
    let dir = tempfile::tempdir().unwrap();
    let h = page_data(&train_and_visualize(dir.path()));
    let out = charrnn(dir.path())
        .args([
            "visualize",
            "--data",
            "in.txt",
            "--chars",
            "500",
            "--state",
            "c",
            "--layer",
            "1",
            "-o",
            "c.html",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("500 characters, 24 cell states of layer 1"),
        "{}",
        stderr(&out)
    );
    let c = page_data(&std::fs::read_to_string(dir.path().join("c.html")).unwrap());
    assert!(c["model"].as_str().unwrap().contains("tanh(cell state)"));
    assert_eq!(c["acts"].as_array().unwrap().len(), 24);
    assert_ne!(c["acts"], h["acts"]);
    // the predictions do not depend on what is coloured
    assert_eq!(c["top"], h["top"]);
}

#[test]
fn bad_layer_and_unknown_text_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in.txt", "abcabcabc abc abc\n".repeat(20));
    charrnn(dir.path())
        .args([
            "train",
            "--data",
            "in.txt",
            "--iters",
            "5",
            "--hidden-size",
            "8",
        ])
        .assert()
        .success();
    let out = charrnn(dir.path())
        .args(["visualize", "--data", "in.txt", "--layer", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--layer 2 does not exist: the model has 1 layer(s)"),
        "{}",
        stderr(&out)
    );
    let out = charrnn(dir.path())
        .args(["visualize", "--data", "in.txt", "--state", "c"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--state c needs an LSTM; this model's rnn cell has only h"),
        "{}",
        stderr(&out)
    );
    write(dir.path(), "greek.txt", "αβγδ");
    let out = charrnn(dir.path())
        .args(["visualize", "--data", "greek.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("none of the first characters"),
        "{}",
        stderr(&out)
    );
    let out = charrnn(dir.path())
        .args(["visualize", "--data", "in.txt", "--checkpoint", "nope.ckpt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nope.ckpt"), "{}", stderr(&out));
}

#[test]
fn page_works_in_headless_chromium() {
    let Some(scripts) = browser_scripts() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    train_and_visualize(dir.path());
    let shot = dir.path().join("shot.png");
    let out = Command::new("node")
        .arg(scripts.join("visualize.mjs"))
        .arg(dir.path().join("n.html"))
        .arg(&shot)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r["errors"],
        serde_json::json!([]),
        "console errors: {}",
        r["errors"]
    );
    assert_eq!(r["options"], 24);
    assert_ne!(r["before"]["unit"], r["after"]["unit"]);
    let (before, after) = (
        r["before"]["colours"].as_array().unwrap(),
        r["after"]["colours"].as_array().unwrap(),
    );
    assert_eq!(before.len(), 300);
    let changed = before.iter().zip(after).filter(|(a, b)| a != b).count();
    assert!(
        changed > 100,
        "choosing another unit recoloured only {changed} of 300 characters"
    );
    assert_eq!(r["clicked"]["selected"], r["clicked"]["unit"]);
    assert_eq!(r["clicked"]["on"], true);
    assert_eq!(r["tip"]["visible"], true);
    assert_eq!(r["tip"]["rows"], 5);
    assert!(r["tip"]["text"].as_str().unwrap().contains('%'));

    // the screenshot is a real picture: many colours, not one flat fill
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (1200, 900));
    let bpp = info.line_size / info.width as usize;
    let mut colours: Vec<&[u8]> = pixels[..info.buffer_size()].chunks(bpp).collect();
    colours.sort();
    colours.dedup();
    assert!(
        colours.len() > 50,
        "screenshot has only {} colours",
        colours.len()
    );
}
