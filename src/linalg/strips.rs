//! The strip layout: a matrix's columns in strips of [`TILE_COLS`] (16), each
//! strip's rows contiguous, read straight through by [`strip_vecmat`] (Y = X M for
//! a few rows), [`strip_vecmat_rows`] (x M over a run of M's rows) and
//! [`strip_matvec`] (M x through the same strips). Used by the recurrence when
//! its width is a multiple of 16: one stream's forward and backward through one
//! layout of Wh^T, its two-part and two-thread forms, several streams, and the
//! sampler's matrices over 512 KB.

use super::transpose::transpose_run;
use super::{Real, dispatch, madd};

/// Rows of X and columns of Y a [`strip_vecmat`] tile keeps in registers:
/// 4 x 16 f32 is 8 AVX vectors.
const TILE_ROWS: usize = 4;

pub const TILE_COLS: usize = 16;

/// Lays out a (k, n) matrix, given by `at(row, col)`, as n/W strips of W columns,
/// each strip k rows of W contiguous values, for [`strip_vecmat`] (W = 16). Row-major rows of 1 or 4 KB would put a strip's rows in a
/// handful of cache sets, where they evict each other; strips are read straight
/// through. n must be a multiple of W.
pub fn pack_strips<T: Real>(
    width: usize,
    k: usize,
    n: usize,
    at: impl Fn(usize, usize) -> T,
    out: &mut [T],
) {
    assert!(n.is_multiple_of(width) && out.len() == k * n);
    for (s, strip) in out.chunks_exact_mut(k * width).enumerate() {
        for (kk, row) in strip.chunks_exact_mut(width).enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = at(kk, s * width + c);
            }
        }
    }
}

/// [`pack_strips`] of a row-major (k, n) matrix `m` itself: a strip's rows are
/// 16-value pieces of m's rows, copied whole. `out` receives the strips from
/// `first` on, as many as it holds (all n/16 from 0 for the whole matrix).
pub fn pack_strips_of<T: Real>(m: &[T], k: usize, n: usize, first: usize, out: &mut [T]) {
    assert!(
        n.is_multiple_of(TILE_COLS) && m.len() == k * n && out.len().is_multiple_of(k * TILE_COLS)
    );
    assert!(
        first * TILE_COLS * k + out.len() <= k * n,
        "strips beyond the matrix"
    );
    for (s, strip) in out.chunks_exact_mut(k * TILE_COLS).enumerate() {
        let c0 = (first + s) * TILE_COLS;
        // whole arrays, which copy inline (a slice copy is a call)
        for (row, piece) in strip
            .as_chunks_mut::<TILE_COLS>()
            .0
            .iter_mut()
            .zip(m.chunks_exact(n))
        {
            *row = *<&[T; TILE_COLS]>::try_from(&piece[c0..c0 + TILE_COLS]).expect("a strip's row");
        }
    }
}

/// [`pack_strips`] of M = m^T for a row-major (n, k) matrix `m`: strip s
/// interleaves rows 16s..16s+16 of m, each read straight through (a gather
/// through M's columns would stride across all of m for every value).
pub fn pack_strips_of_transpose<T: Real>(m: &[T], n: usize, k: usize, out: &mut [T]) {
    assert!(n.is_multiple_of(TILE_COLS) && m.len() == k * n && out.len() == k * n);
    for (strip, rows) in out
        .chunks_exact_mut(k * TILE_COLS)
        .zip(m.chunks_exact(k * TILE_COLS))
    {
        transpose_run::<T, TILE_COLS>(rows, k, strip);
    }
}

/// acc += x R for the rows R of one strip (x.len() of them): even and odd rows
/// into separate sums, added at the end (one set of 16 lanes would wait on the
/// FMA latency at every row).
#[inline(always)]
fn strip_rows<T: Real, const FUSED: bool>(
    x: &[T],
    rows: &[[T; TILE_COLS]],
    acc: &mut [T; TILE_COLS],
) {
    let fma = madd::<T, FUSED>;
    let mut odd = [T::zero(); TILE_COLS];
    let (pairs, last) = x.as_chunks::<2>();
    for (a, b) in pairs.iter().zip(rows.as_chunks::<2>().0) {
        for c in 0..TILE_COLS {
            acc[c] = fma(a[0], b[0][c], acc[c]);
            odd[c] = fma(a[1], b[1][c], odd[c]);
        }
    }
    if let [a] = last {
        let b = &rows[x.len() - 1];
        for c in 0..TILE_COLS {
            acc[c] = fma(*a, b[c], acc[c]);
        }
    }
    for c in 0..TILE_COLS {
        acc[c] = acc[c] + odd[c];
    }
}

