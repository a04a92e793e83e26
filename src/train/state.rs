//! The state of a run: its fixed settings ([`Hyper`]), its learning rate, the
//! model, the optimizer, where each stream is in the text, the hidden state, the
//! random generators and the loss so far, and how its sessions report
//! ([`Session`]). Everything needed to continue a run exactly where it stopped;
//! `checkpoint` says how each format version lays it out on disk.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::io::data::{TextInfo, Vocab};
use crate::linalg::Real;
use crate::model::{Config, Model, State};
use crate::optim::{Kind, Optimizer};

use super::ema::Ema;
use super::rate::LearningRate;

/// How gradients are clipped before each update.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Clip {
    /// Every element to [-c, c] (min-char-rnn, char-rnn).
    Value(f64),
    /// The whole gradient to L2 norm at most c.
    Norm(f64),
}

/// Training settings fixed for the life of a run. Defaults are min-char-rnn's.
/// (The learning rate has its own owner, [`LearningRate`].)
#[derive(Clone, Debug, PartialEq)]
pub struct Hyper {
    pub seq_length: usize,
    /// B: independent streams over the text, each carrying its own hidden state.
    pub batch_size: usize,
    pub optimizer: Kind,
    pub clip: Clip,
    /// Decoupled weight decay (PyTorch's AdamW): w <- w (1 - lr wd) at every
    /// update, on the weight matrices and the embedding, not on biases.
    pub weight_decay: f64,
    /// Inverted dropout on each layer's output (train only).
    pub dropout: f64,
    /// The last fraction of the text held out for validation.
    pub val_fraction: f64,
    /// Seeds weight initialisation, dropout and the training-time samples.
    pub rng_seed: u64,
    /// The streams are processed in this many shares, contiguous ranges of them
    /// (in parallel when threads allow; gradients summed in share order). Fixed
    /// for a run so results do not depend on how many threads later execute it.
    pub shares: usize,
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper {
            seq_length: 25,
            batch_size: 1,
            optimizer: Kind::Adagrad,
            clip: Clip::Value(5.0),
            weight_decay: 0.0,
            dropout: 0.0,
            val_fraction: 0.0,
            rng_seed: 0,
            shares: 1,
        }
    }
}

impl Hyper {
    pub fn validate(&self) -> Result<(), String> {
        let positive = |x: f64| x > 0.0 && x.is_finite();
        let clip_ok = match self.clip {
            Clip::Value(c) | Clip::Norm(c) => positive(c),
        };
        let optimizer_ok = match self.optimizer {
            Kind::Adagrad => true,
            Kind::RmsProp { decay } => (0.0..1.0).contains(&decay),
            Kind::Adam { beta1, beta2 } => {
                (0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2)
            }
        };
        if self.seq_length == 0
            || self.batch_size == 0
            || self.shares == 0
            || self.shares > self.batch_size
        {
            Err(
                "seq_length, batch_size and parts must be at least 1, parts at most batch_size"
                    .into(),
            )
        } else if !(clip_ok && optimizer_ok) {
            Err("the optimizer constants or the clip are out of range".into())
        } else if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            Err(format!(
                "weight decay {} must be at least 0",
                self.weight_decay
            ))
        } else if !(0.0..1.0).contains(&self.dropout) || !(0.0..1.0).contains(&self.val_fraction) {
            Err("dropout and val_fraction must lie in [0, 1)".into())
        } else {
            Ok(())
        }
    }
}

/// Everything needed to continue a run exactly where it stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState<T> {
    pub hyper: Hyper,
    /// The rate of every update, from the base rate, the step decay and the schedule.
    pub rate: LearningRate,
    pub vocab: Vocab,
    pub model: Model<T>,
    pub optim: Optimizer<T>,
    /// Iterations done so far.
    pub iteration: u64,
    /// Completed passes over the training text.
    pub epoch: u64,
    /// Data pointer p within each stream: the next chunk of stream b is
    /// train[b*n + p .. b*n + p + seq_length + 1], n = train length / B.
    pub pointer: u64,
    /// Hidden state of every stream, carried into the next chunk.
    pub state: State<T>,
    /// Running average of the objective (the loss summed over a chunk, averaged
    /// over streams), min-char-rnn's smooth_loss.
    pub smooth_loss: f64,
    /// Objective of the last iteration (NaN before the first).
    pub last_loss: f64,
    /// Validation loss in nats/char: the last measured and the best.
    pub last_val: Option<f64>,
    pub best_val: Option<f64>,
    /// Weight initialisation and dropout.
    pub train_rng: ChaCha8Rng,
    /// Training-time samples; separate so sampling never changes the weights.
    pub sample_rng: ChaCha8Rng,
    pub text: TextInfo,
    /// The objective's moving average over about the last 100 iterations (weight
    /// 1 - RECENT on the newest), from 0 at iteration `recent_since`: see
    /// [`TrainState::recent_loss`].
    pub recent: f64,
    pub recent_since: u64,
    /// How this session stops and how often the run reports, logs, validates and
    /// saves (the cadences are kept by `--resume` unless a flag says otherwise).
    pub session: Session,
    /// The average of the weights, with `--ema`.
    pub ema: Option<Ema<T>>,
    /// Training wall time over all sessions (evaluation not counted).
    pub elapsed_s: f64,
}

