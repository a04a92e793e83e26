//! The dense numerics the model is built from, one concern per file:
//!
//! - [`real`]: the scalar type (f64 or f32) and the precision a run records;
//! - [`activation`]: exp and tanh written to vectorise; [`softmax`]: softmax
//!   and sigmoid over them;
//! - [`dispatch`]: one build per CPU class of each hot loop, picked at run time;
//! - [`vecmat`]: vector-matrix products over a matrix as it is;
//! - [`blocks`] and [`strips`]: two layouts of a matrix, each with its packer
//!   and the kernels that read it straight through;
//! - [`transpose`]: the transposes the packers share;
//! - [`gemm`]: GEMM over row-major slices, for phases over all rows at once.
//!
//! Everything is generic over [`Real`] so the same code trains in f32 and is
//! checked in f64.

pub mod activation;
pub mod blocks;
pub mod dispatch;
pub mod gemm;
pub mod real;
pub mod softmax;
pub mod strips;
pub mod transpose;
pub mod vecmat;

pub use activation::{exp_f32, exp_f64, tanh_f64};
pub use blocks::{block_matmat, block_vecmat, pack_blocks_of, pack_blocks_of_transpose};
pub use dispatch::simd;
pub(crate) use dispatch::{dispatch, madd};
pub use gemm::{a_b, a_bt, add_row, at_b, at_b_rows, gemm, sum_rows_acc};
pub use real::{Precision, Real};
pub use softmax::{sigmoid, softmax_in_place};
pub use strips::{
    TILE_COLS, pack_strips, pack_strips_of, pack_strips_of_transpose, strip_matvec, strip_vecmat,
    strip_vecmat_rows,
};
pub use transpose::transpose;
pub use vecmat::{BLOCK, matvec, vecmat};
