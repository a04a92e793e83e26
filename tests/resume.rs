//! Training N iterations straight and training N/2, then resuming for N/2 more,
//! give bit-identical weights, optimizer state, hidden state, RNG states, loss
//! history rows and printed samples.

mod common;

use std::path::Path;

use charrnn::linalg::Real;
use charrnn::train::TrainState;
use common::*;

const FLAGS: &[&str] = &["--data", "t.txt", "--rng-seed", "5", "--log-every", "1", "--checkpoint-every", "100"];

fn train(dir: &Path, ckpt: &str, csv: &str, iters: u64, extra: &[&str]) -> String {
    let out = charrnn(dir)
        .args(["train", "--checkpoint", ckpt, "--loss-csv", csv, "--iters", &iters.to_string()])
        .args(FLAGS)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// The deterministic columns: iteration, loss, smooth_loss (not speed or time).
fn loss_rows(path: &Path) -> Vec<Vec<String>> {
    csv_rows(path).into_iter().map(|r| r[..3].to_vec()).collect()
}

fn same_run<T: Real>(a: &TrainState<T>, b: &TrainState<T>) {
    // bit-for-bit (f32 -> f64 is exact, so comparing the f64 bits is exact too)
    let bits = |s: &TrainState<T>| s.model.params.iter().map(|x| x.as_f64().to_bits()).collect::<Vec<_>>();
    assert!(bits(a) == bits(b), "weights differ");
    let (mut a, mut b) = (a.clone(), b.clone());
    a.elapsed_s = 0.0;
    b.elapsed_s = 0.0;
    assert_eq!(a, b);
}

fn straight_vs_resumed(precision: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    let p = ["--precision", precision];

    let straight = train(d, "a.ckpt", "a.csv", 600, &p);
    let first = train(d, "b.ckpt", "b.csv", 300, &p);
    let second = train(d, "b.ckpt", "b.csv", 600, &["--resume"]);

    assert_eq!(loss_rows(&d.join("a.csv")).len(), 600);
    assert_eq!(loss_rows(&d.join("a.csv")), loss_rows(&d.join("b.csv")));
    // the samples printed along the way are the same too (the sample RNG is restored)
    assert_eq!(straight, format!("{first}{second}"));
    if precision == "f64" {
        same_run(&load_f64(&d.join("a.ckpt")), &load_f64(&d.join("b.ckpt")));
    } else {
        same_run(&load_f32(&d.join("a.ckpt")), &load_f32(&d.join("b.ckpt")));
    }
}

#[test]
fn resume_is_bit_exact_in_f64() {
    straight_vs_resumed("f64");
}

#[test]
fn resume_is_bit_exact_in_f32() {
    straight_vs_resumed("f32");
}

/// A run killed after it logged rows past its last checkpoint: resuming drops
/// those rows and logs them again, so the history ends up as if never killed.
#[test]
fn resume_after_rows_logged_past_the_checkpoint_leaves_no_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    train(d, "a.ckpt", "a.csv", 400, &[]);

    train(d, "b.ckpt", "b.csv", 200, &[]);
    std::fs::copy(d.join("b.ckpt"), d.join("b-at-200.ckpt")).unwrap();
    train(d, "b.ckpt", "b.csv", 300, &["--resume"]);
    // the process "died" at 300 with only the iteration-200 checkpoint on disk,
    // and the history's last line half written
    std::fs::copy(d.join("b-at-200.ckpt"), d.join("b.ckpt")).unwrap();
    let mut csv = std::fs::read_to_string(d.join("b.csv")).unwrap();
    csv.push_str("301,12.5");
    std::fs::write(d.join("b.csv"), csv).unwrap();

    let out = charrnn(d)
        .args(["train", "--checkpoint", "b.ckpt", "--loss-csv", "b.csv", "--iters", "400", "--resume"])
        .args(FLAGS)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("dropped 101 row(s) of b.csv logged after iteration 200"), "{}", stderr(&out));
    assert_eq!(loss_rows(&d.join("a.csv")), loss_rows(&d.join("b.csv")));
    same_run(&load_f64(&d.join("a.ckpt")), &load_f64(&d.join("b.ckpt")));
}
