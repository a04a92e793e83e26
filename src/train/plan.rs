//! How the learning rate moves over a run, and the decoupled weight decay: what a
//! run that knows its budget adds to char-rnn's per-epoch decay (checkpoint
//! version 4). The defaults change nothing: the step schedule with no warmup and
//! no weight decay is char-rnn's (and, with its other defaults, min-char-rnn's).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::linalg::Real;
use crate::model::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum LrSchedule {
    /// char-rnn's: multiply by --lr-decay after each epoch from --lr-decay-after on
    Step,
    /// half a cosine from the learning rate down to --min-lr over the run
    Cosine,
    /// a straight line from the learning rate down to --min-lr over the run
    Linear,
    /// the learning rate throughout
    Constant,
}

impl LrSchedule {
    pub fn name(self) -> &'static str {
        match self {
            LrSchedule::Step => "step",
            LrSchedule::Cosine => "cosine",
            LrSchedule::Linear => "linear",
            LrSchedule::Constant => "constant",
        }
    }

    /// Whether it needs the run's length ([`Plan::total`]).
    pub fn decays_over_the_run(self) -> bool {
        matches!(self, LrSchedule::Cosine | LrSchedule::Linear)
    }
}

impl std::fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub schedule: LrSchedule,
    /// The first `warmup` updates ramp the rate linearly: update i (from 0) uses
    /// (i + 1) / warmup of it.
    pub warmup: u64,
    /// Where cosine and linear end.
    pub min_lr: f64,
    /// Decoupled weight decay (PyTorch's AdamW): w <- w (1 - lr wd) at every
    /// update, on the weight matrices and the embedding, not on biases.
    pub weight_decay: f64,
    /// The iteration count cosine and linear decay over: fixed once (from
    /// --decay-iters, --iters, or a time limit and the measured speed) and kept
    /// by the checkpoint, so a resumed run follows the same curve. None until then.
    pub total: Option<u64>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            schedule: LrSchedule::Step,
            warmup: 0,
            min_lr: 0.0,
            weight_decay: 0.0,
            total: None,
        }
    }
}

impl Plan {
    /// The rate of update `i` (counted from 0): `base` is the run's learning rate,
    /// `stepped` it after char-rnn's per-epoch decays (the step schedule's).
    pub fn learning_rate(&self, base: f64, stepped: f64, i: u64) -> f64 {
        let warm = if i < self.warmup {
            (i + 1) as f64 / self.warmup as f64
        } else {
            1.0
        };
        // the fraction of the decay done; 0 until the run's length is known
        let progress = match self.total {
            Some(total) if total > self.warmup => {
                (i.saturating_sub(self.warmup) as f64 / (total - self.warmup) as f64).min(1.0)
            }
            Some(_) => 1.0,
            None => 0.0,
        };
        let (lo, span) = (self.min_lr, base - self.min_lr);
        let lr = match self.schedule {
            LrSchedule::Step => {
                return if self.warmup == 0 {
                    stepped
                } else {
                    stepped * warm
                };
            }
            LrSchedule::Constant => base,
            LrSchedule::Cosine => lo + span * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            LrSchedule::Linear => lo + span * (1.0 - progress),
        };
        lr * warm
    }

