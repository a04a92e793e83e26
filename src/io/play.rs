//! `charrnn export --format html`: one self-contained page that runs the model
//! in the browser. The page holds the architecture, the vocabulary, where each
//! tensor sits ([`Config::layout`]) and every parameter as little-endian float32
//! in base64; its script (play.html) runs the same equations as the cells,
//! character by character, in JavaScript doubles.

use base64::Engine;
use serde::Serialize;

use crate::io::data::Vocab;
use crate::linalg::Real;
use crate::model::{Cell, Config, Model};

#[derive(Serialize)]
struct PageData<'a> {
    title: &'a str,
    model: String,
    cell: String,
    vocab: Vec<String>,
    vocab_size: usize,
    hidden: usize,
    layers: usize,
    embedding: usize,
    /// [start, end) of each tensor in the flat parameters
    embed: Option<[usize; 2]>,
    layer_params: Vec<LayerRanges>,
    why: [usize; 2],
    by: [usize; 2],
    /// every parameter, float32 little-endian, base64
    weights: String,
}

#[derive(Serialize)]
struct LayerRanges {
    wx: [usize; 2],
    wh: [usize; 2],
    b: [usize; 2],
    /// GRU: bhn
    extra: Option<[usize; 2]>,
}

fn span(r: &std::ops::Range<usize>) -> [usize; 2] {
    [r.start, r.end]
}

/// The page's bytes for a model, before it is written.
pub fn page<T: Real>(model: &Model<T>, vocab: &Vocab, title: &str) -> String {
    let c: Config = model.config;
    let layout = c.layout();
    let mut bytes = Vec::with_capacity(model.params.len() * 4);
    for w in &model.params {
        bytes.extend_from_slice(&(w.as_f64() as f32).to_le_bytes());
    }
    let data = PageData {
        title,
        model: c.describe(),
        cell: c.cell.to_string(),
        vocab: vocab.chars().iter().map(char::to_string).collect(),
        vocab_size: c.vocab,
        hidden: c.hidden,
        layers: c.layers,
        embedding: c.embedding,
        embed: layout.embed.as_ref().map(span),
        layer_params: layout
            .layers
            .iter()
            .map(|lp| LayerRanges {
                wx: span(&lp.wx),
                wh: span(&lp.wh),
                b: span(&lp.b),
                extra: lp.extra.as_ref().map(span),
            })
            .collect(),
        why: span(&layout.why),
        by: span(&layout.by),
        weights: base64::engine::general_purpose::STANDARD.encode(&bytes),
    };
    let json = serde_json::to_string(&data).expect("page data serialises");
    // the JSON sits in a <script> element: "</" must not end it early
    let json = json.replace("</", "<\\/");
    let title = title.replace('&', "&amp;").replace('<', "&lt;");
    // one pass, so a title or vocabulary holding "{{DATA}}" is only text
    let (head, rest) = TEMPLATE
        .split_once("{{TITLE}}")
        .expect("the template has {{TITLE}}");
    let (between, rest) = rest
        .split_once("{{DATA}}")
        .expect("the data follows the title");
    let (script, tail) = rest
        .split_once("{{CELLS}}")
        .expect("the cells follow the data");
    [head, &title, between, &json, script, &cells(), tail].concat()
}

/// Every cell of this charrnn as the page's script holds them, from
/// [`Cell::ALL`]: `{ "rnn": { gates: 1, step(px, ph, hPrev, c, extra, H) { ... } }, ... }`.
fn cells() -> String {
    let entries: Vec<String> = Cell::ALL
        .iter()
        .map(|c| {
            format!(
                "\n  {:?}: {{ gates: {}, step(px, ph, hPrev, c, extra, H) {{{}\n  }} }}",
                c.name(),
                c.gates(),
                c.js().trim_end()
            )
        })
        .collect();
    format!("{{{}\n}}", entries.join(","))
}

const TEMPLATE: &str = include_str!("play.html");

/// The page's size in bytes for a model of `params` parameters, from the
/// template and the base64 of 4 bytes each (the rest is a few hundred bytes).
pub fn approximate_bytes(params: usize) -> u128 {
    TEMPLATE.len() as u128 + (params as u128 * 4).div_ceil(3) * 4 + 4096
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn the_page_holds_every_weight_and_nothing_from_outside() {
        let config = Config {
            cell: Cell::Gru,
            vocab: 4,
            hidden: 3,
            layers: 2,
            embedding: 2,
        };
        let m = Model::<f64>::init(config, &mut ChaCha8Rng::seed_from_u64(1));
        let vocab = Vocab::from_text("ab</");
        let page = page(&m, &vocab, "a <title> & {{DATA}}");
        let start = page.find("id=\"data\">").unwrap() + 10;
        let end = start + page[start..].find("</script>").unwrap();
        let data: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data["weights"].as_str().unwrap())
            .unwrap();
        let weights: Vec<f32> = bytes
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(weights.len(), m.params.len());
        assert!(weights.iter().zip(&m.params).all(|(&a, &b)| a == b as f32));
        assert_eq!(
            data["layer_params"][1]["extra"][1],
            config.layout().layers[1].extra.clone().unwrap().end
        );
        assert!(page.contains("<title>a &lt;title> &amp; {{DATA}}</title>"));
        for outside in ["src=\"http", "href=\"http", "@import", "fetch("] {
            assert!(!page.contains(outside), "{outside}");
        }
        assert!(approximate_bytes(m.params.len()) >= page.len() as u128);
        // the script knows every cell of this charrnn, from the cells themselves
        for &cell in Cell::ALL {
            let entry = format!("{:?}: {{ gates: {}, step(", cell.name(), cell.gates());
            assert!(page.contains(&entry), "{entry}");
            assert!(page.contains(cell.js().trim()), "{cell}'s step");
        }
        assert!(!page.contains("{{CELLS}}"));
    }
}
