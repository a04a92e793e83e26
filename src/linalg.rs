//! Small dense kernels the model is built from: the scalar type, dot products,
//! matrix-vector products over row-major slices, GEMM, and softmax.
//!
//! Everything is generic over [`Real`] so the same code trains in f32 and is
//! gradient-checked in f64.

use std::fmt::{Debug, Display};
use std::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, LinalgScalar};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The floating-point type a model computes in: f64 (min-char-rnn's precision, the
/// default) or f32 (faster).
pub trait Real:
    num_traits::Float
    + LinalgScalar
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + Serialize
    + DeserializeOwned
    + 'static
{
    /// "f32" or "f64"
    const NAME: &'static str;
    const PRECISION: Precision;
    /// Converts a constant; exact for f64, rounded for f32.
    fn c(x: f64) -> Self;
    fn as_f64(self) -> f64;
    /// A draw from N(0, 1).
    fn randn<R: Rng + ?Sized>(rng: &mut R) -> Self;
    /// Logistic sigmoid for the gate loops; f32 uses a vectorisable approximation.
    fn sigmoid(self) -> Self;
    /// tanh for the gate loops; f32 uses a vectorisable approximation.
    fn tanh_act(self) -> Self;
    /// e^x for softmax, written so that loops over it vectorise.
    fn exp_act(self) -> Self;
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    const PRECISION: Precision = Precision::F32;
    fn c(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn randn<R: Rng + ?Sized>(rng: &mut R) -> Self {
        StandardNormal.sample(rng)
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + exp_f32(-self))
    }
    #[inline(always)]
    fn tanh_act(self) -> Self {
        // tanh x = 2 sigmoid(2x) - 1: absolute error ~1e-7, below f32's resolution near 1
        2.0 / (1.0 + exp_f32(-2.0 * self)) - 1.0
    }
    #[inline(always)]
    fn exp_act(self) -> Self {
        exp_f32(self)
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    const PRECISION: Precision = Precision::F64;
    fn c(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn randn<R: Rng + ?Sized>(rng: &mut R) -> Self {
        StandardNormal.sample(rng)
    }
    // f64 is the reference-matching precision: Cephes' double routines (about 1 ulp)
    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + exp_f64(-self))
    }
    #[inline(always)]
    fn tanh_act(self) -> Self {
        tanh_f64(self)
    }
    #[inline(always)]
    fn exp_act(self) -> Self {
        exp_f64(self)
    }
}

/// e^x for f64 within about 1 ulp on [-708, 709] (0 below, saturating above), without
/// branches or library calls so loops vectorise. Cephes' exp: x = n ln2 + r,
/// e^r = 1 + 2r P(r^2) / (Q(r^2) - r P(r^2)), 2^n built in the exponent bits.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    let (p, q, two_n) = exp_f64_parts(x);
    let e = (1.0 + 2.0 * p / (q - p)) * two_n;
    // 0 below the range (softmax excludes a character with -inf); NaN stays NaN
    if x < -708.0 { 0.0 } else { e }
}

/// The pieces of [`exp_f64`]: e^x = 2^n (q + p) / (q - p) for x in range.
#[inline(always)]
fn exp_f64_parts(x: f64) -> (f64, f64, f64) {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const C1: f64 = 6.931_457_519_531_25e-1;
    const C2: f64 = 1.428_606_820_309_417_2e-6;
    // adding 1.5 * 2^52 rounds to an integer n, which then sits in the low mantissa
    // bits: bits(t) - bits(ROUND) = n, so 2^n is built with integer adds and shifts
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let xc = x.clamp(-708.0, 709.0);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * C1 - n * C2;
    let rr = r * r;
    let p = r * ((1.261_771_930_748_105_9e-4 * rr + 3.029_944_077_074_419_6e-2) * rr + 1.0);
    let q = ((3.001_985_051_386_644_5e-6 * rr + 2.524_483_403_496_841e-3) * rr
        + 2.272_655_482_081_550_3e-1)
        * rr
        + 2.0;
    let two_n = f64::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(1023) << 52);
    (p, q, two_n)
}

/// tanh for f64 within about 1 ulp, branch-free (Cephes' tanh): x + x z P(z) / Q(z)
/// with z = x^2 for |x| < 0.625, 1 - 2 / (e^2|x| + 1) beyond. With e^2|x| =
/// 2^n (q + p) / (q - p) the latter is 1 - 2 (q - p) / (2^n (q + p) + q - p), so
/// both cases end in one division, taken once on whichever numerator and
/// denominator apply (divisions are what a vectorised tanh waits on).
#[inline(always)]
pub fn tanh_f64(x: f64) -> f64 {
    let z = x * x;
    let sp =
        (-9.643_991_794_250_522e-1 * z - 9.928_772_310_019_186e1) * z - 1.614_687_684_417_084_5e3;
    let sq = ((z + 1.128_116_784_916_329_3e2) * z + 2.235_488_390_601_004_6e3) * z
        + 4.844_063_053_251_255e3;
    let (p, q, two_n) = exp_f64_parts(2.0 * x.abs());
    let small = x.abs() < 0.625;
    let num = if small { x * z * sp } else { 2.0 * (q - p) };
    let den = if small { sq } else { two_n * (q + p) + (q - p) };
    let r = num / den;
    if small { x + r } else { (1.0 - r).copysign(x) }
}

/// e^x for f32 within 2 ulp on [-87, 88] (0 below, saturating above, which is all
/// that softmax, sigmoid and tanh need), written without branches or library calls so that a
/// loop over a slice vectorises (libm's expf/tanhf took a fifth of LSTM training).
/// Cephes' expf: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial,
/// 2^n built in the exponent bits.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // adding 1.5 * 2^23 rounds to an integer n held in the low mantissa bits (see exp_f64)
    const ROUND: f32 = 12_582_912.0;
    // keeps 2^n a normal number: e^88 < f32::MAX, e^-87 > the smallest normal
    let xc = x.clamp(-87.0, 88.0);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 0.5)
        * r
        * r
        + r
        + 1.0;
    let two_n = f32::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    let e = p * two_n;
    // 0 below the range (softmax excludes a character with -inf); NaN stays NaN
    if x < -87.0 { 0.0 } else { e }
}

/// The precision a run trains in; recorded in its checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => f32::NAME,
            Precision::F64 => f64::NAME,
        }
    }
}

