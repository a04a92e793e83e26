//! The stacked network over a chunk of T steps for B streams, each part's
//! forward and backward side by side.
//!
//! ```text
//! layer input   X_0 = one-hot(x) | embed[x],   X_l = dropout(h^{l-1})
//! projection    XP_l = X_l Wx_l^T + b_l            all T*B rows at once (one-hot: a column gather)
//! recurrence    HP_t = h_{t-1} Wh_l^T              per step (see `recurrence`)
//!               h_t, c_t = cell(XP_l[t], HP_t, h_{t-1}, c_{t-1})     (see `cell`)
//! output        Y = dropout(h^{L-1}) Why^T + by,   loss = sum_rows -ln softmax(Y)[target]
//! ```
//! Rows are time-major: row t*B + b is step t of stream b. Only the recurrence is
//! sequential; every weight gradient is one GEMM over all T*B rows. With a pair,
//! each phase over rows runs in two halves at once (`parallel::by_rows`).
//!
//! An embedding followed by Wx is itself a lookup table: embed[x] Wx^T = (embed Wx^T)[x].
//! When the vocabulary is smaller than the chunk (V <= T*B, the usual case) the
//! network builds that (V, GH) table once per pass instead of multiplying T*B
//! embedding rows, and folds the backward pass through it the same way.

use std::ops::Range;

use super::cell::{Backward, Forward};
use super::head::{self, States, softmax_loss};
use super::recurrence;
use super::workspace::{LayerWork, Workspace, layer_output};
use super::{Config, Model, State};
use crate::linalg::{self, Real};
use crate::parallel::{self, Pair};

impl<T: Real> Model<T> {
    /// Runs the layers over `inputs` (T*B ids, time-major; T may be shorter than
    /// the workspace's capacity), carrying `state` in and out.
    pub fn forward(&self, inputs: &[u32], state: &mut State<T>, ws: &mut Workspace<T>) {
        ws.head_done = false;
        let pair = ws.pair.clone();
        self.forward_on(inputs, state, ws, pair.as_deref(), None);
    }

    /// [`Model::forward`] with the phases that split in two on `pair` (the
    /// workspace's own pair, or none inside a job already on it). `top` is where
    /// the top layer's states go when the output layer reads them beside.
    pub(crate) fn forward_on(
        &self,
        inputs: &[u32],
        state: &mut State<T>,
        ws: &mut Workspace<T>,
        pair: Option<&Pair>,
        mut top: Option<States<'_, T>>,
    ) {
        let (c, b) = (self.config, ws.batch);
        let rows = inputs.len();
        assert!(
            rows.is_multiple_of(b) && rows / b <= ws.seq,
            "chunk does not fit the workspace"
        );
        assert_eq!(c, ws.config, "workspace was made for another model");
        for l in 0..c.layers {
            self.project_inputs(l, inputs, ws, pair);
            let states = if l + 1 == c.layers { top.take() } else { None };
            self.layer_forward(l, rows / b, state, ws, pair, states);
        }
    }

