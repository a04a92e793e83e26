//! The input side of every layer, forward and backward side by side:
//!
//! ```text
//! forward    XP = X Wx^T + b           X: one-hot(x), embed[x], or the layer below's output
//! backward   dWx = dXP^T X,  dX = dXP Wx  (dEmbed[x_r] += dX[r] for the first layer)
//! ```
//! over all T*B rows at once, in two halves of the rows on the pair. One-hot input
//! reads columns of Wx (its dWx comes with dWh, see `network`); an embedding over a
//! vocabulary no larger than the chunk goes through the (V, GH) table embed Wx^T.

use std::ops::Range;

use super::workspace::{Workspace, layer_output};
use super::{Config, Model};
use crate::linalg::{self, Real};
use crate::parallel::{self, Pair};

/// Whether the first layer reads its embedding through the (V, GH) table.
fn uses_table(c: &Config, rows: usize) -> bool {
    c.embedding > 0 && c.vocab <= rows
}

impl<T: Real> Model<T> {
    /// XP = X Wx^T + b for layer `l` over all rows of the chunk.
    pub(crate) fn project_inputs(
        &self,
        l: usize,
        inputs: &[u32],
        ws: &mut Workspace<T>,
        pair: Option<&Pair>,
    ) {
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
    pub(crate) fn input_gradients(
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
}
