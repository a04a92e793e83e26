//! Training: the state a checkpoint holds, one min-char-rnn iteration, and the
//! loop around it (data pointer, logging cadence, samples, checkpoints, stop).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::checkpoint::{self, CheckpointError};
use crate::data::{TextInfo, Vocab};
use crate::history::{HistoryError, LossLog, Row};
use crate::linalg::{Precision, Real};
use crate::model::{Rnn, RnnDims, Workspace};
use crate::optim::{self, Adagrad};
use crate::sample::{self, Sampler};

/// Hyperparameters fixed for the life of a run. Defaults are min-char-rnn's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    pub hidden_size: usize,
    pub seq_length: usize,
    pub learning_rate: f64,
    /// Gradients are clipped elementwise to [-clip, clip].
    pub clip: f64,
    /// Seeds weight initialisation and the training-time samples.
    pub rng_seed: u64,
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper { hidden_size: 100, seq_length: 25, learning_rate: 0.1, clip: 5.0, rng_seed: 0 }
    }
}

/// Hyperparameters as given on a command line: `None` = not given.
#[derive(Clone, Debug, Default)]
pub struct HyperFlags {
    pub hidden_size: Option<usize>,
    pub seq_length: Option<usize>,
    pub learning_rate: Option<f64>,
    pub clip: Option<f64>,
    pub rng_seed: Option<u64>,
    pub precision: Option<Precision>,
}

impl HyperFlags {
    /// The hyperparameters of a new run: each flag given, else its default.
    pub fn resolve(&self, default_seed: u64) -> Hyper {
        let d = Hyper::default();
        Hyper {
            hidden_size: self.hidden_size.unwrap_or(d.hidden_size),
            seq_length: self.seq_length.unwrap_or(d.seq_length),
            learning_rate: self.learning_rate.unwrap_or(d.learning_rate),
            clip: self.clip.unwrap_or(d.clip),
            rng_seed: self.rng_seed.unwrap_or(default_seed),
        }
    }

    /// Flags that disagree with a checkpoint's hyperparameters, described for a
    /// message ("--hidden-size 200 (checkpoint has 100)").
    pub fn conflicts(&self, h: &Hyper, precision: Precision) -> Vec<String> {
        fn check<T: PartialEq + std::fmt::Display>(out: &mut Vec<String>, flag: &str, given: Option<T>, have: T) {
            if let Some(g) = given.filter(|g| *g != have) {
                out.push(format!("{flag} {g} (checkpoint has {have})"));
            }
        }
        let mut out = Vec::new();
        check(&mut out, "--hidden-size", self.hidden_size, h.hidden_size);
        check(&mut out, "--seq-length", self.seq_length, h.seq_length);
        check(&mut out, "--learning-rate", self.learning_rate, h.learning_rate);
        check(&mut out, "--clip", self.clip, h.clip);
        check(&mut out, "--rng-seed", self.rng_seed, h.rng_seed);
        check(&mut out, "--precision", self.precision, precision);
        out
    }
}

/// Everything needed to continue a run exactly where it stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState<T> {
    pub hyper: Hyper,
    pub vocab: Vocab,
    pub model: Rnn<T>,
    pub optim: Adagrad<T>,
    /// Iterations done so far.
    pub iteration: u64,
    /// Data pointer p: the next chunk is ids[p .. p + seq_length + 1].
    pub pointer: u64,
    /// (H): hidden state carried into the next chunk.
    pub hidden: Vec<T>,
    pub smooth_loss: f64,
    /// Loss of the last iteration (NaN before the first).
    pub last_loss: f64,
    /// Weight initialisation (and any future training randomness).
    pub train_rng: ChaCha8Rng,
    /// Training-time samples; separate so sampling never changes the weights.
    pub sample_rng: ChaCha8Rng,
    pub text: TextInfo,
    /// Training wall time over all sessions.
    pub elapsed_s: f64,
}

impl<T: Real> TrainState<T> {
    /// A new run. `init` gives starting weights (from `--init-npz`); otherwise
    /// they are drawn as min-char-rnn draws them.
    pub fn new(hyper: Hyper, vocab: Vocab, text: TextInfo, init: Option<Vec<T>>) -> TrainState<T> {
        let dims = RnnDims { vocab: vocab.len(), hidden: hyper.hidden_size };
        let mut train_rng = ChaCha8Rng::seed_from_u64(hyper.rng_seed);
        let mut sample_rng = ChaCha8Rng::seed_from_u64(hyper.rng_seed);
        sample_rng.set_stream(1);
        let model = match init {
            Some(params) => Rnn::from_params(dims, params),
            None => Rnn::init(dims, &mut train_rng),
        };
        TrainState {
            optim: Adagrad::new(T::c(hyper.learning_rate), dims.num_params()),
            model,
            iteration: 0,
            pointer: 0,
            hidden: vec![T::zero(); dims.hidden],
            // the loss of uniform guessing over the chunk
            smooth_loss: (vocab.len() as f64).ln() * hyper.seq_length as f64,
            last_loss: f64::NAN,
            train_rng,
            sample_rng,
            text,
            elapsed_s: 0.0,
            vocab,
            hyper,
        }
    }

