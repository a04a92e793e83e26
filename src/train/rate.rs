//! The learning rate of every update, in one place: the run's base rate,
//! char-rnn's per-epoch step decay, the schedule that moves it over the run
//! (cosine, linear, constant) with its warmup, and the run length that cosine
//! and linear decay over, fixed once. The defaults change nothing: the step
//! schedule with no decay and no warmup is min-char-rnn's constant rate.

use std::time::Duration;

use serde::{Deserialize, Serialize};

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

    /// Whether it needs the run's length ([`LearningRate::total`]).
    pub fn decays_over_the_run(self) -> bool {
        matches!(self, LrSchedule::Cosine | LrSchedule::Linear)
    }
}

impl std::fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What rate each update of a run uses. The trainer asks [`LearningRate::at`]
/// before every update and tells [`LearningRate::epoch_passed`] when an epoch
/// ends; nothing else computes a rate.
#[derive(Clone, Debug, PartialEq)]
pub struct LearningRate {
    /// --learning-rate: where every schedule starts.
    pub base: f64,
    /// char-rnn's step decay: the rate is multiplied by `decay` after each
    /// epoch from `decay_after` on (1 = never).
    pub decay: f64,
    pub decay_after: u64,
    /// The step schedule's rate now: `base` after the epochs' decays so far.
    pub stepped: f64,
    pub schedule: LrSchedule,
    /// The first `warmup` updates ramp the rate linearly: update i (from 0)
    /// uses (i + 1) / warmup of it.
    pub warmup: u64,
    /// Where cosine and linear end.
    pub min_lr: f64,
    /// The iteration count cosine and linear decay over: fixed once (from
    /// --decay-iters, --iters, or a time limit and the measured speed, see
    /// [`LearningRate::fix_length`]) and kept by the checkpoint, so a resumed
    /// run follows the same curve. None until then.
    pub total: Option<u64>,
}

impl Default for LearningRate {
    /// min-char-rnn's: 0.1 throughout.
    fn default() -> Self {
        LearningRate::constant(0.1)
    }
}

impl LearningRate {
    /// `base` for every update (the step schedule without decay).
    pub fn constant(base: f64) -> Self {
        LearningRate {
            base,
            decay: 1.0,
            decay_after: 10,
            stepped: base,
            schedule: LrSchedule::Step,
            warmup: 0,
            min_lr: 0.0,
            total: None,
        }
    }

    /// The rate of update `i` (counted from 0).
    pub fn at(&self, i: u64) -> f64 {
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
        let (lo, span) = (self.min_lr, self.base - self.min_lr);
        let lr = match self.schedule {
            LrSchedule::Step => {
                return if self.warmup == 0 {
                    self.stepped
                } else {
                    self.stepped * warm
                };
            }
            LrSchedule::Constant => self.base,
            LrSchedule::Cosine => lo + span * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            LrSchedule::Linear => lo + span * (1.0 - progress),
        };
        lr * warm
    }

    /// Epoch `epoch` (counted from 1) has just ended: char-rnn's step decay.
    pub fn epoch_passed(&mut self, epoch: u64) {
        if self.decay < 1.0 && epoch >= self.decay_after {
            self.stepped *= self.decay;
        }
    }

    /// Whether the schedule still needs the run's length.
    pub fn needs_length(&self) -> bool {
        self.schedule.decays_over_the_run() && self.total.is_none()
    }

