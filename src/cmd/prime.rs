//! What a prime held, told to the user: the error for a prime that cannot be
//! fed, and the note on what `--unknown skip` left out (for `sample` and its
//! interactive mode alike).

use charrnn::sample::{Primed, SampleError};

use super::usage;

/// A user-facing error for what a prime held.
pub fn prime_error(e: SampleError, source: &str) -> anyhow::Error {
    match e {
        SampleError::UnknownSeedChar { .. } | SampleError::BadUtf8 { .. } => {
            usage(format!("{source}: {e}"))
        }
        other => anyhow::Error::new(other).context(source.to_string()),
    }
}

/// Says on stderr what `--unknown skip` left out.
pub fn report_skipped(primed: &Primed, source: &str) {
    if let Some((ch, at)) = primed.first_skipped {
        eprintln!(
            "note: skipped {} character(s) of {source} not in the model's vocabulary \
             (first: {ch:?} (U+{:04X}) at character {at})",
            primed.skipped, ch as u32
        );
    }
}
