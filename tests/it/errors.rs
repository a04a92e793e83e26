//! Bad input gets a clear message and the right exit code (1 runtime, 2 usage),
//! never a panic, and never costs the user a good checkpoint.

use std::path::Path;

use crate::common::*;
use charrnn::io::data::{Text, Vocab};
use charrnn::model::Config;
use charrnn::train::checkpoint;
use charrnn::train::{Hyper, LearningRate, TrainState};

/// Runs charrnn and checks it fails with `code` and a message containing each of `needles`.
fn fails(dir: &Path, args: &[&str], code: i32, needles: &[&str]) -> String {
    let out = charrnn(dir).args(args).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: expected {n:?} in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A temp dir holding t.txt and a small trained checkpoint charrnn.ckpt.
fn trained() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.txt", small_text());
    let out = charrnn(dir.path())
        .args([
            "train",
            "--data",
            "t.txt",
            "--iters",
            "5",
            "--hidden-size",
            "32",
            "--rng-seed",
            "1",
        ])
        .args(["--sample-every", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

#[test]
fn unreadable_texts_are_reported_with_where_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = fails(
        d,
        &["train", "--data", "nope.txt"],
        1,
        &["cannot read nope.txt", "No such file"],
    );
    assert_eq!(
        err.matches("No such file").count(),
        1,
        "the cause is stated once: {err}"
    );
    write(d, "empty.txt", "");
    fails(
        d,
        &["train", "--data", "empty.txt"],
        1,
        &["empty.txt is empty"],
    );
    write(d, "short.txt", "0123456789");
    fails(
        d,
        &["train", "--data", "short.txt"],
        1,
        &[
            "short.txt has 10 characters to train on, but 1 stream(s) of seq_length 25 need at least 26",
            "--seq-length",
        ],
    );
    write(d, "latin1.txt", b"first line\ncaf\xe9 au lait\n");
    fails(
        d,
        &["train", "--data", "latin1.txt"],
        1,
        &[
            "not valid UTF-8",
            "byte 0xe9 at byte offset 14 (line 2, column 4)",
            "iconv",
        ],
    );
    assert!(
        !d.join("charrnn.ckpt").exists(),
        "nothing is written for a bad text"
    );
}

#[test]
fn nonsensical_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (flag, value) in [
        ("--hidden-size", "0"),
        ("--hidden-size", "-5"),
        ("--seq-length", "0"),
        ("--learning-rate", "0"),
        ("--learning-rate", "-0.1"),
        ("--clip", "0"),
        ("--clip", "inf"),
        ("--sample-len", "0"),
        ("--precision", "f16"),
        ("--iters", "many"),
        ("--max-time", "soon"),
        ("--cell", "transformer"),
        ("--layers", "0"),
        ("--batch-size", "0"),
        ("--optimizer", "sgd"),
        ("--dropout", "1"),
        ("--dropout", "-0.1"),
        ("--val-fraction", "1"),
        ("--decay-rate", "1.5"),
        ("--lr-decay", "0"),
        ("--lr-decay", "1.5"),
        ("--clip-norm", "0"),
    ] {
        fails(d, &["train", flag, value], 2, &[flag]);
    }
    for t in ["0", "-1", "nan"] {
        fails(
            d,
            &["sample", "--temperature", t],
            2,
            &["--temperature", "greater than 0"],
        );
    }
    fails(d, &["train", "--allow-data-change"], 2, &["--resume"]);
    fails(
        d,
        &["train", "--clip", "5", "--clip-norm", "1"],
        2,
        &["cannot be used with"],
    );
    fails(d, &["sample", "--top-k", "0"], 2, &["--top-k"]);
    fails(
        d,
        &["train", "--resume", "--init-npz", "w.npz"],
        2,
        &["cannot be used with"],
    );
    assert!(!d.join("charrnn.ckpt").exists());
}

#[test]
fn a_seed_character_outside_the_vocabulary_is_named() {
    let dir = trained();
    let vocab = Vocab::from_text(small_text()).len().to_string();
    fails(
        dir.path(),
        &["sample", "--seed", "Thé"],
        2,
        &[
            "seed character 'é' (U+00E9)",
            &format!("vocabulary of {vocab} characters"),
        ],
    );
}

#[test]
fn damaged_checkpoints_are_reported_not_panicked_on() {
    let dir = trained();
    let d = dir.path();
    let good = std::fs::read(d.join("charrnn.ckpt")).unwrap();
    let n = good.len();
    let info = |bytes: &[u8], needles: &[&str]| {
        std::fs::write(d.join("bad.ckpt"), bytes).unwrap();
        fails(
            d,
            &["info", "--checkpoint", "bad.ckpt"],
            1,
            &[&["reading checkpoint bad.ckpt"], needles].concat(),
        );
        fails(d, &["sample", "--checkpoint", "bad.ckpt"], 1, needles);
    };
    info(
        &good[..n / 2],
        &[&format!("file is truncated at byte {} of {n}", n / 2)],
    );
    info(&good[..10], &["file is truncated at byte 10 of 28"]);
    let mut flipped = good.clone();
    flipped[n - 100] ^= 0x40;
    info(&flipped, &["corrupted", "checksum mismatch"]);
    info(
        b"First Citizen: Before we proceed",
        &["not a charrnn checkpoint", "46 69 72 73 74 20 43 69"],
    );
    info(
        b"PK\x03\x04 zip",
        &["not a charrnn checkpoint", "zip archive", "--init-npz"],
    );
    info(b"", &["not a charrnn checkpoint (the file is empty)"]);
    let mut version = good.clone();
    version[8..12].copy_from_slice(&99u32.to_le_bytes());
    info(&version, &["format version 99", "reads versions 2 to 4"]);
    let mut huge = good.clone();
    huge[12..20].copy_from_slice(&(u64::MAX - 5).to_le_bytes());
    info(&huge, &["payload length"]);
    let mut long = good.clone();
    long[12..20].copy_from_slice(&(1u64 << 40).to_le_bytes());
    info(&long, &["file is truncated at byte"]);
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"extra");
    info(&trailing, &["corrupted", "5 bytes after"]);
    fails(
        d,
        &["info", "--checkpoint", "missing.ckpt"],
        1,
        &["reading checkpoint missing.ckpt", "No such file"],
    );
}

