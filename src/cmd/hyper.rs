//! The training settings as given on a command line ([`HyperFlags`]: `None` =
//! not given), how a new run resolves them, and how a resumed run checks them
//! against its checkpoint.

use charrnn::linalg::Precision;
use charrnn::model::{Cell, Config};
use charrnn::optim::{Kind, Rule};
use charrnn::train::{Clip, Hyper, LrSchedule, Plan};

/// Settings as given on a command line: `None` = not given.
#[derive(Clone, Debug, Default)]
pub struct HyperFlags {
    pub cell: Option<Cell>,
    pub hidden_size: Option<usize>,
    pub layers: Option<usize>,
    pub embedding_size: Option<usize>,
    pub seq_length: Option<usize>,
    pub batch_size: Option<usize>,
    pub optimizer: Option<Rule>,
    pub learning_rate: Option<f64>,
    pub decay_rate: Option<f64>,
    pub lr_decay: Option<f64>,
    pub lr_decay_after: Option<u64>,
    pub lr_schedule: Option<LrSchedule>,
    pub warmup: Option<u64>,
    pub min_lr: Option<f64>,
    pub decay_iters: Option<u64>,
    pub weight_decay: Option<f64>,
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
            shares: 1,
        }
    }

    /// The schedule and weight decay of a new run; `iters` and `timed` say
    /// whether the session has an iteration or a time limit (a cosine or linear
    /// schedule needs one of them, or --decay-iters).
    pub fn plan(&self, base_lr: f64, iters: Option<u64>, timed: bool) -> Result<Plan, String> {
        let d = Plan::default();
        let schedule = self.lr_schedule.unwrap_or(d.schedule);
        let decays = schedule.decays_over_the_run();
        let plan = Plan {
            schedule,
            warmup: self.warmup.unwrap_or(d.warmup),
            min_lr: self.min_lr.unwrap_or(d.min_lr),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            // without a time limit the length is known now; with one, the run
            // measures its speed first (and keeps to --iters if that is shorter)
            total: self.decay_iters.or(iters.filter(|_| decays && !timed)),
        };
        if decays && plan.total.is_none() && iters.is_none() && !timed {
            return Err(format!(
                "--lr-schedule {} decays over the run: give its length with --iters, --max-time or --decay-iters",
                plan.schedule
            ));
        }
        if !decays && (self.decay_iters.is_some() || self.min_lr.is_some()) {
            return Err(format!(
                "--decay-iters and --min-lr are for --lr-schedule cosine or linear, not {}",
                plan.schedule
            ));
        }
        if plan.schedule != LrSchedule::Step
            && (self.lr_decay.is_some() || self.lr_decay_after.is_some())
        {
            return Err(format!(
                "--lr-decay and --lr-decay-after are for --lr-schedule step, not {}",
                plan.schedule
            ));
        }
        if plan.min_lr > base_lr {
            return Err(format!(
                "--min-lr {} is above the learning rate {base_lr}",
                plan.min_lr
            ));
        }
        Ok(plan)
    }

    /// Flags that disagree with a saved run's plan (its schedule length may be
    /// given when the run had not fixed it yet).
    pub fn plan_conflicts(&self, p: &Plan) -> Vec<String> {
        let mut out = Vec::new();
        check(&mut out, "--lr-schedule", self.lr_schedule, p.schedule);
        check(&mut out, "--warmup", self.warmup, p.warmup);
        check(&mut out, "--min-lr", self.min_lr, p.min_lr);
        check(
            &mut out,
            "--weight-decay",
            self.weight_decay,
            p.weight_decay,
        );
        if let Some(have) = p.total {
            check(&mut out, "--decay-iters", self.decay_iters, have);
        }
        out
    }

    /// Flags that disagree with a saved run, described for a message
    /// ("--hidden-size 200 (checkpoint has 100)").
    pub fn conflicts(&self, h: &Hyper, c: &Config, precision: Precision) -> Vec<String> {
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
