//! What `kill`, `timeout`, systemd, `docker stop` (SIGTERM), a closed terminal
//! (SIGHUP) and Ctrl+C (SIGINT) do to a run: the first finishes the iteration,
//! saves and exits 0, naming the signal; the checkpoint holds the last iteration
//! and `--resume` continues exactly; a second signal aborts with the shell's code
//! for it. `prepare` stops on each and leaves nothing behind.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn spawn_train(dir: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_charrnn"))
        .current_dir(dir)
        .args([
            "train",
            "--sample-every",
            "0",
            "--log-every",
            "1",
            "--checkpoint-every",
            "0",
        ])
        .args(["--rng-seed", "2"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Rows of the loss history so far (0 before it exists).
fn rows_so_far(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

fn wait_for_rows(path: &Path, n: usize) {
    let started = Instant::now();
    while rows_so_far(path) < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "training never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn every_stop_signal_saves_the_last_iteration_and_resume_continues_exactly() {
    for (signal, name, summary) in [
        ("INT", "Ctrl+C", "(interrupted)"),
        ("TERM", "SIGTERM", "(SIGTERM)"),
        ("HUP", "SIGHUP", "(SIGHUP)"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let child = spawn_train(d, &["--hidden-size", "16"]);
        wait_for_rows(&d.join("loss_history.csv"), 20);
        kill(signal, child.id());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{signal}: {err}");
        assert!(
            err.contains(&format!("{name}: saving a checkpoint and stopping")),
            "{signal}: {err}"
        );
        assert!(err.contains(summary), "{signal}: {err}");
        // the checkpoint holds the last iteration done, the last one logged
        let saved = load_f64(&d.join("charrnn.ckpt"));
        let rows = csv_rows(&d.join("loss_history.csv"));
        let last: u64 = rows.last().unwrap()[0].parse().unwrap();
        assert_eq!(
            saved.iteration, last,
            "{signal}: the checkpoint is not the last iteration"
        );
        assert_eq!(rows.len() as u64, last, "{signal}: one row per iteration");

        // resumed to N + 15, the run equals one done straight
        let target = (saved.iteration + 15).to_string();
        let resume = charrnn(d)
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
        assert!(resume.status.success(), "{signal}: {}", stderr(&resume));
        let straight = charrnn(d)
            .args([
                "train",
                "--iters",
                &target,
                "--sample-every",
                "0",
                "--log-every",
                "1",
                "--checkpoint-every",
                "0",
            ])
            .args(["--rng-seed", "2", "--hidden-size", "16"])
            .args([
                "--checkpoint",
                "straight.ckpt",
                "--loss-csv",
                "straight.csv",
            ])
            .output()
            .unwrap();
        assert!(straight.status.success(), "{}", stderr(&straight));
        let (a, b) = (
            load_f64(&d.join("charrnn.ckpt")),
            load_f64(&d.join("straight.ckpt")),
        );
        assert_eq!(a.iteration, b.iteration);
        assert!(
            a.model.params == b.model.params,
            "{signal}: resumed weights differ from the straight run's"
        );
        assert!(
            a.optim == b.optim && a.state == b.state,
            "{signal}: optimizer or hidden state differs"
        );
        let losses = |p: &str| {
            csv_rows(&d.join(p))
                .into_iter()
                .map(|r| (r[0].clone(), r[1].clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            losses("loss_history.csv"),
            losses("straight.csv"),
            "{signal}: loss history"
        );
    }
}

/// A second signal while the first one's save is under way (a model whose
/// checkpoint takes a while to write) aborts at once with 128 + its number,
/// and leaves any checkpoint on disk whole.
#[test]
fn a_second_signal_aborts_without_saving() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let child = spawn_train(d, &["--hidden-size", "1200", "--seq-length", "4"]);
    wait_for_rows(&d.join("loss_history.csv"), 2);
    // both from one shell, microseconds apart, while the first save runs
    let pid = child.id().to_string();
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}; kill -HUP {pid}")])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    // pending signals arrive lowest number first, so either may be the second
    let (second, code) = match out.status.code() {
        Some(129) => ("SIGHUP", 129),
        Some(143) => ("SIGTERM", 143),
        other => panic!("exit {other:?}, not 129 or 143: {err}"),
    };
    assert!(
        err.contains(&format!(
            "second signal ({second}): aborting without saving"
        )),
        "{code}: {err}"
    );
    let ckpt = d.join("charrnn.ckpt");
    if ckpt.exists() {
        charrnn::train::checkpoint::load(&ckpt).expect("a checkpoint on disk is never torn");
    }
}

#[test]
fn prepare_stops_on_sigterm_and_sighup_without_leaving_an_output() {
    for (signal, code, name) in [("TERM", 143, "SIGTERM"), ("HUP", 129, "SIGHUP")] {
        let dir = tempfile::tempdir().unwrap();
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<posts>\n");
        let body =
            "&lt;p&gt;".to_string() + &"some words in a paragraph ".repeat(40) + "&lt;/p&gt;";
        for q in 1..=60_000 {
            xml += &format!(
                "  <row Id=\"{q}\" PostTypeId=\"1\" Score=\"1\" Title=\"Question {q}\" Body=\"{body}\" />\n"
            );
        }
        xml += "</posts>\n";
        write(dir.path(), "Posts.xml", &xml);
        let child = Command::new(env!("CARGO_BIN_EXE_charrnn"))
            .current_dir(dir.path())
            .args([
                "prepare",
                "stackexchange",
                "Posts.xml",
                "-o",
                "out.txt",
                "--sort-memory",
                "1",
            ])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        kill(signal, child.id());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{signal}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("stopped by {name}; out.txt was not written")),
            "{}",
            stderr(&out)
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("Posts.xml")],
            "{signal}"
        );
    }
}
