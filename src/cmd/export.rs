//! `charrnn export`: weights out to other tools.

use std::path::PathBuf;

use anyhow::Result;

use charrnn::{checkpoint, npz, with_state};

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// NumPy .npz with Wxh (H,V), Whh (H,H), Why (V,H), bh (H,1), by (V,1) as float64
    Npz,
}

/// Write a checkpoint's weights in a format other tools read.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PATH", default_value = "charrnn.ckpt")]
    checkpoint: PathBuf,
    /// Output file
    #[arg(long, short = 'o', value_name = "PATH")]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Npz)]
    format: Format,
}

pub fn run(args: Args) -> Result<()> {
    let iteration = with_state!(checkpoint::load(&args.checkpoint)?, s => {
        match args.format {
            Format::Npz => npz::export(&args.out, &s.model)?,
        }
        s.iteration
    });
    eprintln!("wrote {} (iteration {iteration})", args.out.display());
    Ok(())
}
