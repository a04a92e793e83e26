//! Two threads for one job: the caller and a helper that waits between jobs by
//! spinning, so handing over work costs a cache-line transfer (well under a
//! microsecond) instead of a thread spawn or wake-up (tens of microseconds).
//!
//! A single stream's training iteration is a dozen phases of a few microseconds
//! each (the output layer's products, the weight gradients, the update); the pair
//! runs each phase's two halves at once, or two different jobs side by side (the
//! recurrence here, the output layer on the helper). After a few hundred
//! microseconds without work (a checkpoint save, an evaluation) the helper sleeps
//! until the next job. When the helper has not started its half by the time the
//! caller has finished its own (it is asleep, or another program has its core),
//! the caller takes that half back and runs it too: each half is computed the
//! same way on either thread, and a busy second core costs little instead of
//! stalling every phase.
//!
//! A pair runs one job at a time: a second `run` or `each` while one is running
//! (from another thread, or from inside the job) panics before it touches the
//! job. The hand-over is model-checked with loom (`parallel::loom_tests`).

use super::steps::Padded;
use super::sync::{Arc, AtomicBool, AtomicUsize, Ordering, SPINS, UnsafeCell, pause, thread};

/// A job both threads run, with its lifetime erased (see [`Pair::run`]).
type Job = *const (dyn Fn(usize) + Sync + 'static);

/// What the two threads share. The helper polls `posted` and the caller polls
/// `done` in a loop, so each sits alone in its cache lines: a value of the
/// caller's that shared a line with them would bounce between the cores at every
/// write (this once cost training half its speed).
#[repr(align(128))]
struct Inner {
    /// Twice the jobs posted (the caller adds 2 per job, the helper polls), plus
    /// [`ASLEEP`] while the helper sleeps or is about to. One word for both, so
    /// that posting and going to sleep are read-modify-writes of one location,
    /// ordered with each other: either the helper's move to sleep sees the new
    /// job, or the caller's post sees the helper asleep and wakes it.
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
    /// A job is running: set by `run` before it posts, cleared once both parts
    /// are done. A second caller finds it set and panics.
    busy: AtomicBool,
    quit: AtomicBool,
    /// Jobs the helper has finished (the helper writes, the caller polls).
    done: Padded<AtomicUsize>,
}

// SAFETY: `job` is written only by the one caller `busy` admits, while the helper
// is idle, and handed over through `posted`, `taken` and `done` (release/acquire),
// so the two threads never access it at the same time; the job itself is Sync.
unsafe impl Sync for Inner {}
// SAFETY: as for Sync; the raw job pointer is only dereferenced as described there
unsafe impl Send for Inner {}

/// The calling thread plus one helper thread.
pub struct Pair {
    inner: Arc<Inner>,
    helper: Option<thread::JoinHandle<()>>,
}

/// The bit of `Inner::posted` that says the helper sleeps.
const ASLEEP: usize = 1;

/// Turns of the helper's idle loop that yield, after it has spun, before it sleeps.
const YIELDS: u32 = if cfg!(feature = "loom") { 1 } else { 1 << 10 };

impl Pair {
    /// Starts the helper thread (an error only if the system refuses a thread).
    pub fn new() -> std::io::Result<Pair> {
        let inner = Arc::new(Inner {
            job: UnsafeCell::new(None),
            posted: Padded(AtomicUsize::new(0)),
            taken: Padded(AtomicUsize::new(0)),
            done: Padded(AtomicUsize::new(0)),
            busy: AtomicBool::new(false),
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

    /// A pair when this machine has at least two cores and grants the thread.
    pub fn for_cores() -> Option<Pair> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores >= 2).then(Pair::new).and_then(Result::ok)
    }

    /// Runs `job(0)` on this thread and `job(1)` on the helper, and returns when
    /// both have finished. A panic in either aborts the process: the other thread
    /// may still be using data on this thread's stack, so unwinding is not safe.
    ///
    /// # Panics
    /// When a job is already running on this pair: called from another thread at
    /// the same time, or from inside a job (there, the panic aborts).
    pub fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        self.run_or_take_back(job, false);
    }

    /// [`Pair::run`]; with `take_back`, once `job(0)` returns, runs `job(1)` here
    /// too if the helper has not started it (for a job whose parts do not wait
    /// for each other).
    fn run_or_take_back(&self, job: &(dyn Fn(usize) + Sync), take_back: bool) {
        let inner = &*self.inner;
        // before anything is touched, so that a refused caller unwinds safely
        if inner.busy.swap(true, Ordering::Acquire) {
            panic!(
                "charrnn: a job is already running on this thread pair (two callers at once, \
                 or a job that starts another); a pair runs one job at a time"
            );
        }
        let abort = AbortOnUnwind;
        let n = (inner.posted.load(Ordering::Relaxed) >> 1) + 1;
        // SAFETY: the lifetime is erased only for the helper's copy, which it calls
        // after taking job n and before `done` reaches n; this function waits for
        // that (or takes the job back) before `job`'s borrow ends
        let erased: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(job) };
        // SAFETY: `busy` admits one caller; the helper is idle (job n - 1 is done,
        // which the previous run waited for, or was taken back and never started)
        // and reads `job` only after it sees job n posted, below
        inner
            .job
            .with_mut(|slot| unsafe { *slot = Some(erased as Job) });
        let before = inner.posted.fetch_add(2, Ordering::AcqRel);
        // wake a sleeping helper even for a job this thread may take back: else it
        // would sleep through every later `each` and the pair would stay one thread
        if before & ASLEEP != 0
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
            let mut turn = 0u32;
            while inner.done.load(Ordering::Acquire) != n {
                pause(turn);
                turn = turn.saturating_add(1);
            }
        }
        std::mem::forget(abort);
        inner.busy.store(false, Ordering::Release);
    }

    /// Moves `items[i]` to thread i and runs `f(i, items[i])` on both at once: two
    /// disjoint `&mut` halves of a buffer, say. When the helper has not started
    /// by the time `f(0, ..)` returns, this thread runs `f(1, ..)` as well, so a
    /// helper that is asleep or kept off its core costs nothing here.
    ///
    /// # Panics
    /// As [`Pair::run`].
    pub fn each<A: Send>(&self, items: [A; 2], f: impl Fn(usize, A) + Sync) {
        let slots = items.map(|a| Slot(UnsafeCell::new(Some(a))));
        self.run_or_take_back(
            &|i| {
                // SAFETY: part i, run once by whichever thread owns it (see `taken`),
                // takes only slot i
                let item = slots[i].0.with_mut(|slot| unsafe { (*slot).take() });
                f(i, item.expect("each slot is taken once"));
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
// SAFETY: see `each`: each slot is touched by one thread only, and A moves to it
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
        let mut turns = 0u32;
        loop {
            if inner.posted.load(Ordering::Acquire) >> 1 != seen {
                break;
            }
            if inner.quit.load(Ordering::Acquire) {
                return;
            }
            turns += 1;
            if turns < SPINS + YIELDS {
                pause(turns);
            } else {
                // go to sleep only if no job came in meanwhile (then a post sees
                // ASLEEP and unparks), and sleep until one does or the pair is dropped
                let idle = seen << 1;
                if inner
                    .posted
                    .compare_exchange(idle, idle | ASLEEP, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    while inner.posted.load(Ordering::Acquire) >> 1 == seen
                        && !inner.quit.load(Ordering::Acquire)
                    {
                        thread::park();
                    }
                    inner.posted.fetch_and(!ASLEEP, Ordering::AcqRel);
                }
                turns = 0;
            }
        }
        // the newest job: the caller posts job n + 1 only after job n is done or
        // taken back, so a job passed over here was taken back
        seen = inner.posted.load(Ordering::Acquire) >> 1;
        if inner
            .taken
            .compare_exchange(seen - 1, seen, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue; // the caller took it back
        }
        // SAFETY: the caller wrote the job before posting it and does not write it
        // again until `done` says this one has finished
        let job = inner
            .job
            .with(|slot| unsafe { *slot })
            .expect("a posted job");
        let abort = AbortOnUnwind;
        // SAFETY: the caller keeps the job alive until `done` reaches `seen`
        unsafe { (*job)(1) };
        std::mem::forget(abort);
        inner.done.store(seen, Ordering::Release);
    }
}

/// Aborts if dropped during a panic (see [`Pair::run`]); forgotten otherwise.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        std::process::abort();
    }
}

