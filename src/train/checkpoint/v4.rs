//! Format version 4 (written since 34792c4): version 3 and, before the training
//! time, the learning-rate schedule with the weight decay, and the average of
//! the weights. The version this charrnn writes; [`State`] maps it to and from
//! the in-memory [`TrainState`].

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::train::{Ema, Hyper, LearningRate, LrSchedule, Session, TrainState};

use super::{v2, v3};

/// The schedule and the weight decay, as version 4 stores them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub schedule: LrSchedule,
    pub warmup: u64,
    pub min_lr: f64,
    pub weight_decay: f64,
    pub total: Option<u64>,
}

impl Default for Plan {
    /// The step schedule without warmup or weight decay: how runs trained before
    /// schedules existed.
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

/// A version 4 payload (after the precision); borrowed from a [`TrainState`]
/// when a checkpoint is written.
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "T: Serialize + Clone",
    deserialize = "T: Deserialize<'de> + Clone"
))]
pub struct State<'a, T: Clone> {
    pub head: v2::Head<'a, T>,
    pub recent: f64,
    pub recent_since: u64,
    pub session: v3::Session,
    pub plan: Plan,
    pub ema: Option<Cow<'a, Ema<T>>>,
    /// The training time: the payload's last 8 bytes.
    pub elapsed_s: f64,
}

impl<'a, T: Clone> From<&'a TrainState<T>> for State<'a, T> {
    fn from(s: &'a TrainState<T>) -> Self {
        let (h, r, e) = (&s.hyper, &s.rate, &s.session);
        State {
            head: v2::Head {
                hyper: v2::Hyper::from(s),
                vocab: Cow::Borrowed(&s.vocab),
                model: Cow::Borrowed(&s.model),
                optim: Cow::Borrowed(&s.optim),
                iteration: s.iteration,
                epoch: s.epoch,
                pointer: s.pointer,
                state: Cow::Borrowed(&s.state),
                learning_rate: r.stepped,
                smooth_loss: s.smooth_loss,
                last_loss: s.last_loss,
                last_val: s.last_val,
                best_val: s.best_val,
                train_rng: Cow::Borrowed(&s.train_rng),
                sample_rng: Cow::Borrowed(&s.sample_rng),
                text: Cow::Borrowed(&s.text),
            },
            recent: s.recent,
            recent_since: s.recent_since,
            session: v3::Session {
                sample_every: e.sample_every,
                sample_len: e.sample_len,
                log_every: e.log_every,
                eval_every: e.eval_every,
                checkpoint_every: e.checkpoint_every,
                keep_best: e.keep_best,
            },
            plan: Plan {
                schedule: r.schedule,
                warmup: r.warmup,
                min_lr: r.min_lr,
                weight_decay: h.weight_decay,
                total: r.total,
            },
            ema: s.ema.as_ref().map(Cow::Borrowed),
            elapsed_s: s.elapsed_s,
        }
    }
}

impl<T: Clone> From<State<'_, T>> for TrainState<T> {
    fn from(v4: State<'_, T>) -> Self {
        let (head, plan, e) = (v4.head, v4.plan, v4.session);
        let h = head.hyper;
        TrainState {
            hyper: Hyper {
                seq_length: h.seq_length,
                batch_size: h.batch_size,
                optimizer: h.optimizer,
                clip: h.clip,
                weight_decay: plan.weight_decay,
                dropout: h.dropout,
                val_fraction: h.val_fraction,
                rng_seed: h.rng_seed,
                shares: h.parts,
            },
            rate: LearningRate {
                base: h.learning_rate,
                decay: h.lr_decay,
                decay_after: h.lr_decay_after,
                stepped: head.learning_rate,
                schedule: plan.schedule,
                warmup: plan.warmup,
                min_lr: plan.min_lr,
                total: plan.total,
            },
            vocab: head.vocab.into_owned(),
            model: head.model.into_owned(),
            optim: head.optim.into_owned(),
            iteration: head.iteration,
            epoch: head.epoch,
            pointer: head.pointer,
            state: head.state.into_owned(),
            smooth_loss: head.smooth_loss,
            last_loss: head.last_loss,
            last_val: head.last_val,
            best_val: head.best_val,
            train_rng: head.train_rng.into_owned(),
            sample_rng: head.sample_rng.into_owned(),
            text: head.text.into_owned(),
            recent: v4.recent,
            recent_since: v4.recent_since,
            session: Session {
                sample_every: e.sample_every,
                sample_len: e.sample_len,
                log_every: e.log_every,
                eval_every: e.eval_every,
                checkpoint_every: e.checkpoint_every,
                keep_best: e.keep_best,
                ..Session::default()
            },
            ema: v4.ema.map(Cow::into_owned),
            elapsed_s: v4.elapsed_s,
        }
    }
}

impl<T: Clone + 'static> From<v3::State<T>> for State<'static, T> {
    /// Version 4 added the schedule, which for older runs is the step schedule
    /// they trained with, and the average, which they did not keep.
    fn from(v3: v3::State<T>) -> Self {
        State {
            head: v3.head,
            recent: v3.recent,
            recent_since: v3.recent_since,
            session: v3.session,
            plan: Plan::default(),
            ema: None,
            elapsed_s: v3.elapsed_s,
        }
    }
}
