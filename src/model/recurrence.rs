//! The recurrent product of a layer, the one sequential part of a pass:
//!
//! ```text
//! forward    HP_t = h_{t-1} Wh^T                       (B, GH) per step
//! backward   dh_{t-1} (+)= dHP_t Wh                     (B, H) per step
//! ```
//! Each direction picks one plan per chunk and layer ([`Forward::choose`],
//! [`Backward::choose`]), lays Wh out for it once, then runs every step through
//! it. The plans, from the fewest steps and streams up:
//!
//! - as it is: GEMM (or a matrix-vector product) on row-major Wh, for chunks
//!   shorter than [`LAYOUT_FROM`] steps, and through the sampler's layout for
//!   one character at a time;
//! - blocks: one stream, when GH is not a multiple of 16 (`linalg::blocks`);
//! - strips: when GH is a multiple of 16 (`linalg::strips`), for B streams;
//!   a one-stream tanh RNN sums each product in two parts over Wh^T's rows (the
//!   parts a split takes, so one thread gets the split's bits) and goes back
//!   through the same strips of Wh^T;
//! - split: one stream of a tanh RNN with the pair, each thread computing half of
//!   the units at every step (`model::split`, in strips or blocks).

use super::Cell;
use super::sampling::Packed;
use super::split;
use super::workspace::{LAYOUT_FROM, RecurrenceWork};
use crate::linalg::{self, Real};
use crate::parallel::{self, Pair};

/// How a chunk's forward recurrence computes h_{t-1} Wh^T.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Forward {
    /// Row-major Wh (short chunks), or the sampler's layout of it (one character)
    AsIs,
    /// Wh^T in blocks, one stream
    Blocks,
    /// Wh^T in strips, B streams
    Strips,
    /// Wh^T in strips, one stream of a tanh RNN: summed over Wh^T's rows
    /// ..mid and mid.. apart, then added, as [`Forward::SplitStrips`] sums it
    StripsInTwoParts { mid: usize },
    /// The pair, each thread the units on its side of `mid`, Wh^T in strips
    SplitStrips { mid: usize },
    /// The pair, each thread the columns on its side of `mid`, Wh^T in blocks
    SplitBlocks { mid: usize },
}

/// How a chunk's backward recurrence computes dHP_t Wh.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Backward {
    /// Row-major Wh: a vector-matrix product for one stream, else GEMM
    AsIs,
    /// Wh in blocks, one stream
    Blocks,
    /// Wh in strips, B streams
    Strips,
    /// One stream of a tanh RNN: back through the forward's strips of Wh^T
    ThroughForwardStrips,
    /// The pair, each thread the units on its side of `mid`, through the forward's strips
    SplitStrips { mid: usize },
    /// The pair, each thread the columns on its side of `mid`, Wh in blocks
    SplitBlocks { mid: usize },
}

/// Whether `n` columns divide into strips.
fn strips(n: usize) -> bool {
    n.is_multiple_of(linalg::TILE_COLS)
}

/// Where a split recurrence divides `n` output columns between the pair: half
/// of the 16-column strips, or the whole 32-column blocks nearest half (each
/// thread's blocks are then a block layout of their own); None when there is
/// not enough for two.
fn split_column(n: usize, strips: bool) -> Option<usize> {
    let mid = if strips {
        n / 2 / linalg::TILE_COLS * linalg::TILE_COLS
    } else {
        (n / 2 + linalg::BLOCK / 2) / linalg::BLOCK * linalg::BLOCK
    };
    (mid > 0 && mid < n && (strips || mid <= n / linalg::BLOCK * linalg::BLOCK)).then_some(mid)
}

