//! The allocator: the system's, with every block of 64 bytes or more starting on
//! a 64-byte cache line.
//!
//! Why: the two threads of a [`crate::pair::Pair`] write the two halves of the
//! same buffers (h_t, the recurrent products, their gradients) at every step. A
//! buffer that starts mid-line puts the boundary between the halves inside one
//! cache line that both cores write, and that line then moves between the cores
//! at every step. With the halves split at multiples of 8 values and buffers on
//! a line, no line is written by both. Measured on the 2-core development machine
//! (`scripts/ab.sh 1000 7 "--hidden-size 512"`, three series): 734 against 806,
//! 642 against 727 and 630 against 772 it/s (medians of 7).

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks this large or larger start on a cache line.
const LINE: usize = 64;

pub struct LineAligned;

/// The layout the system allocator is asked for.
fn line(layout: Layout) -> Layout {
    if layout.size() >= LINE {
        layout.align_to(LINE).unwrap_or(layout)
    } else {
        layout
    }
}

// SAFETY: every call passes on to `System` with the layout `line` gives, which is
// a function of the caller's layout: a block is freed with the layout it was
// allocated with. `realloc` across the threshold moves the block itself.
unsafe impl GlobalAlloc for LineAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(line(layout)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(line(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, line(layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        if line(layout).align() == line(new).align() {
            return unsafe { System.realloc(ptr, line(layout), new_size) };
        }
        let moved = unsafe { System.alloc(line(new)) };
        if !moved.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                System.dealloc(ptr, line(layout));
            }
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: LineAligned = LineAligned;

#[cfg(test)]
mod tests {
    #[test]
    fn blocks_of_a_line_or_more_start_on_a_line() {
        for n in [8usize, 9, 100, 513, 1 << 17] {
            let v = vec![0.0f64; n];
            assert_eq!(v.as_ptr() as usize % super::LINE, 0, "{n} values");
        }
        // growing past the threshold moves a small block onto a line, and keeps it
        let mut v: Vec<u8> = vec![7; 10];
        v.resize(300, 1);
        assert_eq!(v.as_ptr() as usize % super::LINE, 0);
        assert_eq!((v[9], v[10], v.len()), (7, 1, 300));
        v.truncate(20);
        v.shrink_to_fit();
        assert_eq!(&v[..], &[[7u8; 10], [1; 10]].concat()[..]);
    }
}
