//! The training-text loader and encoder on arbitrary bytes: UTF-8 validation
//! (with its line/column report), the vocabulary, and both encoders.
#![no_main]

use charrnn::data::{Text, Vocab};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = Text::from_bytes("fuzz.txt".into(), data.to_vec()) else { return };
    let vocab = Vocab::from_text(&text.content);
    let ids = vocab.encode(&text).expect("a text's own vocabulary encodes it");
    assert_eq!(ids.len(), text.content.chars().count());
    // a smaller vocabulary: every character outside it is reported, none panics
    let half: String = vocab.chars().iter().step_by(2).collect();
    let small = Vocab::from_text(&half);
    let _ = small.encode(&text);
    let (known, unknown) = small.encode_known(&text.content);
    assert_eq!(known.len() + unknown.count, ids.len());
});