#[test]
fn a_well_formed_but_inconsistent_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = Text {
        name: "x".into(),
        content: small_text().into(),
    };
    let vocab = Vocab::from_text(&text.content);
    let config = Config::min_char_rnn(vocab.len(), 8);
    let mut state = TrainState::<f64>::new(
        config,
        Hyper::default(),
        LearningRate::default(),
        vocab,
        text.info(),
        None,
    );
    state.state.h[0].push(0.5); // 9 values for H = 8
    std::fs::write(d.join("odd.ckpt"), checkpoint::encode(&state)).unwrap();
    fails(
        d,
        &["info", "--checkpoint", "odd.ckpt"],
        1,
        &["corrupted", "hidden state does not fit 1 streams"],
    );
    state.state.h[0].pop();
    state.model.params[3] = f64::NAN;
    std::fs::write(d.join("nan.ckpt"), checkpoint::encode(&state)).unwrap();
    fails(
        d,
        &["info", "--checkpoint", "nan.ckpt"],
        1,
        &["corrupted", "NaN"],
    );
}

#[test]
fn an_unwritable_checkpoint_path_fails_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "plain", "not a directory");
    fails(
        d,
        &["train", "--checkpoint", "plain/run/c.ckpt"],
        1,
        &["checkpoint plain/run/c.ckpt cannot be written"],
    );
    std::fs::create_dir(d.join("adir")).unwrap();
    fails(
        d,
        &["train", "--checkpoint", "adir"],
        1,
        &["checkpoint adir cannot be written", "directory"],
    );
    assert!(
        !d.join("loss_history.csv").exists(),
        "failed before any training or logging"
    );

    // a read-only directory (meaningless for root, who may write anyway)
    let ro = d.join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&ro, perms).unwrap();
    if std::fs::write(ro.join("probe"), "x").is_ok() {
        eprintln!(
            "skipping the read-only directory case: this user can write to a 0555 directory (root?)"
        );
        return;
    }
    fails(
        d,
        &["train", "--checkpoint", "ro/c.ckpt"],
        1,
        &["cannot be written", "ermission denied"],
    );
}

