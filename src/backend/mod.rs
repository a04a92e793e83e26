//! The compute-backend seam: everything in a training iteration that touches
//! parameter-sized arrays goes through [`Backend`], so the training loop never
//! knows where the numbers live or what computes them. One iteration:
//!
//! ```text
//! host (train::Trainer)                    device (a Backend)
//! batch: which chunk of every stream  ──>  forward_backward: cell forward over the
//!                                            chunk, head and loss, backward; one
//!                                            gradient and loss per share of streams
//!                                          combine: the shares' gradients and losses
//!                                            summed in share order (a Combine)
//! loss: finite? ran away?            <──   (the objective)
//!                                          clip: by value or by norm
//! rate: LearningRate::at(iteration)  ──>   update: weight decay, then the optimizer
//!                                          average: the EMA of the weights
//! checkpoint, sample, report         <──>  download / upload: the parameters,
//!                                            optimizer state, average and hidden state
//! ```
//!
//! A backend holds the run's parameters, optimizer state, average and hidden
//! state from [`Backend::upload`] on; the [`TrainState`] on the host has
//! current copies of them only after [`Backend::download`] (the trainer brackets
//! every save, sample and report with the two). [`cpu::Cpu`] is the first
//! backend, and the reference every other must match (docs/ARCHITECTURE.md
//! lists the tests). A data-parallel run changes only how shares are combined:
//! it gives the backend another [`Combine`].

pub mod combine;
pub mod cpu;

pub use combine::{Combine, InOrder};
pub use cpu::Cpu;

use rand_chacha::ChaCha8Rng;

use crate::io::corpus::IdSlice;
use crate::linalg::Real;
use crate::train::{Clip, TrainState};

/// The next chunk of every stream of the training text: stream b is
/// `ids[b * stride .. (b + 1) * stride]`, and its chunk is the inputs at
/// `at .. at + steps` and the targets one further on.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    pub ids: IdSlice<'a>,
    pub stride: usize,
    pub at: usize,
    pub steps: usize,
}

/// What computes a run's iterations (see the module's note for the order the
/// trainer calls these in). Every method but the copies runs on the device's
/// own copies of the parameters, optimizer state, average and hidden state.
pub trait Backend<T: Real> {
    /// Takes the run onto the device: from here on the device's parameters,
    /// optimizer state, average and hidden state are the run's, and the host's
    /// copies in `host` are stale (a backend may even take them away).
    fn upload(&mut self, host: &mut TrainState<T>);

    /// Puts the device's parameters, optimizer state, average and hidden state
    /// in `host`, current; [`Backend::upload`] takes them back.
    fn download(&mut self, host: &mut TrainState<T>);

    /// Zeroes every stream's hidden state (a new epoch).
    fn reset_hidden(&mut self);

    /// Forward over `batch` from the carried hidden state (left where the chunk
    /// ends), the output layer and loss, and backward: a gradient of the
    /// objective (the summed loss averaged over all B streams) and a summed loss
    /// for each share of the streams. With dropout, draws each share's masks
    /// from `rng`, in share order.
    fn forward_backward(&mut self, batch: &Batch<'_>, rng: &mut ChaCha8Rng);

    /// Sums the shares' gradients and losses, in share order ([`Combine`]);
    /// returns the objective.
    fn combine(&mut self) -> f64;

    /// Clips the combined gradient: every element to [-c, c], or the whole to
    /// L2 norm at most c. (A backend may fuse clipping by value into the update.)
    fn clip(&mut self, clip: Clip);

    /// Decays the weights by `weight_decay` at rate `lr` (AdamW's decoupled
    /// decay, on [`crate::model::Config::weight_ranges`]), then applies the
    /// optimizer's update with the combined gradient at rate `lr`.
    fn update(&mut self, lr: f64, weight_decay: f64);

    /// Moves the average of the weights towards them, when the run keeps one.
    fn average(&mut self);

    /// The summed loss and the characters predicted over `ids` read as
    /// `streams` streams in chunks of `seq` (see [`crate::train::evaluate`]),
    /// with the weights the run predicts with (the average, when it keeps one).
    fn evaluate(&mut self, ids: IdSlice<'_>, streams: usize, seq: usize) -> (f64, u64);
}
