//! Two threads for one job: the caller and a helper that waits between jobs by
//! spinning, so handing over work costs a cache-line transfer (well under a
//! microsecond) instead of a thread spawn or wake-up (tens of microseconds).
//!
//! A single stream's training iteration is a dozen phases of a few microseconds
//! each (the output layer's products, the weight gradients, the update); the pair
//! runs each phase's two halves at once, or two different jobs side by side (the
//! recurrence here, the output layer on the helper). After a few hundred microseconds
//! without work (a checkpoint save, an evaluation) the helper sleeps until the
//! next job. When the helper has not started its half by the time the caller has
//! finished its own (it is asleep, or another program has its core), the caller
//! takes that half back and runs it too: each half is computed the same way on
//! either thread, and a busy second core costs little instead of stalling every
//! phase.

use std::cell::UnsafeCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};

/// A job both threads run, with its lifetime erased (see [`Pair::run`]).
type Job = *const (dyn Fn(usize) + Sync + 'static);

/// What the two threads share. The helper polls `posted` and the caller polls
/// `done` in a loop, so each sits alone in its cache lines: a value of the
/// caller's that shared a line with them would bounce between the cores at every
/// write (this once cost training half its speed).
#[repr(align(128))]
struct Inner {
    /// Jobs posted (the caller writes, the helper polls), with what the helper
    /// reads once it sees a new one.
    posted: Padded<AtomicUsize>,
    /// The last job taken: by the helper, to run its part, or by the caller of
    /// [`Pair::each`], to run both items itself when the helper has not started
    /// (it may be asleep, or its core busy with another program). Whoever moves
    /// it from n - 1 to n owns job n's second part.
    taken: Padded<AtomicUsize>,
    /// Written by the caller only while the helper is idle (job n - 1 done or
    /// taken back, `posted` not yet n), read by the helper only once it has taken
    /// job n and until it reports it done.
    job: UnsafeCell<Option<Job>>,
    /// The helper is parked (or about to park) and needs an unpark.
    sleeping: AtomicBool,
    quit: AtomicBool,
    /// Jobs the helper has finished (the helper writes, the caller polls).
    done: Padded<AtomicUsize>,
}

/// A value alone in its pair of cache lines (adjacent-line prefetch pairs them).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

// SAFETY: `job` is handed over through `posted` and `done` (release/acquire), so the
// two threads never access it at the same time; the job itself is Sync.
unsafe impl Sync for Inner {}
unsafe impl Send for Inner {}

/// The calling thread plus one helper thread.
pub struct Pair {
    inner: Arc<Inner>,
    helper: Option<JoinHandle<()>>,
}

/// Spins this many times (a few hundred microseconds) before yielding, then
/// yields this many times before sleeping.
const SPINS: u32 = 1 << 14;
const YIELDS: u32 = 1 << 10;

impl Pair {
    /// Starts the helper thread (an error only if the system refuses a thread).
    pub fn new() -> std::io::Result<Pair> {
        let inner = Arc::new(Inner {
            job: UnsafeCell::new(None),
            posted: Padded(AtomicUsize::new(0)),
            taken: Padded(AtomicUsize::new(0)),
            done: Padded(AtomicUsize::new(0)),
            sleeping: AtomicBool::new(false),
            quit: AtomicBool::new(false),
        });
        let shared = Arc::clone(&inner);
        let helper = thread::Builder::new()
            .name("charrnn-helper".into())
            .spawn(move || helper_loop(&shared))?;
        Ok(Pair {
            inner,
            helper: Some(helper),
        })
    }

    /// Runs `job(0)` on this thread and `job(1)` on the helper, and returns when
    /// both have finished. A panic in either aborts the process: the other thread
    /// may still be using data on this thread's stack, so unwinding is not safe.
    pub fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        self.run_or_take_back(job, false);
    }

    /// [`Pair::run`]; with `take_back`, once `job(0)` returns, runs `job(1)` here
    /// too if the helper has not started it (for a job whose parts do not wait
    /// for each other).
    fn run_or_take_back(&self, job: &(dyn Fn(usize) + Sync), take_back: bool) {
        let abort = AbortOnUnwind;
        let inner = &*self.inner;
        let n = inner.posted.load(Ordering::Relaxed) + 1;
        // SAFETY: the helper is idle (job n - 1 is done, which the previous run
        // waited for, or was taken back and never started), and it calls the job
        // only after taking it and before `done` reaches n, which this function
        // then waits for before `job`'s borrow ends.
        unsafe {
            let erased: &'static (dyn Fn(usize) + Sync) = std::mem::transmute(job);
            *inner.job.get() = Some(erased as Job);
        }
        inner.posted.store(n, Ordering::SeqCst);
        // wake a sleeping helper even for a job this thread may take back: else it
        // would sleep through every later `each` and the pair would stay one thread
        if inner.sleeping.load(Ordering::SeqCst)
            && let Some(helper) = &self.helper
        {
            helper.thread().unpark();
        }
        job(0);
        if take_back
            && inner
                .taken
                .compare_exchange(n - 1, n, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            job(1);
        } else {
            wait_until(|| inner.done.load(Ordering::Acquire) == n);
        }
        std::mem::forget(abort);
    }

    /// Moves `items[i]` to thread i and runs `f(i, items[i])` on both at once: two
    /// disjoint `&mut` halves of a buffer, say. When the helper has not started
    /// by the time `f(0, ..)` returns, this thread runs `f(1, ..)` as well, so a
    /// helper that is asleep or kept off its core costs nothing here.
    pub fn each<A: Send>(&self, items: [A; 2], f: impl Fn(usize, A) + Sync) {
        let slots = items.map(|a| Slot(UnsafeCell::new(Some(a))));
        self.run_or_take_back(
            &|i| {
                // SAFETY: part i, run once by whichever thread has it, takes only slot i
                let item = unsafe { (*slots[i].0.get()).take() }.expect("each slot is taken once");
                f(i, item);
            },
            true,
        );
    }
}

