//! An exponential moving average of the weights (`--ema DECAY`), the Polyak
//! average that validation, `--keep-best`, `eval`, `sample` and the exports use
//! in place of the last step's weights: it smooths out the last updates' noise.

use serde::{Deserialize, Serialize};

use crate::linalg::Real;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ema<T> {
    pub decay: f64,
    /// Updates averaged so far, n.
    pub steps: u64,
    /// a <- d a + (1 - d) w after every update, from a = 0 (so biased towards 0
    /// by d^n: [`Ema::averaged`] divides that out, as Adam does its moments).
    pub sum: Vec<T>,
}

impl<T: Real> Ema<T> {
    pub fn new(decay: f64, num_params: usize) -> Self {
        Ema {
            decay,
            steps: 0,
            sum: vec![T::zero(); num_params],
        }
    }

    pub fn update(&mut self, w: &[T]) {
        self.steps += 1;
        let (d, rest) = (T::c(self.decay), T::c(1.0 - self.decay));
        for (a, &w) in self.sum.iter_mut().zip(w) {
            *a = d * *a + rest * w;
        }
    }

    /// The bias-corrected average a / (1 - d^n); None before the first update.
    pub fn averaged(&self) -> Option<Vec<T>> {
        if self.steps == 0 {
            return None;
        }
        let correction = 1.0 - self.decay.powf(self.steps as f64);
        let scale = T::c(1.0 / correction);
        Some(self.sum.iter().map(|&a| a * scale).collect())
    }

    pub fn validate(&self, num_params: usize) -> Result<(), String> {
        if !(self.decay > 0.0 && self.decay < 1.0) {
            return Err(format!("EMA decay {} must lie in (0, 1)", self.decay));
        }
        if self.sum.len() != num_params {
            return Err(format!(
                "{} averaged weights for {num_params} parameters",
                self.sum.len()
            ));
        }
        if !self.sum.iter().all(|x| x.is_finite()) {
            return Err("the averaged weights hold NaN or infinity".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_of_a_constant_is_that_constant_after_any_number_of_steps() {
        let mut e = Ema::<f64>::new(0.999, 2);
        assert_eq!(e.averaged(), None);
        for n in 1..=50 {
            e.update(&[3.0, -1.0]);
            let a = e.averaged().unwrap();
            assert!(
                (a[0] - 3.0).abs() < 1e-12 && (a[1] + 1.0).abs() < 1e-12,
                "after {n}: {a:?}"
            );
        }
    }

    #[test]
    fn it_weights_recent_weights_by_the_decay() {
        let mut e = Ema::<f64>::new(0.5, 1);
        e.update(&[0.0]);
        e.update(&[4.0]);
        // a = 0.5 (0.5 * 0) + 0.5 * 4 = 2, corrected by 1 - 0.25
        assert!((e.averaged().unwrap()[0] - 2.0 / 0.75).abs() < 1e-12);
    }
}
