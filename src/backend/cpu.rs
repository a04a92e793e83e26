//! The CPU backend: the run's numbers in host memory, computed by `model` on
//! this machine's cores. The threads are chosen once, here: a batch of B
//! streams trains as `Hyper::shares` contiguous shares, each with its own
//! workspace, on up to that many threads; one share splits its phases over a
//! pair of threads (`parallel::Pair`) instead. Either way every value is
//! computed as one thread would compute it, so the thread count never changes
//! a number.

use std::ops::Range;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use super::{Backend, Batch, Combine, InOrder};
use crate::io::corpus::{self, IdSlice};
use crate::linalg::Real;
use crate::model::{Config, Model, State, Workspace, stream_scale};
use crate::optim::{self, Optimizer};
use crate::parallel::Pair;
use crate::train::{Clip, Ema, TrainState, evaluate};

/// The CPU backend of one run.
pub struct Cpu<T> {
    /// The run's weights, optimizer state and average: taken from the host by
    /// [`Backend::upload`] (moved, not copied) and lent back by
    /// [`Backend::download`].
    model: Model<T>,
    optim: Optimizer<T>,
    ema: Option<Ema<T>>,
    /// One per share of the streams, in order.
    shares: Vec<Share<T>>,
    /// (K, P): each share's gradient, in the parameters' layout; the combine
    /// leaves the total in the first.
    grads: Vec<Vec<T>>,
    /// Each share's summed loss from the last forward_backward.
    losses: Vec<f64>,
    combine: Box<dyn Combine<T>>,
    /// B, and the dropout probability of every training pass.
    batch: usize,
    dropout: f64,
    /// Threads that run the shares (the pair's two when there is one share).
    threads: usize,
    pair: Option<Arc<Pair>>,
    /// The parameters this thread updates when the pair shares the update.
    mine: Range<usize>,
    /// Where weight decay applies.
    weights: Vec<Range<usize>>,
    /// Clipping by value waits for the update, which does it in the same pass.
    clip_value: Option<T>,
}

/// A contiguous range of streams with its activations and hidden state.
struct Share<T> {
    streams: Range<usize>,
    ws: Workspace<T>,
    /// The hidden state of these streams, carried from chunk to chunk.
    state: State<T>,
    inputs: Vec<u32>,
    targets: Vec<u32>,
}

/// Smallest recurrent matrix whose steps are split across two threads, when H is
/// a multiple of 16 (Wh in strips) and otherwise (in blocks): where splitting
/// measured faster than one thread (docs/performance.md).
const SPLIT_FROM_BYTES: usize = 160 << 10;
const SPLIT_BLOCKS_FROM_BYTES: usize = 256 << 10;

impl<T: Real> Cpu<T> {
    /// A backend for `state`'s run on up to `threads` threads, summing its shares
    /// in order on this process ([`InOrder`]).
    pub fn new(state: &TrainState<T>, threads: usize) -> Self {
        // a pair when there are two threads (without one, if the system refuses a
        // thread: the results are the same, only slower)
        let pair = (threads >= 2)
            .then(Pair::new)
            .and_then(Result::ok)
            .map(Arc::new);
        let combine = Box::new(InOrder::new(pair.clone()));
        Cpu::with_combine(state, threads, pair, combine)
    }

    /// [`Cpu::new`] with another way to combine the shares (a data-parallel run's).
    pub fn with_combine(
        state: &TrainState<T>,
        threads: usize,
        pair: Option<Arc<Pair>>,
        combine: Box<dyn Combine<T>>,
    ) -> Self {
        let (config, h) = (*state.config(), &state.hyper);
        let (b, k) = (h.batch_size, h.shares.clamp(1, h.batch_size));
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
                    state: State::zeros(&config, n),
                    inputs: Vec::with_capacity(h.seq_length * n),
                    targets: Vec::with_capacity(h.seq_length * n),
                    streams,
                }
            })
            .collect();
        let head_beside = k == 1 && shares[0].ws.runs_head_beside(h.dropout > 0.0);
        Cpu {
            model: Model {
                config,
                params: Vec::new(),
            },
            optim: Optimizer::new(h.optimizer, 0),
            ema: None,
            grads: vec![vec![T::zero(); config.num_params()]; k],
            losses: vec![0.0; k],
            combine,
            batch: b,
            dropout: h.dropout,
            threads: threads.clamp(1, k),
            mine: update_split(&config, split, head_beside),
            weights: config.weight_ranges(),
            clip_value: None,
            shares,
            pair,
        }
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

