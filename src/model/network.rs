//! The stacked network over a chunk of T steps for B streams, forward and
//! backward side by side.
//!
//! ```text
//! layer input   X_0 = one-hot(x) | embed[x],   X_l = dropout(h^{l-1})
//! projection    XP_l = X_l Wx_l^T + b_l            all T*B rows at once (one-hot: a column gather)
//! recurrence    HP_t = h_{t-1} Wh_l^T              per step (a matrix-vector product when B = 1)
//!               h_t, c_t = cell(XP_l[t], HP_t, h_{t-1}, c_{t-1})
//! output        Y = dropout(h^{L-1}) Why^T + by,   loss = sum_rows -ln softmax(Y)[target]
//! ```
//! Rows are time-major: row t*B + b is step t of stream b. Only the recurrence is
//! sequential; every weight gradient is one GEMM over all T*B rows.
//!
//! An embedding followed by Wx is itself a lookup table: embed[x] Wx^T = (embed Wx^T)[x].
//! When the vocabulary is smaller than the chunk (V <= T*B, the usual case) the
//! network builds that (V, GH) table once per pass instead of multiplying T*B
//! embedding rows, and folds the backward pass through it the same way.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use super::{Cell, Config, Layout, Model, State, gru, lstm, rnn};
use crate::linalg::{self, Real};
use crate::pair::{self, Padded, Pair, SpinBarrier};

/// Activations and scratch for one chunk size, allocated once and reused.
pub struct Workspace<T> {
    config: Config,
    layout: Layout,
    /// Capacity: steps per chunk and streams.
    seq: usize,
    batch: usize,
    layers: Vec<LayerWork<T>>,
    /// (T*B, E): embedding rows of the inputs (direct path)
    emb: Vec<T>,
    /// (V, GH): embed Wx^T for the first layer, then its gradient (table path)
    table: Vec<T>,
    /// (T*B, V): logits, then probabilities, then dY
    ys: Vec<T>,
    /// (T*B): -ln p[target] of each row, summed in row order
    losses: Vec<f64>,
    /// (B, GH): recurrent projection of one step
    hp: Vec<T>,
    /// (H, GH): Wh^T of the current layer for the forward recurrence, packed in
    /// 16-column strips (or in `block_vecmat`'s blocks when GH does not divide
    /// into strips)
    wht: Vec<T>,
    /// The layer whose Wh `wht` holds in strips (laid out by the last forward pass)
    wht_layer: Option<usize>,
    /// (GH, H): Wh for the backward recurrence, in strips or blocks as `wht`
    /// (a one-stream tanh RNN goes back through `wht` instead)
    whp: Vec<T>,
    /// (2, 2, H): a one-stream tanh RNN's dh_{t-1} in two partial sums, one per
    /// half of Wh's rows, for steps of each parity (see [`back_through_strips`]);
    /// forward, its first H hold the second part of each step's h_{t-1} Wh^T
    parts: Vec<T>,
    /// (B, H): gradient reaching h_t
    dh: Vec<T>,
    /// (B, H): gradient reaching h_{t-1} from step t
    dh_next: Vec<T>,
    /// (B, H): LSTM, gradient reaching c_{t-1}
    dc: Vec<T>,
    /// (T*B, H): gradient reaching the current layer's outputs
    dcur: Vec<T>,
    /// (T*B, max(E, H)): gradient reaching a layer's inputs
    dx: Vec<T>,
    /// Inverted-dropout masks on each layer's output, (T*B, H), values 0 or 1/(1-p);
    /// empty when dropout is off for this pass.
    masks: Vec<Vec<T>>,
    /// Weights rearranged for one character at a time (sampling), if prepared.
    inference: Option<Inference<T>>,
    /// A second thread for the phases that split in two (see [`Workspace::use_pair`]).
    pair: Option<Arc<Pair>>,
    /// Also split each step's recurrent product between the pair (one stream,
    /// tanh RNN, strip layout; see [`lockstep`]).
    split: bool,
    /// (H, V): Why^T in blocks, for the output layer one step at a time
    whyt: Vec<T>,
    /// (V, H): Why in blocks, for dtop one step at a time
    whyb: Vec<T>,
    /// The last `forward_loss` ran the output layer step by step ([`Model::head`]):
    /// dtop is ready and dWhy is left for `backward`.
    head_done: bool,
}

/// A model's weights laid out for single-character steps. Matrices up to
/// [`TRANSPOSE_BYTES`] are transposed into blocks for the register-blocked
/// vector-matrix kernel; larger ones, when their width allows, are packed in
/// strips (read straight through by `strip_vecmat`), else left as they are for
/// row dot products.
struct Inference<T> {
    /// (V, GH): the first layer's input projection for each character,
    /// Wx[:, x] (one-hot) or embed[x] Wx^T
    table: Vec<T>,
    /// Per layer above the first: Wx^T (H, GH)
    wxt: Vec<Option<Packed<T>>>,
    /// Per layer: Wh^T (H, GH)
    wht: Vec<Option<Packed<T>>>,
    /// (H, V): Why^T
    whyt: Option<Packed<T>>,
}

/// M^T of a row-major M, for y = x M^T one vector at a time.
enum Packed<T> {
    /// M^T in blocks, for `block_vecmat`
    Blocks(Vec<T>),
    /// M^T in 16-column strips, for `strip_vecmat`
    Strips(Vec<T>),
}

impl<T: Real> Packed<T> {
    /// M (rows, cols) row-major -> the layout that multiplies it fastest, if any.
    fn of(m: &[T], rows: usize, cols: usize) -> Option<Packed<T>> {
        if rows * cols * std::mem::size_of::<T>() <= TRANSPOSE_BYTES {
            let mut t = vec![T::zero(); rows * cols];
            linalg::pack_blocks_of_transpose(m, rows, cols, &mut t);
            return Some(Packed::Blocks(t));
        }
        strip_width(rows)?;
        let mut t = vec![T::zero(); rows * cols];
        linalg::pack_strips_of_transpose(m, rows, cols, &mut t);
        Some(Packed::Strips(t))
    }

    /// y = x M^T
    fn apply(&self, x: &[T], y: &mut [T]) {
        match self {
            Packed::Blocks(t) => linalg::block_vecmat(x, t, y, false),
            Packed::Strips(t) => linalg::strip_vecmat(x, t, y, 1, false),
        }
    }
}

/// Largest matrix the sampler transposes (measured: the 512 KB and smaller ones gain,
/// a transposed 1 MB Wh loses 40% to row dot products; packed in strips instead,
/// the 2x512 LSTM samples 1.8x faster than with row dot products).
const TRANSPOSE_BYTES: usize = 1 << 19;

struct LayerWork<T> {
    /// (T*B, GH): XP = X Wx^T + b
    xp: Vec<T>,
    /// ((T+1)*B, H): hs[0] = h_{-1} (carried in), hs[t+1] = h_t
    hs: Vec<T>,
    /// ((T+1)*B, H): LSTM cell states, laid out as hs
    cs: Vec<T>,
    /// (T*B, CACHE*H): per-cell values for the backward pass
    cache: Vec<T>,
    /// (T*B, H): the layer's output after dropout (only with dropout)
    out: Vec<T>,
    /// (T*B, GH): gradient at the input-side pre-activations
    dxp: Vec<T>,
    /// (T*B, GH): GRU, gradient at the hidden-side pre-activations (RNN, LSTM use dxp)
    dhp: Vec<T>,
}