dispatch! {
    /// Y = X M (or Y += X M) for row-major X: (m, k), Y: (m, n) and M packed by
    /// [`pack_strips`]: the batched form of [`vecmat`], for the recurrence of a few
    /// streams. A 4 x 16 tile of Y stays in registers while the matching strip of M
    /// streams past, once per group of 4 rows; M is packed once per chunk, not at
    /// every step as a GEMM library would.
    pub fn strip_vecmat<T: Real>(x: &[T], packed: &[T], y: &mut [T], rows: usize, accumulate: bool) {
        let k = x.len() / rows;
        let n = y.len() / rows;
        debug_assert_eq!(packed.len(), k * n);
        for (s, strip) in packed.chunks_exact(k * TILE_COLS).enumerate() {
            let c0 = s * TILE_COLS;
            let mut r0 = 0;
            while r0 + TILE_ROWS <= rows {
                let xs: [&[T]; TILE_ROWS] = std::array::from_fn(|r| &x[(r0 + r) * k..(r0 + r + 1) * k]);
                let mut acc = [[T::zero(); TILE_COLS]; TILE_ROWS];
                if accumulate {
                    for (r, acc) in acc.iter_mut().enumerate() {
                        acc.copy_from_slice(&y[(r0 + r) * n + c0..(r0 + r) * n + c0 + TILE_COLS]);
                    }
                }
                for (i, b) in strip.as_chunks::<TILE_COLS>().0.iter().enumerate() {
                    for r in 0..TILE_ROWS {
                        let a = xs[r][i];
                        for c in 0..TILE_COLS {
                            acc[r][c] = fma!(a, b[c], acc[r][c]);
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    y[(r0 + r) * n + c0..(r0 + r) * n + c0 + TILE_COLS].copy_from_slice(acc);
                }
                r0 += TILE_ROWS;
            }
            for r in r0..rows {
                let mut acc = [T::zero(); TILE_COLS];
                if accumulate {
                    acc.copy_from_slice(&y[r * n + c0..r * n + c0 + TILE_COLS]);
                }
                strip_rows::<T, FUSED>(&x[r * k..(r + 1) * k], strip.as_chunks::<TILE_COLS>().0, &mut acc);
                y[r * n + c0..r * n + c0 + TILE_COLS].copy_from_slice(&acc);
            }
        }
    }
}

dispatch! {
    /// y = x M[k0.., :] for one stream: M (k, n) packed by [`pack_strips`], x the
    /// values for its rows k0..k0 + x.len(), y: (n). Each column's sum is the one
    /// [`strip_vecmat`] takes over those rows alone, so a product split into parts
    /// over rows, added in a fixed way, has the same bits on any thread.
    ///
    /// `descending` takes the strips from the last: a recurrence alternates the
    /// order from step to step, so that each step starts on the strips the last
    /// one read most recently, still in L2 when M is about L2's size (a cyclic
    /// walk over more than the cache evicts each line just before its reuse).
    /// The order changes no sum.
    pub fn strip_vecmat_rows<T: Real>(x: &[T], packed: &[T], k0: usize, y: &mut [T], descending: bool) {
        let n = y.len();
        let k = packed.len() / n;
        debug_assert!(k0 + x.len() <= k && packed.len() == k * n);
        let (ys, tail) = y.as_chunks_mut::<TILE_COLS>();
        debug_assert!(tail.is_empty(), "n is a multiple of the strip width");
        for s in 0..ys.len() {
            let s = if descending { ys.len() - 1 - s } else { s };
            let rows = &packed[s * k * TILE_COLS..(s + 1) * k * TILE_COLS];
            let rows = &rows.as_chunks::<TILE_COLS>().0[k0..k0 + x.len()];
            let y = &mut ys[s];
            *y = [T::zero(); TILE_COLS];
            strip_rows::<T, FUSED>(x, rows, y);
        }
    }
}

/// Rows of y that [`strip_matvec`] keeps partial sums for at once (8 KB in f64).
const MATVEC_ROWS: usize = 128;

dispatch! {
    /// y = (M x)[k0..k0 + y.len()] for M: (k, n) packed by [`pack_strips`],
    /// n = x.len(): the other product through the strips that [`strip_vecmat`]
    /// reads, so one layout of Wh^T serves the forward and the backward
    /// recurrence. Each strip is read straight through, 128 rows at a time, into
    /// 8 lanes of partial sums per row (they stay in L1); a row's lanes are added
    /// in a fixed tree at the end, so a row's value does not depend on `k0`.
    /// `descending` takes the blocks of 128 rows from the last, as in
    /// [`strip_vecmat_rows`].
    pub fn strip_matvec<T: Real>(packed: &[T], x: &[T], k0: usize, y: &mut [T], descending: bool) {
        let k = packed.len() / x.len();
        debug_assert!(packed.len() == k * x.len() && k0 + y.len() <= k);
        let rows = packed.as_chunks::<TILE_COLS>().0;
        let (xs, tail) = x.as_chunks::<TILE_COLS>();
        debug_assert!(tail.is_empty(), "n is a multiple of the strip width");
        let mut acc = [[T::zero(); 8]; MATVEC_ROWS];
        // blocks of rows in either order (no sum depends on it; see `descending`)
        let blocks = y.len().div_ceil(MATVEC_ROWS);
        for i in 0..blocks {
            let j = if descending { blocks - 1 - i } else { i };
            let ys = j * MATVEC_ROWS..((j + 1) * MATVEC_ROWS).min(y.len());
            let r0 = k0 + ys.start;
            let y = &mut y[ys];
            // the first strip's products start the sums (no zeroing per block)
            let mut strips = rows.chunks_exact(k).zip(xs);
            if let Some((strip, xc)) = strips.next() {
                for (a, m) in acc.iter_mut().zip(&strip[r0..r0 + y.len()]) {
                    for c in 0..8 {
                        a[c] = fma!(m[c + 8], xc[c + 8], m[c] * xc[c]);
                    }
                }
            }
            for (strip, xc) in strips {
                for (a, m) in acc.iter_mut().zip(&strip[r0..r0 + y.len()]) {
                    for c in 0..8 {
                        a[c] = fma!(m[c], xc[c], a[c]);
                    }
                    for c in 0..8 {
                        a[c] = fma!(m[c + 8], xc[c + 8], a[c]);
                    }
                }
            }
            for (y, a) in y.iter_mut().zip(&acc) {
                let q: [T; 4] = std::array::from_fn(|c| a[c] + a[c + 4]);
                *y = (q[0] + q[2]) + (q[1] + q[3]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_vecmat_agrees_with_ndarray() {
        for (m, k, n) in [
            (1, 3, 16),
            (4, 7, 16),
            (5, 9, 32),
            (16, 20, 64),
            (7, 300, 48),
        ] {
            let x =
                ndarray::Array2::from_shape_fn((m, k), |(i, j)| ((i * 5 + j * 3) % 7) as f64 - 3.0);
            let b = ndarray::Array2::from_shape_fn((k, n), |(i, j)| {
                ((i * 2 + j) % 9) as f64 * 0.5 - 2.0
            });
            let mut packed = vec![0.0; k * n];
            pack_strips(TILE_COLS, k, n, |i, j| b[[i, j]], &mut packed);
            let mut y = vec![f64::NAN; m * n];
            strip_vecmat(x.as_slice().unwrap(), &packed, &mut y, m, false);
            let want = x.dot(&b);
            assert_eq!(y, want.iter().copied().collect::<Vec<_>>(), "{m}x{k}x{n}");
            strip_vecmat(x.as_slice().unwrap(), &packed, &mut y, m, true);
            assert_eq!(
                y,
                (&want * 2.0).iter().copied().collect::<Vec<_>>(),
                "{m}x{k}x{n} accumulate"
            );
        }
    }

    #[test]
    fn strip_matvec_agrees_with_ndarray() {
        // k odd leaves one row after the pairs
        for (k, n) in [(1, 16), (2, 16), (7, 32), (33, 48), (300, 64)] {
            let m = ndarray::Array2::from_shape_fn((k, n), |(i, j)| {
                ((i * 2 + j) % 9) as f64 * 0.5 - 2.0
            });
            let x = ndarray::Array1::from_shape_fn(n, |j| ((j * 3) % 7) as f64 - 3.0);
            let mut packed = vec![0.0; k * n];
            pack_strips(TILE_COLS, k, n, |i, j| m[[i, j]], &mut packed);
            let mut y = vec![f64::NAN; k];
            strip_matvec(&packed, x.as_slice().unwrap(), 0, &mut y, false);
            assert_eq!(y, m.dot(&x).to_vec(), "{k}x{n}");
        }
    }

    /// The products over parts of a strip layout that a split recurrence takes
    /// (runs of rows of M x, sums over runs of M's rows) have the bits of the
    /// whole, for values that round, in either order of traversal.
    #[test]
    fn strip_products_in_parts_have_the_bits_of_the_whole() {
        for (k, n) in [(7, 32), (33, 48), (300, 64)] {
            let m: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut packed = vec![0.0; k * n];
            pack_strips(TILE_COLS, k, n, |i, j| m[i * n + j], &mut packed);
            let x: Vec<f64> = (0..n).map(|j| (j as f64 * 1.3).cos()).collect();
            let mut whole = vec![0.0; k];
            strip_matvec(&packed, &x, 0, &mut whole, false);
            // (0..300: two blocks of 128 rows and a short one)
            for rows in [0..k / 3, k / 3..k - k / 4, k - 1..k, 0..k] {
                for descending in [false, true] {
                    let mut part = vec![f64::NAN; rows.len()];
                    strip_matvec(&packed, &x, rows.start, &mut part, descending);
                    assert!(
                        part == whole[rows.clone()],
                        "{k}x{n} rows {rows:?} of M x, descending {descending}"
                    );
                }
            }
            // x M over all rows is strip_vecmat's; over parts, close to it
            let xk: Vec<f64> = (0..k).map(|i| (i as f64 * 0.71).sin()).collect();
            let (mut want, mut got, mut part) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            strip_vecmat(&xk, &packed, &mut want, 1, false);
            for descending in [false, true] {
                strip_vecmat_rows(&xk, &packed, 0, &mut got, descending);
                assert!(got == want, "{k}x{n}: all rows, descending {descending}");
            }
            let mid = k / 2;
            strip_vecmat_rows(&xk[..mid], &packed, 0, &mut got, true);
            strip_vecmat_rows(&xk[mid..], &packed, mid, &mut part, false);
            for ((a, b), w) in got.iter().zip(&part).zip(&want) {
                assert!((a + b - w).abs() < 1e-12, "{k}x{n}: {a} + {b} against {w}");
            }
        }
    }

    #[test]
    fn fast_packers_match_pack_strips() {
        // k = 150: two runs of 64 rows of the transpose, a shorter one and a tail
        for (k, n) in [(1, 16), (7, 32), (33, 48), (150, 32)] {
            let m: Vec<f64> = (0..k * n).map(|i| (i * 7 % 13) as f64 - 6.0).collect();
            let (mut want, mut got) = (vec![0.0; k * n], vec![f64::NAN; k * n]);
            pack_strips(TILE_COLS, k, n, |i, j| m[i * n + j], &mut want);
            pack_strips_of(&m, k, n, 0, &mut got);
            assert_eq!(got, want, "{k}x{n}");
            // from strip 1 on, into a buffer that holds only those
            let rest = k * TILE_COLS;
            let mut tail = vec![f64::NAN; k * n - rest];
            pack_strips_of(&m, k, n, 1, &mut tail);
            assert_eq!(tail, want[rest..], "{k}x{n} from strip 1");
            // m read as (n, k), packed as its transpose (k, n)
            pack_strips(TILE_COLS, k, n, |i, j| m[j * k + i], &mut want);
            pack_strips_of_transpose(&m, n, k, &mut got);
            assert_eq!(got, want, "{n}x{k} transposed");
        }
    }
}
