//! What a run or a command will need in memory, computed before anything is
//! allocated, so that a run that cannot fit is refused with a message instead of
//! aborting in the allocator (or swapping for minutes). Every figure is computed
//! in u128 from the sizes the code allocates (`Workspace::bytes_for` is held to
//! `Workspace::new` by a test), with every dimension capped at [`CAP`] first, so
//! absurd flags give huge numbers, never an overflow or an allocation.

use std::fmt;

use crate::model::{Config, Workspace};

/// One part of an estimate: what it is, its bytes, and the flag that shrinks it.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub what: &'static str,
    pub bytes: u128,
    pub shrink: &'static str,
}

/// What a run needs: the parts held for the whole run, and the largest of the
/// ones held only for a moment (a checkpoint save, a validation pass, a sample).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Estimate {
    pub parts: Vec<Part>,
}

/// What any charrnn process holds before it allocates anything of its own
/// (the binary, the runtime, thread stacks), measured as the peak RSS of a run
/// of a tiny model (`/usr/bin/time -f %M`): about 5 MB.
pub const BASE: u128 = 6 << 20;

impl Estimate {
    fn push(&mut self, what: &'static str, bytes: u128, shrink: &'static str) {
        if bytes > 0 {
            self.parts.push(Part {
                what,
                bytes,
                shrink,
            });
        }
    }

    /// Bytes in all, with [`BASE`].
    pub fn total(&self) -> u128 {
        self.parts
            .iter()
            .map(|p| p.bytes)
            .fold(BASE, u128::saturating_add)
    }

    /// The largest part.
    pub fn largest(&self) -> Option<&Part> {
        self.parts.iter().max_by_key(|p| p.bytes)
    }

    /// Checks the estimate against `available` bytes: None when it fits, else
    /// a message that names the largest part and the flag that shrinks it.
    pub fn refuse(&self, available: u128, source: &str) -> Option<String> {
        let total = self.total();
        if total <= available {
            return None;
        }
        let largest = self.largest().map_or(String::new(), |p| {
            format!(
                "; the largest part is {} ({}), which {} shrinks",
                p.what,
                Bytes(p.bytes),
                p.shrink
            )
        });
        Some(format!(
            "this needs about {} of memory but {} is available ({source}){largest}; use smaller settings, \
             or --max-memory SIZE to allow more",
            Bytes(total),
            Bytes(available)
        ))
    }
}

/// The settings of a training run that its memory depends on.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub config: Config,
    /// Bytes per value: 4 (f32) or 8 (f64).
    pub value: usize,
    pub seq: usize,
    pub batch: usize,
    /// Shares of the streams (one workspace and gradient each).
    pub shares: usize,
    pub dropout: bool,
    /// Adam keeps two values per parameter, the others one.
    pub optimizer_values: usize,
    /// Characters of the text, and bytes per id (1, 2 or 4).
    pub text_chars: u128,
    pub id_bytes: usize,
    pub validation: bool,
    pub samples: bool,
    /// Characters of the text the loss is compared with xz on at the end (the
    /// validation part, or the training part).
    pub baseline_chars: u128,
}

/// Values a model's parameters hold, and its carried state for `streams` streams.
fn model_values(config: &Config) -> u128 {
    let (v, h, e, g) = (
        config.vocab as u128,
        config.hidden as u128,
        config.embedding as u128,
        config.cell.gates() as u128,
    );
    let l = config.layers as u128;
    let first_in = if e > 0 { e } else { v };
    let extra = if config.cell.extra_bias().is_some() {
        h
    } else {
        0
    };
    let layers =
        g * h * (first_in + h + 1) + extra + (l.saturating_sub(1)) * (g * h * (h + h + 1) + extra);
    v * e + layers + v * h + v
}

fn state_values(config: &Config, streams: usize) -> u128 {
    let per = config.layers as u128 * streams as u128 * config.hidden as u128;
    if config.cell.has_cell_state() {
        2 * per
    } else {
        per
    }
}

/// The sampler's layout of the weights (about one more copy of them) and its
/// one-character workspace.
fn sampling_bytes(config: &Config, value: usize) -> u128 {
    let gh = config.cell.gates() as u128 * config.hidden as u128;
    let table = config.vocab as u128 * gh;
    (model_values(config) + table) * value as u128
        + Workspace::<f32>::bytes_for(config, 1, 1, false, value)
}

/// Dimensions beyond this are estimated as this (far beyond any machine's
/// memory either way), which keeps every product within u128.
pub const CAP: usize = 1 << 24;

/// `config` with every dimension capped at [`CAP`].
fn capped(config: &Config) -> Config {
    let c = |x: usize| x.min(CAP);
    Config {
        vocab: c(config.vocab),
        hidden: c(config.hidden),
        layers: c(config.layers),
        embedding: c(config.embedding),
        ..*config
    }
}

