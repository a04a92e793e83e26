//! The machinery for two cores, behind the model: the [`Pair`] of threads that
//! runs each phase's two halves at once, the [`StepCounter`]s and [`SpinBarrier`]
//! its jobs meet at step by step, [`SharedMut`] for the buffers both threads of
//! a step use, and [`LineAligned`], the allocator that keeps the two threads'
//! halves of a buffer on separate cache lines (installed by the binary and the
//! benches, not by the library). The model's math files use none of this
//! directly: the two-thread passes live in `model::split` and `model::head`.

pub mod alloc;
pub mod pair;
pub mod rows;
pub mod shared;
pub mod steps;
mod sync;

#[cfg(all(test, feature = "loom"))]
mod loom_tests;

pub use alloc::LineAligned;
pub use pair::{Pair, each};
pub use rows::{by_rows, halves, split_rows};
pub use shared::SharedMut;
pub use steps::{Padded, SpinBarrier, StepCounter};
