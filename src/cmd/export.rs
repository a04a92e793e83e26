//! `charrnn export`: weights out to other tools.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use charrnn::io::export;
use charrnn::io::fsutil;
use charrnn::io::npz;
use charrnn::io::play;
use charrnn::train::checkpoint;
use charrnn::with_state;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// NumPy .npz (float64; min-char-rnn's names for the tanh RNN) plus a .json sidecar with the metadata
    Npz,
    /// .safetensors (PyTorch, safetensors.numpy) in the model's precision, metadata inside
    Safetensors,
    /// One self-contained web page that runs the model in the browser (weights as float32)
    Html,
}

/// Write a checkpoint's weights, vocabulary and hyperparameters in a format other tools read.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PATH", default_value = "charrnn.ckpt")]
    checkpoint: PathBuf,
    /// Output file
    #[arg(long, short = 'o', value_name = "PATH")]
    out: PathBuf,
    /// Output format [default: from the extension of -o (.npz, .safetensors, .html or
    /// .htm); npz when it has none]
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[command(flatten)]
    memory: super::MemoryFlag,
}

/// The sidecar of an .npz export: `model.npz` -> `model.json`.
fn sidecar_path(out: &Path) -> PathBuf {
    out.with_extension("json")
}

/// The format an output name asks for: its extension, npz when it has none. An
/// extension that names no format is refused rather than given an npz under it.
fn by_extension(out: &Path) -> Result<Format> {
    match out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
    {
        None => Ok(Format::Npz),
        Some(ext) => match ext.as_str() {
            "npz" => Ok(Format::Npz),
            "safetensors" => Ok(Format::Safetensors),
            "html" | "htm" => Ok(Format::Html),
            _ => Err(super::usage(format!(
                "{}: .{ext} is not a format export writes; name the file .npz, .safetensors or \
                 .html, or give --format npz|safetensors|html",
                out.display()
            ))),
        },
    }
}

pub fn run(args: Args) -> Result<()> {
    let format = match args.format {
        Some(format) => format,
        None => by_extension(&args.out)?,
    };
    if format == Format::Npz && sidecar_path(&args.out) == args.out {
        return Err(super::usage(format!(
            "{}: an .npz export needs a name not ending in .json",
            args.out.display()
        )));
    }
    super::check_checkpoint_memory(&args.checkpoint, args.memory.max_memory)?;
    let (iteration, extra) = with_state!(checkpoint::load_for_use(&args.checkpoint)?, s => {
        super::check_memory(&charrnn::memory::exporting(s.config()), args.memory.max_memory)?;
        let extra = match format {
            Format::Npz => {
                npz::export(&args.out, &s.model)?;
                let json = sidecar_path(&args.out);
                export::sidecar(&json, &s)?;
                format!(" and {} (vocabulary, hyperparameters)", json.display())
            }
            Format::Safetensors => {
                export::safetensors(&args.out, &s)?;
                String::new()
            }
            Format::Html => {
                let title = format!("{} (iteration {})", args.checkpoint.display(), s.iteration);
                let page = play::page(&s.model, &s.vocab, &title);
                fsutil::write_atomic(&args.out, page.as_bytes())
                    .with_context(|| format!("cannot write {}", args.out.display()))?;
                format!(" ({} KB, self-contained)", page.len().div_ceil(1000))
            }
        };
        (s.iteration, extra)
    });
    eprintln!(
        "wrote {}{extra} (iteration {iteration})",
        args.out.display()
    );
    Ok(())
}