    /// Internal consistency of a state read from disk.
    pub fn validate(&self) -> Result<(), String> {
        let h = &self.hyper;
        let dims = self.model.dims;
        if h.hidden_size == 0 || h.seq_length == 0 {
            return Err("hidden_size and seq_length must be at least 1".into());
        }
        if !(h.learning_rate > 0.0 && h.learning_rate.is_finite() && h.clip > 0.0) {
            return Err(format!("bad learning_rate {} or clip {}", h.learning_rate, h.clip));
        }
        if dims.hidden != h.hidden_size || dims.vocab != self.vocab.len() {
            return Err(format!(
                "model is {}x{} but hyperparameters say hidden {} and the vocabulary has {} characters",
                dims.hidden,
                dims.vocab,
                h.hidden_size,
                self.vocab.len()
            ));
        }
        let expected = dims
            .hidden
            .checked_mul(dims.hidden + 2 * dims.vocab + 1)
            .and_then(|n| n.checked_add(dims.vocab))
            .ok_or("model size overflows")?;
        if self.model.params.len() != expected || self.optim.memory.len() != expected {
            return Err(format!(
                "{} parameters and {} optimizer values, expected {expected}",
                self.model.params.len(),
                self.optim.memory.len()
            ));
        }
        if self.hidden.len() != dims.hidden {
            return Err(format!("hidden state has {} values, expected {}", self.hidden.len(), dims.hidden));
        }
        if self.optim.learning_rate != T::c(h.learning_rate) {
            return Err("optimizer learning rate differs from the hyperparameters".into());
        }
        if !self.is_finite() {
            return Err("weights, optimizer memory or hidden state hold NaN or infinity".into());
        }
        Ok(())
    }

    /// True when no weight, optimizer value, hidden value or the smooth loss is NaN or infinite.
    pub fn is_finite(&self) -> bool {
        self.smooth_loss.is_finite()
            && self.model.params.iter().all(|x| x.is_finite())
            && self.optim.memory.iter().all(|x| x.is_finite())
            && self.hidden.iter().all(|x| x.is_finite())
    }
}

#[derive(Debug, Error)]
pub enum TrainError {
    #[error(
        "training diverged at iteration {iteration}: {what}; stopped without saving the diverged state. \
         {kept} Try a smaller --learning-rate or --clip."
    )]
    Diverged { iteration: u64, what: String, kept: String },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// When to stop and how often to report, log and save. A cadence of 0 means never.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Stop once the iteration count reaches this (counted from the run's start).
    pub until: Option<u64>,
    /// Stop after this much wall time in this session.
    pub max_time: Option<Duration>,
    pub sample_every: u64,
    pub sample_len: usize,
    pub log_every: u64,
    pub checkpoint_every: u64,
}

/// What the loop tells whoever is watching (the CLI draws it; tests record it).
pub trait Observer {
    /// About ten times a second.
    fn progress(&mut self, _iteration: u64, _smooth_loss: f64, _chars_per_sec: f64) {}
    /// Every `sample_every` iterations, with a sample of `sample_len` characters.
    fn report(&mut self, _iteration: u64, _smooth_loss: f64, _sample: &str) {}
    fn saved(&mut self, _path: &Path, _iteration: u64) {}
}

/// Where a run records itself.
pub struct Record<'a> {
    pub checkpoint: &'a Path,
    pub log: Option<&'a mut LossLog>,
    /// Iteration of this run's checkpoint already on disk, if any (a resumed run's).
    pub saved_at: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Iterations,
    TimeLimit,
    Interrupted,
}

/// Training state plus the scratch buffers an iteration needs (never saved).
pub struct Trainer<T> {
    pub state: TrainState<T>,
    /// Same layout as the parameters.
    grads: Vec<T>,
    ws: Workspace<T>,
}

impl<T: Real> Trainer<T> {
    pub fn new(state: TrainState<T>) -> Trainer<T> {
        let dims = state.model.dims;
        Trainer { grads: vec![T::zero(); dims.num_params()], ws: Workspace::new(dims, state.hyper.seq_length), state }
    }

    /// One min-char-rnn iteration on `ids` (at least seq_length + 1 long).
    /// Returns the chunk's summed loss. A NaN or infinite loss is an error and
    /// leaves the weights untouched.
    pub fn step(&mut self, ids: &[u32]) -> Result<f64, TrainError> {
        let s = &mut self.state;
        let seq = s.hyper.seq_length;
        assert!(ids.len() > seq, "text shorter than seq_length + 1");
        // wrap to the start (and forget the hidden state) when the next chunk would not fit
        let mut p = s.pointer as usize;
        if p + seq + 1 >= ids.len() {
            p = 0;
            s.hidden.fill(T::zero());
        }
        let (inputs, targets) = (&ids[p..p + seq], &ids[p + 1..p + seq + 1]);
        let loss = s.model.forward_backward(inputs, targets, &mut s.hidden, &mut self.grads, &mut self.ws);
        if !loss.is_finite() {
            return Err(TrainError::Diverged {
                iteration: s.iteration + 1,
                what: format!("the loss became {loss}"),
                kept: String::new(),
            });
        }
        s.smooth_loss = 0.999 * s.smooth_loss + 0.001 * loss;
        s.last_loss = loss;
        optim::clip(&mut self.grads, T::c(s.hyper.clip));
        s.optim.step(&mut s.model.params, &self.grads);
        s.pointer = (p + seq) as u64;
        s.iteration += 1;
        Ok(loss)
    }

