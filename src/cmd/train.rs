//! `charrnn train`: start or resume a run, show progress, save on Ctrl+C.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use charrnn::corpus::{self, Ids, Scan, Source};
use charrnn::data::DataError;
use charrnn::fsutil::{self, Lock};
use charrnn::history::LossLog;
use charrnn::linalg::{Precision, Real};
use charrnn::model::Cell;
use charrnn::optim::Rule;
use charrnn::train::{
    self, Clip, LrSchedule, Observer, Record, Schedule, Session, Stop, TrainState, Trainer,
};

use super::hyper::HyperFlags;
use super::signals;
use charrnn::{baselines, checkpoint, npz, with_state};

use super::{decay_factor, non_negative_float, positive_float, positive_int, unit_interval, usage};

/// Train a model on a text file (or the built-in corpus). Defaults are min-char-rnn's.
#[derive(clap::Args)]
pub struct Args {
    /// UTF-8 text to train on [default: the corpus built into charrnn]
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,

    /// Recurrent cell [default: rnn, min-char-rnn's tanh RNN]
    #[arg(long, value_enum, hide_possible_values = true, value_name = "rnn|lstm|gru", help_heading = MODEL)]
    cell: Option<Cell>,
    /// Hidden units per layer [default: 100]
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>, allow_negative_numbers = true, help_heading = MODEL)]
    hidden_size: Option<usize>,
    /// Stacked recurrent layers [default: 1]
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>, allow_negative_numbers = true, help_heading = MODEL)]
    layers: Option<usize>,
    /// Width of a learned character embedding; 0 feeds one-hot vectors as min-char-rnn [default: 0]
    #[arg(long, value_name = "E", help_heading = MODEL)]
    embedding_size: Option<usize>,
    /// Arithmetic precision; f64 matches min-char-rnn's NumPy float64 step for step, f32 is
    /// faster but drifts from it within a few iterations [default: f64 for rnn, f32 for lstm, gru]
    #[arg(long, value_enum, hide_possible_values = true, value_name = "f32|f64", help_heading = MODEL)]
    precision: Option<Precision>,
    /// Start from weights in a NumPy .npz (as `charrnn export` writes them; min-char-rnn's Wxh, Whh, Why, bh, by)
    #[arg(long, value_name = "PATH", conflicts_with = "resume", help_heading = MODEL)]
    init_npz: Option<PathBuf>,

    /// Characters per chunk of backpropagation through time [default: 25]
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>, allow_negative_numbers = true, help_heading = OPTIM)]
    seq_length: Option<usize>,
    /// Independent streams over the text, each with its own hidden state [default: 1]
    #[arg(long, value_name = "B", value_parser = positive_int::<usize>, allow_negative_numbers = true, help_heading = OPTIM)]
    batch_size: Option<usize>,
    /// Update rule [default: adagrad]
    #[arg(long, value_enum, hide_possible_values = true, value_name = "adagrad|rmsprop|adam", help_heading = OPTIM)]
    optimizer: Option<Rule>,
    /// Learning rate [default: 0.1 for adagrad, 2e-3 for rmsprop and adam]
    #[arg(long, value_name = "LR", value_parser = positive_float, allow_negative_numbers = true, help_heading = OPTIM)]
    learning_rate: Option<f64>,
    /// RMSprop's decay of the mean square [default: 0.95]
    #[arg(long, value_name = "D", value_parser = unit_interval, allow_negative_numbers = true, help_heading = OPTIM)]
    decay_rate: Option<f64>,
    /// Multiply the learning rate by F after each epoch, from --lr-decay-after on [default: 1, no decay]
    #[arg(long, value_name = "F", value_parser = decay_factor, allow_negative_numbers = true, help_heading = OPTIM)]
    lr_decay: Option<f64>,
    /// First epoch after which --lr-decay applies [default: 10]
    #[arg(long, value_name = "EPOCHS", help_heading = OPTIM)]
    lr_decay_after: Option<u64>,
    /// How the learning rate moves: step (char-rnn's per-epoch --lr-decay), or cosine or linear
    /// down to --min-lr over the run (--decay-iters, else --iters, else what --max-time allows
    /// at the speed measured over its first 10%), or constant [default: step]
    #[arg(long, value_enum, hide_possible_values = true, value_name = "step|cosine|linear|constant", help_heading = OPTIM)]
    lr_schedule: Option<LrSchedule>,
    /// Ramp the learning rate up linearly over the first N iterations [default: 0]
    #[arg(long, value_name = "N", help_heading = OPTIM)]
    warmup: Option<u64>,
    /// Where cosine and linear schedules end [default: 0]
    #[arg(long, value_name = "LR", value_parser = non_negative_float, allow_negative_numbers = true, help_heading = OPTIM)]
    min_lr: Option<f64>,
    /// The iteration count cosine and linear decay over, whatever this session's --iters
    /// [default: --iters, or from --max-time]
    #[arg(long, value_name = "N", value_parser = positive_int::<u64>, help_heading = OPTIM)]
    decay_iters: Option<u64>,
    /// Decoupled weight decay on the weight matrices and the embedding (not biases), as
    /// PyTorch's AdamW: w <- w (1 - lr W) at every update [default: 0]
    #[arg(long, value_name = "W", value_parser = non_negative_float, allow_negative_numbers = true, help_heading = OPTIM)]
    weight_decay: Option<f64>,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999),
    /// bias-corrected; validation, --keep-best, eval, sample and export use it [default: off]
    #[arg(long, value_name = "DECAY", value_parser = unit_interval, allow_negative_numbers = true, help_heading = OPTIM)]
    ema: Option<f64>,
    /// Clip every gradient element to [-C, C] [default: 5]
    #[arg(long, value_name = "C", value_parser = positive_float, allow_negative_numbers = true, help_heading = OPTIM)]
    clip: Option<f64>,
    /// Instead of --clip, scale the gradient down to global L2 norm N when it is larger
    #[arg(long, value_name = "N", value_parser = positive_float, allow_negative_numbers = true, conflicts_with = "clip", help_heading = OPTIM)]
    clip_norm: Option<f64>,
    /// Dropout probability on each layer's output, training only [default: 0]
    #[arg(long, value_name = "P", value_parser = unit_interval, allow_negative_numbers = true, help_heading = OPTIM)]
    dropout: Option<f64>,
    /// Hold out the last fraction of the text for validation [default: 0]
    #[arg(long, value_name = "F", value_parser = unit_interval, allow_negative_numbers = true, help_heading = OPTIM)]
    val_fraction: Option<f64>,
    /// Seed for weights, dropout and samples; same seed, data and flags give identical weights [default: random, printed]
    #[arg(long, value_name = "N", help_heading = OPTIM)]
    rng_seed: Option<u64>,

    /// Stop when the iteration count reaches N (counted from the run's start, so
    /// `--resume --iters N` finishes an interrupted run) [default: run until Ctrl+C]
    #[arg(long, value_name = "N")]
    iters: Option<u64>,
    /// Stop after this much training time in this session, e.g. 90s, 10m, 1h30m
    #[arg(long, value_name = "DURATION")]
    max_time: Option<humantime::Duration>,
    /// Print the smooth loss and a sample every N iterations (0 = never) [default: 100; a
    /// resumed run keeps its own]
    #[arg(long, value_name = "N")]
    sample_every: Option<u64>,
    /// Characters in each of those samples [default: 200; a resumed run keeps its own]
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>)]
    sample_len: Option<usize>,
    /// Checkpoint file: written every --checkpoint-every iterations, at the end and on Ctrl+C
    #[arg(long, value_name = "PATH", default_value = "charrnn.ckpt")]
    checkpoint: PathBuf,
    /// Save a checkpoint every N iterations (0 = only at the end) [default: 1000; a resumed
    /// run keeps its own]
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<u64>,
    /// Loss history CSV (appended to on --resume)
    #[arg(long, value_name = "PATH", default_value = "loss_history.csv")]
    loss_csv: PathBuf,
    /// Write a loss history row every N iterations (1 = every iteration, 0 = no CSV)
    /// [default: 100; a resumed run keeps its own]
    #[arg(long, value_name = "N")]
    log_every: Option<u64>,
    /// Threads to train with [default: the available cores]; a new run with --batch-size B
    /// splits its streams into min(threads, B) parts for good (results depend on that split)
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>, allow_negative_numbers = true)]
    threads: Option<usize>,
    /// Measure the validation loss every N iterations (with --val-fraction; 0 = never)
    /// [default: 1000; a resumed run keeps its own]
    #[arg(long, value_name = "N")]
    eval_every: Option<u64>,
    /// Also keep the checkpoint with the best validation loss, beside --checkpoint as
    /// NAME.best.EXT (a resumed run keeps doing so if it did)
    #[arg(long)]
    keep_best: bool,
    /// Continue the run saved in --checkpoint exactly where it stopped
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    memory: super::MemoryFlag,
    /// With --resume: accept a text other than the one the checkpoint was trained on
    #[arg(long, requires = "resume")]
    allow_data_change: bool,
    /// Start a new run even if --checkpoint or --loss-csv already exist (overwriting them)
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Keep the N-1 most frequent characters and map all others to one unknown symbol (U+FFFD);
    /// for texts with thousands of rare characters. A new run's choice; a resumed run keeps it
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>, conflicts_with = "resume")]
    max_vocab: Option<usize>,
}

