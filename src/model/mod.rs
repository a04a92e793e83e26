//! The models a trainer and a sampler see: an input (one-hot or a learned
//! embedding), L stacked recurrent layers (RNN, LSTM or GRU), and a softmax
//! output layer. The model never touches files, the terminal or the command line.
//!
//! All parameters live in one flat buffer (llm.c style); [`Config::tensors`] says
//! which tensor sits where. Gradients and optimizer state use the same layout, so
//! clipping and the optimizers are single loops.

pub mod cell;
mod head;
mod input;
mod network;
mod output;
mod recurrence;
mod sampling;
mod softmax;
mod split;
mod workspace;

use std::ops::Range;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::linalg::Real;

pub use cell::{Cell, CellKind};
pub use network::stream_scale;
pub use workspace::Workspace;

/// The architecture: everything that fixes the parameter layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub cell: Cell,
    /// V: vocabulary size (softmax width; one-hot input width).
    pub vocab: usize,
    /// H: hidden units per layer.
    pub hidden: usize,
    /// L: stacked layers.
    pub layers: usize,
    /// E: embedding width; 0 = one-hot input as in min-char-rnn.
    pub embedding: usize,
}

/// How a tensor's values start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// N(0, 1) * scale
    Normal(f64),
    /// U(-bound, bound)
    Uniform(f64),
    Zero,
}

/// One parameter tensor: its name (min-char-rnn's for the default model), its
/// row-major shape, where it starts in the flat buffer, and how it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: [usize; 2],
    pub offset: usize,
    pub init: Init,
}

impl TensorSpec {
    pub fn len(&self) -> usize {
        self.shape[0] * self.shape[1]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Where one layer's tensors sit in the flat buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    /// (GH, I): input weights
    pub wx: Range<usize>,
    /// (GH, H): recurrent weights
    pub wh: Range<usize>,
    /// (GH): input-side bias
    pub b: Range<usize>,
    /// (H): the cell's extra bias, if it has one (the GRU's bhn, inside
    /// r * (Wh_n h + bhn))
    pub extra: Option<Range<usize>>,
}

/// Where every tensor sits in the flat buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// (V, E)
    pub embed: Option<Range<usize>>,
    pub layers: Vec<LayerParams>,
    /// (V, H)
    pub why: Range<usize>,
    /// (V)
    pub by: Range<usize>,
    pub total: usize,
}

impl Config {
    /// min-char-rnn's model: one tanh layer over one-hot input.
    pub fn min_char_rnn(vocab: usize, hidden: usize) -> Config {
        Config {
            cell: Cell::Rnn,
            vocab,
            hidden,
            layers: 1,
            embedding: 0,
        }
    }

    /// Width of layer `l`'s input.
    pub fn input_size(&self, l: usize) -> usize {
        match (l, self.embedding) {
            (0, 0) => self.vocab,
            (0, e) => e,
            _ => self.hidden,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.vocab == 0 || self.hidden == 0 || self.layers == 0 {
            return Err(format!(
                "vocabulary {}, hidden {}, layers {} must all be at least 1",
                self.vocab, self.hidden, self.layers
            ));
        }
        let big = |x: usize| x > 1 << 20;
        if big(self.vocab) || big(self.hidden) || big(self.embedding) || self.layers > 1024 {
            return Err("model dimensions are implausibly large".into());
        }
        let mut total: usize = 0;
        for t in self.tensors() {
            total = t.shape[0]
                .checked_mul(t.shape[1])
                .and_then(|n| total.checked_add(n))
                .ok_or("model size overflows")?;
        }
        Ok(())
    }

    /// Every parameter tensor in buffer order: [embed], per layer Wx, Wh, b
    /// [, the cell's extra bias], then Why, by. The default model's tensors are min-char-rnn's
    /// Wxh (H, V), Whh (H, H), bh (H), Why (V, H), by (V).
    pub fn tensors(&self) -> Vec<TensorSpec> {
        let (v, h, g) = (self.vocab, self.hidden, self.cell.gates());
        let (weight, bias) = self.cell.init(h);
        let mut specs = Vec::new();
        let mut offset = 0;
        let mut push = |name: String, shape: [usize; 2], init: Init| {
            specs.push(TensorSpec {
                name,
                shape,
                offset,
                init,
            });
            offset += shape[0] * shape[1];
        };
        if self.embedding > 0 {
            push("embed".into(), [v, self.embedding], Init::Normal(1.0));
        }
        for l in 0..self.layers {
            let suffix = if l == 0 {
                String::new()
            } else {
                format!("_{l}")
            };
            let [wx, wh, b] = self.cell.names();
            push(format!("{wx}{suffix}"), [g * h, self.input_size(l)], weight);
            push(format!("{wh}{suffix}"), [g * h, h], weight);
            push(format!("{b}{suffix}"), [g * h, 1], bias);
            if let Some(extra) = self.cell.extra_bias() {
                push(format!("{extra}{suffix}"), [h, 1], bias);
            }
        }
        push("Why".into(), [v, h], weight);
        push("by".into(), [v, 1], bias);
        specs
    }

    pub fn num_params(&self) -> usize {
        self.tensors().iter().map(TensorSpec::len).sum()
    }

    pub fn layout(&self) -> Layout {
        let specs = self.tensors();
        let mut it = specs.iter();
        let embed = (self.embedding > 0).then(|| it.next().expect("embed").range());
        let layers = (0..self.layers)
            .map(|_| LayerParams {
                wx: it.next().expect("Wx").range(),
                wh: it.next().expect("Wh").range(),
                b: it.next().expect("b").range(),
                extra: self
                    .cell
                    .extra_bias()
                    .map(|name| it.next().expect(name).range()),
            })
            .collect();
        let why = it.next().expect("Why").range();
        let by = it.next().expect("by").range();
        Layout {
            embed,
            layers,
            why,
            total: by.end,
            by,
        }
    }

    /// The weights that weight decay shrinks: every weight matrix (Wx, Wh, Why)
    /// and the embedding, which is the one-hot model's Wxh factored in two (so a
    /// one-hot and an embedding model are treated alike, as nanoGPT decays its
    /// token embedding); not the biases, whose size says nothing about overfitting.
    pub fn weight_ranges(&self) -> Vec<Range<usize>> {
        let layout = self.layout();
        let mut out: Vec<_> = layout.embed.iter().cloned().collect();
        for l in &layout.layers {
            out.push(l.wx.clone());
            out.push(l.wh.clone());
        }
        out.push(layout.why.clone());
        out
    }

    pub fn describe(&self) -> String {
        let input = if self.embedding > 0 {
            format!("embedding {}", self.embedding)
        } else {
            "one-hot input".into()
        };
        let cell = self.cell.title();
        format!(
            "{cell}, {} layer(s) of {}, {input}, vocabulary of {} characters",
            self.layers, self.hidden, self.vocab
        )
    }
}

/// The model: its architecture and its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model<T> {
    pub config: Config,
    /// Flat parameters, laid out as [`Config::tensors`].
    pub params: Vec<T>,
}

