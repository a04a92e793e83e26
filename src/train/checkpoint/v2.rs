//! Format version 2 (written by a9688dd to 31a2bb5): the run's settings, model,
//! optimizer, progress, hidden state, random generators and text, then the
//! training time. Every later version starts with the same fields ([`Head`]).

use std::borrow::Cow;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::io::data::{TextInfo, Vocab};
use crate::model::{Model, State as Hidden};
use crate::optim::{Kind, Optimizer};
use crate::train::{Clip, TrainState};

/// The training settings as every version stores them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    pub seq_length: usize,
    pub batch_size: usize,
    pub optimizer: Kind,
    /// The base learning rate.
    pub learning_rate: f64,
    pub lr_decay: f64,
    pub lr_decay_after: u64,
    pub clip: Clip,
    pub dropout: f64,
    pub val_fraction: f64,
    pub rng_seed: u64,
    /// The shares of the streams (`Hyper::shares`).
    pub parts: usize,
}

impl<T> From<&TrainState<T>> for Hyper {
    /// A run's settings and base learning rate as they are stored (and exported).
    fn from(s: &TrainState<T>) -> Self {
        let (h, r) = (&s.hyper, &s.rate);
        Hyper {
            seq_length: h.seq_length,
            batch_size: h.batch_size,
            optimizer: h.optimizer,
            learning_rate: r.base,
            lr_decay: r.decay,
            lr_decay_after: r.decay_after,
            clip: h.clip,
            dropout: h.dropout,
            val_fraction: h.val_fraction,
            rng_seed: h.rng_seed,
            parts: h.shares,
        }
    }
}

/// The fields every version from 2 on begins with, in their order on disk;
/// borrowed when a checkpoint is written, owned when one is read.
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "T: Serialize + Clone",
    deserialize = "T: Deserialize<'de> + Clone"
))]
pub struct Head<'a, T: Clone> {
    pub hyper: Hyper,
    pub vocab: Cow<'a, Vocab>,
    pub model: Cow<'a, Model<T>>,
    pub optim: Cow<'a, Optimizer<T>>,
    pub iteration: u64,
    pub epoch: u64,
    pub pointer: u64,
    pub state: Cow<'a, Hidden<T>>,
    /// The learning rate after the step decays so far.
    pub learning_rate: f64,
    pub smooth_loss: f64,
    pub last_loss: f64,
    pub last_val: Option<f64>,
    pub best_val: Option<f64>,
    pub train_rng: Cow<'a, ChaCha8Rng>,
    pub sample_rng: Cow<'a, ChaCha8Rng>,
    pub text: Cow<'a, TextInfo>,
}

/// A version 2 payload (after the precision).
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de> + Clone"))]
pub struct State<T: Clone + 'static> {
    pub head: Head<'static, T>,
    pub elapsed_s: f64,
}