impl Forward {
    /// The plan for `steps` steps of `batch` streams of a layer with `gh`
    /// pre-activations; `split` when the workspace splits the recurrence on a pair.
    pub(crate) fn choose(
        cell: Cell,
        gh: usize,
        steps: usize,
        batch: usize,
        split: bool,
    ) -> Forward {
        let strips = strips(gh);
        if steps < LAYOUT_FROM || !(batch == 1 || strips) {
            return Forward::AsIs;
        }
        let tanh_one_stream = cell == Cell::Rnn && batch == 1;
        match split_column(gh, strips).filter(|_| split && tanh_one_stream) {
            Some(mid) if strips => Forward::SplitStrips { mid },
            Some(mid) => Forward::SplitBlocks { mid },
            None if !strips => Forward::Blocks,
            None => match split_column(gh, true).filter(|_| tanh_one_stream) {
                Some(mid) => Forward::StripsInTwoParts { mid },
                None => Forward::Strips,
            },
        }
    }

    /// Whether the plan runs its steps on both threads (`model::split`).
    pub(crate) fn is_split(self) -> bool {
        matches!(
            self,
            Forward::SplitStrips { .. } | Forward::SplitBlocks { .. }
        )
    }

    /// Lays layer `l`'s Wh (GH, H) out as the plan reads it, into `rw.wh_t` (H, GH).
    pub(crate) fn lay_out<T: Real>(
        self,
        pair: Option<&Pair>,
        wh: &[T],
        hidden: usize,
        l: usize,
        rw: &mut RecurrenceWork<T>,
    ) {
        rw.wh_t_layer = None;
        match self {
            Forward::AsIs => {}
            Forward::Strips | Forward::StripsInTwoParts { .. } | Forward::SplitStrips { .. } => {
                pack_wh_t_strips(pair, wh, hidden, &mut rw.wh_t[..wh.len()]);
                rw.wh_t_layer = Some(l);
            }
            Forward::Blocks | Forward::SplitBlocks { .. } => {
                // each thread of a split recurrence lays out the part it reads
                let (mid, pair) = match self {
                    Forward::SplitBlocks { mid } => (mid, pair),
                    _ => (wh.len() / hidden, None),
                };
                let [w0, w1] = parallel::split_rows(&mut rw.wh_t[..wh.len()], hidden, mid);
                let (p0, p1) = wh.split_at(mid * hidden);
                parallel::each(pair, [(p0, w0), (p1, w1)], |_, (wh, out)| {
                    linalg::pack_blocks_of_transpose(wh, wh.len() / hidden, hidden, out)
                });
            }
        }
    }

    /// HP = h_{t-1} Wh^T for step t into `rw.hp` (all plans but the split ones);
    /// `sampled` is the sampler's layout of Wh^T when there is one.
    pub(crate) fn step<T: Real>(
        self,
        t: usize,
        h_prev: &[T],
        (wh, sampled): (&[T], Option<&Packed<T>>),
        rw: &mut RecurrenceWork<T>,
        (batch, hidden): (usize, usize),
    ) {
        let (hp, wh_t) = (&mut rw.hp[..], &rw.wh_t[..]);
        let gh = hp.len() / batch;
        match self {
            Forward::AsIs => match sampled {
                Some(wh_t) => wh_t.apply(h_prev, hp),
                None => linalg::a_bt(h_prev, wh, hp, batch, hidden, gh, T::zero()),
            },
            Forward::Blocks => linalg::block_vecmat(h_prev, wh_t, hp, false),
            Forward::Strips => linalg::strip_vecmat(h_prev, wh_t, hp, batch, false),
            Forward::StripsInTwoParts { mid } => {
                // odd steps walk the strips backwards (see strip_vecmat_rows)
                let part = &mut rw.partial_sums[..gh];
                if t % 2 == 1 {
                    linalg::strip_vecmat_rows(&h_prev[mid..], wh_t, mid, part, true);
                    linalg::strip_vecmat_rows(&h_prev[..mid], wh_t, 0, hp, true);
                } else {
                    linalg::strip_vecmat_rows(&h_prev[..mid], wh_t, 0, hp, false);
                    linalg::strip_vecmat_rows(&h_prev[mid..], wh_t, mid, part, false);
                }
                hp.iter_mut().zip(&*part).for_each(|(a, &b)| *a = *a + b);
            }
            Forward::SplitStrips { .. } | Forward::SplitBlocks { .. } => {
                unreachable!("a split recurrence runs its own steps")
            }
        }
    }