/// The xz -9e comparison (see `baselines`) of a text of `bytes`: about 14 bytes
/// per byte compressed (of at most 4 MiB), measured as peak RSS of `eval` on 32
/// KB, 1.1 MB and 5.4 MB texts.
pub fn baseline_bytes(bytes: u128) -> u128 {
    14 * bytes.min(crate::io::baselines::XZ_PREFIX as u128) + (1 << 20)
}

/// A training run.
pub fn training(r: &Run) -> Estimate {
    let r = &Run {
        config: capped(&r.config),
        seq: r.seq.min(CAP),
        batch: r.batch.min(CAP),
        shares: r.shares.min(64),
        ..*r
    };
    let mut e = Estimate::default();
    let (p, value) = (model_values(&r.config), r.value as u128);
    e.push("the weights", p * value, "--hidden-size or --layers");
    e.push(
        "the optimizer state",
        p * value * r.optimizer_values as u128,
        "--hidden-size or --layers",
    );
    e.push(
        "the gradients",
        p * value * r.shares as u128,
        "--hidden-size, --layers or --threads",
    );
    let mut workspaces: u128 = 0;
    for i in 0..r.shares.max(1) {
        let streams = (i + 1) * r.batch / r.shares.max(1) - i * r.batch / r.shares.max(1);
        workspaces = workspaces.saturating_add(Workspace::<f32>::bytes_for(
            &r.config, r.seq, streams, r.dropout, r.value,
        ));
    }
    e.push(
        "the chunk workspace",
        workspaces,
        "--batch-size, --seq-length or --hidden-size",
    );
    e.push(
        "the hidden state",
        2 * state_values(&r.config, r.batch) * value,
        "--batch-size or --hidden-size",
    );
    e.push(
        "the text's ids",
        r.text_chars * r.id_bytes as u128,
        "a shorter text (--data)",
    );
    // held for a moment, one at a time: the largest counts
    let state = (p * (1 + r.optimizer_values as u128) + state_values(&r.config, r.batch)) * value;
    let mut moment = [
        (
            "a checkpoint being written",
            2 * state,
            "--hidden-size or --layers",
        ),
        (
            "a validation pass",
            if r.validation {
                Workspace::<f32>::bytes_for(&r.config, r.seq, r.batch, false, r.value)
            } else {
                0
            },
            "--batch-size or --seq-length",
        ),
        (
            "a sample",
            if r.samples {
                sampling_bytes(&r.config, r.value)
            } else {
                0
            },
            "--sample-every 0",
        ),
        (
            "the loss's comparison with xz at the end",
            baseline_bytes(r.baseline_chars),
            "a shorter text (--data)",
        ),
    ];
    moment.sort_by_key(|m| std::cmp::Reverse(m.1));
    e.push(moment[0].0, moment[0].1, moment[0].2);
    e
}

/// What a command that reads a checkpoint of `file_bytes` needs to load it: the
/// file's bytes and the state decoded from them (at most as large again).
pub fn loading(file_bytes: u64) -> Estimate {
    let mut e = Estimate::default();
    e.push(
        "the checkpoint, read and decoded",
        2 * file_bytes as u128,
        "a smaller model",
    );
    e
}

/// What `sample` needs beside the loaded checkpoint.
pub fn sampling(config: &Config, value: usize) -> Estimate {
    let config = &capped(config);
    let mut e = Estimate::default();
    e.push(
        "the sampler's layout of the weights",
        sampling_bytes(config, value),
        "a smaller model",
    );
    e
}

/// What `eval` needs beside the loaded checkpoint: the text's ids and a
/// workspace of `batch` streams of `seq` steps.
pub fn evaluating(
    config: &Config,
    value: usize,
    seq: usize,
    batch: usize,
    text_chars: u128,
) -> Estimate {
    let (config, seq, batch) = (&capped(config), seq.min(CAP), batch.min(CAP));
    let mut e = Estimate::default();
    e.push("the text's ids", text_chars * 4, "a shorter text (--data)");
    e.push(
        "the comparison with xz",
        baseline_bytes(text_chars),
        "a shorter text (--data)",
    );
    e.push(
        "the workspace",
        Workspace::<f32>::bytes_for(config, seq, batch, false, value),
        "a smaller model",
    );
    e
}

/// What `visualize` needs beside the loaded checkpoint, for `chars` characters.
pub fn visualizing(config: &Config, value: usize, chars: usize) -> Estimate {
    let config = &capped(config);
    let mut e = sampling(config, value);
    // per character: one f32 per unit, the five likeliest guesses, the page's text
    e.push(
        "the traces",
        chars as u128 * (config.hidden as u128 * 4 + 5 * 8 + 64),
        "--chars",
    );
    e
}

