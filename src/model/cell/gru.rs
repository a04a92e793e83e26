//! GRU cell (PyTorch's and cuDNN's form; gates in the order r, z, n):
//!
//! ```text
//! r = sigmoid(Wx_r x_t + b_r + Wh_r h_{t-1})
//! z = sigmoid(Wx_z x_t + b_z + Wh_z h_{t-1})
//! n = tanh(Wx_n x_t + b_n + r * (Wh_n h_{t-1} + bhn))
//! h_t = (1 - z) * n + z * h_{t-1}
//! ```
//! The network hands the cell `xp` = Wx x_t + b and `hp` = Wh h_{t-1}; the cell
//! adds bhn to hp's n part. Slices hold one row per stream: xp, hp, dxp, dhp
//! (B, 3H); h, dh (B, H); cache (B, 4H).

use super::{Backward, CellKind, Forward};
use crate::model::Init;
use crate::linalg::{Real, dispatch, sigmoid};

pub struct Gru;

impl CellKind for Gru {
    const NAME: &'static str = "gru";
    const TITLE: &'static str = "GRU";
    const GATE_ORDER: &'static str = "PyTorch nn.GRU: reset, update, new; bhn is b_hn";
    const JS: &'static str = "
        const h = new Float64Array(H);
        for (let j = 0; j < H; j++) {
          const r = sigmoid(px[j] + ph[j]), z = sigmoid(px[H + j] + ph[H + j]);
          const n = Math.tanh(px[2 * H + j] + r * (ph[2 * H + j] + extra[j]));
          h[j] = (1 - z) * n + z * hPrev[j];
        }
        return h;";
    const GATES: usize = 3;
    /// r, z, n, Wh_n h_{t-1} + bhn
    const CACHE: usize = 4;
    const OWN_HIDDEN_GRADIENT: bool = true;
    const EXTRA_BIAS: Option<&'static str> = Some("bhn");

    /// PyTorch's U(-1/sqrt(H), 1/sqrt(H)) for weights and biases.
    fn init(hidden: usize) -> (Init, Init) {
        let bound = Init::Uniform(1.0 / (hidden as f64).sqrt());
        (bound, bound)
    }

    fn forward<T: Real>(hidden: usize, s: Forward<'_, T>) {
        forward(hidden, s.xp, s.hp, s.extra, s.h_prev, s.h, s.cache);
    }

    fn backward<T: Real>(hidden: usize, s: Backward<'_, T>) {
        backward(hidden, s.dh, s.h_prev, s.cache, s.dxp, s.dhp, s.dh_prev);
    }

    /// dbhn = the sum over rows of dhp's n part (bhn sits inside r * (.)).
    fn extra_bias_gradient<T: Real>(hidden: usize, dhp: &[T], grad: &mut [T]) {
        grad.fill(T::zero());
        for row in dhp.chunks_exact(3 * hidden) {
            grad.iter_mut()
                .zip(&row[2 * hidden..])
                .for_each(|(a, &d)| *a = *a + d);
        }
    }
}

const CACHE: usize = Gru::CACHE;

dispatch! {
    pub fn forward<T: Real>(
        hidden: usize,
        xp: &[T],
        hp: &[T],
        bhn: &[T],
        h_prev: &[T],
        h: &mut [T],
        cache: &mut [T],
    ) {
        let rows = (xp.chunks_exact(3 * hidden).zip(hp.chunks_exact(3 * hidden)))
            .zip(h_prev.chunks_exact(hidden).zip(h.chunks_exact_mut(hidden)))
            .zip(cache.chunks_exact_mut(CACHE * hidden));
        for (((xp, hp), (h_prev, h)), cache) in rows {
            let (r, rest) = cache.split_at_mut(hidden);
            let (z, rest) = rest.split_at_mut(hidden);
            let (n, hpn) = rest.split_at_mut(hidden);
            for j in 0..hidden {
                r[j] = sigmoid(xp[j] + hp[j]);
                z[j] = sigmoid(xp[hidden + j] + hp[hidden + j]);
                hpn[j] = hp[2 * hidden + j] + bhn[j];
                n[j] = (xp[2 * hidden + j] + r[j] * hpn[j]).tanh_act();
                h[j] = (T::one() - z[j]) * n[j] + z[j] * h_prev[j];
            }
        }
    }
}

dispatch! {
    /// `dh` is the gradient reaching h_t. Writes the gradients at the input-side
    /// pre-activations (`dxp`) and at the hidden-side ones (`dhp`, which differ in the
    /// n part because r scales it), and sets `dh_prev` to the part of dL/dh_{t-1} that
    /// does not flow through Wh (z * dh).
    pub fn backward<T: Real>(
        hidden: usize,
        dh: &[T],
        h_prev: &[T],
        cache: &[T],
        dxp: &mut [T],
        dhp: &mut [T],
        dh_prev: &mut [T],
    ) {
        let one = T::one();
        let rows = (dh.chunks_exact(hidden).zip(h_prev.chunks_exact(hidden)))
            .zip(cache.chunks_exact(CACHE * hidden))
            .zip(dxp.chunks_exact_mut(3 * hidden).zip(dhp.chunks_exact_mut(3 * hidden)))
            .zip(dh_prev.chunks_exact_mut(hidden));
        for ((((dh, h_prev), cache), (dxp, dhp)), dh_prev) in rows {
            let (r, rest) = cache.split_at(hidden);
            let (z, rest) = rest.split_at(hidden);
            let (n, hpn) = rest.split_at(hidden);
            for j in 0..hidden {
                // h = (1 - z) * n + z * h_prev
                let dn = dh[j] * (one - z[j]);
                let dz = dh[j] * (h_prev[j] - n[j]);
                dh_prev[j] = dh[j] * z[j];
                // n = tanh(xp_n + r * hpn)
                let dn_pre = dn * (one - n[j] * n[j]);
                let dr = dn_pre * hpn[j];
                let dr_pre = dr * r[j] * (one - r[j]);
                let dz_pre = dz * z[j] * (one - z[j]);
                dxp[j] = dr_pre;
                dxp[hidden + j] = dz_pre;
                dxp[2 * hidden + j] = dn_pre;
                dhp[j] = dr_pre;
                dhp[hidden + j] = dz_pre;
                dhp[2 * hidden + j] = dn_pre * r[j];
            }
        }
    }
}
