//! charrnn against min-char-rnn's NumPy float64 reference, `scripts/min_char_rnn.py` (a copy of `../shared/ref/min_char_rnn.py`),
//! started from the same weights on the same text. The golden run under
//! `tests/golden/min_char_rnn/` (made once by the reference; its README says how)
//! needs nothing but this repository. The live comparisons skip with a printed
//! reason when the reference or numpy is missing (`.ci/run` installs numpy so CI
//! runs them).
//!
//! Training is chaotic: runs that differ only in rounding drift apart, and how fast
//! depends on the text and the initial weights. From the reference's own seed-0
//! weights on tinyshakespeare its two float64 forms (naive and fast) stay within
//! ~1e-8 for 50 iterations, so there charrnn must match to 1e-4 as the spec asks.
//! On the built-in corpus even naive and fast part by more than 1e-4 within 50
//! iterations, so there charrnn must be exact at first and afterwards track the
//! naive form as closely as the fast form does.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn reference() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/min_char_rnn.py");
    if !script.exists() {
        eprintln!(
            "skipping the reference comparison: {} not found",
            script.display()
        );
        return None;
    }
    match Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
    {
        Ok(out) if out.status.success() => Some(script),
        _ => {
            eprintln!(
                "skipping the reference comparison: python3 with numpy is not available (pip install numpy)"
            );
            None
        }
    }
}

fn python(dir: &Path, script: &Path, args: &[&str]) {
    let out = Command::new("python3")
        .current_dir(dir)
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "reference failed: {}", stderr(&out));
}

fn train(dir: &Path, data: &Path, args: &[&str]) {
    let out = charrnn(dir)
        .args(["train", "--data"])
        .arg(data)
        .args(["--sample-every", "0", "--force"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// (loss, smooth_loss) per iteration, summed over a chunk as min-char-rnn logs them.
fn losses(path: &Path) -> Vec<(f64, f64)> {
    csv_rows(path)
        .iter()
        .map(|r| (r[1].parse().unwrap(), r[2].parse().unwrap()))
        .collect()
}

/// charrnn's history holds nats per character: times seq_length (25) for min-char-rnn's sums.
fn our_losses(path: &Path) -> Vec<(f64, f64)> {
    losses(path)
        .into_iter()
        .map(|(l, s)| (l * 25.0, s * 25.0))
        .collect()
}

/// Relative difference of the per-iteration losses.
fn rel(a: &[(f64, f64)], b: &[(f64, f64)]) -> Vec<f64> {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.0 - y.0).abs() / x.0.abs())
        .collect()
}

fn max(v: &[f64]) -> f64 {
    v.iter().cloned().fold(0.0, f64::max)
}

/// The reference's first 50 losses from its own seed-0 weights on a small text,
/// saved under `tests/golden/min_char_rnn/`. There the reference's two float64
/// forms stay within 1.2e-9 of each other and charrnn within 2.2e-9 of the naive
/// form (measured when the file was made), so 1e-7 leaves room for rounding while
/// a wrong step (data pointer, clipping, Adagrad's epsilon, the smooth loss) is
/// off by 1e-3 or more within a few iterations.
#[test]
fn matches_the_golden_min_char_rnn_run_without_python() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/min_char_rnn");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = golden.join("init.npz");
    for threads in ["1", "2"] {
        let csv = format!("ours{threads}.csv");
        let init = init.to_str().unwrap();
        let args = [
            "--init-npz",
            init,
            "--iters",
            "50",
            "--log-every",
            "1",
            "--loss-csv",
            &csv,
        ];
        train(
            d,
            &golden.join("text.txt"),
            &[&args[..], &["--threads", threads]].concat(),
        );
        let (ours, theirs) = (
            our_losses(&d.join(&csv)),
            losses(&golden.join("losses.csv")),
        );
        let diff = rel(&theirs, &ours);
        let smooth = rel(
            &theirs.iter().map(|r| (r.1, 0.0)).collect::<Vec<_>>(),
            &ours.iter().map(|r| (r.1, 0.0)).collect::<Vec<_>>(),
        );
        eprintln!(
            "golden run, {threads} thread(s): max relative loss difference {:.3e}, smooth loss {:.3e}",
            max(&diff),
            max(&smooth)
        );
        assert_eq!(diff.len(), 50);
        assert!(
            max(&diff) <= 1e-7,
            "{threads} thread(s), per-iteration losses: {diff:?}"
        );
        assert!(
            max(&smooth) <= 1e-7,
            "{threads} thread(s), smooth losses: {smooth:?}"
        );
    }
}

