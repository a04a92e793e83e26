//! `charrnn train`: start or resume a run, show progress, save on Ctrl+C.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use charrnn::data::{DataError, Text, Vocab};
use charrnn::history::LossLog;
use charrnn::linalg::{Precision, Real};
use charrnn::train::{self, HyperFlags, Observer, Record, Schedule, Stop, TrainState, Trainer};
use charrnn::{checkpoint, npz, with_state};

use super::{positive_float, positive_int, precision, usage};

/// Train a model on a text file (or the built-in corpus). Defaults are min-char-rnn's.
#[derive(clap::Args)]
pub struct Args {
    /// UTF-8 text to train on [default: the corpus built into charrnn]
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,

    /// Hidden state size H [default: 100]
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>, allow_negative_numbers = true,
          help_heading = "Model (fixed for a run)")]
    hidden_size: Option<usize>,
    /// Characters per chunk of backpropagation through time [default: 25]
    #[arg(long, value_name = "N", value_parser = positive_int::<usize>, allow_negative_numbers = true,
          help_heading = "Model (fixed for a run)")]
    seq_length: Option<usize>,
    /// Adagrad learning rate [default: 0.1]
    #[arg(long, value_name = "LR", value_parser = positive_float, allow_negative_numbers = true,
          help_heading = "Model (fixed for a run)")]
    learning_rate: Option<f64>,
    /// Clip every gradient element to [-C, C] [default: 5]
    #[arg(long, value_name = "C", value_parser = positive_float, allow_negative_numbers = true,
          help_heading = "Model (fixed for a run)")]
    clip: Option<f64>,
    /// Seed for weights and samples; same seed, data and flags give identical weights [default: random, printed]
    #[arg(long, value_name = "N", help_heading = "Model (fixed for a run)")]
    rng_seed: Option<u64>,
    /// Arithmetic precision: f64 matches min-char-rnn's NumPy float64 step for step;
    /// f32 is faster but drifts from it within a few iterations [default: f64]
    #[arg(long, value_name = "f32|f64", value_parser = precision, help_heading = "Model (fixed for a run)")]
    precision: Option<Precision>,
    /// Start from weights in a NumPy .npz (Wxh, Whh, Why, bh, by as min-char-rnn names them)
    #[arg(long, value_name = "PATH", conflicts_with = "resume", help_heading = "Model (fixed for a run)")]
    init_npz: Option<PathBuf>,

    /// Stop when the iteration count reaches N (counted from the run's start, so
    /// `--resume --iters N` finishes an interrupted run) [default: run until Ctrl+C]
    #[arg(long, value_name = "N")]
    iters: Option<u64>,
    /// Stop after this much training time in this session, e.g. 90s, 10m, 1h30m
    #[arg(long, value_name = "DURATION")]
    max_time: Option<humantime::Duration>,
    /// Print the smooth loss and a sample every N iterations (0 = never)
    #[arg(long, value_name = "N", default_value_t = 100)]
    sample_every: u64,
    /// Characters in each of those samples
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = positive_int::<usize>)]
    sample_len: usize,
    /// Checkpoint file: written every --checkpoint-every iterations, at the end and on Ctrl+C
    #[arg(long, value_name = "PATH", default_value = "charrnn.ckpt")]
    checkpoint: PathBuf,
    /// Save a checkpoint every N iterations (0 = only at the end)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    checkpoint_every: u64,
    /// Loss history CSV (appended to on --resume)
    #[arg(long, value_name = "PATH", default_value = "loss_history.csv")]
    loss_csv: PathBuf,
    /// Write a loss history row every N iterations (1 = every iteration, 0 = no CSV)
    #[arg(long, value_name = "N", default_value_t = 100)]
    log_every: u64,
    /// Continue the run saved in --checkpoint exactly where it stopped
    #[arg(long)]
    resume: bool,
    /// With --resume: accept a text other than the one the checkpoint was trained on
    #[arg(long, requires = "resume")]
    allow_data_change: bool,
    /// Start a new run even if --checkpoint or --loss-csv already exist (overwriting them)
    #[arg(long, conflicts_with = "resume")]
    force: bool,
}

