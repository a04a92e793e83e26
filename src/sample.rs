//! Writing text from a model: priming the hidden state with a seed, then choosing
//! one character at a time from softmax(y / temperature), optionally restricted to
//! the k likeliest, or greedily (argmax).

use rand::Rng;
use thiserror::Error;

use crate::data::Vocab;
use crate::linalg::{self, Real};
use crate::model::{Model, State, Workspace};

#[derive(Debug, Error)]
pub enum SampleError {
    #[error(
        "seed character {ch:?} (U+{code:04X}) is not in the model's vocabulary of {vocab_size} characters \
         (`charrnn info` lists them)"
    )]
    UnknownSeedChar {
        ch: char,
        code: u32,
        vocab_size: usize,
    },
    #[error("temperature must be a positive number, got {0}")]
    BadTemperature(f64),
    #[error("top-k must be at least 1")]
    BadTopK,
}

/// How the next character is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Draw {
    /// From softmax(y / temperature), over the `top_k` likeliest characters if given.
    Sample {
        temperature: f64,
        top_k: Option<usize>,
    },
    /// Always the likeliest (char-rnn's sample=0).
    Argmax,
}

impl Default for Draw {
    fn default() -> Self {
        Draw::Sample {
            temperature: 1.0,
            top_k: None,
        }
    }
}

/// A running generator: one stream's hidden state plus the next-character distribution.
pub struct Sampler<'m, T> {
    model: &'m Model<T>,
    state: State<T>,
    ws: Workspace<T>,
    /// (V): logits after the last `feed`, then probabilities when sampling
    probs: Vec<T>,
    draw: Draw,
}

impl<'m, T: Real> Sampler<'m, T> {
    /// Starts from a zero hidden state.
    pub fn new(model: &'m Model<T>, draw: Draw) -> Result<Self, SampleError> {
        Sampler::with_state(model, State::zeros(&model.config, 1), draw)
    }

    /// Starts from a given single-stream hidden state.
    pub fn with_state(
        model: &'m Model<T>,
        state: State<T>,
        draw: Draw,
    ) -> Result<Self, SampleError> {
        if let Draw::Sample { temperature, top_k } = draw {
            if !(temperature > 0.0 && temperature.is_finite()) {
                return Err(SampleError::BadTemperature(temperature));
            }
            if top_k == Some(0) {
                return Err(SampleError::BadTopK);
            }
        }
        let mut ws = Workspace::new(model.config, 1, 1);
        ws.prepare_for_sampling(model);
        Ok(Sampler {
            ws,
            probs: vec![T::zero(); model.config.vocab],
            model,
            state,
            draw,
        })
    }

    /// Advances the hidden state with character `id` and computes the next distribution.
    pub fn feed(&mut self, id: u32) {
        let logits = self.model.predict(&[id], &mut self.state, &mut self.ws);
        self.probs.copy_from_slice(logits);
        if let Draw::Sample { temperature, top_k } = self.draw {
            if temperature != 1.0 {
                let inv = T::c(1.0 / temperature);
                self.probs.iter_mut().for_each(|y| *y = *y * inv);
            }
            if let Some(k) = top_k.filter(|&k| k < self.probs.len()) {
                // keep the k largest logits (ties at the threshold stay too)
                let mut sorted = self.probs.clone();
                sorted.sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
                let threshold = sorted[k - 1];
                self.probs
                    .iter_mut()
                    .filter(|y| **y < threshold)
                    .for_each(|y| *y = T::neg_infinity());
            }
            linalg::softmax_in_place(&mut self.probs);
        }
    }

    /// Chooses the next character id from the current distribution.
    pub fn draw<R: Rng>(&self, rng: &mut R) -> u32 {
        if self.draw == Draw::Argmax {
            let mut best = 0;
            for (i, &y) in self.probs.iter().enumerate() {
                if y > self.probs[best] {
                    best = i;
                }
            }
            return best as u32;
        }
        let u = rng.random::<f64>();
        let mut cumulative = 0.0f64;
        for (i, &p) in self.probs.iter().enumerate() {
            cumulative += p.as_f64();
            if u < cumulative {
                return i as u32;
            }
        }
        // rounding left the total a hair below u: take the last possible character
        self.probs.iter().rposition(|&p| p > T::zero()).unwrap_or(0) as u32
    }

    /// The distribution after the last `feed` (logits under argmax).
    pub fn probs(&self) -> &[T] {
        &self.probs
    }

    /// The hidden state after the last `feed`.
    pub fn state(&self) -> &State<T> {
        &self.state
    }
}

