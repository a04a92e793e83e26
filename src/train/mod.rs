//! Training: [`state`] is what a run is (and a checkpoint holds), [`rate`] its
//! learning rate, [`trainer`] one iteration through a compute backend (and the
//! validation loss), [`run`] the loop around it.

pub mod checkpoint;
pub mod ema;
pub mod error;
pub mod eval;
pub mod history;
pub mod rate;
pub mod run;
pub mod settings;
pub mod setup;
pub mod state;
pub mod trainer;

pub use ema::Ema;
pub use error::TrainError;
pub use eval::evaluate;
pub use rate::{LearningRate, LrSchedule};
pub use run::{Observer, Record, Stop};
pub use settings::{SessionFlags, Settings};
pub use setup::{AnyPrepared, Prepared, Request, SetupError, setup};
pub use state::{Clip, Hyper, Session, TrainState, fresh_seed};
pub use trainer::Trainer;

/// Characters each stream needs: a training text must hold at least this many per stream.
pub fn min_chars(hyper: &Hyper) -> usize {
    corpus::min_chars(hyper.batch_size, hyper.seq_length)
}

use crate::io::corpus;