impl<T: Real> Workspace<T> {
    pub fn new(config: Config, seq: usize, batch: usize) -> Self {
        let (v, h, gh) = (
            config.vocab,
            config.hidden,
            config.cell.gates() * config.hidden,
        );
        let tb = seq * batch;
        let z = |n: usize| vec![T::zero(); n];
        let layers = (0..config.layers)
            .map(|_| LayerWork {
                xp: z(tb * gh),
                hs: z((seq + 1) * batch * h),
                cs: z(if config.cell == Cell::Lstm {
                    (seq + 1) * batch * h
                } else {
                    0
                }),
                cache: z(tb * config.cell.cache() * h),
                out: Vec::new(),
                dxp: z(tb * gh),
                dhp: z(if config.cell == Cell::Gru { tb * gh } else { 0 }),
            })
            .collect();
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
            hp: z(batch * gh),
            wht: z(if seq >= TRANSPOSE_FROM { h * gh } else { 0 }),
            wht_layer: None,
            whp: z(if seq >= TRANSPOSE_FROM { h * gh } else { 0 }),
            parts: z(if seq >= TRANSPOSE_FROM { 4 * h } else { 0 }),
            dh: z(batch * h),
            dh_next: z(batch * h),
            dc: z(batch * h),
            dcur: z(tb * h),
            dx: z(tb * config.embedding.max(h)),
            masks: Vec::new(),
            inference: None,
            pair: None,
            split: false,
            whyt: z(if head_by_step(&config, seq, batch) {
                v * h
            } else {
                0
            }),
            whyb: z(if head_by_step(&config, seq, batch) {
                v * h
            } else {
                0
            }),
            head_done: false,
        }
    }

    /// Gives the workspace a second thread. Every phase whose work divides into
    /// independent rows then runs its two halves at once: the input projection,
    /// the output layer and softmax, the layout of Wh, and the weight gradients.
    /// One stream without dropout instead runs its output layer on the helper
    /// beside the recurrence, step by step ([`Model::head`]), and dWhy beside BPTT.
    /// With `split_recurrence` a single-stream tanh RNN also splits each step's
    /// recurrent product (and its transpose in BPTT), each thread reading half of
    /// the packed Wh: for two cores, where half of a large Wh fits each core's L2.
    /// Every value is computed as on one thread, so results are bit-identical.
    pub fn use_pair(&mut self, pair: Arc<Pair>, split_recurrence: bool) {
        self.pair = Some(pair);
        self.split = split_recurrence;
    }

    /// Whether this workspace's training passes (its full chunk length, dropout
    /// on or off) run the output layer on the helper beside the recurrence: one
    /// stream with a pair that does not split steps, no dropout, and
    /// [`head_by_step`]. The trainer gives each thread the weights it reads then.
    pub fn runs_head_beside(&self, dropout: bool) -> bool {
        !dropout
            && self.pair.is_some()
            && !self.split
            && head_by_step(&self.config, self.seq, self.batch)
    }

    /// Rearranges `model`'s weights for one-character steps (a single stream):
    /// the sampler does this once and then feeds thousands of characters. The
    /// workspace must then only be used with this model, unchanged.
    pub fn prepare_for_sampling(&mut self, model: &Model<T>) {
        assert_eq!(
            model.config, self.config,
            "workspace was made for another model"
        );
        let c = self.config;
        let (p, gh) = (&model.params, c.cell.gates() * c.hidden);
        let l0 = &self.layout.layers[0];
        let table = match &self.layout.embed {
            Some(embed) => {
                let mut table = vec![T::zero(); c.vocab * gh];
                linalg::a_bt(
                    &p[embed.clone()],
                    &p[l0.wx.clone()],
                    &mut table,
                    c.vocab,
                    c.embedding,
                    gh,
                    T::zero(),
                );
                table
            }
            None => {
                let mut t = vec![T::zero(); c.vocab * gh];
                linalg::transpose(&p[l0.wx.clone()], gh, c.vocab, &mut t);
                t
            }
        };
        let layers = &self.layout.layers;
        self.inference = Some(Inference {
            table,
            wxt: layers
                .iter()
                .skip(1)
                .map(|lp| Packed::of(&p[lp.wx.clone()], gh, c.hidden))
                .collect(),
            wht: layers
                .iter()
                .map(|lp| Packed::of(&p[lp.wh.clone()], gh, c.hidden))
                .collect(),
            whyt: Packed::of(&p[self.layout.why.clone()], c.vocab, c.hidden),
        });
    }

    /// Draws fresh inverted-dropout masks (keep with probability 1 - p) for the next
    /// pass; p = 0 turns dropout off.
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

impl<T: Real> Model<T> {
    /// Runs the layers over `inputs` (T*B ids, time-major; T may be shorter than
    /// the workspace's capacity), carrying `state` in and out.
    pub fn forward(&self, inputs: &[u32], state: &mut State<T>, ws: &mut Workspace<T>) {
        ws.head_done = false;
        let pair = ws.pair.clone();
        self.forward_on(inputs, state, ws, pair.as_deref(), None);
    }

