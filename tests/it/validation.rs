//! Held-out validation during training, `charrnn eval`, and `--keep-best`.

use crate::common::*;

fn lstm_run(dir: &std::path::Path, extra: &[&str]) {
    let out = charrnn(dir)
        .args([
            "train",
            "--data",
            "t.txt",
            "--cell",
            "lstm",
            "--hidden-size",
            "24",
            "--embedding-size",
            "8",
        ])
        .args([
            "--batch-size",
            "4",
            "--seq-length",
            "20",
            "--optimizer",
            "adam",
            "--val-fraction",
            "0.1",
        ])
        .args([
            "--eval-every",
            "40",
            "--iters",
            "200",
            "--log-every",
            "50",
            "--sample-every",
            "0",
            "--rng-seed",
            "3",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn validation_loss_is_logged_and_matches_eval_on_the_held_out_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    lstm_run(d, &["--keep-best"]);

    // rows every 50 iterations, plus one wherever validation ran (every 40)
    let rows = csv_rows(&d.join("loss_history.csv"));
    let iters: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(iters, ["40", "50", "80", "100", "120", "150", "160", "200"]);
    let val: Vec<Option<f64>> = rows.iter().map(|r| r[5].parse().ok()).collect();
    for (i, v) in iters.iter().zip(&val) {
        let evaluated = i.parse::<u64>().unwrap() % 40 == 0;
        assert_eq!(v.is_some(), evaluated, "row {i}");
    }
    let vals: Vec<f64> = val.iter().flatten().copied().collect();
    assert!(
        vals.last().unwrap() < &vals[0],
        "validation loss fell: {vals:?}"
    );
    assert!(
        vals.iter().all(|v| (0.5..5.0).contains(v)),
        "nats per character: {vals:?}"
    );

    // `charrnn eval` on the held-out tenth computes the same number
    let text: Vec<char> = small_text().chars().collect();
    let held_out: String = text[(0.9 * text.len() as f64).floor() as usize..]
        .iter()
        .collect();
    write(d, "val.txt", &held_out);
    let out = charrnn(d)
        .args(["eval", "--data", "val.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    let field = |name: &str| -> f64 {
        let line = report
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {report}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let nats = field("loss");
    assert!(
        (nats - vals.last().unwrap()).abs() < 1e-6,
        "eval {nats} vs logged {:?}",
        vals.last()
    );
    assert!((field("bits/char") - nats / std::f64::consts::LN_2).abs() < 1e-5);
    assert!((field("perplexity") - nats.exp()).abs() < 1e-3);

    // --keep-best kept the checkpoint of the lowest validation loss
    let best = load_f32(&d.join("charrnn.best.ckpt"));
    let min = vals.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(best.best_val, Some(min));
    assert!(best.iteration.is_multiple_of(40) && best.iteration <= 200);
    assert_eq!(load_f32(&d.join("charrnn.ckpt")).best_val, Some(min));
}

#[test]
fn eval_counts_and_reports_characters_outside_the_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    let out = charrnn(d)
        .args([
            "train",
            "--data",
            "t.txt",
            "--iters",
            "20",
            "--hidden-size",
            "16",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    write(
        d,
        "odd.txt",
        "The river ran here.\nZwölf Boxkämpfer jagen Viktor quer über den Sylter Deich.\n",
    );
    let out = charrnn(d)
        .args(["eval", "--data", "odd.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // ö, ä, ü are not in the built-in English corpus (Z, j, q, x may be; count what is absent)
    let vocab = charrnn::io::data::Vocab::from_text(small_text());
    let text = std::fs::read_to_string(d.join("odd.txt")).unwrap();
    let unknown = text.chars().filter(|&c| vocab.id(c).is_none()).count();
    assert!(unknown >= 3);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{unknown} of {} characters", text.chars().count())),
        "{err}"
    );
    assert!(
        err.contains("not in the model's vocabulary and were skipped"),
        "{err}"
    );
    assert!(stdout(&out).contains(&format!(
        "({} characters predicted)",
        text.chars().count() - unknown - 1
    )));

    write(d, "none.txt", "öööö");
    let out = charrnn(d)
        .args(["eval", "--data", "none.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("too few known characters"),
        "{}",
        stderr(&out)
    );
}

/// The summary line counts the training clock (what --max-time limits, and what
/// the checkpoint records) and the validation passes apart.
#[test]
fn the_summary_times_training_and_validation_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    let out = charrnn(d)
        .args(["train", "--data", "t.txt", "--iters", "200"])
        .args([
            "--val-fraction",
            "0.2",
            "--eval-every",
            "1",
            "--sample-every",
            "0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err.lines().find(|l| l.starts_with("stopped at")).unwrap();
    let seconds_before = |key: &str| -> f64 {
        let end = line
            .find(key)
            .unwrap_or_else(|| panic!("no {key:?}: {line}"));
        let start = line[..end].rfind(' ').unwrap() + 1;
        line[start..end].parse().unwrap()
    };
    let (training, validating) = (
        seconds_before("s of training"),
        seconds_before("s validating"),
    );
    let recorded = load_f64(&d.join("charrnn.ckpt")).elapsed_s;
    assert!(
        (training - recorded).abs() <= 0.051,
        "{recorded} s recorded: {line}"
    );
    // 200 passes over the held-out fifth
    assert!(validating > 0.0, "{line}");
}
