//! Training N iterations straight and training N/2, then resuming for N/2 more,
//! give bit-identical weights, optimizer state, hidden state, RNG states, loss
//! history rows and printed samples.

use std::path::Path;

use crate::common::*;
use charrnn::linalg::Real;
use charrnn::train::TrainState;

const FLAGS: &[&str] = &[
    "--data",
    "t.txt",
    "--rng-seed",
    "5",
    "--log-every",
    "1",
    "--checkpoint-every",
    "100",
];

fn train(dir: &Path, ckpt: &str, csv: &str, iters: u64, extra: &[&str]) -> String {
    let out = charrnn(dir)
        .args([
            "train",
            "--checkpoint",
            ckpt,
            "--loss-csv",
            csv,
            "--iters",
            &iters.to_string(),
        ])
        .args(FLAGS)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// The deterministic columns: iteration, loss, smooth_loss, val_loss (not speed or time).
fn loss_rows(path: &Path) -> Vec<Vec<String>> {
    csv_rows(path)
        .into_iter()
        .map(|r| [&r[..3], &r[5..]].concat())
        .collect()
}

fn same_run<T: Real>(a: &TrainState<T>, b: &TrainState<T>) {
    // bit-for-bit (f32 -> f64 is exact, so comparing the f64 bits is exact too)
    let bits = |s: &TrainState<T>| {
        s.model
            .params
            .iter()
            .map(|x| x.as_f64().to_bits())
            .collect::<Vec<_>>()
    };
    assert!(bits(a) == bits(b), "weights differ");
    let (mut a, mut b) = (a.clone(), b.clone());
    a.elapsed_s = 0.0;
    b.elapsed_s = 0.0;
    assert_eq!(a, b);
}

/// `flags` fix the run (given once); `eval_every` is a per-session cadence like
/// --log-every, so both sessions get it.
fn straight_vs_resumed(precision: &str, flags: &[&str], eval_every: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    let session = ["--keep-best", "--eval-every", eval_every];
    let flags = [flags, &["--precision", precision], &session].concat();

    let straight = train(d, "a.ckpt", "a.csv", 600, &flags);
    let first = train(d, "b.ckpt", "b.csv", 300, &flags);
    let second = train(
        d,
        "b.ckpt",
        "b.csv",
        600,
        &[&["--resume"][..], &session].concat(),
    );

    let (a, b) = (loss_rows(&d.join("a.csv")), loss_rows(&d.join("b.csv")));
    assert!(a.len() >= 600);
    if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        panic!(
            "{flags:?}: loss histories differ first at row {}: {:?} vs {:?}",
            i + 1,
            a.get(i),
            b.get(i)
        );
    }
    // the samples printed along the way are the same too (the sample RNG is restored)
    assert_eq!(straight, format!("{first}{second}"), "{flags:?}");
    for (a, b) in [("a.ckpt", "b.ckpt"), ("a.best.ckpt", "b.best.ckpt")] {
        if !d.join(a).exists() {
            continue; // no validation, no best checkpoint
        }
        if precision == "f64" {
            same_run(&load_f64(&d.join(a)), &load_f64(&d.join(b)));
        } else {
            same_run(&load_f32(&d.join(a)), &load_f32(&d.join(b)));
        }
    }
}

#[test]
fn resume_is_bit_exact_for_the_default_in_f64_and_f32() {
    straight_vs_resumed("f64", &[], "1000");
    straight_vs_resumed("f32", &[], "1000");
}

#[test]
fn resume_is_bit_exact_for_lstm_adam_batches_dropout_and_validation() {
    let lstm = [
        "--cell",
        "lstm",
        "--layers",
        "2",
        "--embedding-size",
        "8",
        "--hidden-size",
        "16",
        "--seq-length",
        "10",
        "--batch-size",
        "3",
        "--optimizer",
        "adam",
        "--dropout",
        "0.2",
        "--val-fraction",
        "0.1",
    ];
    straight_vs_resumed("f32", &lstm, "50");
}

