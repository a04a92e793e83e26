//! The softmax output layer's per-row pieces that both of its forms (all rows
//! at once in `output`, step by step in `head`) share:
//!
//! ```text
//! p = softmax(y),   loss = -ln p[target],   dy = (p - onehot(target)) * scale
//! dWhy = dY^T top,   dby = sum_rows dY
//! ```

use std::ops::Range;

use crate::linalg::{self, Real};

/// Rows `r` of dWhy = dY^T top and entries `r` of dby = sum_rows dY, for dY
/// (rows, V) and top (rows, H): `gwhy` and `gby` hold just those rows.
pub(crate) fn dwhy_rows<T: Real>(
    r: Range<usize>,
    (dy, top): (&[T], &[T]),
    (gwhy, gby): (&mut [T], &mut [T]),
) {
    let h = gwhy.len() / r.len();
    let rows = top.len() / h;
    let v = dy.len() / rows;
    linalg::at_b_rows(dy, top, gwhy, v, rows, h, r.clone(), T::zero());
    gby.fill(T::zero());
    for row in dy.chunks_exact(v) {
        gby.iter_mut()
            .zip(&row[r.clone()])
            .for_each(|(a, &d)| *a = *a + d);
    }
}

/// Softmax of one row of logits in place, then dy = (p - onehot(target)) * scale
/// there; returns -ln p[target].
pub(crate) fn softmax_loss<T: Real>(row: &mut [T], target: usize, scale: T) -> f64 {
    let logit = row[target].as_f64();
    let loss = linalg::softmax_in_place(row) - logit;
    row[target] = row[target] - T::one();
    if scale != T::one() {
        row.iter_mut().for_each(|y| *y = *y * scale);
    }
    loss
}
