//! Products of a vector with a row-major matrix as it is: dot products
//! ([`matvec`], y = W x) and register-blocked [`vecmat`] (y = x M). Used where a
//! matrix is not laid out (short chunks, the sampler's widest matrices, the
//! backward recurrence of one stream without a layout), and as the reference the
//! block layout's kernels match bit for bit.

use super::{Real, dispatch, madd};

/// Lanes of independent accumulators: float addition is not associative, so the
/// compiler only vectorises a reduction that is written with separate partial sums.
const LANES: usize = 8;

/// sum_i a[i] * b[i], with the same summation order on every CPU path
#[inline(always)]
fn dot_body<T: Real, const FUSED: bool>(a: &[T], b: &[T]) -> T {
    debug_assert_eq!(a.len(), b.len());
    let fma = madd::<T, FUSED>;
    let (ca, ra) = a.as_chunks::<LANES>();
    let (cb, rb) = b.as_chunks::<LANES>();
    let mut acc = [T::zero(); LANES];
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..LANES {
            acc[k] = fma(x[k], y[k], acc[k]);
        }
    }
    let mut tail = T::zero();
    for (&x, &y) in ra.iter().zip(rb) {
        tail = fma(x, y, tail);
    }
    let half = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (half[0] + half[2]) + (half[1] + half[3]) + tail
}

dispatch! {
    /// y = W x for row-major W: (rows, cols), x: (cols), y: (rows).
    pub fn matvec<T: Real>(w: &[T], x: &[T], y: &mut [T]) {
        let cols = x.len();
        debug_assert_eq!(w.len(), cols * y.len());
        for (yi, row) in y.iter_mut().zip(w.chunks_exact(cols)) {
            *yi = dot_body::<T, FUSED>(row, x);
        }
    }
}

/// Output columns a [`vecmat`] block keeps in registers (8 AVX vectors of f64).
pub const BLOCK: usize = 32;

/// sum_j x[j] M[j, c] for one column of a narrow tail, `col` holding M[0, c] with
/// rows `stride` apart: the rows split over four independent accumulators (so the
/// additions do not wait on each other), added as (a0 + a1) + (a2 + a3), then the
/// last x.len() mod 4 rows in order ([`rest_rows`]). The tails of [`vecmat`] and
/// [`block_vecmat`] both sum this way, which keeps their bits the same.
#[inline(always)]
pub(super) fn column_body<T: Real, const FUSED: bool>(x: &[T], col: &[T], stride: usize) -> T {
    let fma = madd::<T, FUSED>;
    let mut acc = [T::zero(); 4];
    let quads = x.as_chunks::<4>().0;
    for (q, xs) in quads.iter().enumerate() {
        for r in 0..4 {
            acc[r] = fma(xs[r], col[(4 * q + r) * stride], acc[r]);
        }
    }
    rest_rows::<T, FUSED>(x, col, stride, (acc[0] + acc[1]) + (acc[2] + acc[3]))
}

/// `sum` + the last rows of [`column_body`]: the x.len() mod 4 values of x after
/// its groups of four, against the same rows of the column.
#[inline(always)]
pub(super) fn rest_rows<T: Real, const FUSED: bool>(
    x: &[T],
    col: &[T],
    stride: usize,
    mut sum: T,
) -> T {
    let first = x.len() / 4 * 4;
    for (j, &xj) in x.iter().enumerate().skip(first) {
        sum = madd::<T, FUSED>(xj, col[j * stride], sum);
    }
    sum
}

dispatch! {
    /// y = x M, or y += x M with `accumulate`, for row-major M: (rows, cols),
    /// x: (rows), y: (cols). Each block of 32 outputs stays in registers while
    /// every row of M streams past, so there is no reduction and no store per row.
    pub fn vecmat<T: Real>(x: &[T], m: &[T], y: &mut [T], accumulate: bool) {
        let cols = y.len();
        debug_assert_eq!(m.len(), cols * x.len());
        let mut c0 = 0;
        while c0 + BLOCK <= cols {
            let mut acc = [T::zero(); BLOCK];
            if accumulate {
                acc.copy_from_slice(&y[c0..c0 + BLOCK]);
            }
            for (&xj, row) in x.iter().zip(m.chunks_exact(cols)) {
                let row: &[T; BLOCK] = row[c0..c0 + BLOCK].try_into().expect("BLOCK columns");
                for k in 0..BLOCK {
                    acc[k] = fma!(xj, row[k], acc[k]);
                }
            }
            y[c0..c0 + BLOCK].copy_from_slice(&acc);
            c0 += BLOCK;
        }
        // narrow tail (fewer than 32 columns): one column at a time
        for c in c0..cols {
            let sum = column_body::<T, FUSED>(x, &m[c..], cols);
            y[c] = if accumulate { y[c] + sum } else { sum };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::*;

    #[test]
    fn dot_matches_naive_sum_for_lengths_around_the_lane_width() {
        for n in [0, 1, 7, 8, 9, 17, 100] {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(
                (dot_body::<f64, false>(&a, &b) - naive).abs() < 1e-12,
                "n={n}"
            );
        }
    }

    #[test]
    fn vecmat_blocks_and_tails_agree_with_ndarray_on_both_paths() {
        for (rows, cols) in [(3, 5), (7, 32), (100, 100), (9, 65), (4, 70)] {
            let m = ndarray::Array2::from_shape_fn((rows, cols), |(i, j)| {
                ((i * 7 + j * 3) % 11) as f64 - 5.0
            });
            let x: Vec<f64> = (0..rows).map(|i| i as f64 * 0.25 - 1.0).collect();
            let want = ndarray::arr1(&x).dot(&m);
            let mut y = vec![1.0; cols];
            vecmat(&x, m.as_slice().unwrap(), &mut y, true);
            assert_eq!(y, (&want + 1.0).to_vec(), "{rows}x{cols} accumulate");
            vecmat(&x, m.as_slice().unwrap(), &mut y, false);
            assert_eq!(y, want.to_vec(), "{rows}x{cols}");
            let mut t = vec![0.0; rows * cols];
            transpose(m.as_slice().unwrap(), rows, cols, &mut t);
            assert_eq!(t, m.t().iter().copied().collect::<Vec<_>>());
        }
    }

    #[test]
    fn matvec_and_transpose_agree_with_ndarray() {
        let w = ndarray::Array2::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f64 - 4.0);
        let x = [1.0, -2.0, 0.5];
        let mut y = [0.0; 5];
        matvec(w.as_slice().unwrap(), &x, &mut y);
        assert_eq!(y.to_vec(), w.dot(&ndarray::arr1(&x)).to_vec());
        let u = [1.0, 0.0, -1.0, 2.0, 3.0];
        let mut z = [9.0; 3];
        vecmat(&u, w.as_slice().unwrap(), &mut z, false);
        assert_eq!(z.to_vec(), w.t().dot(&ndarray::arr1(&u)).to_vec());
    }
}
