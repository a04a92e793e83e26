//! Vanilla tanh RNN cell, min-char-rnn's:
//!
//! ```text
//! h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)
//! ```
//! The network hands the cell `xp` = Wxh x_t + bh and `hp` = Whh h_{t-1}, one row
//! per stream; every slice here is (B, H), row-major. The two-thread recurrence
//! (`model::split`) runs these loops on each thread's share of the units.

use super::{Backward, CellKind, Forward};
use crate::model::Init;
use crate::linalg::{Real, dispatch};

pub struct Rnn;

impl CellKind for Rnn {
    const NAME: &'static str = "rnn";
    const TITLE: &'static str = "vanilla RNN (tanh)";
    const GATE_ORDER: &'static str = "h = tanh(Wxh x + Whh h + bh)";
    const JS: &'static str = "
        const h = new Float64Array(H);
        for (let j = 0; j < H; j++) h[j] = Math.tanh(px[j] + ph[j]);
        return h;";
    const GATES: usize = 1;
    const CACHE: usize = 0;
    const NAMES: [&'static str; 3] = ["Wxh", "Whh", "bh"];

    /// min-char-rnn's N(0, 0.01^2) weights and zero biases.
    fn init(_hidden: usize) -> (Init, Init) {
        (Init::Normal(0.01), Init::Zero)
    }

    fn forward<T: Real>(_hidden: usize, s: Forward<'_, T>) {
        forward(s.xp, s.hp, s.h);
    }

    fn backward<T: Real>(_hidden: usize, s: Backward<'_, T>) {
        backward(s.dh, s.h, s.dxp);
        s.dh_prev.fill(T::zero());
    }
}

dispatch! {
    /// h_t = tanh(xp + hp)
    pub fn forward<T: Real>(xp: &[T], hp: &[T], h: &mut [T]) {
        for ((h, &x), &r) in h.iter_mut().zip(xp).zip(hp) {
            *h = (x + r).tanh_act();
        }
    }
}

dispatch! {
    /// dpre = (1 - h_t^2) * dh, the gradient at the tanh input (so dxp = dhp = dpre).
    pub fn backward<T: Real>(dh: &[T], h: &[T], dpre: &mut [T]) {
        for ((d, &g), &h) in dpre.iter_mut().zip(dh).zip(h) {
            *d = (T::one() - h * h) * g;
        }
    }
}
