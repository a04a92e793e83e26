//! Training: the state a checkpoint holds, one iteration over B streams, the
//! validation loss, and the loop around them (cadences, samples, checkpoints, stop).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::checkpoint::{self, CheckpointError};
use crate::corpus::IdSlice;
use crate::data::{TextInfo, Vocab};
use crate::history::{HistoryError, LossLog, Row};
use crate::linalg::{Precision, Real};
use crate::model::{Cell, Config, Model, State, Workspace, stream_scale};
use crate::optim::{self, Kind, Optimizer};
use crate::parallel::Pair;
use crate::sample::{self, Sampler};

/// How gradients are clipped before each update.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Clip {
    /// Every element to [-c, c] (min-char-rnn, char-rnn).
    Value(f64),
    /// The whole gradient to L2 norm at most c.
    Norm(f64),
}

/// Training settings fixed for the life of a run. Defaults are min-char-rnn's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    pub seq_length: usize,
    /// B: independent streams over the text, each carrying its own hidden state.
    pub batch_size: usize,
    pub optimizer: Kind,
    pub learning_rate: f64,
    /// Multiply the learning rate by this at the end of every epoch from
    /// `lr_decay_after` on (1 = never), as char-rnn does.
    pub lr_decay: f64,
    pub lr_decay_after: u64,
    pub clip: Clip,
    /// Inverted dropout on each layer's output (train only).
    pub dropout: f64,
    /// The last fraction of the text held out for validation.
    pub val_fraction: f64,
    /// Seeds weight initialisation, dropout and the training-time samples.
    pub rng_seed: u64,
    /// The streams are processed in this many parts (in parallel when threads
    /// allow; gradients summed in part order). Fixed for a run so results do not
    /// depend on how many threads later execute it.
    pub parts: usize,
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper {
            seq_length: 25,
            batch_size: 1,
            optimizer: Kind::Adagrad,
            learning_rate: 0.1,
            lr_decay: 1.0,
            lr_decay_after: 10,
            clip: Clip::Value(5.0),
            dropout: 0.0,
            val_fraction: 0.0,
            rng_seed: 0,
            parts: 1,
        }
    }
}

impl Hyper {
    pub fn validate(&self) -> Result<(), String> {
        let positive = |x: f64| x > 0.0 && x.is_finite();
        let (clip_ok, lr_ok) = (
            match self.clip {
                Clip::Value(c) | Clip::Norm(c) => positive(c),
            },
            positive(self.learning_rate),
        );
        let optimizer_ok = match self.optimizer {
            Kind::Adagrad => true,
            Kind::RmsProp { decay } => (0.0..1.0).contains(&decay),
            Kind::Adam { beta1, beta2 } => {
                (0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2)
            }
        };
        if self.seq_length == 0
            || self.batch_size == 0
            || self.parts == 0
            || self.parts > self.batch_size
        {
            Err(
                "seq_length, batch_size and parts must be at least 1, parts at most batch_size"
                    .into(),
            )
        } else if !(clip_ok
            && lr_ok
            && optimizer_ok
            && positive(self.lr_decay)
            && self.lr_decay <= 1.0)
        {
            Err(
                "learning rate, its decay, the optimizer constants or the clip are out of range"
                    .into(),
            )
        } else if !(0.0..1.0).contains(&self.dropout) || !(0.0..1.0).contains(&self.val_fraction) {
            Err("dropout and val_fraction must lie in [0, 1)".into())
        } else {
            Ok(())
        }
    }
}

/// Settings as given on a command line: `None` = not given.
#[derive(Clone, Debug, Default)]
pub struct HyperFlags {
    pub cell: Option<Cell>,
    pub hidden_size: Option<usize>,
    pub layers: Option<usize>,
    pub embedding_size: Option<usize>,
    pub seq_length: Option<usize>,
    pub batch_size: Option<usize>,
    pub optimizer: Option<&'static str>,
    pub learning_rate: Option<f64>,
    pub decay_rate: Option<f64>,
    pub lr_decay: Option<f64>,
    pub lr_decay_after: Option<u64>,
    pub clip: Option<f64>,
    pub clip_norm: Option<f64>,
    pub dropout: Option<f64>,
    pub val_fraction: Option<f64>,
    pub rng_seed: Option<u64>,
    pub precision: Option<Precision>,
}