impl Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether this CPU runs the AVX2 + FMA builds of the hot loops. The crate is
/// compiled for baseline x86-64 (so the binary runs anywhere); each hot loop is
/// compiled a second time with AVX2 and FMA enabled and picked at run time.
/// `CHARRNN_NO_SIMD=1` forces the baseline builds (to compare the two).
#[inline]
pub fn simd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static ON: OnceLock<bool> = OnceLock::new();
        *ON.get_or_init(|| {
            std::env::var_os("CHARRNN_NO_SIMD").is_none()
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// a*b + c, fused when F (one rounding instead of two): [`dispatch`]'s `fma!`, and
/// the inlined helpers of its bodies, which take the body's FUSED.
#[inline(always)]
pub(crate) fn madd<T: Real, const F: bool>(a: T, b: T, c: T) -> T {
    if F { a.mul_add(b, c) } else { a * b + c }
}

/// Defines `pub fn $name` that runs `$body` compiled with AVX2 + FMA when the CPU
/// has them and compiled for baseline x86-64 otherwise. Inside `$body`, `fma!(a, b, c)`
/// is a*b + c, fused where the CPU can ([`madd`]).
macro_rules! dispatch {
    ($(#[$doc:meta])* pub fn $name:ident<T: Real>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name<T: Real>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<T: Real, const FUSED: bool>($($arg: $ty),*) $(-> $ret)? {
                #[allow(unused_macros)]
                macro_rules! fma { ($a:expr, $b:expr, $c:expr) => { $crate::linalg::madd::<T, FUSED>($a, $b, $c) }; }
                $body
            }
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn fast<T: Real>($($arg: $ty),*) $(-> $ret)? {
                    body::<T, true>($($arg),*)
                }
                if $crate::linalg::simd() {
                    // SAFETY: simd() checked that this CPU has AVX2 and FMA
                    return unsafe { fast::<T>($($arg),*) };
                }
            }
            body::<T, false>($($arg),*)
        }
    };
}
pub(crate) use dispatch;

/// Lanes of independent accumulators: float addition is not associative, so the
/// compiler only vectorises a reduction that is written with separate partial sums.
const LANES: usize = 8;

/// sum_i a[i] * b[i], with the same summation order on every CPU path
#[inline(always)]
fn dot_body<T: Real, const FUSED: bool>(a: &[T], b: &[T]) -> T {
    debug_assert_eq!(a.len(), b.len());
    let fma = madd::<T, FUSED>;
    let (ca, ra) = a.as_chunks::<LANES>();
    let (cb, rb) = b.as_chunks::<LANES>();
    let mut acc = [T::zero(); LANES];
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..LANES {
            acc[k] = fma(x[k], y[k], acc[k]);
        }
    }
    let mut tail = T::zero();
    for (&x, &y) in ra.iter().zip(rb) {
        tail = fma(x, y, tail);
    }
    let half = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (half[0] + half[2]) + (half[1] + half[3]) + tail
}

dispatch! {
    /// y = W x for row-major W: (rows, cols), x: (cols), y: (rows).
    pub fn matvec<T: Real>(w: &[T], x: &[T], y: &mut [T]) {
        let cols = x.len();
        debug_assert_eq!(w.len(), cols * y.len());
        for (yi, row) in y.iter_mut().zip(w.chunks_exact(cols)) {
            *yi = dot_body::<T, FUSED>(row, x);
        }
    }
}

/// Output columns a [`vecmat`] block keeps in registers (8 AVX vectors of f64).
pub const BLOCK: usize = 32;

/// sum_j x[j] M[j, c] for one column of a narrow tail, `col` holding M[0, c] with
/// rows `stride` apart: the rows split over four independent accumulators (so the
/// additions do not wait on each other), added as (a0 + a1) + (a2 + a3), then the
/// last x.len() mod 4 rows in order ([`rest_rows`]). The tails of [`vecmat`] and
/// [`block_vecmat`] both sum this way, which keeps their bits the same.
#[inline(always)]
fn column_body<T: Real, const FUSED: bool>(x: &[T], col: &[T], stride: usize) -> T {
    let fma = madd::<T, FUSED>;
    let mut acc = [T::zero(); 4];
    let quads = x.as_chunks::<4>().0;
    for (q, xs) in quads.iter().enumerate() {
        for r in 0..4 {
            acc[r] = fma(xs[r], col[(4 * q + r) * stride], acc[r]);
        }
    }
    rest_rows::<T, FUSED>(x, col, stride, (acc[0] + acc[1]) + (acc[2] + acc[3]))
}

/// `sum` + the last rows of [`column_body`]: the x.len() mod 4 values of x after
/// its groups of four, against the same rows of the column.
#[inline(always)]
fn rest_rows<T: Real, const FUSED: bool>(x: &[T], col: &[T], stride: usize, mut sum: T) -> T {
    let first = x.len() / 4 * 4;
    for (j, &xj) in x.iter().enumerate().skip(first) {
        sum = madd::<T, FUSED>(xj, col[j * stride], sum);
    }
    sum
}

dispatch! {
    /// y = x M, or y += x M with `accumulate`, for row-major M: (rows, cols),
    /// x: (rows), y: (cols). Each block of 32 outputs stays in registers while
    /// every row of M streams past, so there is no reduction and no store per row.
    pub fn vecmat<T: Real>(x: &[T], m: &[T], y: &mut [T], accumulate: bool) {
        let cols = y.len();
        debug_assert_eq!(m.len(), cols * x.len());
        let mut c0 = 0;
        while c0 + BLOCK <= cols {
            let mut acc = [T::zero(); BLOCK];
            if accumulate {
                acc.copy_from_slice(&y[c0..c0 + BLOCK]);
            }
            for (&xj, row) in x.iter().zip(m.chunks_exact(cols)) {
                let row: &[T; BLOCK] = row[c0..c0 + BLOCK].try_into().expect("BLOCK columns");
                for k in 0..BLOCK {
                    acc[k] = fma!(xj, row[k], acc[k]);
                }
            }
            y[c0..c0 + BLOCK].copy_from_slice(&acc);
            c0 += BLOCK;
        }
        // narrow tail (fewer than 32 columns): one column at a time
        for c in c0..cols {
            let sum = column_body::<T, FUSED>(x, &m[c..], cols);
            y[c] = if accumulate { y[c] + sum } else { sum };
        }
    }
}