#[cfg(all(test, not(feature = "loom")))]
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
    fn a_second_caller_is_refused_while_a_job_runs() {
        let pair = Pair::new().unwrap();
        let (started, release) = (AtomicBool::new(false), AtomicBool::new(false));
        thread::scope(|scope| {
            let first = scope.spawn(|| {
                pair.run(&|i| {
                    if i == 0 {
                        started.store(true, Ordering::SeqCst);
                        while !release.load(Ordering::SeqCst) {
                            std::hint::spin_loop();
                        }
                    }
                })
            });
            while !started.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            // the job above is running: this call must panic before touching it
            let refused =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pair.run(&|_| {})));
            let payload = refused.expect_err("a second caller was let in");
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned());
            assert!(
                message.is_some_and(|m| m.contains("already running")),
                "the panic says why"
            );
            release.store(true, Ordering::SeqCst);
            first.join().unwrap();
        });
        // and the pair still works afterwards
        let count = AtomicUsize::new(0);
        pair.run(&|_| {
            count.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(count.into_inner(), 2);
    }

    /// A job that starts another job on its own pair panics, and a panic inside a
    /// job aborts the process: checked in a child process, which this test
    /// starts as itself with NESTED set.
    #[test]
    fn a_job_that_starts_another_aborts_with_a_message() {
        const NESTED: &str = "CHARRNN_TEST_NESTED_PAIR_JOB";
        if std::env::var_os(NESTED).is_some() {
            let pair = Pair::new().unwrap();
            pair.run(&|i| {
                if i == 0 {
                    pair.run(&|_| {});
                }
            });
            return;
        }
        let name = "parallel::pair::tests::a_job_that_starts_another_aborts_with_a_message";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture"])
            .env(NESTED, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "the nested job ran: {stderr}");
        assert!(stderr.contains("already running"), "{stderr}");
    }
}