impl Args {
    fn hyper_flags(&self) -> HyperFlags {
        HyperFlags {
            hidden_size: self.hidden_size,
            seq_length: self.seq_length,
            learning_rate: self.learning_rate,
            clip: self.clip,
            rng_seed: self.rng_seed,
            precision: self.precision,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let ckpt = args.checkpoint.as_path();
    if !args.resume && !args.force {
        refuse_overwrite(ckpt, args.loss_csv())?;
    }
    if args.resume && !ckpt.exists() {
        return Err(usage(format!(
            "--resume: there is no checkpoint at {}; start a new run without --resume",
            ckpt.display()
        )));
    }
    checkpoint::check_writable(ckpt)?;
    let text = match &args.data {
        Some(path) => Text::read(path)?,
        None => Text::builtin(),
    };
    if args.resume {
        with_state!(checkpoint::load(ckpt)?, s => resume(&args, s, text))
    } else {
        match args.precision.unwrap_or(Precision::F64) {
            Precision::F32 => start::<f32>(&args, text),
            Precision::F64 => start::<f64>(&args, text),
        }
    }
}

impl Args {
    fn loss_csv(&self) -> Option<&Path> {
        (self.log_every > 0).then_some(self.loss_csv.as_path())
    }
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

fn start<T: Real>(args: &Args, text: Text) -> Result<()> {
    let vocab = Vocab::from_text(&text.content);
    let ids = vocab.encode(&text)?;
    let mut hyper = args.hyper_flags().resolve(train::fresh_seed());
    let init = match &args.init_npz {
        Some(path) => {
            let model = npz::import::<T>(path, vocab.len())?;
            if let Some(h) = args.hidden_size.filter(|&h| h != model.dims.hidden) {
                return Err(usage(format!(
                    "--hidden-size {h} conflicts with {}, whose Whh is {}x{}",
                    path.display(),
                    model.dims.hidden,
                    model.dims.hidden
                )));
            }
            hyper.hidden_size = model.dims.hidden;
            Some(model.params)
        }
        None => None,
    };
    let state = TrainState::new(hyper, vocab, text.info(), init);
    train(args, state, ids, text.name)
}

fn resume<T: Real>(args: &Args, mut state: TrainState<T>, text: Text) -> Result<()> {
    let ckpt = &args.checkpoint;
    let conflicts = args.hyper_flags().conflicts(&state.hyper, T::PRECISION);
    if !conflicts.is_empty() {
        return Err(usage(format!(
            "these flags conflict with the run saved in {}: {}; drop them to resume, \
             or start a new run with --force",
            ckpt.display(),
            conflicts.join(", ")
        )));
    }
    let info = text.info();
    if info.hash != state.text.hash {
        if !args.allow_data_change {
            return Err(usage(format!(
                "{} is not the text {} was trained on ({}, {} characters; this one has {}); \
                 pass --allow-data-change to continue training on it anyway",
                text.name,
                ckpt.display(),
                state.text.name,
                state.text.chars,
                info.chars
            )));
        }
        eprintln!("note: continuing on a different text ({}), as --allow-data-change asks", text.name);
        state.text = info;
    }
    let ids = state.vocab.encode(&text).context("the text must use only the checkpoint's characters")?;
    train(args, state, ids, text.name)
}

fn train<T: Real>(args: &Args, state: TrainState<T>, ids: Vec<u32>, text_name: String) -> Result<()> {
    let ckpt = args.checkpoint.as_path();
    let need = state.hyper.seq_length + 1;
    if ids.len() < need {
        return Err(DataError::TooShort { name: text_name, len: ids.len(), need }.into());
    }
    let mut log = match args.loss_csv() {
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

    print_banner(args.resume, &state, ids.len());
    let schedule = Schedule {
        until: args.iters,
        max_time: args.max_time.map(Into::into),
        sample_every: args.sample_every,
        sample_len: args.sample_len,
        log_every: args.log_every,
        checkpoint_every: args.checkpoint_every,
    };
    let stop = install_ctrlc()?;
    let start_iteration = state.iteration;
    let saved_at = args.resume.then_some(start_iteration);
    let mut trainer = Trainer::new(state);
    let mut ui = Ui::new(schedule.until, start_iteration);
    let started = Instant::now();
    let record = Record { checkpoint: ckpt, log: log.as_mut(), saved_at };
    let reason = trainer.run(&ids, &schedule, record, &mut ui, &stop);
    ui.bar.finish_and_clear();
    let reason = reason?;

    let s = &trainer.state;
    let secs = started.elapsed().as_secs_f64();
    let done = s.iteration - start_iteration;
    let why = match reason {
        Stop::Iterations => format!("reached --iters {}", s.iteration),
        Stop::TimeLimit => "reached --max-time".to_string(),
        Stop::Interrupted => "interrupted".to_string(),
    };
    eprintln!(
        "stopped at iteration {} ({why}): smooth loss {:.4}, {done} iterations in {secs:.1}s ({:.0} it/s); saved {}",
        s.iteration,
        s.smooth_loss,
        done as f64 / secs.max(1e-9),
        ckpt.display()
    );
    if reason != Stop::Iterations {
        eprintln!("continue with: charrnn train --resume --checkpoint {}", ckpt.display());
    }
    Ok(())
}

fn print_banner<T: Real>(resumed: bool, s: &TrainState<T>, len: usize) {
    let h = &s.hyper;
    let verb = if resumed { "resuming" } else { "training" };
    eprintln!(
        "{verb} on {} ({len} chars, vocabulary {}): vanilla RNN hidden {}, seq_length {}, learning rate {:?}, \
         clip {:?}, {}, {} parameters, rng seed {}",
        s.text.name,
        s.vocab.len(),
        h.hidden_size,
        h.seq_length,
        h.learning_rate,
        h.clip,
        T::NAME,
        s.model.params.len(),
        h.rng_seed
    );
    if resumed {
        eprintln!("resuming at iteration {}, smooth loss {:.4}", s.iteration, s.smooth_loss);
    }
}

/// First Ctrl+C asks the loop to save and stop; a second one aborts at once.
fn install_ctrlc() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl+C: aborting without saving");
            std::process::exit(130);
        }
        eprintln!("\nCtrl+C: saving a checkpoint and stopping (press again to abort)");
    })
    .context("installing the Ctrl+C handler")?;
    Ok(stop)
}