/// Lays out columns `cols` of a row-major (k, n) matrix `m` in blocks for
/// [`block_vecmat`] (all of them for the whole matrix): each run of [`BLOCK`]
/// columns becomes k rows of 32 contiguous values, and the last n mod 32 columns
/// k rows of that many. When `cols` starts on a block boundary this is the same
/// as that part of the whole matrix's layout.
pub fn pack_blocks_of<T: Real>(m: &[T], k: usize, n: usize, cols: Range<usize>, out: &mut [T]) {
    let w = cols.len();
    assert!(m.len() == k * n && cols.end <= n && out.len() == k * w);
    let full = w / BLOCK * BLOCK;
    let (blocks, tail) = out.split_at_mut(full * k);
    for (b, block) in blocks.chunks_exact_mut(k * BLOCK).enumerate() {
        let c0 = cols.start + b * BLOCK;
        // whole arrays, which copy inline (a slice copy of 32 values is a call)
        for (dst, row) in block
            .as_chunks_mut::<BLOCK>()
            .0
            .iter_mut()
            .zip(m.chunks_exact(n))
        {
            *dst = *<&[T; BLOCK]>::try_from(&row[c0..c0 + BLOCK]).expect("a block");
        }
    }
    if w > full {
        for (dst, row) in tail.chunks_exact_mut(w - full).zip(m.chunks_exact(n)) {
            dst.copy_from_slice(&row[cols.start + full..cols.end]);
        }
    }
}

/// Lays out M = m^T for a row-major (n, k) matrix `m` in blocks for
/// [`block_vecmat`], reading m straight through.
pub fn pack_blocks_of_transpose<T: Real>(m: &[T], n: usize, k: usize, out: &mut [T]) {
    assert!(m.len() == k * n && out.len() == k * n);
    let full = n / BLOCK * BLOCK;
    let (blocks, tail) = out.split_at_mut(full * k);
    // a block is rows 32b.. of m transposed
    for (block, rows) in blocks
        .chunks_exact_mut(k * BLOCK)
        .zip(m.chunks_exact(k * BLOCK))
    {
        transpose_run::<T, BLOCK>(rows, k, block);
    }
    let w = n - full;
    for (c, row) in m.chunks_exact(k).enumerate().skip(full) {
        for (j, &v) in row.iter().enumerate() {
            tail[j * w + c - full] = v;
        }
    }
}

/// `out` (k, W) = `rows`^T for W rows of k values, in 4 x 4 tiles: each read as
/// four runs of the rows and written as four runs of `out` (the compiler turns
/// the tile into shuffles; value by value, every store went to another cache
/// line: 10k values took 5.2 us instead of 2.8).
fn transpose_run<T: Real, const W: usize>(rows: &[T], k: usize, out: &mut [T]) {
    debug_assert!(rows.len() == W * k && out.len() == W * k);
    let quads = k / 4 * 4;
    // in runs of 64 rows of `out` (8 KB at W = 16), which stay in L1 while the
    // groups of four rows fill them (a 1 MB half of Wh: 47 -> 40 us)
    for jb in (0..quads).step_by(64) {
        for i0 in (0..W).step_by(4) {
            let r: [&[T]; 4] = std::array::from_fn(|q| &rows[(i0 + q) * k..(i0 + q + 1) * k]);
            for j0 in (jb..(jb + 64).min(quads)).step_by(4) {
                let tile: [[T; 4]; 4] =
                    std::array::from_fn(|q| r[q][j0..j0 + 4].try_into().expect("4 values"));
                let columns: [[T; 4]; 4] =
                    std::array::from_fn(|jj| std::array::from_fn(|q| tile[q][jj]));
                for (jj, column) in columns.iter().enumerate() {
                    let at = (j0 + jj) * W + i0;
                    out[at..at + 4].copy_from_slice(column);
                }
            }
        }
    }
    for j in quads..k {
        for i in 0..W {
            out[j * W + i] = rows[i * k + j];
        }
    }
}

dispatch! {
    /// [`vecmat`] over M laid out by [`pack_blocks_of`]: y = x M, or y += x M with
    /// `accumulate`, with the same bits. Each block of M is read straight through,
    /// where the row-major M would be read in 256-byte pieces 8 * cols bytes apart;
    /// the narrow tail is read 4 columns at a time instead of one.
    pub fn block_vecmat<T: Real>(x: &[T], packed: &[T], y: &mut [T], accumulate: bool) {
        let (k, n) = (x.len(), y.len());
        debug_assert_eq!(packed.len(), k * n);
        let full = n / BLOCK * BLOCK;
        let (blocks, tail) = packed.split_at(full * k);
        for (block, out) in blocks.chunks_exact(k * BLOCK).zip(y.chunks_exact_mut(BLOCK)) {
            let mut acc = [T::zero(); BLOCK];
            if accumulate {
                acc.copy_from_slice(out);
            }
            for (&xj, row) in x.iter().zip(block.as_chunks::<BLOCK>().0) {
                for c in 0..BLOCK {
                    acc[c] = fma!(xj, row[c], acc[c]);
                }
            }
            out.copy_from_slice(&acc);
        }
        // the tail summed as vecmat sums it (see column_body), four columns at once
        // and then the last n mod 4 one at a time
        let w = n - full;
        let quads = x.as_chunks::<4>().0;
        let finish = |y: &mut [T], c: usize, sum: T| {
            let yc = &mut y[full + c];
            *yc = if accumulate { *yc + sum } else { sum };
        };
        let mut c = 0;
        while c + 4 <= w {
            let mut acc = [[T::zero(); 4]; 4];
            for (q, xs) in quads.iter().enumerate() {
                for r in 0..4 {
                    let at = (4 * q + r) * w + c;
                    let row: &[T; 4] = tail[at..at + 4].try_into().expect("4 columns");
                    for i in 0..4 {
                        acc[r][i] = fma!(xs[r], row[i], acc[r][i]);
                    }
                }
            }
            let sums: [T; 4] = std::array::from_fn(|i| (acc[0][i] + acc[1][i]) + (acc[2][i] + acc[3][i]));
            for (i, sum) in sums.into_iter().enumerate() {
                let sum = rest_rows::<T, FUSED>(x, &tail[c + i..], w, sum);
                finish(y, c + i, sum);
            }
            c += 4;
        }
        for c in c..w {
            finish(y, c, column_body::<T, FUSED>(x, &tail[c..], w));
        }
    }
}

/// Rows of X a [`block_matmat`] tile multiplies at once, and the columns of a
/// block it keeps for each: 2 x 16 f64 is 8 of AVX2's 16 registers, which leaves
/// room for the 4 vectors of M they share (3 rows spill).
const MAT_ROWS: usize = 2;
const MAT_COLS: usize = BLOCK / 2;
// the tile's loop below names its two rows
const _: () = assert!(MAT_ROWS == 2);

