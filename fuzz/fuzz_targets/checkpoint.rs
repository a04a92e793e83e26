//! The checkpoint loader on arbitrary bytes: as a whole file, and as a payload
//! behind a valid header (so the fuzzer gets past the checksum into bincode and
//! the state's validation). It must return an error, never panic or allocate
//! beyond what the input justifies.
#![no_main]

use std::path::Path;

use charrnn::train::checkpoint::{self, HEADER_LEN, MAGIC, VERSION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.ckpt");
    let _ = checkpoint::decode(path, data);
    let mut file = Vec::with_capacity(HEADER_LEN as usize + data.len());
    file.extend_from_slice(&MAGIC);
    file.extend_from_slice(&VERSION.to_le_bytes());
    file.extend_from_slice(&(data.len() as u64).to_le_bytes());
    file.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(data).to_le_bytes());
    file.extend_from_slice(data);
    let _ = checkpoint::decode(path, &file);
});