impl HyperFlags {
    /// The optimizer named by the flags (adagrad unless given).
    fn optimizer_kind(&self) -> Kind {
        let decay = self.decay_rate.unwrap_or(0.95);
        match self.optimizer.unwrap_or("adagrad") {
            "rmsprop" => Kind::RmsProp { decay },
            "adam" => Kind::Adam {
                beta1: 0.9,
                beta2: 0.999,
            },
            _ => Kind::Adagrad,
        }
    }

    /// The architecture of a new run with `vocab` characters.
    pub fn config(&self, vocab: usize) -> Config {
        Config {
            cell: self.cell.unwrap_or(Cell::Rnn),
            vocab,
            hidden: self.hidden_size.unwrap_or(100),
            layers: self.layers.unwrap_or(1),
            embedding: self.embedding_size.unwrap_or(0),
        }
    }

    /// The precision of a new run: f64 for the tanh RNN (so that the default
    /// matches min-char-rnn's float64), f32 for LSTM and GRU.
    pub fn precision(&self) -> Precision {
        self.precision
            .unwrap_or(match self.cell.unwrap_or(Cell::Rnn) {
                Cell::Rnn => Precision::F64,
                _ => Precision::F32,
            })
    }

    /// The training settings of a new run: each flag given, else its default.
    pub fn resolve(&self, default_seed: u64) -> Hyper {
        let d = Hyper::default();
        let optimizer = self.optimizer_kind();
        Hyper {
            seq_length: self.seq_length.unwrap_or(d.seq_length),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            optimizer,
            learning_rate: self
                .learning_rate
                .unwrap_or(optimizer.default_learning_rate()),
            lr_decay: self.lr_decay.unwrap_or(d.lr_decay),
            lr_decay_after: self.lr_decay_after.unwrap_or(d.lr_decay_after),
            clip: match self.clip_norm {
                Some(n) => Clip::Norm(n),
                None => Clip::Value(self.clip.unwrap_or(5.0)),
            },
            dropout: self.dropout.unwrap_or(d.dropout),
            val_fraction: self.val_fraction.unwrap_or(d.val_fraction),
            rng_seed: self.rng_seed.unwrap_or(default_seed),
            parts: 1,
        }
    }