    /// [`Model::forward`] with the phases that split in two on `pair` (the
    /// workspace's own pair, or none inside a job already on it). With
    /// `progress`, stores t + 1 there (release) once the top layer's h_t is
    /// written, for [`Model::head`] running beside it.
    fn forward_on(
        &self,
        inputs: &[u32],
        state: &mut State<T>,
        ws: &mut Workspace<T>,
        pair: Option<&Pair>,
        progress: Option<&AtomicUsize>,
    ) {
        let c = self.config;
        let (b, hd, gh) = (ws.batch, c.hidden, c.cell.gates() * c.hidden);
        let tb = inputs.len();
        assert!(
            tb.is_multiple_of(b) && tb / b <= ws.seq,
            "chunk does not fit the workspace"
        );
        assert_eq!(c, ws.config, "workspace was made for another model");
        let p = &self.params;
        for l in 0..c.layers {
            let lp = &ws.layout.layers[l];
            let (below, rest) = ws.layers.split_at_mut(l);
            let lw = &mut rest[0];
            let xp = &mut lw.xp[..tb * gh];
            let inference = ws.inference.as_ref().filter(|_| tb == 1);
            let bias = &p[lp.b.clone()];
            // XP = X Wx^T + b
            if let Some(inf) = inference {
                // one character: a row of the table, or a vector-matrix product
                if l == 0 {
                    let x = inputs[0] as usize;
                    xp.copy_from_slice(&inf.table[x * gh..(x + 1) * gh]);
                } else {
                    let x = layer_output(&below[l - 1], !ws.masks.is_empty(), b, hd, tb);
                    match &inf.wxt[l - 1] {
                        Some(wxt) => wxt.apply(x, xp),
                        None => linalg::matvec(&p[lp.wx.clone()], x, xp),
                    }
                }
                linalg::add_row(xp, bias);
            } else if l == 0 && c.embedding == 0 {
                // one-hot input: row r of XP is column x_r of Wx
                let wx = &p[lp.wx.clone()];
                by_rows(pair, xp, gh, |rows, xp| {
                    // Wx read straight through, row k giving entry k of every row of
                    // XP (a column of Wx at a time would touch a cache line per value)
                    let xs = &inputs[rows];
                    for (k, (wx_k, &b)) in wx.chunks_exact(c.vocab).zip(bias).enumerate() {
                        for (row, &x) in xp.chunks_exact_mut(gh).zip(xs) {
                            row[k] = wx_k[x as usize] + b;
                        }
                    }
                });
            } else if l == 0 && uses_table(&c, tb) {
                // XP row r = (embed Wx^T)[x_r]
                let embed = &p[ws.layout.embed.clone().expect("embedding")];
                linalg::a_bt(
                    embed,
                    &p[lp.wx.clone()],
                    &mut ws.table,
                    c.vocab,
                    c.embedding,
                    gh,
                    T::zero(),
                );
                for (row, &x) in xp.chunks_exact_mut(gh).zip(inputs) {
                    row.copy_from_slice(&ws.table[x as usize * gh..(x as usize + 1) * gh]);
                }
                linalg::add_row(xp, bias);
            } else {
                let x: &[T] = if l == 0 {
                    let embed = &p[ws.layout.embed.clone().expect("embedding")];
                    let e = c.embedding;
                    for (row, &x) in ws.emb.chunks_exact_mut(e).zip(inputs) {
                        row.copy_from_slice(&embed[x as usize * e..(x as usize + 1) * e]);
                    }
                    &ws.emb[..tb * e]
                } else {
                    layer_output(&below[l - 1], !ws.masks.is_empty(), b, hd, tb)
                };
                let (i, wx) = (c.input_size(l), &p[lp.wx.clone()]);
                by_rows(pair, xp, gh, |rows, xp| {
                    linalg::a_bt(
                        &x[rows.start * i..rows.end * i],
                        wx,
                        xp,
                        rows.len(),
                        i,
                        gh,
                        T::zero(),
                    );
                    linalg::add_row(xp, bias);
                });
            }

            // the recurrence, one step at a time
            let wh = &p[lp.wh.clone()];
            // h_{t-1} Wh^T as vector-matrix products over Wh^T laid out once per
            // chunk: in strips when the columns divide (see linalg::pack_strips),
            // else in blocks for one stream; short chunks (sampling) multiply Wh as it is
            let steps = tb / b;
            let width = strip_width(gh);
            let transposed = steps >= TRANSPOSE_FROM && (b == 1 || width.is_some());
            let split = (ws.split
                && pair.is_some()
                && c.cell == Cell::Rnn
                && b == 1
                && inference.is_none()
                && transposed)
                .then(|| split_column(gh, width.is_some()))
                .flatten();
            ws.wht_layer = None;
            match width.filter(|_| transposed) {
                Some(_) => {
                    pack_wht_strips(pair, &mut ws.wht, wh, hd);
                    ws.wht_layer = Some(l);
                }
                // blocks: each thread of a split recurrence lays out the part it reads
                None if transposed => {
                    let mid = split.unwrap_or(gh);
                    let ([w0, w1], [p0, p1]) = (
                        split_rows(&mut ws.wht, hd, mid),
                        [&wh[..mid * hd], &wh[mid * hd..]],
                    );
                    pair::each(
                        pair.filter(|_| split.is_some()),
                        [(p0, w0), (p1, w1)],
                        |_, (wh, out)| linalg::pack_blocks_of_transpose(wh, wh.len() / hd, hd, out),
                    );
                }
                None => {}
            }
            let (bh, hs, cs) = (b * hd, &mut lw.hs, &mut lw.cs);
            hs[..bh].copy_from_slice(&state.h[l]);
            if c.cell == Cell::Lstm {
                cs[..bh].copy_from_slice(&state.c[l]);
            }
            // a tanh RNN with one stream sums h_{t-1} Wh^T over Wh^T's rows in two
            // parts, the units each thread of a split recurrence computes
            let parts = (c.cell == Cell::Rnn && b == 1 && inference.is_none() && transposed)
                .then(|| width.and_then(|_| split_column(gh, true)))
                .flatten();
            if let (Some(mid), Some(pair)) = (split.filter(|_| width.is_some()), pair) {
                // each thread owns units R (rows of Wh: its strips of Wh^T, columns of
                // HP): HP[R] = h_{t-1}[:mid] Wh^T[:mid, R] + h_{t-1}[mid:] Wh^T[mid:, R],
                // then h_t[R] = tanh(xp_t[R] + HP[R]). It takes the part over its own
                // units of h_{t-1} first, then waits for the other's units: the other
                // thread can run up to one part behind without holding it up
                let (hs_p, hp_p, parts_p) = (
                    Shared(hs.as_mut_ptr()),
                    Shared(ws.hp.as_mut_ptr()),
                    Shared(ws.parts.as_mut_ptr()),
                );
                let (wht, xp) = (&ws.wht[..], &*xp);
                // per thread: steps whose h_t is written (each counter on its own lines)
                let written = [Padded(AtomicUsize::new(0)), Padded(AtomicUsize::new(0))];
                pair.run(&|i| {
                    let (own, other, w) = owned_units(wht, mid, hd, i);
                    // SAFETY: each thread writes only its own units of hp, parts and of
                    // hs's rows 1.., and reads the other's units of row t of hs once the
                    // other has published them
                    let at =
                        |p: Shared<T>, start: usize, len: usize| unsafe { p.slice(start, len) };
                    let (hp, part) = (
                        at(hp_p, own.start, own.len()),
                        at(parts_p, own.start, own.len()),
                    );
                    for t in 0..steps {
                        // odd steps walk the strips backwards (see strip_vecmat_rows)
                        let back = t % 2 == 1;
                        linalg::strip_vecmat_rows(
                            at(hs_p, t * hd + own.start, own.len()),
                            w,
                            own.start,
                            hp,
                            back,
                        );
                        pair::wait_until(|| written[1 - i].load(Ordering::Acquire) >= t);
                        let h_other = at(hs_p, t * hd + other.start, other.len());
                        linalg::strip_vecmat_rows(h_other, w, other.start, part, back);
                        hp.iter_mut().zip(&*part).for_each(|(a, &b)| *a = *a + b);
                        rnn::forward(
                            &xp[t * gh + own.start..t * gh + own.end],
                            hp,
                            at(hs_p, (t + 1) * hd + own.start, own.len()),
                        );
                        written[i].store(t + 1, Ordering::Release);
                    }
                });
            } else if let Some(mid) = split {
                // h_t = tanh(xp_t + h_{t-1} Wh^T): each thread multiplies by its part of
                // Wh^T's blocks and takes tanh of its own columns (gh = hd here)
                let (hs_p, hp_p) = (Shared(hs.as_mut_ptr()), Shared(ws.hp.as_mut_ptr()));
                let (wht, xp) = (&ws.wht[..], &*xp);
                let step = |t: usize, i: usize| {
                    let (w, cols) = if i == 0 {
                        (&wht[..mid * hd], 0..mid)
                    } else {
                        (&wht[mid * hd..], mid..gh)
                    };
                    // SAFETY: both threads read all of row t of hs (complete since the last
                    // barrier) and write only their own columns of hp and of row t + 1
                    let h_prev = unsafe { std::slice::from_raw_parts(hs_p.ptr().add(t * hd), hd) };
                    let hp = unsafe {
                        std::slice::from_raw_parts_mut(hp_p.ptr().add(cols.start), cols.len())
                    };
                    let h = unsafe {
                        std::slice::from_raw_parts_mut(
                            hs_p.ptr().add((t + 1) * hd + cols.start),
                            cols.len(),
                        )
                    };
                    linalg::block_vecmat(h_prev, w, hp, false);
                    rnn::forward(&xp[t * gh + cols.start..t * gh + cols.end], hp, h);
                };
                lockstep(pair, 0..steps, &step, &|_, _| {});
            }
            assert!(hs.len() >= (steps + 1) * bh);
            let (hs_p, publish) = (
                Shared(hs.as_mut_ptr()),
                progress.filter(|_| l == c.layers - 1),
            );
            for t in (0..tb / b).filter(|_| split.is_none()) {
                // SAFETY: rows t and t + 1 are in bounds (asserted above); while this
                // loop runs, the head beside it reads only rows published in `progress`
                let h_prev = unsafe { std::slice::from_raw_parts(hs_p.ptr().add(t * bh), bh) };
                let h = unsafe { std::slice::from_raw_parts_mut(hs_p.ptr().add((t + 1) * bh), bh) };
                // HP = h_{t-1} Wh^T
                if let Some(wht) = inference.and_then(|inf| inf.wht[l].as_ref()) {
                    wht.apply(h_prev, &mut ws.hp);
                } else if !transposed {
                    linalg::a_bt(h_prev, wh, &mut ws.hp, b, hd, gh, T::zero());
                } else if width.is_none() {
                    linalg::block_vecmat(h_prev, &ws.wht, &mut ws.hp, false);
                } else if let Some(mid) = parts {
                    // in two parts, added as a split recurrence adds them; odd
                    // steps walk the strips backwards (see strip_vecmat_rows)
                    let (hp, part) = (&mut ws.hp, &mut ws.parts[..gh]);
                    if t % 2 == 1 {
                        linalg::strip_vecmat_rows(&h_prev[mid..], &ws.wht, mid, part, true);
                        linalg::strip_vecmat_rows(&h_prev[..mid], &ws.wht, 0, hp, true);
                    } else {
                        linalg::strip_vecmat_rows(&h_prev[..mid], &ws.wht, 0, hp, false);
                        linalg::strip_vecmat_rows(&h_prev[mid..], &ws.wht, mid, part, false);
                    }
                    ws.hp
                        .iter_mut()
                        .zip(&ws.parts)
                        .for_each(|(a, &b)| *a = *a + b);
                } else {
                    linalg::strip_vecmat(h_prev, &ws.wht, &mut ws.hp, b, false);
                }
                let xp_t = &xp[t * b * gh..(t + 1) * b * gh];
                match c.cell {
                    Cell::Rnn => rnn::forward(xp_t, &ws.hp, h),
                    Cell::Lstm => {
                        let (c_done, c_next) = cs.split_at_mut((t + 1) * bh);
                        let cache =
                            &mut lw.cache[t * b * lstm::CACHE * hd..(t + 1) * b * lstm::CACHE * hd];
                        lstm::forward(
                            hd,
                            xp_t,
                            &ws.hp,
                            &c_done[t * bh..],
                            h,
                            &mut c_next[..bh],
                            cache,
                        );
                    }
                    Cell::Gru => {
                        let bhn = &p[lp.bhn.clone().expect("GRU has bhn")];
                        for row in ws.hp.chunks_exact_mut(gh) {
                            for (a, &bias) in row[2 * hd..].iter_mut().zip(bhn) {
                                *a = *a + bias;
                            }
                        }
                        let cache =
                            &mut lw.cache[t * b * gru::CACHE * hd..(t + 1) * b * gru::CACHE * hd];
                        gru::forward(hd, xp_t, &ws.hp, h_prev, h, cache);
                    }
                }
                if let Some(progress) = publish {
                    progress.store(t + 1, Ordering::Release);
                }
            }
            let last = tb / b * bh;
            state.h[l].copy_from_slice(&hs[last..last + bh]);
            if c.cell == Cell::Lstm {
                state.c[l].copy_from_slice(&cs[last..last + bh]);
            }
            if let Some(mask) = ws.masks.get(l) {
                for ((o, &h), &m) in lw.out.iter_mut().zip(&hs[bh..bh + tb * hd]).zip(mask) {
                    *o = h * m;
                }
            }
        }
    }

