//! Format version 3 (written by 5520803 to 963f9b9): version 2 and, before the
//! training time, the recent loss and the session settings.

use serde::{Deserialize, Serialize};

use super::{v2, v4};

/// The cadences a run keeps across `--resume`, as versions 3 and 4 store them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub sample_every: u64,
    pub sample_len: usize,
    pub log_every: u64,
    pub eval_every: u64,
    pub checkpoint_every: u64,
    pub keep_best: bool,
}

impl Default for Session {
    /// What a run without the flags gets (and a version 2 run on resuming).
    fn default() -> Self {
        Session {
            sample_every: 100,
            sample_len: 200,
            log_every: 100,
            eval_every: 1000,
            checkpoint_every: 1000,
            keep_best: false,
        }
    }
}

/// A version 3 payload (after the precision).
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de> + Clone"))]
pub struct State<T: Clone + 'static> {
    pub head: v2::Head<'static, T>,
    pub recent: f64,
    pub recent_since: u64,
    pub session: Session,
    pub elapsed_s: f64,
}

impl<T: Clone + 'static> From<State<T>> for v4::State<'static, T> {
    /// Version 4 added the schedule, which for older runs is the step schedule
    /// they trained with, and the average, which they did not keep.
    fn from(v3: State<T>) -> Self {
        v4::State {
            head: v3.head,
            recent: v3.recent,
            recent_since: v3.recent_since,
            session: v3.session,
            plan: v4::Plan::default(),
            ema: None,
            elapsed_s: v3.elapsed_s,
        }
    }
}