/// Progress line on stderr (drawn only on a terminal); reports on stdout.
struct Ui {
    bar: ProgressBar,
}

impl Ui {
    fn new(until: Option<u64>, start: u64) -> Ui {
        let target = ProgressDrawTarget::stderr_with_hz(10);
        let (bar, template) = match until {
            Some(n) => (
                ProgressBar::with_draw_target(Some(n), target),
                "{spinner} iter {pos}/{len} {wide_bar} {msg} [{elapsed_precise}<{eta}]",
            ),
            None => (ProgressBar::with_draw_target(None, target), "{spinner} iter {pos} {msg} [{elapsed_precise}]"),
        };
        bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
        bar.set_position(start);
        Ui { bar }
    }
}

impl Observer for Ui {
    fn progress(&mut self, iteration: u64, smooth_loss: f64, chars_per_sec: f64) {
        self.bar.set_position(iteration);
        self.bar.set_message(format!("loss {smooth_loss:.3}  {chars_per_sec:.0} chars/s"));
    }

    fn report(&mut self, iteration: u64, smooth_loss: f64, sample: &str) {
        self.bar.suspend(|| {
            // a closed stdout must not stop training
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "----\n{sample}\n----\niter {iteration}, loss {smooth_loss:.6}");
            let _ = out.flush();
        });
    }
}
