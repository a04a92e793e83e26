//! Big and strange inputs: memory about the size of the text, vocabularies of
//! thousands of characters, and --max-vocab.

use std::process::Command;

use crate::common::{charrnn, stderr, stdout, write};

/// Thousands of distinct CJK characters, Zipf-like so some are rare.
fn cjk_text(distinct: u32, len: usize) -> String {
    let mut x = 12345u64;
    (0..len)
        .map(|i| {
            if i % 40 == 39 {
                return '\n';
            }
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((x >> 33) as f64) / (1u64 << 31) as f64;
            // rank ~ distinct^u: low ranks often, high ranks rarely
            let rank = ((distinct as f64).powf(u) as u32).min(distinct - 1);
            char::from_u32(0x4E00 + rank).unwrap()
        })
        .collect()
}

#[test]
fn a_vocabulary_of_thousands_of_characters_trains_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = cjk_text(3000, 60_000);
    let distinct = charrnn::io::data::Vocab::from_text(&text).len();
    assert!(distinct > 1000, "{distinct}");
    write(d, "zh.txt", &text);
    let out = charrnn(d)
        .args([
            "train",
            "--data",
            "zh.txt",
            "--iters",
            "30",
            "--hidden-size",
            "16",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("vocabulary of {distinct} characters")),
        "{}",
        stderr(&out)
    );
    let out = charrnn(d)
        .args(["sample", "-n", "300", "--seed", "\n", "--rng-seed", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sample = stdout(&out);
    assert!(sample.chars().count() >= 300);
    assert!(
        sample
            .chars()
            .all(|c| c == '\n' || ('\u{4E00}'..'\u{5A00}').contains(&c)),
        "{sample}"
    );
    // training is deterministic and resumable with u16 ids too
    let out = charrnn(d)
        .args(["train", "--data", "zh.txt", "--resume", "--iters", "40"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn max_vocab_folds_rare_characters_into_one_symbol_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "zh.txt", cjk_text(3000, 60_000));
    let out = charrnn(d)
        .args([
            "train",
            "--data",
            "zh.txt",
            "--iters",
            "20",
            "--hidden-size",
            "16",
            "--max-vocab",
            "200",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--max-vocab 200: ")
            && err.contains("rare characters")
            && err.contains("'\u{FFFD}'"),
        "{err}"
    );
    assert!(err.contains("vocabulary of 200 characters"), "{err}");
    let info = stdout(&charrnn(d).args(["info"]).output().unwrap());
    assert!(info.contains('\u{FFFD}'), "{info}");
    let sample = stdout(
        &charrnn(d)
            .args(["sample", "-n", "2000", "--seed", "\n", "--rng-seed", "2"])
            .output()
            .unwrap(),
    );
    let state = crate::common::load_f64(&d.join("charrnn.ckpt"));
    assert!(
        sample.chars().all(|c| state.vocab.id(c).is_some()),
        "samples stay in the 200 kept characters"
    );
    // resuming folds the same characters again
    charrnn(d)
        .args(["train", "--data", "zh.txt", "--resume", "--iters", "25"])
        .assert()
        .success();
    let out = charrnn(d)
        .args(["train", "--data", "zh.txt", "--resume", "--max-vocab", "10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = charrnn(d)
        .args(["train", "--data", "zh.txt", "--force", "--max-vocab", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--max-vocab must be at least 2"),
        "{}",
        stderr(&out)
    );
}

/// Peak memory of training on a 48 MB text stays near the text's size (one
/// byte per character, not a String plus four-byte ids).
#[test]
fn training_memory_is_about_the_size_of_the_text() {
    if Command::new("/usr/bin/time").arg("true").output().is_err() {
        eprintln!("skipping: /usr/bin/time not found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let unit = crate::common::small_text();
    let big = unit.repeat(48_000_000 / unit.len());
    let size = big.len() as u64;
    write(d, "big.txt", big);
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak_kb=%M"])
        .arg(env!("CARGO_BIN_EXE_charrnn"))
        .args([
            "train",
            "--data",
            "big.txt",
            "--iters",
            "2",
            "--hidden-size",
            "16",
            "--val-fraction",
            "0.01",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let peak_kb: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("peak_kb="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let limit_kb = 64 * 1024 + size * 11 / 10 / 1024;
    eprintln!("peak RSS {peak_kb} kB for a {size}-byte text (limit {limit_kb} kB)");
    assert!(
        peak_kb < limit_kb,
        "peak RSS {peak_kb} kB over {limit_kb} kB"
    );
    assert!(
        peak_kb > size / 1024 / 2,
        "the ids should be resident: {peak_kb} kB"
    );
}
