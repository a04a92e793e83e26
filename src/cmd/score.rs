//! `charrnn score`: how surprised the model is at each character of a text.

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use charrnn::io::data::{Text, Vocab};
use charrnn::io::fsutil;
use charrnn::linalg::Real;
use charrnn::sample::score::{GUESSES, Scorer};
use charrnn::train::TrainState;
use charrnn::train::checkpoint;
use charrnn::with_state;

/// Show each character of a text coloured by the model's surprisal, then the total.
///
/// Colours appear only when stdout is a terminal and NO_COLOR is unset.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PATH", default_value = "charrnn.ckpt")]
    checkpoint: PathBuf,
    /// UTF-8 text to score (`-` reads stdin)
    #[arg(
        value_name = "FILE",
        required_unless_present = "text",
        conflicts_with = "text"
    )]
    file: Option<PathBuf>,
    /// Score this text instead of a file
    #[arg(long, value_name = "TEXT")]
    text: Option<String>,
    /// Also write one row per character: position, character, loss and the top-5 guesses
    #[arg(long, value_name = "OUT")]
    csv: Option<PathBuf>,
    /// Print only the totals, not the text
    #[arg(long, short = 'q')]
    quiet: bool,
    #[command(flatten)]
    memory: super::MemoryFlag,
}

pub fn run(args: Args) -> Result<()> {
    let text = read_text(&args)?;
    super::check_checkpoint_memory(&args.checkpoint, args.memory.max_memory)?;
    with_state!(checkpoint::load_for_use(&args.checkpoint)?, s => {
        super::check_memory(&charrnn::memory::sampling(s.config(), std::mem::size_of_val(&s.model.params[0])), args.memory.max_memory)?;
        let result = score(&args, &s, &text);
        match result {
            Err(e) if e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) => Ok(()),
            other => other,
        }
    })
}

fn read_text(args: &Args) -> Result<Text> {
    let (name, bytes) = match (&args.text, &args.file) {
        (Some(text), _) => ("--text".to_string(), text.as_bytes().to_vec()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("cannot read stdin")?;
            ("<stdin>".to_string(), bytes)
        }
        (None, Some(path)) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            (path.display().to_string(), bytes)
        }
        (None, None) => unreachable!("clap requires FILE or --text"),
    };
    Text::from_bytes(name, bytes).map_err(|e| super::usage(e.to_string()))
}

/// Background colours by surprisal, from `bits` upwards (ANSI 256-colour codes).
const BANDS: [(f64, u8, &str); 5] = [
    (0.0, 22, "green < 1 bit"),
    (1.0, 58, "olive 1-2"),
    (2.0, 94, "brown 2-4"),
    (4.0, 130, "orange 4-7"),
    (7.0, 124, "red > 7 bits"),
];

fn colour(bits: f64) -> u8 {
    BANDS
        .iter()
        .rev()
        .find(|b| bits >= b.0)
        .map_or(BANDS[0].1, |b| b.1)
}

fn score<T: Real>(args: &Args, s: &TrainState<T>, text: &Text) -> Result<()> {
    let vocab: &Vocab = &s.vocab;
    let mut stdout = io::stdout().lock();
    let colours = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut out = io::BufWriter::new(&mut stdout);
    let mut csv = match &args.csv {
        Some(path) => {
            let file = fsutil::AtomicFile::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let mut w = csv::Writer::from_writer(file);
            let mut header = vec!["position".to_string(), "char".into(), "loss".into()];
            for i in 1..=GUESSES {
                header.extend([format!("guess{i}"), format!("p{i}")]);
            }
            w.write_record(&header)?;
            Some(w)
        }
        None => None,
    };
    let mut scorer = Scorer::new(&s.model);
    let (mut total, mut count) = (0.0f64, 0u64);
    let (mut known, mut unknown, mut first_unknown) = (0u64, 0u64, None);
    let (mut line, mut last) = (1u64, '\n');
    let mut buf = [0u8; 4];
    for (position, ch) in text.content.chars().enumerate() {
        let scored = match vocab.id(ch) {
            Some(id) => {
                known += 1;
                scorer.next(id)
            }
            None => {
                unknown += 1;
                first_unknown.get_or_insert((ch, line));
                None
            }
        };
        if let Some(scored) = &scored {
            total += scored.loss;
            count += 1;
        }
        if !args.quiet {
            let shown = ch.encode_utf8(&mut buf);
            match &scored {
                Some(sc) if colours && ch != '\n' => {
                    let bits = sc.loss / std::f64::consts::LN_2;
                    write!(out, "\x1b[48;5;{}m\x1b[97m{shown}\x1b[0m", colour(bits))?;
                }
                _ => out.write_all(shown.as_bytes())?,
            }
        }
        if let Some(w) = &mut csv {
            let mut row = vec![position.to_string(), ch.to_string()];
            match &scored {
                Some(sc) => {
                    row.push(format!("{:.6}", sc.loss));
                    for &(id, p) in &sc.top {
                        row.extend([vocab.char(id).to_string(), format!("{p:.6}")]);
                    }
                    row.resize(3 + 2 * GUESSES, String::new());
                }
                None => row.resize(3 + 2 * GUESSES, String::new()),
            }
            w.write_record(&row)?;
        }
        if ch == '\n' {
            line += 1;
        }
        last = ch;
    }
    if !args.quiet && last != '\n' {
        writeln!(out)?;
    }
    if let Some(w) = csv {
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.commit().context("cannot write the CSV")?;
    }
    if let Some((ch, line)) = first_unknown {
        let chars = known + unknown;
        eprintln!(
            "note: {unknown} of {chars} characters ({:.3}%) are not in the model's vocabulary and were \
             skipped (first: {ch:?} on line {line})",
            100.0 * unknown as f64 / chars as f64
        );
    }
    if count == 0 {
        anyhow::bail!(
            "{} has too few known characters to score (need at least 2)",
            text.name
        );
    }
    let nats = total / count as f64;
    if colours && !args.quiet {
        let legend: Vec<String> = BANDS
            .iter()
            .map(|b| format!("\x1b[48;5;{}m\x1b[97m {} \x1b[0m", b.1, b.2))
            .collect();
        writeln!(out, "{}", legend.join(" "))?;
    }
    writeln!(
        out,
        "text           {} ({count} characters predicted)",
        text.name
    )?;
    writeln!(
        out,
        "total          {total:.4} nats ({:.4} bits)",
        total / std::f64::consts::LN_2
    )?;
    writeln!(out, "loss           {nats:.6} nats/char")?;
    writeln!(out, "bits/char      {:.6}", nats / std::f64::consts::LN_2)?;
    out.flush()?;
    Ok(())
}
