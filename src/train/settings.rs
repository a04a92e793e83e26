//! A run's settings as a command line gives them (`None` = not given): how a
//! new run resolves them to its architecture, training settings and learning
//! rate, and how a resumed run checks them against its checkpoint. These are
//! the flags themselves (`charrnn train` flattens them), so no field is copied.

use std::time::Duration;

use crate::flags::{decay_factor, non_negative_float, positive_float, positive_int, unit_interval};
use crate::linalg::Precision;
use crate::model::{Cell, Config};
use crate::optim::{Kind, Rule};

use super::rate::{LearningRate, LrSchedule};
use super::state::{Clip, Hyper, Session, TrainState};

const MODEL: &str = "Model (fixed for a run)";
const OPTIM: &str = "Training (fixed for a run)";

/// The architecture and the training settings: fixed for the life of a run.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Settings {
    /// Recurrent cell [default: rnn, min-char-rnn's tanh RNN]
    #[arg(long, value_enum, hide_possible_values = true, value_name = "rnn|lstm|gru", help_heading = MODEL)]
    pub cell: Option<Cell>,
    /// Hidden units per layer [default: 100]
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>, allow_negative_numbers = true, help_heading = MODEL)]
    pub hidden_size: Option<usize>,
    /// Stacked recurrent layers [default: 1]
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>, allow_negative_numbers = true, help_heading = MODEL)]
    pub layers: Option<usize>,
    /// Width of a learned character embedding; 0 feeds one-hot vectors as min-char-rnn [default: 0]
    #[arg(long, value_name = "E", help_heading = MODEL)]
    pub embedding_size: Option<usize>,
    /// Arithmetic precision; f64 matches min-char-rnn's NumPy float64 step for step, f32 is
    /// faster but drifts from it within a few iterations [default: f64 for rnn, f32 for lstm, gru]
    #[arg(long, value_enum, hide_possible_values = true, value_name = "f32|f64", help_heading = MODEL)]
    pub precision: Option<Precision>,

    /// Characters per chunk of backpropagation through time [default: 25]
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>, allow_negative_numbers = true, help_heading = OPTIM)]
    pub seq_length: Option<usize>,
    /// Independent streams over the text, each with its own hidden state [default: 1]
    #[arg(long, value_name = "B", value_parser = positive_int::<usize>, allow_negative_numbers = true, help_heading = OPTIM)]
    pub batch_size: Option<usize>,
    /// Update rule [default: adagrad]
    #[arg(long, value_enum, hide_possible_values = true, value_name = "adagrad|rmsprop|adam", help_heading = OPTIM)]
    pub optimizer: Option<Rule>,
    /// Learning rate [default: 0.1 for adagrad, 2e-3 for rmsprop and adam]
    #[arg(long, value_name = "LR", value_parser = positive_float, allow_negative_numbers = true, help_heading = OPTIM)]
    pub learning_rate: Option<f64>,
    /// RMSprop's decay of the mean square [default: 0.95]
    #[arg(long, value_name = "D", value_parser = unit_interval, allow_negative_numbers = true, help_heading = OPTIM)]
    pub decay_rate: Option<f64>,
    /// Multiply the learning rate by F after each epoch, from --lr-decay-after on [default: 1, no decay]
    #[arg(long, value_name = "F", value_parser = decay_factor, allow_negative_numbers = true, help_heading = OPTIM)]
    pub lr_decay: Option<f64>,
    /// First epoch after which --lr-decay applies [default: 10]
    #[arg(long, value_name = "EPOCHS", help_heading = OPTIM)]
    pub lr_decay_after: Option<u64>,
    /// How the learning rate moves: step (char-rnn's per-epoch --lr-decay), or cosine or linear
    /// down to --min-lr over the run (--decay-iters, else --iters, else what --max-time allows
    /// at the speed measured over its first 10%), or constant [default: step]
    #[arg(long, value_enum, hide_possible_values = true, value_name = "step|cosine|linear|constant", help_heading = OPTIM)]
    pub lr_schedule: Option<LrSchedule>,
    /// Ramp the learning rate up linearly over the first N iterations [default: 0]
    #[arg(long, value_name = "N", help_heading = OPTIM)]
    pub warmup: Option<u64>,
    /// Where cosine and linear schedules end [default: 0]
    #[arg(long, value_name = "LR", value_parser = non_negative_float, allow_negative_numbers = true, help_heading = OPTIM)]
    pub min_lr: Option<f64>,
    /// The iteration count cosine and linear decay over, whatever this session's --iters
    /// [default: --iters, or from --max-time]
    #[arg(long, value_name = "N", value_parser = positive_int::<u64>, help_heading = OPTIM)]
    pub decay_iters: Option<u64>,
    /// Decoupled weight decay on the weight matrices and the embedding (not biases), as
    /// PyTorch's AdamW: w <- w (1 - lr W) at every update [default: 0]
    #[arg(long, value_name = "W", value_parser = non_negative_float, allow_negative_numbers = true, help_heading = OPTIM)]
    pub weight_decay: Option<f64>,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999),
    /// bias-corrected; validation, --keep-best, eval, sample and export use it [default: off]
    #[arg(long, value_name = "DECAY", value_parser = unit_interval, allow_negative_numbers = true, help_heading = OPTIM)]
    pub ema: Option<f64>,
    /// Clip every gradient element to [-C, C] [default: 5]
    #[arg(long, value_name = "C", value_parser = positive_float, allow_negative_numbers = true, help_heading = OPTIM)]
    pub clip: Option<f64>,
    /// Instead of --clip, scale the gradient down to global L2 norm N when it is larger
    #[arg(long, value_name = "N", value_parser = positive_float, allow_negative_numbers = true, conflicts_with = "clip", help_heading = OPTIM)]
    pub clip_norm: Option<f64>,
    /// Dropout probability on each layer's output, training only [default: 0]
    #[arg(long, value_name = "P", value_parser = unit_interval, allow_negative_numbers = true, help_heading = OPTIM)]
    pub dropout: Option<f64>,
    /// Hold out the last fraction of the text for validation [default: 0]
    #[arg(long, value_name = "F", value_parser = unit_interval, allow_negative_numbers = true, help_heading = OPTIM)]
    pub val_fraction: Option<f64>,
    /// Seed for weights, dropout and samples; same seed, data and flags give identical weights [default: random, printed]
    #[arg(long, value_name = "N", help_heading = OPTIM)]
    pub rng_seed: Option<u64>,
}

