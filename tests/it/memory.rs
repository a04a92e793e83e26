//! What a run needs in memory is computed before anything is allocated: a run
//! that would not fit is refused at once (exit 2) with a message that names the
//! largest part and the flag that shrinks it, and no size flag, however absurd,
//! reaches the allocator (which would abort the process).

use std::time::{Duration, Instant};

use crate::common::*;

/// Random combinations of size flags, log-uniform from 1 to 10^9: each run ends
/// with success (it fit in --max-memory and trained an iteration) or a usage
/// error, never a panic, an abort or a signal, and a refusal comes at once.
#[test]
fn no_size_flag_reaches_the_allocator() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut draw = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // 1 .. 10^9, about evenly over the powers of ten
        let exp = (x % 900) as f64 / 100.0;
        (10f64.powf(exp) as u64).max(1)
    };
    let (mut refused, mut trained) = (0, 0);
    for round in 0..40 {
        let flags = [
            "--hidden-size",
            "--batch-size",
            "--layers",
            "--embedding-size",
            "--seq-length",
        ];
        // a flag or two at a random size, the others small, so that some runs fit
        let sizes: Vec<u64> = flags.iter().map(|_| draw()).collect();
        let mut args: Vec<String> = Vec::new();
        for (i, (flag, size)) in flags.iter().zip(&sizes).enumerate() {
            let size = if (round + i) % 3 == 0 {
                *size
            } else {
                size % 8 + 1
            };
            args.extend([flag.to_string(), size.to_string()]);
        }
        let started = Instant::now();
        let out = charrnn(d)
            .args([
                "train",
                "--data",
                "t.txt",
                "--iters",
                "1",
                "--sample-every",
                "0",
                "--log-every",
                "0",
            ])
            .args([
                "--max-memory",
                "256M",
                "--force",
                "--cell",
                ["rnn", "lstm", "gru"][round % 3],
            ])
            .args(&args)
            .output()
            .unwrap();
        let err = stderr(&out);
        match out.status.code() {
            Some(0) => trained += 1,
            Some(2) => {
                refused += 1;
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "{args:?}: a refusal took {:?}",
                    started.elapsed()
                );
            }
            // a text too short for the streams, say: a runtime error with a message
            Some(1) => assert!(err.starts_with("error: "), "{args:?}: {err}"),
            other => panic!("{args:?}: exit {other:?} (a panic or an abort): {err}"),
        }
        assert!(
            !err.contains("panicked") && !err.contains("memory allocation"),
            "{args:?}: {err}"
        );
    }
    assert!(
        refused > 5 && trained > 5,
        "{refused} refused, {trained} trained: the sizes should reach both sides"
    );
}

#[test]
fn a_run_that_would_not_fit_is_refused_naming_its_largest_part() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        (
            &["--hidden-size", "60000"][..],
            "a checkpoint being written",
            "--hidden-size or --layers",
        ),
        (
            &["--batch-size", "100000000"][..],
            "the chunk workspace",
            "--batch-size, --seq-length or --hidden-size",
        ),
        (
            &["--layers", "100000"][..],
            "a checkpoint being written",
            "--hidden-size or --layers",
        ),
    ];
    for (flags, part, shrink) in cases {
        let started = Instant::now();
        let out = charrnn(d)
            .args(["train", "--iters", "1", "--max-memory", "1G"])
            .args(flags)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{flags:?}: took {:?}",
            started.elapsed()
        );
        assert!(
            err.contains("this needs about")
                && err.contains("but 1.0 GB is available (--max-memory)"),
            "{err}"
        );
        assert!(
            err.contains(&format!("the largest part is {part}")) && err.contains(shrink),
            "{flags:?}: {err}"
        );
        assert!(
            !d.join("charrnn.ckpt").exists(),
            "{flags:?}: nothing is written"
        );
    }
    // a run that fits says what it needs in its banner
    let out = charrnn(d)
        .args(["train", "--iters", "1", "--sample-every", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("memory: about "), "{}", stderr(&out));
}

/// sample, eval, visualize and export check before they load a checkpoint.
#[test]
fn commands_that_read_a_checkpoint_check_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    let out = charrnn(d)
        .args(["train", "--iters", "2", "--sample-every", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for cmd in [
        &["sample", "-n", "5"][..],
        &["eval", "--data", "t.txt"][..],
        &["visualize", "-o", "v.html"][..],
        &["export", "-o", "w.npz"][..],
    ] {
        let out = charrnn(d)
            .args(cmd)
            .args(["--max-memory", "100K"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(
            err.contains("this needs about") && err.contains("--max-memory"),
            "{cmd:?}: {err}"
        );
        // and with room, each runs
        let out = charrnn(d)
            .args(cmd)
            .args(["--max-memory", "1G"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
    }
}
