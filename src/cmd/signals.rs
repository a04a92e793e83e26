//! The signals that end a run: SIGINT (Ctrl+C), SIGTERM (`kill`, `timeout`,
//! systemd, `docker stop`, a scheduler's preemption) and SIGHUP (the terminal
//! closed, the ssh session lost). The first of any of them asks the work to stop
//! cleanly (train saves a checkpoint; prepare removes its temp files); a second
//! one aborts at once, with the shell's code for that signal (128 + its number).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What the first signal set: whether to stop, and which signal it was.
#[derive(Clone)]
pub struct Stop {
    pub flag: Arc<AtomicBool>,
    signal: Arc<AtomicI32>,
}

impl Stop {
    /// The signal that asked to stop, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.flag
            .load(Ordering::SeqCst)
            .then(|| self.signal.load(Ordering::SeqCst))
    }
}

/// The name a user knows a signal by.
pub fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "Ctrl+C",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// The exit code a shell reports for a process that `signal` ended.
pub fn exit_code(signal: i32) -> i32 {
    128 + signal
}

/// Starts watching for the three signals; `first` says what stopping means
/// (printed when the first one arrives, e.g. "saving a checkpoint and stopping"),
/// or nothing when None. A second signal prints `second` and exits.
pub fn install(first: Option<&'static str>, second: &'static str) -> Result<Stop> {
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing the signal handlers")?;
    let stop = Stop {
        flag: Arc::new(AtomicBool::new(false)),
        signal: Arc::new(AtomicI32::new(0)),
    };
    let seen = stop.clone();
    std::thread::Builder::new()
        .name("charrnn-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if seen.flag.load(Ordering::SeqCst) {
                    eprintln!("\nsecond signal ({}): {second}", name(signal));
                    std::process::exit(exit_code(signal));
                }
                seen.signal.store(signal, Ordering::SeqCst);
                seen.flag.store(true, Ordering::SeqCst);
                if let Some(first) = first {
                    let again = if signal == SIGINT {
                        "press again to abort"
                    } else {
                        "a second signal aborts"
                    };
                    eprintln!("\n{}: {first} ({again})", name(signal));
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(stop)
}