/// Turns a seed string into ids, naming the first character the model does not know.
pub fn encode_seed(vocab: &Vocab, seed: &str) -> Result<Vec<u32>, SampleError> {
    seed.chars()
        .map(|c| {
            vocab.id(c).ok_or(SampleError::UnknownSeedChar {
                ch: c,
                code: c as u32,
                vocab_size: vocab.len(),
            })
        })
        .collect()
}

/// Feeds every id of `prime` (non-empty), then draws `n` characters, passing each to
/// `emit` as soon as it is drawn.
pub fn generate<T: Real, R: Rng, E>(
    sampler: &mut Sampler<'_, T>,
    prime: &[u32],
    n: usize,
    rng: &mut R,
    mut emit: impl FnMut(u32) -> Result<(), E>,
) -> Result<(), E> {
    for &id in prime {
        sampler.feed(id);
    }
    for i in 0..n {
        let id = sampler.draw(rng);
        emit(id)?;
        if i + 1 < n {
            sampler.feed(id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, Config};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn model(cell: Cell) -> Model<f64> {
        let config = Config {
            cell,
            vocab: 5,
            hidden: 8,
            layers: 2,
            embedding: 0,
        };
        Model::init(config, &mut ChaCha8Rng::seed_from_u64(3))
    }

    fn run(m: &Model<f64>, draw: Draw, seed: u64) -> Vec<u32> {
        let mut s = Sampler::new(m, draw).unwrap();
        let mut out = vec![];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        generate(&mut s, &[1, 2], 300, &mut rng, |id| {
            out.push(id);
            Ok::<_, ()>(())
        })
        .unwrap();
        out
    }

    #[test]
    fn same_rng_seed_gives_same_text_and_ids_stay_in_vocabulary() {
        for &cell in Cell::ALL {
            let m = model(cell);
            let (a, b, c) = (
                run(&m, Draw::default(), 7),
                run(&m, Draw::default(), 7),
                run(&m, Draw::default(), 8),
            );
            assert_eq!(a.len(), 300);
            assert_eq!(a, b);
            assert_ne!(a, c, "{cell}");
            assert!(a.iter().all(|&id| id < 5));
        }
    }

    /// A model whose output ignores the input: softmax(by) with by = [0, 1, 2, 3, 4].
    fn biased() -> Model<f64> {
        let mut m = model(Cell::Rnn);
        let why = m.config.layout().why;
        m.params[why].fill(0.0);
        let by = m.config.layout().by;
        for (i, b) in m.params[by].iter_mut().enumerate() {
            *b = i as f64;
        }
        m
    }

    #[test]
    fn temperature_top_k_and_argmax_shape_the_distribution() {
        let m = biased();
        let probs = |draw| {
            let mut s = Sampler::new(&m, draw).unwrap();
            s.feed(0);
            s.probs().to_vec()
        };
        let max = |v: Vec<f64>| v.iter().cloned().fold(0.0, f64::max);
        let t = |temperature| Draw::Sample {
            temperature,
            top_k: None,
        };
        assert!(max(probs(t(0.1))) > 0.99);
        assert!(max(probs(t(1.0))) < max(probs(t(0.5))));
        assert!(max(probs(t(10.0))) < 0.3);
        let top2 = probs(Draw::Sample {
            temperature: 1.0,
            top_k: Some(2),
        });
        assert_eq!(&top2[..3], &[0.0, 0.0, 0.0]);
        assert!((top2[3] + top2[4] - 1.0).abs() < 1e-12 && top2[4] > top2[3]);
        assert!(
            run(
                &m,
                Draw::Sample {
                    temperature: 1.0,
                    top_k: Some(2)
                },
                1
            )
            .iter()
            .all(|&id| id >= 3)
        );
        assert!(run(&m, Draw::Argmax, 1).iter().all(|&id| id == 4));
    }

    #[test]
    fn bad_draw_settings_and_unknown_seed_char_are_errors() {
        let m = model(Cell::Gru);
        assert!(
            Sampler::new(
                &m,
                Draw::Sample {
                    temperature: 0.0,
                    top_k: None
                }
            )
            .is_err()
        );
        assert!(
            Sampler::new(
                &m,
                Draw::Sample {
                    temperature: f64::NAN,
                    top_k: None
                }
            )
            .is_err()
        );
        assert!(
            Sampler::new(
                &m,
                Draw::Sample {
                    temperature: 1.0,
                    top_k: Some(0)
                }
            )
            .is_err()
        );
        let vocab = Vocab::from_text("abc");
        let err = encode_seed(&vocab, "abz").unwrap_err().to_string();
        assert!(
            err.contains("'z' (U+007A)") && err.contains("vocabulary of 3"),
            "{err}"
        );
    }
}