    /// Y = top Why^T + by for the rows of the last `forward`.
    fn logits(&self, rows: usize, ws: &mut Workspace<T>) {
        let (c, b) = (self.config, ws.batch);
        let top = layer_output(
            &ws.layers[c.layers - 1],
            !ws.masks.is_empty(),
            b,
            c.hidden,
            rows,
        );
        let ys = &mut ws.ys[..rows * c.vocab];
        match ws
            .inference
            .as_ref()
            .filter(|_| rows == 1)
            .and_then(|inf| inf.whyt.as_ref())
        {
            Some(whyt) => whyt.apply(top, ys),
            None => linalg::a_bt(
                top,
                &self.params[ws.layout.why.clone()],
                ys,
                rows,
                c.hidden,
                c.vocab,
                T::zero(),
            ),
        }
        linalg::add_row(ys, &self.params[ws.layout.by.clone()]);
    }

    /// Logits of the next character after each input (for sampling): (rows, V).
    pub fn predict<'w>(
        &self,
        inputs: &[u32],
        state: &mut State<T>,
        ws: &'w mut Workspace<T>,
    ) -> &'w mut [T] {
        ws.no_dropout();
        self.forward(inputs, state, ws);
        self.logits(inputs.len(), ws);
        &mut ws.ys[..inputs.len() * self.config.vocab]
    }

    /// Forward pass and the loss sum_rows -ln p[target], leaving in the workspace
    /// dY = (P - onehot(targets)) * scale for a following `backward`.
    pub fn forward_loss(
        &self,
        inputs: &[u32],
        targets: &[u32],
        state: &mut State<T>,
        ws: &mut Workspace<T>,
        scale: T,
    ) -> f64 {
        assert_eq!(inputs.len(), targets.len());
        if ws.masks.is_empty() && head_by_step(&self.config, inputs.len() / ws.batch, ws.batch) {
            return self.forward_loss_by_step(inputs, targets, state, ws, scale);
        }
        self.forward(inputs, state, ws);
        let (c, rows) = (self.config, inputs.len());
        let (v, hd) = (c.vocab, c.hidden);
        let top = layer_output(
            &ws.layers[c.layers - 1],
            !ws.masks.is_empty(),
            ws.batch,
            hd,
            rows,
        );
        let (why, by) = (
            &self.params[ws.layout.why.clone()],
            &self.params[ws.layout.by.clone()],
        );
        let (ys, losses) = (&mut ws.ys[..rows * v], &mut ws.losses[..rows]);
        // Y = top Why^T + by, P = softmax(Y), loss_r = -ln P[r, target_r], dY = P - onehot
        let rows_of = |r: Range<usize>, ys: &mut [T], losses: &mut [f64]| {
            linalg::a_bt(
                &top[r.start * hd..r.end * hd],
                why,
                ys,
                r.len(),
                hd,
                v,
                T::zero(),
            );
            linalg::add_row(ys, by);
            for ((row, &target), loss) in ys.chunks_exact_mut(v).zip(&targets[r]).zip(losses) {
                *loss = softmax_loss(row, target as usize, scale);
            }
        };
        match halves(ws.pair.as_deref(), rows) {
            Some((pair, mid)) => {
                let ([y0, y1], [l0, l1]) = (split_rows(ys, v, mid), split_rows(losses, 1, mid));
                pair.each(
                    [(0..mid, y0, l0), (mid..rows, y1, l1)],
                    |_, (r, ys, losses)| rows_of(r, ys, losses),
                );
            }
            None => rows_of(0..rows, ys, losses),
        }
        losses.iter().sum()
    }

    /// [`Model::forward_loss`] for one stream without dropout: the recurrence on
    /// this thread and the output layer step by step ([`Model::head`]) beside it
    /// on the pair's helper, each output step as soon as its h_t is written.
    /// Without a pair the head runs after the recurrence here, and when the pair
    /// splits the steps, after it on both threads ([`Model::head_in_halves`]),
    /// computing the same values.
    fn forward_loss_by_step(
        &self,
        inputs: &[u32],
        targets: &[u32],
        state: &mut State<T>,
        ws: &mut Workspace<T>,
        scale: T,
    ) -> f64 {
        let pair = ws.pair.clone();
        let beside = pair.as_deref().filter(|_| !ws.split);
        let rows = inputs.len();
        let top = Shared(ws.layers[self.config.layers - 1].hs.as_mut_ptr());
        let output = (
            &self.params[ws.layout.why.clone()],
            &self.params[ws.layout.by.clone()],
        );
        let mut head = Head {
            ys: std::mem::take(&mut ws.ys),
            losses: std::mem::take(&mut ws.losses),
            dtop: std::mem::take(&mut ws.dcur),
            whyt: std::mem::take(&mut ws.whyt),
            whyb: std::mem::take(&mut ws.whyb),
        };
        let progress = AtomicUsize::new(0);
        let progress = beside.map(|_| &progress);
        match beside {
            Some(_) => {
                let jobs = [ByStep::Forward(&mut *ws, state), ByStep::Head(&mut head)];
                pair::each(beside, jobs, |_, job| match job {
                    ByStep::Forward(ws, state) => {
                        self.forward_on(inputs, state, ws, None, progress)
                    }
                    ByStep::Head(head) => self.head(targets, top, progress, scale, output, head),
                });
            }
            None => {
                // after the recurrence; a pair that split its steps takes half the steps each
                self.forward_on(inputs, state, ws, pair.as_deref(), None);
                self.head_in_halves(targets, top, scale, output, &mut head, pair.as_deref());
            }
        }
        let loss = head.losses[..rows].iter().sum();
        (ws.ys, ws.losses, ws.dcur, ws.whyt, ws.whyb) =
            (head.ys, head.losses, head.dtop, head.whyt, head.whyb);
        ws.head_done = true;
        loss
    }

    /// The output layer of one stream, one step at a time: for each target t, once
    /// h_t (row t + 1 of the top layer's `hs`, at `top`) is written (`progress`
    /// above t, when given), y_t = h_t Why^T + by, the loss and
    /// dy_t = (softmax(y_t) - onehot) * scale in place of y_t, and dtop_t = dy_t Why.
    /// `output` is (Why, by).
    fn head(
        &self,
        targets: &[u32],
        top: Shared<T>,
        progress: Option<&AtomicUsize>,
        scale: T,
        (why, by): (&[T], &[T]),
        head: &mut Head<T>,
    ) {
        let (v, hd) = (self.config.vocab, self.config.hidden);
        // laid out here, so that Why stays in this thread's cache
        linalg::pack_blocks_of_transpose(why, v, hd, &mut head.whyt);
        linalg::pack_blocks_of(why, v, hd, 0..hd, &mut head.whyb);
        let (whyt, whyb) = (&head.whyt[..], &head.whyb[..]);
        // the steps written so far, all at once (a load of Why then serves several)
        let (mut t, steps) = (0, targets.len());
        while t < steps {
            let ready = match progress {
                Some(progress) => {
                    pair::wait_until(|| progress.load(Ordering::Acquire) > t);
                    progress.load(Ordering::Acquire).min(steps)
                }
                None => steps,
            };
            // SAFETY: rows t + 1 ..= ready are written (and published when another
            // thread writes them) and nothing writes them until this pass is over
            let h = unsafe {
                std::slice::from_raw_parts(top.ptr().add((t + 1) * hd), (ready - t) * hd)
            };
            let out = (
                &mut head.ys[t * v..ready * v],
                &mut head.losses[t..ready],
                &mut head.dtop[t * hd..ready * hd],
            );
            head_steps(h, &targets[t..ready], scale, (whyt, whyb, by), out);
            t = ready;
        }
    }

    /// [`Model::head`] once the recurrence is over, the steps in two halves on
    /// `pair` (each thread lays out one of Why's two layouts first). Every value is
    /// the one `head` computes: `block_matmat` gives each row the same bits
    /// however the rows are grouped.
    fn head_in_halves(
        &self,
        targets: &[u32],
        top: Shared<T>,
        scale: T,
        (why, by): (&[T], &[T]),
        head: &mut Head<T>,
        pair: Option<&Pair>,
    ) {
        let Some(pair) = pair.filter(|_| targets.len() >= 2) else {
            return self.head(targets, top, None, scale, (why, by), head);
        };
        let (v, hd, steps) = (self.config.vocab, self.config.hidden, targets.len());
        // the transpose (the slower) on the helper: this thread has more to do
        // after a split recurrence
        pair.each([&mut head.whyb, &mut head.whyt], |i, out| match i {
            0 => linalg::pack_blocks_of(why, v, hd, 0..hd, out),
            _ => linalg::pack_blocks_of_transpose(why, v, hd, out),
        });
        let mid = steps / 2;
        let (ys0, ys1) = head.ys[..steps * v].split_at_mut(mid * v);
        let (losses0, losses1) = head.losses[..steps].split_at_mut(mid);
        let (dtop0, dtop1) = head.dtop[..steps * hd].split_at_mut(mid * hd);
        let layouts = (&head.whyt[..], &head.whyb[..], by);
        let halves = [
            (0..mid, ys0, losses0, dtop0),
            (mid..steps, ys1, losses1, dtop1),
        ];
        pair.each(halves, |_, (rows, ys, losses, dtop)| {
            // SAFETY: the recurrence is over; rows 1..=T of the top layer's hs are
            // only read until this pass is over
            let h = unsafe {
                std::slice::from_raw_parts(top.ptr().add((rows.start + 1) * hd), rows.len() * hd)
            };
            head_steps(h, &targets[rows], scale, layouts, (ys, losses, dtop));
        });
    }

    /// Backward pass after `forward_loss` on the same `inputs`; overwrites `grads`.
    pub fn backward(&self, inputs: &[u32], grads: &mut [T], ws: &mut Workspace<T>) {
        let c = self.config;
        let (b, hd, v) = (ws.batch, c.hidden, c.vocab);
        let tb = inputs.len();
        let pair = ws.pair.clone();
        let pair = pair.as_deref();
        let (why, by) = (ws.layout.why.clone(), ws.layout.by.clone());
        // rows `r` of dWhy = dY^T top and entries `r` of dby = sum_rows dY
        let dwhy_rows = |r: Range<usize>, dy: &[T], top: &[T], gwhy: &mut [T], gby: &mut [T]| {
            linalg::at_b_rows(dy, top, gwhy, v, tb, hd, r.clone(), T::zero());
            gby.fill(T::zero());
            for row in dy.chunks_exact(v) {
                gby.iter_mut()
                    .zip(&row[r.clone()])
                    .for_each(|(a, &d)| *a = *a + d);
            }
        };
        let dwhy = |dy: &[T], top: &[T], gwhy: &mut [T], gby: &mut [T]| {
            dwhy_rows(0..v, dy, top, gwhy, gby)
        };

        let head_done = std::mem::take(&mut ws.head_done);
        if head_done && ws.split {
            // dtop is there (see `head`) and the pair splits the steps: both threads
            // take half of dWhy's rows, then go back through the layers together
            let [gwhy, gby] = grads
                .get_disjoint_mut([why.clone(), by])
                .expect("disjoint tensors");
            let top = &ws.layers[c.layers - 1].hs[hd..(tb + 1) * hd];
            let dy = &ws.ys[..tb * v];
            match halves(pair, v) {
                Some((pair, mid)) => {
                    let ([w0, w1], (b0, b1)) = (split_rows(gwhy, hd, mid), gby.split_at_mut(mid));
                    pair.each([(0..mid, w0, b0), (mid..v, w1, b1)], |_, (r, gwhy, gby)| {
                        dwhy_rows(r, dy, top, gwhy, gby)
                    });
                }
                None => dwhy(dy, top, gwhy, gby),
            }
            self.backward_layers(inputs, grads, ws, pair);
            return;
        }

        if head_done {
            // dtop is there: dWhy = dY^T top and dby on the helper, when there is one,
            // while this thread goes back through the layers
            let (grads, rest) = grads.split_at_mut(why.start);
            let (gwhy, gby) = rest.split_at_mut(why.len());
            let ys = std::mem::take(&mut ws.ys);
            let top = Shared(ws.layers[c.layers - 1].hs.as_mut_ptr());
            let jobs = [
                ByStepBack::Layers(&mut *ws, grads),
                ByStepBack::Dwhy(gwhy, gby),
            ];
            pair::each(pair, jobs, |_, job| match job {
                ByStepBack::Layers(ws, grads) => self.backward_layers(inputs, grads, ws, None),
                ByStepBack::Dwhy(gwhy, gby) => {
                    // SAFETY: rows 1..=T of the top layer's hs (no dropout on this path),
                    // which the backward pass only reads
                    let top = unsafe { std::slice::from_raw_parts(top.ptr().add(hd), tb * hd) };
                    dwhy(&ys[..tb * v], top, gwhy, gby)
                }
            });
            ws.ys = ys;
            return;
        }

        // output layer: dtop = dY Why, and (on the other thread when there is one,
        // the same amount of work) dWhy = dY^T top, dby = sum_rows dY
        let dy = &ws.ys[..tb * v];
        let top = layer_output(&ws.layers[c.layers - 1], !ws.masks.is_empty(), b, hd, tb);
        let [gwhy, gby] = grads
            .get_disjoint_mut([why.clone(), by])
            .expect("disjoint tensors");
        let why = &self.params[why];
        let output = [
            OutputGrad::Dtop(&mut ws.dcur[..tb * hd]),
            OutputGrad::Dwhy(gwhy, gby),
        ];
        pair::each(pair, output, |_, out| match out {
            OutputGrad::Dtop(dtop) => linalg::a_b(dy, why, dtop, tb, v, hd, T::zero()),
            OutputGrad::Dwhy(gwhy, gby) => dwhy(dy, top, gwhy, gby),
        });
        self.backward_layers(inputs, grads, ws, pair);
    }

    /// The backward pass from dtop (in `dcur`) down through the layers: every
    /// gradient but dWhy and dby, into `grads` (the buffer, or its part before Why).
    fn backward_layers(
        &self,
        inputs: &[u32],
        grads: &mut [T],
        ws: &mut Workspace<T>,
        pair: Option<&Pair>,
    ) {
        let c = self.config;
        let (b, hd, gh, v) = (ws.batch, c.hidden, c.cell.gates() * c.hidden, c.vocab);
        let tb = inputs.len();
        let steps = tb / b;
        let p = &self.params;
        let dropout = !ws.masks.is_empty();
        let layout = &ws.layout;
        for l in (0..c.layers).rev() {
            let lp = &layout.layers[l];
            let (below, rest) = ws.layers.split_at_mut(l);
            let lw = &mut rest[0];
            let dcur = &mut ws.dcur[..tb * hd];
            if let Some(mask) = ws.masks.get(l) {
                dcur.iter_mut().zip(mask).for_each(|(d, &m)| *d = *d * m);
            }
            // backward through time
            let wh = &p[lp.wh.clone()];
            let bh = b * hd;
            let width = strip_width(hd).filter(|_| steps >= TRANSPOSE_FROM);
            let blocks = width.is_none() && b == 1 && steps >= TRANSPOSE_FROM;
            // one stream of a tanh RNN goes back through the forward's strips of Wh^T
            let through_wht = c.cell == Cell::Rnn && b == 1 && width.is_some();
            let split = (ws.split
                && pair.is_some()
                && c.cell == Cell::Rnn
                && (width.is_some() || blocks)
                && b == 1)
                .then(|| split_column(hd, width.is_some()))
                .flatten();
            if through_wht {
                if ws.wht_layer != Some(l) {
                    pack_wht_strips(pair, &mut ws.wht, wh, hd);
                    ws.wht_layer = Some(l);
                }
            } else if let Some(w) = width {
                // strip s is columns 16s.. of Wh; each thread lays out the strips it reads
                by_rows(pair, &mut ws.whp, w * gh, |strips, out| {
                    linalg::pack_strips_of(wh, gh, hd, strips.start, out)
                });
            } else if blocks {
                // each thread of a split recurrence lays out the columns it reads
                let mid = split.unwrap_or(hd);
                let [w0, w1] = split_rows(&mut ws.whp, gh, mid);
                pair::each(
                    pair.filter(|_| split.is_some()),
                    [(0..mid, w0), (mid..hd, w1)],
                    |_, (cols, out)| linalg::pack_blocks_of(wh, gh, hd, cols, out),
                );
            }
            ws.dh_next.fill(T::zero());
            ws.dc.fill(T::zero());
            if let (Some(mid), Some(pair)) = (split.filter(|_| through_wht), pair) {
                // each thread owns units R (rows of Wh, its strips of Wh^T, as in the
                // forward pass): it takes dh = dcur + dh_next and dXP_t = (1 - h_t^2) dh
                // on R, then its partial sum dXP_t[R] Wh[R, :] of dh_{t-1}, the other's
                // units first; it publishes those and the other thread adds them to its
                // own for the next step. Steps of each parity have their own buffers
                let (dxp_p, parts_p, dh_p) = (
                    Shared(lw.dxp.as_mut_ptr()),
                    Shared(ws.parts.as_mut_ptr()),
                    Shared(ws.dh.as_mut_ptr()),
                );
                let (wht, hs) = (&ws.wht[..], &lw.hs[..]);
                // per thread: steps whose partial sum for the other's units is written
                // (each counter on its own lines)
                let written = [Padded(AtomicUsize::new(0)), Padded(AtomicUsize::new(0))];
                pair.run(&|i| {
                    let (own, other, w) = owned_units(wht, mid, hd, i);
                    // SAFETY: each thread writes only its own units of dh and of dxp's
                    // rows, and its own partial sums (buffer t % 2, thread i). It reads
                    // the other's partial sum of step t + 1 on its units once published;
                    // the other writes that buffer again only for step t - 1, after
                    // waiting for this thread's partial sum of step t, published later
                    let at =
                        |p: Shared<T>, start: usize, len: usize| unsafe { p.slice(start, len) };
                    let dh = at(dh_p, own.start, own.len());
                    for t in (0..steps).rev() {
                        let dcur_t = &dcur[t * hd + own.start..t * hd + own.end];
                        if t + 1 < steps {
                            pair::wait_until(|| {
                                written[1 - i].load(Ordering::Acquire) >= steps - t - 1
                            });
                            let next = (t + 1) % 2 * 2 * hd;
                            let (p0, p1) = (
                                at(parts_p, next + own.start, own.len()),
                                at(parts_p, next + hd + own.start, own.len()),
                            );
                            for (((d, &a), &p0), &p1) in
                                dh.iter_mut().zip(dcur_t).zip(&*p0).zip(&*p1)
                            {
                                *d = a + (p0 + p1);
                            }
                        } else {
                            for (d, &a) in dh.iter_mut().zip(dcur_t) {
                                *d = a + T::zero();
                            }
                        }
                        let dxp_t = at(dxp_p, t * gh + own.start, own.len());
                        rnn::backward(
                            dh,
                            &hs[(t + 1) * hd + own.start..(t + 1) * hd + own.end],
                            dxp_t,
                        );
                        if t > 0 {
                            // truncated BPTT: nothing flows into the previous chunk
                            // (odd steps walk the rows backwards, see strip_matvec)
                            let (mine, back) = (t % 2 * 2 * hd + i * hd, t % 2 == 1);
                            let theirs = at(parts_p, mine + other.start, other.len());
                            linalg::strip_matvec(w, dxp_t, other.start, theirs, back);
                            written[i].store(steps - t, Ordering::Release);
                            linalg::strip_matvec(
                                w,
                                dxp_t,
                                own.start,
                                at(parts_p, mine + own.start, own.len()),
                                back,
                            );
                        }
                    }
                });
            } else if let Some(mid) = split {
                // each thread owns part of the columns (gh = hd for this cell): it takes
                // dh = dcur + dh_next and dXP_t = (1 - h_t^2) dh on them, then, once both
                // parts of dXP_t are there, its part of dh_{t-1} = dXP_t Wh (in blocks)
                let (dxp_p, next_p) =
                    (Shared(lw.dxp.as_mut_ptr()), Shared(ws.dh_next.as_mut_ptr()));
                let dh_p = Shared(ws.dh.as_mut_ptr());
                let (whp, hs) = (&ws.whp[..], &lw.hs[..]);
                let cols = |i: usize| if i == 0 { 0..mid } else { mid..hd };
                let local = |t: usize, i: usize| {
                    let cols = cols(i);
                    // SAFETY: each thread touches only its own columns of dh, dh_next and
                    // row t of dxp here
                    let at = |p: Shared<T>, row: usize| unsafe {
                        std::slice::from_raw_parts_mut(p.ptr().add(row + cols.start), cols.len())
                    };
                    let (dh, dh_next, dxp_t) = (at(dh_p, 0), at(next_p, 0), at(dxp_p, t * gh));
                    for ((d, &a), n) in dh
                        .iter_mut()
                        .zip(&dcur[t * hd + cols.start..t * hd + cols.end])
                        .zip(dh_next)
                    {
                        *d = a + *n;
                        *n = T::zero();
                    }
                    rnn::backward(
                        dh,
                        &hs[(t + 1) * hd + cols.start..(t + 1) * hd + cols.end],
                        dxp_t,
                    );
                };
                let product = |t: usize, i: usize| {
                    if t == 0 {
                        return; // truncated BPTT: nothing flows into the previous chunk
                    }
                    let cols = cols(i);
                    let w = if i == 0 {
                        &whp[..mid * gh]
                    } else {
                        &whp[mid * gh..]
                    };
                    // SAFETY: both threads read all of row t of dxp (complete since the
                    // barrier) and add into their own columns of dh_next
                    let dxp_t = unsafe { std::slice::from_raw_parts(dxp_p.ptr().add(t * gh), gh) };
                    let y = unsafe {
                        std::slice::from_raw_parts_mut(next_p.ptr().add(cols.start), cols.len())
                    };
                    linalg::block_vecmat(dxp_t, w, y, true);
                };
                lockstep(pair, (0..steps).rev(), &local, &product);
            }
            for t in (0..steps).rev().filter(|_| split.is_none()) {
                // dh = dL/dh_t from above (this step's output) and from step t+1
                for ((d, &a), &n) in ws
                    .dh
                    .iter_mut()
                    .zip(&dcur[t * bh..(t + 1) * bh])
                    .zip(&ws.dh_next)
                {
                    *d = a + n;
                }
                let rows = t * b * gh..(t + 1) * b * gh;
                let h_prev = &lw.hs[t * bh..(t + 1) * bh];
                let dhp_t: &[T] = match c.cell {
                    Cell::Rnn => {
                        rnn::backward(
                            &ws.dh,
                            &lw.hs[(t + 1) * bh..(t + 2) * bh],
                            &mut lw.dxp[rows.clone()],
                        );
                        ws.dh_next.fill(T::zero());
                        &lw.dxp[rows]
                    }
                    Cell::Lstm => {
                        let cache =
                            &lw.cache[t * b * lstm::CACHE * hd..(t + 1) * b * lstm::CACHE * hd];
                        let c_prev = &lw.cs[t * bh..(t + 1) * bh];
                        lstm::backward(
                            hd,
                            &ws.dh,
                            &mut ws.dc,
                            c_prev,
                            cache,
                            &mut lw.dxp[rows.clone()],
                        );
                        ws.dh_next.fill(T::zero());
                        &lw.dxp[rows]
                    }
                    Cell::Gru => {
                        let cache =
                            &lw.cache[t * b * gru::CACHE * hd..(t + 1) * b * gru::CACHE * hd];
                        let (dxp, dhp) = (&mut lw.dxp[rows.clone()], &mut lw.dhp[rows.clone()]);
                        gru::backward(hd, &ws.dh, h_prev, cache, dxp, dhp, &mut ws.dh_next);
                        &lw.dhp[rows]
                    }
                };
                // dh_{t-1} (+)= dHP_t Wh; not needed before the chunk (truncated BPTT)
                if t > 0 {
                    // Wh (GH, H) is already the row-major M of dh = dHP Wh
                    match width {
                        Some(_) if through_wht => back_through_strips(
                            &ws.wht,
                            dhp_t,
                            &mut ws.parts,
                            &mut ws.dh_next,
                            t % 2 == 1,
                        ),
                        Some(_) => linalg::strip_vecmat(dhp_t, &ws.whp, &mut ws.dh_next, b, true),
                        None if blocks => {
                            linalg::block_vecmat(dhp_t, &ws.whp, &mut ws.dh_next, true)
                        }
                        None if b == 1 => linalg::vecmat(dhp_t, wh, &mut ws.dh_next, true),
                        None => linalg::a_b(dhp_t, wh, &mut ws.dh_next, b, gh, hd, T::one()),
                    }
                }
            }
            let dxp = &lw.dxp[..tb * gh];
            let dhp = if c.cell == Cell::Gru {
                &lw.dhp[..tb * gh]
            } else {
                dxp
            };
            let one_hot = l == 0 && c.embedding == 0;
            // dWh = dHP^T H_prev, db = sum_rows dXP, and for a one-hot input
            // dWx[:, x_r] += dXP[r]: each thread takes rows r of dWh and of dWx
            // and entries r of db (r: pre-activations)
            let h_prev = &lw.hs[..tb * hd];
            let [gwh, gb, gwx] = grads
                .get_disjoint_mut([lp.wh.clone(), lp.b.clone(), lp.wx.clone()])
                .expect("disjoint tensors");
            let rows_of = |r: Range<usize>, (gwh, gb, gwx): (&mut [T], &mut [T], &mut [T])| {
                linalg::at_b_rows(dhp, h_prev, gwh, gh, tb, hd, r.clone(), T::zero());
                gb.fill(T::zero());
                for row in dxp.chunks_exact(gh) {
                    gb.iter_mut()
                        .zip(&row[r.clone()])
                        .for_each(|(a, &d)| *a = *a + d);
                }
                if one_hot {
                    // dWx written row by row, as the forward pass reads Wx (a column
                    // per step would touch a cache line per value); each entry still
                    // sums the steps in order
                    gwx.fill(T::zero());
                    for (k, gwx_k) in r.clone().zip(gwx.chunks_exact_mut(v)) {
                        for (row, &x) in dxp.chunks_exact(gh).zip(inputs) {
                            gwx_k[x as usize] = gwx_k[x as usize] + row[k];
                        }
                    }
                }
            };
            match halves(pair, gh) {
                Some((pair, mid)) => {
                    let ([h0, h1], [b0, b1]) = (split_rows(gwh, hd, mid), split_rows(gb, 1, mid));
                    let [x0, x1] = if one_hot {
                        split_rows(gwx, v, mid)
                    } else {
                        [&mut [][..], &mut [][..]]
                    };
                    pair.each(
                        [(0..mid, (h0, b0, x0)), (mid..gh, (h1, b1, x1))],
                        |_, (r, out)| rows_of(r, out),
                    );
                }
                None => rows_of(0..gh, (gwh, gb, gwx)),
            }
            if let Some(bhn) = lp.bhn.clone() {
                let gbhn = &mut grads[bhn];
                gbhn.fill(T::zero());
                for row in dhp.chunks_exact(gh) {
                    gbhn.iter_mut()
                        .zip(&row[2 * hd..])
                        .for_each(|(a, &d)| *a = *a + d);
                }
            }
            // input side
            if one_hot {
                // done above with dWh
            } else if l == 0 && uses_table(&c, tb) {
                // dTable[x_r] += dXP[r]; dWx = dTable^T embed; dEmbed = dTable Wx
                let (e, table) = (c.embedding, &mut ws.table);
                table.fill(T::zero());
                for (row, &x) in dxp.chunks_exact(gh).zip(inputs) {
                    let t = &mut table[x as usize * gh..(x as usize + 1) * gh];
                    t.iter_mut().zip(row).for_each(|(a, &d)| *a = *a + d);
                }
                let embed_range = layout.embed.clone().expect("embedding");
                linalg::at_b(
                    table,
                    &p[embed_range.clone()],
                    &mut grads[lp.wx.clone()],
                    gh,
                    v,
                    e,
                    T::zero(),
                );
                linalg::a_b(
                    table,
                    &p[lp.wx.clone()],
                    &mut grads[embed_range],
                    v,
                    gh,
                    e,
                    T::zero(),
                );
            } else {
                let i = c.input_size(l);
                let x: &[T] = if l == 0 {
                    &ws.emb[..tb * i]
                } else {
                    layer_output(&below[l - 1], dropout, b, hd, tb)
                };
                // dWx = dXP^T X, dX = dXP Wx; with a pair each thread takes half of
                // the rows of both
                let (gwx, wx, dx) = (
                    &mut grads[lp.wx.clone()],
                    &p[lp.wx.clone()],
                    &mut ws.dx[..tb * i],
                );
                let rows_of = |r: Range<usize>, gwx: &mut [T], q: Range<usize>, dx: &mut [T]| {
                    linalg::at_b_rows(dxp, x, gwx, gh, tb, i, r, T::zero());
                    linalg::a_b(
                        &dxp[q.start * gh..q.end * gh],
                        wx,
                        dx,
                        q.len(),
                        gh,
                        i,
                        T::zero(),
                    );
                };
                match halves(pair, gh).zip(halves(pair, tb)) {
                    Some(((pair, mid), (_, half))) => {
                        let ([w0, w1], [d0, d1]) =
                            (split_rows(gwx, i, mid), split_rows(dx, i, half));
                        let jobs = [(0..mid, w0, 0..half, d0), (mid..gh, w1, half..tb, d1)];
                        pair.each(jobs, |_, (r, gwx, q, dx)| rows_of(r, gwx, q, dx));
                    }
                    None => rows_of(0..gh, gwx, 0..tb, dx),
                }
                let dx = &mut ws.dx[..tb * i];
                if l == 0 {
                    // dEmbed[x_r] += dX[r]
                    let e = c.embedding;
                    let ge = &mut grads[layout.embed.clone().expect("embedding")];
                    ge.fill(T::zero());
                    for (row, &x) in dx.chunks_exact(e).zip(inputs) {
                        let g = &mut ge[x as usize * e..(x as usize + 1) * e];
                        g.iter_mut().zip(row).for_each(|(a, &d)| *a = *a + d);
                    }
                } else {
                    std::mem::swap(&mut ws.dcur, &mut ws.dx);
                }
            }
        }
    }

    /// Forward and backward over one chunk. The objective is the summed loss over
    /// the chunk averaged over the B streams (min-char-rnn's loss when B = 1);
    /// `grads` receives its gradient. Returns the objective.
    pub fn forward_backward(
        &self,
        inputs: &[u32],
        targets: &[u32],
        state: &mut State<T>,
        grads: &mut [T],
        ws: &mut Workspace<T>,
    ) -> f64 {
        let b = ws.batch;
        self.forward_backward_scaled(inputs, targets, state, grads, ws, stream_scale(b)) / b as f64
    }

    /// Forward and backward for some of a batch's streams: `grads` receives the
    /// gradient of `scale` times the summed loss, which is returned unscaled.
    pub fn forward_backward_scaled(
        &self,
        inputs: &[u32],
        targets: &[u32],
        state: &mut State<T>,
        grads: &mut [T],
        ws: &mut Workspace<T>,
        scale: T,
    ) -> f64 {
        let loss = self.forward_loss(inputs, targets, state, ws, scale);
        self.backward(inputs, grads, ws);
        loss
    }
}

