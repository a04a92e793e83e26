//! The loop around the trainer: the session's cadences of logging, samples,
//! validation and checkpoints, its stop conditions (iterations, time, Ctrl+C),
//! and what a run does when a save or a log row fails.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::error::TrainError;
use super::rate::TimedLength;
use super::trainer::Trainer;
use crate::io::corpus::IdSlice;
use crate::linalg::Real;
use crate::train::checkpoint::{self, CheckpointError};
use crate::train::history::{LossLog, Row};

/// What the loop tells whoever is watching (the CLI draws it; tests record it).
pub trait Observer {
    /// About ten times a second.
    /// The loss is the recent one (see `TrainState::recent_loss`), per character.
    fn progress(&mut self, _iteration: u64, _recent_per_char: f64, _chars_per_sec: f64) {}
    /// Every `sample_every` iterations: the smooth objective, and a sample.
    /// `recent_per_char`: the loss over about the last 100 iterations.
    fn report(
        &mut self,
        _iteration: u64,
        _smooth_loss: f64,
        _per_char: f64,
        _recent_per_char: f64,
        _sample: &str,
    ) {
    }
    /// After each validation pass: the loss in nats/char, and whether it is the best so far.
    fn evaluated(&mut self, _iteration: u64, _val_loss: f64, _best: bool) {}
    fn saved(&mut self, _path: &Path, _iteration: u64) {}
    /// A cosine or linear schedule's length is fixed: `total` iterations, from
    /// the iteration limit or (`speed` in iterations/s) from the time limit.
    fn planned(&mut self, _total: u64, _speed: Option<f64>) {}
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
    /// At the length a time-limited schedule planned (see [`Observer::planned`]).
    Planned,
    TimeLimit,
    Interrupted,
}

impl<T: Real> Trainer<T> {
    /// Saves the state to `path`, unless it has overflowed.
    fn save(&mut self, path: &Path, obs: &mut dyn Observer) -> Result<(), TrainError> {
        self.synced(|s| {
            if !s.is_finite() {
                return Err(TrainError::Diverged {
                    iteration: s.iteration,
                    what: "the weights overflowed to infinity or NaN".into(),
                    kept: String::new(),
                });
            }
            checkpoint::save(path, s)?;
            obs.saved(path, s.iteration);
            Ok(())
        })
    }

    /// Trains on `train` until the session or `stop` says to stop, evaluating on
    /// `val` (when non-empty), then saves a checkpoint.
    pub fn run(
        &mut self,
        train: IdSlice<'_>,
        val: IdSlice<'_>,
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
        let session = self.state().session.clone();
        let (seq, b) = (
            self.state().hyper.seq_length as u64,
            self.state().hyper.batch_size as u64,
        );
        let chars = |iters: u64| (iters * seq * b) as f64;
        // the training clock: wall time minus time spent evaluating
        let started = Instant::now();
        let mut evaluating = Duration::ZERO;
        let clock = |evaluating: Duration| started.elapsed().saturating_sub(evaluating);
        let elapsed_before = self.state().elapsed_s;
        let (mut log_t, mut log_it) = (Duration::ZERO, self.state().iteration);
        let (mut prog_t, mut prog_it) = (Duration::ZERO, self.state().iteration);
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
        // a schedule that decays over the run and has a time limit fixes its
        // length from the speed measured early on (the setup fixed any other)
        let mut timed = TimedLength::default();
        // the length this session fixed from the time limit: it stops there
        let mut planned_here = None;
        let reason = loop {
            let done = self.state().iteration;
            if stop.load(Ordering::SeqCst) {
                break Stop::Interrupted;
            }
            if session.until.is_some_and(|n| done >= n) {
                break Stop::Iterations;
            }
            if planned_here.is_some_and(|n| done >= n) {
                break Stop::Planned;
            }
            if session.max_time.is_some_and(|t| clock(evaluating) >= t) {
                break Stop::TimeLimit;
            }
            let loss = self.step(train).map_err(|e| note_kept(e, saved_at))?;
            let it = self.state().iteration;
            if let Some(limit) = session
                .max_time
                .filter(|_| self.state().rate.needs_length())
                && let Some((total, speed)) =
                    timed.observe(it, clock(evaluating), limit, session.until)
            {
                self.state_mut().rate.total = Some(total);
                planned_here = Some(total);
                obs.planned(total, Some(speed));
            }
            let mut val_loss = None;
            if !val.is_empty() && every(session.eval_every, it) {
                let eval_started = Instant::now();
                val_loss = self.validate_on(val);
                evaluating += eval_started.elapsed();
                if let Some(v) = val_loss {
                    let is_best = self.state().best_val.is_none_or(|b| v < b);
                    let s = self.state_mut();
                    s.last_val = Some(v);
                    if is_best {
                        s.best_val = Some(v);
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
            let elapsed_s = elapsed_before + now.as_secs_f64();
            self.state_mut().elapsed_s = elapsed_s;
            if let Some(log) = log
                .as_deref_mut()
                .filter(|_| every(session.log_every, it) || val_loss.is_some())
            {
                let secs = (now - log_t).as_secs_f64();
                let row = Row {
                    iteration: it,
                    loss: loss / seq as f64,
                    smooth_loss: self.state().smooth_loss / seq as f64,
                    chars_per_sec: (chars(it - log_it) / secs.max(1e-9)).round(),
                    elapsed_s: (elapsed_s * 1000.0).round() / 1000.0,
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
            if every(session.sample_every, it) {
                let text = self.sample_text(train, session.sample_len);
                let (s, r) = (
                    self.state().smooth_loss,
                    self.state().recent_per_char().unwrap_or(f64::NAN),
                );
                obs.report(it, s, s / seq as f64, r, &text);
            }
            if every(session.checkpoint_every, it) {
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
                obs.progress(it, self.state().recent_per_char().unwrap_or(f64::NAN), rate);
                (prog_t, prog_it) = (now, it);
            }
        };
        self.state_mut().elapsed_s = elapsed_before + clock(evaluating).as_secs_f64();
        let done = self.state().iteration;
        if saved_at != Some(done) {
            match self.save(checkpoint, obs) {
                Ok(()) => {}
                Err(TrainError::Checkpoint(cause)) => {
                    return Err(TrainError::FinalSave {
                        iteration: done,
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
