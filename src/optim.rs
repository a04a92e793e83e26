//! Gradient clipping and the Adagrad update, over flat parameter buffers.

use serde::{Deserialize, Serialize};

use crate::linalg::Real;

/// Clips every gradient element to [-limit, limit] (min-char-rnn's np.clip).
/// NaN passes through unchanged so a diverged run is still detected.
pub fn clip<T: Real>(grads: &mut [T], limit: T) {
    for g in grads {
        if *g > limit {
            *g = limit;
        } else if *g < -limit {
            *g = -limit;
        }
    }
}

/// Adagrad: memory += g^2;  w -= lr * g / sqrt(memory + 1e-8)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adagrad<T> {
    pub learning_rate: T,
    /// Sum of squared gradients, same layout as the parameters.
    pub memory: Vec<T>,
}

impl<T: Real> Adagrad<T> {
    pub const EPS: f64 = 1e-8;

    pub fn new(learning_rate: T, num_params: usize) -> Self {
        Adagrad { learning_rate, memory: vec![T::zero(); num_params] }
    }

    pub fn step(&mut self, params: &mut [T], grads: &[T]) {
        assert_eq!(params.len(), self.memory.len());
        assert_eq!(grads.len(), self.memory.len());
        let (lr, eps) = (self.learning_rate, T::c(Self::EPS));
        for ((w, &g), m) in params.iter_mut().zip(grads).zip(&mut self.memory) {
            *m = *m + g * g;
            *w = *w - lr * g / (*m + eps).sqrt();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_bounds_values_and_keeps_nan() {
        let mut g = [-7.0f32, -5.0, 0.5, 5.5, f32::NAN];
        clip(&mut g, 5.0);
        assert_eq!(&g[..4], &[-5.0, -5.0, 0.5, 5.0]);
        assert!(g[4].is_nan());
    }

    #[test]
    fn adagrad_matches_the_formula_over_two_steps() {
        let mut opt = Adagrad::new(0.1f64, 2);
        let mut w = [1.0, -2.0];
        opt.step(&mut w, &[0.5, 0.0]);
        assert!((w[0] - (1.0 - 0.1 * 0.5 / (0.25f64 + 1e-8).sqrt())).abs() < 1e-15);
        assert_eq!(w[1], -2.0, "a zero gradient leaves the weight alone");
        let w0 = w[0];
        opt.step(&mut w, &[-1.0, 0.0]);
        assert!((w[0] - (w0 + 0.1 / (1.25f64 + 1e-8).sqrt())).abs() < 1e-15);
        assert_eq!(opt.memory, vec![1.25, 0.0]);
    }
}