/// The gradient scale of an objective averaged over `streams` streams (1 exactly
/// for one stream, so the default model computes min-char-rnn's numbers).
pub fn stream_scale<T: Real>(streams: usize) -> T {
    if streams == 1 {
        T::one()
    } else {
        T::c(1.0 / streams as f64)
    }
}

/// Chunks at least this long lay Wh out once (strips or a transpose) for the
/// recurrence; shorter ones (sampling feeds one character) multiply Wh as it is.
const TRANSPOSE_FROM: usize = 8;

/// A pointer two threads share in a split recurrence ([`lockstep`], or the step
/// counters of the strip layout's), which keeps their accesses apart.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
// SAFETY: lockstep's phases and barrier order every access through it
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// A method, not the field: a closure then captures the whole Shared (Sync),
    /// not the raw pointer inside it.
    fn ptr(self) -> *mut T {
        self.0
    }

    /// The `len` values from `start` on.
    ///
    /// # Safety
    /// They are in bounds, and no other thread touches them while the slice lives.
    unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [T] {
        unsafe { std::slice::from_raw_parts_mut(self.ptr().add(start), len) }
    }
}

/// Thread i's units in a recurrence split at `mid` of `hd`, the other thread's,
/// and thread i's strips of Wh^T (its units' rows of Wh).
fn owned_units<T>(
    wht: &[T],
    mid: usize,
    hd: usize,
    i: usize,
) -> (Range<usize>, Range<usize>, &[T]) {
    let units = |i: usize| if i == 0 { 0..mid } else { mid..hd };
    (
        units(i),
        units(1 - i),
        if i == 0 {
            &wht[..mid * hd]
        } else {
            &wht[mid * hd..]
        },
    )
}

