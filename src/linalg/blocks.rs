//! The block layout: a matrix's columns in runs of [`BLOCK`] (32), each run's
//! rows contiguous, with [`block_vecmat`] and [`block_matmat`] over it (the bits
//! of [`vecmat`](super::vecmat) on the row-major matrix). Used by one stream's
//! recurrence when H is not a multiple of 16 (forward and backward, also split
//! between two threads), the sampler's matrices up to 512 KB, and the output
//! layer step by step.

use std::ops::Range;

use super::transpose::transpose_run;
use super::vecmat::{BLOCK, column_body, rest_rows};
use super::{Real, dispatch};

/// Lays out columns `cols` of a row-major (k, n) matrix `m` in blocks for
/// [`block_vecmat`] (all of them for the whole matrix): each run of [`BLOCK`]
/// columns becomes k rows of 32 contiguous values, and the last n mod 32 columns
/// k rows of that many. When `cols` starts on a block boundary this is the same
/// as that part of the whole matrix's layout.
pub fn pack_blocks_of<T: Real>(m: &[T], k: usize, n: usize, cols: Range<usize>, out: &mut [T]) {
    let w = cols.len();
    assert!(m.len() == k * n && cols.end <= n && out.len() == k * w);
    let full = w / BLOCK * BLOCK;
    let (blocks, tail) = out.split_at_mut(full * k);
    for (b, block) in blocks.chunks_exact_mut(k * BLOCK).enumerate() {
        let c0 = cols.start + b * BLOCK;
        // whole arrays, which copy inline (a slice copy of 32 values is a call)
        for (dst, row) in block
            .as_chunks_mut::<BLOCK>()
            .0
            .iter_mut()
            .zip(m.chunks_exact(n))
        {
            *dst = *<&[T; BLOCK]>::try_from(&row[c0..c0 + BLOCK]).expect("a block");
        }
    }
    if w > full {
        for (dst, row) in tail.chunks_exact_mut(w - full).zip(m.chunks_exact(n)) {
            dst.copy_from_slice(&row[cols.start + full..cols.end]);
        }
    }
}

/// Lays out M = m^T for a row-major (n, k) matrix `m` in blocks for
/// [`block_vecmat`], reading m straight through.
pub fn pack_blocks_of_transpose<T: Real>(m: &[T], n: usize, k: usize, out: &mut [T]) {
    assert!(m.len() == k * n && out.len() == k * n);
    let full = n / BLOCK * BLOCK;
    let (blocks, tail) = out.split_at_mut(full * k);
    // a block is rows 32b.. of m transposed
    for (block, rows) in blocks
        .chunks_exact_mut(k * BLOCK)
        .zip(m.chunks_exact(k * BLOCK))
    {
        transpose_run::<T, BLOCK>(rows, k, block);
    }
    let w = n - full;
    for (c, row) in m.chunks_exact(k).enumerate().skip(full) {
        for (j, &v) in row.iter().enumerate() {
            tail[j * w + c - full] = v;
        }
    }
}

dispatch! {
    /// [`vecmat`] over M laid out by [`pack_blocks_of`]: y = x M, or y += x M with
    /// `accumulate`, with the same bits. Each block of M is read straight through,
    /// where the row-major M would be read in 256-byte pieces 8 * cols bytes apart;
    /// the narrow tail is read 4 columns at a time instead of one.
    pub fn block_vecmat<T: Real>(x: &[T], packed: &[T], y: &mut [T], accumulate: bool) {
        let (k, n) = (x.len(), y.len());
        debug_assert_eq!(packed.len(), k * n);
        let full = n / BLOCK * BLOCK;
        let (blocks, tail) = packed.split_at(full * k);
        for (block, out) in blocks.chunks_exact(k * BLOCK).zip(y.chunks_exact_mut(BLOCK)) {
            let mut acc = [T::zero(); BLOCK];
            if accumulate {
                acc.copy_from_slice(out);
            }
            for (&xj, row) in x.iter().zip(block.as_chunks::<BLOCK>().0) {
                for c in 0..BLOCK {
                    acc[c] = fma!(xj, row[c], acc[c]);
                }
            }
            out.copy_from_slice(&acc);
        }
        // the tail summed as vecmat sums it (see column_body), four columns at once
        // and then the last n mod 4 one at a time
        let w = n - full;
        let quads = x.as_chunks::<4>().0;
        let finish = |y: &mut [T], c: usize, sum: T| {
            let yc = &mut y[full + c];
            *yc = if accumulate { *yc + sum } else { sum };
        };
        let mut c = 0;
        while c + 4 <= w {
            let mut acc = [[T::zero(); 4]; 4];
            for (q, xs) in quads.iter().enumerate() {
                for r in 0..4 {
                    let at = (4 * q + r) * w + c;
                    let row: &[T; 4] = tail[at..at + 4].try_into().expect("4 columns");
                    for i in 0..4 {
                        acc[r][i] = fma!(xs[r], row[i], acc[r][i]);
                    }
                }
            }
            let sums: [T; 4] = std::array::from_fn(|i| (acc[0][i] + acc[1][i]) + (acc[2][i] + acc[3][i]));
            for (i, sum) in sums.into_iter().enumerate() {
                let sum = rest_rows::<T, FUSED>(x, &tail[c + i..], w, sum);
                finish(y, c + i, sum);
            }
            c += 4;
        }
        for c in c..w {
            finish(y, c, column_body::<T, FUSED>(x, &tail[c..], w));
        }
    }
}