    pub fn validate(&self, base: f64) -> Result<(), String> {
        if !(self.min_lr >= 0.0 && self.min_lr <= base) {
            return Err(format!(
                "min_lr {} must lie in [0, the learning rate {base}]",
                self.min_lr
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(format!(
                "weight decay {} must be at least 0",
                self.weight_decay
            ));
        }
        Ok(())
    }

    /// w <- w (1 - lr wd) on the ranges [`decayed`] names; nothing without decay.
    pub fn decay_weights<T: Real>(&self, config: &Config, lr: f64, params: &mut [T]) {
        if self.weight_decay == 0.0 {
            return;
        }
        let keep = T::c(1.0 - lr * self.weight_decay);
        for r in decayed(config) {
            params[r].iter_mut().for_each(|w| *w = *w * keep);
        }
    }
}

/// How a time-limited run fixes the length its cosine or linear schedule decays
/// over: from its speed over a window that starts at 4% of the budget (the first
/// iterations run slower: the workspace's first touch, caches, the CPU's clock)
/// and spans at least 20 iterations and 6% of the budget; then the time left,
/// less a 1.5% margin (so that a slightly slower stretch still ends the decay
/// inside the limit), at that speed. Warmup iterations cost what the others do,
/// so the window does not wait for warmup's end: a warmup longer than 10% of the
/// budget sees the length fixed before the decay starts, and the run follows the
/// curve of one given that length from the start.
#[derive(Debug, Default)]
pub struct TimedLength {
    /// The window's first iteration and the clock then.
    from: Option<(u64, Duration)>,
}

impl TimedLength {
    /// Called after iteration `it`, with the training clock `t`: the run's total
    /// length and the measured speed (iterations/s) once the window is long
    /// enough, capped at `until` (an iteration limit given beside the time limit).
    pub fn observe(
        &mut self,
        it: u64,
        t: Duration,
        limit: Duration,
        until: Option<u64>,
    ) -> Option<(u64, f64)> {
        let Some((it0, t0)) = self.from else {
            if t >= limit / 25 {
                self.from = Some((it, t));
            }
            return None;
        };
        if it - it0 < 20 || t - t0 < limit * 3 / 50 {
            return None;
        }
        let speed = (it - it0) as f64 / (t - t0).as_secs_f64();
        let left = limit.saturating_sub(t).as_secs_f64() * 0.985;
        let total = (it + (left * speed) as u64).min(until.unwrap_or(u64::MAX));
        Some((total, speed))
    }
}

/// The parameters weight decay shrinks: every weight matrix (Wx, Wh, Why) and the
/// embedding, which is the one-hot model's Wxh factored in two (so a one-hot and
/// an embedding model are treated alike, as nanoGPT decays its token embedding);
/// not the biases, whose size says nothing about overfitting.
pub fn decayed(config: &Config) -> Vec<std::ops::Range<usize>> {
    let layout = config.layout();
    let mut out: Vec<_> = layout.embed.iter().cloned().collect();
    for l in &layout.layers {
        out.push(l.wx.clone());
        out.push(l.wh.clone());
    }
    out.push(layout.why.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cell;

    fn plan(schedule: LrSchedule, warmup: u64, total: Option<u64>) -> Plan {
        Plan {
            schedule,
            warmup,
            min_lr: 0.1,
            weight_decay: 0.0,
            total,
        }
    }

    #[test]
    fn the_default_is_the_stepped_rate_itself() {
        let p = Plan::default();
        for (i, stepped) in [(0, 0.1), (5, 0.0123456789), (1 << 40, 3e-7)] {
            assert_eq!(
                p.learning_rate(0.1, stepped, i).to_bits(),
                stepped.to_bits()
            );
        }
    }

    #[test]
    fn cosine_and_linear_run_from_the_rate_to_min_lr_after_warmup() {
        let cos = plan(LrSchedule::Cosine, 10, Some(110));
        assert_eq!(
            cos.learning_rate(1.0, 1.0, 0),
            0.1,
            "warmup: 1/10 of the rate"
        );
        assert_eq!(cos.learning_rate(1.0, 1.0, 9), 1.0);
        assert_eq!(
            cos.learning_rate(1.0, 1.0, 10),
            1.0,
            "decay starts after warmup"
        );
        assert!(
            (cos.learning_rate(1.0, 1.0, 60) - 0.55).abs() < 1e-12,
            "halfway: the midpoint"
        );
        assert!((cos.learning_rate(1.0, 1.0, 110) - 0.1).abs() < 1e-12);
        assert!(
            (cos.learning_rate(1.0, 1.0, 500) - 0.1).abs() < 1e-12,
            "min_lr past the end"
        );
        let lin = plan(LrSchedule::Linear, 0, Some(100));
        assert!((lin.learning_rate(1.0, 1.0, 25) - 0.775).abs() < 1e-12);
        let unknown = plan(LrSchedule::Cosine, 0, None);
        assert_eq!(
            unknown.learning_rate(1.0, 1.0, 50),
            1.0,
            "no length yet: no decay yet"
        );
        let step = plan(LrSchedule::Step, 4, None);
        assert_eq!(
            step.learning_rate(1.0, 0.5, 1),
            0.25,
            "warmup scales the stepped rate"
        );
        assert_eq!(
            plan(LrSchedule::Constant, 0, Some(10)).learning_rate(1.0, 0.5, 9),
            1.0
        );
    }

    #[test]
    fn weight_decay_shrinks_matrices_and_the_embedding_not_biases() {
        let config = Config {
            cell: Cell::Gru,
            vocab: 5,
            hidden: 3,
            layers: 2,
            embedding: 2,
        };
        let p = Plan {
            weight_decay: 0.5,
            ..Plan::default()
        };
        let mut w = vec![1.0f64; config.num_params()];
        p.decay_weights(&config, 0.2, &mut w);
        let layout = config.layout();
        let shrunk: usize = decayed(&config).iter().map(|r| r.len()).sum();
        assert_eq!(w.iter().filter(|&&x| x == 0.9).count(), shrunk);
        assert!(w[layout.embed.clone().unwrap()].iter().all(|&x| x == 0.9));
        assert!(w[layout.why.clone()].iter().all(|&x| x == 0.9));
        assert!(w[layout.by.clone()].iter().all(|&x| x == 1.0));
        for l in &layout.layers {
            assert!(w[l.b.clone()].iter().all(|&x| x == 1.0));
            assert!(
                w[l.extra.clone().unwrap()].iter().all(|&x| x == 1.0),
                "bhn is a bias"
            );
        }
        assert_eq!(
            w.len() - shrunk,
            5 + 2 * (9 + 3),
            "by, and b (3H) and bhn (H) per layer"
        );
    }

    /// A timeline of a run: the first `slow` iterations take `first` seconds
    /// each, the rest `then`; returns the length the planner fixes and when.
    fn plan_over(
        slow: u64,
        (first, then): (f64, f64),
        limit: f64,
        until: Option<u64>,
    ) -> (u64, u64, f64) {
        let mut timed = TimedLength::default();
        let mut t = 0.0;
        for it in 1.. {
            t += if it <= slow { first } else { then };
            let at = Duration::from_secs_f64(t);
            if let Some((total, _)) = timed.observe(it, at, Duration::from_secs_f64(limit), until) {
                return (total, it, t);
            }
            assert!(t < limit, "no length fixed inside the limit");
        }
        unreachable!()
    }

    #[test]
    fn a_timed_length_uses_the_budget_despite_a_slow_start() {
        // 10 slow iterations (1 s each), then 10 per second, in 300 s: the steady
        // speed fills the budget to within the margin
        let (total, it, t) = plan_over(10, (1.0, 0.1), 300.0, None);
        let end = t + (total - it) as f64 * 0.1;
        assert!(
            (0.98 * 300.0..=300.0).contains(&end),
            "planned {total} at iteration {it}: ends at {end:.1} s of 300"
        );
        // the speed since the start (10 s of slow iterations in the first 30)
        // would have planned a quarter fewer iterations
        assert!(t >= 0.1 * 300.0, "planned at {t} s, before the window");
    }

    #[test]
    fn a_timed_length_is_fixed_by_a_tenth_of_the_budget_within_the_iteration_limit() {
        // 10 iterations/s in 30 s: planned about 3 s in (30 iterations), so a
        // warmup of more than 30 sees the length before its decay starts
        let (total, it, t) = plan_over(0, (0.0, 0.1), 30.0, None);
        assert!(
            (3.0..3.3).contains(&t) && it <= 33,
            "planned at {t} s, iteration {it}"
        );
        assert!(
            (290..=300).contains(&total),
            "planned {total} of 300 iterations"
        );
        let (total, _, _) = plan_over(0, (0.0, 0.1), 300.0, Some(1000));
        assert_eq!(total, 1000, "--iters 1000 caps the planned length");
    }
}