/// Runs the steps of a recurrence on the pair's two threads (i = 0 here, 1 the
/// helper): at each step both run `before(t, i)`, meet at a barrier, then run
/// `after(t, i)`. The closures must write only what belongs to their `i`, and
/// may read the other thread's writes only across a barrier.
fn lockstep<I>(
    pair: Option<&Pair>,
    steps: I,
    before: &(dyn Fn(usize, usize) + Sync),
    after: &(dyn Fn(usize, usize) + Sync),
) where
    I: Iterator<Item = usize> + Clone + Sync,
{
    let pair = pair.expect("a split recurrence has a pair");
    let barrier = SpinBarrier::default();
    pair.run(&|i| {
        for t in steps.clone() {
            before(t, i);
            barrier.wait();
            after(t, i);
        }
    });
}

/// Where a phase over `rows` independent rows splits between the pair: half the
/// rows each, when there is a pair and each half has at least 2 rows (so every
/// kernel takes the path it takes on all the rows and computes the same bits).
fn halves(pair: Option<&Pair>, rows: usize) -> Option<(&Pair, usize)> {
    pair.filter(|_| rows >= 4).map(|pair| (pair, rows / 2))
}

/// The first `mid` rows of a row-major buffer `width` values wide, and the rest.
fn split_rows<T>(buf: &mut [T], width: usize, mid: usize) -> [&mut [T]; 2] {
    let (a, b) = buf.split_at_mut(mid * width);
    [a, b]
}

