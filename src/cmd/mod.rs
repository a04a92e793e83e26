//! One file per subcommand: its flags and the glue between the library and the terminal.

pub mod eval;
pub mod export;
pub mod info;
pub mod interactive;
pub mod plot;
pub mod prepare;
pub mod prime;
pub mod sample;
pub mod score;
pub mod signals;
pub mod train;
pub mod visualize;

use std::fmt;

/// A problem with how the command was invoked (exit code 2, like clap's own errors).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Work stopped by a signal before it produced anything (exit code 128 + the
/// signal's number, as a shell reports it: 130 for Ctrl+C).
#[derive(Debug)]
pub struct Interrupted {
    pub message: String,
    pub signal: i32,
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Interrupted {}

pub fn exit_code(err: &anyhow::Error) -> i32 {
    let setup_usage = |e: &(dyn std::error::Error + 'static)| {
        e.downcast_ref::<charrnn::train::SetupError>()
            .is_some_and(charrnn::train::SetupError::is_usage)
    };
    if err.chain().any(|e| e.is::<UsageError>() || setup_usage(e)) {
        2
    } else if let Some(i) = err.chain().find_map(|e| e.downcast_ref::<Interrupted>()) {
        signals::exit_code(i.signal)
    } else {
        1
    }
}

pub use charrnn::flags::{decay_factor, positive_float, positive_int};

pub use charrnn::memory::MemoryFlag;

/// Refuses (a usage error, exit 2) what would not fit in the memory limit.
pub fn check_memory(
    estimate: &charrnn::memory::Estimate,
    max_memory: Option<u128>,
) -> anyhow::Result<()> {
    charrnn::memory::check(estimate, max_memory).map_err(usage)
}

/// Checks, before reading it, that a checkpoint can be loaded in the memory limit.
pub fn check_checkpoint_memory(
    path: &std::path::Path,
    max_memory: Option<u128>,
) -> anyhow::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) => check_memory(&charrnn::memory::loading(m.len()), max_memory),
        Err(_) => Ok(()), // loading reports the missing file
    }
}