dispatch! {
    /// Y = X M for M laid out by [`pack_blocks_of`], X (rows, k), Y (rows, n): each
    /// row with the bits [`block_vecmat`] gives it (every output sums its k products
    /// in the same order), but a load of M feeds [`MAT_ROWS`] rows.
    pub fn block_matmat<T: Real>(xs: &[T], packed: &[T], ys: &mut [T], n: usize) {
        let k = packed.len() / n;
        debug_assert!(packed.len() == k * n && xs.len() / k == ys.len() / n);
        let full = n / BLOCK * BLOCK;
        let (blocks, tail) = packed.split_at(full * k);
        let (x_groups, x_rest) = xs.split_at(xs.len() / (MAT_ROWS * k) * MAT_ROWS * k);
        let (y_groups, y_rest) = ys.split_at_mut(x_groups.len() / k * n);
        for (b, block) in blocks.chunks_exact(k * BLOCK).enumerate() {
            for half in 0..BLOCK / MAT_COLS {
                let cols = b * BLOCK + half * MAT_COLS;
                for (x, y) in x_groups.chunks_exact(MAT_ROWS * k).zip(y_groups.chunks_exact_mut(MAT_ROWS * n)) {
                    let (x0, x1) = x.split_at(k);
                    let mut acc = [[T::zero(); MAT_COLS]; MAT_ROWS];
                    for ((row, &x0), &x1) in block.as_chunks::<BLOCK>().0.iter().zip(x0).zip(x1) {
                        let row: &[T; MAT_COLS] = row[half * MAT_COLS..][..MAT_COLS].try_into().expect("half a block");
                        for c in 0..MAT_COLS {
                            acc[0][c] = fma!(x0, row[c], acc[0][c]);
                            acc[1][c] = fma!(x1, row[c], acc[1][c]);
                        }
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        y[r * n + cols..][..MAT_COLS].copy_from_slice(acc);
                    }
                }
            }
        }
        // the rows left over, and every row's tail: block_vecmat itself (the tail
        // of a block layout is a block layout of its own)
        for (x, y) in x_rest.chunks_exact(k).zip(y_rest.chunks_exact_mut(n)) {
            block_vecmat(x, packed, y, false);
        }
        if full < n {
            for (x, y) in x_groups.chunks_exact(k).zip(y_groups.chunks_exact_mut(n)) {
                block_vecmat(x, tail, &mut y[full..], false);
            }
        }
    }
}

/// Rows of X and columns of Y a [`strip_vecmat`] tile keeps in registers:
/// 4 x 16 f32 is 8 AVX vectors.
const TILE_ROWS: usize = 4;
pub const TILE_COLS: usize = 16;

/// Lays out a (k, n) matrix, given by `at(row, col)`, as n/W strips of W columns,
/// each strip k rows of W contiguous values, for [`strip_vecmat`] (W = 16). Row-major rows of 1 or 4 KB would put a strip's rows in a
/// handful of cache sets, where they evict each other; strips are read straight
/// through. n must be a multiple of W.
pub fn pack_strips<T: Real>(
    width: usize,
    k: usize,
    n: usize,
    at: impl Fn(usize, usize) -> T,
    out: &mut [T],
) {
    assert!(n.is_multiple_of(width) && out.len() == k * n);
    for (s, strip) in out.chunks_exact_mut(k * width).enumerate() {
        for (kk, row) in strip.chunks_exact_mut(width).enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = at(kk, s * width + c);
            }
        }
    }
}

/// [`pack_strips`] of a row-major (k, n) matrix `m` itself: a strip's rows are
/// 16-value pieces of m's rows, copied whole. `out` receives the strips from
/// `first` on, as many as it holds (all n/16 from 0 for the whole matrix).
pub fn pack_strips_of<T: Real>(m: &[T], k: usize, n: usize, first: usize, out: &mut [T]) {
    assert!(
        n.is_multiple_of(TILE_COLS) && m.len() == k * n && out.len().is_multiple_of(k * TILE_COLS)
    );
    assert!(
        first * TILE_COLS * k + out.len() <= k * n,
        "strips beyond the matrix"
    );
    for (s, strip) in out.chunks_exact_mut(k * TILE_COLS).enumerate() {
        let c0 = (first + s) * TILE_COLS;
        // whole arrays, which copy inline (a slice copy is a call)
        for (row, piece) in strip
            .as_chunks_mut::<TILE_COLS>()
            .0
            .iter_mut()
            .zip(m.chunks_exact(n))
        {
            *row = *<&[T; TILE_COLS]>::try_from(&piece[c0..c0 + TILE_COLS]).expect("a strip's row");
        }
    }
}

/// [`pack_strips`] of M = m^T for a row-major (n, k) matrix `m`: strip s
/// interleaves rows 16s..16s+16 of m, each read straight through (a gather
/// through M's columns would stride across all of m for every value).
pub fn pack_strips_of_transpose<T: Real>(m: &[T], n: usize, k: usize, out: &mut [T]) {
    assert!(n.is_multiple_of(TILE_COLS) && m.len() == k * n && out.len() == k * n);
    for (strip, rows) in out
        .chunks_exact_mut(k * TILE_COLS)
        .zip(m.chunks_exact(k * TILE_COLS))
    {
        transpose_run::<T, TILE_COLS>(rows, k, strip);
    }
}

/// acc += x R for the rows R of one strip (x.len() of them): even and odd rows
/// into separate sums, added at the end (one set of 16 lanes would wait on the
/// FMA latency at every row).
#[inline(always)]
fn strip_rows<T: Real, const FUSED: bool>(
    x: &[T],
    rows: &[[T; TILE_COLS]],
    acc: &mut [T; TILE_COLS],
) {
    let fma = madd::<T, FUSED>;
    let mut odd = [T::zero(); TILE_COLS];
    let (pairs, last) = x.as_chunks::<2>();
    for (a, b) in pairs.iter().zip(rows.as_chunks::<2>().0) {
        for c in 0..TILE_COLS {
            acc[c] = fma(a[0], b[0][c], acc[c]);
            odd[c] = fma(a[1], b[1][c], odd[c]);
        }
    }
    if let [a] = last {
        let b = &rows[x.len() - 1];
        for c in 0..TILE_COLS {
            acc[c] = fma(*a, b[c], acc[c]);
        }
    }
    for c in 0..TILE_COLS {
        acc[c] = acc[c] + odd[c];
    }
}

