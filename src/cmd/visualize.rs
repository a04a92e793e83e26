//! `charrnn visualize`: an HTML page of what the hidden units respond to.

use std::path::PathBuf;

use anyhow::{Context, Result};

use charrnn::io::corpus::{self, Source};
use charrnn::io::fsutil;
use charrnn::io::visualize;
use charrnn::train::checkpoint;
use charrnn::with_state;

/// Write one self-contained HTML page: the text coloured by a hidden unit's activation,
/// the units that track quotes, brackets and line starts, and the next-character guesses.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PATH", default_value = "charrnn.ckpt")]
    checkpoint: PathBuf,
    /// UTF-8 text to run the model over [default: the built-in corpus]
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    /// How many characters of the text to show
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = super::positive_int::<usize>)]
    chars: usize,
    /// Start this many characters into the text
    #[arg(long, value_name = "N", default_value_t = 0)]
    skip: usize,
    /// Which layer's units to show, from 1 [default: the last]
    #[arg(long, value_name = "L", value_parser = super::positive_int::<usize>)]
    layer: Option<usize>,
    /// Colour by the hidden state h, or (LSTM) by the cell state as tanh(c)
    #[arg(long, value_enum, default_value_t = State::H)]
    state: State,
    /// Output page
    #[arg(long, short = 'o', value_name = "PATH", default_value = "neurons.html")]
    out: PathBuf,
    #[command(flatten)]
    memory: super::MemoryFlag,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum State {
    H,
    C,
}

pub fn run(args: Args) -> Result<()> {
    let unit = if args.state == State::C {
        visualize::Unit::Cell
    } else {
        visualize::Unit::Hidden
    };
    // the text as `train` reads it
    let source = Source::file_or_builtin(args.data.as_deref());
    let scan = corpus::scan(source)?;
    let name = &scan.info.name;
    if args.skip as u64 >= scan.info.chars {
        return Err(super::usage(format!(
            "--skip {} is past the end of {name} ",
            args.skip
        )));
    }
    super::check_checkpoint_memory(&args.checkpoint, args.memory.max_memory)?;
    let (page, summary) = with_state!(checkpoint::load_for_use(&args.checkpoint)?, s => {
        let value = std::mem::size_of_val(&s.model.params[0]);
        super::check_memory(&charrnn::memory::visualizing(s.config(), value, args.chars), args.memory.max_memory)?;
        let config = *s.config();
        let layer = args.layer.unwrap_or(config.layers) - 1;
        let shown = scan.text_from(args.skip, args.chars, &s.vocab)?;
        let trace = visualize::trace(&s.model, &s.vocab, &shown, args.chars, layer, unit)
            .map_err(|e| super::usage(e.to_string()))?;
        let title = format!("{}: {name} (iteration {})", args.checkpoint.display(), s.iteration);
        let mut description = config.describe();
        if unit == visualize::Unit::Cell {
            description += "; colour: tanh(cell state)";
        }
        let page = visualize::page(&trace, &s.vocab, &description, config.cell, layer, &title);
        let what = if unit == visualize::Unit::Cell { "cell states" } else { "units" };
        let summary = format!("{} characters, {} {what} of layer {}", trace.chars.len(), config.hidden, layer + 1);
        if trace.skipped > 0 {
            eprintln!("note: skipped {} characters not in the model's vocabulary", trace.skipped);
        }
        (page, summary)
    });
    fsutil::write_atomic(&args.out, page.as_bytes())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {} ({summary})", args.out.display());
    Ok(())
}