#[test]
fn too_many_streams_for_the_text_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.txt", "x".repeat(500));
    fails(
        dir.path(),
        &["train", "--data", "t.txt", "--batch-size", "64"],
        1,
        &[
            "t.txt has 500 characters to train on, but 64 stream(s) of seq_length 25 need at least 1664",
            "--batch-size",
        ],
    );
    fails(
        dir.path(),
        &["train", "--data", "t.txt", "--val-fraction", "0.99"],
        1,
        &["t.txt has 5 characters to train on"],
    );
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "train",
        "--learning-rate",
        "3e307",
        "--iters",
        "10",
        "--checkpoint-every",
        "1",
        "--rng-seed",
        "1",
    ];
    fails(
        d,
        &args,
        1,
        &[
            "training diverged at iteration 2",
            "last good checkpoint (iteration 1) is intact in charrnn.ckpt",
            "--learning-rate",
        ],
    );
    let s = load_f64(&d.join("charrnn.ckpt"));
    assert_eq!(s.iteration, 1);
    assert!(s.is_finite());
    // without any checkpoint yet, it says so
    fails(
        d,
        &[
            "train",
            "--learning-rate",
            "1e308",
            "--iters",
            "5",
            "--force",
            "--checkpoint",
            "b.ckpt",
        ],
        1,
        &[
            "training diverged at iteration",
            "No checkpoint had been written yet",
        ],
    );
    assert!(!d.join("b.ckpt").exists());
}

/// `--learning-rate 1e9 --clip 1e9` keeps every number finite but sends the loss
/// to billions of nats a character: that is divergence too.
#[test]
fn a_runaway_loss_is_divergence_even_while_the_numbers_stay_finite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "train",
        "--learning-rate",
        "1e9",
        "--clip",
        "1e9",
        "--iters",
        "3000",
        "--checkpoint-every",
        "1000",
        "--sample-every",
        "0",
        "--rng-seed",
        "1",
    ];
    let err = fails(
        d,
        &args,
        1,
        &[
            "training diverged at iteration ",
            "more than 100 times the",
            "No checkpoint had been written yet",
            "smaller --learning-rate",
        ],
    );
    let at: u64 = err
        .split("training diverged at iteration ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no iteration in: {err}"));
    assert!(at < 100, "stopped only at iteration {at}: {err}");
    assert!(
        !d.join("charrnn.ckpt").exists(),
        "nothing diverged was saved"
    );
    // a healthy run of the same length is not stopped
    charrnn(d)
        .args(["train", "--iters", "300", "--sample-every", "0", "--force"])
        .assert()
        .success();
}

#[test]
fn sample_refuses_a_beam_wider_than_it_searches() {
    let dir = trained();
    let d = dir.path();
    fails(
        d,
        &["sample", "--beam", "100000000", "-n", "10"],
        2,
        &["at most 1024"],
    );
    // at the bound, a short search finishes
    charrnn(d)
        .args(["sample", "--beam", "1024", "-n", "3", "--seed", "a"])
        .assert()
        .success();
    // a long search at a wide beam needs memory it is told it cannot have
    fails(
        d,
        &[
            "sample",
            "--beam",
            "1024",
            "-n",
            "1000000000",
            "--max-memory",
            "1G",
        ],
        2,
        &["the beam's sequences", "a narrower --beam or a shorter -n"],
    );
}