dispatch! {
    /// Y = X M (or Y += X M) for row-major X: (m, k), Y: (m, n) and M packed by
    /// [`pack_strips`]: the batched form of [`vecmat`], for the recurrence of a few
    /// streams. A 4 x 16 tile of Y stays in registers while the matching strip of M
    /// streams past, once per group of 4 rows; M is packed once per chunk, not at
    /// every step as a GEMM library would.
    pub fn strip_vecmat<T: Real>(x: &[T], packed: &[T], y: &mut [T], rows: usize, accumulate: bool) {
        let k = x.len() / rows;
        let n = y.len() / rows;
        debug_assert_eq!(packed.len(), k * n);
        for (s, strip) in packed.chunks_exact(k * TILE_COLS).enumerate() {
            let c0 = s * TILE_COLS;
            let mut r0 = 0;
            while r0 + TILE_ROWS <= rows {
                let xs: [&[T]; TILE_ROWS] = std::array::from_fn(|r| &x[(r0 + r) * k..(r0 + r + 1) * k]);
                let mut acc = [[T::zero(); TILE_COLS]; TILE_ROWS];
                if accumulate {
                    for (r, acc) in acc.iter_mut().enumerate() {
                        acc.copy_from_slice(&y[(r0 + r) * n + c0..(r0 + r) * n + c0 + TILE_COLS]);
                    }
                }
                for (i, b) in strip.as_chunks::<TILE_COLS>().0.iter().enumerate() {
                    for r in 0..TILE_ROWS {
                        let a = xs[r][i];
                        for c in 0..TILE_COLS {
                            acc[r][c] = fma!(a, b[c], acc[r][c]);
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    y[(r0 + r) * n + c0..(r0 + r) * n + c0 + TILE_COLS].copy_from_slice(acc);
                }
                r0 += TILE_ROWS;
            }
            for r in r0..rows {
                let mut acc = [T::zero(); TILE_COLS];
                if accumulate {
                    acc.copy_from_slice(&y[r * n + c0..r * n + c0 + TILE_COLS]);
                }
                strip_rows::<T, FUSED>(&x[r * k..(r + 1) * k], strip.as_chunks::<TILE_COLS>().0, &mut acc);
                y[r * n + c0..r * n + c0 + TILE_COLS].copy_from_slice(&acc);
            }
        }
    }
}

dispatch! {
    /// y = x M[k0.., :] for one stream: M (k, n) packed by [`pack_strips`], x the
    /// values for its rows k0..k0 + x.len(), y: (n). Each column's sum is the one
    /// [`strip_vecmat`] takes over those rows alone, so a product split into parts
    /// over rows, added in a fixed way, has the same bits on any thread.
    ///
    /// `descending` takes the strips from the last: a recurrence alternates the
    /// order from step to step, so that each step starts on the strips the last
    /// one read most recently, still in L2 when M is about L2's size (a cyclic
    /// walk over more than the cache evicts each line just before its reuse).
    /// The order changes no sum.
    pub fn strip_vecmat_rows<T: Real>(x: &[T], packed: &[T], k0: usize, y: &mut [T], descending: bool) {
        let n = y.len();
        let k = packed.len() / n;
        debug_assert!(k0 + x.len() <= k && packed.len() == k * n);
        let (ys, tail) = y.as_chunks_mut::<TILE_COLS>();
        debug_assert!(tail.is_empty(), "n is a multiple of the strip width");
        for s in 0..ys.len() {
            let s = if descending { ys.len() - 1 - s } else { s };
            let rows = &packed[s * k * TILE_COLS..(s + 1) * k * TILE_COLS];
            let rows = &rows.as_chunks::<TILE_COLS>().0[k0..k0 + x.len()];
            let y = &mut ys[s];
            *y = [T::zero(); TILE_COLS];
            strip_rows::<T, FUSED>(x, rows, y);
        }
    }
}

/// Rows of y that [`strip_matvec`] keeps partial sums for at once (8 KB in f64).
const MATVEC_ROWS: usize = 128;

dispatch! {
    /// y = (M x)[k0..k0 + y.len()] for M: (k, n) packed by [`pack_strips`],
    /// n = x.len(): the other product through the strips that [`strip_vecmat`]
    /// reads, so one layout of Wh^T serves the forward and the backward
    /// recurrence. Each strip is read straight through, 128 rows at a time, into
    /// 8 lanes of partial sums per row (they stay in L1); a row's lanes are added
    /// in a fixed tree at the end, so a row's value does not depend on `k0`.
    /// `descending` takes the blocks of 128 rows from the last, as in
    /// [`strip_vecmat_rows`].
    pub fn strip_matvec<T: Real>(packed: &[T], x: &[T], k0: usize, y: &mut [T], descending: bool) {
        let k = packed.len() / x.len();
        debug_assert!(packed.len() == k * x.len() && k0 + y.len() <= k);
        let rows = packed.as_chunks::<TILE_COLS>().0;
        let (xs, tail) = x.as_chunks::<TILE_COLS>();
        debug_assert!(tail.is_empty(), "n is a multiple of the strip width");
        let mut acc = [[T::zero(); 8]; MATVEC_ROWS];
        // blocks of rows in either order (no sum depends on it; see `descending`)
        let blocks = y.len().div_ceil(MATVEC_ROWS);
        for i in 0..blocks {
            let j = if descending { blocks - 1 - i } else { i };
            let ys = j * MATVEC_ROWS..((j + 1) * MATVEC_ROWS).min(y.len());
            let r0 = k0 + ys.start;
            let y = &mut y[ys];
            // the first strip's products start the sums (no zeroing per block)
            let mut strips = rows.chunks_exact(k).zip(xs);
            if let Some((strip, xc)) = strips.next() {
                for (a, m) in acc.iter_mut().zip(&strip[r0..r0 + y.len()]) {
                    for c in 0..8 {
                        a[c] = fma!(m[c + 8], xc[c + 8], m[c] * xc[c]);
                    }
                }
            }
            for (strip, xc) in strips {
                for (a, m) in acc.iter_mut().zip(&strip[r0..r0 + y.len()]) {
                    for c in 0..8 {
                        a[c] = fma!(m[c], xc[c], a[c]);
                    }
                    for c in 0..8 {
                        a[c] = fma!(m[c + 8], xc[c + 8], a[c]);
                    }
                }
            }
            for (y, a) in y.iter_mut().zip(&acc) {
                let q: [T; 4] = std::array::from_fn(|c| a[c] + a[c + 4]);
                *y = (q[0] + q[2]) + (q[1] + q[3]);
            }
        }
    }
}

/// dst = src^T for row-major src: (rows, cols), dst: (cols, rows).
pub fn transpose<T: Real>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    debug_assert_eq!(src.len(), rows * cols);
    for (i, row) in src.chunks_exact(cols).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            dst[j * rows + i] = v;
        }
    }
}

