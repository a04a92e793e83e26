//! LSTM cell (gates in PyTorch's order i, f, g, o):
//!
//! ```text
//! [i f g o] = Wx x_t + b + Wh h_{t-1}          pre-activations, 4H
//! i, f, o = sigmoid(.)    g = tanh(.)
//! c_t = f * c_{t-1} + i * g
//! h_t = o * tanh(c_t)
//! ```
//! The network hands the cell `xp` = Wx x_t + b and `hp` = Wh h_{t-1}. Slices hold
//! one row per stream: xp, hp, dpre (B, 4H); h, c, dh, dc (B, H); cache (B, 5H).

use super::{Backward, CellKind, Forward};
use crate::model::Init;
use crate::linalg::{Real, dispatch, sigmoid};

pub struct Lstm;

impl CellKind for Lstm {
    const NAME: &'static str = "lstm";
    const TITLE: &'static str = "LSTM";
    const GATE_ORDER: &'static str = "PyTorch nn.LSTM: input, forget, cell, output";
    const JS: &'static str = "
        const h = new Float64Array(H);
        for (let j = 0; j < H; j++) {
          const i = sigmoid(px[j] + ph[j]), f = sigmoid(px[H + j] + ph[H + j]);
          const g = Math.tanh(px[2 * H + j] + ph[2 * H + j]), o = sigmoid(px[3 * H + j] + ph[3 * H + j]);
          c[j] = f * c[j] + i * g;
          h[j] = o * Math.tanh(c[j]);
        }
        return h;";
    const GATES: usize = 4;
    /// i, f, g, o, tanh(c_t)
    const CACHE: usize = 5;
    const CELL_STATE: bool = true;

    /// PyTorch's U(-1/sqrt(H), 1/sqrt(H)) for weights and biases.
    fn init(hidden: usize) -> (Init, Init) {
        let bound = Init::Uniform(1.0 / (hidden as f64).sqrt());
        (bound, bound)
    }

    fn forward<T: Real>(hidden: usize, s: Forward<'_, T>) {
        forward(hidden, s.xp, s.hp, s.c_prev, s.h, s.c, s.cache);
    }

    fn backward<T: Real>(hidden: usize, s: Backward<'_, T>) {
        backward(hidden, s.dh, s.dc, s.c_prev, s.cache, s.dxp);
        s.dh_prev.fill(T::zero());
    }
}

const CACHE: usize = Lstm::CACHE;

dispatch! {
    pub fn forward<T: Real>(hidden: usize, xp: &[T], hp: &[T], c_prev: &[T], h: &mut [T], c: &mut [T], cache: &mut [T]) {
        let rows = (xp.chunks_exact(4 * hidden).zip(hp.chunks_exact(4 * hidden)))
            .zip(c_prev.chunks_exact(hidden).zip(cache.chunks_exact_mut(CACHE * hidden)))
            .zip(h.chunks_exact_mut(hidden).zip(c.chunks_exact_mut(hidden)));
        for (((xp, hp), (c_prev, cache)), (h, c)) in rows {
            let (gates, tc) = cache.split_at_mut(4 * hidden);
            // one loop per activation (i and f, then g, then o) so each vectorises
            let (if_, rest) = gates.split_at_mut(2 * hidden);
            let (g, o) = rest.split_at_mut(hidden);
            let sum = |k: usize| xp[k] + hp[k];
            if_.iter_mut().enumerate().for_each(|(k, a)| *a = sigmoid(sum(k)));
            g.iter_mut().enumerate().for_each(|(k, a)| *a = sum(2 * hidden + k).tanh_act());
            o.iter_mut().enumerate().for_each(|(k, a)| *a = sigmoid(sum(3 * hidden + k)));
            let (i, rest) = gates.split_at(hidden);
            let (f, rest) = rest.split_at(hidden);
            let (g, o) = rest.split_at(hidden);
            for j in 0..hidden {
                c[j] = f[j] * c_prev[j] + i[j] * g[j];
                tc[j] = c[j].tanh_act();
                h[j] = o[j] * tc[j];
            }
        }
    }
}

dispatch! {
    /// `dh` is the gradient reaching h_t; `dc` holds the gradient reaching c_t from
    /// step t+1 on entry and the gradient reaching c_{t-1} on return. `dpre` receives
    /// the gradient at the four pre-activations (so dxp = dhp = dpre).
    pub fn backward<T: Real>(hidden: usize, dh: &[T], dc: &mut [T], c_prev: &[T], cache: &[T], dpre: &mut [T]) {
        let one = T::one();
        let rows = (dh.chunks_exact(hidden).zip(dc.chunks_exact_mut(hidden)))
            .zip(c_prev.chunks_exact(hidden).zip(cache.chunks_exact(CACHE * hidden)))
            .zip(dpre.chunks_exact_mut(4 * hidden));
        for (((dh, dc), (c_prev, cache)), dpre) in rows {
            let (i, rest) = cache.split_at(hidden);
            let (f, rest) = rest.split_at(hidden);
            let (g, rest) = rest.split_at(hidden);
            let (o, tc) = rest.split_at(hidden);
            let (di, rest) = dpre.split_at_mut(hidden);
            let (df, rest) = rest.split_at_mut(hidden);
            let (dg, d_o) = rest.split_at_mut(hidden);
            for j in 0..hidden {
                // h = o * tanh(c):  do = dh * tanh(c),  dc += dh * o * (1 - tanh(c)^2)
                let dct = dc[j] + dh[j] * o[j] * (one - tc[j] * tc[j]);
                d_o[j] = dh[j] * tc[j] * o[j] * (one - o[j]);
                // c = f * c_prev + i * g
                di[j] = dct * g[j] * i[j] * (one - i[j]);
                df[j] = dct * c_prev[j] * f[j] * (one - f[j]);
                dg[j] = dct * i[j] * (one - g[j] * g[j]);
                dc[j] = dct * f[j];
            }
        }
    }
}
