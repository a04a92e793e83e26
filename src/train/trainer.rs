//! The trainer: one iteration over B streams (the run's shares of the streams,
//! on up to as many threads, or one share's phases on the pair), samples from
//! the training stream, and the loss on held-out text.

use std::ops::Range;
use std::sync::Arc;

use super::run::TrainError;
use super::state::{Clip, TrainState};
use crate::corpus::{self, IdSlice};
use crate::linalg::Real;
use crate::model::{Config, Model, State, Workspace, stream_scale};
use crate::optim;
use crate::parallel::Pair;
use crate::sample::{self, Sampler};

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
        corpus::fill_chunk(ids, n, 0..b, p, len, &mut inputs, &mut targets);
        total += model.forward_loss(&inputs, &targets, &mut state, &mut ws, T::one());
        count += (len * b) as u64;
    }
    (total, count)
}

/// Training state plus the scratch an iteration needs (never saved).
pub struct Trainer<T> {
    pub state: TrainState<T>,
    /// One per share of the streams; share 0's gradient buffer receives the total.
    shares: Vec<Share<T>>,
    /// Threads that run the shares.
    threads: usize,
    /// With two threads: the second one, kept waiting between the phases of an
    /// iteration (see [`Pair`]).
    pair: Option<Arc<Pair>>,
    /// The parameters this thread updates when the pair shares the update.
    mine: Range<usize>,
}

/// A contiguous range of streams with its own activations and gradient.
struct Share<T> {
    streams: Range<usize>,
    ws: Workspace<T>,
    /// Same layout as the parameters.
    grads: Vec<T>,
    state: State<T>,
    inputs: Vec<u32>,
    targets: Vec<u32>,
    loss: f64,
}

impl<T: Real> Share<T> {
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
/// and by. Else, the half that starts at the top layer's Wh, which this thread
/// reads at every step (whichever core updates a weight owns its cache lines
/// afterwards, and the other core's next read of it waits for a transfer); the
/// first half when the two threads split every step, each reading half of Wh.
/// (docs/performance.md has the measurements behind both.)
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
/// a multiple of 16 (Wh in strips) and otherwise (in blocks): where splitting
/// measured faster than one thread (docs/performance.md).
const SPLIT_FROM_BYTES: usize = 160 << 10;
const SPLIT_BLOCKS_FROM_BYTES: usize = 256 << 10;

impl<T: Real> Trainer<T> {
    /// A trainer that runs the run's shares on up to `threads` threads.
    pub fn new(state: TrainState<T>, threads: usize) -> Trainer<T> {
        let (config, h) = (state.model.config, &state.hyper);
        let (b, k) = (h.batch_size, h.shares.clamp(1, h.batch_size));
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
        let shares: Vec<Share<T>> = (0..k)
            .map(|i| {
                let streams = i * b / k..(i + 1) * b / k;
                let n = streams.len();
                let mut ws = Workspace::new(config, h.seq_length, n);
                if let Some(pair) = pair.as_ref().filter(|_| k == 1) {
                    // one share: its phases split across the pair
                    ws.use_pair(Arc::clone(pair), split);
                }
                Share {
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
        let head_beside = k == 1 && shares[0].ws.runs_head_beside(h.dropout > 0.0);
        let mine = update_split(&config, split, head_beside);
        Trainer {
            threads: threads.clamp(1, k),
            shares,
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
        let hidden = s.model.config.hidden;
        for share in &mut self.shares {
            corpus::fill_chunk(
                train,
                n,
                share.streams.clone(),
                p,
                seq,
                &mut share.inputs,
                &mut share.targets,
            );
            share.ws.draw_dropout(s.hyper.dropout, &mut s.train_rng);
            let rows = share.streams.start * hidden..share.streams.end * hidden;
            for (mine, all) in share
                .state
                .h
                .iter_mut()
                .chain(&mut share.state.c)
                .zip(s.state.h.iter().chain(&s.state.c))
            {
                mine.copy_from_slice(&all[rows.clone()]);
            }
        }
        // the objective averages over all B streams, whichever share holds them
        let scale = stream_scale(b);
        let model = &s.model;
        let pair = self.pair.as_deref();
        if self.threads == 1 {
            self.shares
                .iter_mut()
                .for_each(|share| share.run(model, scale));
        } else if let (Some(pair), [a, b]) = (pair, &mut self.shares[..]) {
            pair.each([a, b], |_, share| share.run(model, scale));
        } else {
            let per_thread = self.shares.len().div_ceil(self.threads);
            std::thread::scope(|scope| {
                let mut groups = self.shares.chunks_mut(per_thread);
                let first = groups.next();
                for group in groups {
                    scope.spawn(move || group.iter_mut().for_each(|share| share.run(model, scale)));
                }
                first
                    .into_iter()
                    .flatten()
                    .for_each(|share| share.run(model, scale));
            });
        }
        let (first, rest) = self.shares.split_first_mut().expect("at least one share");
        let mut loss = first.loss;
        for share in rest {
            loss += share.loss;
            let add = |g: &mut [T], x: &[T]| g.iter_mut().zip(x).for_each(|(g, &x)| *g = *g + x);
            match pair {
                Some(pair) => {
                    let mid = first.grads.len() / 2;
                    let (g, x) = (first.grads.split_at_mut(mid), share.grads.split_at(mid));
                    pair.each([(g.0, x.0), (g.1, x.1)], |_, (g, x)| add(g, x));
                }
                None => add(&mut first.grads, &share.grads),
            }
        }
        let loss = loss / b as f64;
        for share in &self.shares {
            let rows = share.streams.start * hidden..share.streams.end * hidden;
            for (mine, all) in share
                .state
                .h
                .iter()
                .chain(&share.state.c)
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
        s.recent = super::state::RECENT * s.recent + (1.0 - super::state::RECENT) * loss;
        s.last_loss = loss;
        if let Some(what) = s.exploded() {
            return Err(TrainError::Diverged {
                iteration: s.iteration + 1,
                what,
                kept: String::new(),
            });
        }
        let grads = &mut self.shares[0].grads;
        let clip = match s.hyper.clip {
            Clip::Value(c) => Some(T::c(c)),
            Clip::Norm(c) => {
                optim::clip_norm(grads, c);
                None
            }
        };
        // the schedule's rate for this update (the stepped rate itself by default)
        let lr = s
            .plan
            .learning_rate(s.hyper.learning_rate, s.learning_rate, s.iteration);
        s.plan
            .decay_weights(&s.model.config, lr, &mut s.model.params);
        s.optim.step_clipped(
            pair,
            lr,
            &mut s.model.params,
            grads,
            clip,
            self.mine.clone(),
        );
        if let Some(ema) = &mut s.ema {
            ema.update(&s.model.params);
        }
        s.pointer = (p + seq) as u64;
        s.iteration += 1;
        Ok(loss)
    }

    /// A sample continuing stream 0 of the training text from its current hidden state.
    pub fn sample_text(&mut self, train: IdSlice<'_>, len: usize) -> String {
        let s = &mut self.state;
        let n = train.len() / s.hyper.batch_size;
        let next = train.get((s.pointer as usize).min(n - 1));
        let hidden = s.model.config.hidden;
        let first = |layers: &Vec<Vec<T>>| layers.iter().map(|v| v[..hidden].to_vec()).collect();
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
        let model = self.state.predicting();
        let (total, count) = evaluate(&model, val, h.batch_size, h.seq_length);
        (count > 0).then(|| total / count as f64)
    }
}
