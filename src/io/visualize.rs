//! What the network learned, as one self-contained HTML page in the spirit of
//! Karpathy's "The Unreasonable Effectiveness of Recurrent Neural Networks": the
//! text coloured by one hidden unit's activation, the units that track quotes,
//! brackets and line starts, and the next-character predictions at every place.

use serde::Serialize;
use thiserror::Error;

use crate::io::data::Vocab;
use crate::linalg::Real;
use crate::model::{Cell, Model};
use crate::sample::{Draw, Sampler};

#[derive(Debug, Error)]
pub enum VisualizeError {
    #[error("--layer {layer} does not exist: the model has {layers} layer(s), numbered from 1")]
    NoLayer { layer: usize, layers: usize },
    #[error("none of the first characters of the text are in the model's vocabulary")]
    NoKnownChars,
    #[error("--state c needs an LSTM; this model's {cell} cell has only h")]
    NoCellState { cell: Cell },
}

/// Which state a unit's colour shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// the hidden state h, in [-1, 1]
    Hidden,
    /// the LSTM's cell state, as tanh(c) (in [-1, 1]; as Karpathy's post shows it)
    Cell,
}

/// Predictions listed per character.
pub const TOP: usize = 5;
/// Units listed per feature.
pub const UNITS_PER_FEATURE: usize = 8;

/// One pass of the model over a text, from a zero state.
#[derive(Debug, Serialize)]
pub struct Trace {
    /// The characters read, in order (those outside the vocabulary left out).
    pub chars: Vec<char>,
    /// acts[u][t]: unit u's activation after reading chars[t], in [-1, 1]:
    /// h, or for the LSTM optionally tanh(c) (see [`Unit`]).
    pub acts: Vec<Vec<f32>>,
    /// top[t]: the likeliest next characters after reading chars[t], as
    /// (vocabulary id, probability), likeliest first.
    pub top: Vec<Vec<(u32, f32)>>,
    /// Characters of the text that the vocabulary lacks, skipped.
    pub skipped: usize,
}

/// Runs `model` over the first `max_chars` characters of `text` and records
/// layer `layer`'s (0-based) hidden units and the predictions.
pub fn trace<T: Real>(
    model: &Model<T>,
    vocab: &Vocab,
    text: &str,
    max_chars: usize,
    layer: usize,
    unit: Unit,
) -> Result<Trace, VisualizeError> {
    let c = model.config;
    if layer >= c.layers {
        return Err(VisualizeError::NoLayer {
            layer: layer + 1,
            layers: c.layers,
        });
    }
    if unit == Unit::Cell && !c.cell.has_cell_state() {
        return Err(VisualizeError::NoCellState { cell: c.cell });
    }
    let mut sampler = Sampler::new(
        model,
        Draw::Sample {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        },
    )
    .expect("temperature 1 and no top-k are valid");
    let mut trace = Trace {
        chars: Vec::new(),
        acts: vec![Vec::new(); c.hidden],
        top: Vec::new(),
        skipped: 0,
    };
    for ch in text.chars() {
        if trace.chars.len() == max_chars {
            break;
        }
        let Some(id) = vocab.id(ch) else {
            trace.skipped += 1;
            continue;
        };
        sampler.feed(id);
        trace.chars.push(ch);
        let state = sampler.state();
        match unit {
            Unit::Hidden => state.h[layer]
                .iter()
                .zip(&mut trace.acts)
                .for_each(|(h, a)| a.push(h.as_f64() as f32)),
            Unit::Cell => state.c[layer]
                .iter()
                .zip(&mut trace.acts)
                .for_each(|(c, a)| a.push(c.as_f64().tanh() as f32)),
        }
        let mut ranked: Vec<(u32, f32)> = sampler
            .probs()
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u32, p.as_f64() as f32))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(TOP);
        trace.top.push(ranked);
    }
    if trace.chars.is_empty() {
        return Err(VisualizeError::NoKnownChars);
    }
    Ok(trace)
}

/// A property of the text at each position, for finding the units that track it.
#[derive(Debug, Serialize)]
pub struct Feature {
    pub name: &'static str,
    pub about: &'static str,
    /// (unit, Pearson correlation with the feature), strongest |r| first.
    pub units: Vec<(usize, f32)>,
}

/// The features of Karpathy's post, measured on `chars`: the value after reading
/// chars[t], to line up with the activation after reading it.
pub fn features(chars: &[char]) -> Vec<(&'static str, &'static str, Vec<f32>)> {
    let (mut quote, mut depth, mut column) = (false, 0i32, 0usize);
    let (mut quotes, mut brackets, mut starts, mut columns) = (vec![], vec![], vec![], vec![]);
    for &ch in chars {
        match ch {
            '"' => quote = !quote,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = (depth - 1).max(0),
            _ => {}
        }
        column = if ch == '\n' { 0 } else { column + 1 };
        quotes.push(f32::from(u8::from(quote || ch == '"')));
        brackets.push(f32::from(u8::from(depth > 0)));
        starts.push(f32::from(u8::from(ch == '\n')));
        columns.push(column as f32);
    }
    vec![
        (
            "quotes",
            "inside \"double quotes\" (the quote marks included)",
            quotes,
        ),
        ("brackets", "inside (), [] or {}", brackets),
        (
            "line starts",
            "just read a line break (a new line begins)",
            starts,
        ),
        (
            "line position",
            "characters since the last line break",
            columns,
        ),
    ]
}