/// Runs `f(rows, out)` over the row-major `out`, `width` values per row: in one
/// call, or in two halves of the rows at once on the pair (see [`halves`]).
fn by_rows<T: Send>(
    pair: Option<&Pair>,
    out: &mut [T],
    width: usize,
    f: impl Fn(Range<usize>, &mut [T]) + Sync,
) {
    let rows = out.len() / width;
    match halves(pair, rows) {
        Some((pair, mid)) => {
            let [a, b] = split_rows(out, width, mid);
            pair.each([(0..mid, a), (mid..rows, b)], |_, (r, out)| f(r, out));
        }
        None => f(0..rows, out),
    }
}

/// The two jobs of a pass whose output layer runs step by step: the layers on
/// this thread, the output layer on the helper.
enum ByStep<'a, T> {
    Forward(&'a mut Workspace<T>, &'a mut State<T>),
    Head(&'a mut Head<T>),
}

/// The two jobs of its backward pass.
enum ByStepBack<'a, T> {
    Layers(&'a mut Workspace<T>, &'a mut [T]),
    /// dWhy and dby
    Dwhy(&'a mut [T], &'a mut [T]),
}

/// The buffers [`Model::head`] writes, moved out of the workspace for the pass.
struct Head<T> {
    /// (T, V): logits, then dY
    ys: Vec<T>,
    /// (T): -ln p[target] per step
    losses: Vec<f64>,
    /// (T, H): dtop = dY Why
    dtop: Vec<T>,
    /// (H, V) Why^T and (V, H) Why in blocks
    whyt: Vec<T>,
    whyb: Vec<T>,
}