/// [`Pair::each`] when there is a pair, else both calls on this thread in order.
pub fn each<A: Send>(pair: Option<&Pair>, items: [A; 2], f: impl Fn(usize, A) + Sync) {
    match pair {
        Some(pair) => pair.each(items, f),
        None => {
            let [a, b] = items;
            f(0, a);
            f(1, b);
        }
    }
}

struct Slot<A>(UnsafeCell<Option<A>>);
// SAFETY: see `each`: each slot is touched by one thread only
unsafe impl<A: Send> Sync for Slot<A> {}

impl Drop for Pair {
    fn drop(&mut self) {
        self.inner.quit.store(true, Ordering::SeqCst);
        if let Some(helper) = self.helper.take() {
            helper.thread().unpark();
            let _ = helper.join();
        }
    }
}

fn helper_loop(inner: &Inner) {
    let mut seen = 0;
    loop {
        let mut spins = 0u32;
        loop {
            if inner.posted.load(Ordering::Acquire) != seen {
                break;
            }
            if inner.quit.load(Ordering::Acquire) {
                return;
            }
            spins += 1;
            if spins < SPINS {
                std::hint::spin_loop();
            } else if spins < SPINS + YIELDS {
                thread::yield_now();
            } else {
                // announce the sleep, then look once more: `run` posts before it
                // checks `sleeping` (both SeqCst), so one of the two sees the other
                inner.sleeping.store(true, Ordering::SeqCst);
                if inner.posted.load(Ordering::SeqCst) == seen && !inner.quit.load(Ordering::SeqCst)
                {
                    thread::park();
                }
                inner.sleeping.store(false, Ordering::SeqCst);
                spins = 0;
            }
        }
        // the newest job: the caller posts job n + 1 only after job n is done or
        // taken back, so a job passed over here was taken back
        seen = inner.posted.load(Ordering::Acquire);
        if inner
            .taken
            .compare_exchange(seen - 1, seen, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue; // the caller took it back
        }
        // SAFETY: the caller wrote the job before posting it and keeps it alive
        // until `done` says it has finished
        let job = unsafe { (*inner.job.get()).expect("a posted job") };
        let abort = AbortOnUnwind;
        unsafe { (*job)(1) };
        std::mem::forget(abort);
        inner.done.store(seen, Ordering::Release);
    }
}

/// Spins, then yields (the other thread may not be running on a busy machine).
pub(crate) fn wait_until(ready: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        spins += 1;
        if spins < SPINS {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// Aborts if dropped during a panic (see [`Pair::run`]); forgotten otherwise.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        std::process::abort();
    }
}