/// c = alpha * a b + beta * c (matrixmultiply's GEMM; any strides, so `a.t()` is free).
pub fn gemm<T: Real>(
    alpha: T,
    a: &ArrayView2<T>,
    b: &ArrayView2<T>,
    beta: T,
    c: &mut ArrayViewMut2<T>,
) {
    general_mat_mul(alpha, a, b, beta, c);
}

fn view<T>(s: &[T], rows: usize, cols: usize) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((rows, cols), s).expect("slice holds rows * cols values")
}

fn view_mut<T>(s: &mut [T], rows: usize, cols: usize) -> ArrayViewMut2<'_, T> {
    ArrayViewMut2::from_shape((rows, cols), s).expect("slice holds rows * cols values")
}

/// C = A B^T + beta C, all row-major: A (m, k), B (n, k), C (m, n).
/// One row (m = 1) is a matrix-vector product.
pub fn a_bt<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize, beta: T) {
    if m == 1 && beta == T::zero() {
        matvec(b, a, c);
    } else {
        gemm(
            T::one(),
            &view(a, m, k),
            &view(b, n, k).t(),
            beta,
            &mut view_mut(c, m, n),
        );
    }
}

/// C = A B + beta C, all row-major: A (m, k), B (k, n), C (m, n).
pub fn a_b<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize, beta: T) {
    if m == 1 && (beta == T::zero() || beta == T::one()) {
        if beta == T::zero() {
            c.fill(T::zero());
        }
        vecmat(a, b, c, true);
    } else {
        gemm(
            T::one(),
            &view(a, m, k),
            &view(b, k, n),
            beta,
            &mut view_mut(c, m, n),
        );
    }
}

/// C = A^T B + beta C, all row-major: A (k, m), B (k, n), C (m, n).
pub fn at_b<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize, beta: T) {
    at_b_rows(a, b, c, m, k, n, 0..m, beta);
}

/// Rows `rows` of C = A^T B + beta C, with `c` holding only those rows: the
/// product of A's columns `rows` (a strided view, nothing copied) with B. Each
/// row comes out exactly as from [`at_b`] over all of C.
#[allow(clippy::too_many_arguments)]
pub fn at_b_rows<T: Real>(
    a: &[T],
    b: &[T],
    c: &mut [T],
    m: usize,
    k: usize,
    n: usize,
    rows: Range<usize>,
    beta: T,
) {
    let at = view(a, k, m);
    let at = at.slice(ndarray::s![.., rows.clone()]);
    gemm(
        T::one(),
        &at.t(),
        &view(b, k, n),
        beta,
        &mut view_mut(c, rows.len(), n),
    );
}

/// Adds `row` to every row of the row-major matrix `m`.
pub fn add_row<T: Real>(m: &mut [T], row: &[T]) {
    for r in m.chunks_exact_mut(row.len()) {
        for (x, &b) in r.iter_mut().zip(row) {
            *x = *x + b;
        }
    }
}

/// acc += the sum of the rows of the row-major matrix `m`.
pub fn sum_rows_acc<T: Real>(m: &[T], acc: &mut [T]) {
    for r in m.chunks_exact(acc.len()) {
        for (a, &x) in acc.iter_mut().zip(r) {
            *a = *a + x;
        }
    }
}

/// Logistic sigmoid (see [`Real::sigmoid`]).
#[inline(always)]
pub fn sigmoid<T: Real>(x: T) -> T {
    x.sigmoid()
}