impl<T: Real> Model<T> {
    /// Draws every tensor as [`Config::tensors`] says, in buffer order.
    pub fn init<R: Rng>(config: Config, rng: &mut R) -> Self {
        let mut params = vec![T::zero(); config.num_params()];
        for spec in config.tensors() {
            let values = &mut params[spec.range()];
            match spec.init {
                Init::Normal(scale) => values
                    .iter_mut()
                    .for_each(|w| *w = T::randn(rng) * T::c(scale)),
                Init::Uniform(bound) => values
                    .iter_mut()
                    .for_each(|w| *w = T::c(rng.random_range(-bound..bound))),
                Init::Zero => {}
            }
        }
        Model { config, params }
    }

    pub fn from_params(config: Config, params: Vec<T>) -> Self {
        assert_eq!(
            params.len(),
            config.num_params(),
            "parameter count does not match the architecture"
        );
        Model { config, params }
    }

    /// A tensor by name, as (spec, values).
    pub fn tensor(&self, name: &str) -> Option<(TensorSpec, &[T])> {
        let spec = self.config.tensors().into_iter().find(|t| t.name == name)?;
        let values = &self.params[spec.range()];
        Some((spec, values))
    }
}

/// The recurrent state carried from one chunk to the next, for each of B streams:
/// per layer h (B, H) and, for the LSTM, c (B, H).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State<T> {
    pub h: Vec<Vec<T>>,
    pub c: Vec<Vec<T>>,
}

impl<T: Real> State<T> {
    pub fn zeros(config: &Config, batch: usize) -> Self {
        let layer = vec![T::zero(); batch * config.hidden];
        let c = if config.cell.has_cell_state() {
            vec![layer.clone(); config.layers]
        } else {
            Vec::new()
        };
        State {
            h: vec![layer; config.layers],
            c,
        }
    }

    pub fn reset(&mut self) {
        self.h
            .iter_mut()
            .chain(self.c.iter_mut())
            .for_each(|v| v.fill(T::zero()));
    }

    /// Checks the shape against an architecture and a batch size.
    pub fn fits(&self, config: &Config, batch: usize) -> bool {
        let n = batch * config.hidden;
        let cs = if config.cell.has_cell_state() {
            config.layers
        } else {
            0
        };
        self.h.len() == config.layers
            && self.c.len() == cs
            && self.h.iter().chain(&self.c).all(|v| v.len() == n)
    }

    pub fn is_finite(&self) -> bool {
        self.h
            .iter()
            .chain(&self.c)
            .flatten()
            .all(|x| x.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout_is_min_char_rnn() {
        let c = Config::min_char_rnn(65, 100);
        let names: Vec<_> = c
            .tensors()
            .iter()
            .map(|t| (t.name.clone(), t.shape))
            .collect();
        assert_eq!(
            names,
            [
                ("Wxh".to_string(), [100, 65]),
                ("Whh".to_string(), [100, 100]),
                ("bh".to_string(), [100, 1]),
                ("Why".to_string(), [65, 100]),
                ("by".to_string(), [65, 1])
            ]
        );
        assert_eq!(c.num_params(), 23165);
    }

    #[test]
    fn layout_covers_the_buffer_without_gaps() {
        for &cell in Cell::ALL {
            let c = Config {
                cell,
                vocab: 7,
                hidden: 5,
                layers: 3,
                embedding: 4,
            };
            let specs = c.tensors();
            let mut end = 0;
            for t in &specs {
                assert_eq!(t.offset, end, "{}", t.name);
                end += t.len();
            }
            let l = c.layout();
            assert_eq!(l.total, end);
            assert_eq!(l.layers.len(), 3);
            assert_eq!(l.layers[1].wx.len(), cell.gates() * 5 * 5);
            assert_eq!(l.layers[0].wx.len(), cell.gates() * 5 * 4);
            assert_eq!(l.embed.as_ref().map(|r| r.len()), Some(7 * 4));
            assert_eq!(l.layers[2].extra.is_some(), cell == Cell::Gru);
        }
    }
}
