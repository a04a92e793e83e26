//! Format version 3 (written by 5520803 to 963f9b9): version 2 and, before the
//! training time, the recent loss and the session settings.

use serde::{Deserialize, Serialize};

use super::v2;

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

impl<T: Clone + 'static> From<v2::State<T>> for State<T> {
    /// Version 3 added the recent loss, which starts at the checkpoint's
    /// iteration, and the session settings, which take their defaults.
    fn from(v2: v2::State<T>) -> Self {
        State {
            recent: 0.0,
            recent_since: v2.head.iteration,
            session: Session::default(),
            head: v2.head,
            elapsed_s: v2.elapsed_s,
        }
    }
}
