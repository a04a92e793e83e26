//! `charrnn info`: what a checkpoint holds.

use std::path::{Path, PathBuf};

use anyhow::Result;

use charrnn::linalg::Real;
use charrnn::train::TrainState;
use charrnn::{checkpoint, with_state};

/// Print a checkpoint's hyperparameters, vocabulary, progress and size.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PATH", default_value = "charrnn.ckpt")]
    checkpoint: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let state = checkpoint::load(&args.checkpoint)?;
    with_state!(state, s => print(&args.checkpoint, &s));
    Ok(())
}

fn print<T: Real>(path: &Path, s: &TrainState<T>) {
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let h = &s.hyper;
    let vocab: String = s.vocab.chars().iter().collect();
    println!("checkpoint     {} (format v{}, {bytes} bytes)", path.display(), checkpoint::VERSION);
    println!("model          vanilla RNN (tanh), hidden {}, vocabulary {}, {}", h.hidden_size, s.vocab.len(), T::NAME);
    println!("parameters     {}", s.model.params.len());
    println!(
        "training       seq_length {}, learning_rate {:?}, clip {:?}, optimizer adagrad, rng_seed {}",
        h.seq_length, h.learning_rate, h.clip, h.rng_seed
    );
    println!("iteration      {}", s.iteration);
    println!("smooth_loss    {:.6}", s.smooth_loss);
    println!("last_loss      {:.6}", s.last_loss);
    println!("data_pointer   {}", s.pointer);
    println!("elapsed        {:.1}s", s.elapsed_s);
    println!(
        "text           {} ({} chars, {} bytes, xxh3 {:016x})",
        s.text.name, s.text.chars, s.text.bytes, s.text.hash
    );
    println!("vocabulary     {vocab:?}");
}