    /// Layer `l`'s recurrence over `steps` steps, from its XP: h_t (and c_t) for
    /// every step, the layer's output after dropout, and the carried state.
    fn layer_forward(
        &self,
        l: usize,
        steps: usize,
        state: &mut State<T>,
        ws: &mut Workspace<T>,
        pair: Option<&Pair>,
        top: Option<States<'_, T>>,
    ) {
        let (c, b, h) = (self.config, ws.batch, self.config.hidden);
        let (gh, step) = (c.cell.gates() * h, b * h);
        let lp = &ws.layout.layers[l];
        let (wh, extra) = (
            &self.params[lp.wh.clone()],
            lp.extra
                .as_ref()
                .map_or(&[][..], |r| &self.params[r.clone()]),
        );
        let sampled = ws
            .sampling
            .as_ref()
            .filter(|_| steps * b == 1)
            .and_then(|s| s.wh_t[l].as_ref());
        let split = ws.split && pair.is_some();
        let plan = recurrence::Forward::choose(c.cell, gh, steps, b, split && sampled.is_none());
        let strips = plan.lay_out(pair, wh, h, &mut ws.wh_t_packed);
        ws.wh_t_layer = strips.then_some(l);
        let Workspace {
            layers,
            hp,
            wh_t_packed,
            partial_sums,
            masks,
            ..
        } = ws;
        let LayerWork {
            xp,
            hs,
            cs,
            cache,
            out,
            ..
        } = &mut layers[l];
        let mut states = top.unwrap_or(States::Own(hs));
        states.first_mut(step).copy_from_slice(&state.h[l]);
        if c.cell.has_cell_state() {
            cs[..step].copy_from_slice(&state.c[l]);
        }
        match (plan, pair) {
            (recurrence::Forward::SplitStrips { mid }, Some(pair)) => super::split::forward_strips(
                pair,
                mid,
                steps,
                xp,
                wh_t_packed,
                states.own(),
                hp,
                partial_sums,
            ),
            (recurrence::Forward::SplitBlocks { mid }, Some(pair)) => {
                super::split::forward_blocks(pair, mid, steps, xp, wh_t_packed, states.own(), hp)
            }
            _ => {
                let (cache_len, xp_len) = (b * c.cell.cache() * h, b * gh);
                for t in 0..steps {
                    let (h_prev, h_t) = states.step(t, step);
                    // HP = h_{t-1} Wh^T
                    plan.step(
                        t,
                        h_prev,
                        (wh, wh_t_packed, sampled),
                        hp,
                        partial_sums,
                        (b, h),
                    );
                    let (c_prev, c_t) = match c.cell.has_cell_state() {
                        true => {
                            let (done, next) = cs.split_at_mut((t + 1) * step);
                            (&done[t * step..], &mut next[..step])
                        }
                        false => (&[][..], &mut [][..]),
                    };
                    let (xp, cache) = (
                        &xp[t * xp_len..(t + 1) * xp_len],
                        &mut cache[t * cache_len..(t + 1) * cache_len],
                    );
                    c.cell.forward(
                        h,
                        Forward {
                            xp,
                            hp,
                            h_prev,
                            c_prev,
                            extra,
                            h: h_t,
                            c: c_t,
                            cache,
                        },
                    );
                    states.publish(t + 1);
                }
            }
        }
        state.h[l].copy_from_slice(states.row(steps, step));
        if c.cell.has_cell_state() {
            state.c[l].copy_from_slice(&cs[steps * step..(steps + 1) * step]);
        }
        if let Some(mask) = masks.get(l) {
            let hs = states.rows(1, steps, step);
            for ((o, &h), &m) in out.iter_mut().zip(hs).zip(mask) {
                *o = h * m;
            }
        }
    }

