//! Setting a run up, once, for a new run and a resumed one alike: the files it
//! will write (checked and locked), the text (scanned, then encoded), the
//! vocabulary, the model and its settings or the checkpoint's, the memory it
//! needs (checked once, before the ids, the model or the workspaces are
//! allocated), the run's length, and its loss history. [`Request`] is what
//! `charrnn train`'s command line gives; [`setup`] turns it into a [`Prepared`]
//! run for the trainer.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::io::corpus::{self, Ids, Scan, Source};
use crate::io::data::DataError;
use crate::io::fsutil::{self, Lock, LockError};
use crate::io::npz::{self, NpzError};
use crate::linalg::{Precision, Real};
use crate::memory::{self, Estimate, MemoryFlag};
use crate::train::checkpoint::{self, AnyState, CheckpointError};
use crate::train::history::{HistoryError, LossLog};

use super::ema::Ema;
use super::settings::{SessionFlags, Settings};
use super::state::{Session, TrainState, fresh_seed};

/// What `charrnn train` asks for: the text, the files, the settings of a new
/// run (or the flags a resumed one must agree with), and this session's limits
/// and cadences.
#[derive(clap::Args, Clone, Debug)]
pub struct Request {
    /// UTF-8 text to train on [default: the corpus built into charrnn]
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    /// Start from weights in a NumPy .npz (as `charrnn export` writes them; min-char-rnn's Wxh, Whh, Why, bh, by)
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "resume",
        help_heading = "Model (fixed for a run)"
    )]
    pub init_npz: Option<PathBuf>,
    #[command(flatten)]
    pub session: SessionFlags,
    /// Checkpoint file: written every --checkpoint-every iterations, at the end and on Ctrl+C
    #[arg(long, value_name = "PATH", default_value = "charrnn.ckpt")]
    pub checkpoint: PathBuf,
    /// Loss history CSV (appended to on --resume)
    #[arg(long, value_name = "PATH", default_value = "loss_history.csv")]
    pub loss_csv: PathBuf,
    /// Threads to train with [default: the available cores]; a new run with --batch-size B
    /// splits its streams into min(threads, B) parts for good (results depend on that split)
    #[arg(long, value_name = "N", value_parser = crate::flags::positive_int::<usize>, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Continue the run saved in --checkpoint exactly where it stopped
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub memory: MemoryFlag,
    /// With --resume: accept a text other than the one the checkpoint was trained on
    #[arg(long, requires = "resume")]
    pub allow_data_change: bool,
    /// Start a new run even if --checkpoint or --loss-csv already exist (overwriting them)
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Keep the N-1 most frequent characters and map all others to one unknown symbol (U+FFFD);
    /// for texts with thousands of rare characters. A new run's choice; a resumed run keeps it
    #[arg(long, value_name = "N", value_parser = crate::flags::positive_int::<usize>, conflicts_with = "resume")]
    pub max_vocab: Option<usize>,
}

