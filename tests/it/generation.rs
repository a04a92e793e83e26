//! The generation commands end to end: primes from files and stdin, unknown
//! characters, nucleus sampling, beam search, the interactive prompt (through a
//! pipe and through tmux's pseudo-terminal) and `score`.

use std::path::Path;
use std::process::Command as Std;
use std::time::{Duration, Instant};

use crate::common::{charrnn, small_text, stderr, stdout, tmux_present, write};

/// Trains a small model in `dir` and returns its checkpoint's name.
fn trained(dir: &Path, cell: &str, extra: &[&str]) -> String {
    write(dir, "t.txt", small_text());
    let ckpt = format!("{cell}.ckpt");
    let out = charrnn(dir)
        .args([
            "train",
            "--data",
            "t.txt",
            "--cell",
            cell,
            "--hidden-size",
            "24",
        ])
        .args(["--iters", "150", "--sample-every", "0", "--log-every", "0"])
        .args(["--checkpoint", &ckpt, "--force"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    ckpt
}

fn sample(dir: &Path, ckpt: &str, args: &[&str]) -> std::process::Output {
    charrnn(dir)
        .args(["sample", "--checkpoint", ckpt])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_prime_from_a_file_or_stdin_equals_the_same_prime_given_inline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = trained(d, "lstm", &[]);
    let prime = &small_text()[..2000];
    write(d, "prime.txt", prime);
    let inline = stdout(&sample(
        d,
        &ckpt,
        &["--seed", prime, "-n", "200", "--rng-seed", "4"],
    ));
    let continuation = inline
        .strip_prefix(prime)
        .expect("output starts with the seed");
    let from_file = sample(
        d,
        &ckpt,
        &["--seed-file", "prime.txt", "-n", "200", "--rng-seed", "4"],
    );
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    assert_eq!(
        stdout(&from_file),
        continuation,
        "a file prime is not echoed"
    );
    let from_stdin = charrnn(d)
        .args([
            "sample",
            "--checkpoint",
            &ckpt,
            "--seed-file",
            "-",
            "-n",
            "200",
        ])
        .args(["--rng-seed", "4"])
        .write_stdin(prime)
        .output()
        .unwrap();
    assert_eq!(stdout(&from_stdin), continuation);
    let missing = sample(d, &ckpt, &["--seed-file", "nope.txt"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("nope.txt"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn unknown_prime_characters_stop_with_their_place_or_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = trained(d, "rnn", &[]);
    write(d, "odd.txt", "The king\nsa☃id ☃ to");
    let refused = sample(d, &ckpt, &["--seed-file", "odd.txt", "-n", "10"]);
    assert_eq!(refused.status.code(), Some(2));
    let err = stderr(&refused);
    assert!(
        err.contains("odd.txt") && err.contains("'☃' (U+2603) on line 2, column 3"),
        "{err}"
    );
    assert!(err.contains("--unknown skip"), "{err}");
    let skipped = sample(
        d,
        &ckpt,
        &[
            "--seed-file",
            "odd.txt",
            "-n",
            "10",
            "--unknown",
            "skip",
            "--rng-seed",
            "1",
        ],
    );
    assert!(skipped.status.success(), "{}", stderr(&skipped));
    let note = stderr(&skipped);
    assert!(
        note.contains("skipped 2 character(s)") && note.contains("at character 11"),
        "{note}"
    );
    // the same as priming with the known characters alone
    write(d, "known.txt", "The king\nsaid  to");
    let known = sample(
        d,
        &ckpt,
        &["--seed-file", "known.txt", "-n", "10", "--rng-seed", "1"],
    );
    assert_eq!(stdout(&skipped), stdout(&known));
    let inline = sample(d, &ckpt, &["--seed", "ab☃", "--unknown", "skip", "-n", "5"]);
    assert!(stdout(&inline).starts_with("ab"), "{}", stdout(&inline));
}

#[test]
fn top_p_draws_from_the_nucleus_and_a_tiny_p_is_argmax() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = trained(d, "gru", &[]);
    let argmax = stdout(&sample(
        d,
        &ckpt,
        &["--seed", "The ", "-n", "100", "--argmax"],
    ));
    for seed in ["1", "2"] {
        let tiny = sample(
            d,
            &ckpt,
            &[
                "--seed",
                "The ",
                "-n",
                "100",
                "--top-p",
                "1e-9",
                "--rng-seed",
                seed,
            ],
        );
        assert_eq!(stdout(&tiny), argmax);
    }
    let wide = stdout(&sample(
        d,
        &ckpt,
        &[
            "--seed",
            "The ",
            "-n",
            "100",
            "--top-p",
            "0.9",
            "--rng-seed",
            "1",
        ],
    ));
    assert_ne!(wide, argmax);
    let all = stdout(&sample(
        d,
        &ckpt,
        &[
            "--seed",
            "The ",
            "-n",
            "100",
            "--top-p",
            "1",
            "--rng-seed",
            "1",
        ],
    ));
    let plain = stdout(&sample(
        d,
        &ckpt,
        &["--seed", "The ", "-n", "100", "--rng-seed", "1"],
    ));
    assert_eq!(all, plain, "top-p 1 changes nothing");
    for bad in ["0", "1.5", "-0.2"] {
        let out = sample(d, &ckpt, &["--top-p", bad]);
        assert_eq!(out.status.code(), Some(2), "--top-p {bad}");
    }
}

#[test]
fn beam_one_is_argmax_and_a_wide_beam_scores_at_least_as_well() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = trained(d, "lstm", &["--layers", "2"]);
    let argmax = stdout(&sample(
        d,
        &ckpt,
        &["--seed", "The ", "-n", "40", "--argmax"],
    ));
    let score = |out: &std::process::Output| -> f64 {
        let err = stderr(out);
        let at = err
            .find("log-probability ")
            .expect("beam reports its log-probability")
            + 16;
        err[at..].split(' ').next().unwrap().parse().unwrap()
    };
    let one = sample(d, &ckpt, &["--seed", "The ", "-n", "40", "--beam", "1"]);
    assert_eq!(stdout(&one), argmax);
    let eight = sample(d, &ckpt, &["--seed", "The ", "-n", "40", "--beam", "8"]);
    assert!(stdout(&eight).starts_with("The ") && stdout(&eight).chars().count() == 45);
    assert!(
        score(&eight) >= score(&one),
        "{} vs {}",
        stderr(&eight),
        stderr(&one)
    );
    let clash = sample(d, &ckpt, &["--beam", "4", "--temperature", "0.5"]);
    assert_eq!(clash.status.code(), Some(2));
}

#[test]
fn interactive_through_a_pipe_writes_one_continuation_per_prime_and_keeps_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = trained(d, "lstm", &[]);
    let run = |input: &str| {
        let out = charrnn(d)
            .args([
                "sample",
                "--checkpoint",
                &ckpt,
                "--interactive",
                "--argmax",
                "-n",
                "30",
            ])
            .write_stdin(input)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stderr(&out), "", "no prompts through a pipe");
        stdout(&out)
    };
    let first = stdout(&sample(
        d,
        &ckpt,
        &["--seed", "The ", "-n", "30", "--argmax"],
    ));
    let first = first
        .strip_prefix("The ")
        .unwrap()
        .trim_end_matches('\n')
        .to_string();
    let second = stdout(&sample(
        d,
        &ckpt,
        &[
            "--seed",
            &format!("The {first}And "),
            "-n",
            "12",
            "--argmax",
        ],
    ));
    let second = second
        .strip_prefix(&format!("The {first}And "))
        .unwrap()
        .trim_end_matches('\n')
        .to_string();
    // the state runs on from one prompt to the next; :reset starts over
    let out = run("The \n:length 12\nAnd \n:reset\n:length 30\nThe \n");
    assert_eq!(out, format!("{first}\n{second}\n{first}\n"));
    // a bad command is reported and the session goes on
    let out = charrnn(d)
        .args([
            "sample",
            "--checkpoint",
            &ckpt,
            "-i",
            "--argmax",
            "-n",
            "30",
        ])
        .write_stdin(":temperature -2\nThe \n")
        .output()
        .unwrap();
    assert!(stderr(&out).contains(":temperature"), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{first}\n"));
}

/// Runs tmux on its own server socket, returning its output.
fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Std::new("tmux")
        .args(["-L", socket])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until the pane shows `want`, returning what it shows.
fn pane_shows(socket: &str, want: &str) -> String {
    pane_until(socket, |pane| pane.contains(want))
}

/// Waits until what the pane shows passes `done` (20 s at most), returning it.
fn pane_until(socket: &str, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let pane = tmux(socket, &["capture-pane", "-p", "-t", "t"]);
        if done(&pane) || start.elapsed() > Duration::from_secs(20) {
            return pane;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn interactive_on_a_terminal_prompts_takes_commands_and_ends_on_ctrl_d() {
    if !tmux_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = trained(d, "gru", &[]);
    let expected = stdout(&sample(
        d,
        &ckpt,
        &["--seed", "The ", "-n", "25", "--argmax"],
    ));
    let expected = expected
        .strip_prefix("The ")
        .unwrap()
        .split('\n')
        .next()
        .unwrap()
        .to_string();
    let socket = format!("charrnn-test-{}", std::process::id());
    let command = format!(
        "cd {} && {} sample --checkpoint {ckpt} -i --argmax -n 25; echo exited $?; sleep 30",
        d.display(),
        env!("CARGO_BIN_EXE_charrnn")
    );
    tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "200",
            "-y",
            "50",
            &command,
        ],
    );
    // (capture-pane drops the prompt's trailing space; the prompt follows the
    // banner, so wait for both)
    let prompted = |pane: &str| pane.lines().any(|l| l == ">");
    let pane = pane_until(&socket, |p| p.contains(":help for settings") && prompted(p));
    assert!(prompted(&pane), "{pane}");
    tmux(&socket, &["send-keys", "-t", "t", ":help", "Enter"]);
    let pane = pane_shows(&socket, ":reset");
    assert!(pane.contains("forget the hidden state"), "{pane}");
    tmux(&socket, &["send-keys", "-t", "t", ":length 25", "Enter"]);
    let pane = pane_shows(&socket, "25 characters per continuation");
    assert!(pane.contains("argmax; 25 characters"), "{pane}");
    tmux(
        &socket,
        &["send-keys", "-t", "t", ":reset", "Enter", "The ", "Enter"],
    );
    let pane = pane_shows(&socket, &expected);
    assert!(pane.contains(&expected), "wanted {expected:?} in\n{pane}");
    tmux(&socket, &["send-keys", "-t", "t", "C-d"]);
    let pane = pane_shows(&socket, "exited ");
    tmux(&socket, &["kill-server"]);
    assert!(pane.contains("exited 0"), "{pane}");
}

/// The number after `label` on the line that starts with it.
fn figure(text: &str, label: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} in {text}"));
    line[label.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn score_totals_equal_eval_and_its_csv_has_a_row_per_character() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = format!(
        "{}☃ and ☃{}",
        &small_text()[..700],
        &small_text()[2000..2400]
    );
    write(d, "held.txt", &text);
    let chars = text.chars().count();
    let predicted = format!("({} characters predicted)", chars - 3);
    for cell in ["rnn", "lstm", "gru"] {
        let ckpt = trained(d, cell, &["--layers", "2", "--embedding-size", "8"]);
        let eval = charrnn(d)
            .args(["eval", "--checkpoint", &ckpt, "--data", "held.txt"])
            .output()
            .unwrap();
        assert!(eval.status.success(), "{}", stderr(&eval));
        let score = charrnn(d)
            .args([
                "score",
                "--checkpoint",
                &ckpt,
                "held.txt",
                "--csv",
                "held.csv",
            ])
            .output()
            .unwrap();
        assert!(score.status.success(), "{}", stderr(&score));
        let (e, s) = (stdout(&eval), stdout(&score));
        assert!(
            (figure(&e, "loss") - figure(&s, "loss")).abs() < 2e-6,
            "{cell}:\n{e}\n{s}"
        );
        assert!(e.contains(&predicted) && s.contains(&predicted), "{e}\n{s}");
        let note = stderr(&score);
        assert!(
            note.contains(&format!("2 of {chars} characters")) && note.contains("'☃' on line"),
            "{note}"
        );
        assert!(
            s.starts_with(&text),
            "the text as it was, no colours through a pipe"
        );
        assert!(!s.contains('\x1b'));
        let mut reader = csv::Reader::from_path(d.join("held.csv")).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), chars, "a row per character, unknown ones too");
        let column: String = rows.iter().map(|r| r[1].to_string()).collect();
        assert_eq!(column, text);
        let losses: Vec<f64> = rows
            .iter()
            .filter(|r| !r[2].is_empty())
            .map(|r| r[2].parse().unwrap())
            .collect();
        assert_eq!(losses.len(), chars - 3);
        let total: f64 = losses.iter().sum();
        assert!((total - figure(&s, "total")).abs() < 1e-3, "{total} {s}");
        for r in rows.iter().filter(|r| !r[2].is_empty()) {
            let p: Vec<f64> = (0..5).map(|i| r[4 + 2 * i].parse().unwrap()).collect();
            assert!(
                p.windows(2).all(|w| w[0] >= w[1]) && p.iter().sum::<f64>() <= 1.0 + 1e-5,
                "{r:?}"
            );
            // the character's own loss is at least the best guess's
            assert!(r[2].parse::<f64>().unwrap() >= -p[0].ln() - 1e-5);
        }
    }
    let ckpt = trained(d, "rnn", &[]);
    let out = charrnn(d)
        .args(["score", "--checkpoint", &ckpt, "--text", "the sea", "-q"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).starts_with("text           --text (6 characters"),
        "{}",
        stdout(&out)
    );
    let out = charrnn(d)
        .args(["score", "--checkpoint", &ckpt, "-"])
        .write_stdin("the sea")
        .output()
        .unwrap();
    assert!(stdout(&out).contains("<stdin> (6 characters"));
    let bad = charrnn(d)
        .args(["score", "--checkpoint", &ckpt, "--text", "☃"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("too few known characters"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn score_colours_only_on_a_terminal_and_not_with_no_color() {
    if !tmux_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = trained(d, "rnn", &[]);
    for (env, coloured) in [("", true), ("NO_COLOR=1 ", false)] {
        let socket = format!("charrnn-score-{}-{coloured}", std::process::id());
        let command = format!(
            "cd {} && {env}{} score --checkpoint {ckpt} --text 'the sea was calm'; echo done; sleep 30",
            d.display(),
            env!("CARGO_BIN_EXE_charrnn")
        );
        tmux(
            &socket,
            &[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "200",
                "-y",
                "20",
                &command,
            ],
        );
        pane_shows(&socket, "done");
        let pane = tmux(&socket, &["capture-pane", "-e", "-p", "-t", "t"]);
        tmux(&socket, &["kill-server"]);
        assert!(pane.contains("bits/char"), "{pane}");
        assert_eq!(pane.contains("\x1b[48;5;"), coloured, "{env:?}: {pane:?}");
    }
}
