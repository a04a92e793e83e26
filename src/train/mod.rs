//! Training, in three parts: [`state`] is what a checkpoint holds, [`trainer`]
//! runs one iteration (and the validation loss), [`run`] is the loop around it.

pub mod ema;
pub mod plan;
pub mod run;
pub mod state;
pub mod trainer;

pub use ema::Ema;
pub use plan::{LrSchedule, Plan};
pub use run::{Observer, Record, Schedule, Stop, TrainError};
pub use state::{Clip, Hyper, Session, TrainState, fresh_seed};
pub use trainer::{Trainer, evaluate};

/// Characters each stream needs: a training text must hold at least this many per stream.
pub fn min_chars(hyper: &Hyper) -> usize {
    corpus::min_chars(hyper.batch_size, hyper.seq_length)
}

use crate::corpus;