/// What `sample --beam W -n N` needs beside the loaded checkpoint: the sampler,
/// and two generations of W kept sequences (each its N ids, a hidden state and
/// V log-probabilities) with the W * V candidates between them.
pub fn beam_search(config: &Config, value: usize, width: usize, n: usize) -> Estimate {
    let config = &capped(config);
    let mut e = sampling(config, value);
    let (w, n) = (width.min(CAP) as u128, n.min(CAP << 16) as u128);
    let states = if config.cell.has_cell_state() { 2 } else { 1 };
    let state = states * config.layers as u128 * config.hidden as u128 * value as u128;
    let kept = n * 4 + state + config.vocab as u128 * 8;
    e.push(
        "the beam's sequences",
        2 * w * kept + w * config.vocab as u128 * 24,
        "a narrower --beam or a shorter -n",
    );
    e
}

/// What `export` needs beside the loaded checkpoint: the tensors in float64 and
/// the file's bytes.
pub fn exporting(config: &Config) -> Estimate {
    let config = &capped(config);
    let mut e = Estimate::default();
    e.push(
        "the exported tensors",
        2 * model_values(config) * 8,
        "a smaller model",
    );
    e
}

/// The memory a command may use: `--max-memory`, else the machine's available
/// memory, with where the figure came from; None when neither is known.
pub fn limit(max_memory: Option<u128>) -> Option<(u128, &'static str)> {
    match max_memory {
        Some(m) => Some((m, "--max-memory")),
        None => available().map(|a| (a, "MemAvailable")),
    }
}

/// Refuses what would not fit in the memory limit, with the message to give.
pub fn check(estimate: &Estimate, max_memory: Option<u128>) -> Result<(), String> {
    match limit(max_memory).and_then(|(limit, source)| estimate.refuse(limit, source)) {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

/// The `--max-memory` flag every command that allocates takes.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct MemoryFlag {
    /// Refuse to start what would need more memory than SIZE (e.g. 512M, 4G) [default: the
    /// machine's available memory]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u128>,
}

/// The machine's available memory (Linux's MemAvailable), if it says.
pub fn available() -> Option<u128> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Parses a size: a number of bytes, or with K, M, G or T (powers of 1024,
/// optionally followed by B or iB): `512M`, `2G`, `1.5GB`.
pub fn parse_size(s: &str) -> Result<u128, String> {
    let t = s.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 512M or 2G"))?;
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{s:?}: the unit must be K, M, G or T")),
    };
    let bytes = number * (1u128 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("{s:?} is not a size such as 512M or 2G"));
    }
    Ok(bytes as u128)
}

/// Bytes for a person: `412 MB`, `28.9 GB`.
pub struct Bytes(pub u128);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        match self.0 {
            n if n < 1 << 20 => write!(f, "{:.0} KB", b / 1024.0),
            n if n < 1 << 30 => write!(f, "{:.0} MB", b / (1u64 << 20) as f64),
            n if n < 1 << 40 => write!(f, "{:.1} GB", b / (1u64 << 30) as f64),
            _ => write!(f, "{:.1} TB", b / (1u64 << 40) as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cell;

    #[test]
    fn the_parameter_count_is_the_models() {
        for &cell in Cell::ALL {
            for (layers, hidden, embedding, vocab) in
                [(1, 100, 0, 65), (3, 17, 5, 40), (2, 64, 0, 9)]
            {
                let c = Config {
                    cell,
                    vocab,
                    hidden,
                    layers,
                    embedding,
                };
                assert_eq!(model_values(&c), c.num_params() as u128, "{c:?}");
            }
        }
    }

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5GB"), Ok(3 << 29));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert!(
            parse_size("lots").is_err() && parse_size("5X").is_err() && parse_size("0").is_err()
        );
        assert_eq!(Bytes(412 << 20).to_string(), "412 MB");
        assert_eq!(Bytes(31 << 30).to_string(), "31.0 GB");
    }

    #[test]
    fn absurd_sizes_give_huge_numbers_not_overflows() {
        let config = Config {
            cell: Cell::Lstm,
            vocab: 1 << 20,
            hidden: 1 << 30,
            layers: 1 << 20,
            embedding: 1 << 20,
        };
        let run = Run {
            config,
            value: 8,
            seq: usize::MAX / 2,
            batch: usize::MAX / 2,
            shares: 2,
            dropout: true,
            optimizer_values: 2,
            text_chars: u64::MAX as u128,
            id_bytes: 4,
            validation: true,
            samples: true,
            baseline_chars: u64::MAX as u128,
        };
        let e = training(&run);
        assert!(e.total() > 1 << 60);
        assert!(e.refuse(24 << 30, "test").is_some());
    }
}