/// A session of training: when it stops, and what it does besides training, how
/// often. The cadences are stored in the checkpoint so that a resumed run goes
/// on as it was started; the limits are this session's own. A cadence of 0
/// means never.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Stop once the iteration count reaches this (counted from the run's start).
    pub until: Option<u64>,
    /// Stop after this much training time in this session (evaluation not counted).
    pub max_time: Option<Duration>,
    /// Report the smooth loss and a sample every N iterations.
    pub sample_every: u64,
    /// Characters per sample.
    pub sample_len: usize,
    /// A loss-history row every N iterations.
    pub log_every: u64,
    /// Measure the validation loss every N iterations.
    pub eval_every: u64,
    /// Save a checkpoint every N iterations (and always at the end).
    pub checkpoint_every: u64,
    /// Also keep the checkpoint with the best validation loss.
    pub keep_best: bool,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            until: None,
            max_time: None,
            sample_every: 100,
            sample_len: 200,
            log_every: 100,
            eval_every: 1000,
            checkpoint_every: 1000,
            keep_best: false,
        }
    }
}

/// The decay of [`TrainState::recent`]: a newest weight of 0.01, so about the
/// last 100 iterations count.
pub const RECENT: f64 = 0.99;

/// How many times the uniform guess's loss the recent loss may reach before a
/// run counts as diverged (see [`TrainState::exploded`]). A 2 x 512 LSTM under
/// Adagrad's 0.1 spikes to 4 times it for a few iterations and recovers;
/// `--learning-rate 1e9` reaches 10^9 times it.
pub const EXPLODED: f64 = 100.0;

impl<T: Real> TrainState<T> {
    /// The objective (summed over a chunk, averaged over streams) over about the
    /// last 100 iterations: the moving average divided by 1 - 0.99^n after n
    /// iterations (as Adam corrects its moments), so that it means the same after
    /// 10 iterations as after 10,000. min-char-rnn's smooth loss instead starts
    /// at the loss of uniform guessing and moves by 0.1% an iteration, so for the
    /// first few thousand iterations it mostly shows where it started. None
    /// before the first iteration.
    pub fn recent_loss(&self) -> Option<f64> {
        self.recent_loss_after(self.iteration)
    }

    /// [`TrainState::recent_loss`] once `iteration` iterations are in the average.
    fn recent_loss_after(&self, iteration: u64) -> Option<f64> {
        let n = iteration.saturating_sub(self.recent_since);
        (n > 0).then(|| self.recent / (1.0 - RECENT.powi(n.min(1 << 20) as i32)))
    }

    /// [`TrainState::recent_loss`] per character.
    pub fn recent_per_char(&self) -> Option<f64> {
        self.recent_loss().map(|l| l / self.hyper.seq_length as f64)
    }

    /// Whether the loss has run away, once the loss of the iteration in progress
    /// (`iteration + 1`) is in the recent average: over about the last 100
    /// iterations it averages more than [`EXPLODED`] times the loss of guessing
    /// every character uniformly (ln V nats). A model that starts there and
    /// learns never comes near it; weights pushed that far by too large a step
    /// do not come back. Says how far it went, when it has.
    pub fn exploded(&self) -> Option<String> {
        let uniform = (self.vocab.len().max(2) as f64).ln();
        let recent = self.recent_loss_after(self.iteration + 1)? / self.hyper.seq_length as f64;
        (recent > EXPLODED * uniform).then(|| {
            format!(
                "the loss over the last ~100 iterations is {recent:.4e} nats/char, more than \
                 {EXPLODED} times the {uniform:.2} of guessing uniformly"
            )
        })
    }

