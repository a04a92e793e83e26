//! Checkpoint files: the whole [`TrainState`], versioned, checksummed, and
//! replaced atomically.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "CHARRNN\0"
//!      8     4  format version, u32 little-endian
//!     12     8  payload length in bytes, u64 little-endian
//!     20     8  xxh3-64 of the payload, u64 little-endian
//!     28     n  payload, bincode 2 (standard config, serde): the precision
//!                (Precision: 0 = f32, 1 = f64), then the state of that version
//! ```
//! Each version the product ever wrote has its own payload type, in its own
//! module: [`v2`], [`v3`], [`v4`] (the one written today). An older payload is
//! decoded as its own type and migrated forward one version at a time by a
//! `From` impl (v2 -> v3 -> v4), then mapped to the in-memory [`TrainState`],
//! whose shape is free to change. Loading checks each of these in order and
//! reports the first that fails, so a truncated, damaged or foreign file gives
//! a message and never a panic or a large allocation.

pub mod v2;
pub mod v3;
pub mod v4;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::io::fsutil;
use crate::linalg::{Precision, Real};
use crate::train::TrainState;

pub const MAGIC: [u8; 8] = *b"CHARRNN\0";
pub const VERSION: u32 = 4;

/// The oldest format this charrnn reads: version 2, which had no session
/// settings and no plan (they load as today's defaults).
pub const OLDEST: u32 = 2;

/// A checkpoint's training state in whichever precision it was trained.
#[derive(Debug)]
pub enum AnyState {
    F32(TrainState<f32>),
    F64(TrainState<f64>),
}

/// Evaluates `$body` with `$s` bound to the [`TrainState`] inside an [`AnyState`],
/// whatever its precision: `with_state!(any, s => describe(&s))`.
#[macro_export]
macro_rules! with_state {
    ($any:expr, $s:ident => $body:expr) => {
        match $any {
            $crate::train::checkpoint::AnyState::F32($s) => $body,
            $crate::train::checkpoint::AnyState::F64($s) => $body,
        }
    };
}
pub const HEADER_LEN: u64 = 28;

