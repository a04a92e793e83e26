//! Writing text from a model: priming the hidden state with a seed (a string or
//! a stream), then choosing one character at a time from softmax(y / temperature),
//! optionally restricted to the k likeliest and then to the nucleus of
//! probability p, or greedily (argmax).

pub mod beam;
pub mod score;

use std::io::Read;

use rand::Rng;
use thiserror::Error;

use crate::io::data::Vocab;
use crate::io::utf8::{self, PieceError};
use crate::linalg::{self, Real};
use crate::model::{Model, State, Workspace};

#[derive(Debug, Error)]
pub enum SampleError {
    #[error(
        "seed character {ch:?} (U+{code:04X}) on line {line}, column {column} is not in the model's \
         vocabulary of {vocab_size} characters (`charrnn info` lists them; --unknown skip leaves such \
         characters out)"
    )]
    UnknownSeedChar {
        ch: char,
        code: u32,
        vocab_size: usize,
        line: u64,
        column: u64,
    },
    #[error("the seed is not UTF-8 text: invalid byte at offset {offset}")]
    BadUtf8 { offset: u64 },
    #[error("reading the seed: {0}")]
    Io(#[from] std::io::Error),
    #[error("temperature must be a positive number, got {0}")]
    BadTemperature(f64),
    #[error("top-k must be at least 1")]
    BadTopK,
    #[error("top-p must be above 0 and at most 1, got {0}")]
    BadTopP(f64),
}

/// What to do with a seed character the model has never seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UnknownChars {
    /// Stop with an error naming the character and where it is
    #[default]
    Error,
    /// Leave it out, and count it
    Skip,
}

/// What a prime held: how many characters were fed, and those left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Primed {
    pub fed: u64,
    /// The last character fed, if any: the sampler's distribution follows it.
    pub last: Option<u32>,
    pub skipped: u64,
    /// The first character left out, with its position (0-based, in characters).
    pub first_skipped: Option<(char, u64)>,
}

/// How the next character is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Draw {
    /// From softmax(y / temperature); then, if given, over the `top_k` likeliest
    /// characters only; then over the smallest set of the likeliest whose
    /// probabilities (after the first two steps) add up to at least `top_p`.
    Sample {
        temperature: f64,
        top_k: Option<usize>,
        top_p: Option<f64>,
    },
    /// Always the likeliest (char-rnn's sample=0).
    Argmax,
}

impl Default for Draw {
    fn default() -> Self {
        Draw::Sample {
            temperature: 1.0,
            top_k: None,
            top_p: None,
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
    /// (V): character ids by falling probability, for top-p
    order: Vec<u32>,
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
        if let Draw::Sample {
            temperature,
            top_k,
            top_p,
        } = draw
        {
            if !(temperature > 0.0 && temperature.is_finite()) {
                return Err(SampleError::BadTemperature(temperature));
            }
            if top_k == Some(0) {
                return Err(SampleError::BadTopK);
            }
            if let Some(p) = top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
                return Err(SampleError::BadTopP(p));
            }
        }
        let mut ws = Workspace::new(model.config, 1, 1);
        ws.prepare_for_sampling(model);
        Ok(Sampler {
            ws,
            probs: vec![T::zero(); model.config.vocab],
            order: Vec::new(),
            model,
            state,
            draw,
        })
    }

    /// Advances the hidden state with character `id` and computes the next distribution.
    pub fn feed(&mut self, id: u32) {
        let logits = self.model.predict(&[id], &mut self.state, &mut self.ws);
        self.probs.copy_from_slice(logits);
        if let Draw::Sample {
            temperature,
            top_k,
            top_p,
        } = self.draw
        {
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
            if let Some(p) = top_p.filter(|&p| p < 1.0) {
                self.keep_nucleus(p);
            }
        }
    }

    /// Keeps the smallest set of likeliest characters whose probabilities add up
    /// to at least p (ties broken by the lower id), renormalized.
    fn keep_nucleus(&mut self, p: f64) {
        let probs = &mut self.probs;
        self.order.clear();
        self.order.extend(0..probs.len() as u32);
        self.order.sort_by(|&a, &b| {
            let (pa, pb) = (probs[a as usize], probs[b as usize]);
            pb.partial_cmp(&pa)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.cmp(&b))
        });
        let (mut kept, mut total) = (self.order.len(), 0.0f64);
        for (n, &i) in self.order.iter().enumerate() {
            total += probs[i as usize].as_f64();
            if total >= p {
                kept = n + 1;
                break;
            }
        }
        let (inside, outside) = self.order.split_at(kept);
        outside.iter().for_each(|&i| probs[i as usize] = T::zero());
        let sum: f64 = inside.iter().map(|&i| probs[i as usize].as_f64()).sum();
        let inv = T::c(1.0 / sum);
        inside
            .iter()
            .for_each(|&i| probs[i as usize] = probs[i as usize] * inv);
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