const MODEL: &str = "Model (fixed for a run)";
const OPTIM: &str = "Training (fixed for a run)";

impl Args {
    fn hyper_flags(&self) -> HyperFlags {
        HyperFlags {
            cell: self.cell,
            hidden_size: self.hidden_size,
            layers: self.layers,
            embedding_size: self.embedding_size,
            seq_length: self.seq_length,
            batch_size: self.batch_size,
            optimizer: self.optimizer,
            learning_rate: self.learning_rate,
            decay_rate: self.decay_rate,
            lr_decay: self.lr_decay,
            lr_decay_after: self.lr_decay_after,
            lr_schedule: self.lr_schedule,
            warmup: self.warmup,
            min_lr: self.min_lr,
            decay_iters: self.decay_iters,
            weight_decay: self.weight_decay,
            clip: self.clip,
            clip_norm: self.clip_norm,
            dropout: self.dropout,
            val_fraction: self.val_fraction,
            rng_seed: self.rng_seed,
            precision: self.precision,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let ckpt = args.checkpoint.as_path();
    if args.max_vocab.is_some_and(|n| n < 2) {
        return Err(usage(
            "--max-vocab must be at least 2 (one character and the unknown symbol)",
        ));
    }
    checkpoint::check_writable(ckpt)?;
    // one run per checkpoint and loss history; held until this process exits
    let mut locks = vec![Lock::acquire(ckpt)?];
    if let Some(csv) = args.loss_csv() {
        fsutil::check_writable(csv)
            .with_context(|| format!("cannot write the loss history {}", csv.display()))?;
        locks.push(Lock::acquire(csv)?);
    }
    // holding the locks, any temp file beside these is a killed writer's leftover
    let best = best_path(ckpt);
    let stale: usize = [Some(ckpt), Some(best.as_path()), args.loss_csv()]
        .into_iter()
        .flatten()
        .map(fsutil::remove_stale_temps)
        .sum();
    if stale > 0 {
        eprintln!(
            "note: removed {stale} temp file(s) left by an earlier run that was killed while saving"
        );
    }
    if !args.resume && !args.force {
        refuse_overwrite(ckpt, args.loss_csv())?;
    }
    if args.resume && !ckpt.exists() {
        return Err(usage(format!(
            "--resume: there is no checkpoint at {}; start a new run without --resume",
            ckpt.display()
        )));
    }
    // what the flags alone say the run needs, before reading anything (the text
    // at least a quarter of its bytes in characters, the vocabulary at least 1)
    if args.resume {
        super::check_checkpoint_memory(ckpt, args.memory.max_memory)?;
    } else {
        let bytes = match &args.data {
            Some(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
            None => charrnn::data::BUILTIN_TEXT.len() as u64,
        };
        let flags = args.hyper_flags();
        let mut hyper = flags.resolve(0);
        hyper.shares = args.threads().min(hyper.batch_size);
        let value = if flags.precision() == Precision::F32 {
            4
        } else {
            8
        };
        let session = args.session(None).0;
        let need = estimate(
            flags.config(1),
            &hyper,
            &session,
            value,
            bytes as u128 / 4,
            1,
            args.ema.is_some_and(|d| d > 0.0),
        );
        super::check_memory(&need, args.memory.max_memory)?;
    }
    let source = Source::file_or_builtin(args.data.as_deref());
    // first pass over the text: UTF-8 check, character counts, fingerprint
    let scan = corpus::scan(source)?;
    if args.resume {
        with_state!(checkpoint::load(ckpt)?, s => resume(&args, s, scan))
    } else {
        match args.hyper_flags().precision() {
            Precision::F32 => start::<f32>(&args, scan),
            Precision::F64 => start::<f64>(&args, scan),
        }
    }
}

impl Args {
    fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The loss history, unless `--log-every 0` turns it off (a resumed run that
    /// was started with it off still has its path locked, which is harmless).
    fn loss_csv(&self) -> Option<&Path> {
        (self.log_every != Some(0)).then_some(self.loss_csv.as_path())
    }

    /// The session settings of this run: the flags given, else the stored
    /// settings of the run resumed (`stored`) or the defaults, with a note for
    /// each flag that changes a stored setting.
    fn session(&self, stored: Option<&Session>) -> (Session, Vec<String>) {
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
        let keep_best = self.keep_best || base.keep_best;
        (
            Session {
                sample_every,
                sample_len,
                log_every,
                eval_every,
                checkpoint_every,
                keep_best,
            },
            notes,
        )
    }
}

/// What a run of `config` and `hyper` needs in memory, with a text of `chars`
/// characters over a vocabulary of `vocab` (which sets the ids' width).
fn estimate(
    config: charrnn::model::Config,
    hyper: &charrnn::train::Hyper,
    session: &Session,
    value: usize,
    chars: u128,
    vocab: usize,
    averaged: bool,
) -> charrnn::memory::Estimate {
    let id_bytes = if vocab <= 1 << 8 {
        1
    } else if vocab <= 1 << 16 {
        2
    } else {
        4
    };
    charrnn::memory::training(&charrnn::memory::Run {
        config,
        value,
        seq: hyper.seq_length,
        batch: hyper.batch_size,
        shares: hyper.shares,
        dropout: hyper.dropout > 0.0,
        // --ema's average and the corrected copy validation makes of it count
        // as two more values per parameter
        optimizer_values: if matches!(hyper.optimizer, charrnn::optim::Kind::Adam { .. }) {
            2
        } else {
            1
        } + if averaged { 2 } else { 0 },
        text_chars: chars,
        id_bytes,
        validation: hyper.val_fraction > 0.0,
        samples: session.sample_every > 0,
        baseline_chars: match hyper.val_fraction {
            f if f > 0.0 => (chars as f64 * f) as u128,
            _ => chars,
        },
    })
}

/// A new run must not silently replace another run's files.
fn refuse_overwrite(ckpt: &Path, csv: Option<&Path>) -> Result<()> {
    let existing: Vec<String> = [Some(ckpt), csv]
        .into_iter()
        .flatten()
        .filter(|p| p.metadata().is_ok_and(|m| m.is_file() && m.len() > 0))
        .map(|p| p.display().to_string())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    Err(usage(format!(
        "{} already exist(s) from an earlier run; continue it with --resume, overwrite with --force, \
         or choose other paths with --checkpoint / --loss-csv",
        existing.join(" and ")
    )))
}

fn start<T: Real>(args: &Args, scan: Scan) -> Result<()> {
    let (vocab, folded) = scan.vocab(args.max_vocab);
    if let Some(f) = &folded {
        eprintln!(
            "--max-vocab {}: {} rare characters ({} occurrences, {:.3}% of the text) map to the unknown symbol {:?}",
            vocab.len(),
            f.distinct,
            f.occurrences,
            100.0 * f.occurrences as f64 / scan.info.chars as f64,
            corpus::UNKNOWN
        );
    }
    let flags = args.hyper_flags();
    let mut hyper = flags.resolve(train::fresh_seed());
    hyper.shares = args.threads().min(hyper.batch_size);
    let mut config = flags.config(vocab.len());
    let need = estimate(
        config,
        &hyper,
        &args.session(None).0,
        std::mem::size_of::<T>(),
        scan.info.chars as u128,
        vocab.len(),
        args.ema.is_some_and(|d| d > 0.0),
    );
    super::check_memory(&need, args.memory.max_memory)?;
    // second pass: the ids, as narrow as the vocabulary allows
    let ids = scan.encode(&vocab, folded.is_some())?;
    let init = match &args.init_npz {
        Some(path) => {
            let hidden = npz::hidden_size(path, config.cell)?;
            if let Some(h) = args.hidden_size.filter(|&h| h != hidden) {
                return Err(usage(format!(
                    "--hidden-size {h} conflicts with {}, whose weights have hidden size {hidden}",
                    path.display()
                )));
            }
            config.hidden = hidden;
            Some(npz::import::<T>(path, config)?.params)
        }
        None => None,
    };
    let plan = flags
        .plan(hyper.learning_rate, args.iters, args.max_time.is_some())
        .map_err(usage)?;
    let mut state = TrainState::new(config, hyper, vocab, scan.info.clone(), init);
    state.plan = plan;
    state.ema = args
        .ema
        .filter(|&d| d > 0.0)
        .map(|d| train::Ema::new(d, state.model.params.len()));
    train(args, state, ids, scan.info.name)
}

fn resume<T: Real>(args: &Args, mut state: TrainState<T>, scan: Scan) -> Result<()> {
    let ckpt = &args.checkpoint;
    let flags = args.hyper_flags();
    let mut conflicts = flags.conflicts(&state.hyper, state.config(), T::PRECISION);
    conflicts.extend(flags.plan_conflicts(&state.plan));
    match (args.ema, &state.ema) {
        (Some(d), Some(e)) if d != e.decay => {
            conflicts.push(format!("--ema {d} (checkpoint has {})", e.decay))
        }
        (Some(d), None) if d > 0.0 => {
            conflicts.push(format!("--ema {d} (checkpoint keeps no average)"))
        }
        _ => {}
    }
    if !conflicts.is_empty() {
        return Err(usage(format!(
            "these flags conflict with the run saved in {}: {}; drop them to resume, \
             or start a new run with --force",
            ckpt.display(),
            conflicts.join(", ")
        )));
    }
    // a run stopped before its schedule's length was fixed fixes it now
    let plan = &mut state.plan;
    if plan.schedule.decays_over_the_run() && plan.total.is_none() {
        plan.total = args
            .decay_iters
            .or(args.iters.filter(|_| args.max_time.is_none()));
        if plan.total.is_none() && args.iters.is_none() && args.max_time.is_none() {
            return Err(usage(format!(
                "this run's --lr-schedule {} has no length yet: give --iters, --max-time or --decay-iters",
                plan.schedule
            )));
        }
    }
    let info = scan.info.clone();
    if info.hash != state.text.hash {
        if !args.allow_data_change {
            return Err(usage(format!(
                "{} is not the text {} was trained on ({}, {} characters; this one has {}); \
                 pass --allow-data-change to continue training on it anyway",
                info.name,
                ckpt.display(),
                state.text.name,
                state.text.chars,
                info.chars
            )));
        }
        eprintln!(
            "note: continuing on a different text ({}), as --allow-data-change asks",
            info.name
        );
        state.text = info.clone();
    }
    let session = args.session(Some(&state.session)).0;
    let need = estimate(
        *state.config(),
        &state.hyper,
        &session,
        std::mem::size_of::<T>(),
        scan.info.chars as u128,
        state.vocab.len(),
        state.ema.is_some(),
    );
    super::check_memory(&need, args.memory.max_memory)?;
    // a run started with --max-vocab folds characters it never kept into U+FFFD
    let fold = state.vocab.id(corpus::UNKNOWN).is_some();
    let ids = scan
        .encode(&state.vocab, fold)
        .context("the text must use only the checkpoint's characters")?;
    train(args, state, ids, info.name)
}

fn train<T: Real>(
    args: &Args,
    mut state: TrainState<T>,
    ids: Ids,
    text_name: String,
) -> Result<()> {
    let ckpt = args.checkpoint.as_path();
    let (session, overrides) = args.session(args.resume.then_some(&state.session));
    state.session = session;
    let (train_ids, val_ids) = corpus::split_validation(ids.as_slice(), state.hyper.val_fraction);
    let need = train::min_chars(&state.hyper);
    if train_ids.len() < need {
        let h = &state.hyper;
        return Err(DataError::TooShort {
            name: text_name,
            len: train_ids.len(),
            need,
            streams: h.batch_size,
            seq: h.seq_length,
        }
        .into());
    }
    let csv = args.loss_csv().filter(|_| state.session.log_every > 0);
    let mut log = match csv {
        Some(path) if args.resume => {
            let (log, dropped) = LossLog::resume(path, state.iteration)?;
            if dropped > 0 {
                eprintln!(
                    "note: dropped {dropped} row(s) of {} logged after iteration {} (the checkpoint resumed from)",
                    path.display(),
                    state.iteration
                );
            }
            Some(log)
        }
        Some(path) => Some(LossLog::create(path)?),
        None => None,
    };

    print_banner(args.resume, &state, train_ids.len(), val_ids.len());
    let need = estimate(
        *state.config(),
        &state.hyper,
        &state.session,
        std::mem::size_of::<T>(),
        ids.len() as u128,
        state.vocab.len(),
        state.ema.is_some(),
    );
    eprintln!("  memory: about {}", charrnn::memory::Bytes(need.total()));
    if !overrides.is_empty() {
        eprintln!("  this session: {}", overrides.join(", "));
    }
    let session = &state.session;
    let schedule = Schedule {
        until: args.iters,
        max_time: args.max_time.map(Into::into),
        sample_every: session.sample_every,
        sample_len: session.sample_len,
        log_every: session.log_every,
        eval_every: session.eval_every,
        checkpoint_every: session.checkpoint_every,
    };
    let threads = args.threads();
    // matrixmultiply reads its thread count once, at its first product (none has run
    // yet). Every product runs on one thread: the trainer itself spreads the work,
    // one part of the streams per thread, or a single part's phases over two.
    // SAFETY: no other thread exists yet (the Ctrl+C handler starts below)
    unsafe { std::env::set_var("MATMUL_NUM_THREADS", "1") };
    // the first Ctrl+C, SIGTERM or SIGHUP finishes the iteration, saves and stops
    let stop = signals::install(
        Some("saving a checkpoint and stopping"),
        "aborting without saving",
    )?;
    let start_iteration = state.iteration;
    let best = state.session.keep_best.then(|| best_path(ckpt));
    let record = Record {
        checkpoint: ckpt,
        log: log.as_mut(),
        saved_at: args.resume.then_some(start_iteration),
        best: best.clone(),
    };
    let mut trainer = Trainer::new(state, threads);
    let mut ui = Ui::new(schedule.until, start_iteration);
    if !val_ids.is_empty() {
        let floor =
            baselines::unigram_of_ids(val_ids, &trainer.state.vocab) * std::f64::consts::LN_2;
        ui.floor = Some((floor, false));
    }
    let (started, elapsed_before) = (Instant::now(), trainer.state.elapsed_s);
    let reason = trainer.run(train_ids, val_ids, &schedule, record, &mut ui, &stop.flag);
    ui.bar.finish_and_clear();
    let reason = reason?;

    let s = &trainer.state;
    // the training clock (what --max-time counts) and, apart, the validation passes
    let secs = s.elapsed_s - elapsed_before;
    let validating = started.elapsed().as_secs_f64() - secs;
    let validating = match validating >= 0.05 {
        true => format!(", {validating:.1}s validating"),
        false => String::new(),
    };
    let done = s.iteration - start_iteration;
    let why = match reason {
        Stop::Iterations => format!("reached --iters {}", s.iteration),
        Stop::Planned => format!(
            "reached the {} iterations the schedule planned for --max-time",
            s.iteration
        ),
        Stop::TimeLimit => "reached --max-time".to_string(),
        Stop::Interrupted => match stop.signal() {
            Some(signal) if signal != signal_hook::consts::SIGINT => {
                signals::name(signal).to_string()
            }
            _ => "interrupted".to_string(),
        },
    };
    let per_char = s.smooth_loss / s.hyper.seq_length as f64;
    let recent = s.recent_per_char().map_or(String::new(), |r| {
        format!(", last ~100 iterations {r:.4} nats/char")
    });
    eprintln!(
        "stopped at iteration {} ({why}): smooth loss {:.4} ({per_char:.4} nats/char){recent}, {done} iterations in \
         {secs:.1}s of training ({:.0} it/s){validating}; saved {}",
        s.iteration,
        s.smooth_loss,
        done as f64 / secs.max(1e-9),
        ckpt.display()
    );
    let mut final_val = None;
    if !val_ids.is_empty() {
        let val = trainer.validate_on(val_ids).unwrap_or(f64::NAN);
        final_val = Some(val);
        eprintln!(
            "validation loss at iteration {}: {val:.4} nats/char ({:.4} bits/char), checkpoint {}",
            s.iteration,
            val / std::f64::consts::LN_2,
            ckpt.display()
        );
        if let (Some(path), Some(b)) = (&best, trainer.state.best_val) {
            // the best is tracked at the --eval-every evaluations only
            let note = if val < b {
                "; the final checkpoint above is better"
            } else {
                ""
            };
            eprintln!(
                "best of the periodic evaluations: {b:.4} nats/char, kept in {}{note}",
                path.display()
            );
        }
    }
    // what a good loss is: the model's beside two reference points on the same text
    let ln2 = std::f64::consts::LN_2;
    let (text, model_bits) = match trainer.state.recent_per_char() {
        _ if !val_ids.is_empty() => ("validation text", final_val.map(|v| v / ln2)),
        recent => (
            "training text, the last ~100 iterations",
            recent.map(|r| r / ln2),
        ),
    };
    if let Some(bits) = model_bits {
        let (unigram, xz) = baselines::of_ids(
            if val_ids.is_empty() {
                train_ids
            } else {
                val_ids
            },
            &trainer.state.vocab,
        );
        eprintln!("on the {text}: {}", baselines::compare(bits, unigram, xz));
    }
    if !matches!(reason, Stop::Iterations | Stop::Planned) {
        eprintln!(
            "continue with: charrnn train --resume --checkpoint {}",
            ckpt.display()
        );
    }
    Ok(())
}

/// charrnn.ckpt -> charrnn.best.ckpt
fn best_path(ckpt: &Path) -> PathBuf {
    let stem = ckpt
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match ckpt.extension() {
        Some(ext) => format!("{stem}.best.{}", ext.to_string_lossy()),
        None => format!("{stem}.best"),
    };
    ckpt.with_file_name(name)
}

fn print_banner<T: Real>(resumed: bool, s: &TrainState<T>, train_len: usize, val_len: usize) {
    let h = &s.hyper;
    let verb = if resumed { "resuming" } else { "training" };
    let val = if val_len > 0 {
        format!(", {val_len} held out for validation")
    } else {
        String::new()
    };
    let clip = match h.clip {
        Clip::Value(c) => format!("clip {c:?}"),
        Clip::Norm(c) => format!("clip norm {c:?}"),
    };
    eprintln!(
        "{verb} on {} ({train_len} chars{val}): {}, {} parameters, {}",
        s.text.name,
        s.config().describe(),
        s.model.params.len(),
        T::NAME
    );
    eprintln!(
        "  seq_length {}, batch {}, {} learning rate {:?}, {clip}, dropout {}, rng seed {}",
        h.seq_length,
        h.batch_size,
        h.optimizer.name(),
        h.learning_rate,
        h.dropout,
        h.rng_seed
    );
    let p = &s.plan;
    if *p != train::Plan::default() {
        let length = match (p.schedule.decays_over_the_run(), p.total) {
            (true, Some(n)) => format!(" to {:?} over {n} iterations", p.min_lr),
            (true, None) => format!(" to {:?} over what --max-time allows", p.min_lr),
            (false, _) => String::new(),
        };
        eprintln!(
            "  {} schedule{length}, warmup {}, weight decay {:?}",
            p.schedule, p.warmup, p.weight_decay
        );
    }
    if let Some(e) = &s.ema {
        eprintln!(
            "  averaging the weights (EMA decay {:?}): validation, --keep-best, eval, sample and export use the average",
            e.decay
        );
    }
    if resumed {
        eprintln!(
            "resuming at iteration {} (epoch {}), smooth loss {:.4}",
            s.iteration, s.epoch, s.smooth_loss
        );
        let e = &s.session;
        let best = if e.keep_best {
            ", keeping the best"
        } else {
            ""
        };
        eprintln!(
            "  the run's settings: sample every {} ({} chars), log every {}, validate every {}, \
             checkpoint every {}{best}",
            e.sample_every, e.sample_len, e.log_every, e.eval_every, e.checkpoint_every
        );
    }
}

/// Progress line on stderr (drawn only on a terminal); reports on stdout.
struct Ui {
    bar: ProgressBar,
    /// The validation text's unigram entropy in nats per character, and whether
    /// the note about a validation loss above it was printed.
    floor: Option<(f64, bool)>,
    /// The recent training loss per character, as last reported.
    recent: f64,
}

impl Ui {
    fn new(until: Option<u64>, start: u64) -> Ui {
        let target = ProgressDrawTarget::stderr_with_hz(10);
        let (bar, template) = match until {
            Some(n) => (
                ProgressBar::with_draw_target(Some(n), target),
                "{spinner} iter {pos}/{len} {wide_bar} {msg} [{elapsed_precise}<{eta}]",
            ),
            None => (
                ProgressBar::with_draw_target(None, target),
                "{spinner} iter {pos} {msg} [{elapsed_precise}]",
            ),
        };
        bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
        bar.set_position(start);
        Ui {
            bar,
            floor: None,
            recent: f64::NAN,
        }
    }
}

impl Observer for Ui {
    fn progress(&mut self, iteration: u64, recent_per_char: f64, chars_per_sec: f64) {
        self.recent = recent_per_char;
        self.bar.set_position(iteration);
        self.bar.set_message(format!(
            "loss {recent_per_char:.4} nats/char  {chars_per_sec:.0} chars/s"
        ));
    }

    fn report(
        &mut self,
        iteration: u64,
        smooth_loss: f64,
        per_char: f64,
        recent: f64,
        sample: &str,
    ) {
        self.recent = recent;
        self.bar.suspend(|| {
            // a closed stdout must not stop training
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "----\n{sample}\n----\niter {iteration}, loss {smooth_loss:.6} ({per_char:.4} nats/char); \
                 last ~100 iterations {recent:.4} nats/char"
            );
            let _ = out.flush();
        });
    }

    fn warn(&mut self, message: &str) {
        self.bar.suspend(|| eprintln!("warning: {message}"));
    }

    fn planned(&mut self, total: u64, speed: Option<f64>) {
        if let Some(speed) = speed {
            self.bar.suspend(|| {
                eprintln!(
                    "the learning rate decays over {total} iterations: what the time limit allows at \
                     the {speed:.1} iterations/s measured so far (recorded in the checkpoint)"
                )
            });
        }
    }

    fn evaluated(&mut self, iteration: u64, val_loss: f64, best: bool) {
        let note = if best { " (best so far)" } else { "" };
        let bits = val_loss / std::f64::consts::LN_2;
        self.bar.suspend(|| {
            eprintln!("iter {iteration}: validation loss {val_loss:.4} nats/char ({bits:.4} bits/char){note}")
        });
        // worse than the frequencies alone while training does better than them
        let recent = self.recent;
        if let Some((floor, said)) = &mut self.floor
            && val_loss > *floor
            && recent < *floor
            && !*said
        {
            *said = true;
            self.bar.suspend(|| {
                eprintln!(
                    "note: that is worse than the characters' frequencies alone ({floor:.4} nats/char). Validation \
                     starts from a zero hidden state, which a tanh RNN trained one epoch at a time may not have \
                     seen since the last epoch began; it usually recovers after the next epoch. See README, \
                     \"When the validation loss jumps\"."
                )
            });
        }
    }
}