#[derive(Debug, Error)]
pub enum SetupError {
    /// The flags ask for something that cannot be (exit code 2).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("the text must use only the checkpoint's characters: {0}")]
    Unfit(DataError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Npz(#[from] NpzError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot write the loss history {path}: {cause}")]
    LossHistory {
        path: PathBuf,
        cause: std::io::Error,
    },
}

impl SetupError {
    pub fn is_usage(&self) -> bool {
        matches!(self, SetupError::Usage(_))
    }
}

fn usage(message: impl Into<String>) -> SetupError {
    SetupError::Usage(message.into())
}

/// A run ready to train: its state (new, or loaded and checked), the text's
/// ids, its open loss history and its locks, and what the user should hear
/// before it starts.
pub struct Prepared<T> {
    pub state: TrainState<T>,
    /// The whole text's ids (`corpus::split_validation` splits off the held-out end).
    pub ids: Ids,
    pub log: Option<LossLog>,
    /// Where the best checkpoint is kept, when the run keeps it.
    pub best: Option<PathBuf>,
    /// What the run needs in memory (checked against the limit).
    pub memory: Estimate,
    /// Things the user should know ("note: ..."), in the order they happened.
    pub notes: Vec<String>,
    /// Flags that change a resumed run's stored cadences ("--log-every 2 (the run had 5)").
    pub overrides: Vec<String>,
    pub resumed: bool,
    /// One run per checkpoint and loss history: held until the run is dropped.
    pub locks: Vec<Lock>,
}

/// A prepared run in whichever precision it trains.
pub enum AnyPrepared {
    F32(Prepared<f32>),
    F64(Prepared<f64>),
}

impl Request {
    /// The threads to train with: --threads, else the available cores.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The loss history, unless `--log-every 0` turns it off (a resumed run that
    /// was started with it off still has its path locked, which is harmless).
    pub fn loss_csv(&self) -> Option<&Path> {
        (self.session.log_every != Some(0)).then_some(self.loss_csv.as_path())
    }

    /// Where `--keep-best` keeps the best checkpoint: charrnn.ckpt -> charrnn.best.ckpt.
    pub fn best_path(&self) -> PathBuf {
        let ckpt = &self.checkpoint;
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
}

/// Sets up the run `req` asks for: a new one, or the one in its checkpoint.
pub fn setup(req: &Request) -> Result<AnyPrepared, SetupError> {
    let ckpt = req.checkpoint.as_path();
    if req.max_vocab.is_some_and(|n| n < 2) {
        return Err(usage(
            "--max-vocab must be at least 2 (one character and the unknown symbol)",
        ));
    }
    checkpoint::check_writable(ckpt)?;
    let mut locks = vec![Lock::acquire(ckpt)?];
    if let Some(csv) = req.loss_csv() {
        fsutil::check_writable(csv).map_err(|cause| SetupError::LossHistory {
            path: csv.into(),
            cause,
        })?;
        locks.push(Lock::acquire(csv)?);
    }
    let mut notes = Vec::new();
    // holding the locks, any temp file beside these is a killed writer's leftover
    let best = req.best_path();
    let stale: usize = [Some(ckpt), Some(best.as_path()), req.loss_csv()]
        .into_iter()
        .flatten()
        .map(fsutil::remove_stale_temps)
        .sum();
    if stale > 0 {
        notes.push(format!(
            "removed {stale} temp file(s) left by an earlier run that was killed while saving"
        ));
    }
    if !req.resume && !req.force {
        refuse_overwrite(ckpt, req.loss_csv())?;
    }
    if req.resume && !ckpt.exists() {
        return Err(usage(format!(
            "--resume: there is no checkpoint at {}; start a new run without --resume",
            ckpt.display()
        )));
    }
    let limit = req.memory.max_memory;
    let loaded = match req.resume {
        true => {
            check_memory(&memory::loading(file_len(ckpt)), limit)?;
            Some(checkpoint::load(ckpt)?)
        }
        false => None,
    };
    // the first pass over the text: UTF-8 check, character counts, fingerprint
    let scan = corpus::scan(Source::file_or_builtin(req.data.as_deref()))?;
    let begun = Begun { locks, notes };
    Ok(match loaded {
        Some(AnyState::F32(s)) => AnyPrepared::F32(resume(req, s, scan, begun)?),
        Some(AnyState::F64(s)) => AnyPrepared::F64(resume(req, s, scan, begun)?),
        None => match req.settings.precision() {
            Precision::F32 => AnyPrepared::F32(start(req, scan, begun)?),
            Precision::F64 => AnyPrepared::F64(start(req, scan, begun)?),
        },
    })
}

/// What setup holds before the run's precision is known.
struct Begun {
    locks: Vec<Lock>,
    notes: Vec<String>,
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Refuses (exit 2) what would not fit in the memory limit.
fn check_memory(need: &Estimate, max_memory: Option<u128>) -> Result<(), SetupError> {
    memory::check(need, max_memory).map_err(SetupError::Usage)
}

/// A new run must not silently replace another run's files.
fn refuse_overwrite(ckpt: &Path, csv: Option<&Path>) -> Result<(), SetupError> {
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

fn start<T: Real>(req: &Request, scan: Scan, mut begun: Begun) -> Result<Prepared<T>, SetupError> {
    let flags = &req.settings;
    let (vocab, folded) = scan.vocab(req.max_vocab);
    if let Some(f) = &folded {
        begun.notes.push(format!(
            "--max-vocab {}: {} rare characters ({} occurrences, {:.3}% of the text) map to the unknown symbol {:?}",
            vocab.len(),
            f.distinct,
            f.occurrences,
            100.0 * f.occurrences as f64 / scan.info.chars as f64,
            corpus::UNKNOWN
        ));
    }
    let hyper_shares = |batch: usize| req.threads().min(batch);
    let mut hyper = flags.hyper(fresh_seed(), 1);
    hyper.shares = hyper_shares(hyper.batch_size);
    let mut config = flags.config(vocab.len());
    let mut rate = flags.rate().map_err(SetupError::Usage)?;
    rate.fix_length(
        flags.decay_iters,
        req.session.iters,
        req.session.max_time.is_some(),
    )
    .map_err(SetupError::Usage)?;
    if let Some(path) = &req.init_npz {
        let hidden = npz::hidden_size(path, config.cell)?;
        if let Some(h) = flags.hidden_size.filter(|&h| h != hidden) {
            return Err(usage(format!(
                "--hidden-size {h} conflicts with {}, whose weights have hidden size {hidden}",
                path.display()
            )));
        }
        config.hidden = hidden;
    }
    let (session, _) = req.session.session(None);
    let averaged = flags.ema.is_some_and(|d| d > 0.0);
    let need = estimate::<T>(&config, &hyper, &session, &scan, vocab.len(), averaged);
    check_memory(&need, req.memory.max_memory)?;
    // the second pass: the ids, as narrow as the vocabulary allows
    let ids = scan.encode(&vocab, folded.is_some())?;
    let init = match &req.init_npz {
        Some(path) => Some(npz::import::<T>(path, config)?.params),
        None => None,
    };
    let mut state = TrainState::new(config, hyper, rate, vocab, scan.info.clone(), init);
    state.ema = flags
        .ema
        .filter(|&d| d > 0.0)
        .map(|d| Ema::new(d, state.model.params.len()));
    state.session = session;
    prepared(req, state, ids, scan.info.name, need, Vec::new(), begun)
}

fn resume<T: Real>(
    req: &Request,
    mut state: TrainState<T>,
    scan: Scan,
    mut begun: Begun,
) -> Result<Prepared<T>, SetupError> {
    let ckpt = &req.checkpoint;
    let conflicts = req.settings.conflicts(&state, T::PRECISION);
    if !conflicts.is_empty() {
        return Err(usage(format!(
            "these flags conflict with the run saved in {}: {}; drop them to resume, \
             or start a new run with --force",
            ckpt.display(),
            conflicts.join(", ")
        )));
    }
    // a run stopped before its schedule's length was fixed fixes it now
    state
        .rate
        .fix_length(
            req.settings.decay_iters,
            req.session.iters,
            req.session.max_time.is_some(),
        )
        .map_err(SetupError::Usage)?;
    let info = scan.info.clone();
    if info.hash != state.text.hash {
        if !req.allow_data_change {
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
        begun.notes.push(format!(
            "continuing on a different text ({}), as --allow-data-change asks",
            info.name
        ));
        state.text = info.clone();
    }
    let (session, overrides) = req.session.session(Some(&state.session));
    state.session = session;
    let (config, averaged) = (*state.config(), state.ema.is_some());
    let need = estimate::<T>(
        &config,
        &state.hyper,
        &state.session,
        &scan,
        state.vocab.len(),
        averaged,
    );
    check_memory(&need, req.memory.max_memory)?;
    // a run started with --max-vocab folds characters it never kept into U+FFFD
    let fold = state.vocab.id(corpus::UNKNOWN).is_some();
    let ids = scan.encode(&state.vocab, fold).map_err(SetupError::Unfit)?;
    prepared(req, state, ids, info.name, need, overrides, begun)
}

/// The last checks on a run's text, and its loss history opened.
fn prepared<T: Real>(
    req: &Request,
    state: TrainState<T>,
    ids: Ids,
    text_name: String,
    memory: Estimate,
    overrides: Vec<String>,
    mut begun: Begun,
) -> Result<Prepared<T>, SetupError> {
    let (train, _) = corpus::split_validation(ids.as_slice(), state.hyper.val_fraction);
    let need = super::min_chars(&state.hyper);
    if train.len() < need {
        let h = &state.hyper;
        return Err(DataError::TooShort {
            name: text_name,
            len: train.len(),
            need,
            streams: h.batch_size,
            seq: h.seq_length,
        }
        .into());
    }
    let csv = req.loss_csv().filter(|_| state.session.log_every > 0);
    let log = match csv {
        Some(path) if req.resume => {
            let (log, dropped) = LossLog::resume(path, state.iteration)?;
            if dropped > 0 {
                begun.notes.push(format!(
                    "dropped {dropped} row(s) of {} logged after iteration {} (the checkpoint resumed from)",
                    path.display(),
                    state.iteration
                ));
            }
            Some(log)
        }
        Some(path) => Some(LossLog::create(path)?),
        None => None,
    };
    Ok(Prepared {
        best: state.session.keep_best.then(|| req.best_path()),
        state,
        ids,
        log,
        memory,
        notes: begun.notes,
        overrides,
        resumed: req.resume,
        locks: begun.locks,
    })
}

/// What a run of `config` and `hyper` needs in memory, with the text `scan`
/// saw and a vocabulary of `vocab` (which sets the ids' width).
fn estimate<T>(
    config: &crate::model::Config,
    hyper: &super::Hyper,
    session: &Session,
    scan: &Scan,
    vocab: usize,
    averaged: bool,
) -> Estimate {
    let chars = scan.info.chars as u128;
    memory::training(&memory::Run {
        config: *config,
        value: std::mem::size_of::<T>(),
        seq: hyper.seq_length,
        batch: hyper.batch_size,
        shares: hyper.shares,
        dropout: hyper.dropout > 0.0,
        // --ema's average and the corrected copy validation makes of it count
        // as two more values per parameter
        optimizer_values: if matches!(hyper.optimizer, crate::optim::Kind::Adam { .. }) {
            2
        } else {
            1
        } + if averaged { 2 } else { 0 },
        text_chars: chars,
        id_bytes: Ids::width_for(vocab),
        validation: hyper.val_fraction > 0.0,
        samples: session.sample_every > 0,
        baseline_chars: match hyper.val_fraction {
            f if f > 0.0 => (chars as f64 * f) as u128,
            _ => chars,
        },
    })
}