    /// Back through layer `l`: from dcur (the gradient reaching its outputs) to
    /// dXP (and dHP) at every step, then dWh, db and the extra bias's gradient.
    /// `top_hs` holds the top layer's states when they are out of the workspace.
    #[allow(clippy::too_many_arguments)]
    fn layer_backward(
        &self,
        l: usize,
        inputs: &[u32],
        steps: usize,
        grads: &mut [T],
        ws: &mut Workspace<T>,
        pair: Option<&Pair>,
        top_hs: Option<&[T]>,
    ) {
        let (c, b, h) = (self.config, ws.batch, self.config.hidden);
        let (gh, step, rows) = (c.cell.gates() * h, b * h, steps * b);
        let lp = &ws.layout.layers[l];
        let wh = &self.params[lp.wh.clone()];
        let dcur = &mut ws.dcur[..rows * h];
        if let Some(mask) = ws.masks.get(l) {
            dcur.iter_mut().zip(mask).for_each(|(d, &m)| *d = *d * m);
        }
        let plan = recurrence::Backward::choose(c.cell, h, steps, b, ws.split && pair.is_some());
        let have_wh_t = ws.wh_t_layer == Some(l);
        plan.lay_out(
            pair,
            wh,
            h,
            (&mut ws.wh_t_packed, have_wh_t),
            &mut ws.wh_packed,
        );
        if plan.reads_forward_strips() {
            ws.wh_t_layer = Some(l);
        }
        let Workspace {
            layers,
            dh,
            dh_next,
            dc,
            wh_t_packed,
            wh_packed,
            partial_sums,
            ..
        } = ws;
        let lw = &mut layers[l];
        let hs = top_hs.filter(|_| l + 1 == c.layers).unwrap_or(&lw.hs);
        dh_next.fill(T::zero());
        dc.fill(T::zero());
        let dcur = &*dcur;
        match (plan, pair) {
            (recurrence::Backward::SplitStrips { mid }, Some(pair)) => {
                super::split::backward_strips(
                    pair,
                    mid,
                    steps,
                    dcur,
                    hs,
                    wh_t_packed,
                    &mut lw.dxp,
                    dh,
                    partial_sums,
                )
            }
            (recurrence::Backward::SplitBlocks { mid }, Some(pair)) => {
                super::split::backward_blocks(
                    pair,
                    mid,
                    steps,
                    dcur,
                    hs,
                    wh_packed,
                    &mut lw.dxp,
                    dh,
                    dh_next,
                )
            }
            _ => {
                let (own_dhp, cache_len) = (own_dhp(c), b * c.cell.cache() * h);
                for t in (0..steps).rev() {
                    // dh = dL/dh_t from above (this step's output) and from step t+1
                    for ((d, &a), &n) in dh
                        .iter_mut()
                        .zip(&dcur[t * step..(t + 1) * step])
                        .zip(&*dh_next)
                    {
                        *d = a + n;
                    }
                    let r = t * b * gh..(t + 1) * b * gh;
                    let (dxp, dhp) = (
                        &mut lw.dxp[r.clone()],
                        if own_dhp {
                            &mut lw.dhp[r.clone()]
                        } else {
                            &mut [][..]
                        },
                    );
                    let c_prev = if c.cell.has_cell_state() {
                        &lw.cs[t * step..(t + 1) * step]
                    } else {
                        &[][..]
                    };
                    c.cell.backward(
                        h,
                        Backward {
                            dh,
                            dc,
                            h: &hs[(t + 1) * step..(t + 2) * step],
                            h_prev: &hs[t * step..(t + 1) * step],
                            c_prev,
                            cache: &lw.cache[t * cache_len..(t + 1) * cache_len],
                            dxp,
                            dhp,
                            dh_prev: dh_next,
                        },
                    );
                    // dh_{t-1} (+)= dHP_t Wh; not needed before the chunk (truncated BPTT)
                    if t > 0 {
                        let dhp_t = if own_dhp { &lw.dhp[r] } else { &lw.dxp[r] };
                        plan.step(
                            t,
                            dhp_t,
                            (wh, wh_t_packed, wh_packed),
                            dh_next,
                            partial_sums,
                            (b, gh),
                        );
                    }
                }
            }
        }
        let dhp = if own_dhp(c) {
            &lw.dhp[..rows * gh]
        } else {
            &lw.dxp[..rows * gh]
        };
        let [gwh, gb, gwx] = grads
            .get_disjoint_mut([lp.wh.clone(), lp.b.clone(), lp.wx.clone()])
            .expect("disjoint tensors");
        let one_hot = (l == 0 && c.embedding == 0).then_some((inputs, c.vocab));
        recurrent_gradients(
            pair,
            (dhp, &lw.dxp[..rows * gh], &hs[..rows * h]),
            one_hot,
            (gwh, gb, gwx),
        );
        if let Some(extra) = lp.extra.clone() {
            c.cell.extra_bias_gradient(h, dhp, &mut grads[extra]);
        }
    }
}

/// Whether the cell's hidden-side gradient has a buffer of its own.
fn own_dhp(c: Config) -> bool {
    c.cell.own_hidden_gradient()
}

/// Whether the first layer reads its embedding through the (V, GH) table.
fn uses_table(c: &Config, rows: usize) -> bool {
    c.embedding > 0 && c.vocab <= rows
}

/// dWh = dHP^T H_prev, db = sum_rows dXP, and for a one-hot input (`one_hot`:
/// the inputs and V) dWx[:, x_r] += dXP[r]. With a pair each thread takes rows
/// r of dWh and of dWx and entries r of db (r: pre-activations).
fn recurrent_gradients<T: Real>(
    pair: Option<&Pair>,
    (dhp, dxp, h_prev): (&[T], &[T], &[T]),
    one_hot: Option<(&[u32], usize)>,
    (gwh, gb, gwx): (&mut [T], &mut [T], &mut [T]),
) {
    let (gh, h) = (gb.len(), gwh.len() / gb.len());
    let rows = dxp.len() / gh;
    let rows_of = |r: Range<usize>, (gwh, gb, gwx): (&mut [T], &mut [T], &mut [T])| {
        linalg::at_b_rows(dhp, h_prev, gwh, gh, rows, h, r.clone(), T::zero());
        gb.fill(T::zero());
        for row in dxp.chunks_exact(gh) {
            gb.iter_mut()
                .zip(&row[r.clone()])
                .for_each(|(a, &d)| *a = *a + d);
        }
        if let Some((inputs, v)) = one_hot {
            // dWx written row by row, as the forward pass reads Wx (a column per
            // step would touch a cache line per value); each entry still sums the
            // steps in order
            gwx.fill(T::zero());
            for (k, gwx_k) in r.clone().zip(gwx.chunks_exact_mut(v)) {
                for (row, &x) in dxp.chunks_exact(gh).zip(inputs) {
                    gwx_k[x as usize] = gwx_k[x as usize] + row[k];
                }
            }
        }
    };
    match parallel::halves(pair, gh) {
        Some((pair, mid)) => {
            let ([h0, h1], [b0, b1]) = (
                parallel::split_rows(gwh, h, mid),
                parallel::split_rows(gb, 1, mid),
            );
            let [x0, x1] = match one_hot {
                Some((_, v)) => parallel::split_rows(gwx, v, mid),
                None => [&mut [][..], &mut [][..]],
            };
            pair.each(
                [(0..mid, (h0, b0, x0)), (mid..gh, (h1, b1, x1))],
                |_, (r, out)| rows_of(r, out),
            );
        }
        None => rows_of(0..gh, (gwh, gb, gwx)),
    }
}

