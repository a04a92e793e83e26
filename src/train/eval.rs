//! The loss on held-out text: the whole text read as B streams, chunk after
//! chunk, the hidden state carried and no dropout.

use std::sync::Arc;

use crate::io::corpus::{self, IdSlice};
use crate::linalg::Real;
use crate::model::{Model, State, Workspace};
use crate::parallel::Pair;

/// Average loss in nats per character over `ids`, read as `streams` contiguous
/// streams in chunks of `seq` characters with the hidden state carried (no
/// dropout), each phase over rows in two halves on `pair` when given (the same
/// values as on one thread). Returns (summed loss, characters predicted).
pub fn evaluate<T: Real>(
    model: &Model<T>,
    ids: IdSlice<'_>,
    streams: usize,
    seq: usize,
    pair: Option<&Arc<Pair>>,
) -> (f64, u64) {
    let b = streams.min(ids.len() / 2).max(1);
    let n = ids.len() / b;
    if n < 2 {
        return (0.0, 0);
    }
    let mut ws = Workspace::new(model.config, seq, b);
    if let Some(pair) = pair {
        ws.use_pair(Arc::clone(pair), false);
    }
    let mut state = State::zeros(&model.config, b);
    let (mut inputs, mut targets) = (Vec::with_capacity(seq * b), Vec::with_capacity(seq * b));
    let (mut total, mut count) = (0.0, 0u64);
    for p in (0..n - 1).step_by(seq) {
        let len = seq.min(n - 1 - p);
        corpus::fill_chunk(ids, n, 0..b, p, len, &mut inputs, &mut targets);
        total += model.forward_loss(&inputs, &targets, &mut state, &mut ws, T::one());
        count += (len * b) as u64;
    }
    (total, count)
}
