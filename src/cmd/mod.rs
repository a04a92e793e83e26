//! One file per subcommand: its flags and the glue between the library and the terminal.

pub mod eval;
pub mod export;
pub mod hyper;
pub mod info;
pub mod interactive;
pub mod plot;
pub mod prepare;
pub mod sample;
pub mod score;
pub mod signals;
pub mod train;
pub mod visualize;

use std::fmt;
use std::str::FromStr;

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
    if err.chain().any(|e| e.is::<UsageError>()) {
        2
    } else if let Some(i) = err.chain().find_map(|e| e.downcast_ref::<Interrupted>()) {
        signals::exit_code(i.signal)
    } else {
        1
    }
}

/// clap value parser: an integer of at least 1.
pub fn positive_int<T: FromStr + PartialOrd + From<u8>>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(v) if v >= T::from(1) => Ok(v),
        _ => Err(format!("must be a whole number of at least 1, got {s:?}")),
    }
}

/// clap value parser: a finite number greater than 0.
pub fn positive_float(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("must be a number greater than 0, got {s:?}")),
    }
}

/// clap value parser: a finite number of at least 0.
pub fn non_negative_float(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("must be a number of at least 0, got {s:?}")),
    }
}

/// clap value parser: a number in [0, 1).
pub fn unit_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "must be a number from 0 up to (not including) 1, got {s:?}"
        )),
    }
}

/// clap value parser: a number in (0, 1].
pub fn decay_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("must be a number above 0 and at most 1, got {s:?}")),
    }
}

/// The memory a command may use: `--max-memory`, else the machine's available
/// memory, with where the figure came from; None when neither is known.
pub fn memory_limit(max_memory: Option<u128>) -> Option<(u128, &'static str)> {
    match max_memory {
        Some(m) => Some((m, "--max-memory")),
        None => charrnn::memory::available().map(|a| (a, "MemAvailable")),
    }
}

/// Refuses (a usage error, exit 2) what would not fit in the memory limit.
pub fn check_memory(
    estimate: &charrnn::memory::Estimate,
    max_memory: Option<u128>,
) -> anyhow::Result<()> {
    match memory_limit(max_memory).and_then(|(limit, source)| estimate.refuse(limit, source)) {
        Some(message) => Err(usage(message)),
        None => Ok(()),
    }
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

/// The `--max-memory` flag every command that allocates takes.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct MemoryFlag {
    /// Refuse to start what would need more memory than SIZE (e.g. 512M, 4G) [default: the
    /// machine's available memory]
    #[arg(long, value_name = "SIZE", value_parser = charrnn::memory::parse_size)]
    pub max_memory: Option<u128>,
}
