//! Softmax over a row of logits, returning its log-sum-exp, and the logistic
//! sigmoid, for any [`Real`]: used by the cells, the output layer and sampling.

use super::Real;

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
    fn softmax_sums_to_one_and_returns_log_sum_exp() {
        let mut v = [1000.0f64, 1001.0, 999.0];
        let lse = softmax_in_place(&mut v);
        assert!((v.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let expected = 1001.0 + ((-1.0f64).exp() + 1.0 + (-2.0f64).exp()).ln();
        assert!((lse - expected).abs() < 1e-9);
        assert!(v[1] > v[0] && v[0] > v[2]);
    }
}