#[test]
fn matches_min_char_rnn_from_its_own_initial_weights_on_tinyshakespeare() {
    let Some(script) = reference() else { return };
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/tinyshakespeare.txt");
    if !data.exists() {
        eprintln!("skipping: {} not found", data.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = data.to_str().unwrap();
    python(
        d,
        &script,
        &[
            "--data",
            data,
            "--seed",
            "0",
            "--iters",
            "0",
            "--save-npz",
            "init.npz",
        ],
    );
    python(
        d,
        &script,
        &[
            "--data",
            data,
            "--init-npz",
            "init.npz",
            "--iters",
            "50",
            "--log",
            "ref.csv",
            "--save-npz",
            "ref.npz",
        ],
    );
    train(
        d,
        Path::new(data),
        &[
            "--init-npz",
            "init.npz",
            "--iters",
            "50",
            "--log-every",
            "1",
            "--loss-csv",
            "ours.csv",
        ],
    );

    let (ours, theirs) = (our_losses(&d.join("ours.csv")), losses(&d.join("ref.csv")));
    let diff = rel(&theirs, &ours);
    let smooth = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a.1 - b.1).abs() / b.1)
        .fold(0.0, f64::max);
    eprintln!(
        "tinyshakespeare, reference seed-0 weights: max relative loss difference over 50 iterations {:.3e} (smooth loss {smooth:.3e})",
        max(&diff)
    );
    assert_eq!(diff.len(), 50);
    assert!(max(&diff) <= 1e-4, "per-iteration losses: {diff:?}");

    // and the weights after 50 iterations agree with the reference's
    let out = charrnn(d)
        .args(["export", "--out", "ours.npz"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let open =
        |p: &str| ndarray_npy::NpzReader::new(std::fs::File::open(d.join(p)).unwrap()).unwrap();
    let (mut a, mut b) = (open("ours.npz"), open("ref.npz"));
    for name in ["Wxh", "Whh", "Why", "bh", "by"] {
        let x: ndarray::Array2<f64> = a.by_name(name).unwrap();
        let y: ndarray::Array2<f64> = b.by_name(name).unwrap();
        let worst = (&x - &y).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(worst < 1e-6, "{name}: max |ours - reference| = {worst}");
    }
}

#[test]
fn tracks_min_char_rnn_as_closely_as_its_own_fast_form_on_the_built_in_corpus() {
    let Some(script) = reference() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = write(d, "builtin.txt", charrnn::io::data::BUILTIN_TEXT);
    // start from charrnn's own initial weights, exported for NumPy
    train(
        d,
        &data,
        &[
            "--iters",
            "0",
            "--rng-seed",
            "3",
            "--log-every",
            "0",
            "--checkpoint",
            "init.ckpt",
        ],
    );
    let out = charrnn(d)
        .args(["export", "--checkpoint", "init.ckpt", "--out", "init.npz"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for form in ["naive", "fast"] {
        let log = format!("{form}.csv");
        python(
            d,
            &script,
            &[
                "--data",
                "builtin.txt",
                "--init-npz",
                "init.npz",
                "--iters",
                "50",
                "--impl",
                form,
                "--log",
                &log,
            ],
        );
    }
    train(
        d,
        &data,
        &[
            "--init-npz",
            "init.npz",
            "--iters",
            "50",
            "--log-every",
            "1",
            "--loss-csv",
            "ours.csv",
        ],
    );

    let naive = losses(&d.join("naive.csv"));
    let ours = rel(&naive, &our_losses(&d.join("ours.csv")));
    let fast = rel(&naive, &losses(&d.join("fast.csv")));
    eprintln!(
        "built-in corpus: max relative loss difference to naive over 50 iterations: charrnn {:.3e}, reference fast form {:.3e}",
        max(&ours),
        max(&fast)
    );
    // the same algorithm: data walk, loss, clipping and Adagrad agree to rounding at first
    assert!(max(&ours[..5]) < 1e-9, "first iterations: {:?}", &ours[..5]);
    // after that, no further from the naive form than the fast form is (with a
    // margin for the chaos that turns equal rounding into unequal drift)
    for t in 0..ours.len() {
        let bound = (10.0 * max(&fast[..=t])).max(1e-4);
        assert!(
            max(&ours[..=t]) <= bound,
            "iteration {}: charrnn {:?} vs fast {:?}",
            t + 1,
            &ours[..=t],
            &fast[..=t]
        );
    }
}

/// Beyond the first iterations only statistics can agree: after 5,000 iterations
/// on tinyshakespeare the reference's smooth loss lies in about 55-61 across seeds
/// (measured: 55.7, 56.7, 60.4 for seeds 0-2), and so must charrnn's. It takes
/// minutes, so it runs only when asked: `cargo test -- --ignored` (`.ci/run` does).
#[test]
#[ignore = "minutes of training; cargo test -- --ignored"]
fn smooth_loss_after_5000_iterations_is_in_the_reference_range() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/tinyshakespeare.txt");
    if !data.exists() {
        eprintln!("skipping: {} not found", data.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for seed in ["1", "2", "3"] {
        let ckpt = format!("{seed}.ckpt");
        train(
            dir.path(),
            &data,
            &[
                "--iters",
                "5000",
                "--rng-seed",
                seed,
                "--checkpoint",
                &ckpt,
                "--log-every",
                "0",
            ],
        );
        let smooth = load_f64(&dir.path().join(&ckpt)).smooth_loss;
        eprintln!("seed {seed}: smooth loss after 5000 iterations {smooth:.3}");
        assert!(
            (54.0..=62.0).contains(&smooth),
            "seed {seed}: smooth loss {smooth}"
        );
    }
}
