//! The loss-history CSV reader (used by `plot` and `train --resume`) on
//! arbitrary bytes, with and without a valid header line.
#![no_main]

use std::path::Path;

use charrnn::train::history::{self, HEADER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.csv");
    let _ = history::parse(path, data);
    let mut file = format!("{HEADER}\n").into_bytes();
    file.extend_from_slice(data);
    if let Ok(rows) = history::parse(path, &file) {
        let _ = charrnn::io::plot::terminal(&rows, 40, 8);
    }
});
