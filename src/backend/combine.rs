//! The gradient combine: where the shares of a batch's streams become one
//! gradient. Its summation order is fixed by the shares, never by the threads
//! or processes that computed them, so a run's numbers do not depend on them:
//!
//! ```text
//! g = ((g_0 + g_1) + g_2) + ... + g_{K-1}      element by element, shares in order
//! loss = ((l_0 + l_1) + l_2) + ... + l_{K-1}   in f64
//! ```
//!
//! [`InOrder`] sums the shares one process holds. A data-parallel run, whose
//! shares are spread over processes, implements [`Combine`] with the same
//! order (for instance: each process sums one slice of every share's gradient
//! in share order, then all gather the slices) and gets the same bits.

use std::sync::Arc;

use crate::linalg::Real;
use crate::parallel::Pair;

/// Sums the gradients and losses of all shares of a batch, in share order.
pub trait Combine<T: Real>: Send {
    /// `grads[k]` and `losses[k]` are share k's (the shares this process
    /// computed, in order). On return `grads[0]` holds the sum of every share's
    /// gradient and the result is the sum of their losses, both in the order above.
    fn combine(&mut self, grads: &mut [Vec<T>], losses: &[f64]) -> f64;
}

/// The combine of one process: its shares are all the shares. With a pair,
/// the two threads each add one half of the elements (every element is still
/// summed in share order).
pub struct InOrder {
    pair: Option<Arc<Pair>>,
}

impl InOrder {
    pub fn new(pair: Option<Arc<Pair>>) -> Self {
        InOrder { pair }
    }
}

impl<T: Real> Combine<T> for InOrder {
    fn combine(&mut self, grads: &mut [Vec<T>], losses: &[f64]) -> f64 {
        let (first, rest) = grads.split_first_mut().expect("at least one share");
        let add = |g: &mut [T], x: &[T]| g.iter_mut().zip(x).for_each(|(g, &x)| *g = *g + x);
        let mut loss = losses[0];
        for (share, &l) in rest.iter().zip(&losses[1..]) {
            loss += l;
            match self.pair.as_deref() {
                Some(pair) => {
                    let mid = first.len() / 2;
                    let (g, x) = (first.split_at_mut(mid), share.split_at(mid));
                    pair.each([(g.0, x.0), (g.1, x.1)], |_, (g, x)| add(g, x));
                }
                None => add(first, share),
            }
        }
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_sum_left_to_right_on_one_thread_and_on_the_pair() {
        // values whose sum depends on the order in floating point
        let shares = || -> Vec<Vec<f32>> {
            (0..4)
                .map(|k| {
                    (0..101)
                        .map(|i| [1e8, 1.0, -1e8, 3.5][(i + k) % 4])
                        .collect()
                })
                .collect()
        };
        let losses = [1e16, 1.0, -1e16, 0.5];
        let mut want = shares();
        let expect: Vec<f32> = (0..101)
            .map(|i| ((want[0][i] + want[1][i]) + want[2][i]) + want[3][i])
            .collect();
        let one = InOrder::new(None).combine(&mut want, &losses);
        assert_eq!(want[0], expect);
        assert_eq!(one, ((1e16 + 1.0) + -1e16) + 0.5);
        let pair = Pair::new().ok().map(Arc::new);
        let mut two = shares();
        let loss = InOrder::new(pair).combine(&mut two, &losses);
        assert_eq!(two[0], expect, "the pair adds the same values");
        assert_eq!(loss, one);
    }
}
