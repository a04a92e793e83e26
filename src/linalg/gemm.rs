//! GEMM (matrixmultiply, through ndarray) over row-major slices, in the four
//! shapes the passes need, and row-wise helpers: every phase that covers all
//! T*B rows at once (input projections, the output layer, weight gradients).

use std::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Real, matvec, vecmat};

/// c = alpha * a b + beta * c (matrixmultiply's GEMM; any strides, so `a.t()` is free).
pub fn gemm<T: Real>(
    alpha: T,
    a: &ArrayView2<T>,
    b: &ArrayView2<T>,
    beta: T,
    c: &mut ArrayViewMut2<T>,
) {
    general_mat_mul(alpha, a, b, beta, c);
}

fn view<T>(s: &[T], rows: usize, cols: usize) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((rows, cols), s).expect("slice holds rows * cols values")
}

fn view_mut<T>(s: &mut [T], rows: usize, cols: usize) -> ArrayViewMut2<'_, T> {
    ArrayViewMut2::from_shape((rows, cols), s).expect("slice holds rows * cols values")
}

/// C = A B^T + beta C, all row-major: A (m, k), B (n, k), C (m, n).
/// One row (m = 1) is a matrix-vector product.
pub fn a_bt<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize, beta: T) {
    if m == 1 && beta == T::zero() {
        matvec(b, a, c);
    } else {
        gemm(
            T::one(),
            &view(a, m, k),
            &view(b, n, k).t(),
            beta,
            &mut view_mut(c, m, n),
        );
    }
}

/// C = A B + beta C, all row-major: A (m, k), B (k, n), C (m, n).
pub fn a_b<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize, beta: T) {
    if m == 1 && (beta == T::zero() || beta == T::one()) {
        if beta == T::zero() {
            c.fill(T::zero());
        }
        vecmat(a, b, c, true);
    } else {
        gemm(
            T::one(),
            &view(a, m, k),
            &view(b, k, n),
            beta,
            &mut view_mut(c, m, n),
        );
    }
}

/// C = A^T B + beta C, all row-major: A (k, m), B (k, n), C (m, n).
pub fn at_b<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize, beta: T) {
    at_b_rows(a, b, c, m, k, n, 0..m, beta);
}

/// Rows `rows` of C = A^T B + beta C, with `c` holding only those rows: the
/// product of A's columns `rows` (a strided view, nothing copied) with B. Each
/// row comes out exactly as from [`at_b`] over all of C.
#[allow(clippy::too_many_arguments)]
pub fn at_b_rows<T: Real>(
    a: &[T],
    b: &[T],
    c: &mut [T],
    m: usize,
    k: usize,
    n: usize,
    rows: Range<usize>,
    beta: T,
) {
    let at = view(a, k, m);
    let at = at.slice(ndarray::s![.., rows.clone()]);
    gemm(
        T::one(),
        &at.t(),
        &view(b, k, n),
        beta,
        &mut view_mut(c, rows.len(), n),
    );
}

/// Adds `row` to every row of the row-major matrix `m`.
pub fn add_row<T: Real>(m: &mut [T], row: &[T]) {
    for r in m.chunks_exact_mut(row.len()) {
        for (x, &b) in r.iter_mut().zip(row) {
            *x = *x + b;
        }
    }
}

/// acc += the sum of the rows of the row-major matrix `m`.
pub fn sum_rows_acc<T: Real>(m: &[T], acc: &mut [T]) {
    for r in m.chunks_exact(acc.len()) {
        for (a, &x) in acc.iter_mut().zip(r) {
            *a = *a + x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_helpers_agree_with_ndarray_dot() {
        let a = ndarray::Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64 * 0.5 - 2.0);
        let b = ndarray::Array2::from_shape_fn((5, 4), |(i, j)| ((i + 2 * j) % 7) as f64 - 3.0);
        let mut c = vec![1.0; 15];
        a_bt(
            a.as_slice().unwrap(),
            b.as_slice().unwrap(),
            &mut c,
            3,
            4,
            5,
            1.0,
        );
        let want = a.dot(&b.t()) + 1.0;
        assert_eq!(c, want.iter().copied().collect::<Vec<_>>());
        let bt = b.t().as_standard_layout().into_owned(); // (4, 5)
        let mut c = vec![0.0; 15];
        a_b(
            a.as_slice().unwrap(),
            bt.as_slice().unwrap(),
            &mut c,
            3,
            4,
            5,
            0.0,
        );
        assert_eq!(c, a.dot(&bt).iter().copied().collect::<Vec<_>>());
        let mut c = vec![0.0; 20]; // A^T B with A (3, 4)... as (k=3, m=4), B (3, n=5)
        let b3 = ndarray::Array2::from_shape_fn((3, 5), |(i, j)| (i * j) as f64 + 1.0);
        at_b(
            a.as_slice().unwrap(),
            b3.as_slice().unwrap(),
            &mut c,
            4,
            3,
            5,
            0.0,
        );
        assert_eq!(c, a.t().dot(&b3).iter().copied().collect::<Vec<_>>());
        // one-row forms take the matrix-vector path
        let mut r = vec![0.0; 5];
        a_bt(
            &a.as_slice().unwrap()[..4],
            b.as_slice().unwrap(),
            &mut r,
            1,
            4,
            5,
            0.0,
        );
        assert_eq!(r, a.row(0).dot(&b.t()).to_vec());
        let mut r = vec![2.0; 5];
        a_b(
            &a.as_slice().unwrap()[..4],
            bt.as_slice().unwrap(),
            &mut r,
            1,
            4,
            5,
            1.0,
        );
        assert_eq!(r, (a.row(0).dot(&bt) + 2.0).to_vec());
    }
}
