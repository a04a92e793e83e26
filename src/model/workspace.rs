//! [`Workspace`]: every activation and scratch buffer of a pass over chunks of T
//! steps for B streams, allocated once and reused (llm.c style), with the
//! settings that pick a pass's paths: the pair of threads, dropout masks and the
//! sampler's layout of the weights.

use rand::Rng;

use super::sampling::SamplingLayout;
use super::{Config, Layout, Model};
use crate::linalg::Real;
use std::sync::Arc;

use crate::parallel::Pair;

/// Chunks at least this long lay Wh out once for the recurrence; shorter ones
/// (sampling feeds one character) multiply Wh as it is.
pub(crate) const LAYOUT_FROM: usize = 8;

/// Whether one stream's passes of `steps` steps run the output layer step by
/// step: one stream, chunks long enough to lay Wh out, and Why small enough to
/// stay in cache at every step (docs/performance.md has the measurements).
pub(crate) fn by_step(c: &Config, steps: usize, batch: usize) -> bool {
    batch == 1 && steps >= LAYOUT_FROM && c.vocab * c.hidden <= BY_STEP_MAX
}

/// The largest Why (values) that [`by_step`] allows.
const BY_STEP_MAX: usize = 1 << 16;

/// Why laid out for the output layer step by step.
pub(crate) struct HeadLayouts<T> {
    /// (H, V): Why^T in blocks, for y_t
    pub(crate) why_t_blocks: Vec<T>,
    /// (V, H): Why in blocks, for dtop_t
    pub(crate) why_blocks: Vec<T>,
}

impl<T> HeadLayouts<T> {
    /// Values held (for the workspace's memory test).
    pub(crate) fn values(&self) -> usize {
        self.why_t_blocks.len() + self.why_blocks.len()
    }
}

impl<T: Real> HeadLayouts<T> {
    pub(crate) fn new(c: &Config, seq: usize, batch: usize) -> Self {
        let n = if by_step(c, seq, batch) {
            c.vocab * c.hidden
        } else {
            0
        };
        HeadLayouts {
            why_t_blocks: vec![T::zero(); n],
            why_blocks: vec![T::zero(); n],
        }
    }
}

/// Activations and scratch for one chunk size, allocated once and reused.
pub struct Workspace<T> {
    pub(crate) config: Config,
    pub(crate) layout: Layout,
    /// Capacity: steps per chunk and streams.
    pub(crate) seq: usize,
    pub(crate) batch: usize,
    pub(crate) layers: Vec<LayerWork<T>>,
    /// (T*B, E): embedding rows of the inputs (the direct path)
    pub(crate) emb: Vec<T>,
    /// (V, GH): embed Wx^T for the first layer, then its gradient (the table path)
    pub(crate) table: Vec<T>,
    /// (T*B, V): logits, then probabilities, then dY
    pub(crate) ys: Vec<T>,
    /// (T*B): -ln p[target] of each row, summed in row order
    pub(crate) losses: Vec<f64>,
    /// The recurrence's scratch and layouts of Wh (shared by the layers)
    pub(crate) recurrence: RecurrenceWork<T>,
    /// (T*B, H): gradient reaching the current layer's outputs (room for
    /// (T*B, max(E, H)): it trades places with `dx` from layer to layer)
    pub(crate) dcur: Vec<T>,
    /// (T*B, max(E, H)): gradient reaching a layer's inputs
    pub(crate) dx: Vec<T>,
    /// Inverted-dropout masks on each layer's output, (T*B, H), values 0 or
    /// 1/(1-p); empty when dropout is off for this pass.
    pub(crate) masks: Vec<Vec<T>>,
    /// Weights rearranged for one character at a time (sampling), if prepared.
    pub(crate) sampling: Option<SamplingLayout<T>>,
    /// A second thread for the phases that split in two (see [`Workspace::use_pair`]).
    pub(crate) pair: Option<Arc<Pair>>,
    /// Also split each step's recurrent product between the pair (one stream,
    /// tanh RNN; see `split`).
    pub(crate) split: bool,
    /// The output layer one step at a time (see `head`): Why^T and Why in blocks.
    pub(crate) head: HeadLayouts<T>,
}

