//! The output layer over all rows at once (GEMM), forward and backward side by side:
//!
//! ```text
//! Y = top Why^T + by,   P = softmax(Y),   loss = sum_rows -ln P[r, target_r]
//! dY = (P - onehot(targets)) * scale,   dtop = dY Why,   dWhy = dY^T top,   dby = sum_rows dY
//! ```
//! with the rows in two halves on the pair, and dtop beside dWhy. One stream without
//! dropout takes the step-by-step output layer instead (`head`).

use std::ops::Range;

use super::softmax::{dwhy_rows, softmax_loss};
use super::workspace::{Workspace, layer_output};
use super::{Model, State};
use crate::linalg::{self, Real};
use crate::parallel;

impl<T: Real> Model<T> {
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
        if ws.output_by_step(inputs.len()) {
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
        if ws.output_by_step(inputs.len()) {
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
            OutputGrad::Dwhy(gwhy, gby) => dwhy_rows(0..v, (dy, top), (gwhy, gby)),
        });
        self.backward_layers(inputs, grads, ws, pair, None);
    }
}

/// The two halves of the output layer's backward pass, one per thread.
enum OutputGrad<'a, T> {
    /// (T*B, H): dtop = dY Why
    Dtop(&'a mut [T]),
    /// (V, H) and (V): dWhy, dby
    Dwhy(&'a mut [T], &'a mut [T]),
}
