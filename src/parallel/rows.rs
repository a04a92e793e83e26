//! A phase over independent rows in two halves on the pair: where it splits
//! ([`halves`]), the two halves of a row-major buffer ([`split_rows`]), and
//! running a phase over them ([`by_rows`]). Used by every phase of a pass that
//! covers all rows at once (input projections, the output layer, the layouts of
//! Wh, the weight gradients).

use std::ops::Range;

use super::Pair;

/// Where a phase over `rows` independent rows splits between the pair: half the
/// rows each, when there is a pair and each half has at least 2 rows (so every
/// kernel takes the path it takes on all the rows and computes the same bits).
pub fn halves(pair: Option<&Pair>, rows: usize) -> Option<(&Pair, usize)> {
    pair.filter(|_| rows >= 4).map(|pair| (pair, rows / 2))
}

/// The first `mid` rows of a row-major buffer `width` values wide, and the rest.
pub fn split_rows<T>(buf: &mut [T], width: usize, mid: usize) -> [&mut [T]; 2] {
    let (a, b) = buf.split_at_mut(mid * width);
    [a, b]
}

/// Runs `f(rows, out)` over the row-major `out`, `width` values per row: in one
/// call, or in two halves of the rows at once on the pair (see [`halves`]).
pub fn by_rows<T: Send>(
    pair: Option<&Pair>,
    out: &mut [T],
    width: usize,
    f: impl Fn(Range<usize>, &mut [T]) + Sync,
) {
    let rows = out.len() / width;
    match halves(pair, rows) {
        Some((pair, mid)) => {
            let [a, b] = split_rows(out, width, mid);
            pair.each([(0..mid, a), (mid..rows, b)], |_, (r, out)| f(r, out));
        }
        None => f(0..rows, out),
    }
}
