//! Beam search: the likeliest continuation of n characters a beam of width W
//! finds. Each step extends every kept sequence by every character, scores a
//! sequence by its summed log-probabilities, sum_t ln p(x_t | x_<t), and keeps
//! the W best. Ties go to the sequence that came first, and among a sequence's
//! extensions to the lower character id, so a run is deterministic and W = 1 is
//! greedy (argmax) decoding.

use crate::linalg::Real;
use crate::model::State;
use crate::sample::Sampler;

/// The widest beam `sample --beam` searches: each step feeds every kept
/// sequence, so time grows with W (and memory with W times the length).
pub const MAX_WIDTH: usize = 1024;

/// A continuation and its log-probability in nats.
#[derive(Clone, Debug, PartialEq)]
pub struct Beam {
    pub ids: Vec<u32>,
    pub log_prob: f64,
}

/// One kept sequence: its hidden state after feeding all but its last character,
/// and ln p of the next character given it all.
struct Kept<T> {
    beam: Beam,
    state: State<T>,
    /// (V): ln p(next = v), for the sequence's next character
    log_probs: Vec<f64>,
}

/// The `width` best continuations of `n` characters, best first, from a sampler
/// that has been fed its prime (its draw setting must leave the logits as they
/// are: `Draw::Argmax`). The sampler ends holding the best sequence's state.
pub fn search<T: Real>(sampler: &mut Sampler<'_, T>, width: usize, n: usize) -> Vec<Beam> {
    assert!(width >= 1, "beam width must be at least 1");
    let mut kept = vec![Kept {
        beam: Beam {
            ids: Vec::with_capacity(n),
            log_prob: 0.0,
        },
        state: sampler.state().clone(),
        log_probs: log_softmax(sampler.probs()),
    }];
    for step in 0..n {
        // (score, kept index, character): every extension, best first
        let mut candidates: Vec<(f64, usize, u32)> = kept
            .iter()
            .enumerate()
            .flat_map(|(k, s)| {
                let base = s.beam.log_prob;
                s.log_probs
                    .iter()
                    .enumerate()
                    .map(move |(v, &lp)| (base + lp, k, v as u32))
            })
            .collect();
        let best = |a: &(f64, usize, u32), b: &(f64, usize, u32)| {
            b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
        };
        if candidates.len() > width {
            candidates.select_nth_unstable_by(width - 1, best);
            candidates.truncate(width);
        }
        candidates.sort_by(best);
        let last = step + 1 == n;
        kept = candidates
            .into_iter()
            .map(|(log_prob, k, id)| {
                let parent = &kept[k];
                let mut ids = parent.beam.ids.clone();
                ids.push(id);
                let mut state = parent.state.clone();
                let mut log_probs = Vec::new();
                if !last {
                    let before = sampler.replace_state(state);
                    sampler.feed(id);
                    log_probs = log_softmax(sampler.probs());
                    state = sampler.replace_state(before);
                }
                Kept {
                    beam: Beam { ids, log_prob },
                    state,
                    log_probs,
                }
            })
            .collect();
    }
    if let Some(first) = kept.first() {
        sampler.replace_state(first.state.clone());
    }
    kept.into_iter().map(|k| k.beam).collect()
}

/// ln softmax(y), in f64 whatever the model's precision.
pub fn log_softmax<T: Real>(logits: &[T]) -> Vec<f64> {
    let max = logits
        .iter()
        .map(|y| y.as_f64())
        .fold(f64::NEG_INFINITY, f64::max);
    let log_sum = logits
        .iter()
        .map(|y| (y.as_f64() - max).exp())
        .sum::<f64>()
        .ln();
    logits.iter().map(|y| y.as_f64() - max - log_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, Config, Model};
    use crate::sample::Draw;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn model(cell: Cell, seed: u64) -> Model<f64> {
        let config = Config {
            cell,
            vocab: 3,
            hidden: 6,
            layers: 1,
            embedding: 0,
        };
        let mut m = Model::init(config, &mut ChaCha8Rng::seed_from_u64(seed));
        // weights from init are too small to make the choice interesting
        m.params.iter_mut().for_each(|w| *w *= 40.0);
        m
    }

    /// Every continuation of n characters and its log-probability, by brute force.
    fn exhaustive(m: &Model<f64>, prime: u32, n: usize) -> Beam {
        let v = m.config.vocab as u32;
        let mut best: Option<Beam> = None;
        for code in 0..v.pow(n as u32) {
            let ids: Vec<u32> = (0..n)
                .map(|i| code / v.pow((n - 1 - i) as u32) % v)
                .collect();
            let mut s = Sampler::new(m, Draw::Argmax).unwrap();
            s.feed(prime);
            let mut log_prob = 0.0;
            for &id in &ids {
                log_prob += log_softmax(s.probs())[id as usize];
                s.feed(id);
            }
            if best.as_ref().is_none_or(|b| log_prob > b.log_prob) {
                best = Some(Beam { ids, log_prob });
            }
        }
        best.unwrap()
    }

    fn beam(m: &Model<f64>, prime: u32, width: usize, n: usize) -> Beam {
        let mut s = Sampler::new(m, Draw::Argmax).unwrap();
        s.feed(prime);
        search(&mut s, width, n).swap_remove(0)
    }

    #[test]
    fn a_beam_of_at_least_v_to_the_n_finds_the_exhaustive_best() {
        for (seed, &cell) in (0..4).flat_map(|s| Cell::ALL.iter().map(move |c| (s, c))) {
            let m = model(cell, seed);
            for n in 1..=4 {
                let full = exhaustive(&m, 1, n);
                let found = beam(&m, 1, 3usize.pow(n as u32), n);
                assert_eq!(found.ids, full.ids, "{cell} seed {seed} n {n}");
                assert!((found.log_prob - full.log_prob).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn a_wider_beam_never_scores_worse_here_and_width_one_is_argmax() {
        for (seed, &cell) in (0..6).flat_map(|s| Cell::ALL.iter().map(move |c| (s, c))) {
            let m = model(cell, seed);
            let scores: Vec<f64> = [1, 2, 3, 5, 9, 27, 81]
                .iter()
                .map(|&w| beam(&m, 2, w, 5).log_prob)
                .collect();
            for pair in scores.windows(2) {
                assert!(pair[1] >= pair[0] - 1e-12, "{cell} seed {seed}: {scores:?}");
            }
            let mut s = Sampler::new(&m, Draw::Argmax).unwrap();
            let mut greedy = vec![];
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            crate::sample::generate(&mut s, &[2], 12, &mut rng, |id| {
                greedy.push(id);
                Ok::<_, ()>(())
            })
            .unwrap();
            assert_eq!(beam(&m, 2, 1, 12).ids, greedy, "{cell} seed {seed}");
        }
    }

    #[test]
    fn beams_come_best_first_and_the_sampler_keeps_the_best_state() {
        let m = model(Cell::Lstm, 1);
        let mut s = Sampler::new(&m, Draw::Argmax).unwrap();
        s.feed(0);
        let beams = search(&mut s, 4, 6);
        assert_eq!(beams.len(), 4);
        assert!(beams.windows(2).all(|b| b[0].log_prob >= b[1].log_prob));
        // the state is the one after the best sequence's first five characters
        let mut check = Sampler::new(&m, Draw::Argmax).unwrap();
        check.feed(0);
        beams[0].ids[..5].iter().for_each(|&id| check.feed(id));
        assert_eq!(s.state(), check.state());
    }
}