/// Pearson correlation; 0 when either side is constant.
pub fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 1e-12 || sbb <= 1e-12 {
        0.0
    } else {
        (sab / (saa * sbb).sqrt()) as f32
    }
}

/// For each feature, the units whose activation correlates most with it (none
/// when the feature is constant over the text).
pub fn correlated_units(trace: &Trace) -> Vec<Feature> {
    features(&trace.chars)
        .into_iter()
        .map(|(name, about, values)| {
            // a feature the text never varies (no quotes at all) says nothing about any unit
            let varies = values.iter().any(|&v| v != values[0]);
            let mut units: Vec<(usize, f32)> = if varies {
                trace
                    .acts
                    .iter()
                    .enumerate()
                    .map(|(u, a)| (u, correlation(a, &values)))
                    .collect()
            } else {
                Vec::new()
            };
            units.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
            units.truncate(UNITS_PER_FEATURE);
            Feature { name, about, units }
        })
        .collect()
}

/// The page's data, read by its script.
#[derive(Serialize)]
struct PageData<'a> {
    title: String,
    model: String,
    layer: usize,
    cell: String,
    chars: String,
    vocab: Vec<String>,
    /// acts[u][t] * 1000, rounded (keeps the page small)
    acts: Vec<Vec<i16>>,
    /// top[t] = [[id, probability * 1000], ...]
    top: Vec<Vec<(u32, u16)>>,
    features: &'a [Feature],
    start_unit: usize,
}

/// The whole HTML page: template, styles and script inline, data as JSON.
pub fn page(
    trace: &Trace,
    vocab: &Vocab,
    model_description: &str,
    cell: Cell,
    layer: usize,
    title: &str,
) -> String {
    let features = correlated_units(trace);
    // open on the unit that tracks some feature most strongly
    let start_unit = features
        .iter()
        .filter_map(|f| f.units.first())
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map_or(0, |u| u.0);
    let data = PageData {
        title: title.to_string(),
        model: model_description.to_string(),
        layer: layer + 1,
        cell: cell.to_string(),
        chars: trace.chars.iter().collect(),
        vocab: vocab.chars().iter().map(char::to_string).collect(),
        acts: trace
            .acts
            .iter()
            .map(|a| a.iter().map(|&x| (x * 1000.0).round() as i16).collect())
            .collect(),
        top: trace
            .top
            .iter()
            .map(|t| {
                t.iter()
                    .map(|&(id, p)| (id, (p * 1000.0).round().clamp(0.0, 1000.0) as u16))
                    .collect()
            })
            .collect(),
        features: &features,
        start_unit,
    };
    let json = serde_json::to_string(&data).expect("page data serialises");
    // the JSON sits in a <script> element: "</" must not end it early
    let json = json.replace("</", "<\\/");
    let title = title.replace('&', "&amp;").replace('<', "&lt;");
    TEMPLATE
        .replace("{{TITLE}}", &title)
        .replace("{{DATA}}", &json)
}

const TEMPLATE: &str = include_str!("visualize.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_is_pearson() {
        assert!((correlation(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.5]) - 0.99795).abs() < 1e-4);
        assert!((correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-6);
        assert_eq!(correlation(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), 0.0);
    }

    #[test]
    fn features_follow_quotes_brackets_and_lines() {
        let chars: Vec<char> = "a\"b\"c(d)\nef".chars().collect();
        let f = features(&chars);
        assert_eq!(f[0].2, [0., 1., 1., 1., 0., 0., 0., 0., 0., 0., 0.]);
        assert_eq!(f[1].2, [0., 0., 0., 0., 0., 1., 1., 0., 0., 0., 0.]);
        assert_eq!(f[2].2, [0., 0., 0., 0., 0., 0., 0., 0., 1., 0., 0.]);
        assert_eq!(f[3].2, [1., 2., 3., 4., 5., 6., 7., 8., 0., 1., 2.]);
    }

    #[test]
    fn a_unit_copying_the_feature_ranks_first() {
        let chars: Vec<char> = "x(ab)y(c)zz(d)".chars().collect();
        let inside = features(&chars).remove(1).2;
        let noise: Vec<f32> = (0..chars.len())
            .map(|i| ((i * 7919) % 13) as f32 / 13.0)
            .collect();
        let flipped: Vec<f32> = inside.iter().map(|v| -0.8 * v).collect();
        let trace = Trace {
            chars,
            acts: vec![noise, flipped],
            top: vec![],
            skipped: 0,
        };
        let brackets = &correlated_units(&trace)[1];
        assert_eq!(brackets.name, "brackets");
        assert_eq!(brackets.units[0].0, 1);
        assert!(
            (brackets.units[0].1 + 1.0).abs() < 1e-5,
            "{:?}",
            brackets.units
        );
    }
}