/// Turns logits into probabilities in place and returns ln(sum_j exp(logits_j)),
/// so that -ln p[k] = lse - logits[k] can be formed without taking the log of a
/// probability that may have underflowed to zero.
pub fn softmax_in_place<T: Real>(v: &mut [T]) -> f64 {
    let max = v.iter().copied().fold(T::neg_infinity(), T::max);
    for x in v.iter_mut() {
        *x = (*x - max).exp_act();
    }
    let sum = v.iter().fold(T::zero(), |s, &x| s + x);
    let inv = T::one() / sum;
    for x in v.iter_mut() {
        *x = *x * inv;
    }
    max.as_f64() + sum.as_f64().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_for_lengths_around_the_lane_width() {
        for n in [0, 1, 7, 8, 9, 17, 100] {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(
                (dot_body::<f64, false>(&a, &b) - naive).abs() < 1e-12,
                "n={n}"
            );
        }
    }

    #[test]
    fn vecmat_blocks_and_tails_agree_with_ndarray_on_both_paths() {
        for (rows, cols) in [(3, 5), (7, 32), (100, 100), (9, 65), (4, 70)] {
            let m = ndarray::Array2::from_shape_fn((rows, cols), |(i, j)| {
                ((i * 7 + j * 3) % 11) as f64 - 5.0
            });
            let x: Vec<f64> = (0..rows).map(|i| i as f64 * 0.25 - 1.0).collect();
            let want = ndarray::arr1(&x).dot(&m);
            let mut y = vec![1.0; cols];
            vecmat(&x, m.as_slice().unwrap(), &mut y, true);
            assert_eq!(y, (&want + 1.0).to_vec(), "{rows}x{cols} accumulate");
            vecmat(&x, m.as_slice().unwrap(), &mut y, false);
            assert_eq!(y, want.to_vec(), "{rows}x{cols}");
            let mut t = vec![0.0; rows * cols];
            transpose(m.as_slice().unwrap(), rows, cols, &mut t);
            assert_eq!(t, m.t().iter().copied().collect::<Vec<_>>());
        }
    }

    #[test]
    fn block_vecmat_has_the_bits_of_vecmat() {
        // irrational-looking values, so a change of summation order changes bits
        let val = |i: usize| ((i as f64 * 0.618_034).fract() - 0.5) * 1.7;
        for (k, n) in [
            (1, 5),
            (3, 4),
            (7, 32),
            (100, 100),
            (9, 65),
            (13, 70),
            (6, 39),
            (101, 3),
        ] {
            let m: Vec<f64> = (0..k * n).map(val).collect();
            let x: Vec<f64> = (0..k).map(|i| val(i + 7919)).collect();
            let mut packed = vec![f64::NAN; k * n];
            pack_blocks_of(&m, k, n, 0..n, &mut packed);
            // the columns from block 1 on are that part of the whole layout
            if n > BLOCK {
                let mut part = vec![f64::NAN; k * (n - BLOCK)];
                pack_blocks_of(&m, k, n, BLOCK..n, &mut part);
                assert_eq!(part, packed[k * BLOCK..], "{k}x{n} from block 1");
            }
            let (mut want, mut got) = (vec![0.25; n], vec![0.25; n]);
            vecmat(&x, &m, &mut want, true);
            block_vecmat(&x, &packed, &mut got, true);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{k}x{n} accumulate"
            );
            vecmat(&x, &m, &mut want, false);
            block_vecmat(&x, &packed, &mut got, false);
            assert_eq!(got, want, "{k}x{n}");
            // rows at once: 1 to 7 rows cover whole tiles and a leftover row
            for rows in 1..=7 {
                let xs: Vec<f64> = (0..rows * k).map(|i| val(i + 104_729)).collect();
                let mut want = vec![f64::NAN; rows * n];
                for (x, y) in xs.chunks_exact(k).zip(want.chunks_exact_mut(n)) {
                    block_vecmat(x, &packed, y, false);
                }
                let mut got = vec![f64::NAN; rows * n];
                block_matmat(&xs, &packed, &mut got, n);
                let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{rows} rows of {k}x{n}");
            }
            // the same layout from m^T (n, k)
            let mut mt = vec![0.0; k * n];
            transpose(&m, k, n, &mut mt);
            let mut from_t = vec![f64::NAN; k * n];
            pack_blocks_of_transpose(&mt, n, k, &mut from_t);
            assert_eq!(from_t, packed, "{k}x{n} from the transpose");
        }
    }

    #[test]
    fn strip_vecmat_agrees_with_ndarray() {
        for (m, k, n) in [
            (1, 3, 16),
            (4, 7, 16),
            (5, 9, 32),
            (16, 20, 64),
            (7, 300, 48),
        ] {
            let x =
                ndarray::Array2::from_shape_fn((m, k), |(i, j)| ((i * 5 + j * 3) % 7) as f64 - 3.0);
            let b = ndarray::Array2::from_shape_fn((k, n), |(i, j)| {
                ((i * 2 + j) % 9) as f64 * 0.5 - 2.0
            });
            let mut packed = vec![0.0; k * n];
            pack_strips(TILE_COLS, k, n, |i, j| b[[i, j]], &mut packed);
            let mut y = vec![f64::NAN; m * n];
            strip_vecmat(x.as_slice().unwrap(), &packed, &mut y, m, false);
            let want = x.dot(&b);
            assert_eq!(y, want.iter().copied().collect::<Vec<_>>(), "{m}x{k}x{n}");
            strip_vecmat(x.as_slice().unwrap(), &packed, &mut y, m, true);
            assert_eq!(
                y,
                (&want * 2.0).iter().copied().collect::<Vec<_>>(),
                "{m}x{k}x{n} accumulate"
            );
        }
    }

    #[test]
    fn strip_matvec_agrees_with_ndarray() {
        // k odd leaves one row after the pairs
        for (k, n) in [(1, 16), (2, 16), (7, 32), (33, 48), (300, 64)] {
            let m = ndarray::Array2::from_shape_fn((k, n), |(i, j)| {
                ((i * 2 + j) % 9) as f64 * 0.5 - 2.0
            });
            let x = ndarray::Array1::from_shape_fn(n, |j| ((j * 3) % 7) as f64 - 3.0);
            let mut packed = vec![0.0; k * n];
            pack_strips(TILE_COLS, k, n, |i, j| m[[i, j]], &mut packed);
            let mut y = vec![f64::NAN; k];
            strip_matvec(&packed, x.as_slice().unwrap(), 0, &mut y, false);
            assert_eq!(y, m.dot(&x).to_vec(), "{k}x{n}");
        }
    }

    /// The products over parts of a strip layout that a split recurrence takes
    /// (runs of rows of M x, sums over runs of M's rows) have the bits of the
    /// whole, for values that round, in either order of traversal.
    #[test]
    fn strip_products_in_parts_have_the_bits_of_the_whole() {
        for (k, n) in [(7, 32), (33, 48), (300, 64)] {
            let m: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut packed = vec![0.0; k * n];
            pack_strips(TILE_COLS, k, n, |i, j| m[i * n + j], &mut packed);
            let x: Vec<f64> = (0..n).map(|j| (j as f64 * 1.3).cos()).collect();
            let mut whole = vec![0.0; k];
            strip_matvec(&packed, &x, 0, &mut whole, false);
            // (0..300: two blocks of 128 rows and a short one)
            for rows in [0..k / 3, k / 3..k - k / 4, k - 1..k, 0..k] {
                for descending in [false, true] {
                    let mut part = vec![f64::NAN; rows.len()];
                    strip_matvec(&packed, &x, rows.start, &mut part, descending);
                    assert!(
                        part == whole[rows.clone()],
                        "{k}x{n} rows {rows:?} of M x, descending {descending}"
                    );
                }
            }
            // x M over all rows is strip_vecmat's; over parts, close to it
            let xk: Vec<f64> = (0..k).map(|i| (i as f64 * 0.71).sin()).collect();
            let (mut want, mut got, mut part) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            strip_vecmat(&xk, &packed, &mut want, 1, false);
            for descending in [false, true] {
                strip_vecmat_rows(&xk, &packed, 0, &mut got, descending);
                assert!(got == want, "{k}x{n}: all rows, descending {descending}");
            }
            let mid = k / 2;
            strip_vecmat_rows(&xk[..mid], &packed, 0, &mut got, true);
            strip_vecmat_rows(&xk[mid..], &packed, mid, &mut part, false);
            for ((a, b), w) in got.iter().zip(&part).zip(&want) {
                assert!((a + b - w).abs() < 1e-12, "{k}x{n}: {a} + {b} against {w}");
            }
        }
    }

    #[test]
    fn fast_packers_match_pack_strips() {
        // k = 150: two runs of 64 rows of the transpose, a shorter one and a tail
        for (k, n) in [(1, 16), (7, 32), (33, 48), (150, 32)] {
            let m: Vec<f64> = (0..k * n).map(|i| (i * 7 % 13) as f64 - 6.0).collect();
            let (mut want, mut got) = (vec![0.0; k * n], vec![f64::NAN; k * n]);
            pack_strips(TILE_COLS, k, n, |i, j| m[i * n + j], &mut want);
            pack_strips_of(&m, k, n, 0, &mut got);
            assert_eq!(got, want, "{k}x{n}");
            // from strip 1 on, into a buffer that holds only those
            let rest = k * TILE_COLS;
            let mut tail = vec![f64::NAN; k * n - rest];
            pack_strips_of(&m, k, n, 1, &mut tail);
            assert_eq!(tail, want[rest..], "{k}x{n} from strip 1");
            // m read as (n, k), packed as its transpose (k, n)
            pack_strips(TILE_COLS, k, n, |i, j| m[j * k + i], &mut want);
            pack_strips_of_transpose(&m, n, k, &mut got);
            assert_eq!(got, want, "{n}x{k} transposed");
        }
    }

    #[test]
    fn matvec_and_transpose_agree_with_ndarray() {
        let w = ndarray::Array2::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f64 - 4.0);
        let x = [1.0, -2.0, 0.5];
        let mut y = [0.0; 5];
        matvec(w.as_slice().unwrap(), &x, &mut y);
        assert_eq!(y.to_vec(), w.dot(&ndarray::arr1(&x)).to_vec());
        let u = [1.0, 0.0, -1.0, 2.0, 3.0];
        let mut z = [9.0; 3];
        vecmat(&u, w.as_slice().unwrap(), &mut z, false);
        assert_eq!(z.to_vec(), w.t().dot(&ndarray::arr1(&u)).to_vec());
    }

    #[test]
    fn gemm_helpers_agree_with_ndarray_dot() {
        let a = ndarray::Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64 * 0.5 - 2.0);
        let b = ndarray::Array2::from_shape_fn((5, 4), |(i, j)| ((i + 2 * j) % 7) as f64 - 3.0);
        let mut c = vec![1.0; 15];
        a_bt(
            a.as_slice().unwrap(),
            b.as_slice().unwrap(),
            &mut c,
            3,
            4,
            5,
            1.0,
        );
        let want = a.dot(&b.t()) + 1.0;
        assert_eq!(c, want.iter().copied().collect::<Vec<_>>());
        let bt = b.t().as_standard_layout().into_owned(); // (4, 5)
        let mut c = vec![0.0; 15];
        a_b(
            a.as_slice().unwrap(),
            bt.as_slice().unwrap(),
            &mut c,
            3,
            4,
            5,
            0.0,
        );
        assert_eq!(c, a.dot(&bt).iter().copied().collect::<Vec<_>>());
        let mut c = vec![0.0; 20]; // A^T B with A (3, 4)... as (k=3, m=4), B (3, n=5)
        let b3 = ndarray::Array2::from_shape_fn((3, 5), |(i, j)| (i * j) as f64 + 1.0);
        at_b(
            a.as_slice().unwrap(),
            b3.as_slice().unwrap(),
            &mut c,
            4,
            3,
            5,
            0.0,
        );
        assert_eq!(c, a.t().dot(&b3).iter().copied().collect::<Vec<_>>());
        // one-row forms take the matrix-vector path
        let mut r = vec![0.0; 5];
        a_bt(
            &a.as_slice().unwrap()[..4],
            b.as_slice().unwrap(),
            &mut r,
            1,
            4,
            5,
            0.0,
        );
        assert_eq!(r, a.row(0).dot(&b.t()).to_vec());
        let mut r = vec![2.0; 5];
        a_b(
            &a.as_slice().unwrap()[..4],
            bt.as_slice().unwrap(),
            &mut r,
            1,
            4,
            5,
            1.0,
        );
        assert_eq!(r, (a.row(0).dot(&bt) + 2.0).to_vec());
    }

    #[test]
    fn fast_f32_activations_are_accurate() {
        let mut worst = (0.0f64, 0.0f64, 0.0f64);
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4 * 4.5; // [-90, 90]
            let e = (x as f64).exp();
            if (-87.0..=88.0).contains(&x) {
                worst.0 = worst.0.max(((exp_f32(x) as f64 - e) / e).abs());
            }
            worst.1 = worst.1.max((x.tanh_act() as f64 - (x as f64).tanh()).abs());
            worst.2 = worst
                .2
                .max((x.sigmoid() as f64 - 1.0 / (1.0 + (-x as f64).exp())).abs());
        }
        assert!(worst.0 < 3e-7, "exp relative error {}", worst.0);
        assert!(worst.1 < 3e-7, "tanh absolute error {}", worst.1);
        assert!(worst.2 < 2e-7, "sigmoid absolute error {}", worst.2);
        assert_eq!(exp_f32(1000.0), exp_f32(88.0), "saturates, finite");
        assert!(exp_f32(1000.0).is_finite());
        assert_eq!(exp_f32(-1000.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(100f32.tanh_act(), 1.0);
        assert_eq!((-100f32).tanh_act(), -1.0);
    }

    #[test]
    fn fast_f64_exp_and_tanh_are_within_a_few_ulp() {
        let mut worst = (0.0f64, 0.0f64);
        for i in -2_000_000..=2_000_000 {
            let x = i as f64 * 3.5e-4; // [-700, 700]
            worst.0 = worst.0.max(((exp_f64(x) - x.exp()) / x.exp()).abs());
            let y = i as f64 * 1e-5; // [-20, 20], dense around 0
            let t = y.tanh();
            if t != 0.0 {
                worst.1 = worst.1.max(((tanh_f64(y) - t) / t).abs());
            }
        }
        assert!(worst.0 < 5e-16, "exp relative error {}", worst.0);
        assert!(worst.1 < 5e-16, "tanh relative error {}", worst.1);
        assert_eq!(tanh_f64(0.0), 0.0);
        assert_eq!(tanh_f64(1e-300), 1e-300);
        assert_eq!(tanh_f64(50.0), 1.0);
        assert_eq!(tanh_f64(-50.0), -1.0);
        assert!(exp_f64(1e4).is_finite());
        assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
        assert!(exp_f64(f64::NAN).is_nan() && tanh_f64(f64::NAN).is_nan());
    }

    #[test]
    fn softmax_sums_to_one_and_returns_log_sum_exp() {
        let mut v = [1000.0f64, 1001.0, 999.0];
        let lse = softmax_in_place(&mut v);
        assert!((v.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let expected = 1001.0 + ((-1.0f64).exp() + 1.0 + (-2.0f64).exp()).ln();
        assert!((lse - expected).abs() < 1e-9);
        assert!(v[1] > v[0] && v[0] > v[2]);
    }
}