    /// Flags that disagree with a saved run, described for a message
    /// ("--hidden-size 200 (checkpoint has 100)").
    pub fn conflicts(&self, h: &Hyper, c: &Config, precision: Precision) -> Vec<String> {
        fn check<T: PartialEq + std::fmt::Display>(
            out: &mut Vec<String>,
            flag: &str,
            given: Option<T>,
            have: T,
        ) {
            if let Some(g) = given.filter(|g| *g != have) {
                out.push(format!("{flag} {g} (checkpoint has {have})"));
            }
        }
        let mut out = Vec::new();
        check(&mut out, "--cell", self.cell, c.cell);
        check(&mut out, "--hidden-size", self.hidden_size, c.hidden);
        check(&mut out, "--layers", self.layers, c.layers);
        check(
            &mut out,
            "--embedding-size",
            self.embedding_size,
            c.embedding,
        );
        check(&mut out, "--seq-length", self.seq_length, h.seq_length);
        check(&mut out, "--batch-size", self.batch_size, h.batch_size);
        check(&mut out, "--optimizer", self.optimizer, h.optimizer.name());
        if let Kind::RmsProp { decay } = h.optimizer {
            check(&mut out, "--decay-rate", self.decay_rate, decay);
        }
        check(
            &mut out,
            "--learning-rate",
            self.learning_rate,
            h.learning_rate,
        );
        check(&mut out, "--lr-decay", self.lr_decay, h.lr_decay);
        check(
            &mut out,
            "--lr-decay-after",
            self.lr_decay_after,
            h.lr_decay_after,
        );
        match h.clip {
            Clip::Value(c) => {
                check(&mut out, "--clip", self.clip, c);
                if let Some(n) = self.clip_norm {
                    out.push(format!("--clip-norm {n} (checkpoint clips by value)"));
                }
            }
            Clip::Norm(c) => {
                check(&mut out, "--clip-norm", self.clip_norm, c);
                if let Some(v) = self.clip {
                    out.push(format!("--clip {v} (checkpoint clips by norm)"));
                }
            }
        }
        check(&mut out, "--dropout", self.dropout, h.dropout);
        check(
            &mut out,
            "--val-fraction",
            self.val_fraction,
            h.val_fraction,
        );
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
    /// The learning rate now (after any decay).
    pub learning_rate: f64,
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
    /// Training wall time over all sessions (evaluation not counted).
    pub elapsed_s: f64,
}

impl<T: Real> TrainState<T> {
    /// A new run. `init` gives starting weights (from `--init-npz`); otherwise
    /// they are drawn as [`Config::tensors`] says.
    pub fn new(
        config: Config,
        hyper: Hyper,
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
            learning_rate: hyper.learning_rate,
            // the objective of uniform guessing
            smooth_loss: (vocab.len() as f64).ln() * hyper.seq_length as f64,
            last_loss: f64::NAN,
            last_val: None,
            best_val: None,
            train_rng,
            sample_rng,
            text,
            elapsed_s: 0.0,
            vocab,
            hyper,
        }
    }

    pub fn config(&self) -> &Config {
        &self.model.config
    }

