//! Transposes: [`transpose`] value by value, and the 4 x 4-tile transpose the
//! block and strip packers share (`transpose_run`).

use super::Real;

/// `out` (k, W) = `rows`^T for W rows of k values, in 4 x 4 tiles: each read as
/// four runs of the rows and written as four runs of `out` (the compiler turns
/// the tile into shuffles; value by value, every store went to another cache
/// line; docs/performance.md has the measurements).
pub(super) fn transpose_run<T: Real, const W: usize>(rows: &[T], k: usize, out: &mut [T]) {
    debug_assert!(rows.len() == W * k && out.len() == W * k);
    let quads = k / 4 * 4;
    // in runs of 64 rows of `out` (8 KB at W = 16), which stay in L1 while the
    // groups of four rows fill them
    for jb in (0..quads).step_by(64) {
        for i0 in (0..W).step_by(4) {
            let r: [&[T]; 4] = std::array::from_fn(|q| &rows[(i0 + q) * k..(i0 + q + 1) * k]);
            for j0 in (jb..(jb + 64).min(quads)).step_by(4) {
                let tile: [[T; 4]; 4] =
                    std::array::from_fn(|q| r[q][j0..j0 + 4].try_into().expect("4 values"));
                let columns: [[T; 4]; 4] =
                    std::array::from_fn(|jj| std::array::from_fn(|q| tile[q][jj]));
                for (jj, column) in columns.iter().enumerate() {
                    let at = (j0 + jj) * W + i0;
                    out[at..at + 4].copy_from_slice(column);
                }
            }
        }
    }
    for j in quads..k {
        for i in 0..W {
            out[j * W + i] = rows[i * k + j];
        }
    }
}

/// dst = src^T for row-major src: (rows, cols), dst: (cols, rows).
pub fn transpose<T: Real>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    debug_assert_eq!(src.len(), rows * cols);
    for (i, row) in src.chunks_exact(cols).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            dst[j * rows + i] = v;
        }
    }
}
