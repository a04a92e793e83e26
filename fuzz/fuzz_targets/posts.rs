//! The Stack Exchange Posts.xml reader on arbitrary bytes, with a sort buffer
//! small enough that the spill-and-merge path runs too.
#![no_main]

use std::sync::atomic::AtomicBool;

use charrnn::io::prepare::stackexchange::{self, Filter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("charrnn-fuzz-posts-{}.xml", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let filter = Filter { max_posts: Some(50), min_score: None, tags: vec![] };
    let mut out = Vec::new();
    let _ = stackexchange::prepare(&path, &mut out, &filter, &dir, 64, &|_| {}, &AtomicBool::new(false));
});