    /// Fixes the length cosine and linear decay over, if it is not fixed yet:
    /// `decay_iters` when given, else the session's iteration limit `iters` when
    /// it has no time limit (`timed`); a time-limited run is left for its
    /// measured speed ([`TimedLength`]). Refuses a schedule that can learn its
    /// length from none of them.
    pub fn fix_length(
        &mut self,
        decay_iters: Option<u64>,
        iters: Option<u64>,
        timed: bool,
    ) -> Result<(), String> {
        if !self.needs_length() {
            return Ok(());
        }
        self.total = decay_iters.or(iters.filter(|_| !timed));
        if self.total.is_none() && iters.is_none() && !timed {
            return Err(format!(
                "--lr-schedule {} decays over the run: give its length with --iters, --max-time or --decay-iters",
                self.schedule
            ));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), String> {
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if !(positive(self.base) && positive(self.stepped)) {
            return Err(format!(
                "learning rate {} (now {}) is out of range",
                self.base, self.stepped
            ));
        }
        if !(positive(self.decay) && self.decay <= 1.0) {
            return Err(format!("lr decay {} must lie in (0, 1]", self.decay));
        }
        if !(self.min_lr >= 0.0 && self.min_lr <= self.base) {
            return Err(format!(
                "min_lr {} must lie in [0, the learning rate {}]",
                self.min_lr, self.base
            ));
        }
        Ok(())
    }

    /// Whether this is the default's shape: the step schedule without warmup
    /// (what runs before schedules existed had), whatever the rates.
    pub fn is_plain_step(&self) -> bool {
        self.schedule == LrSchedule::Step
            && self.warmup == 0
            && self.min_lr == 0.0
            && self.total.is_none()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(schedule: LrSchedule, warmup: u64, total: Option<u64>) -> LearningRate {
        LearningRate {
            schedule,
            warmup,
            min_lr: 0.1,
            total,
            ..LearningRate::constant(1.0)
        }
    }

    #[test]
    fn the_default_is_the_stepped_rate_itself() {
        let mut r = LearningRate::constant(0.1);
        for (i, stepped) in [(0, 0.1), (5, 0.0123456789), (1 << 40, 3e-7)] {
            r.stepped = stepped;
            assert_eq!(r.at(i).to_bits(), stepped.to_bits());
        }
    }

    #[test]
    fn the_step_decay_starts_after_its_epoch() {
        let mut r = LearningRate {
            decay: 0.5,
            decay_after: 2,
            ..LearningRate::constant(1.0)
        };
        r.epoch_passed(1);
        assert_eq!(r.at(0), 1.0);
        r.epoch_passed(2);
        r.epoch_passed(3);
        assert_eq!(r.at(0), 0.25);
    }

    #[test]
    fn cosine_and_linear_run_from_the_rate_to_min_lr_after_warmup() {
        let cos = rate(LrSchedule::Cosine, 10, Some(110));
        assert_eq!(cos.at(0), 0.1, "warmup: 1/10 of the rate");
        assert_eq!(cos.at(9), 1.0);
        assert_eq!(cos.at(10), 1.0, "decay starts after warmup");
        assert!((cos.at(60) - 0.55).abs() < 1e-12, "halfway: the midpoint");
        assert!((cos.at(110) - 0.1).abs() < 1e-12);
        assert!((cos.at(500) - 0.1).abs() < 1e-12, "min_lr past the end");
        let lin = rate(LrSchedule::Linear, 0, Some(100));
        assert!((lin.at(25) - 0.775).abs() < 1e-12);
        let unknown = rate(LrSchedule::Cosine, 0, None);
        assert_eq!(unknown.at(50), 1.0, "no length yet: no decay yet");
        let mut step = rate(LrSchedule::Step, 4, None);
        step.stepped = 0.5;
        assert_eq!(step.at(1), 0.25, "warmup scales the stepped rate");
        assert_eq!(rate(LrSchedule::Constant, 0, Some(10)).at(9), 1.0);
    }

    #[test]
    fn the_length_is_fixed_once_from_the_first_limit_that_gives_it() {
        let mut r = rate(LrSchedule::Cosine, 0, None);
        assert!(r.fix_length(None, None, false).is_err(), "nothing to go by");
        r.fix_length(None, Some(500), true).unwrap();
        assert_eq!(r.total, None, "a time limit measures first");
        r.fix_length(None, Some(500), false).unwrap();
        assert_eq!(r.total, Some(500));
        r.fix_length(Some(900), Some(700), false).unwrap();
        assert_eq!(r.total, Some(500), "fixed once");
        let mut d = rate(LrSchedule::Linear, 0, None);
        d.fix_length(Some(900), Some(700), false).unwrap();
        assert_eq!(d.total, Some(900), "--decay-iters first");
        let mut step = LearningRate::constant(1.0);
        step.fix_length(None, None, false).unwrap();
        assert_eq!(step.total, None, "the step schedule needs no length");
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
