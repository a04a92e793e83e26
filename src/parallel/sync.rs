//! The synchronisation primitives the pair and the step counters are built on:
//! std's, or loom's when the crate is built with the `loom` feature for the model
//! checks (see `parallel::loom_tests`). Loom explores every interleaving of the
//! atomics, parks and cell accesses it sees, so the code under test must reach
//! them through these names.

#[cfg(not(feature = "loom"))]
pub(crate) use std::sync::Arc;
#[cfg(not(feature = "loom"))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(not(feature = "loom"))]
pub(crate) use std::thread;

#[cfg(feature = "loom")]
pub(crate) use loom::sync::Arc;
#[cfg(feature = "loom")]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(feature = "loom")]
pub(crate) use loom::thread;

/// An UnsafeCell with loom's closure interface (which lets loom check that no
/// two threads touch the value at once without an ordering between them).
#[cfg(not(feature = "loom"))]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(feature = "loom"))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(feature = "loom")]
pub(crate) use loom::cell::UnsafeCell;

/// One turn of a wait loop: a spin hint for the first [`SPINS`] turns, then a
/// yield (the other thread may not be running on a busy machine).
#[cfg(not(feature = "loom"))]
#[inline]
pub(crate) fn pause(turn: u32) {
    if turn < SPINS {
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

/// Under loom every turn yields, which is what lets the checker run the other
/// thread.
#[cfg(feature = "loom")]
pub(crate) fn pause(_turn: u32) {
    thread::yield_now();
}

/// Turns of a wait loop that spin before it yields: a few hundred microseconds.
pub(crate) const SPINS: u32 = if cfg!(feature = "loom") { 1 } else { 1 << 14 };