    /// Internal consistency of a state read from disk.
    pub fn validate(&self) -> Result<(), String> {
        let c = &self.model.config;
        c.validate()?;
        self.hyper.validate()?;
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
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(format!(
                "learning rate {} is out of range",
                self.learning_rate
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
            && self.model.params.iter().all(|x| x.is_finite())
            && self.optim.is_finite()
            && self.state.is_finite()
    }
}

/// Splits encoded text into the training part and the held-out validation part
/// (its last `fraction`, as char-rnn and the PyTorch baseline split).
pub fn split(ids: IdSlice<'_>, fraction: f64) -> (IdSlice<'_>, IdSlice<'_>) {
    let cut = ((1.0 - fraction) * ids.len() as f64).floor() as usize;
    ids.split_at(cut.min(ids.len()))
}

/// Characters each stream needs: a training text must hold at least this many per stream.
pub fn min_chars(hyper: &Hyper) -> usize {
    hyper.batch_size * (hyper.seq_length + 1)
}

/// Average loss in nats per character over `ids`, read as `streams` contiguous
/// streams in chunks of `seq` characters with the hidden state carried (no
/// dropout). Returns (summed loss, characters predicted).
pub fn evaluate<T: Real>(
    model: &Model<T>,
    ids: IdSlice<'_>,
    streams: usize,
    seq: usize,
) -> (f64, u64) {
    let b = streams.min(ids.len() / 2).max(1);
    let n = ids.len() / b;
    if n < 2 {
        return (0.0, 0);
    }
    let mut ws = Workspace::new(model.config, seq, b);
    let mut state = State::zeros(&model.config, b);
    let (mut inputs, mut targets) = (Vec::with_capacity(seq * b), Vec::with_capacity(seq * b));
    let (mut total, mut count) = (0.0, 0u64);
    for p in (0..n - 1).step_by(seq) {
        let len = seq.min(n - 1 - p);
        fill_chunk(ids, n, 0..b, p, len, &mut inputs, &mut targets);
        total += model.forward_loss(&inputs, &targets, &mut state, &mut ws, T::one());
        count += (len * b) as u64;
    }
    (total, count)
}

/// Time-major chunk of streams `streams`: inputs[t*B' + j] = ids[s_j*n + p + t]
/// for the j-th stream s_j of the range, targets one later.
fn fill_chunk(
    ids: IdSlice<'_>,
    n: usize,
    streams: Range<usize>,
    p: usize,
    len: usize,
    inputs: &mut Vec<u32>,
    targets: &mut Vec<u32>,
) {
    inputs.clear();
    targets.clear();
    for t in 0..len {
        for s in streams.clone() {
            inputs.push(ids.get(s * n + p + t));
            targets.push(ids.get(s * n + p + t + 1));
        }
    }
}

#[derive(Debug, Error)]
pub enum TrainError {
    #[error(
        "training diverged at iteration {iteration}: {what}; stopped without saving the diverged state. \
         {kept} Try a smaller --learning-rate or --clip."
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

/// When to stop and how often to report, evaluate, log and save. A cadence of 0 means never.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Stop once the iteration count reaches this (counted from the run's start).
    pub until: Option<u64>,
    /// Stop after this much training time in this session (evaluation not counted).
    pub max_time: Option<Duration>,
    pub sample_every: u64,
    pub sample_len: usize,
    pub log_every: u64,
    pub eval_every: u64,
    pub checkpoint_every: u64,
}

/// What the loop tells whoever is watching (the CLI draws it; tests record it).
pub trait Observer {
    /// About ten times a second.
    fn progress(&mut self, _iteration: u64, _smooth_loss_per_char: f64, _chars_per_sec: f64) {}
    /// Every `sample_every` iterations: the smooth objective, and a sample.
    fn report(&mut self, _iteration: u64, _smooth_loss: f64, _per_char: f64, _sample: &str) {}
    /// After each validation pass: the loss in nats/char, and whether it is the best so far.
    fn evaluated(&mut self, _iteration: u64, _val_loss: f64, _best: bool) {}
    fn saved(&mut self, _path: &Path, _iteration: u64) {}
    /// Something went wrong that training survives (a checkpoint or log row that
    /// could not be written).
    fn warn(&mut self, _message: &str) {}
}

/// Where a run records itself.
pub struct Record<'a> {
    pub checkpoint: &'a Path,
    pub log: Option<&'a mut LossLog>,
    /// Iteration of this run's checkpoint already on disk, if any (a resumed run's).
    pub saved_at: Option<u64>,
    /// Also keep the checkpoint with the best validation loss here.
    pub best: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Iterations,
    TimeLimit,
    Interrupted,
}

/// Training state plus the scratch an iteration needs (never saved).
pub struct Trainer<T> {
    pub state: TrainState<T>,
    /// One per part of the streams; part 0's gradient buffer receives the total.
    parts: Vec<Part<T>>,
    /// Threads that run the parts.
    threads: usize,
    /// With two threads: the second one, kept waiting between the phases of an
    /// iteration (see [`Pair`]).
    pair: Option<Arc<Pair>>,
    /// The parameters this thread updates when the pair shares the update.
    mine: Range<usize>,
}

/// A contiguous range of streams with its own activations and gradient.
struct Part<T> {
    streams: Range<usize>,
    ws: Workspace<T>,
    /// Same layout as the parameters.
    grads: Vec<T>,
    state: State<T>,
    inputs: Vec<u32>,
    targets: Vec<u32>,
    loss: f64,
}

impl<T: Real> Part<T> {
    fn run(&mut self, model: &Model<T>, scale: T) {
        self.loss = model.forward_backward_scaled(
            &self.inputs,
            &self.targets,
            &mut self.state,
            &mut self.grads,
            &mut self.ws,
            scale,
        );
    }
}

/// The parameters this thread updates when two share the update. When the
/// output layer runs beside the recurrence ([`Workspace::runs_head_beside`]), each thread
/// updates the weights it reads: this one everything before Why, the helper Why
/// and by (measured on the default model, medians of 5: 9,780 it/s, against 9,474
/// with Wx moved to the helper too). Else, the half that starts at the top
/// layer's Wh, which this thread reads at every step (whichever core updates a
/// weight owns its cache lines afterwards, and the other core's next read of it
/// waits for a transfer); the first half when the two threads split every step,
/// each reading half of Wh. Measured on the default model before the output
/// layer moved beside: 8.36-8.47k it/s against 7.9-8.4k for the first half.
fn update_split(config: &Config, split_steps: bool, head_beside: bool) -> Range<usize> {
    let layout = config.layout();
    if head_beside {
        return 0..layout.why.start;
    }
    let (n, wh) = (
        config.num_params(),
        layout.layers[config.layers - 1].wh.start,
    );
    let start = if split_steps { 0 } else { wh.min(n - n / 2) };
    start..start + n / 2
}

/// Smallest recurrent matrix whose steps are split across two threads, when H is
/// a multiple of 16 (Wh in strips) and otherwise (in blocks). Alternated A/B with
/// `--threads 1`, medians of 5-7: split, f64 hidden 144 5,893 against 5,288 it/s
/// and 160 4,757 against 4,160, f32 hidden 224 5,024 against 4,288; not split,
/// f64 hidden 128 7,391 against 6,741; hidden 150, in blocks, 4,340 against 4,469.
const SPLIT_FROM_BYTES: usize = 160 << 10;
const SPLIT_BLOCKS_FROM_BYTES: usize = 256 << 10;

impl<T: Real> Trainer<T> {
    /// A trainer that runs the run's parts on up to `threads` threads.
    pub fn new(state: TrainState<T>, threads: usize) -> Trainer<T> {
        let (config, h) = (state.model.config, &state.hyper);
        let (b, k) = (h.batch_size, h.parts.clamp(1, h.batch_size));
        // a pair when there are two threads (without one, if the system refuses a
        // thread: the results are the same, only slower)
        let pair = (threads >= 2)
            .then(Pair::new)
            .and_then(Result::ok)
            .map(Arc::new);
        // one stream splits each step's product (worth a hand-over per step once Wh
        // outgrows a sixth of an L2)
        let wh_bytes = config.hidden * config.hidden * std::mem::size_of::<T>();
        let strips = config.hidden.is_multiple_of(crate::linalg::TILE_COLS);
        let split = k == 1
            && wh_bytes
                >= if strips {
                    SPLIT_FROM_BYTES
                } else {
                    SPLIT_BLOCKS_FROM_BYTES
                };
        let parts: Vec<Part<T>> = (0..k)
            .map(|i| {
                let streams = i * b / k..(i + 1) * b / k;
                let n = streams.len();
                let mut ws = Workspace::new(config, h.seq_length, n);
                if let Some(pair) = pair.as_ref().filter(|_| k == 1) {
                    // one part: its phases split across the pair
                    ws.use_pair(Arc::clone(pair), split);
                }
                Part {
                    ws,
                    grads: vec![T::zero(); config.num_params()],
                    state: State::zeros(&config, n),
                    inputs: Vec::with_capacity(h.seq_length * n),
                    targets: Vec::with_capacity(h.seq_length * n),
                    loss: 0.0,
                    streams,
                }
            })
            .collect();
        let head_beside = k == 1 && parts[0].ws.runs_head_beside(h.dropout > 0.0);
        let mine = update_split(&config, split, head_beside);
        Trainer {
            threads: threads.clamp(1, k),
            parts,
            state,
            pair,
            mine,
        }
    }