    /// All `steps` steps of a split plan on the pair: h_t into rows 1.. of `hs`
    /// from `xp` (a tanh RNN, so GH = H).
    pub(crate) fn run_split<T: Real>(
        self,
        pair: &Pair,
        steps: usize,
        xp: &[T],
        hs: &mut [T],
        rw: &mut RecurrenceWork<T>,
    ) {
        match self {
            Forward::SplitStrips { mid } => split::forward_strips(
                pair,
                mid,
                steps,
                xp,
                &rw.wh_t,
                hs,
                &mut rw.hp,
                &mut rw.partial_sums,
            ),
            Forward::SplitBlocks { mid } => {
                split::forward_blocks(pair, mid, steps, xp, &rw.wh_t, hs, &mut rw.hp)
            }
            _ => unreachable!("not a split plan"),
        }
    }
}

impl Backward {
    /// The plan for going back through `steps` steps of `batch` streams of a
    /// layer with `hidden` units; `split` as for [`Forward::choose`].
    pub(crate) fn choose(
        cell: Cell,
        hidden: usize,
        steps: usize,
        batch: usize,
        split: bool,
    ) -> Backward {
        let laid_out = steps >= LAYOUT_FROM;
        let strips = strips(hidden) && laid_out;
        let blocks = !strips && batch == 1 && laid_out;
        let tanh_one_stream = cell == Cell::Rnn && batch == 1;
        match split_column(hidden, strips)
            .filter(|_| split && tanh_one_stream && (strips || blocks))
        {
            Some(mid) if strips => Backward::SplitStrips { mid },
            Some(mid) => Backward::SplitBlocks { mid },
            None if strips && tanh_one_stream => Backward::ThroughForwardStrips,
            None if strips => Backward::Strips,
            None if blocks => Backward::Blocks,
            None => Backward::AsIs,
        }
    }

    /// Whether the plan runs its steps on both threads (`model::split`).
    pub(crate) fn is_split(self) -> bool {
        matches!(
            self,
            Backward::SplitStrips { .. } | Backward::SplitBlocks { .. }
        )
    }

    /// Lays layer `l`'s Wh (GH, H) out as the plan reads it: the forward's strips
    /// of Wh^T into `rw.wh_t` (unless the forward pass left them there), or Wh
    /// into `rw.wh_p`.
    pub(crate) fn lay_out<T: Real>(
        self,
        pair: Option<&Pair>,
        wh: &[T],
        hidden: usize,
        l: usize,
        rw: &mut RecurrenceWork<T>,
    ) {
        let gh = wh.len() / hidden;
        match self {
            Backward::AsIs => {}
            Backward::ThroughForwardStrips | Backward::SplitStrips { .. } => {
                if rw.wh_t_layer != Some(l) {
                    pack_wh_t_strips(pair, wh, hidden, &mut rw.wh_t[..wh.len()]);
                    rw.wh_t_layer = Some(l);
                }
            }
            // strip s is columns 16s.. of Wh; each thread lays out the strips it reads
            Backward::Strips => parallel::by_rows(
                pair,
                &mut rw.wh_p[..wh.len()],
                linalg::TILE_COLS * gh,
                |strips, out| linalg::pack_strips_of(wh, gh, hidden, strips.start, out),
            ),
            Backward::Blocks | Backward::SplitBlocks { .. } => {
                // each thread of a split recurrence lays out the columns it reads
                let (mid, pair) = match self {
                    Backward::SplitBlocks { mid } => (mid, pair),
                    _ => (hidden, None),
                };
                let [w0, w1] = parallel::split_rows(&mut rw.wh_p[..wh.len()], gh, mid);
                parallel::each(pair, [(0..mid, w0), (mid..hidden, w1)], |_, (cols, out)| {
                    linalg::pack_blocks_of(wh, gh, hidden, cols, out)
                });
            }
        }
    }

