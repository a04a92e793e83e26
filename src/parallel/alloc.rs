//! The allocator: the system's, with every block of 64 bytes or more starting on
//! a 64-byte cache line. The binary and the benches install it
//! (`#[global_allocator]`); the library does not impose it on its users.
//!
//! Why: the two threads of a [`Pair`](super::Pair) write the two halves of the
//! same buffers (h_t, the recurrent products, their gradients) at every step. A
//! buffer that starts mid-line puts the boundary between the halves inside one
//! cache line that both cores write, and that line then moves between the cores
//! at every step. With the halves split at multiples of 8 values and buffers on
//! a line, no line is written by both (docs/performance.md has what it gained).

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks this large or larger start on a cache line.
pub const LINE: usize = 64;

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
        // SAFETY: `line` keeps the caller's non-zero size and raises only the alignment
        unsafe { System.alloc(line(layout)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`
        unsafe { System.alloc_zeroed(line(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `line(layout)`, as every block here does
        unsafe { System.dealloc(ptr, line(layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        if line(layout).align() == line(new).align() {
            // SAFETY: the block has `line(layout)` and keeps that alignment at its new size
            return unsafe { System.realloc(ptr, line(layout), new_size) };
        }
        // SAFETY: as in `alloc`
        let moved = unsafe { System.alloc(line(new)) };
        if !moved.is_null() {
            // SAFETY: both blocks hold at least the bytes copied and are distinct;
            // the old one is freed with the layout it was allocated with
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                System.dealloc(ptr, line(layout));
            }
        }
        moved
    }
}
