//! How a run ends badly: it diverged, or its final checkpoint could not be
//! saved, or a save or the loss history failed.

use thiserror::Error;

use super::checkpoint::CheckpointError;
use super::history::HistoryError;

#[derive(Debug, Error)]
pub enum TrainError {
    #[error(
        "training diverged at iteration {iteration}: {what}; stopped without saving the diverged state. \
         {kept} Try a smaller --learning-rate (a tenth of this run's, say) or a tighter --clip."
    )]
    Diverged {
        iteration: u64,
        what: String,
        kept: String,
    },
    #[error(
        "could not save the checkpoint at iteration {iteration}: {cause}. {kept} Free some space and continue with --resume."
    )]
    FinalSave {
        iteration: u64,
        cause: CheckpointError,
        kept: String,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    History(#[from] HistoryError),
}
