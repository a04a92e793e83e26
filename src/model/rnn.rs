//! Vanilla tanh RNN cell, min-char-rnn's:
//!
//! ```text
//! h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)
//! ```
//! The network hands the cell `xp` = Wxh x_t + bh and `hp` = Whh h_{t-1}, one row
//! per stream; every slice here is (B, H), row-major.

use crate::linalg::{Real, dispatch};

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