    /// A sample continuing the training text from the current hidden state.
    pub fn sample_text(&mut self, ids: &[u32], len: usize) -> String {
        let s = &mut self.state;
        let next = ids[(s.pointer as usize).min(ids.len() - 1)];
        let mut sampler = Sampler::new(&s.model, &s.hidden, 1.0).expect("temperature 1 is valid");
        let mut text = String::with_capacity(len);
        let vocab = &s.vocab;
        sample::generate(&mut sampler, &[next], len, &mut s.sample_rng, |id| {
            text.push(vocab.char(id));
            Ok::<_, ()>(())
        })
        .expect("pushing to a String cannot fail");
        text
    }

    fn save(&mut self, path: &Path, obs: &mut dyn Observer) -> Result<(), TrainError> {
        if !self.state.is_finite() {
            return Err(TrainError::Diverged {
                iteration: self.state.iteration,
                what: "the weights overflowed to infinity or NaN".into(),
                kept: String::new(),
            });
        }
        checkpoint::save(path, &self.state)?;
        obs.saved(path, self.state.iteration);
        Ok(())
    }

    /// Trains until the schedule or `stop` says to stop, then saves a checkpoint.
    pub fn run(
        &mut self,
        ids: &[u32],
        schedule: &Schedule,
        record: Record<'_>,
        obs: &mut dyn Observer,
        stop: &AtomicBool,
    ) -> Result<Stop, TrainError> {
        let Record { checkpoint, mut log, mut saved_at } = record;
        let every = |n: u64, it: u64| n > 0 && it.is_multiple_of(n);
        let seq_length = self.state.hyper.seq_length as u64;
        let chars = |iters: u64| (iters * seq_length) as f64;
        let started = Instant::now();
        let elapsed_before = self.state.elapsed_s;
        let (mut log_t, mut log_it) = (started, self.state.iteration);
        let (mut prog_t, mut prog_it) = (started, self.state.iteration);
        // a diverged run says which checkpoint on disk is still good
        let note_kept = |e: TrainError, saved_at: Option<u64>| match e {
            TrainError::Diverged { iteration, what, .. } => {
                let kept = match saved_at {
                    Some(i) => format!("The last good checkpoint (iteration {i}) is kept in {}.", checkpoint.display()),
                    None => "No checkpoint had been written yet.".to_string(),
                };
                TrainError::Diverged { iteration, what, kept }
            }
            other => other,
        };
        let reason = loop {
            if stop.load(Ordering::SeqCst) {
                break Stop::Interrupted;
            }
            if schedule.until.is_some_and(|n| self.state.iteration >= n) {
                break Stop::Iterations;
            }
            if schedule.max_time.is_some_and(|t| started.elapsed() >= t) {
                break Stop::TimeLimit;
            }
            let loss = self.step(ids).map_err(|e| note_kept(e, saved_at))?;
            let it = self.state.iteration;
            let now = Instant::now();
            self.state.elapsed_s = elapsed_before + (now - started).as_secs_f64();
            if let Some(log) = log.as_deref_mut().filter(|_| every(schedule.log_every, it)) {
                let secs = (now - log_t).as_secs_f64();
                log.append(&Row {
                    iteration: it,
                    loss,
                    smooth_loss: self.state.smooth_loss,
                    chars_per_sec: (chars(it - log_it) / secs.max(1e-9)).round(),
                    elapsed_s: (self.state.elapsed_s * 1000.0).round() / 1000.0,
                })?;
                (log_t, log_it) = (now, it);
            }
            if every(schedule.sample_every, it) {
                let text = self.sample_text(ids, schedule.sample_len);
                obs.report(it, self.state.smooth_loss, &text);
            }
            if every(schedule.checkpoint_every, it) {
                self.save(checkpoint, obs).map_err(|e| note_kept(e, saved_at))?;
                saved_at = Some(it);
            }
            if now - prog_t >= Duration::from_millis(100) {
                let rate = chars(it - prog_it) / (now - prog_t).as_secs_f64();
                obs.progress(it, self.state.smooth_loss, rate);
                (prog_t, prog_it) = (now, it);
            }
        };
        self.state.elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
        if saved_at != Some(self.state.iteration) {
            self.save(checkpoint, obs).map_err(|e| note_kept(e, saved_at))?;
        }
        Ok(reason)
    }
}

/// A seed for runs started without `--rng-seed`, recorded in the checkpoint.
pub fn fresh_seed() -> u64 {
    rand::rng().random::<u32>() as u64
}
