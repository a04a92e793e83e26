//! How the two threads meet inside one job that both run step by step: a
//! [`StepCounter`] per thread that it publishes its progress in and the other
//! waits on (the split recurrence; the output layer beside the recurrence), and a
//! [`SpinBarrier`] where both wait for each other (the recurrence split in
//! blocks). Both spin rather than sleep: a step lasts microseconds, less than
//! waking a sleeping thread takes.

use super::sync::{AtomicUsize, Ordering, pause};

/// A value alone in its pair of cache lines (adjacent-line prefetch pairs them):
/// a value that shared a line with what the other thread writes at every step
/// would move between the cores at every step.
#[repr(align(128))]
#[derive(Default)]
pub struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Steps one thread has finished, for the other to wait on: everything the
/// publisher wrote before [`StepCounter::publish`] is visible to a thread that
/// [`StepCounter::wait_for`] has returned to (release, then acquire).
pub struct StepCounter(Padded<AtomicUsize>);

impl Default for StepCounter {
    fn default() -> Self {
        StepCounter::new()
    }
}

impl StepCounter {
    pub fn new() -> Self {
        StepCounter(Padded(AtomicUsize::new(0)))
    }

    /// Says that `steps` steps are done (counts only grow).
    pub fn publish(&self, steps: usize) {
        self.0.store(steps, Ordering::Release);
    }

    /// Waits until at least `steps` steps are published; returns how many are.
    pub fn wait_for(&self, steps: usize) -> usize {
        let mut turn = 0u32;
        loop {
            let done = self.0.load(Ordering::Acquire);
            if done >= steps {
                return done;
            }
            pause(turn);
            turn = turn.saturating_add(1);
        }
    }
}

/// Two threads meeting between the phases of one job. Aligned so that nothing
/// else shares the lines both threads poll.
#[repr(align(128))]
pub struct SpinBarrier {
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl Default for SpinBarrier {
    fn default() -> Self {
        SpinBarrier::new()
    }
}

impl SpinBarrier {
    pub fn new() -> Self {
        SpinBarrier {
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// Returns once both threads have called it (the second to arrive opens it).
    pub fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) == 1 {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut turn = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            pause(turn);
            turn = turn.saturating_add(1);
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::parallel::Pair;

    #[test]
    fn barrier_orders_the_phases_of_a_job() {
        let pair = Pair::new().unwrap();
        let barrier = SpinBarrier::new();
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

    #[test]
    fn a_counter_hands_over_what_was_written_before_it() {
        let pair = Pair::new().unwrap();
        let counter = StepCounter::new();
        let values: Vec<std::sync::atomic::AtomicUsize> = (0..1000)
            .map(|_| std::sync::atomic::AtomicUsize::new(0))
            .collect();
        pair.run(&|i| {
            for (t, v) in values.iter().enumerate() {
                if i == 0 {
                    v.store(t + 1, Ordering::Relaxed);
                    counter.publish(t + 1);
                } else {
                    assert!(counter.wait_for(t + 1) > t);
                    assert_eq!(
                        v.load(Ordering::Relaxed),
                        t + 1,
                        "step {t} seen before its write"
                    );
                }
            }
        });
    }
}
