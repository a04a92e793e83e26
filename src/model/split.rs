//! The recurrence of one stream of a tanh RNN split between the pair's two
//! threads at every step, for two cores where half of a large Wh fits each
//! core's L2 (`recurrence::Forward::SplitStrips` and the three plans like it).
//! Thread i (0 this one, 1 the helper) owns the hidden units on its side of
//! `mid`, and every value is computed as one thread computes it, so the results
//! are bit-identical to one thread's:
//!
//! - in strips, each thread reads its own strips of Wh^T (its units' rows of Wh)
//!   and waits only for the other thread's published part ([`StepCounter`]s):
//!   forward, HP[R] = h_{t-1}[R] Wh^T[R, R] + h_{t-1}[other] Wh^T[other, R], its
//!   own units first; backward, its partial sum of dh_{t-1} over its units, the
//!   other's units first, which the other adds at the next step;
//! - in blocks, both threads meet at a [`SpinBarrier`] between the two halves of
//!   each step.
//!
//! The buffers both threads use are shared through [`SharedMut`]; each access
//! says why no other thread writes those values then. The counters' protocol is
//! model-checked with loom (`parallel::loom_tests`).

use std::ops::Range;

use super::cell::rnn;
use crate::linalg::{self, Real};
use crate::parallel::{Pair, SharedMut, SpinBarrier, StepCounter};

/// Thread i's units in a recurrence split at `mid` of `h`, the other thread's,
/// and thread i's strips of Wh^T (its units' rows of Wh).
fn owned_units<T>(
    wh_t: &[T],
    mid: usize,
    h: usize,
    i: usize,
) -> (Range<usize>, Range<usize>, &[T]) {
    let units = |i: usize| if i == 0 { 0..mid } else { mid..h };
    let strips = if i == 0 {
        &wh_t[..mid * h]
    } else {
        &wh_t[mid * h..]
    };
    (units(i), units(1 - i), strips)
}

/// h_t = tanh(xp_t + h_{t-1} Wh^T) for `steps` steps, Wh^T (H, H) in strips:
/// `hs` ((T+1), H) holds h_{-1} in row 0 and receives h_t in row t + 1; `hp` and
/// `part` (H) are scratch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_strips<T: Real>(
    pair: &Pair,
    mid: usize,
    steps: usize,
    xp: &[T],
    wh_t: &[T],
    hs: &mut [T],
    hp: &mut [T],
    part: &mut [T],
) {
    let h = hp.len();
    let (hs, hp, part) = (SharedMut::new(hs), SharedMut::new(hp), SharedMut::new(part));
    // per thread: steps whose h_t is written
    let written = [StepCounter::new(), StepCounter::new()];
    pair.run(&|i| {
        let (own, other, w) = owned_units(wh_t, mid, h, i);
        // SAFETY: each thread takes only its own units of hp and part
        let (hp, part) = unsafe {
            (
                hp.get_mut(own.start, own.len()),
                part.get_mut(own.start, own.len()),
            )
        };
        for t in 0..steps {
            // odd steps walk the strips backwards (see strip_vecmat_rows)
            let back = t % 2 == 1;
            // SAFETY: this thread wrote its units of row t (or the caller did, for
            // t = 0, before the job); nothing writes row t during the job
            let h_own = unsafe { hs.get(t * h + own.start, own.len()) };
            linalg::strip_vecmat_rows(h_own, w, own.start, hp, back);
            written[1 - i].wait_for(t);
            // SAFETY: the other thread has published row t of its units (its count
            // is at least t) and writes only rows after it
            let h_other = unsafe { hs.get(t * h + other.start, other.len()) };
            linalg::strip_vecmat_rows(h_other, w, other.start, part, back);
            hp.iter_mut().zip(&*part).for_each(|(a, &b)| *a = *a + b);
            // SAFETY: only this thread writes its units of row t + 1, and the other
            // reads them only once this thread publishes t + 1, after this write
            let h_next = unsafe { hs.get_mut((t + 1) * h + own.start, own.len()) };
            rnn::forward(&xp[t * h + own.start..t * h + own.end], hp, h_next);
            written[i].publish(t + 1);
        }
    });
}

/// [`forward_strips`] with Wh^T in blocks, each thread multiplying by its part of
/// the blocks (columns on its side of `mid`), the two meeting at every step.
pub(crate) fn forward_blocks<T: Real>(
    pair: &Pair,
    mid: usize,
    steps: usize,
    xp: &[T],
    wh_t: &[T],
    hs: &mut [T],
    hp: &mut [T],
) {
    let h = hp.len();
    let (hs, hp) = (SharedMut::new(hs), SharedMut::new(hp));
    let barrier = SpinBarrier::new();
    pair.run(&|i| {
        let (w, cols) = if i == 0 {
            (&wh_t[..mid * h], 0..mid)
        } else {
            (&wh_t[mid * h..], mid..h)
        };
        // SAFETY: each thread takes only its own columns of hp
        let hp = unsafe { hp.get_mut(cols.start, cols.len()) };
        for t in 0..steps {
            // SAFETY: row t is complete since the last barrier (or the job's start)
            // and nothing writes it during the job
            let h_prev = unsafe { hs.get(t * h, h) };
            linalg::block_vecmat(h_prev, w, hp, false);
            // SAFETY: only this thread writes its columns of row t + 1, and the
            // other reads row t + 1 only after the barrier below
            let h_next = unsafe { hs.get_mut((t + 1) * h + cols.start, cols.len()) };
            rnn::forward(&xp[t * h + cols.start..t * h + cols.end], hp, h_next);
            barrier.wait();
        }
    });
}