    /// rw.dh_next (+)= dHP_t Wh for step t > 0 (all plans but the split ones);
    /// on entry rw.dh_next holds the part that does not flow through Wh.
    pub(crate) fn step<T: Real>(
        self,
        t: usize,
        dhp: &[T],
        wh: &[T],
        rw: &mut RecurrenceWork<T>,
        (batch, gh): (usize, usize),
    ) {
        let dh_prev = &mut rw.dh_next[..];
        let hidden = dh_prev.len() / batch;
        match self {
            Backward::ThroughForwardStrips => {
                back_through_strips(&rw.wh_t, dhp, &mut rw.partial_sums, dh_prev, t % 2 == 1)
            }
            Backward::Strips => linalg::strip_vecmat(dhp, &rw.wh_p, dh_prev, batch, true),
            Backward::Blocks => linalg::block_vecmat(dhp, &rw.wh_p, dh_prev, true),
            Backward::AsIs if batch == 1 => linalg::vecmat(dhp, wh, dh_prev, true),
            Backward::AsIs => linalg::a_b(dhp, wh, dh_prev, batch, gh, hidden, T::one()),
            Backward::SplitStrips { .. } | Backward::SplitBlocks { .. } => {
                unreachable!("a split recurrence runs its own steps")
            }
        }
    }

    /// All `steps` steps of a split plan on the pair: dXP_t into `dxp` from the
    /// gradient reaching each h_t from above (`dcur`) and the states `hs`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_split<T: Real>(
        self,
        pair: &Pair,
        steps: usize,
        (dcur, hs): (&[T], &[T]),
        dxp: &mut [T],
        rw: &mut RecurrenceWork<T>,
    ) {
        let RecurrenceWork {
            wh_t,
            wh_p,
            partial_sums,
            dh,
            dh_next,
            ..
        } = rw;
        match self {
            Backward::SplitStrips { mid } => {
                split::backward_strips(pair, mid, steps, dcur, hs, wh_t, dxp, dh, partial_sums)
            }
            Backward::SplitBlocks { mid } => {
                split::backward_blocks(pair, mid, steps, dcur, hs, wh_p, dxp, dh, dh_next)
            }
            _ => unreachable!("not a split plan"),
        }
    }
}

/// Lays out Wh^T (H, GH) in strips of 16 of its columns, strip s from rows 16s..
/// of Wh (GH, H): on a pair, each thread the strips it later reads.
fn pack_wh_t_strips<T: Real>(pair: Option<&Pair>, wh: &[T], hidden: usize, wh_t: &mut [T]) {
    let w = linalg::TILE_COLS;
    parallel::by_rows(pair, &mut wh_t[..wh.len()], w * hidden, |strips, out| {
        let rows = strips.start * w..strips.end * w;
        linalg::pack_strips_of_transpose(
            &wh[rows.start * hidden..rows.end * hidden],
            rows.len(),
            hidden,
            out,
        )
    })
}

/// dh_{t-1} = dXP_t Wh for one stream of a tanh RNN, from Wh^T in strips
/// (`wh_t`, as the forward pass laid it out): the partial sums over the two halves
/// of Wh's rows that a split recurrence takes on two threads, added the same way,
/// so one thread computes the same bits. `parts` holds the partial sums.
/// `descending` walks Wh's rows from the last (see `linalg::strip_matvec`).
fn back_through_strips<T: Real>(
    wh_t: &[T],
    dxp_t: &[T],
    parts: &mut [T],
    dh_prev: &mut [T],
    descending: bool,
) {
    let h = dh_prev.len();
    match split_column(h, true) {
        Some(mid) => {
            let (p0, p1) = parts[..2 * h].split_at_mut(h);
            let first = |p0: &mut [T]| {
                linalg::strip_matvec(&wh_t[..mid * h], &dxp_t[..mid], 0, p0, descending)
            };
            let second = |p1: &mut [T]| {
                linalg::strip_matvec(&wh_t[mid * h..], &dxp_t[mid..], 0, p1, descending)
            };
            if descending {
                second(p1);
                first(p0);
            } else {
                first(p0);
                second(p1);
            }
            for ((n, &p0), &p1) in dh_prev.iter_mut().zip(&*p0).zip(&*p1) {
                *n = p0 + p1;
            }
        }
        None => linalg::strip_matvec(wh_t, dxp_t, 0, dh_prev, descending),
    }
}