    /// Puts in another hidden state, handing back the one it held; the
    /// distribution is stale until the next `feed`.
    pub fn replace_state(&mut self, state: State<T>) -> State<T> {
        std::mem::replace(&mut self.state, state)
    }

    /// Changes how characters are chosen from the next `feed` on.
    pub fn set_draw(&mut self, draw: Draw) -> Result<(), SampleError> {
        Sampler::with_state(self.model, State::zeros(&self.model.config, 1), draw)?;
        self.draw = draw;
        Ok(())
    }

    pub fn draw_setting(&self) -> Draw {
        self.draw
    }

    /// Forgets everything fed so far: back to the zero hidden state.
    pub fn reset(&mut self) {
        self.state = State::zeros(&self.model.config, 1);
    }

    pub fn model(&self) -> &'m Model<T> {
        self.model
    }
}

/// Turns a seed string into ids, naming the first character the model does not know.
pub fn encode_seed(vocab: &Vocab, seed: &str) -> Result<Vec<u32>, SampleError> {
    let mut ids = Vec::with_capacity(seed.len());
    read_prime(vocab, seed.as_bytes(), UnknownChars::Error, |id| {
        ids.push(id);
        Ok(())
    })?;
    Ok(ids)
}

/// Feeds a prime to the sampler as it is read, never holding it whole: the
/// hidden state ends as if the text had been fed one character at a time.
pub fn feed_prime<T: Real>(
    sampler: &mut Sampler<'_, T>,
    vocab: &Vocab,
    reader: impl Read,
    unknown: UnknownChars,
) -> Result<Primed, SampleError> {
    read_prime(vocab, reader, unknown, |id| {
        sampler.feed(id);
        Ok(())
    })
}

/// Decodes UTF-8 from `reader` in pieces and passes each known character's id
/// to `each`, skipping or refusing the others.
pub fn read_prime(
    vocab: &Vocab,
    mut reader: impl Read,
    unknown: UnknownChars,
    mut each: impl FnMut(u32) -> Result<(), SampleError>,
) -> Result<Primed, SampleError> {
    let mut primed = Primed::default();
    let (mut position, mut line, mut column) = (0u64, 1u64, 1u64);
    let decoded = utf8::pieces(&mut reader, 1 << 16, |_, text| {
        for ch in text.chars() {
            match vocab.id(ch) {
                Some(id) => {
                    each(id)?;
                    primed.fed += 1;
                    primed.last = Some(id);
                }
                None if unknown == UnknownChars::Skip => {
                    primed.skipped += 1;
                    primed.first_skipped.get_or_insert((ch, position));
                }
                None => {
                    return Err(SampleError::UnknownSeedChar {
                        ch,
                        code: ch as u32,
                        vocab_size: vocab.len(),
                        line,
                        column,
                    });
                }
            }
            position += 1;
            (line, column) = if ch == '\n' {
                (line + 1, 1)
            } else {
                (line, column + 1)
            };
        }
        Ok(true)
    });
    match decoded {
        Ok(_) => Ok(primed),
        Err(PieceError::Io(e)) => Err(e.into()),
        Err(PieceError::Invalid { offset }) => Err(SampleError::BadUtf8 { offset }),
        Err(PieceError::Each(e)) => Err(e),
    }
}

/// Draws `n` characters from a sampler already fed, passing each to `emit` as
/// soon as it is drawn; the last one is not fed back.
pub fn continue_for<T: Real, R: Rng, E>(
    sampler: &mut Sampler<'_, T>,
    n: usize,
    rng: &mut R,
    mut emit: impl FnMut(u32) -> Result<(), E>,
) -> Result<(), E> {
    for i in 0..n {
        let id = sampler.draw(rng);
        emit(id)?;
        if i + 1 < n {
            sampler.feed(id);
        }
    }
    Ok(())
}