/// Two threads meeting between the phases of one job. Spinning, not sleeping: a
/// phase lasts microseconds, less than waking a sleeping thread takes. Aligned
/// so that nothing else shares the lines both threads poll (see [`Inner`]).
#[repr(align(128))]
#[derive(Default)]
pub struct SpinBarrier {
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    pub fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) == 1 {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        wait_until(|| self.generation.load(Ordering::Acquire) != generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_halves_run_once_per_job_on_two_threads() {
        let pair = Pair::new().unwrap();
        let counts = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let ids = std::sync::Mutex::new(Vec::new());
        for _ in 0..1000 {
            pair.run(&|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
                ids.lock().unwrap().push((i, thread::current().id()));
            });
        }
        assert_eq!(counts[0].load(Ordering::Relaxed), 1000);
        assert_eq!(counts[1].load(Ordering::Relaxed), 1000);
        let ids = ids.into_inner().unwrap();
        let me = thread::current().id();
        assert!(
            ids.iter().all(|&(i, id)| (i == 0) == (id == me)),
            "job(1) ran on the helper, job(0) here"
        );
    }

    #[test]
    fn each_hands_out_disjoint_halves_and_wakes_a_sleeping_helper() {
        let pair = Pair::new().unwrap();
        let mut v = vec![0u64; 10];
        for round in 1..=3u64 {
            let (a, b) = v.split_at_mut(4);
            pair.each([a, b], |i, half| {
                half.iter_mut().for_each(|x| *x += round * (i as u64 + 1))
            });
            // long enough for the helper to go to sleep; the next job must wake it
            thread::sleep(std::time::Duration::from_millis(if round == 1 {
                300
            } else {
                0
            }));
        }
        assert_eq!(v, [6, 6, 6, 6, 12, 12, 12, 12, 12, 12]);
    }

    #[test]
    fn a_helper_that_has_not_started_is_not_waited_for() {
        let pair = Pair::new().unwrap();
        let me = thread::current().id();
        let mut here = 0;
        for _ in 0..10 {
            // the helper goes to sleep; waking it takes far longer than part 0
            thread::sleep(std::time::Duration::from_millis(30));
            let ran = std::sync::Mutex::new(Vec::new());
            pair.each([0, 1], |i, item| {
                ran.lock().unwrap().push((i, item, thread::current().id()))
            });
            let mut ran = ran.into_inner().unwrap();
            ran.sort_by_key(|r| r.0);
            assert_eq!(
                ran.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
                [(0, 0), (1, 1)]
            );
            assert_eq!(ran[0].2, me, "part 0 runs on the caller");
            here += usize::from(ran[1].2 == me);
        }
        assert!(
            here > 0,
            "the caller never took part 1 back from a sleeping helper"
        );
        // a job that needs both threads still wakes the helper
        thread::sleep(std::time::Duration::from_millis(30));
        let on = std::sync::Mutex::new(None);
        pair.run(&|i| {
            if i == 1 {
                *on.lock().unwrap() = Some(thread::current().id());
            }
        });
        assert!(
            on.into_inner().unwrap().is_some_and(|id| id != me),
            "run's part 1 on the helper"
        );
    }

    #[test]
    fn a_sleeping_helper_comes_back_for_later_halves() {
        let pair = Pair::new().unwrap();
        let me = thread::current().id();
        thread::sleep(std::time::Duration::from_millis(30));
        let on_helper = AtomicUsize::new(0);
        for _ in 0..200 {
            pair.each([0, 1], |i, _| {
                if i == 0 {
                    // part 0 lasts long enough for a woken helper to take part 1
                    let t = std::time::Instant::now();
                    while t.elapsed() < std::time::Duration::from_micros(50) {}
                } else if thread::current().id() != me {
                    on_helper.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        assert!(
            on_helper.into_inner() > 0,
            "only `each` ran after the helper slept, and it never came back"
        );
    }

    #[test]
    fn jobs_and_taken_back_jobs_interleave_without_losing_one() {
        let pair = Pair::new().unwrap();
        let counts = [AtomicUsize::new(0), AtomicUsize::new(0)];
        for round in 0..20_000 {
            if round % 3 == 0 {
                pair.run(&|i| {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                });
            } else {
                pair.each([&counts[0], &counts[1]], |_, c| {
                    c.fetch_add(1, Ordering::Relaxed);
                });
            }
            if round % 5000 == 0 {
                thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        assert_eq!(counts.map(|c| c.into_inner()), [20_000, 20_000]);
    }

    #[test]
    fn barrier_orders_the_phases_of_a_job() {
        let pair = Pair::new().unwrap();
        let barrier = SpinBarrier::default();
        let cells = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let seen = [AtomicUsize::new(0), AtomicUsize::new(0)];
        pair.run(&|i| {
            for step in 1..=500 {
                cells[i].store(step, Ordering::Relaxed);
                barrier.wait();
                // after the barrier the other thread's write of this step is visible
                assert_eq!(cells[1 - i].load(Ordering::Relaxed), step);
                seen[i].fetch_add(1, Ordering::Relaxed);
                barrier.wait();
            }
        });
        assert_eq!(
            seen[0].load(Ordering::Relaxed) + seen[1].load(Ordering::Relaxed),
            1000
        );
    }
}
