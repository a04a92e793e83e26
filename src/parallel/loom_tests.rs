//! Model checks (loom) of the hand-offs between the two threads: every
//! interleaving of their atomics, parks and cell accesses within the
//! preemption bound, with loom's cells reporting any access to shared data
//! that another thread could be making at the same time. Run by `.ci/run`:
//!
//! ```text
//! cargo test --features loom --lib parallel::loom_tests
//! ```
//! Loom's threads stand in for the pair's helper and its wait loops yield at
//! every turn (see `sync`), so the helper goes to sleep after two idle turns and
//! the sleep-and-wake path is explored too.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};

use super::{Pair, SpinBarrier, StepCounter};

/// A value both threads reach, as a buffer shared through `SharedMut` is: loom
/// reports any read or write of it that is not ordered after the last write.
struct Cell(loom::cell::UnsafeCell<usize>);

// SAFETY: the point of these tests: loom checks every access for a data race
unsafe impl Sync for Cell {}

impl Cell {
    fn new(v: usize) -> Self {
        Cell(loom::cell::UnsafeCell::new(v))
    }

    fn get(&self) -> usize {
        // SAFETY: loom panics on a read that races with a write
        self.0.with(|v| unsafe { *v })
    }

    fn set(&self, value: usize) {
        // SAFETY: loom panics on a write that races with another access
        self.0.with_mut(|v| unsafe { *v = value })
    }
}

/// Explores with a bound on preemptions (every interleaving up to it).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// A value written by one part of a job and read after the job by the caller:
/// `run` must not return before the helper's part is done.
#[test]
fn run_hands_the_job_over_and_waits_for_both_parts() {
    model(|| {
        let pair = Pair::new().unwrap();
        let cells = [Cell::new(0), Cell::new(0)];
        pair.run(&|i| {
            // part i alone writes cell i
            cells[i].set(cells[i].get() + i + 1);
        });
        // SAFETY (checked by loom): both parts are over
        let got = [cells[0].get(), cells[1].get()];
        assert_eq!(got, [1, 2]);
    });
}

/// `each` runs each item exactly once, on the helper or taken back by the
/// caller, and two jobs in a row (the second after the helper may have gone to
/// sleep) both complete.
#[test]
fn each_takes_back_or_hands_over_each_item_once() {
    model(|| {
        let pair = Pair::new().unwrap();
        let runs = [AtomicUsize::new(0), AtomicUsize::new(0)];
        for _ in 0..2 {
            pair.each([&runs[0], &runs[1]], |_, count| {
                count.fetch_add(1, Ordering::Relaxed);
            });
        }
        assert_eq!(runs.map(|r| r.into_inner()), [2, 2]);
    });
}

/// A job posted while the helper goes to sleep wakes it: `run` needs the
/// helper's part, so a lost wake-up would hang (loom reports a deadlock).
#[test]
fn a_job_wakes_a_sleeping_helper() {
    model(|| {
        let pair = Pair::new().unwrap();
        // an `each` the caller may take back, then a `run` that needs the helper
        pair.each([(), ()], |_, ()| {});
        let done = AtomicUsize::new(0);
        pair.run(&|_| {
            done.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(done.into_inner(), 2);
    });
}

/// The split recurrence's forward protocol (`model::split::forward_strips`):
/// each thread reads its own units of row t, waits for the other's count to
/// reach t, reads the other's units of row t, writes its units of row t + 1 and
/// publishes t + 1. Loom's cells check that no read meets a concurrent write.
#[test]
fn forward_step_counters_order_the_rows() {
    const STEPS: usize = 3;
    model(|| {
        // rows[t][i]: thread i's units of row t (row 0 is the carried-in state)
        let rows: Arc<Vec<[Cell; 2]>> =
            Arc::new((0..=STEPS).map(|_| [Cell::new(0), Cell::new(0)]).collect());
        let written = Arc::new([StepCounter::new(), StepCounter::new()]);
        let thread = |i: usize| {
            let (rows, written) = (rows.clone(), written.clone());
            move || {
                for t in 0..STEPS {
                    // as in forward_strips
                    let own = rows[t][i].get();
                    written[1 - i].wait_for(t);
                    let other = rows[t][1 - i].get();
                    assert_eq!((own, other), (t, t), "row {t} read before it was written");
                    rows[t + 1][i].set(own.max(other) + 1);
                    written[i].publish(t + 1);
                }
            }
        };
        let helper = loom::thread::spawn(thread(1));
        thread(0)();
        helper.join().unwrap();
    });
}

/// The split recurrence's backward protocol (`model::split::backward_strips`):
/// partial sums double-buffered by step parity, parts[t % 2][thread][units];
/// each thread waits for the other's sum of step t + 1, reads both sums on its
/// units, then writes its sums of step t, the other's units first, publishing
/// between the two. Loom's cells check that no buffer is rewritten while the
/// other thread may still read it.
#[test]
fn backward_step_counters_order_the_partial_sums() {
    const STEPS: usize = 4;
    model(|| {
        // parts[parity][writer][units owner]
        let parts: Arc<Vec<Cell>> = Arc::new((0..8).map(|_| Cell::new(usize::MAX)).collect());
        let at = |parity: usize, writer: usize, owner: usize| parity * 4 + writer * 2 + owner;
        let written = Arc::new([StepCounter::new(), StepCounter::new()]);
        let thread = |i: usize| {
            let (parts, written) = (parts.clone(), written.clone());
            move || {
                for t in (0..STEPS).rev() {
                    if t + 1 < STEPS {
                        written[1 - i].wait_for(STEPS - t - 1);
                        let next = (t + 1) % 2;
                        // as in backward_strips
                        let (p0, p1) = (parts[at(next, 0, i)].get(), parts[at(next, 1, i)].get());
                        assert_eq!((p0, p1), (t + 1, t + 1), "step {}'s sums read early", t + 1);
                    }
                    if t > 0 {
                        parts[at(t % 2, i, 1 - i)].set(t);
                        written[i].publish(STEPS - t);
                        parts[at(t % 2, i, i)].set(t);
                    }
                }
            }
        };
        let helper = loom::thread::spawn(thread(1));
        thread(0)();
        helper.join().unwrap();
    });
}

/// The barrier of the split in blocks: each thread writes its half of row t + 1
/// before the barrier and reads all of it after.
#[test]
fn the_barrier_orders_the_halves_of_each_step() {
    const STEPS: usize = 2;
    model(|| {
        let rows: Arc<Vec<[Cell; 2]>> =
            Arc::new((0..=STEPS).map(|_| [Cell::new(0), Cell::new(0)]).collect());
        let barrier = Arc::new(SpinBarrier::new());
        let thread = |i: usize| {
            let (rows, barrier) = (rows.clone(), barrier.clone());
            move || {
                for t in 0..STEPS {
                    // SAFETY (checked by loom): as in forward_blocks
                    let prev = [rows[t][0].get(), rows[t][1].get()];
                    assert_eq!(prev, [t, t]);
                    rows[t + 1][i].set(t + 1);
                    barrier.wait();
                }
            }
        };
        let helper = loom::thread::spawn(thread(1));
        thread(0)();
        helper.join().unwrap();
    });
}
