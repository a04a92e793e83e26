//! Writing text from a model: priming the hidden state with a seed, then drawing
//! one character at a time from softmax(y / temperature).

use rand::Rng;
use thiserror::Error;

use crate::data::Vocab;
use crate::linalg::{self, Real};
use crate::model::Rnn;

#[derive(Debug, Error)]
pub enum SampleError {
    #[error(
        "seed character {ch:?} (U+{code:04X}) is not in the model's vocabulary of {vocab_size} characters \
         (`charrnn info` lists them)"
    )]
    UnknownSeedChar { ch: char, code: u32, vocab_size: usize },
    #[error("temperature must be a positive number, got {0}")]
    BadTemperature(f64),
}

/// A running generator: hidden state plus the distribution over the next character.
pub struct Sampler<'m, T> {
    model: &'m Rnn<T>,
    h: Vec<T>,
    /// (V): probabilities of the next character after the last `feed`
    probs: Vec<T>,
    scratch: Vec<T>,
    inv_temperature: T,
}

impl<'m, T: Real> Sampler<'m, T> {
    pub fn new(model: &'m Rnn<T>, h: &[T], temperature: f64) -> Result<Self, SampleError> {
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(SampleError::BadTemperature(temperature));
        }
        Ok(Sampler {
            model,
            h: h.to_vec(),
            probs: vec![T::zero(); model.dims.vocab],
            scratch: vec![T::zero(); model.dims.hidden],
            inv_temperature: T::c(1.0 / temperature),
        })
    }

    /// Advances the hidden state with character `id` and computes the next distribution.
    pub fn feed(&mut self, id: u32) {
        self.model.step(id, &mut self.h, &mut self.probs, &mut self.scratch);
        if self.inv_temperature != T::one() {
            for y in &mut self.probs {
                *y = *y * self.inv_temperature;
            }
        }
        linalg::softmax_in_place(&mut self.probs);
    }

    /// Draws the next character id from the current distribution.
    pub fn draw<R: Rng>(&self, rng: &mut R) -> u32 {
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

    pub fn probs(&self) -> &[T] {
        &self.probs
    }
}

/// Turns a seed string into ids, naming the first character the model does not know.
pub fn encode_seed(vocab: &Vocab, seed: &str) -> Result<Vec<u32>, SampleError> {
    seed.chars()
        .map(|c| vocab.id(c).ok_or(SampleError::UnknownSeedChar { ch: c, code: c as u32, vocab_size: vocab.len() }))
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
    use crate::model::RnnDims;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn model() -> Rnn<f64> {
        Rnn::init(RnnDims { vocab: 5, hidden: 8 }, &mut ChaCha8Rng::seed_from_u64(3))
    }

    #[test]
    fn same_rng_seed_gives_same_text_and_ids_stay_in_vocabulary() {
        let m = model();
        let run = |seed| {
            let mut s = Sampler::new(&m, &[0.0; 8], 1.0).unwrap();
            let mut out = vec![];
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            generate(&mut s, &[1, 2], 300, &mut rng, |id| {
                out.push(id);
                Ok::<_, ()>(())
            })
            .unwrap();
            out
        };
        let (a, b, c) = (run(7), run(7), run(8));
        assert_eq!(a.len(), 300);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|&id| id < 5));
    }

    #[test]
    fn low_temperature_sharpens_the_distribution() {
        let mut m = model();
        // make logits clearly unequal: by = [0, 1, 2, 3, 4]
        let n = m.params.len();
        for (i, b) in m.params[n - 5..].iter_mut().enumerate() {
            *b = i as f64;
        }
        let max_prob = |t| {
            let mut s = Sampler::new(&m, &[0.0; 8], t).unwrap();
            s.feed(0);
            s.probs().iter().cloned().fold(0.0, f64::max)
        };
        assert!(max_prob(0.1) > 0.99);
        assert!(max_prob(1.0) < max_prob(0.5));
        assert!(max_prob(10.0) < 0.3);
    }

    #[test]
    fn bad_temperature_and_unknown_seed_char_are_errors() {
        let m = model();
        assert!(Sampler::new(&m, &[0.0; 8], 0.0).is_err());
        assert!(Sampler::new(&m, &[0.0; 8], f64::NAN).is_err());
        let vocab = Vocab::from_text("abc");
        let err = encode_seed(&vocab, "abz").unwrap_err().to_string();
        assert!(err.contains("'z' (U+007A)") && err.contains("vocabulary of 3"), "{err}");
    }
}