/// The scratch of the recurrent product, and Wh laid out for it (see `recurrence`).
pub(crate) struct RecurrenceWork<T> {
    /// (B, GH): the recurrent product of one step, h_{t-1} Wh^T
    pub(crate) hp: Vec<T>,
    /// (H, GH): Wh^T of one layer, in strips or blocks
    pub(crate) wh_t: Vec<T>,
    /// The layer whose Wh `wh_t` holds in strips (laid out by the last forward
    /// pass, which the backward pass of a one-stream tanh RNN reuses)
    pub(crate) wh_t_layer: Option<usize>,
    /// (GH, H): Wh for the backward recurrence, in strips or blocks
    pub(crate) wh_p: Vec<T>,
    /// (2, 2, H): partial sums of a product taken in two parts over Wh^T's rows:
    /// backward, dh_{t-1}'s two parts for steps of each parity (one pair per
    /// thread of a split); forward, the second part of h_{t-1} Wh^T
    pub(crate) partial_sums: Vec<T>,
    /// (B, H): gradient reaching h_t
    pub(crate) dh: Vec<T>,
    /// (B, H): gradient reaching h_{t-1} from step t
    pub(crate) dh_next: Vec<T>,
    /// (B, H): gradient reaching c_{t-1} (cells with a cell state)
    pub(crate) dc: Vec<T>,
}

impl<T> RecurrenceWork<T> {
    fn values(&self) -> usize {
        self.hp.len()
            + self.wh_t.len()
            + self.wh_p.len()
            + self.partial_sums.len()
            + self.dh.len()
            + self.dh_next.len()
            + self.dc.len()
    }
}

/// One layer's activations over a chunk.
pub(crate) struct LayerWork<T> {
    /// (T*B, GH): XP = X Wx^T + b
    pub(crate) xp: Vec<T>,
    /// ((T+1)*B, H): hs[0] = h_{-1} (carried in), hs[t+1] = h_t
    pub(crate) hs: Vec<T>,
    /// ((T+1)*B, H): cell states, laid out as hs (cells with a cell state)
    pub(crate) cs: Vec<T>,
    /// (T*B, CACHE*H): per-cell values for the backward pass
    pub(crate) cache: Vec<T>,
    /// (T*B, H): the layer's output after dropout (only with dropout)
    pub(crate) out: Vec<T>,
    /// (T*B, GH): gradient at the input-side pre-activations
    pub(crate) dxp: Vec<T>,
    /// (T*B, GH): gradient at the hidden-side pre-activations (cells whose two
    /// differ; the others use dxp)
    pub(crate) dhp: Vec<T>,
}

impl<T: Real> Workspace<T> {
    pub fn new(config: Config, seq: usize, batch: usize) -> Self {
        let (v, h) = (config.vocab, config.hidden);
        let gh = config.cell.gates() * h;
        let tb = seq * batch;
        let z = |n: usize| vec![T::zero(); n];
        let cell = config.cell;
        let states = (seq + 1) * batch * h;
        let layers = (0..config.layers)
            .map(|_| LayerWork {
                xp: z(tb * gh),
                hs: z(states),
                cs: z(if cell.has_cell_state() { states } else { 0 }),
                cache: z(tb * cell.cache() * h),
                out: Vec::new(),
                dxp: z(tb * gh),
                dhp: z(if cell.own_hidden_gradient() {
                    tb * gh
                } else {
                    0
                }),
            })
            .collect();
        let laid_out = seq >= LAYOUT_FROM;
        Workspace {
            layout: config.layout(),
            config,
            seq,
            batch,
            layers,
            emb: z(tb * config.embedding),
            table: z(if config.embedding > 0 { v * gh } else { 0 }),
            ys: z(tb * v),
            losses: vec![0.0; tb],
            recurrence: RecurrenceWork {
                hp: z(batch * gh),
                wh_t: z(if laid_out { h * gh } else { 0 }),
                wh_t_layer: None,
                wh_p: z(if laid_out { h * gh } else { 0 }),
                partial_sums: z(if laid_out { 4 * h } else { 0 }),
                dh: z(batch * h),
                dh_next: z(batch * h),
                dc: z(batch * h),
            },
            // the layers swap dcur and dx, so both take the wider of E and H
            dcur: z(tb * config.embedding.max(h)),
            dx: z(tb * config.embedding.max(h)),
            masks: Vec::new(),
            sampling: None,
            pair: None,
            split: false,
            head: HeadLayouts::new(&config, seq, batch),
        }
    }