#[test]
fn export_refuses_an_extension_that_names_no_format() {
    let dir = trained();
    let d = dir.path();
    fails(
        d,
        &["export", "-o", "w.docx"],
        2,
        &[
            "w.docx: .docx is not a format",
            ".npz, .safetensors or .html",
            "--format",
        ],
    );
    assert!(!d.join("w.docx").exists());
    // --format says what to write whatever the name; no extension is npz
    charrnn(d)
        .args(["export", "-o", "w.docx", "--format", "safetensors"])
        .assert()
        .success();
    charrnn(d)
        .args(["export", "-o", "weights"])
        .assert()
        .success();
    assert!(d.join("weights.json").exists(), "an npz export's sidecar");
}

#[test]
fn resume_refuses_conflicting_flags_and_other_texts() {
    let dir = trained();
    let d = dir.path();
    fails(
        d,
        &[
            "train",
            "--data",
            "t.txt",
            "--resume",
            "--hidden-size",
            "64",
            "--learning-rate",
            "0.05",
        ],
        2,
        &[
            "--hidden-size 64 (checkpoint has 32)",
            "--learning-rate 0.05 (checkpoint has 0.1)",
        ],
    );
    // repeating the run's own values is fine
    let out = charrnn(d)
        .args([
            "train",
            "--data",
            "t.txt",
            "--resume",
            "--hidden-size",
            "32",
            "--iters",
            "6",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let other: String = small_text().chars().rev().collect();
    write(d, "other.txt", &other);
    fails(
        d,
        &["train", "--data", "other.txt", "--resume"],
        2,
        &["other.txt is not the text", "--allow-data-change"],
    );
    let out = charrnn(d)
        .args([
            "train",
            "--data",
            "other.txt",
            "--resume",
            "--allow-data-change",
            "--iters",
            "8",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(load_f64(&d.join("charrnn.ckpt")).text.name, "other.txt");

    write(d, "new-chars.txt", format!("{}ü", small_text()));
    fails(
        d,
        &[
            "train",
            "--data",
            "new-chars.txt",
            "--resume",
            "--allow-data-change",
        ],
        1,
        &["'ü' (U+00FC)", "not in the model's vocabulary"],
    );
    fails(
        d,
        &["train", "--resume", "--checkpoint", "none.ckpt"],
        2,
        &["no checkpoint at none.ckpt"],
    );
    fails(
        d,
        &[
            "train",
            "--data",
            "t.txt",
            "--resume",
            "--cell",
            "lstm",
            "--optimizer",
            "adam",
            "--clip-norm",
            "2",
        ],
        2,
        &[
            "--cell lstm (checkpoint has rnn)",
            "--optimizer adam (checkpoint has adagrad)",
            "--clip-norm 2 (checkpoint clips by value)",
        ],
    );
}

#[test]
fn init_npz_with_the_wrong_shapes_is_refused() {
    let dir = trained();
    let d = dir.path();
    assert!(
        charrnn(d)
            .args(["export", "--out", "w.npz"])
            .output()
            .unwrap()
            .status
            .success()
    );
    write(d, "abc.txt", "abcabcabcabcabcabcabcabcabcabcabc");
    fails(
        d,
        &[
            "train",
            "--data",
            "abc.txt",
            "--init-npz",
            "w.npz",
            "--checkpoint",
            "n.ckpt",
            "--force",
        ],
        1,
        &["reading w.npz: array", "vocabulary of 3 characters"],
    );
    fails(
        d,
        &[
            "train",
            "--data",
            "t.txt",
            "--init-npz",
            "w.npz",
            "--hidden-size",
            "50",
            "--checkpoint",
            "n.ckpt",
            "--force",
        ],
        2,
        &["--hidden-size 50 conflicts with w.npz"],
    );
    fails(
        d,
        &[
            "train",
            "--data",
            "t.txt",
            "--init-npz",
            "t.txt",
            "--checkpoint",
            "n.ckpt",
            "--force",
        ],
        1,
        &["reading t.txt"],
    );
}