#[test]
fn resume_is_bit_exact_for_gru_rmsprop_norm_clipping_and_lr_decay() {
    // 5700 training characters (5% held out) in 2 streams of 2850: the next chunk
    // stops fitting after 113 chunks of 25, so an epoch ends every 113 iterations
    let gru = [
        "--cell",
        "gru",
        "--hidden-size",
        "16",
        "--batch-size",
        "2",
        "--optimizer",
        "rmsprop",
        "--clip-norm",
        "1",
        "--lr-decay",
        "0.9",
        "--lr-decay-after",
        "1",
        "--val-fraction",
        "0.05",
    ];
    straight_vs_resumed("f64", &gru, "100");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.txt", small_text());
    train(dir.path(), "g.ckpt", "g.csv", 600, &gru);
    let s = load_f32(&dir.path().join("g.ckpt")); // GRU defaults to f32
    assert_eq!(s.epoch, 5, "600 iterations of 113 per epoch");
    assert!(
        (s.rate.stepped - 2e-3 * 0.9f64.powi(5)).abs() < 1e-15,
        "decayed after epochs 1-5: {}",
        s.rate.stepped
    );
}

#[test]
fn resume_is_bit_exact_for_cosine_and_linear_schedules_warmup_and_adamw() {
    // --decay-iters fixes the schedule's length whatever each session's --iters
    let adamw = [
        "--optimizer",
        "adam",
        "--lr-schedule",
        "cosine",
        "--warmup",
        "50",
        "--min-lr",
        "1e-4",
        "--decay-iters",
        "600",
        "--weight-decay",
        "0.1",
        "--ema",
        "0.99",
    ];
    straight_vs_resumed("f64", &adamw, "1000");
    let lstm = [
        "--cell",
        "lstm",
        "--embedding-size",
        "8",
        "--hidden-size",
        "16",
        "--batch-size",
        "2",
        "--lr-schedule",
        "linear",
        "--decay-iters",
        "600",
        "--weight-decay",
        "0.01",
        "--ema",
        "0.9",
        "--val-fraction",
        "0.1",
    ];
    straight_vs_resumed("f32", &lstm, "100");
}

#[test]
fn a_schedule_changes_the_run_and_weight_decay_shrinks_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    let adam = ["--optimizer", "adam", "--sample-every", "0"];
    train(d, "plain.ckpt", "plain.csv", 300, &adam);
    let cosine = [&adam[..], &["--lr-schedule", "cosine", "--min-lr", "0"]].concat();
    train(d, "cos.ckpt", "cos.csv", 300, &cosine);
    let decayed = [&adam[..], &["--weight-decay", "0.5"]].concat();
    train(d, "wd.ckpt", "wd.csv", 300, &decayed);
    let (plain, cos, wd) = (
        load_f64(&d.join("plain.ckpt")),
        load_f64(&d.join("cos.ckpt")),
        load_f64(&d.join("wd.ckpt")),
    );
    assert_eq!(cos.rate.total, Some(300), "--iters gives the length");
    // at the end of its decay the rate is --min-lr, and info says so
    let info = |ckpt: &str| {
        let out = charrnn(d)
            .args(["info", "--checkpoint", ckpt])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let (cos_info, plain_info) = (info("cos.ckpt"), info("plain.ckpt"));
    assert!(
        cos_info.contains("learning_rate 0.002 (now 0.0)"),
        "{cos_info}"
    );
    assert!(
        plain_info.contains("learning_rate 0.002 (now 0.002)"),
        "{plain_info}"
    );
    assert_ne!(plain.model.params, cos.model.params);
    let norm = |s: &TrainState<f64>| s.model.params.iter().map(|w| w * w).sum::<f64>().sqrt();
    assert!(
        norm(&wd) < norm(&plain),
        "{} vs {}",
        norm(&wd),
        norm(&plain)
    );
}