impl<T: Real> Model<T> {
    /// XP = X Wx^T + b for layer `l` over all rows of the chunk.
    fn project_inputs(&self, l: usize, inputs: &[u32], ws: &mut Workspace<T>, pair: Option<&Pair>) {
        let c = self.config;
        let (b, h, gh, rows) = (ws.batch, c.hidden, c.cell.gates() * c.hidden, inputs.len());
        let lp = &ws.layout.layers[l];
        let (wx, bias) = (&self.params[lp.wx.clone()], &self.params[lp.b.clone()]);
        let (below, rest) = ws.layers.split_at_mut(l);
        let xp = &mut rest[0].xp[..rows * gh];
        let dropout = !ws.masks.is_empty();
        if let Some(sampling) = ws.sampling.as_ref().filter(|_| rows == 1) {
            // one character: a row of the table, or a vector-matrix product
            if l == 0 {
                let x = inputs[0] as usize;
                xp.copy_from_slice(&sampling.table[x * gh..(x + 1) * gh]);
            } else {
                let x = layer_output(&below[l - 1].hs, &below[l - 1].out, dropout, b * h, rows, h);
                match &sampling.wx_t[l - 1] {
                    Some(wx_t) => wx_t.apply(x, xp),
                    None => linalg::matvec(wx, x, xp),
                }
            }
            linalg::add_row(xp, bias);
        } else if l == 0 && c.embedding == 0 {
            // one-hot input: row r of XP is column x_r of Wx, read straight through,
            // row k of Wx giving entry k of every row of XP (a column of Wx at a time
            // would touch a cache line per value)
            parallel::by_rows(pair, xp, gh, |r, xp| {
                let xs = &inputs[r];
                for (k, (wx_k, &b)) in wx.chunks_exact(c.vocab).zip(bias).enumerate() {
                    for (row, &x) in xp.chunks_exact_mut(gh).zip(xs) {
                        row[k] = wx_k[x as usize] + b;
                    }
                }
            });
        } else if l == 0 && uses_table(&c, rows) {
            // XP row r = (embed Wx^T)[x_r]
            let embed = &self.params[ws.layout.embed.clone().expect("embedding")];
            linalg::a_bt(
                embed,
                wx,
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
                let (embed, e) = (
                    &self.params[ws.layout.embed.clone().expect("embedding")],
                    c.embedding,
                );
                for (row, &x) in ws.emb.chunks_exact_mut(e).zip(inputs) {
                    row.copy_from_slice(&embed[x as usize * e..(x as usize + 1) * e]);
                }
                &ws.emb[..rows * e]
            } else {
                layer_output(&below[l - 1].hs, &below[l - 1].out, dropout, b * h, rows, h)
            };
            let i = c.input_size(l);
            parallel::by_rows(pair, xp, gh, |r, xp| {
                linalg::a_bt(
                    &x[r.start * i..r.end * i],
                    wx,
                    xp,
                    r.len(),
                    i,
                    gh,
                    T::zero(),
                );
                linalg::add_row(xp, bias);
            });
        }
    }

