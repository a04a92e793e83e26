//! scripts/quality.sh, the README's five-minute recipe: its last line is the
//! final and the best validation loss, read off the run's own output.

mod common;

use common::*;

#[test]
fn quality_script_ends_with_the_final_and_best_validation_loss() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // enough for the recipe's 64 streams of 100 characters after holding out 10%
    write(d, "t.txt", small_text().repeat(10));
    let out =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/quality.sh"))
            .arg(d.join("t.txt"))
            .arg("3")
            .env("BIN", env!("CARGO_BIN_EXE_charrnn"))
            .env("OUT", d.join("run"))
            .env("EVAL_EVERY", "1")
            .output()
            .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let so = stdout(&out);
    let last: Vec<&str> = so.lines().last().unwrap().split(' ').collect();
    assert_eq!(
        (last.len(), last[0], last[2]),
        (4, "val_loss", "best"),
        "{so}"
    );
    let (fin, best): (f64, f64) = (last[1].parse().unwrap(), last[3].parse().unwrap());

    // the same numbers as the training log: its final validation and the least
    // of all, periodic ones included
    let log = std::fs::read_to_string(d.join("run/train.log")).unwrap();
    let final_line = log
        .lines()
        .find(|l| l.starts_with("validation loss at iteration"))
        .unwrap();
    let logged = |l: &str, key: &str| -> f64 {
        let v = &l[l.find(key).unwrap() + key.len()..];
        v.split(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(fin, logged(final_line, ": "), "{log}");
    let periodic: Vec<f64> = log
        .lines()
        .filter(|l| l.starts_with("iter ") && l.contains(": validation loss "))
        .map(|l| logged(l, "validation loss "))
        .collect();
    assert!(!periodic.is_empty(), "EVAL_EVERY=1 evaluates: {log}");
    let least = periodic.iter().fold(fin, |a, &b| a.min(b));
    assert!((best - least).abs() < 1e-9, "{best} vs {least}: {log}");
    assert!(d.join("run/charrnn.ckpt").exists());
}
