//! [`SharedMut`]: a buffer that the two threads of a split recurrence (or the
//! recurrence and the output layer beside it) use at once, each reading and
//! writing its own parts, with the hand-over between them ordered by
//! [`StepCounter`](super::StepCounter)s. Every access is an `unsafe` call at its
//! use, with the argument for why no other thread writes those values then.

use std::marker::PhantomData;

/// A pointer to a buffer of T that two threads share.
pub struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    buffer: PhantomData<&'a mut [T]>,
}

impl<T> Clone for SharedMut<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SharedMut<'_, T> {}

// SAFETY: a SharedMut only hands out its values through `get` and `get_mut`, whose
// callers promise that no value is written while another thread reads or writes
// it; the values themselves cross threads, so T must be Send and Sync.
unsafe impl<T: Send + Sync> Send for SharedMut<'_, T> {}
// SAFETY: as for Send
unsafe impl<T: Send + Sync> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    /// Shares `buffer` for as long as it is borrowed.
    pub fn new(buffer: &'a mut [T]) -> Self {
        SharedMut {
            ptr: buffer.as_mut_ptr(),
            len: buffer.len(),
            buffer: PhantomData,
        }
    }

    /// The `len` values from `start` on, to read.
    ///
    /// # Safety
    /// No thread writes any of them while the returned slice lives.
    pub unsafe fn get(&self, start: usize, len: usize) -> &'a [T] {
        assert!(
            start + len <= self.len,
            "values {start}..{} of {}",
            start + len,
            self.len
        );
        // SAFETY: in bounds (asserted); the caller promises no concurrent write
        unsafe { std::slice::from_raw_parts(self.ptr.add(start), len) }
    }

    /// The `len` values from `start` on, to write.
    ///
    /// # Safety
    /// No other thread reads or writes any of them while the returned slice lives,
    /// and this thread holds no other slice over them.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_mut(&self, start: usize, len: usize) -> &'a mut [T] {
        assert!(
            start + len <= self.len,
            "values {start}..{} of {}",
            start + len,
            self.len
        );
        // SAFETY: in bounds (asserted); the caller promises exclusive access
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}
