//! The training-text loader on arbitrary bytes: the streaming scan (UTF-8
//! check with its line/column report, counts, fingerprint), the vocabulary with
//! and without --max-vocab folding, the encode pass and the encode `eval` uses
//! (unknown characters skipped), checked against the in-memory encoder.
#![no_main]

use charrnn::io::corpus::{self, Source};
use charrnn::io::data::{Text, Vocab};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = Source::Bytes { name: "fuzz.txt".into(), bytes: data.to_vec().into() };
    let Ok(scan) = corpus::scan(source) else {
        assert!(std::str::from_utf8(data).is_err() || data.is_empty());
        return;
    };
    let (vocab, _) = scan.vocab(None);
    let ids = scan.encode(&vocab, false).expect("a text's own vocabulary encodes it");
    assert_eq!(ids.len() as u64, scan.info.chars);
    let (small, folded) = scan.vocab(Some(3));
    let folded_ids = scan.encode(&small, folded.is_some());
    assert!(folded.is_none() || folded_ids.is_ok());

    let text = Text::from_bytes("fuzz.txt".into(), data.to_vec()).expect("valid UTF-8");
    assert_eq!(Vocab::from_text(&text.content), vocab);
    assert_eq!(vocab.encode(&text).expect("encodes"), ids.as_slice().to_vec());
    let half: String = vocab.chars().iter().step_by(2).collect();
    let (known, unknown) = scan.encode_known(&Vocab::from_text(&half)).unwrap();
    assert_eq!(known.len() + unknown.count, ids.len());
});