    /// A new run. `init` gives starting weights (from `--init-npz`); otherwise
    /// they are drawn as [`Config::tensors`] says.
    pub fn new(
        config: Config,
        hyper: Hyper,
        rate: LearningRate,
        vocab: Vocab,
        text: TextInfo,
        init: Option<Vec<T>>,
    ) -> TrainState<T> {
        let mut train_rng = ChaCha8Rng::seed_from_u64(hyper.rng_seed);
        let mut sample_rng = ChaCha8Rng::seed_from_u64(hyper.rng_seed);
        sample_rng.set_stream(1);
        let model = match init {
            Some(params) => Model::from_params(config, params),
            None => Model::init(config, &mut train_rng),
        };
        TrainState {
            optim: Optimizer::new(hyper.optimizer, config.num_params()),
            model,
            iteration: 0,
            epoch: 0,
            pointer: 0,
            state: State::zeros(&config, hyper.batch_size),
            rate,
            // the objective of uniform guessing
            smooth_loss: (vocab.len() as f64).ln() * hyper.seq_length as f64,
            last_loss: f64::NAN,
            last_val: None,
            best_val: None,
            train_rng,
            sample_rng,
            text,
            recent: 0.0,
            recent_since: 0,
            session: Session::default(),
            ema: None,
            elapsed_s: 0.0,
            vocab,
            hyper,
        }
    }

    pub fn config(&self) -> &Config {
        &self.model.config
    }

    /// The weights to predict with: the average with `--ema` (once it has one),
    /// else the last step's.
    pub fn predicting(&self) -> std::borrow::Cow<'_, Model<T>> {
        match self.ema.as_ref().and_then(Ema::averaged) {
            Some(params) => std::borrow::Cow::Owned(Model::from_params(self.model.config, params)),
            None => std::borrow::Cow::Borrowed(&self.model),
        }
    }

    /// For commands that only predict (eval, sample, score, export, visualize):
    /// puts the averaged weights in place of the raw ones.
    pub fn use_average(&mut self) {
        if let Some(params) = self.ema.as_ref().and_then(Ema::averaged) {
            self.model.params = params;
        }
    }

    /// Internal consistency of a state read from disk.
    pub fn validate(&self) -> Result<(), String> {
        let c = &self.model.config;
        c.validate()?;
        self.hyper.validate()?;
        self.rate.validate()?;
        if let Some(e) = &self.ema {
            e.validate(self.model.params.len())?;
        }
        if c.vocab != self.vocab.len() {
            return Err(format!(
                "the model has {} outputs but the vocabulary {} characters",
                c.vocab,
                self.vocab.len()
            ));
        }
        let n = c.num_params();
        if self.model.params.len() != n
            || !self.optim.fits(n)
            || self.optim.kind != self.hyper.optimizer
        {
            return Err(format!(
                "{} parameters and {} + {} optimizer values ({}), expected {n} for {}",
                self.model.params.len(),
                self.optim.m.len(),
                self.optim.v.len(),
                self.optim.kind.name(),
                c.describe()
            ));
        }
        if !self.state.fits(c, self.hyper.batch_size) {
            return Err(format!(
                "hidden state does not fit {} streams of {}",
                self.hyper.batch_size,
                c.describe()
            ));
        }
        if !self.is_finite() {
            return Err("weights, optimizer state or hidden state hold NaN or infinity".into());
        }
        Ok(())
    }

    /// True when no weight, optimizer value, hidden value or the smooth loss is NaN or infinite.
    pub fn is_finite(&self) -> bool {
        self.smooth_loss.is_finite()
            && self.recent.is_finite()
            && self.model.params.iter().all(|x| x.is_finite())
            && self.optim.is_finite()
            && self.state.is_finite()
    }
}

/// A seed for runs started without `--rng-seed`, recorded in the checkpoint.
pub fn fresh_seed() -> u64 {
    rand::rng().random::<u32>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::data::Vocab;
    use crate::model::Config;

    #[test]
    fn the_recent_loss_is_the_loss_itself_for_a_constant_loss_at_any_age() {
        let vocab = Vocab::from_sorted(vec!['a', 'b']).unwrap();
        let text = TextInfo {
            name: "t".into(),
            chars: 2,
            bytes: 2,
            hash: 0,
        };
        let mut s = TrainState::<f64>::new(
            Config::min_char_rnn(2, 3),
            Hyper::default(),
            LearningRate::default(),
            vocab,
            text,
            None,
        );
        assert_eq!(s.recent_loss(), None, "no iteration yet");
        for n in 1..=3000u64 {
            s.recent = RECENT * s.recent + (1.0 - RECENT) * 50.0;
            s.iteration = n;
            let r = s.recent_loss().unwrap();
            assert!((r - 50.0).abs() < 1e-9, "after {n} iterations: {r}");
        }
        // counted from `recent_since` (a run resumed from a format-2 checkpoint)
        s.recent_since = 3000;
        assert_eq!(s.recent_loss(), None);
    }
}