/// Back through `steps` steps of a tanh RNN, Wh^T (H, H) in strips: from the
/// gradient reaching each h_t from above (`dcur`, (T, H)) and the states `hs`,
/// dXP_t = (1 - h_t^2) (dcur_t + dh_t) into `dxp` (T, H), where dh_{t-1} = dXP_t Wh
/// is summed as two partial sums, one per thread, in `parts` ((2, 2, H): step
/// parity, thread). `dh` (H) is scratch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_strips<T: Real>(
    pair: &Pair,
    mid: usize,
    steps: usize,
    dcur: &[T],
    hs: &[T],
    wh_t: &[T],
    dxp: &mut [T],
    dh: &mut [T],
    parts: &mut [T],
) {
    let h = dh.len();
    let (dxp, dh, parts) = (
        SharedMut::new(dxp),
        SharedMut::new(dh),
        SharedMut::new(parts),
    );
    // per thread: steps whose partial sum for the other's units is written
    let written = [StepCounter::new(), StepCounter::new()];
    pair.run(&|i| {
        let (own, other, w) = owned_units(wh_t, mid, h, i);
        // SAFETY: each thread takes only its own units of dh
        let dh = unsafe { dh.get_mut(own.start, own.len()) };
        for t in (0..steps).rev() {
            let dcur_t = &dcur[t * h + own.start..t * h + own.end];
            if t + 1 < steps {
                written[1 - i].wait_for(steps - t - 1);
                let next = (t + 1) % 2 * 2 * h;
                // SAFETY: both partial sums of step t + 1 on this thread's units are
                // written: its own before, the other's published (count >= steps - t - 1);
                // the other writes that buffer again only for step t - 1, after it
                // waits for this thread's partial sum of step t, published later
                let (p0, p1) = unsafe {
                    (
                        parts.get(next + own.start, own.len()),
                        parts.get(next + h + own.start, own.len()),
                    )
                };
                for (((d, &a), &p0), &p1) in dh.iter_mut().zip(dcur_t).zip(p0).zip(p1) {
                    *d = a + (p0 + p1);
                }
            } else {
                for (d, &a) in dh.iter_mut().zip(dcur_t) {
                    *d = a + T::zero();
                }
            }
            // SAFETY: each thread writes only its own units of dxp's rows, which the
            // other never reads
            let dxp_t = unsafe { dxp.get_mut(t * h + own.start, own.len()) };
            rnn::backward(
                dh,
                &hs[(t + 1) * h + own.start..(t + 1) * h + own.end],
                dxp_t,
            );
            if t > 0 {
                // truncated BPTT: nothing flows into the previous chunk
                // (odd steps walk the rows backwards, see strip_matvec)
                let (mine, back) = (t % 2 * 2 * h + i * h, t % 2 == 1);
                // SAFETY: buffer (t % 2, i) is this thread's; the other last read it
                // for step t + 2, before publishing the sum this thread waited for
                let theirs = unsafe { parts.get_mut(mine + other.start, other.len()) };
                linalg::strip_matvec(w, dxp_t, other.start, theirs, back);
                written[i].publish(steps - t);
                // SAFETY: as above; the other reads these units of the buffer never
                let ours = unsafe { parts.get_mut(mine + own.start, own.len()) };
                linalg::strip_matvec(w, dxp_t, own.start, ours, back);
            }
        }
    });
}

/// [`backward_strips`] with Wh in blocks (`wh_p`), each thread the columns on its
/// side of `mid` of dh, dh_next and dXP, the two meeting at every step; dh_{t-1}
/// accumulates in `dh_next` (H).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_blocks<T: Real>(
    pair: &Pair,
    mid: usize,
    steps: usize,
    dcur: &[T],
    hs: &[T],
    wh_p: &[T],
    dxp: &mut [T],
    dh: &mut [T],
    dh_next: &mut [T],
) {
    let h = dh.len();
    let (dxp, dh, dh_next) = (
        SharedMut::new(dxp),
        SharedMut::new(dh),
        SharedMut::new(dh_next),
    );
    let barrier = SpinBarrier::new();
    pair.run(&|i| {
        let cols = if i == 0 { 0..mid } else { mid..h };
        let w = if i == 0 {
            &wh_p[..mid * h]
        } else {
            &wh_p[mid * h..]
        };
        // SAFETY: each thread takes only its own columns of dh
        let dh = unsafe { dh.get_mut(cols.start, cols.len()) };
        for t in (0..steps).rev() {
            {
                // SAFETY: each thread touches only its own columns of dh_next and of
                // row t of dxp until the barrier
                let (dh_next, dxp_t) = unsafe {
                    (
                        dh_next.get_mut(cols.start, cols.len()),
                        dxp.get_mut(t * h + cols.start, cols.len()),
                    )
                };
                let dcur_t = &dcur[t * h + cols.start..t * h + cols.end];
                for ((d, &a), n) in dh.iter_mut().zip(dcur_t).zip(dh_next) {
                    *d = a + *n;
                    *n = T::zero();
                }
                rnn::backward(
                    dh,
                    &hs[(t + 1) * h + cols.start..(t + 1) * h + cols.end],
                    dxp_t,
                );
            }
            barrier.wait();
            if t > 0 {
                // truncated BPTT: nothing flows into the previous chunk
                // SAFETY: row t of dxp is complete since the barrier and nothing
                // writes it again; each thread adds into its own columns of dh_next
                let (dxp_t, y) =
                    unsafe { (dxp.get(t * h, h), dh_next.get_mut(cols.start, cols.len())) };
                linalg::block_vecmat(dxp_t, w, y, true);
            }
        }
    });
}
