//! Nothing lost: kills at random moments, a full disk, two runs on one
//! checkpoint, and sampling that streams.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{charrnn, stderr, write};
use charrnn::train::checkpoint;

fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_charrnn"))
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn iteration(path: &Path) -> u64 {
    charrnn::with_state!(checkpoint::load(path).unwrap(), s => s.iteration)
}

/// A small deterministic generator for the kill delays (no extra dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn sigkill_at_random_moments_never_loses_the_checkpoint_or_tears_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "in.txt", crate::common::small_text());
    let ckpt = d.join("charrnn.ckpt");
    let every = [
        "--checkpoint-every",
        "1",
        "--log-every",
        "1",
        "--sample-every",
        "0",
    ];
    charrnn(d)
        .args([
            "train",
            "--data",
            "in.txt",
            "--hidden-size",
            "16",
            "--iters",
            "3",
        ])
        .args(every)
        .assert()
        .success();
    let mut rng = Lcg(2026);
    let (mut last, mut advanced) = (iteration(&ckpt), 0);
    for kill in 0..50 {
        let mut child = spawn(
            d,
            &[
                &[
                    "train",
                    "--data",
                    "in.txt",
                    "--resume",
                    "--iters",
                    "100000000",
                ][..],
                &every,
            ]
            .concat(),
        );
        std::thread::sleep(Duration::from_millis(20 + rng.next(250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // the checkpoint on disk is whole and never goes backwards
        let now = checkpoint::load(&ckpt).unwrap_or_else(|e| panic!("after kill {kill}: {e}"));
        let now = charrnn::with_state!(now, s => s.iteration);
        assert!(now >= last, "after kill {kill}: iteration {now} < {last}");
        advanced += usize::from(now > last);
        last = now;
    }
    assert!(
        advanced >= 25,
        "only {advanced} of 50 runs got far enough to save before the kill"
    );

    // one more resume, to the end: the history is whole, in order, without repeats
    let target = (last + 5).to_string();
    let out = charrnn(d)
        .args(["train", "--data", "in.txt", "--resume", "--iters", &target])
        .args(every)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(d.join("loss_history.csv")).unwrap();
    assert!(text.ends_with('\n'));
    let rows = charrnn::train::history::read(&d.join("loss_history.csv")).unwrap();
    let its: Vec<u64> = rows.iter().map(|r| r.iteration).collect();
    assert!(
        its.windows(2).all(|w| w[0] < w[1]),
        "iterations repeat or go back: {its:?}"
    );
    assert_eq!(its.last(), Some(&(last + 5)));
    assert_eq!(
        its.len() as u64,
        last + 5,
        "one row per iteration, none missing"
    );
    // and no temp file of a save that was cut short is left behind
    let temps: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

/// `ulimit -f` makes every write past the limit fail (EFBIG), as a full disk
/// would (ENOSPC): checkpoints fail, the small loss history does not.
#[test]
fn a_checkpoint_that_cannot_be_written_leaves_the_previous_one_intact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "in.txt", crate::common::small_text());
    charrnn(d)
        .args([
            "train",
            "--data",
            "in.txt",
            "--hidden-size",
            "16",
            "--iters",
            "20",
            "--log-every",
            "10",
        ])
        .assert()
        .success();
    let ckpt = d.join("charrnn.ckpt");
    let size = std::fs::metadata(&ckpt).unwrap().len();
    let before = std::fs::read(&ckpt).unwrap();
    // dash counts ulimit -f in 512-byte blocks: a quarter of the checkpoint
    let blocks = size / 4 / 512;
    let cmd = format!(
        "trap '' XFSZ; ulimit -f {blocks}; exec '{}' train --data in.txt --resume --iters 80 --checkpoint-every 20 \
         --log-every 10",
        env!("CARGO_BIN_EXE_charrnn")
    );
    let out = Command::new("sh")
        .args(["-c", &cmd])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for it in [40, 60, 80] {
        assert!(
            err.contains(&format!(
                "warning: could not save charrnn.ckpt at iteration {it}"
            )),
            "{err}"
        );
    }
    assert!(
        err.contains("The last good checkpoint (iteration 20) is intact in charrnn.ckpt"),
        "{err}"
    );
    assert!(
        err.contains("error: could not save the checkpoint at iteration 80"),
        "{err}"
    );
    assert!(
        err.contains("Free some space and continue with --resume"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        before,
        "the previous checkpoint is untouched"
    );
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");

    // with room again, the run continues from iteration 20 and rewrites the history after it
    charrnn(d)
        .args([
            "train",
            "--data",
            "in.txt",
            "--resume",
            "--iters",
            "40",
            "--log-every",
            "10",
        ])
        .assert()
        .success();
    assert_eq!(iteration(&ckpt), 40);
    let its: Vec<u64> = charrnn::train::history::read(&d.join("loss_history.csv"))
        .unwrap()
        .iter()
        .map(|r| r.iteration)
        .collect();
    assert_eq!(its, [10, 20, 30, 40]);
}

#[test]
fn a_second_run_on_the_same_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "in.txt", crate::common::small_text());
    let mut first = spawn(
        d,
        &[
            "train",
            "--data",
            "in.txt",
            "--hidden-size",
            "16",
            "--iters",
            "100000000",
        ],
    );
    // wait until the first run holds its lock (it writes its pid into the lock file)
    let lock = d.join(".charrnn.ckpt.lock");
    let started = Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |s| s.trim() != first.id().to_string()) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for args in [&["--resume"][..], &["--force"][..]] {
        let out = charrnn(d)
            .args(["train", "--data", "in.txt", "--iters", "10"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "charrnn.ckpt is in use by another charrnn process (pid {})",
                first.id()
            )),
            "{err}"
        );
    }
    // another checkpoint but the same loss history is refused too
    let out = charrnn(d)
        .args([
            "train",
            "--data",
            "in.txt",
            "--checkpoint",
            "b.ckpt",
            "--force",
        ])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("loss_history.csv is in use by another charrnn process"),
        "{}",
        stderr(&out)
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // the lock died with its process
    let out = charrnn(d)
        .args(["train", "--data", "in.txt", "--force", "--iters", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// VmHWM (peak resident set) of a running process, in kB.
fn peak_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn long_samples_stream_in_constant_memory_and_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "in.txt", crate::common::small_text());
    charrnn(d)
        .args([
            "train",
            "--data",
            "in.txt",
            "--hidden-size",
            "8",
            "--iters",
            "5",
        ])
        .assert()
        .success();
    let mut child = Command::new(env!("CARGO_BIN_EXE_charrnn"))
        .current_dir(d)
        .args(["sample", "-n", "100000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut read = |n: usize| {
        let mut got = 0;
        while got < n {
            got += out.read(&mut buf).unwrap();
        }
    };
    read(1 << 20);
    let early = peak_kb(child.id());
    read(8 << 20);
    let late = peak_kb(child.id());
    assert!(
        late < early + 1024,
        "peak RSS grew from {early} kB to {late} kB while writing 8 MB more"
    );
    drop(out); // the reader goes away, as `charrnn sample | head` does
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(!err.contains("error") && !err.contains("panicked"), "{err}");
}

/// `sample -n` as large as it goes: the first characters arrive at once (not
/// when a buffer fills), and Ctrl+C ends it with the text so far written out and
/// the shell's code for the signal.
#[test]
fn an_endless_sample_streams_at_once_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "in.txt", crate::common::small_text());
    charrnn(d)
        .args([
            "train",
            "--data",
            "in.txt",
            "--hidden-size",
            "8",
            "--iters",
            "5",
        ])
        .assert()
        .success();
    // newlines are rare in an untrained model's text: only the timed flush shows it
    let mut child = Command::new(env!("CARGO_BIN_EXE_charrnn"))
        .current_dir(d)
        .args(["sample", "-n", &u64::MAX.to_string(), "--seed", "The"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 3];
    out.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"The", "the seed is echoed first");
    let mut more = [0u8; 1];
    out.read_exact(&mut more).unwrap();
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}: {err}");
    assert!(
        err.contains("stopped by Ctrl+C") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(rest.last(), Some(&b'\n'), "the text ends with its line");
}