    /// The bytes [`Workspace::new`] allocates for `seq` steps of `batch` streams,
    /// with `dropout` on (its masks and outputs), in values of `value` bytes,
    /// computed without allocating (and without overflowing: absurd sizes give
    /// huge numbers). Mirrors `new` line by line; a test holds the two together.
    pub fn bytes_for(
        config: &Config,
        seq: usize,
        batch: usize,
        dropout: bool,
        value: usize,
    ) -> u128 {
        let n = |x: usize| x as u128;
        let (v, h, e, l) = (
            n(config.vocab),
            n(config.hidden),
            n(config.embedding),
            n(config.layers),
        );
        let gh = n(config.cell.gates()) * h;
        let tb = n(seq) * n(batch);
        let cell = config.cell;
        let states = (n(seq) + 1) * n(batch) * h;
        let per_layer = tb * gh
            + states
            + if cell.has_cell_state() { states } else { 0 }
            + tb * n(cell.cache()) * h
            + if dropout { tb * h } else { 0 }
            + tb * gh
            + if cell.own_hidden_gradient() {
                tb * gh
            } else {
                0
            };
        let laid_out = seq >= LAYOUT_FROM;
        let head = if by_step(config, seq, batch) {
            2 * v * h
        } else {
            0
        };
        let values = l * per_layer
            + tb * e
            + if e > 0 { v * gh } else { 0 }
            + tb * v
            + n(batch) * gh
            + if laid_out { 2 * h * gh + 4 * h } else { 0 }
            + 3 * n(batch) * h
            + 2 * tb * e.max(h)
            + if dropout { l * tb * h } else { 0 }
            + head;
        values * n(value) + tb * 8
    }

    /// The bytes this workspace's buffers hold now (for the test of [`Workspace::bytes_for`]).
    pub fn allocated_bytes(&self) -> u128 {
        let values: usize = self
            .layers
            .iter()
            .map(|lw| {
                lw.xp.len()
                    + lw.hs.len()
                    + lw.cs.len()
                    + lw.cache.len()
                    + lw.out.len()
                    + lw.dxp.len()
                    + lw.dhp.len()
            })
            .sum::<usize>()
            + self.emb.len()
            + self.table.len()
            + self.ys.len()
            + self.recurrence.values()
            + self.dcur.len()
            + self.dx.len()
            + self.masks.iter().map(Vec::len).sum::<usize>()
            + self.head.values();
        (values * std::mem::size_of::<T>() + self.losses.len() * 8) as u128
    }

    /// Gives the workspace a second thread. Every phase whose work divides into
    /// independent rows then runs its two halves at once: the input projection,
    /// the output layer and softmax, the layout of Wh, and the weight gradients.
    /// One stream without dropout instead runs its output layer on the helper
    /// beside the recurrence, step by step (see `head`), and dWhy beside BPTT.
    /// With `split_recurrence` a single-stream tanh RNN also splits each step's
    /// recurrent product (and its transpose in BPTT), each thread reading half of
    /// the packed Wh: for two cores, where half of a large Wh fits each core's L2.
    /// Every value is computed as on one thread, so results are bit-identical.
    pub fn use_pair(&mut self, pair: Arc<Pair>, split_recurrence: bool) {
        self.pair = Some(pair);
        self.split = split_recurrence;
    }