    /// One iteration on the training ids (at least [`min_chars`] long). Returns the
    /// objective. A NaN or infinite loss is an error and leaves the weights untouched.
    pub fn step(&mut self, train: IdSlice<'_>) -> Result<f64, TrainError> {
        let s = &mut self.state;
        let (seq, b) = (s.hyper.seq_length, s.hyper.batch_size);
        let n = train.len() / b;
        assert!(
            n > seq,
            "training text too short for {b} streams of seq_length + 1"
        );
        // wrap to the start of every stream (and forget the hidden state) when the
        // next chunk would not fit: an epoch has passed
        let mut p = s.pointer as usize;
        if p + seq + 1 >= n {
            p = 0;
            s.state.reset();
            if s.iteration > 0 {
                s.epoch += 1;
                if s.hyper.lr_decay < 1.0 && s.epoch >= s.hyper.lr_decay_after {
                    s.learning_rate *= s.hyper.lr_decay;
                }
            }
        }
        let hd = s.model.config.hidden;
        for part in &mut self.parts {
            fill_chunk(
                train,
                n,
                part.streams.clone(),
                p,
                seq,
                &mut part.inputs,
                &mut part.targets,
            );
            part.ws.draw_dropout(s.hyper.dropout, &mut s.train_rng);
            let rows = part.streams.start * hd..part.streams.end * hd;
            for (mine, all) in part
                .state
                .h
                .iter_mut()
                .chain(&mut part.state.c)
                .zip(s.state.h.iter().chain(&s.state.c))
            {
                mine.copy_from_slice(&all[rows.clone()]);
            }
        }
        // the objective averages over all B streams, whichever part holds them
        let scale = stream_scale(b);
        let model = &s.model;
        let pair = self.pair.as_deref();
        if self.threads == 1 {
            self.parts
                .iter_mut()
                .for_each(|part| part.run(model, scale));
        } else if let (Some(pair), [a, b]) = (pair, &mut self.parts[..]) {
            pair.each([a, b], |_, part| part.run(model, scale));
        } else {
            let per_thread = self.parts.len().div_ceil(self.threads);
            std::thread::scope(|scope| {
                let mut groups = self.parts.chunks_mut(per_thread);
                let first = groups.next();
                for group in groups {
                    scope.spawn(move || group.iter_mut().for_each(|part| part.run(model, scale)));
                }
                first
                    .into_iter()
                    .flatten()
                    .for_each(|part| part.run(model, scale));
            });
        }
        let (first, rest) = self.parts.split_first_mut().expect("at least one part");
        let mut loss = first.loss;
        for part in rest {
            loss += part.loss;
            let add = |g: &mut [T], x: &[T]| g.iter_mut().zip(x).for_each(|(g, &x)| *g = *g + x);
            match pair {
                Some(pair) => {
                    let mid = first.grads.len() / 2;
                    let (g, x) = (first.grads.split_at_mut(mid), part.grads.split_at(mid));
                    pair.each([(g.0, x.0), (g.1, x.1)], |_, (g, x)| add(g, x));
                }
                None => add(&mut first.grads, &part.grads),
            }
        }
        let loss = loss / b as f64;
        for part in &self.parts {
            let rows = part.streams.start * hd..part.streams.end * hd;
            for (mine, all) in part
                .state
                .h
                .iter()
                .chain(&part.state.c)
                .zip(s.state.h.iter_mut().chain(&mut s.state.c))
            {
                all[rows.clone()].copy_from_slice(mine);
            }
        }
        if !loss.is_finite() {
            return Err(TrainError::Diverged {
                iteration: s.iteration + 1,
                what: format!("the loss became {loss}"),
                kept: String::new(),
            });
        }
        s.smooth_loss = 0.999 * s.smooth_loss + 0.001 * loss;
        s.last_loss = loss;
        let grads = &mut self.parts[0].grads;
        let clip = match s.hyper.clip {
            Clip::Value(c) => Some(T::c(c)),
            Clip::Norm(c) => {
                optim::clip_norm(grads, c);
                None
            }
        };
        s.optim.step_clipped(
            pair,
            s.learning_rate,
            &mut s.model.params,
            grads,
            clip,
            self.mine.clone(),
        );
        s.pointer = (p + seq) as u64;
        s.iteration += 1;
        Ok(loss)
    }

