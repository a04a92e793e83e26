//! Scoring a text: the model's surprisal at each character, -ln p(x_t | x_<t),
//! and its likeliest guesses there. The text runs through one stream from a zero
//! state, one character at a time; the first character has nothing before it and
//! is not scored.

use crate::linalg::Real;
use crate::model::Model;
use crate::sample::beam::log_softmax;
use crate::sample::{Draw, Sampler};

/// How many guesses each position reports.
pub const GUESSES: usize = 5;

/// What the model made of one character.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// -ln p(this character) in nats
    pub loss: f64,
    /// The likeliest characters and their probabilities, likeliest first (ties to
    /// the lower id)
    pub top: Vec<(u32, f64)>,
}

pub struct Scorer<'m, T> {
    sampler: Sampler<'m, T>,
    started: bool,
}

impl<'m, T: Real> Scorer<'m, T> {
    pub fn new(model: &'m Model<T>) -> Self {
        Scorer {
            sampler: Sampler::new(model, Draw::Argmax).expect("argmax has no settings to refuse"),
            started: false,
        }
    }

    /// Scores character `id` against what came before (None for the first), then
    /// feeds it.
    pub fn next(&mut self, id: u32) -> Option<Scored> {
        let scored = self.started.then(|| {
            let log_p = log_softmax(self.sampler.probs());
            let mut order: Vec<u32> = (0..log_p.len() as u32).collect();
            order.sort_by(|&a, &b| {
                log_p[b as usize]
                    .total_cmp(&log_p[a as usize])
                    .then(a.cmp(&b))
            });
            Scored {
                loss: -log_p[id as usize],
                top: order
                    .iter()
                    .take(GUESSES)
                    .map(|&v| (v, log_p[v as usize].exp()))
                    .collect(),
            }
        });
        self.sampler.feed(id);
        self.started = true;
        scored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, Config};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn losses_are_the_negative_log_probabilities_the_sampler_sees() {
        let config = Config {
            cell: Cell::Gru,
            vocab: 7,
            hidden: 10,
            layers: 2,
            embedding: 0,
        };
        let m = Model::<f64>::init(config, &mut ChaCha8Rng::seed_from_u64(5));
        let ids = [3u32, 1, 4, 1, 5, 6, 2, 6];
        let mut scorer = Scorer::new(&m);
        let mut s = Sampler::new(&m, Draw::default()).unwrap();
        assert_eq!(scorer.next(ids[0]), None);
        s.feed(ids[0]);
        for &id in &ids[1..] {
            let scored = scorer.next(id).unwrap();
            let probs = s.probs().to_vec();
            assert!((scored.loss + probs[id as usize].ln()).abs() < 1e-12);
            assert_eq!(scored.top.len(), GUESSES);
            let best = probs.iter().cloned().fold(0.0, f64::max);
            assert!((scored.top[0].1 - best).abs() < 1e-12);
            assert!(scored.top.windows(2).all(|w| w[0].1 >= w[1].1));
            s.feed(id);
        }
    }
}