/// When this session stops and how often it reports, logs, validates and saves.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SessionFlags {
    /// Stop when the iteration count reaches N (counted from the run's start, so
    /// `--resume --iters N` finishes an interrupted run) [default: run until Ctrl+C]
    #[arg(long, value_name = "N")]
    pub iters: Option<u64>,
    /// Stop after this much training time in this session, e.g. 90s, 10m, 1h30m
    #[arg(long, value_name = "DURATION")]
    pub max_time: Option<humantime::Duration>,
    /// Print the smooth loss and a sample every N iterations (0 = never) [default: 100; a
    /// resumed run keeps its own]
    #[arg(long, value_name = "N")]
    pub sample_every: Option<u64>,
    /// Characters in each of those samples [default: 200; a resumed run keeps its own]
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>)]
    pub sample_len: Option<usize>,
    /// Save a checkpoint every N iterations (0 = only at the end) [default: 1000; a resumed
    /// run keeps its own]
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Write a loss history row every N iterations (1 = every iteration, 0 = no CSV)
    /// [default: 100; a resumed run keeps its own]
    #[arg(long, value_name = "N")]
    pub log_every: Option<u64>,
    /// Measure the validation loss every N iterations (with --val-fraction; 0 = never)
    /// [default: 1000; a resumed run keeps its own]
    #[arg(long, value_name = "N")]
    pub eval_every: Option<u64>,
    /// Also keep the checkpoint with the best validation loss, beside --checkpoint as
    /// NAME.best.EXT (a resumed run keeps doing so if it did)
    #[arg(long)]
    pub keep_best: bool,
}