/// The output layer for the rows h (several steps of one stream), Why laid out
/// by [`Model::head`]: ys = h Why^T + by, the loss of each row, dY in place of
/// ys, and dtop = dY Why. `layouts` is (Why^T in blocks, Why in blocks, by) and
/// `out` is (ys, losses, dtop) for these rows.
fn head_steps<T: Real>(
    h: &[T],
    targets: &[u32],
    scale: T,
    (whyt, whyb, by): (&[T], &[T], &[T]),
    (ys, losses, dtop): (&mut [T], &mut [f64], &mut [T]),
) {
    let (v, hd) = (by.len(), dtop.len() / targets.len());
    linalg::block_matmat(h, whyt, ys, v);
    linalg::add_row(ys, by);
    for ((y, &target), loss) in ys.chunks_exact_mut(v).zip(targets).zip(losses) {
        *loss = softmax_loss(y, target as usize, scale);
    }
    linalg::block_matmat(ys, whyb, dtop, hd);
}

/// Softmax of one row of logits in place, then dy = (p - onehot(target)) * scale
/// there; returns -ln p[target].
fn softmax_loss<T: Real>(row: &mut [T], target: usize, scale: T) -> f64 {
    let logit = row[target].as_f64();
    let loss = linalg::softmax_in_place(row) - logit;
    row[target] = row[target] - T::one();
    if scale != T::one() {
        row.iter_mut().for_each(|y| *y = *y * scale);
    }
    loss
}

/// Whether one stream's passes of `steps` steps run the output layer step by
/// step ([`Model::head`]): one stream, chunks long enough to lay Wh out, and Why
/// small enough to read from cache at every step. Measured (tinyshakespeare,
/// medians of 3-5, against the GEMM output layer): the default model 10.1k
/// against 8.3k it/s on two threads and 7.6k against 7.7k on one; hidden 128,
/// 7.3k against 6.1k; hidden 512 (Why 33k values), 657 against 674, no change
/// outside the noise.
fn head_by_step(c: &Config, steps: usize, batch: usize) -> bool {
    batch == 1 && steps >= TRANSPOSE_FROM && c.vocab * c.hidden <= HEAD_BY_STEP_MAX
}

/// The largest Why (values) [`head_by_step`] allows.
const HEAD_BY_STEP_MAX: usize = 1 << 16;

/// The two halves of the output layer's backward pass, one per thread.
enum OutputGrad<'a, T> {
    /// (T*B, H): dtop = dY Why
    Dtop(&'a mut [T]),
    /// (V, H) and (V): dWhy, dby
    Dwhy(&'a mut [T], &'a mut [T]),
}

/// Where a split recurrence divides `n` output columns between the pair: half
/// of the 16-column strips, or the whole 32-column blocks nearest half (each
/// thread's blocks are then a block layout of their own); None when there is
/// not enough for two.
fn split_column(n: usize, strips: bool) -> Option<usize> {
    let mid = if strips {
        n / 2 / linalg::TILE_COLS * linalg::TILE_COLS
    } else {
        (n / 2 + linalg::BLOCK / 2) / linalg::BLOCK * linalg::BLOCK
    };
    (mid > 0 && mid < n && (strips || mid <= n / linalg::BLOCK * linalg::BLOCK)).then_some(mid)
}

/// Lays out Wh^T (H, GH) in strips of 16 of its columns, strip s from rows 16s..
/// of Wh (GH, H): on a pair, each thread the strips it later reads.
fn pack_wht_strips<T: Real>(pair: Option<&Pair>, wht: &mut [T], wh: &[T], hd: usize) {
    let w = linalg::TILE_COLS;
    by_rows(pair, wht, w * hd, |strips, out| {
        let rows = strips.start * w..strips.end * w;
        linalg::pack_strips_of_transpose(&wh[rows.start * hd..rows.end * hd], rows.len(), hd, out)
    })
}

/// dh_{t-1} = dXP_t Wh for one stream of a tanh RNN, from Wh^T in strips
/// (`wht`, as the forward pass laid it out): the partial sums over the two halves
/// of Wh's rows that a split recurrence takes on two threads, added the same way,
/// so one thread computes the same bits. `parts` holds the partial sums.
/// `descending` walks Wh's rows from the last (see `linalg::strip_matvec`).
fn back_through_strips<T: Real>(
    wht: &[T],
    dxp_t: &[T],
    parts: &mut [T],
    dh_next: &mut [T],
    descending: bool,
) {
    let hd = dh_next.len();
    match split_column(hd, true) {
        Some(mid) => {
            let (p0, p1) = parts[..2 * hd].split_at_mut(hd);
            let first = |p0: &mut [T]| {
                linalg::strip_matvec(&wht[..mid * hd], &dxp_t[..mid], 0, p0, descending)
            };
            let second = |p1: &mut [T]| {
                linalg::strip_matvec(&wht[mid * hd..], &dxp_t[mid..], 0, p1, descending)
            };
            if descending {
                second(p1);
                first(p0);
            } else {
                first(p0);
                second(p1);
            }
            for ((n, &p0), &p1) in dh_next.iter_mut().zip(&*p0).zip(&*p1) {
                *n = p0 + p1;
            }
        }
        None => linalg::strip_matvec(wht, dxp_t, 0, dh_next, descending),
    }
}

/// The strip width for a recurrent product with `cols` outputs, None when the
/// columns do not divide into strips (then the row-major kernels run). Measured
/// on one stream at H = 512, 32-wide strips were no faster than 16.
fn strip_width(cols: usize) -> Option<usize> {
    cols.is_multiple_of(linalg::TILE_COLS)
        .then_some(linalg::TILE_COLS)
}

/// Whether the first layer reads its embedding through the (V, GH) table.
fn uses_table(c: &Config, rows: usize) -> bool {
    c.embedding > 0 && c.vocab <= rows
}

/// A layer's output rows h_1 .. h_T, after dropout when it is on.
fn layer_output<T: Real>(
    lw: &LayerWork<T>,
    dropout: bool,
    b: usize,
    hd: usize,
    rows: usize,
) -> &[T] {
    if dropout {
        &lw.out[..rows * hd]
    } else {
        &lw.hs[b * hd..b * hd + rows * hd]
    }
}
