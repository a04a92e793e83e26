//! Every checkpoint format version charrnn ever wrote (tests/fixtures/checkpoints,
//! written by the releases themselves) loads, samples as it did, and resumes.

use std::path::{Path, PathBuf};

use crate::common::{charrnn, stderr, stdout};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoints")
}

const NAMES: [&str; 7] = [
    "v2-rnn", "v2-lstm", "v3-rnn", "v3-lstm", "v4-rnn", "v4-lstm", "v4-gru",
];

#[test]
fn every_version_loads_and_samples_as_the_release_that_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    for name in NAMES {
        let file = fixtures().join(format!("{name}.ckpt"));
        let version: u32 = name[1..2].parse().unwrap();
        assert_eq!(
            charrnn::train::checkpoint::file_version(&file),
            Some(version)
        );
        let out = charrnn(dir.path())
            .args(["sample", "--checkpoint"])
            .arg(&file)
            .args(["--seed", "Th", "-n", "120", "--rng-seed", "5"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let want = std::fs::read_to_string(fixtures().join(format!("{name}.sample.txt"))).unwrap();
        assert_eq!(stdout(&out), want, "{name}");
    }
}

#[test]
fn older_versions_migrate_to_the_state_version_4_holds() {
    use charrnn::train::checkpoint::{self, AnyState};
    for cell in ["rnn", "lstm"] {
        let load =
            |v: u32| checkpoint::load(&fixtures().join(format!("v{v}-{cell}.ckpt"))).unwrap();
        let same = |a: AnyState, b: AnyState, what: &str| match (a, b) {
            (AnyState::F64(mut a), AnyState::F64(b)) => {
                (a.session, a.recent, a.recent_since, a.elapsed_s) =
                    (b.session.clone(), b.recent, b.recent_since, b.elapsed_s);
                assert!(a == b, "{cell}: {what}");
            }
            (AnyState::F32(mut a), AnyState::F32(b)) => {
                (a.session, a.recent, a.recent_since, a.elapsed_s) =
                    (b.session.clone(), b.recent, b.recent_since, b.elapsed_s);
                assert!(a == b, "{cell}: {what}");
            }
            _ => panic!("{cell}: precisions differ"),
        };
        // the same run written three ways: all but what each version lacked agrees
        same(load(2), load(4), "v2 against v4");
        same(load(3), load(4), "v3 against v4");
        charrnn::with_state!(load(2), s => {
            assert_eq!(s.session, charrnn::train::Session::default(), "v2 has today's defaults");
            assert!(s.recent_since == s.iteration && s.recent_loss().is_none());
            assert!(s.rate.is_plain_step() && s.ema.is_none(), "it trains as it did");
        });
        charrnn::with_state!(load(3), s => {
            assert_eq!(s.session.log_every, 0, "v3 kept its session");
            assert!(s.recent_loss().is_some());
        });
    }
    // a v4 file written today is byte for byte the file loaded
    let file = fixtures().join("v4-gru.ckpt");
    let bytes = std::fs::read(&file).unwrap();
    charrnn::with_state!(checkpoint::load(&file).unwrap(), s => {
        assert!(s.ema.is_some() && s.rate.warmup == 5 && s.hyper.weight_decay == 0.01);
        assert_eq!(checkpoint::encode(&s), bytes);
    });
}

#[test]
fn every_version_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for cell in ["rnn", "lstm"] {
        let mut weights = Vec::new();
        for v in 2..=4 {
            let ckpt = format!("v{v}-{cell}.ckpt");
            std::fs::copy(fixtures().join(&ckpt), d.join(&ckpt)).unwrap();
            let s = charrnn::train::checkpoint::load(&d.join(&ckpt)).unwrap();
            let iters = charrnn::with_state!(&s, s => s.iteration) + 10;
            let out = charrnn(d)
                .args(["train", "--resume", "--checkpoint", &ckpt, "--iters"])
                .arg(iters.to_string())
                .args(["--sample-every", "0", "--log-every", "0"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{ckpt}: {}", stderr(&out));
            let s = charrnn::train::checkpoint::load(&d.join(&ckpt)).unwrap();
            weights.push(charrnn::with_state!(s, s => {
                assert_eq!(s.iteration, iters);
                s.model.params.iter().map(|w| w.to_string()).collect::<Vec<_>>()
            }));
        }
        assert!(weights.iter().all(|w| *w == weights[0]), "{cell}");
    }
}