impl<T: Real> Backend<T> for Cpu<T> {
    fn upload(&mut self, host: &mut TrainState<T>) {
        self.model = std::mem::replace(
            &mut host.model,
            Model {
                config: self.model.config,
                params: Vec::new(),
            },
        );
        self.optim = std::mem::replace(&mut host.optim, Optimizer::new(self.optim.kind, 0));
        self.ema = host.ema.take();
        let hidden = self.model.config.hidden;
        for share in &mut self.shares {
            let rows = share.streams.start * hidden..share.streams.end * hidden;
            for (mine, all) in share
                .state
                .h
                .iter_mut()
                .chain(&mut share.state.c)
                .zip(host.state.h.iter().chain(&host.state.c))
            {
                mine.copy_from_slice(&all[rows.clone()]);
            }
        }
    }

    fn download(&mut self, host: &mut TrainState<T>) {
        let config = self.model.config;
        host.model = std::mem::replace(
            &mut self.model,
            Model {
                config,
                params: Vec::new(),
            },
        );
        host.optim = std::mem::replace(&mut self.optim, Optimizer::new(host.optim.kind, 0));
        host.ema = self.ema.take();
        let hidden = config.hidden;
        for share in &self.shares {
            let rows = share.streams.start * hidden..share.streams.end * hidden;
            for (mine, all) in share
                .state
                .h
                .iter()
                .chain(&share.state.c)
                .zip(host.state.h.iter_mut().chain(&mut host.state.c))
            {
                all[rows.clone()].copy_from_slice(mine);
            }
        }
    }

    fn reset_hidden(&mut self) {
        self.shares.iter_mut().for_each(|s| s.state.reset());
    }

    fn forward_backward(&mut self, batch: &Batch<'_>, rng: &mut ChaCha8Rng) {
        for share in &mut self.shares {
            corpus::fill_chunk(
                batch.ids,
                batch.stride,
                share.streams.clone(),
                batch.at,
                batch.steps,
                &mut share.inputs,
                &mut share.targets,
            );
            share.ws.draw_dropout(self.dropout, rng);
        }
        // the objective averages over all B streams, whichever share holds them
        let scale = stream_scale(self.batch);
        let model = &self.model;
        let run = |(share, (grads, loss)): (&mut Share<T>, (&mut Vec<T>, &mut f64))| {
            *loss = model.forward_backward_scaled(
                &share.inputs,
                &share.targets,
                &mut share.state,
                grads,
                &mut share.ws,
                scale,
            );
        };
        let mut jobs: Vec<_> = self
            .shares
            .iter_mut()
            .zip(self.grads.iter_mut().zip(self.losses.iter_mut()))
            .collect();
        if self.threads == 1 {
            jobs.into_iter().for_each(run);
        } else if let (Some(pair), 2) = (self.pair.as_deref(), jobs.len()) {
            let b = jobs.pop().expect("two jobs");
            let a = jobs.pop().expect("two jobs");
            pair.each([a, b], |_, job| run(job));
        } else {
            let per_thread = jobs.len().div_ceil(self.threads);
            std::thread::scope(|scope| {
                let mut groups = jobs.chunks_mut(per_thread);
                let first = groups.next();
                for group in groups {
                    scope.spawn(move || {
                        group
                            .iter_mut()
                            .for_each(|(s, (g, l))| run((&mut **s, (&mut **g, &mut **l))))
                    });
                }
                first
                    .into_iter()
                    .flatten()
                    .for_each(|(s, (g, l))| run((&mut **s, (&mut **g, &mut **l))));
            });
        }
    }

    fn combine(&mut self) -> f64 {
        self.combine.combine(&mut self.grads, &self.losses) / self.batch as f64
    }

    fn clip(&mut self, clip: Clip) {
        self.clip_value = match clip {
            Clip::Value(c) => Some(T::c(c)),
            Clip::Norm(c) => {
                optim::clip_norm(&mut self.grads[0], c);
                None
            }
        };
    }

    fn update(&mut self, lr: f64, weight_decay: f64) {
        let params = &mut self.model.params;
        optim::decay_weights(weight_decay, lr, &self.weights, params);
        self.optim.step_clipped(
            self.pair.as_deref(),
            lr,
            params,
            &mut self.grads[0],
            self.clip_value.take(),
            self.mine.clone(),
        );
    }

    fn average(&mut self) {
        if let Some(ema) = &mut self.ema {
            ema.update(&self.model.params);
        }
    }

    fn evaluate(&mut self, ids: IdSlice<'_>, streams: usize, seq: usize) -> (f64, u64) {
        match self.ema.as_ref().and_then(Ema::averaged) {
            Some(params) => evaluate(
                &Model::from_params(self.model.config, params),
                ids,
                streams,
                seq,
                self.pair.as_ref(),
            ),
            None => evaluate(&self.model, ids, streams, seq, self.pair.as_ref()),
        }
    }
}
