//! The scalar type a model computes in ([`Real`]: f64, min-char-rnn's precision
//! and the default, or f32) and the [`Precision`] a checkpoint records. Every
//! kernel and every pass is generic over it.

use std::fmt::{Debug, Display};

use ndarray::LinalgScalar;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::activation::{exp_f32, exp_f64, tanh_f64};

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

/// The precision a run trains in; recorded in its checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
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
