//! The stacked network over a chunk of T steps for B streams: the layer loop,
//! and one layer's recurrence forward beside its backward.
//!
//! ```text
//! layer input   X_0 = one-hot(x) | embed[x],   X_l = dropout(h^{l-1})
//! projection    XP_l = X_l Wx_l^T + b_l            all T*B rows at once (`input`)
//! recurrence    HP_t = h_{t-1} Wh_l^T              per step (`recurrence`)
//!               h_t, c_t = cell(XP_l[t], HP_t, h_{t-1}, c_{t-1})     (`cell`)
//! output        Y = dropout(h^{L-1}) Why^T + by,   loss = sum_rows -ln softmax(Y)[target]
//! ```
//! Rows are time-major: row t*B + b is step t of stream b. Only the recurrence is
//! sequential; every weight gradient is one GEMM over all T*B rows. With a pair,
//! each phase over rows runs in two halves at once (`parallel::by_rows`).

use std::ops::Range;

use super::cell::{Backward, Forward};
use super::head::States;
use super::recurrence;
use super::workspace::Workspace;
use super::{Model, State};
use crate::linalg::{self, Real};
use crate::parallel::{self, Pair};

impl<T: Real> Model<T> {
    /// Runs the layers over `inputs` (T*B ids, time-major; T may be shorter than
    /// the workspace's capacity), carrying `state` in and out.
    pub fn forward(&self, inputs: &[u32], state: &mut State<T>, ws: &mut Workspace<T>) {
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

    /// The backward pass from dtop (in `dcur`) down through the layers: every
    /// gradient but dWhy and dby, into `grads` (the buffer, or its part before Why).
    /// `top_hs` holds the top layer's states when they are out of the workspace.
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
            let hs = top_hs.filter(|_| l + 1 == self.config.layers);
            self.layer_backward(l, inputs, steps, grads, ws, pair, hs);
            self.input_gradients(l, inputs, grads, ws, pair);
        }
    }

    /// Layer `l`'s Wh and the cell's extra bias (empty if it has none).
    fn recurrent_weights(&self, l: usize, ws: &Workspace<T>) -> (&[T], &[T]) {
        let lp = &ws.layout.layers[l];
        let extra = lp
            .extra
            .as_ref()
            .map_or(&[][..], |r| &self.params[r.clone()]);
        (&self.params[lp.wh.clone()], extra)
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
        let (gh, step, cached) = (c.cell.gates() * h, b * h, b * c.cell.cache() * h);
        let (wh, extra) = self.recurrent_weights(l, ws);
        let one_char = ws.sampling.as_ref().filter(|_| steps * b == 1);
        let sampled = one_char.and_then(|s| s.wh_t[l].as_ref());
        let split = ws.split && pair.is_some() && sampled.is_none();
        let plan = recurrence::Forward::choose(c.cell, gh, steps, b, split);
        let (lw, rw) = (&mut ws.layers[l], &mut ws.recurrence);
        plan.lay_out(pair, wh, h, l, rw);
        let mut states = top.unwrap_or(States::Own(&mut lw.hs));
        states.first_mut(step).copy_from_slice(&state.h[l]);
        if c.cell.has_cell_state() {
            lw.cs[..step].copy_from_slice(&state.c[l]);
        }
        match pair.filter(|_| plan.is_split()) {
            Some(pair) => plan.run_split(pair, steps, &lw.xp, states.own(), rw),
            None => {
                for t in 0..steps {
                    let (h_prev, h_t) = states.step(t, step);
                    // HP = h_{t-1} Wh^T
                    plan.step(t, h_prev, (wh, sampled), rw, (b, h));
                    let (c_prev, c_t) = match c.cell.has_cell_state() {
                        true => {
                            let (done, next) = lw.cs.split_at_mut((t + 1) * step);
                            (&done[t * step..], &mut next[..step])
                        }
                        false => (&[][..], &mut [][..]),
                    };
                    let xp = &lw.xp[t * b * gh..(t + 1) * b * gh];
                    let cache = &mut lw.cache[t * cached..(t + 1) * cached];
                    let hp = &rw.hp;
                    let cell = Forward {
                        xp,
                        hp,
                        h_prev,
                        c_prev,
                        extra,
                        h: h_t,
                        c: c_t,
                        cache,
                    };
                    c.cell.forward(h, cell);
                    states.publish(t + 1);
                }
            }
        }
        state.h[l].copy_from_slice(states.row(steps, step));
        if c.cell.has_cell_state() {
            state.c[l].copy_from_slice(&lw.cs[steps * step..(steps + 1) * step]);
        }
        if let Some(mask) = ws.masks.get(l) {
            let hs = states.rows(1, steps, step);
            for ((o, &h), &m) in lw.out.iter_mut().zip(hs).zip(mask) {
                *o = h * m;
            }
        }
    }

    /// Back through layer `l`'s recurrence: from dcur (the gradient reaching its
    /// outputs) to dXP (and dHP) at every step, then dWh, db (with a one-hot
    /// input, dWx) and the extra bias's gradient. `top_hs`: the layer's states
    /// when they are out of the workspace.
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
        let (gh, step, cached, rows) =
            (c.cell.gates() * h, b * h, b * c.cell.cache() * h, steps * b);
        let own_dhp = c.cell.own_hidden_gradient();
        let (wh, _) = self.recurrent_weights(l, ws);
        let dcur = &mut ws.dcur[..rows * h];
        if let Some(mask) = ws.masks.get(l) {
            dcur.iter_mut().zip(mask).for_each(|(d, &m)| *d = *d * m);
        }
        let plan = recurrence::Backward::choose(c.cell, h, steps, b, ws.split && pair.is_some());
        let (lw, rw) = (&mut ws.layers[l], &mut ws.recurrence);
        plan.lay_out(pair, wh, h, l, rw);
        let hs = top_hs.unwrap_or(&lw.hs);
        rw.dh_next.fill(T::zero());
        rw.dc.fill(T::zero());
        match pair.filter(|_| plan.is_split()) {
            Some(pair) => plan.run_split(pair, steps, (dcur, hs), &mut lw.dxp, rw),
            None => {
                for t in (0..steps).rev() {
                    // dh = dL/dh_t from above (this step's output) and from step t+1
                    let above = &dcur[t * step..(t + 1) * step];
                    for ((d, &a), &n) in rw.dh.iter_mut().zip(above).zip(&rw.dh_next) {
                        *d = a + n;
                    }
                    let r = t * b * gh..(t + 1) * b * gh;
                    let (dxp, dhp) = match own_dhp {
                        true => (&mut lw.dxp[r.clone()], &mut lw.dhp[r.clone()]),
                        false => (&mut lw.dxp[r.clone()], &mut [][..]),
                    };
                    let c_prev = if c.cell.has_cell_state() {
                        &lw.cs[t * step..(t + 1) * step]
                    } else {
                        &[][..]
                    };
                    let (h_t, h_prev) = (
                        &hs[(t + 1) * step..(t + 2) * step],
                        &hs[t * step..(t + 1) * step],
                    );
                    let cache = &lw.cache[t * cached..(t + 1) * cached];
                    let (dh, dc, dh_prev) = (&rw.dh[..], &mut rw.dc[..], &mut rw.dh_next[..]);
                    let cell = Backward {
                        dh,
                        dc,
                        h: h_t,
                        h_prev,
                        c_prev,
                        cache,
                        dxp,
                        dhp,
                        dh_prev,
                    };
                    c.cell.backward(h, cell);
                    // dh_{t-1} (+)= dHP_t Wh; not needed before the chunk (truncated BPTT)
                    if t > 0 {
                        let dhp_t = if own_dhp { &lw.dhp[r] } else { &lw.dxp[r] };
                        plan.step(t, dhp_t, wh, rw, (b, gh));
                    }
                }
            }
        }
        let (dxp, lp) = (&lw.dxp[..rows * gh], &ws.layout.layers[l]);
        let dhp = if own_dhp { &lw.dhp[..rows * gh] } else { dxp };
        let weights = grads
            .get_disjoint_mut([lp.wh.clone(), lp.b.clone(), lp.wx.clone()])
            .expect("disjoint");
        let one_hot = (l == 0 && c.embedding == 0).then_some((inputs, c.vocab));
        recurrent_gradients(pair, (dhp, dxp, &hs[..rows * h]), one_hot, weights);
        if let Some(extra) = lp.extra.clone() {
            c.cell.extra_bias_gradient(h, dhp, &mut grads[extra]);
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

/// dWh = dHP^T H_prev, db = sum_rows dXP, and for a one-hot input (`one_hot`:
/// the inputs and V) dWx[:, x_r] += dXP[r]. With a pair each thread takes rows
/// r of dWh and of dWx and entries r of db (r: pre-activations).
fn recurrent_gradients<T: Real>(
    pair: Option<&Pair>,
    (dhp, dxp, h_prev): (&[T], &[T], &[T]),
    one_hot: Option<(&[u32], usize)>,
    [gwh, gb, gwx]: [&mut [T]; 3],
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

/// The gradient scale of an objective averaged over `streams` streams (1 exactly
/// for one stream, so the default model computes min-char-rnn's numbers).
pub fn stream_scale<T: Real>(streams: usize) -> T {
    if streams == 1 {
        T::one()
    } else {
        T::c(1.0 / streams as f64)
    }
}