impl Settings {
    /// The optimizer named by the flags (adagrad unless given).
    fn optimizer_kind(&self) -> Kind {
        let decay = self.decay_rate.unwrap_or(0.95);
        match self.optimizer.unwrap_or(Rule::Adagrad) {
            Rule::Rmsprop => Kind::RmsProp { decay },
            Rule::Adam => Kind::Adam {
                beta1: 0.9,
                beta2: 0.999,
            },
            Rule::Adagrad => Kind::Adagrad,
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

    /// The training settings of a new run: each flag given, else its default;
    /// the streams in `shares` shares.
    pub fn hyper(&self, default_seed: u64, shares: usize) -> Hyper {
        let d = Hyper::default();
        Hyper {
            seq_length: self.seq_length.unwrap_or(d.seq_length),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            optimizer: self.optimizer_kind(),
            clip: match self.clip_norm {
                Some(n) => Clip::Norm(n),
                None => Clip::Value(self.clip.unwrap_or(5.0)),
            },
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            dropout: self.dropout.unwrap_or(d.dropout),
            val_fraction: self.val_fraction.unwrap_or(d.val_fraction),
            rng_seed: self.rng_seed.unwrap_or(default_seed),
            shares,
        }
    }

    /// The learning rate of a new run: the rate (else the optimizer's default),
    /// its step decay, its schedule and warmup; the schedule's length is fixed
    /// later, once ([`LearningRate::fix_length`]).
    pub fn rate(&self) -> Result<LearningRate, String> {
        let d = LearningRate::default();
        let base = self
            .learning_rate
            .unwrap_or(self.optimizer_kind().default_learning_rate());
        let rate = LearningRate {
            base,
            decay: self.lr_decay.unwrap_or(d.decay),
            decay_after: self.lr_decay_after.unwrap_or(d.decay_after),
            stepped: base,
            schedule: self.lr_schedule.unwrap_or(d.schedule),
            warmup: self.warmup.unwrap_or(d.warmup),
            min_lr: self.min_lr.unwrap_or(d.min_lr),
            total: None,
        };
        let decays = rate.schedule.decays_over_the_run();
        if !decays && (self.decay_iters.is_some() || self.min_lr.is_some()) {
            return Err(format!(
                "--decay-iters and --min-lr are for --lr-schedule cosine or linear, not {}",
                rate.schedule
            ));
        }
        if rate.schedule != LrSchedule::Step
            && (self.lr_decay.is_some() || self.lr_decay_after.is_some())
        {
            return Err(format!(
                "--lr-decay and --lr-decay-after are for --lr-schedule step, not {}",
                rate.schedule
            ));
        }
        if rate.min_lr > base {
            return Err(format!(
                "--min-lr {} is above the learning rate {base}",
                rate.min_lr
            ));
        }
        Ok(rate)
    }

    /// Flags that disagree with a saved run, described for a message
    /// ("--hidden-size 200 (checkpoint has 100)"). A schedule's length may be
    /// given while the run has not fixed it yet.
    pub fn conflicts<T>(&self, s: &TrainState<T>, precision: Precision) -> Vec<String> {
        let (h, c, r) = (&s.hyper, &s.model.config, &s.rate);
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
        check(
            &mut out,
            "--optimizer",
            self.optimizer.map(Rule::name),
            h.optimizer.name(),
        );
        if let Kind::RmsProp { decay } = h.optimizer {
            check(&mut out, "--decay-rate", self.decay_rate, decay);
        }
        check(&mut out, "--learning-rate", self.learning_rate, r.base);
        check(&mut out, "--lr-decay", self.lr_decay, r.decay);
        check(
            &mut out,
            "--lr-decay-after",
            self.lr_decay_after,
            r.decay_after,
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
        check(&mut out, "--lr-schedule", self.lr_schedule, r.schedule);
        check(&mut out, "--warmup", self.warmup, r.warmup);
        check(&mut out, "--min-lr", self.min_lr, r.min_lr);
        check(
            &mut out,
            "--weight-decay",
            self.weight_decay,
            h.weight_decay,
        );
        if let Some(have) = r.total {
            check(&mut out, "--decay-iters", self.decay_iters, have);
        }
        match (self.ema, &s.ema) {
            (Some(d), Some(e)) if d != e.decay => {
                out.push(format!("--ema {d} (checkpoint has {})", e.decay))
            }
            (Some(d), None) if d > 0.0 => {
                out.push(format!("--ema {d} (checkpoint keeps no average)"))
            }
            _ => {}
        }
        out
    }
}

impl SessionFlags {
    /// This session: its limits, and the cadences given, else those of the run
    /// resumed (`stored`) or the defaults, with a note for each flag that
    /// changes a stored cadence.
    pub fn session(&self, stored: Option<&Session>) -> (Session, Vec<String>) {
        let base = stored.cloned().unwrap_or_default();
        let mut notes = Vec::new();
        let mut pick = |flag: &str, given: Option<u64>, have: u64| match given {
            Some(g) if stored.is_some() && g != have => {
                notes.push(format!("{flag} {g} (the run had {have})"));
                g
            }
            Some(g) => g,
            None => have,
        };
        let sample_every = pick("--sample-every", self.sample_every, base.sample_every);
        let sample_len = pick(
            "--sample-len",
            self.sample_len.map(|n| n as u64),
            base.sample_len as u64,
        ) as usize;
        let log_every = pick("--log-every", self.log_every, base.log_every);
        let eval_every = pick("--eval-every", self.eval_every, base.eval_every);
        let checkpoint_every = pick(
            "--checkpoint-every",
            self.checkpoint_every,
            base.checkpoint_every,
        );
        if self.keep_best && stored.is_some() && !base.keep_best {
            notes.push("--keep-best (the run did not keep its best)".into());
        }
        let session = Session {
            until: self.iters,
            max_time: self.max_time.map(Duration::from),
            sample_every,
            sample_len,
            log_every,
            eval_every,
            checkpoint_every,
            keep_best: self.keep_best || base.keep_best,
        };
        (session, notes)
    }
}

/// Adds "FLAG GIVEN (checkpoint has HAVE)" to `out` when a flag was given and
/// disagrees with the saved run.
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