/// Rows of X a [`block_matmat`] tile multiplies at once, and the columns of a
/// block it keeps for each: 2 x 16 f64 is 8 of AVX2's 16 registers, which leaves
/// room for the 4 vectors of M they share (3 rows spill).
const MAT_ROWS: usize = 2;

const MAT_COLS: usize = BLOCK / 2;

// the tile's loop below names its two rows
const _: () = assert!(MAT_ROWS == 2);

dispatch! {
    /// Y = X M for M laid out by [`pack_blocks_of`], X (rows, k), Y (rows, n): each
    /// row with the bits [`block_vecmat`] gives it (every output sums its k products
    /// in the same order), but a load of M feeds [`MAT_ROWS`] rows.
    pub fn block_matmat<T: Real>(xs: &[T], packed: &[T], ys: &mut [T], n: usize) {
        let k = packed.len() / n;
        debug_assert!(packed.len() == k * n && xs.len() / k == ys.len() / n);
        let full = n / BLOCK * BLOCK;
        let (blocks, tail) = packed.split_at(full * k);
        let (x_groups, x_rest) = xs.split_at(xs.len() / (MAT_ROWS * k) * MAT_ROWS * k);
        let (y_groups, y_rest) = ys.split_at_mut(x_groups.len() / k * n);
        for (b, block) in blocks.chunks_exact(k * BLOCK).enumerate() {
            for half in 0..BLOCK / MAT_COLS {
                let cols = b * BLOCK + half * MAT_COLS;
                for (x, y) in x_groups.chunks_exact(MAT_ROWS * k).zip(y_groups.chunks_exact_mut(MAT_ROWS * n)) {
                    let (x0, x1) = x.split_at(k);
                    let mut acc = [[T::zero(); MAT_COLS]; MAT_ROWS];
                    for ((row, &x0), &x1) in block.as_chunks::<BLOCK>().0.iter().zip(x0).zip(x1) {
                        let row: &[T; MAT_COLS] = row[half * MAT_COLS..][..MAT_COLS].try_into().expect("half a block");
                        for c in 0..MAT_COLS {
                            acc[0][c] = fma!(x0, row[c], acc[0][c]);
                            acc[1][c] = fma!(x1, row[c], acc[1][c]);
                        }
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        y[r * n + cols..][..MAT_COLS].copy_from_slice(acc);
                    }
                }
            }
        }
        // the rows left over, and every row's tail: block_vecmat itself (the tail
        // of a block layout is a block layout of its own)
        for (x, y) in x_rest.chunks_exact(k).zip(y_rest.chunks_exact_mut(n)) {
            block_vecmat(x, packed, y, false);
        }
        if full < n {
            for (x, y) in x_groups.chunks_exact(k).zip(y_groups.chunks_exact_mut(n)) {
                block_vecmat(x, tail, &mut y[full..], false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::*;

    #[test]
    fn block_vecmat_has_the_bits_of_vecmat() {
        // irrational-looking values, so a change of summation order changes bits
        let val = |i: usize| ((i as f64 * 0.618_034).fract() - 0.5) * 1.7;
        for (k, n) in [
            (1, 5),
            (3, 4),
            (7, 32),
            (100, 100),
            (9, 65),
            (13, 70),
            (6, 39),
            (101, 3),
        ] {
            let m: Vec<f64> = (0..k * n).map(val).collect();
            let x: Vec<f64> = (0..k).map(|i| val(i + 7919)).collect();
            let mut packed = vec![f64::NAN; k * n];
            pack_blocks_of(&m, k, n, 0..n, &mut packed);
            // the columns from block 1 on are that part of the whole layout
            if n > BLOCK {
                let mut part = vec![f64::NAN; k * (n - BLOCK)];
                pack_blocks_of(&m, k, n, BLOCK..n, &mut part);
                assert_eq!(part, packed[k * BLOCK..], "{k}x{n} from block 1");
            }
            let (mut want, mut got) = (vec![0.25; n], vec![0.25; n]);
            vecmat(&x, &m, &mut want, true);
            block_vecmat(&x, &packed, &mut got, true);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{k}x{n} accumulate"
            );
            vecmat(&x, &m, &mut want, false);
            block_vecmat(&x, &packed, &mut got, false);
            assert_eq!(got, want, "{k}x{n}");
            // rows at once: 1 to 7 rows cover whole tiles and a leftover row
            for rows in 1..=7 {
                let xs: Vec<f64> = (0..rows * k).map(|i| val(i + 104_729)).collect();
                let mut want = vec![f64::NAN; rows * n];
                for (x, y) in xs.chunks_exact(k).zip(want.chunks_exact_mut(n)) {
                    block_vecmat(x, &packed, y, false);
                }
                let mut got = vec![f64::NAN; rows * n];
                block_matmat(&xs, &packed, &mut got, n);
                let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{rows} rows of {k}x{n}");
            }
            // the same layout from m^T (n, k)
            let mut mt = vec![0.0; k * n];
            transpose(&m, k, n, &mut mt);
            let mut from_t = vec![f64::NAN; k * n];
            pack_blocks_of_transpose(&mt, n, k, &mut from_t);
            assert_eq!(from_t, packed, "{k}x{n} from the transpose");
        }
    }
}
