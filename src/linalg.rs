//! Small dense kernels the model is built from: the scalar type, dot products,
//! matrix-vector products over row-major slices, GEMM, and softmax.
//!
//! Everything is generic over [`Real`] so the same code trains in f32 and is
//! gradient-checked in f64.

use std::fmt::{Debug, Display};

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, LinalgScalar};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The floating-point type a model computes in: f64 (min-char-rnn's precision, the
/// default) or f32 (faster).
pub trait Real:
    num_traits::Float + LinalgScalar + Debug + Display + Default + Send + Sync + Serialize + DeserializeOwned + 'static
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
    // f64 is the reference-matching precision: libm's exact functions
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }
    fn tanh_act(self) -> Self {
        self.tanh()
    }
}

/// e^x for f32 within 2 ulp on [-87, 88] (saturating outside, which is all the
/// sigmoid and tanh built on it need), written without branches or library calls so that a
/// loop over a slice vectorises (libm's expf/tanhf took a fifth of LSTM training).
/// Cephes' expf: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial,
/// 2^n built in the exponent bits.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // keeps 2^n a normal number: e^88 < f32::MAX, e^-87 > the smallest normal
    let x = x.clamp(-87.0, 88.0);
    // round to nearest with SSE2 only: adding 1.5 * 2^23 drops the fraction bits
    const ROUND: f32 = 12_582_912.0;
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 0.5)
        * r
        * r
        + r
        + 1.0;
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
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

/// Lanes of independent accumulators: float addition is not associative, so the
/// compiler only vectorises a reduction that is written with separate partial sums.
const LANES: usize = 8;

/// sum_i a[i] * b[i]
#[inline]
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    debug_assert_eq!(a.len(), b.len());
    let (ca, ra) = a.as_chunks::<LANES>();
    let (cb, rb) = b.as_chunks::<LANES>();
    let mut acc = [T::zero(); LANES];
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..LANES {
            acc[k] = acc[k] + x[k] * y[k];
        }
    }
    let mut tail = T::zero();
    for (&x, &y) in ra.iter().zip(rb) {
        tail = tail + x * y;
    }
    let half = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (half[0] + half[2]) + (half[1] + half[3]) + tail
}

/// y += a * x
#[inline]
pub fn axpy<T: Real>(a: T, x: &[T], y: &mut [T]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = *yi + a * xi;
    }
}

/// y = W x for row-major W: (rows, cols), x: (cols), y: (rows).
pub fn matvec<T: Real>(w: &[T], x: &[T], y: &mut [T]) {
    let cols = x.len();
    debug_assert_eq!(w.len(), cols * y.len());
    for (yi, row) in y.iter_mut().zip(w.chunks_exact(cols)) {
        *yi = dot(row, x);
    }
}

/// y = W^T x for row-major W: (rows, cols), x: (rows), y: (cols).
/// Written as a sum of scaled rows so W is read in storage order.
pub fn matvec_t<T: Real>(w: &[T], x: &[T], y: &mut [T]) {
    y.fill(T::zero());
    matvec_t_acc(w, x, y);
}

/// y += W^T x (see [`matvec_t`]).
pub fn matvec_t_acc<T: Real>(w: &[T], x: &[T], y: &mut [T]) {
    let cols = y.len();
    debug_assert_eq!(w.len(), cols * x.len());
    for (&xi, row) in x.iter().zip(w.chunks_exact(cols)) {
        axpy(xi, row, y);
    }
}

/// c = alpha * a b + beta * c (matrixmultiply's GEMM; any strides, so `a.t()` is free).
pub fn gemm<T: Real>(alpha: T, a: &ArrayView2<T>, b: &ArrayView2<T>, beta: T, c: &mut ArrayViewMut2<T>) {
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
        gemm(T::one(), &view(a, m, k), &view(b, n, k).t(), beta, &mut view_mut(c, m, n));
    }
}

/// C = A B + beta C, all row-major: A (m, k), B (k, n), C (m, n).
pub fn a_b<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize, beta: T) {
    if m == 1 && (beta == T::zero() || beta == T::one()) {
        if beta == T::zero() {
            c.fill(T::zero());
        }
        matvec_t_acc(b, a, c);
    } else {
        gemm(T::one(), &view(a, m, k), &view(b, k, n), beta, &mut view_mut(c, m, n));
    }
}

/// C = A^T B + beta C, all row-major: A (k, m), B (k, n), C (m, n).
pub fn at_b<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize, beta: T) {
    gemm(T::one(), &view(a, k, m).t(), &view(b, k, n), beta, &mut view_mut(c, m, n));
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
    let mut sum = T::zero();
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum = sum + *x;
    }
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
            assert!((dot(&a, &b) - naive).abs() < 1e-12, "n={n}");
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
        matvec_t(w.as_slice().unwrap(), &u, &mut z);
        assert_eq!(z.to_vec(), w.t().dot(&ndarray::arr1(&u)).to_vec());
    }

    #[test]
    fn gemm_helpers_agree_with_ndarray_dot() {
        let a = ndarray::Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64 * 0.5 - 2.0);
        let b = ndarray::Array2::from_shape_fn((5, 4), |(i, j)| ((i + 2 * j) % 7) as f64 - 3.0);
        let mut c = vec![1.0; 15];
        a_bt(a.as_slice().unwrap(), b.as_slice().unwrap(), &mut c, 3, 4, 5, 1.0);
        let want = a.dot(&b.t()) + 1.0;
        assert_eq!(c, want.iter().copied().collect::<Vec<_>>());
        let bt = b.t().as_standard_layout().into_owned(); // (4, 5)
        let mut c = vec![0.0; 15];
        a_b(a.as_slice().unwrap(), bt.as_slice().unwrap(), &mut c, 3, 4, 5, 0.0);
        assert_eq!(c, a.dot(&bt).iter().copied().collect::<Vec<_>>());
        let mut c = vec![0.0; 20]; // A^T B with A (3, 4)... as (k=3, m=4), B (3, n=5)
        let b3 = ndarray::Array2::from_shape_fn((3, 5), |(i, j)| (i * j) as f64 + 1.0);
        at_b(a.as_slice().unwrap(), b3.as_slice().unwrap(), &mut c, 4, 3, 5, 0.0);
        assert_eq!(c, a.t().dot(&b3).iter().copied().collect::<Vec<_>>());
        // one-row forms take the matrix-vector path
        let mut r = vec![0.0; 5];
        a_bt(&a.as_slice().unwrap()[..4], b.as_slice().unwrap(), &mut r, 1, 4, 5, 0.0);
        assert_eq!(r, a.row(0).dot(&b.t()).to_vec());
        let mut r = vec![2.0; 5];
        a_b(&a.as_slice().unwrap()[..4], bt.as_slice().unwrap(), &mut r, 1, 4, 5, 1.0);
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
            worst.2 = worst.2.max((x.sigmoid() as f64 - 1.0 / (1.0 + (-x as f64).exp())).abs());
        }
        assert!(worst.0 < 3e-7, "exp relative error {}", worst.0);
        assert!(worst.1 < 3e-7, "tanh absolute error {}", worst.1);
        assert!(worst.2 < 2e-7, "sigmoid absolute error {}", worst.2);
        assert_eq!(exp_f32(1000.0), exp_f32(88.0), "saturates, finite");
        assert!(exp_f32(1000.0).is_finite());
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(-1000.0) < 1e-37);
        assert_eq!(100f32.tanh_act(), 1.0);
        assert_eq!((-100f32).tanh_act(), -1.0);
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
