//! `charrnn plot`: loss curves from a loss history, as an image or in the terminal.

use std::path::PathBuf;

use anyhow::Result;

use charrnn::io::plot;
use charrnn::train::history;

/// Draw a loss history: loss, smooth loss and validation loss against iteration.
#[derive(clap::Args)]
pub struct Args {
    /// The loss history a training run wrote
    #[arg(value_name = "CSV", default_value = "loss_history.csv")]
    history: PathBuf,
    /// Image to write; the extension picks the format (.png or .svg)
    #[arg(
        long,
        short = 'o',
        value_name = "PATH",
        required_unless_present = "terminal"
    )]
    out: Option<PathBuf>,
    /// Draw the smooth and validation loss as text in the terminal instead
    #[arg(long, conflicts_with = "out")]
    terminal: bool,
    /// Image width in pixels (terminal: columns of the plotting area)
    #[arg(long, value_parser = super::positive_int::<u32>)]
    width: Option<u32>,
    /// Image height in pixels (terminal: lines of the plotting area)
    #[arg(long, value_parser = super::positive_int::<u32>)]
    height: Option<u32>,
}

pub fn run(args: Args) -> Result<()> {
    let (rows, torn) = history::read_live(&args.history)?;
    if torn {
        eprintln!(
            "note: {}: last line is incomplete (a run is writing it?); left out",
            args.history.display()
        );
    }
    match args.out {
        Some(out) => {
            plot::ImageFormat::of(&out).map_err(|e| super::usage(e.to_string()))?;
            let (width, height) = (args.width.unwrap_or(1000), args.height.unwrap_or(600));
            plot::render(&rows, &args.history, &out, width, height)?;
            eprintln!(
                "wrote {} ({width}x{height}, {} rows)",
                out.display(),
                rows.len()
            );
        }
        None => {
            let width = args.width.unwrap_or(72) as usize;
            let height = args.height.unwrap_or(16) as usize;
            print!("{}", plot::terminal(&rows, width, height));
        }
    }
    Ok(())
}
