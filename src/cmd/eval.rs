//! `charrnn eval`: how well a checkpoint predicts a text.

use std::path::PathBuf;

use anyhow::Result;

use charrnn::io::baselines;
use charrnn::io::corpus::{self, Scan, Source};
use charrnn::linalg::Real;
use charrnn::train::checkpoint;
use charrnn::train::{self, TrainState};
use charrnn::with_state;

/// Average loss of a model on a text: nats/char, bits/char and perplexity.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PATH", default_value = "charrnn.ckpt")]
    checkpoint: PathBuf,
    /// UTF-8 text to evaluate on
    #[arg(long, value_name = "PATH")]
    data: PathBuf,
    #[command(flatten)]
    memory: super::MemoryFlag,
}

pub fn run(args: Args) -> Result<()> {
    // the text as `train` reads it: checked, then encoded in a second pass
    let scan = corpus::scan(Source::File(args.data.clone()))?;
    super::check_checkpoint_memory(&args.checkpoint, args.memory.max_memory)?;
    with_state!(checkpoint::load_for_use(&args.checkpoint)?, s => {
        let (h, value) = (&s.hyper, std::mem::size_of_val(&s.model.params[0]));
        let need = charrnn::memory::evaluating(s.config(), value, h.seq_length, h.batch_size, scan.info.chars as u128);
        super::check_memory(&need, args.memory.max_memory)?;
        report(&s, &scan)
    })
}

fn report<T: Real>(s: &TrainState<T>, scan: &Scan) -> Result<()> {
    let (ids, unknown) = scan.encode_known(&s.vocab)?;
    let total_chars = ids.len() + unknown.count;
    if let Some((ch, line)) = unknown.first {
        eprintln!(
            "note: {} of {total_chars} characters ({:.3}%) are not in the model's vocabulary and were skipped \
             (first: {ch:?} on line {line})",
            unknown.count,
            100.0 * unknown.count as f64 / total_chars as f64
        );
    }
    let h = &s.hyper;
    let pair = charrnn::parallel::Pair::for_cores().map(std::sync::Arc::new);
    let (loss, count) = train::evaluate(
        &s.model,
        ids.as_slice(),
        h.batch_size,
        h.seq_length,
        pair.as_ref(),
    );
    if count == 0 {
        anyhow::bail!(
            "{} has too few known characters to evaluate (need at least 2)",
            scan.info.name
        );
    }
    let nats = loss / count as f64;
    println!(
        "text           {} ({count} characters predicted)",
        scan.info.name
    );
    println!("loss           {nats:.6} nats/char");
    println!("bits/char      {:.6}", nats / std::f64::consts::LN_2);
    println!("perplexity     {:.4}", nats.exp());
    // what a good loss is, on the same text
    let unigram = baselines::unigram_bits(scan.counts.values().copied());
    let xz = baselines::xz_bits(&scan.prefix(baselines::XZ_PREFIX)?);
    println!(
        "compared       {}",
        baselines::compare(nats / std::f64::consts::LN_2, unigram, xz)
    );
    Ok(())
}