/// Ceiling on what the decoder may claim, far above any real model; the payload
/// length was already checked against the file, this only bounds a crafted one.
const DECODE_LIMIT: usize = 1 << 34;

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("reading checkpoint {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("writing checkpoint {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("reading checkpoint {path}: not a charrnn checkpoint ({reason})")]
    Foreign { path: PathBuf, reason: String },
    #[error(
        "reading checkpoint {path}: format version {found}, but this charrnn reads versions {OLDEST} to {VERSION}; \
         use the charrnn release that wrote it"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("reading checkpoint {path}: file is truncated at byte {have} of {need}")]
    Truncated { path: PathBuf, have: u64, need: u64 },
    #[error("reading checkpoint {path}: file is corrupted ({reason})")]
    Corrupt { path: PathBuf, reason: String },
    #[error("checkpoint {path} cannot be written: {cause}")]
    NotWritable {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// The bytes of a checkpoint file (the current version, [`v4`]).
pub fn encode<T: Real>(state: &TrainState<T>) -> Vec<u8> {
    let payload = bincode::serde::encode_to_vec(
        (T::PRECISION, v4::State::from(state)),
        bincode::config::standard(),
    )
    .expect("TrainState always encodes");
    let mut out = Vec::with_capacity(HEADER_LEN as usize + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Writes atomically: the previous checkpoint survives a crash or kill at any moment.
pub fn save<T: Real>(path: &Path, state: &TrainState<T>) -> Result<u64, CheckpointError> {
    let bytes = encode(state);
    fsutil::write_atomic(path, &bytes).map_err(|cause| CheckpointError::Write {
        path: path.into(),
        cause,
    })?;
    Ok(bytes.len() as u64)
}

/// Fails early (before training) if the checkpoint could not be written later.
pub fn check_writable(path: &Path) -> Result<(), CheckpointError> {
    fsutil::check_writable(path).map_err(|cause| CheckpointError::NotWritable {
        path: path.into(),
        cause,
    })
}

pub fn load(path: &Path) -> Result<AnyState, CheckpointError> {
    let read_err = |cause| CheckpointError::Read {
        path: path.into(),
        cause,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let file_len = file.metadata().map_err(read_err)?.len();
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    (&mut file)
        .take(HEADER_LEN)
        .read_to_end(&mut header)
        .map_err(read_err)?;
    let payload_len = check_header(path, &header, file_len)?;
    let mut payload = Vec::with_capacity(payload_len as usize);
    file.take(payload_len)
        .read_to_end(&mut payload)
        .map_err(read_err)?;
    if (payload.len() as u64) < payload_len {
        return Err(CheckpointError::Truncated {
            path: path.into(),
            have: HEADER_LEN + payload.len() as u64,
            need: HEADER_LEN + payload_len,
        });
    }
    decode_payload(path, &header, &payload)
}

/// Decodes a whole checkpoint held in memory.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<AnyState, CheckpointError> {
    let header = &bytes[..bytes.len().min(HEADER_LEN as usize)];
    check_header(path, header, bytes.len() as u64)?;
    decode_payload(path, header, &bytes[HEADER_LEN as usize..])
}

/// Checks magic, version and length; returns the payload length.
fn check_header(path: &Path, header: &[u8], file_len: u64) -> Result<u64, CheckpointError> {
    let magic_len = header.len().min(MAGIC.len());
    if header[..magic_len] != MAGIC[..magic_len] || header.is_empty() {
        let reason = if header.is_empty() {
            "the file is empty".to_string()
        } else if header.starts_with(b"PK") {
            "it is a zip archive, perhaps an .npz: start from NumPy weights with `train --init-npz`"
                .to_string()
        } else {
            let shown: Vec<String> = header[..magic_len]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("it starts with bytes {}, not \"CHARRNN\"", shown.join(" "))
        };
        return Err(CheckpointError::Foreign {
            path: path.into(),
            reason,
        });
    }
    if (header.len() as u64) < HEADER_LEN {
        return Err(CheckpointError::Truncated {
            path: path.into(),
            have: file_len,
            need: HEADER_LEN,
        });
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if !(OLDEST..=VERSION).contains(&version) {
        return Err(CheckpointError::Version {
            path: path.into(),
            found: version,
        });
    }
    let payload_len = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    let need = HEADER_LEN
        .checked_add(payload_len)
        .ok_or_else(|| CheckpointError::Corrupt {
            path: path.into(),
            reason: format!("payload length {payload_len} is impossible"),
        })?;
    if file_len < need {
        return Err(CheckpointError::Truncated {
            path: path.into(),
            have: file_len,
            need,
        });
    }
    if file_len > need {
        return Err(CheckpointError::Corrupt {
            path: path.into(),
            reason: format!("{} bytes after the {need}-byte checkpoint", file_len - need),
        });
    }
    Ok(payload_len)
}

fn decode_payload(path: &Path, header: &[u8], payload: &[u8]) -> Result<AnyState, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt {
        path: path.into(),
        reason,
    };
    let want = u64::from_le_bytes(header[20..28].try_into().expect("8 bytes"));
    if xxhash_rust::xxh3::xxh3_64(payload) != want {
        return Err(corrupt(
            "checksum mismatch: the file was damaged or edited after it was written".into(),
        ));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    let undecodable = |e: bincode::error::DecodeError| corrupt(format!("undecodable: {e}"));
    let (precision, used): (Precision, usize) =
        bincode::serde::decode_from_slice(payload, config).map_err(undecodable)?;
    let rest = &payload[used..];
    let (any, used_state) = match precision {
        Precision::F32 => state::<f32>(version, rest).map(|(s, n)| (AnyState::F32(s), n)),
        Precision::F64 => state::<f64>(version, rest).map(|(s, n)| (AnyState::F64(s), n)),
    }
    .map_err(undecodable)?;
    if used_state != rest.len() {
        return Err(corrupt(format!(
            "{} unread bytes at the end of the payload",
            rest.len() - used_state
        )));
    }
    crate::with_state!(&any, s => s.validate()).map_err(corrupt)?;
    Ok(any)
}

/// A payload of format `version` (after the precision), decoded as that version's
/// type and migrated to today's; with the bytes it used.
fn state<T: Real>(
    version: u32,
    bytes: &[u8],
) -> Result<(TrainState<T>, usize), bincode::error::DecodeError> {
    fn decode<S: serde::de::DeserializeOwned>(
        bytes: &[u8],
    ) -> Result<(S, usize), bincode::error::DecodeError> {
        bincode::serde::decode_from_slice(
            bytes,
            bincode::config::standard().with_limit::<DECODE_LIMIT>(),
        )
    }
    let (v4, used): (v4::State<'static, T>, usize) = match version {
        2 => decode::<v2::State<T>>(bytes).map(|(s, n)| (v3::State::from(s).into(), n))?,
        3 => decode::<v3::State<T>>(bytes).map(|(s, n)| (s.into(), n))?,
        _ => decode::<v4::State<'static, T>>(bytes)?,
    };
    Ok((v4.into(), used))
}

/// [`load`] for a command that only predicts: the averaged weights (`--ema`) in
/// place of the raw ones.
pub fn load_for_use(path: &Path) -> Result<AnyState, CheckpointError> {
    let mut any = load(path)?;
    crate::with_state!(&mut any, s => s.use_average());
    Ok(any)
}

/// The format version in a checkpoint's header, if it has one.
pub fn file_version(path: &Path) -> Option<u32> {
    let mut header = [0u8; 12];
    File::open(path).ok()?.read_exact(&mut header).ok()?;
    (header[..8] == MAGIC).then(|| u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")))
}
