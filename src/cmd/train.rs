//! `charrnn train`: start or resume a run, show progress, save on Ctrl+C. The
//! flags are the library's ([`Request`]); this file sets the run up through
//! [`charrnn::train::setup`], draws its progress and tells how it ended.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use charrnn::io::baselines;
use charrnn::io::corpus;
use charrnn::linalg::Real;
use charrnn::train::{
    self, AnyPrepared, Clip, Observer, Prepared, Record, Request, Stop, TrainState, Trainer,
};

use super::signals;

/// Train a model on a text file (or the built-in corpus). Defaults are min-char-rnn's.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    request: Request,
}

pub fn run(args: Args) -> Result<()> {
    let threads = args.request.threads();
    match train::setup(&args.request)? {
        AnyPrepared::F32(run) => train(&args.request, run, threads),
        AnyPrepared::F64(run) => train(&args.request, run, threads),
    }
}

fn train<T: Real>(req: &Request, run: Prepared<T>, threads: usize) -> Result<()> {
    let Prepared {
        state,
        ids,
        mut log,
        best,
        memory,
        notes,
        overrides,
        resumed,
        locks: _locks,
        ..
    } = run;
    for note in &notes {
        eprintln!("note: {note}");
    }
    let (train_ids, val_ids) = corpus::split_validation(ids.as_slice(), state.hyper.val_fraction);
    print_banner(resumed, &state, train_ids.len(), val_ids.len());
    eprintln!("  memory: about {}", charrnn::memory::Bytes(memory.total()));
    if !overrides.is_empty() {
        eprintln!("  this session: {}", overrides.join(", "));
    }
    // the first Ctrl+C, SIGTERM or SIGHUP finishes the iteration, saves and stops
    let stop = signals::install(
        Some("saving a checkpoint and stopping"),
        "aborting without saving",
    )?;
    let ckpt = req.checkpoint.as_path();
    let (start_iteration, until) = (state.iteration, state.session.until);
    let record = Record {
        checkpoint: ckpt,
        log: log.as_mut(),
        saved_at: resumed.then_some(start_iteration),
        best: best.clone(),
    };
    let mut ui = Ui::new(until, start_iteration);
    if !val_ids.is_empty() {
        let floor = baselines::unigram_of_ids(val_ids, &state.vocab) * std::f64::consts::LN_2;
        ui.floor = Some((floor, false));
    }
    let elapsed_before = state.elapsed_s;
    let mut trainer = Trainer::new(state, threads);
    let started = Instant::now();
    let reason = trainer.run(train_ids, val_ids, record, &mut ui, &stop.flag);
    ui.bar.finish_and_clear();
    let reason = reason?;
    let final_val = (!val_ids.is_empty()).then(|| trainer.validate_on(val_ids).unwrap_or(f64::NAN));
    let s = trainer.finish();

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
    if let Some(val) = final_val {
        eprintln!(
            "validation loss at iteration {}: {val:.4} nats/char ({:.4} bits/char), checkpoint {}",
            s.iteration,
            val / std::f64::consts::LN_2,
            ckpt.display()
        );
        if let (Some(path), Some(b)) = (&best, s.best_val) {
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
    let (text, model_bits) = match s.recent_per_char() {
        _ if !val_ids.is_empty() => ("validation text", final_val.map(|v| v / ln2)),
        recent => (
            "training text, the last ~100 iterations",
            recent.map(|r| r / ln2),
        ),
    };
    if let Some(bits) = model_bits {
        let ids = if val_ids.is_empty() {
            train_ids
        } else {
            val_ids
        };
        let (unigram, xz) = baselines::of_ids(ids, &s.vocab);
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
        s.rate.base,
        h.dropout,
        h.rng_seed
    );
    let r = &s.rate;
    if !(r.is_plain_step() && h.weight_decay == 0.0) {
        let length = match (r.schedule.decays_over_the_run(), r.total) {
            (true, Some(n)) => format!(" to {:?} over {n} iterations", r.min_lr),
            (true, None) => format!(" to {:?} over what --max-time allows", r.min_lr),
            (false, _) => String::new(),
        };
        eprintln!(
            "  {} schedule{length}, warmup {}, weight decay {:?}",
            r.schedule, r.warmup, h.weight_decay
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