    /// A sample continuing stream 0 of the training text from its current hidden state.
    pub fn sample_text(&mut self, train: IdSlice<'_>, len: usize) -> String {
        let s = &mut self.state;
        let n = train.len() / s.hyper.batch_size;
        let next = train.get((s.pointer as usize).min(n - 1));
        let hd = s.model.config.hidden;
        let first = |layers: &Vec<Vec<T>>| layers.iter().map(|v| v[..hd].to_vec()).collect();
        let state = State {
            h: first(&s.state.h),
            c: first(&s.state.c),
        };
        let mut sampler = Sampler::with_state(&s.model, state, sample::Draw::default())
            .expect("default draw is valid");
        let mut text = String::with_capacity(len);
        let vocab = &s.vocab;
        sample::generate(&mut sampler, &[next], len, &mut s.sample_rng, |id| {
            text.push(vocab.char(id));
            Ok::<_, ()>(())
        })
        .expect("pushing to a String cannot fail");
        text
    }

    /// Validation loss in nats/char, with as many streams as training uses.
    pub fn validate_on(&self, val: IdSlice<'_>) -> Option<f64> {
        let h = &self.state.hyper;
        let (total, count) = evaluate(&self.state.model, val, h.batch_size, h.seq_length);
        (count > 0).then(|| total / count as f64)
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

    /// Trains on `train` until the schedule or `stop` says to stop, evaluating on
    /// `val` (when non-empty), then saves a checkpoint.
    pub fn run(
        &mut self,
        train: IdSlice<'_>,
        val: IdSlice<'_>,
        schedule: &Schedule,
        record: Record<'_>,
        obs: &mut dyn Observer,
        stop: &AtomicBool,
    ) -> Result<Stop, TrainError> {
        let Record {
            checkpoint,
            mut log,
            mut saved_at,
            best,
        } = record;
        let every = |n: u64, it: u64| n > 0 && it.is_multiple_of(n);
        let (seq, b) = (
            self.state.hyper.seq_length as u64,
            self.state.hyper.batch_size as u64,
        );
        let chars = |iters: u64| (iters * seq * b) as f64;
        // the training clock: wall time minus time spent evaluating
        let started = Instant::now();
        let mut evaluating = Duration::ZERO;
        let clock = |evaluating: Duration| started.elapsed().saturating_sub(evaluating);
        let elapsed_before = self.state.elapsed_s;
        let (mut log_t, mut log_it) = (Duration::ZERO, self.state.iteration);
        let (mut prog_t, mut prog_it) = (Duration::ZERO, self.state.iteration);
        // a run that stops early says which checkpoint on disk is still good
        let kept = |saved_at: Option<u64>| match saved_at {
            Some(i) => format!(
                "The last good checkpoint (iteration {i}) is intact in {}.",
                checkpoint.display()
            ),
            None => "No checkpoint had been written yet.".to_string(),
        };
        let note_kept = |e: TrainError, saved_at: Option<u64>| match e {
            TrainError::Diverged {
                iteration, what, ..
            } => TrainError::Diverged {
                iteration,
                what,
                kept: kept(saved_at),
            },
            other => other,
        };
        // A checkpoint that cannot be written (a full disk) is reported and tried
        // again at the next one: the last good checkpoint stays intact, and the
        // run recovers by itself once there is space. Only the final save is fatal.
        let save_failed = |obs: &mut dyn Observer,
                           path: &Path,
                           it: u64,
                           e: &CheckpointError,
                           saved_at| {
            obs.warn(&format!(
                "could not save {} at iteration {it}: {e}. {} Training goes on and tries again at the next save.",
                path.display(),
                kept(saved_at)
            ))
        };
        let mut log_failing = false;
        let reason = loop {
            if stop.load(Ordering::SeqCst) {
                break Stop::Interrupted;
            }
            if schedule.until.is_some_and(|n| self.state.iteration >= n) {
                break Stop::Iterations;
            }
            if schedule.max_time.is_some_and(|t| clock(evaluating) >= t) {
                break Stop::TimeLimit;
            }
            let loss = self.step(train).map_err(|e| note_kept(e, saved_at))?;
            let it = self.state.iteration;
            let mut val_loss = None;
            if !val.is_empty() && every(schedule.eval_every, it) {
                let eval_started = Instant::now();
                val_loss = self.validate_on(val);
                evaluating += eval_started.elapsed();
                if let Some(v) = val_loss {
                    let is_best = self.state.best_val.is_none_or(|b| v < b);
                    self.state.last_val = Some(v);
                    if is_best {
                        self.state.best_val = Some(v);
                    }
                    obs.evaluated(it, v, is_best);
                    if let Some(path) = best.as_deref().filter(|_| is_best) {
                        match self.save(path, obs) {
                            Ok(()) => {}
                            Err(TrainError::Checkpoint(e)) => {
                                save_failed(obs, path, it, &e, saved_at)
                            }
                            Err(e) => return Err(note_kept(e, saved_at)),
                        }
                    }
                }
            }
            let now = clock(evaluating);
            self.state.elapsed_s = elapsed_before + now.as_secs_f64();
            if let Some(log) = log
                .as_deref_mut()
                .filter(|_| every(schedule.log_every, it) || val_loss.is_some())
            {
                let secs = (now - log_t).as_secs_f64();
                let row = Row {
                    iteration: it,
                    loss: loss / seq as f64,
                    smooth_loss: self.state.smooth_loss / seq as f64,
                    chars_per_sec: (chars(it - log_it) / secs.max(1e-9)).round(),
                    elapsed_s: (self.state.elapsed_s * 1000.0).round() / 1000.0,
                    val_loss,
                };
                // a row that cannot be written is left out (the file stays whole);
                // said once per run of failures, not at every row
                match log.append(&row) {
                    Ok(()) if log_failing => {
                        log_failing = false;
                        obs.warn(&format!(
                            "{}: writing rows again from iteration {it}",
                            log.path().display()
                        ));
                    }
                    Ok(()) => {}
                    Err(e) if !log_failing => {
                        log_failing = true;
                        obs.warn(&format!("{e}; rows are left out until it can be written again (training goes on)"));
                    }
                    Err(_) => {}
                }
                (log_t, log_it) = (now, it);
            }
            if every(schedule.sample_every, it) {
                let text = self.sample_text(train, schedule.sample_len);
                let s = self.state.smooth_loss;
                obs.report(it, s, s / seq as f64, &text);
            }
            if every(schedule.checkpoint_every, it) {
                match self.save(checkpoint, obs) {
                    Ok(()) => saved_at = Some(it),
                    Err(TrainError::Checkpoint(e)) => {
                        save_failed(obs, checkpoint, it, &e, saved_at)
                    }
                    Err(e) => return Err(note_kept(e, saved_at)),
                }
            }
            if now - prog_t >= Duration::from_millis(100) {
                let rate = chars(it - prog_it) / (now - prog_t).as_secs_f64();
                obs.progress(it, self.state.smooth_loss / seq as f64, rate);
                (prog_t, prog_it) = (now, it);
            }
        };
        self.state.elapsed_s = elapsed_before + clock(evaluating).as_secs_f64();
        if saved_at != Some(self.state.iteration) {
            match self.save(checkpoint, obs) {
                Ok(()) => {}
                Err(TrainError::Checkpoint(cause)) => {
                    return Err(TrainError::FinalSave {
                        iteration: self.state.iteration,
                        cause,
                        kept: kept(saved_at),
                    });
                }
                Err(e) => return Err(note_kept(e, saved_at)),
            }
        }
        Ok(reason)
    }
}

/// A seed for runs started without `--rng-seed`, recorded in the checkpoint.
pub fn fresh_seed() -> u64 {
    rand::rng().random::<u32>() as u64
}