    /// The input side of layer `l`'s backward pass, from its dXP: dWx and the
    /// gradient reaching the layer's inputs (dEmbed for the first layer, dcur for
    /// the layer below). A one-hot input's dWx came with dWh.
    fn input_gradients(
        &self,
        l: usize,
        inputs: &[u32],
        grads: &mut [T],
        ws: &mut Workspace<T>,
        pair: Option<&Pair>,
    ) {
        let c = self.config;
        let (b, h, gh, v, rows) = (
            ws.batch,
            c.hidden,
            c.cell.gates() * c.hidden,
            c.vocab,
            inputs.len(),
        );
        let (p, lp) = (&self.params, &ws.layout.layers[l]);
        let (below, rest) = ws.layers.split_at_mut(l);
        let dxp = &rest[0].dxp[..rows * gh];
        if l == 0 && c.embedding == 0 {
            return;
        }
        if l == 0 && uses_table(&c, rows) {
            // dTable[x_r] += dXP[r]; dWx = dTable^T embed; dEmbed = dTable Wx
            let (e, table) = (c.embedding, &mut ws.table);
            table.fill(T::zero());
            for (row, &x) in dxp.chunks_exact(gh).zip(inputs) {
                let t = &mut table[x as usize * gh..(x as usize + 1) * gh];
                t.iter_mut().zip(row).for_each(|(a, &d)| *a = *a + d);
            }
            let embed = ws.layout.embed.clone().expect("embedding");
            linalg::at_b(
                table,
                &p[embed.clone()],
                &mut grads[lp.wx.clone()],
                gh,
                v,
                e,
                T::zero(),
            );
            linalg::a_b(
                table,
                &p[lp.wx.clone()],
                &mut grads[embed],
                v,
                gh,
                e,
                T::zero(),
            );
            return;
        }
        let i = c.input_size(l);
        let dropout = !ws.masks.is_empty();
        let x: &[T] = match l {
            0 => &ws.emb[..rows * i],
            _ => layer_output(&below[l - 1].hs, &below[l - 1].out, dropout, b * h, rows, h),
        };
        // dWx = dXP^T X, dX = dXP Wx; with a pair each thread takes half of the rows of both
        let (gwx, wx, dx) = (
            &mut grads[lp.wx.clone()],
            &p[lp.wx.clone()],
            &mut ws.dx[..rows * i],
        );
        let rows_of = |r: Range<usize>, gwx: &mut [T], q: Range<usize>, dx: &mut [T]| {
            linalg::at_b_rows(dxp, x, gwx, gh, rows, i, r, T::zero());
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
        match parallel::halves(pair, gh).zip(parallel::halves(pair, rows)) {
            Some(((pair, mid), (_, half))) => {
                let ([w0, w1], [d0, d1]) = (
                    parallel::split_rows(gwx, i, mid),
                    parallel::split_rows(dx, i, half),
                );
                let jobs = [(0..mid, w0, 0..half, d0), (mid..gh, w1, half..rows, d1)];
                pair.each(jobs, |_, (r, gwx, q, dx)| rows_of(r, gwx, q, dx));
            }
            None => rows_of(0..gh, gwx, 0..rows, dx),
        }
        if l == 0 {
            // dEmbed[x_r] += dX[r]
            let e = c.embedding;
            let ge = &mut grads[ws.layout.embed.clone().expect("embedding")];
            ge.fill(T::zero());
            for (row, &x) in ws.dx[..rows * e].chunks_exact(e).zip(inputs) {
                let g = &mut ge[x as usize * e..(x as usize + 1) * e];
                g.iter_mut().zip(row).for_each(|(a, &d)| *a = *a + d);
            }
        } else {
            std::mem::swap(&mut ws.dcur, &mut ws.dx);
        }
    }

    /// Y = top Why^T + by for the rows of the last `forward`.
    fn logits(&self, rows: usize, ws: &mut Workspace<T>) {
        let (c, b) = (self.config, ws.batch);
        let lw = &ws.layers[c.layers - 1];
        let top = layer_output(
            &lw.hs,
            &lw.out,
            !ws.masks.is_empty(),
            b * c.hidden,
            rows,
            c.hidden,
        );
        let ys = &mut ws.ys[..rows * c.vocab];
        match ws
            .sampling
            .as_ref()
            .filter(|_| rows == 1)
            .and_then(|s| s.why_t.as_ref())
        {
            Some(why_t) => why_t.apply(top, ys),
            None => {
                let why = &self.params[ws.layout.why.clone()];
                linalg::a_bt(top, why, ys, rows, c.hidden, c.vocab, T::zero())
            }
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
        if ws.masks.is_empty() && head::by_step(&self.config, inputs.len() / ws.batch, ws.batch) {
            return self.forward_loss_by_step(inputs, targets, state, ws, scale);
        }
        self.forward(inputs, state, ws);
        let (c, rows) = (self.config, inputs.len());
        let (v, h) = (c.vocab, c.hidden);
        let lw = &ws.layers[c.layers - 1];
        let top = layer_output(&lw.hs, &lw.out, !ws.masks.is_empty(), ws.batch * h, rows, h);
        let (why, by) = (
            &self.params[ws.layout.why.clone()],
            &self.params[ws.layout.by.clone()],
        );
        let (ys, losses) = (&mut ws.ys[..rows * v], &mut ws.losses[..rows]);
        // Y = top Why^T + by, P = softmax(Y), loss_r = -ln P[r, target_r], dY = P - onehot
        let rows_of = |r: Range<usize>, ys: &mut [T], losses: &mut [f64]| {
            linalg::a_bt(
                &top[r.start * h..r.end * h],
                why,
                ys,
                r.len(),
                h,
                v,
                T::zero(),
            );
            linalg::add_row(ys, by);
            for ((row, &target), loss) in ys.chunks_exact_mut(v).zip(&targets[r]).zip(losses) {
                *loss = softmax_loss(row, target as usize, scale);
            }
        };
        match parallel::halves(ws.pair.as_deref(), rows) {
            Some((pair, mid)) => {
                let ([y0, y1], [l0, l1]) = (
                    parallel::split_rows(ys, v, mid),
                    parallel::split_rows(losses, 1, mid),
                );
                pair.each(
                    [(0..mid, y0, l0), (mid..rows, y1, l1)],
                    |_, (r, ys, losses)| rows_of(r, ys, losses),
                );
            }
            None => rows_of(0..rows, ys, losses),
        }
        losses.iter().sum()
    }

    /// Backward pass after `forward_loss` on the same `inputs`; overwrites `grads`.
    pub fn backward(&self, inputs: &[u32], grads: &mut [T], ws: &mut Workspace<T>) {
        if std::mem::take(&mut ws.head_done) {
            return self.backward_after_output_by_step(inputs, grads, ws);
        }
        let c = self.config;
        let (b, h, v, rows) = (ws.batch, c.hidden, c.vocab, inputs.len());
        let pair = ws.pair.clone();
        let pair = pair.as_deref();
        // output layer: dtop = dY Why, and (on the other thread when there is one,
        // the same amount of work) dWhy = dY^T top, dby = sum_rows dY
        let dy = &ws.ys[..rows * v];
        let lw = &ws.layers[c.layers - 1];
        let top = layer_output(&lw.hs, &lw.out, !ws.masks.is_empty(), b * h, rows, h);
        let [gwhy, gby] = grads
            .get_disjoint_mut([ws.layout.why.clone(), ws.layout.by.clone()])
            .expect("disjoint");
        let why = &self.params[ws.layout.why.clone()];
        let output = [
            OutputGrad::Dtop(&mut ws.dcur[..rows * h]),
            OutputGrad::Dwhy(gwhy, gby),
        ];
        parallel::each(pair, output, |_, out| match out {
            OutputGrad::Dtop(dtop) => linalg::a_b(dy, why, dtop, rows, v, h, T::zero()),
            OutputGrad::Dwhy(gwhy, gby) => head::dwhy_rows(0..v, (dy, top), (gwhy, gby)),
        });
        self.backward_layers(inputs, grads, ws, pair, None);
    }

    /// The backward pass from dtop (in `dcur`) down through the layers: every
    /// gradient but dWhy and dby, into `grads` (the buffer, or its part before Why).
    pub(crate) fn backward_layers(
        &self,
        inputs: &[u32],
        grads: &mut [T],
        ws: &mut Workspace<T>,
        pair: Option<&Pair>,
        top_hs: Option<&[T]>,
    ) {
        let steps = inputs.len() / ws.batch;
        for l in (0..self.config.layers).rev() {
            self.layer_backward(l, inputs, steps, grads, ws, pair, top_hs);
            self.input_gradients(l, inputs, grads, ws, pair);
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

/// The two halves of the output layer's backward pass, one per thread.
enum OutputGrad<'a, T> {
    /// (T*B, H): dtop = dY Why
    Dtop(&'a mut [T]),
    /// (V, H) and (V): dWhy, dby
    Dwhy(&'a mut [T], &'a mut [T]),
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