/// Feeds every id of `prime` (non-empty), then draws `n` characters, passing each to
/// `emit` as soon as it is drawn.
pub fn generate<T: Real, R: Rng, E>(
    sampler: &mut Sampler<'_, T>,
    prime: &[u32],
    n: usize,
    rng: &mut R,
    emit: impl FnMut(u32) -> Result<(), E>,
) -> Result<(), E> {
    for &id in prime {
        sampler.feed(id);
    }
    continue_for(sampler, n, rng, emit)
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
            top_p: None,
        };
        assert!(max(probs(t(0.1))) > 0.99);
        assert!(max(probs(t(1.0))) < max(probs(t(0.5))));
        assert!(max(probs(t(10.0))) < 0.3);
        let top2 = probs(Draw::Sample {
            temperature: 1.0,
            top_k: Some(2),
            top_p: None,
        });
        assert_eq!(&top2[..3], &[0.0, 0.0, 0.0]);
        assert!((top2[3] + top2[4] - 1.0).abs() < 1e-12 && top2[4] > top2[3]);
        assert!(
            run(
                &m,
                Draw::Sample {
                    temperature: 1.0,
                    top_k: Some(2),
                    top_p: None,
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
        for (temperature, top_k, top_p) in [
            (0.0, None, None),
            (f64::NAN, None, None),
            (1.0, Some(0), None),
            (1.0, None, Some(0.0)),
        ] {
            let draw = Draw::Sample {
                temperature,
                top_k,
                top_p,
            };
            assert!(Sampler::new(&m, draw).is_err(), "{draw:?}");
        }
        let vocab = Vocab::from_text("abc");
        let err = encode_seed(&vocab, "abz").unwrap_err().to_string();
        assert!(
            err.contains("'z' (U+007A)") && err.contains("vocabulary of 3"),
            "{err}"
        );
    }

    /// Hands out one byte per read, so every multi-byte character is split.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.split_first() {
                Some((&b, rest)) if !buf.is_empty() => {
                    buf[0] = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn a_streamed_prime_reads_split_characters_and_skips_or_names_unknown_ones() {
        let vocab = Vocab::from_text("aé\n€");
        let text = "aé\n☃€a\n\n a";
        let mut ids = vec![];
        let primed = read_prime(&vocab, Trickle(text.as_bytes()), UnknownChars::Skip, |id| {
            ids.push(id);
            Ok(())
        })
        .unwrap();
        let want: Vec<u32> = "aé\n€a\n\na"
            .chars()
            .map(|c| vocab.id(c).unwrap())
            .collect();
        assert_eq!(ids, want);
        assert_eq!((primed.fed, primed.skipped), (8, 2));
        assert_eq!(primed.first_skipped, Some(('☃', 3)));
        assert_eq!(primed.last, vocab.id('a'));
        let err = read_prime(
            &vocab,
            Trickle(text.as_bytes()),
            UnknownChars::Error,
            |_| Ok(()),
        );
        assert!(
            matches!(
                err,
                Err(SampleError::UnknownSeedChar {
                    ch: '☃',
                    line: 2,
                    column: 1,
                    ..
                })
            ),
            "{err:?}"
        );
        for (bytes, offset) in [(&b"ab\xffc"[..], 2), (b"a\xc3", 1), (b"\xe2\x82", 0)] {
            let err = read_prime(&vocab, Trickle(bytes), UnknownChars::Skip, |_| Ok(()));
            assert!(
                matches!(err, Err(SampleError::BadUtf8 { offset: o }) if o == offset),
                "{bytes:?}: {err:?}"
            );
        }
    }

    #[test]
    fn top_p_keeps_the_smallest_likeliest_set_reaching_p_after_top_k() {
        // softmax([0, 1, 2, 3, 4]) = [0.012, 0.032, 0.086, 0.234, 0.636]
        let m = biased();
        let probs = |top_k, top_p| {
            let draw = Draw::Sample {
                temperature: 1.0,
                top_k,
                top_p: Some(top_p),
            };
            let mut s = Sampler::new(&m, draw).unwrap();
            s.feed(0);
            s.probs().to_vec()
        };
        let kept = |p: Vec<f64>| p.iter().filter(|&&x| x > 0.0).count();
        assert_eq!(kept(probs(None, 0.5)), 1);
        assert_eq!(kept(probs(None, 0.8)), 2);
        assert_eq!(kept(probs(None, 0.95)), 3);
        assert_eq!(kept(probs(None, 1.0)), 5);
        // after top-k 2 the two left are 0.269 and 0.731: p 0.8 keeps both
        let p = probs(Some(2), 0.8);
        assert_eq!(kept(p.clone()), 2);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let p = probs(None, 0.8);
        assert!((p[3] + p[4] - 1.0).abs() < 1e-12 && p[4] > p[3]);
        assert!(matches!(
            Sampler::new(
                &m,
                Draw::Sample {
                    temperature: 1.0,
                    top_k: None,
                    top_p: Some(0.0)
                }
            ),
            Err(SampleError::BadTopP(_))
        ));
    }
}