#[test]
fn the_average_of_the_weights_is_what_the_commands_predict_with() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    train(
        d,
        "e.ckpt",
        "e.csv",
        200,
        &["--ema", "0.9", "--sample-every", "0"],
    );
    let s = load_f64(&d.join("e.ckpt"));
    let ema = s.ema.as_ref().expect("--ema keeps an average");
    assert_eq!(ema.steps, 200);
    let averaged = ema.averaged().unwrap();
    assert_ne!(
        averaged, s.model.params,
        "the raw weights are kept beside it"
    );
    let out = charrnn(d)
        .args(["export", "--checkpoint", "e.ckpt", "-o", "w.npz"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let exported = charrnn::io::npz::import::<f64>(&d.join("w.npz"), s.model.config).unwrap();
    assert_eq!(
        exported.params, averaged,
        "export (like eval, sample, score, visualize) uses the average"
    );
    let out = charrnn(d)
        .args(["info", "--checkpoint", "e.ckpt"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("EMA decay 0.9 over 200 updates"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_time_limited_schedule_fixes_its_length_once_and_resumes_as_if_given_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    // the length is fixed from the speed over 4%..10% of the budget, inside a
    // warmup of 4500 iterations where cosine has not moved yet: the same curve as
    // a run told that length from the start. 10 s is about 13,000 iterations
    // alone on the development machine (CI under load was 2x slower), so the
    // length is fixed inside warmup and lies past it unless the machine is 3.5x
    // faster or 2.8x slower
    let common = ["--data", "t.txt", "--rng-seed", "5", "--sample-every", "0"];
    let plan = [
        "--lr-schedule",
        "cosine",
        "--warmup",
        "4500",
        "--min-lr",
        "1e-3",
    ];
    let run = |ckpt: &str, extra: &[&str]| {
        let out = charrnn(d)
            .args([
                "train",
                "--checkpoint",
                ckpt,
                "--loss-csv",
                &format!("{ckpt}.csv"),
            ])
            .args(common)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let mut printed = run("a.ckpt", &[&plan[..], &["--max-time", "10s"]].concat());
    if load_f64(&d.join("a.ckpt"))
        .rate
        .total
        .is_none_or(|n| n <= 4500)
    {
        // a machine so loaded that warmup outlasted the run: once more, longer
        let longer = ["--max-time", "60s", "--force"];
        printed = run("a.ckpt", &[&plan[..], &longer].concat());
    }
    let a = load_f64(&d.join("a.ckpt"));
    let total = a.rate.total.expect("the length is recorded");
    assert!(total > 4500, "{printed}");
    assert!(
        printed.contains(&format!("decays over {total} iterations")),
        "{printed}"
    );
    // it stops at that length (or, on a slowed machine, at the time limit first)
    assert!(a.iteration <= total);
    let total_s = total.to_string();
    if a.iteration < total {
        run("a.ckpt", &["--resume", "--iters", &total_s]);
    }
    run(
        "b.ckpt",
        &[&plan[..], &["--decay-iters", &total_s, "--iters", &total_s]].concat(),
    );
    same_run(&load_f64(&d.join("a.ckpt")), &load_f64(&d.join("b.ckpt")));
}

#[test]
fn schedule_flags_that_cannot_work_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = charrnn(d).arg("train").args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        stderr(&out)
    };
    assert!(
        run(&["--lr-schedule", "cosine"])
            .contains("give its length with --iters, --max-time or --decay-iters")
    );
    assert!(
        run(&["--min-lr", "0.01", "--iters", "5"])
            .contains("are for --lr-schedule cosine or linear")
    );
    assert!(
        run(&["--lr-schedule", "linear", "--min-lr", "1", "--iters", "5"])
            .contains("above the learning rate")
    );
    assert!(run(&["--weight-decay", "-1"]).contains("at least 0"));
    assert!(
        run(&[
            "--lr-schedule",
            "cosine",
            "--iters",
            "5",
            "--lr-decay",
            "0.9"
        ])
        .contains("are for --lr-schedule step")
    );
    // a resumed run's plan is its own
    let out = charrnn(d)
        .args([
            "train",
            "--iters",
            "20",
            "--sample-every",
            "0",
            "--lr-schedule",
            "linear",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let e = run(&["--resume", "--iters", "40", "--weight-decay", "0.1"]);
    assert!(e.contains("--weight-decay 0.1 (checkpoint has 0)"), "{e}");
}

#[test]
fn a_version_3_checkpoint_loads_with_the_default_plan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = charrnn(d)
        .args(["train", "--iters", "30", "--sample-every", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v4 = std::fs::read(d.join("charrnn.ckpt")).unwrap();
    // version 3 is version 4 without the plan and the average, the fields before the last 8 bytes
    let plan = bincode::serde::encode_to_vec(
        (charrnn::train::checkpoint::v4::Plan::default(), None::<()>),
        bincode::config::standard(),
    )
    .unwrap();
    let payload = &v4[28..];
    let cut = payload.len() - 8 - plan.len();
    assert_eq!(&payload[cut..payload.len() - 8], &plan[..]);
    let v3_payload = [&payload[..cut], &payload[payload.len() - 8..]].concat();
    let mut v3 = v4[..8].to_vec();
    v3.extend_from_slice(&3u32.to_le_bytes());
    v3.extend_from_slice(&(v3_payload.len() as u64).to_le_bytes());
    v3.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&v3_payload).to_le_bytes());
    v3.extend_from_slice(&v3_payload);
    let (a, b) = (
        charrnn::train::checkpoint::decode(Path::new("v3"), &v3).unwrap(),
        charrnn::train::checkpoint::decode(Path::new("v4"), &v4).unwrap(),
    );
    match (a, b) {
        (
            charrnn::train::checkpoint::AnyState::F64(a),
            charrnn::train::checkpoint::AnyState::F64(b),
        ) => {
            assert_eq!(a, b)
        }
        _ => panic!("the default model is f64"),
    }
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
        .args([
            "train",
            "--checkpoint",
            "b.ckpt",
            "--loss-csv",
            "b.csv",
            "--iters",
            "400",
            "--resume",
        ])
        .args(FLAGS)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dropped 101 row(s) of b.csv logged after iteration 200"),
        "{}",
        stderr(&out)
    );
    assert_eq!(loss_rows(&d.join("a.csv")), loss_rows(&d.join("b.csv")));
    same_run(&load_f64(&d.join("a.ckpt")), &load_f64(&d.join("b.ckpt")));
}

/// The split of the streams into parts is fixed when a run starts, so resuming on
/// fewer threads (another machine, say) continues bit-exactly.
#[test]
fn resume_on_another_thread_count_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    let lstm = [
        "--cell",
        "lstm",
        "--hidden-size",
        "16",
        "--batch-size",
        "4",
        "--optimizer",
        "adam",
        "--dropout",
        "0.1",
    ];
    let straight = train(
        d,
        "a.ckpt",
        "a.csv",
        400,
        &[&lstm[..], &["--threads", "2"]].concat(),
    );
    let first = train(
        d,
        "b.ckpt",
        "b.csv",
        200,
        &[&lstm[..], &["--threads", "2"]].concat(),
    );
    let second = train(d, "b.ckpt", "b.csv", 400, &["--resume", "--threads", "1"]);
    assert_eq!(load_f32(&d.join("a.ckpt")).hyper.shares, 2);
    assert_eq!(loss_rows(&d.join("a.csv")), loss_rows(&d.join("b.csv")));
    assert_eq!(straight, format!("{first}{second}"));
    same_run(&load_f32(&d.join("a.ckpt")), &load_f32(&d.join("b.ckpt")));
}

/// A single stream on two threads trains bit-identically to one thread, and
/// resumes across the two: the default model (its phases split over the pair)
/// and one large enough that each step's product splits too (hidden 192 in f64:
/// a 288 KB Wh).
#[test]
fn two_threads_train_exactly_as_one() {
    for hidden in ["100", "192"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "t.txt", small_text());
        let rnn = ["--hidden-size", hidden, "--sample-every", "10"];
        let two = train(
            d,
            "a.ckpt",
            "a.csv",
            30,
            &[&rnn[..], &["--threads", "2"]].concat(),
        );
        let one = train(
            d,
            "b.ckpt",
            "b.csv",
            30,
            &[&rnn[..], &["--threads", "1"]].concat(),
        );
        let first = train(
            d,
            "c.ckpt",
            "c.csv",
            15,
            &[&rnn[..], &["--threads", "2"]].concat(),
        );
        let second = train(
            d,
            "c.ckpt",
            "c.csv",
            30,
            &["--resume", "--threads", "1", "--sample-every", "10"],
        );
        assert_eq!(two, one, "hidden {hidden}");
        assert_eq!(two, format!("{first}{second}"), "hidden {hidden}");
        same_run(&load_f64(&d.join("a.ckpt")), &load_f64(&d.join("b.ckpt")));
        same_run(&load_f64(&d.join("a.ckpt")), &load_f64(&d.join("c.ckpt")));
        assert_eq!(loss_rows(&d.join("a.csv")), loss_rows(&d.join("b.csv")));
    }
}

/// The session settings (cadences of samples, logging, validation and saves, and
/// --keep-best) are the run's: a run cut at arbitrary iterations and resumed
/// with no flags at all logs, validates and saves as the straight run does, for
/// several configurations. A flag given on resume overrides the stored setting
/// and the banner says so.
#[test]
fn a_resumed_run_keeps_its_session_settings() {
    let configs: [&[&str]; 3] = [
        &[
            "--val-fraction",
            "0.1",
            "--eval-every",
            "37",
            "--log-every",
            "7",
            "--checkpoint-every",
            "50",
        ],
        &[
            "--cell",
            "lstm",
            "--hidden-size",
            "24",
            "--batch-size",
            "4",
            "--dropout",
            "0.1",
            "--val-fraction",
            "0.2",
            "--eval-every",
            "23",
            "--log-every",
            "3",
            "--keep-best",
            "--sample-every",
            "40",
            "--sample-len",
            "30",
        ],
        &[
            "--cell",
            "gru",
            "--optimizer",
            "rmsprop",
            "--hidden-size",
            "20",
            "--log-every",
            "1",
            "--checkpoint-every",
            "0",
        ],
    ];
    // cut points drawn once from a fixed generator, so a failure repeats
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |below: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        1 + x % (below - 1)
    };
    for (i, flags) in configs.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "t.txt", small_text());
        let run = |ckpt: &str, csv: &str, iters: u64, extra: &[&str]| {
            let out = charrnn(d)
                .args([
                    "train",
                    "--data",
                    "t.txt",
                    "--rng-seed",
                    "3",
                    "--checkpoint",
                    ckpt,
                    "--loss-csv",
                    csv,
                ])
                .args(["--iters", &iters.to_string()])
                .args(extra)
                .output()
                .unwrap();
            assert!(out.status.success(), "config {i}: {}", stderr(&out));
            (stdout(&out), stderr(&out))
        };
        let n = 160;
        let (straight_out, _) = run("a.ckpt", "a.csv", n, flags);
        let (k1, k2) = {
            let (a, b) = (next(n), next(n));
            (a.min(b), a.max(b).max(a.min(b) + 1).min(n - 1))
        };
        let (mut cut_out, _) = run("b.ckpt", "b.csv", k1, flags);
        for iters in [k2, n] {
            let (out, err) = run("b.ckpt", "b.csv", iters, &["--resume"]);
            assert!(
                !err.contains("this session:"),
                "config {i}: nothing was overridden: {err}"
            );
            cut_out += &out;
        }
        let what = format!("config {i}, cut at {k1} and {k2}");
        let (a, b) = (
            load_any_f64_bits(&d.join("a.ckpt")),
            load_any_f64_bits(&d.join("b.ckpt")),
        );
        assert!(a == b, "{what}: weights differ");
        assert_eq!(
            loss_rows(&d.join("a.csv")),
            loss_rows(&d.join("b.csv")),
            "{what}: loss history"
        );
        assert_eq!(straight_out, cut_out, "{what}: reports and samples");
        if flags.contains(&"--keep-best") {
            let best = |p: &str| load_any_f64_bits(&d.join(p));
            assert!(
                best("a.best.ckpt") == best("b.best.ckpt"),
                "{what}: best checkpoint"
            );
        }
    }
    // a flag on resume overrides the stored setting, and the banner says so
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.txt", small_text());
    let base = [
        "train",
        "--data",
        "t.txt",
        "--rng-seed",
        "3",
        "--log-every",
        "5",
        "--sample-every",
        "0",
    ];
    let out = charrnn(d)
        .args(base)
        .args(["--iters", "20"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = charrnn(d)
        .args([
            "train",
            "--resume",
            "--data",
            "t.txt",
            "--iters",
            "40",
            "--log-every",
            "2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("this session: --log-every 2 (the run had 5)"),
        "{}",
        stderr(&out)
    );
    let iterations: Vec<u64> = csv_rows(&d.join("loss_history.csv"))
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    let want: Vec<u64> = (5..=20).step_by(5).chain((22..=40).step_by(2)).collect();
    assert_eq!(iterations, want);
    // and the override is what the checkpoint holds from then on
    assert_eq!(load_f64(&d.join("charrnn.ckpt")).session.log_every, 2);
}

/// The weights of a checkpoint in either precision, as f64 bits.
fn load_any_f64_bits(path: &Path) -> Vec<u64> {
    charrnn::with_state!(charrnn::train::checkpoint::load(path).unwrap(), s => {
        s.model.params.iter().map(|x| x.as_f64().to_bits()).collect()
    })
}