    /// Whether a pass over `rows` rows runs its output layer step by step (see
    /// `head`): `forward_loss` and the `backward` after it both ask this, of the
    /// same rows and masks, so they take the same path.
    pub(crate) fn output_by_step(&self, rows: usize) -> bool {
        self.masks.is_empty() && by_step(&self.config, rows / self.batch, self.batch)
    }

    /// Whether this workspace's training passes (its full chunk length, dropout
    /// on or off) run the output layer on the helper beside the recurrence: one
    /// stream with a pair that does not split steps, no dropout, and an output
    /// layer that runs step by step. The trainer gives each thread the weights it
    /// reads then.
    pub fn runs_head_beside(&self, dropout: bool) -> bool {
        !dropout
            && self.pair.is_some()
            && !self.split
            && by_step(&self.config, self.seq, self.batch)
    }

    /// Rearranges `model`'s weights for one-character steps (a single stream):
    /// the sampler does this once and then feeds thousands of characters. The
    /// workspace must then only be used with this model, unchanged.
    pub fn prepare_for_sampling(&mut self, model: &Model<T>) {
        assert_eq!(
            model.config, self.config,
            "workspace was made for another model"
        );
        self.sampling = Some(SamplingLayout::new(model, &self.layout));
    }

    /// Draws fresh inverted-dropout masks (keep with probability 1 - p) for the
    /// next pass; p = 0 turns dropout off.
    pub fn draw_dropout<R: Rng>(&mut self, p: f64, rng: &mut R) {
        if p <= 0.0 {
            self.masks.clear();
            return;
        }
        let n = self.seq * self.batch * self.config.hidden;
        let keep = T::c(1.0 / (1.0 - p));
        self.masks
            .resize_with(self.config.layers, || vec![T::zero(); n]);
        for mask in &mut self.masks {
            for m in mask.iter_mut() {
                *m = if rng.random::<f64>() < p {
                    T::zero()
                } else {
                    keep
                };
            }
        }
        for lw in &mut self.layers {
            lw.out.resize(n, T::zero());
        }
    }

    /// Turns dropout off (evaluation, sampling).
    pub fn no_dropout(&mut self) {
        self.masks.clear();
    }

    /// The masks of the next pass, one (T*B, H) per layer (empty: dropout off).
    pub fn dropout_masks(&self) -> &[Vec<T>] {
        &self.masks
    }

    /// Probabilities of the last `forward_loss`, or logits after `logits`; (rows, V).
    pub fn outputs(&self) -> &[T] {
        &self.ys
    }
}

/// A layer's output rows h_1 .. h_T (after dropout when it is on), from its
/// states `hs` (((T+1)*B, H)) or its dropped-out copy `out`.
pub(crate) fn layer_output<'a, T>(
    hs: &'a [T],
    out: &'a [T],
    dropout: bool,
    step: usize,
    rows: usize,
    hidden: usize,
) -> &'a [T] {
    if dropout {
        &out[..rows * hidden]
    } else {
        &hs[step..step + rows * hidden]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cell;

    /// `bytes_for` is what `new` (and dropout's masks) allocate, to the byte.
    #[test]
    fn the_estimate_is_what_new_allocates() {
        for &cell in Cell::ALL {
            for (layers, hidden, embedding, vocab, seq, batch) in [
                (1, 100, 0, 65, 25, 1),
                (2, 32, 8, 20, 50, 4),
                (3, 16, 0, 300, 5, 3),
                (1, 256, 64, 90, 100, 32),
            ] {
                let config = Config {
                    cell,
                    vocab,
                    hidden,
                    layers,
                    embedding,
                };
                for dropout in [false, true] {
                    let mut ws = Workspace::<f32>::new(config, seq, batch);
                    if dropout {
                        ws.draw_dropout(0.5, &mut rand::rng());
                    }
                    let want = Workspace::<f32>::bytes_for(&config, seq, batch, dropout, 4);
                    assert_eq!(
                        ws.allocated_bytes(),
                        want,
                        "{config:?} seq {seq} batch {batch} dropout {dropout}"
                    );
                }
            }
        }
    }
}
