//! The trainer: one iteration, in the phases every backend runs the same way
//! (batch -> forward/loss/backward -> combine -> clip -> update -> average ->
//! report), samples from the training stream, and the loss on held-out text.

use super::error::TrainError;
use super::state::{RECENT, TrainState};
use crate::backend::{Backend, Batch, Cpu};
use crate::io::corpus::IdSlice;
use crate::linalg::Real;
use crate::model::State;
use crate::sample::{self, Sampler};

/// A run's state on the host and the backend that computes its iterations.
/// While it trains, the parameters, optimizer state, average and hidden state
/// live on the backend; [`Trainer::synced`] brings them to the state.
pub struct Trainer<T> {
    state: TrainState<T>,
    backend: Box<dyn Backend<T>>,
}

impl<T: Real> Trainer<T> {
    /// A trainer of `state` on this machine's CPU, on up to `threads` threads.
    pub fn new(state: TrainState<T>, threads: usize) -> Trainer<T> {
        let backend = Box::new(Cpu::new(&state, threads));
        Trainer::with_backend(state, backend)
    }

    /// A trainer of `state` on `backend`, which takes the run over.
    pub fn with_backend(mut state: TrainState<T>, mut backend: Box<dyn Backend<T>>) -> Trainer<T> {
        backend.upload(&mut state);
        Trainer { state, backend }
    }

    /// The state's settings and counters; its parameters, optimizer state,
    /// average and hidden state are current only inside [`Trainer::synced`].
    pub fn state(&self) -> &TrainState<T> {
        &self.state
    }

    /// The state's host-side fields (settings, counters, losses, the random
    /// generators), to change between iterations.
    pub(super) fn state_mut(&mut self) -> &mut TrainState<T> {
        &mut self.state
    }

    /// Runs `f` with the whole state current on the host (the backend's
    /// parameters, optimizer state, average and hidden state in it). `f` may
    /// change the host's own fields (counters, the random generators); what it
    /// does to the backend's is not kept by every backend.
    pub fn synced<R>(&mut self, f: impl FnOnce(&mut TrainState<T>) -> R) -> R {
        self.backend.download(&mut self.state);
        let out = f(&mut self.state);
        self.backend.upload(&mut self.state);
        out
    }

    /// The whole state, current, when training is over.
    pub fn finish(mut self) -> TrainState<T> {
        self.backend.download(&mut self.state);
        self.state
    }

    /// One iteration on the training ids (at least [`super::min_chars`] long).
    /// Returns the objective. A loss that is NaN, infinite or has run away (see
    /// [`TrainState::exploded`]) is an error and leaves the weights untouched.
    pub fn step(&mut self, train: IdSlice<'_>) -> Result<f64, TrainError> {
        let batch = self.next_batch(train);
        let s = &mut self.state;
        self.backend.forward_backward(&batch, &mut s.train_rng);
        let loss = self.backend.combine();
        s.smooth_loss = 0.999 * s.smooth_loss + 0.001 * loss;
        s.recent = RECENT * s.recent + (1.0 - RECENT) * loss;
        s.last_loss = loss;
        let diverged = match loss.is_finite() {
            false => Some(format!("the loss became {loss}")),
            true => s.exploded(),
        };
        if let Some(what) = diverged {
            return Err(TrainError::Diverged {
                iteration: s.iteration + 1,
                what,
                kept: String::new(),
            });
        }
        self.backend.clip(s.hyper.clip);
        self.backend
            .update(s.rate.at(s.iteration), s.hyper.weight_decay);
        self.backend.average();
        s.pointer = (batch.at + batch.steps) as u64;
        s.iteration += 1;
        Ok(loss)
    }

    /// Where every stream's next chunk is: at the data pointer, or back at the
    /// start of every stream when the chunk would not fit (an epoch has passed:
    /// the hidden state is forgotten and the step decay may lower the rate).
    fn next_batch<'a>(&mut self, train: IdSlice<'a>) -> Batch<'a> {
        let s = &mut self.state;
        let (seq, b) = (s.hyper.seq_length, s.hyper.batch_size);
        let n = train.len() / b;
        assert!(
            n > seq,
            "training text too short for {b} streams of seq_length + 1"
        );
        let mut p = s.pointer as usize;
        if p + seq + 1 >= n {
            p = 0;
            self.backend.reset_hidden();
            if s.iteration > 0 {
                s.epoch += 1;
                s.rate.epoch_passed(s.epoch);
            }
        }
        Batch {
            ids: train,
            stride: n,
            at: p,
            steps: seq,
        }
    }

    /// A sample continuing stream 0 of the training text from its current hidden state.
    pub fn sample_text(&mut self, train: IdSlice<'_>, len: usize) -> String {
        self.synced(|s| {
            let n = train.len() / s.hyper.batch_size;
            let next = train.get((s.pointer as usize).min(n - 1));
            let hidden = s.model.config.hidden;
            let first =
                |layers: &Vec<Vec<T>>| layers.iter().map(|v| v[..hidden].to_vec()).collect();
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
        })
    }

    /// Validation loss in nats/char, with as many streams as training uses.
    pub fn validate_on(&mut self, val: IdSlice<'_>) -> Option<f64> {
        let h = &self.state.hyper;
        let (total, count) = self.backend.evaluate(val, h.batch_size, h.seq_length);
        (count > 0).then(|| total / count as f64)
    }
}
