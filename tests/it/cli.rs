//! A user's path through the CLI: train -> sample -> info -> resume -> export,
//! plus Ctrl+C, --max-time, reproducibility and refusing to overwrite a run.

use std::time::{Duration, Instant};

use crate::common::*;
use charrnn::io::data::Vocab;

#[test]
fn train_sample_info_resume_on_a_temp_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());

    let out = charrnn(d)
        .args([
            "train",
            "--data",
            "t.txt",
            "--iters",
            "200",
            "--rng-seed",
            "1",
            "--hidden-size",
            "32",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let so = stdout(&out);
    assert!(so.contains("\niter 100, loss "), "{so}");
    assert!(so.contains("\niter 200, loss "), "{so}");
    assert!(stderr(&out).contains("stopped at iteration 200 (reached --iters 200)"));
    let rows = csv_rows(&d.join("loss_history.csv"));
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["100", "200"]
    );
    assert!(
        std::fs::read_to_string(d.join("loss_history.csv"))
            .unwrap()
            .starts_with("iteration,loss,smooth_loss,chars_per_sec,elapsed_s,val_loss\n")
    );

    // sample: starts with the seed, then exactly -n characters of the vocabulary
    let vocab = Vocab::from_text(small_text());
    let sample = |seed: &str| {
        let out = charrnn(d)
            .args(["sample", "--seed", "The ", "-n", "300", "--rng-seed", seed])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let (a, b, c) = (sample("3"), sample("3"), sample("4"));
    assert!(a.starts_with("The "), "{a:?}");
    let body = a.strip_prefix("The ").unwrap().strip_suffix('\n').unwrap();
    assert_eq!(body.chars().count(), 300);
    assert!(body.chars().all(|ch| vocab.id(ch).is_some()));
    assert_eq!(a, b, "same --rng-seed, same text");
    assert_ne!(a, c);

    // without --seed: one random vocabulary character, then -n more
    let out = charrnn(d).args(["sample", "-n", "20"]).output().unwrap();
    // (the text may itself end in a newline drawn: only the last one is the end's)
    let text = stdout(&out);
    assert_eq!(
        text.strip_suffix('\n').unwrap().chars().count(),
        21,
        "{text:?}"
    );

    let out = charrnn(d).arg("info").output().unwrap();
    let info = stdout(&out);
    assert!(info.contains("iteration      200"), "{info}");
    assert!(
        info.contains("vanilla RNN (tanh), 1 layer(s) of 32, one-hot input"),
        "{info}"
    );
    let v = vocab.len();
    assert!(
        info.contains(&format!("parameters     {}", 32 * (32 + 2 * v + 1) + v)),
        "{info}"
    );
    let chars: String = vocab.chars().iter().collect();
    assert!(
        info.contains(&format!("vocabulary     {chars:?}")),
        "{info}"
    );

    let out = charrnn(d)
        .args(["train", "--data", "t.txt", "--resume", "--iters", "300"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\niter 300, loss "));
    assert!(stderr(&out).contains("resuming at iteration 200"));
    let rows = csv_rows(&d.join("loss_history.csv"));
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["100", "200", "300"]
    );
    assert_eq!(load_f64(&d.join("charrnn.ckpt")).iteration, 300);
}

#[test]
fn train_without_data_uses_the_built_in_corpus_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = charrnn(dir.path())
        .args(["train", "--iters", "3", "--sample-every", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("training on <built-in corpus>"),
        "{}",
        stderr(&out)
    );
    let s = load_f64(&dir.path().join("charrnn.ckpt"));
    assert_eq!(s.text.bytes as usize, charrnn::io::data::BUILTIN_TEXT.len());
    assert_eq!(
        *s.config(),
        charrnn::model::Config::min_char_rnn(s.vocab.len(), 100)
    );
    assert_eq!(s.hyper.batch_size, 1);
    assert_eq!(s.hyper.seq_length, 25);
    assert_eq!(s.rate.base, 0.1);
    assert_eq!(s.hyper.clip, charrnn::train::Clip::Value(5.0));
    assert_eq!(s.hyper.optimizer, charrnn::optim::Kind::Adagrad);
}

#[test]
fn same_rng_seed_gives_bit_identical_weights_and_another_seed_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    for (ckpt, seed) in [("a.ckpt", "9"), ("b.ckpt", "9"), ("c.ckpt", "10")] {
        let out = charrnn(d)
            .args([
                "train",
                "--data",
                "t.txt",
                "--iters",
                "120",
                "--rng-seed",
                seed,
                "--checkpoint",
                ckpt,
            ])
            .args(["--log-every", "0", "--hidden-size", "24"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let (a, b, c) = (
        load_f64(&d.join("a.ckpt")),
        load_f64(&d.join("b.ckpt")),
        load_f64(&d.join("c.ckpt")),
    );
    assert_eq!(a.model.params, b.model.params);
    assert_eq!(a.optim, b.optim);
    assert_ne!(a.model.params, c.model.params);
}

#[test]
fn a_new_run_refuses_to_overwrite_an_earlier_one_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |extra: &[&str]| {
        charrnn(d)
            .args(["train", "--iters", "2", "--sample-every", "0"])
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(run(&[]).status.success());
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("charrnn.ckpt and loss_history.csv already exist"),
        "{err}"
    );
    assert!(err.contains("--resume") && err.contains("--force"), "{err}");
    assert!(run(&["--force"]).status.success());
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_cleanly_then_resume_continues() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_charrnn"))
        .current_dir(d)
        .args([
            "train",
            "--sample-every",
            "0",
            "--log-every",
            "10",
            "--rng-seed",
            "2",
            "--hidden-size",
            "16",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // wait until training is under way (the loss history has rows)
    let started = Instant::now();
    while csv_rows_if_any(&d.join("loss_history.csv")) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "training never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("Ctrl+C: saving a checkpoint"), "{err}");
    assert!(err.contains("(interrupted)"), "{err}");
    let saved = load_f64(&d.join("charrnn.ckpt"));
    assert!(saved.iteration >= 20);
    // every row logged before the interrupt is at or before the saved iteration
    let last_row: u64 = csv_rows(&d.join("loss_history.csv")).last().unwrap()[0]
        .parse()
        .unwrap();
    assert!(last_row <= saved.iteration);

    let target = (saved.iteration + 15).to_string();
    let out = charrnn(d)
        .args([
            "train",
            "--resume",
            "--iters",
            &target,
            "--sample-every",
            "0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        load_f64(&d.join("charrnn.ckpt")).iteration,
        saved.iteration + 15
    );
}

fn csv_rows_if_any(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

#[test]
fn max_time_stops_training_and_saves() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = charrnn(dir.path())
        .args(["train", "--max-time", "1s", "--sample-every", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        stderr(&out).contains("(reached --max-time)"),
        "{}",
        stderr(&out)
    );
    assert!(load_f64(&dir.path().join("charrnn.ckpt")).iteration > 0);
}

#[test]
fn iters_zero_writes_initial_weights_that_export_as_min_char_rnn_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    let out = charrnn(d)
        .args([
            "train",
            "--data",
            "t.txt",
            "--iters",
            "0",
            "--rng-seed",
            "4",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let s = load_f64(&d.join("charrnn.ckpt"));
    assert_eq!(s.iteration, 0);
    // min-char-rnn's init: matrices ~ N(0, 0.01^2), biases zero
    let whh = s.model.tensor("Whh").unwrap().1;
    let std = (whh.iter().map(|x| x * x).sum::<f64>() / whh.len() as f64).sqrt();
    assert!((std - 0.01).abs() < 0.001, "Whh std {std}");
    assert!(
        s.model
            .tensor("bh")
            .unwrap()
            .1
            .iter()
            .chain(s.model.tensor("by").unwrap().1)
            .all(|&b| b == 0.0)
    );

    let out = charrnn(d)
        .args(["export", "--out", "w.npz"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut npz =
        ndarray_npy::NpzReader::new(std::fs::File::open(d.join("w.npz")).unwrap()).unwrap();
    let v = s.vocab.len();
    for (name, shape) in [
        ("Wxh", [100, v]),
        ("Whh", [100, 100]),
        ("Why", [v, 100]),
        ("bh", [100, 1]),
        ("by", [v, 1]),
    ] {
        let a: ndarray::Array2<f64> = npz.by_name(name).unwrap();
        assert_eq!(a.shape(), shape, "{name}");
    }
    let exported: ndarray::Array2<f64> = npz.by_name("Whh").unwrap();
    assert_eq!(
        exported.as_slice().unwrap(),
        whh,
        "exported values are the checkpoint's, exactly"
    );

    // and a new run can start from them
    let out = charrnn(d)
        .args([
            "train",
            "--data",
            "t.txt",
            "--init-npz",
            "w.npz",
            "--iters",
            "1",
            "--checkpoint",
            "b.ckpt",
        ])
        .args(["--log-every", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn f32_precision_trains_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = charrnn(d)
        .args([
            "train",
            "--precision",
            "f32",
            "--iters",
            "50",
            "--sample-every",
            "0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let s = load_f32(&d.join("charrnn.ckpt"));
    assert_eq!(s.iteration, 50);
    assert!(stdout(&charrnn(d).arg("info").output().unwrap()).contains("f32"));
    let out = charrnn(d)
        .args(["sample", "-n", "10", "--seed", "a"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn argmax_and_top_k_sampling_from_every_cell() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    for cell in ["rnn", "lstm", "gru"] {
        let ckpt = format!("{cell}.ckpt");
        let out = charrnn(d)
            .args([
                "train",
                "--data",
                "t.txt",
                "--cell",
                cell,
                "--hidden-size",
                "16",
                "--layers",
                "2",
            ])
            .args([
                "--iters",
                "30",
                "--sample-every",
                "0",
                "--log-every",
                "0",
                "--checkpoint",
                &ckpt,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{cell}: {}", stderr(&out));
        let sample = |args: &[&str]| {
            let out = charrnn(d)
                .args([
                    "sample",
                    "--checkpoint",
                    &ckpt,
                    "--seed",
                    "The ",
                    "-n",
                    "80",
                ])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{cell}: {}", stderr(&out));
            stdout(&out)
        };
        // greedy decoding ignores the random seed; top-k 1 is greedy too
        let greedy = sample(&["--argmax", "--rng-seed", "1"]);
        assert_eq!(greedy, sample(&["--argmax", "--rng-seed", "2"]), "{cell}");
        assert_eq!(
            greedy,
            sample(&["--top-k", "1", "--rng-seed", "3"]),
            "{cell}"
        );
        assert!(
            greedy.starts_with("The ") && greedy.strip_suffix('\n').unwrap().chars().count() == 84
        );
        assert_ne!(
            sample(&["--rng-seed", "1"]),
            sample(&["--rng-seed", "2"]),
            "{cell}: sampling draws"
        );
    }
    let out = charrnn(d)
        .args([
            "sample",
            "--checkpoint",
            "rnn.ckpt",
            "--argmax",
            "--temperature",
            "0.5",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "--argmax with --temperature is a usage error"
    );
}

/// The AVX2+FMA builds of the hot loops (picked at run time) and the baseline
/// builds (`CHARRNN_NO_SIMD=1`) compute the same training to rounding: fused
/// multiply-adds round once where separate ones round twice.
#[test]
fn simd_and_baseline_builds_train_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    // 30 chaotic iterations amplify a first-iteration difference of ~1e-16 (f64) or ~1e-7 (f32)
    for (cell, precision, tolerance) in [
        ("rnn", "f64", 1e-6),
        ("lstm", "f32", 1e-3),
        ("gru", "f32", 1e-3),
    ] {
        let mut smooth = Vec::new();
        for no_simd in [false, true] {
            let ckpt = format!("{cell}-{no_simd}.ckpt");
            let mut cmd = charrnn(d);
            if no_simd {
                cmd.env("CHARRNN_NO_SIMD", "1");
            } else {
                cmd.env_remove("CHARRNN_NO_SIMD");
            }
            let out = cmd
                .args([
                    "train",
                    "--data",
                    "t.txt",
                    "--cell",
                    cell,
                    "--precision",
                    precision,
                    "--hidden-size",
                    "40",
                ])
                .args([
                    "--batch-size",
                    "2",
                    "--iters",
                    "30",
                    "--rng-seed",
                    "1",
                    "--sample-every",
                    "0",
                    "--log-every",
                    "0",
                ])
                .args(["--checkpoint", &ckpt])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            let path = d.join(&ckpt);
            smooth.push(if precision == "f64" {
                load_f64(&path).smooth_loss
            } else {
                load_f32(&path).smooth_loss
            });
        }
        let rel = (smooth[0] - smooth[1]).abs() / smooth[1];
        assert!(
            rel < tolerance,
            "{cell}: smooth loss {} vs {} ({rel:e})",
            smooth[0],
            smooth[1]
        );
    }
}

/// `-n 0` writes the seed and nothing more, and without a seed nothing at all
/// (not the random first character a sample otherwise starts from).
#[test]
fn sample_of_zero_characters_is_the_seed_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = charrnn(d)
        .args(["train", "--iters", "5", "--sample-every", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sample = |args: &[&str]| {
        let out = charrnn(d).arg("sample").args(args).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(sample(&["--seed", "The ", "-n", "0"]), "The \n");
    assert_eq!(sample(&["-n", "0"]), "");
    assert_eq!(sample(&["-n", "0", "--argmax"]), "");
    // one character is the seed plus one
    assert_eq!(
        sample(&["--seed", "The ", "-n", "1", "--rng-seed", "1"])
            .chars()
            .count(),
        6
    );
}

/// The unigram entropy of `text` in bits per character, computed here
/// independently of the library.
fn entropy_bits(text: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in text.chars() {
        *counts.entry(c).or_insert(0u64) += 1;
    }
    let n = text.chars().count() as f64;
    counts
        .values()
        .map(|&c| c as f64 / n)
        .map(|p| -p * p.log2())
        .sum()
}

/// "model A bits/char; character frequencies alone B; xz -9e C" -> (A, B, C).
fn compared(line: &str) -> (f64, f64, f64) {
    let number = |key: &str| -> f64 {
        let at = line
            .find(key)
            .unwrap_or_else(|| panic!("{key:?} in {line:?}"))
            + key.len();
        line[at..]
            .trim_start()
            .split([' ', ';'])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (
        number("model"),
        number("character frequencies alone"),
        number("xz -9e"),
    )
}

/// `eval` and the end of `train` put the model's bits per character beside the
/// text's unigram entropy and its size under xz -9e, both on the same text.
#[test]
fn eval_and_train_put_the_loss_beside_two_reference_points() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // big enough that xz gets past its own overhead (16 KB held out)
    let text = charrnn::io::data::BUILTIN_TEXT;
    write(d, "t.txt", text);
    let out = charrnn(d)
        .args([
            "train",
            "--data",
            "t.txt",
            "--iters",
            "300",
            "--sample-every",
            "0",
            "--val-fraction",
            "0.5",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("on the validation text: "))
        .unwrap_or_else(|| panic!("{err}"));
    let (model, unigram, xz) = compared(line);
    let chars: Vec<char> = text.chars().collect();
    let cut = (0.5 * chars.len() as f64).floor() as usize;
    let held_out: String = chars[cut..].iter().collect();
    assert!(
        (unigram - entropy_bits(&held_out)).abs() < 0.006,
        "{line}: unigram of the held-out text"
    );
    let val: f64 = err
        .split("validation loss at iteration 300: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (model - val / std::f64::consts::LN_2).abs() < 0.006,
        "{line}: the model's final validation loss"
    );
    assert!(
        xz > 1.0 && xz < unigram,
        "{line}: xz finds more than the frequencies in English"
    );

    let out = charrnn(d)
        .args(["eval", "--data", "t.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    let line = report
        .lines()
        .find(|l| l.starts_with("compared "))
        .unwrap_or_else(|| panic!("{report}"));
    let (model, unigram, xz) = compared(line);
    let bits: f64 = report
        .lines()
        .find(|l| l.starts_with("bits/char"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!((model - bits).abs() < 0.006, "{line}");
    assert!((unigram - entropy_bits(text)).abs() < 0.006, "{line}");
    assert!(xz > 1.0 && xz < unigram, "{line}");
}
