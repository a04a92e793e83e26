//! Every input in fuzz/seeds (the fuzzers' seeds, and any input a fuzzer once
//! crashed on) through the same entry points as the fuzz targets in fuzz/: each
//! must give a value or an error, never a panic. Run the fuzzers with fuzz/run.sh.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use charrnn::io::corpus::{self, Source};
use charrnn::io::data::{Text, Vocab};
use charrnn::io::prepare::stackexchange::{self, Filter};
use charrnn::train::checkpoint::{self, HEADER_LEN, MAGIC};
use charrnn::train::history::{self, HEADER};

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect()
}

#[test]
fn checkpoint_seeds() {
    for (path, data) in seeds("checkpoint") {
        let whole = checkpoint::decode(&path, &data);
        let mut file = MAGIC.to_vec();
        // the seeds' payloads are version 2's (what loads as version 2 must stay so)
        file.extend_from_slice(&2u32.to_le_bytes());
        file.extend_from_slice(&(data.len() as u64).to_le_bytes());
        file.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&data).to_le_bytes());
        file.extend_from_slice(&data);
        let wrapped = checkpoint::decode(&path, &file);
        // the real checkpoints among the seeds load, as files and as payloads
        let name = path.file_name().unwrap().to_string_lossy();
        if name.ends_with(".ckpt") {
            assert!(whole.is_ok(), "{name}: {:?}", whole.err());
            // format 2: today's session defaults, and a recent loss from its last iteration on
            charrnn::with_state!(whole.as_ref().unwrap(), s => {
                assert_eq!(s.session, charrnn::train::Session::default(), "{name}");
                assert!(s.rate.is_plain_step() && s.hyper.weight_decay == 0.0, "{name}: trains as it did");
                assert!(s.recent_since == s.iteration && s.recent_loss().is_none(), "{name}");
            });
            assert!(data.len() > HEADER_LEN as usize);
        }
        if name.ends_with(".payload") {
            assert!(wrapped.is_ok(), "{name}: {:?}", wrapped.err());
        }
    }
}

#[test]
fn history_seeds() {
    for (path, data) in seeds("history") {
        let _ = history::parse(&path, &data);
        let mut file = format!("{HEADER}\n").into_bytes();
        file.extend_from_slice(&data);
        if let Ok(rows) = history::parse(&path, &file) {
            let _ = charrnn::io::plot::terminal(&rows, 40, 8);
        }
    }
}

#[test]
fn text_seeds() {
    for (path, data) in seeds("text") {
        let source = Source::Bytes {
            name: path.display().to_string(),
            bytes: data.clone().into(),
        };
        let scan = match corpus::scan(source) {
            Ok(scan) => scan,
            Err(e) => {
                assert!(
                    std::str::from_utf8(&data).is_err() || data.is_empty(),
                    "{}: {e}",
                    path.display()
                );
                continue;
            }
        };
        let (vocab, _) = scan.vocab(None);
        let ids = scan.encode(&vocab, false).unwrap();
        assert_eq!(ids.len() as u64, scan.info.chars);
        let (small, folded) = scan.vocab(Some(3));
        assert!(folded.is_none() || scan.encode(&small, true).is_ok());
        let text = Text::from_bytes(path.display().to_string(), data.clone()).unwrap();
        assert_eq!(Vocab::from_text(&text.content), vocab);
        assert_eq!(vocab.encode(&text).unwrap(), ids.as_slice().to_vec());
        let half: String = vocab.chars().iter().step_by(2).collect();
        let (known, unknown) = scan.encode_known(&Vocab::from_text(&half)).unwrap();
        assert_eq!(known.len() + unknown.count, ids.len());
    }
}

#[test]
fn posts_seeds() {
    let dir = tempfile::tempdir().unwrap();
    for (path, _) in seeds("posts") {
        let filter = Filter {
            max_posts: Some(50),
            min_score: None,
            tags: vec![],
        };
        let mut out = Vec::new();
        let stop = AtomicBool::new(false);
        let result =
            stackexchange::prepare(&path, &mut out, &filter, dir.path(), 64, &|_| {}, &stop);
        if path.extension().is_some_and(|e| e == "xml") {
            assert!(result.is_ok(), "{}: {:?}", path.display(), result.err());
        }
    }
}
