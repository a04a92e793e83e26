//! `charrnn sample`: write text from a checkpoint, primed by a seed.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use charrnn::linalg::Real;
use charrnn::sample::{self, Draw, SampleError, Sampler};
use charrnn::train::TrainState;
use charrnn::{checkpoint, with_state};

use super::{positive_float, positive_int, usage};

/// Write text from a trained model; output starts with the seed and streams as it is drawn.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PATH", default_value = "charrnn.ckpt")]
    checkpoint: PathBuf,
    /// Text to prime the hidden state with [default: one random character of the vocabulary]
    #[arg(long, value_name = "TEXT")]
    seed: Option<String>,
    /// Characters to write after the seed
    #[arg(short = 'n', long = "length", value_name = "N", default_value_t = 1000)]
    length: usize,
    /// Divide the logits by T: below 1 is more conservative, above 1 more surprising
    #[arg(long, value_name = "T", default_value_t = 1.0, value_parser = positive_float, allow_negative_numbers = true)]
    temperature: f64,
    /// Draw only from the K likeliest characters
    #[arg(long, value_name = "K", value_parser = positive_int::<usize>, allow_negative_numbers = true)]
    top_k: Option<usize>,
    /// Always take the likeliest character (greedy; char-rnn's -sample 0)
    #[arg(long, conflicts_with_all = ["temperature", "top_k"])]
    argmax: bool,
    /// Seed for the random draws; the same seed gives the same text [default: random]
    #[arg(long, value_name = "N")]
    rng_seed: Option<u64>,
    #[command(flatten)]
    memory: super::MemoryFlag,
}

pub fn run(args: Args) -> Result<()> {
    super::check_checkpoint_memory(&args.checkpoint, args.memory.max_memory)?;
    with_state!(checkpoint::load(&args.checkpoint)?, s => {
        super::check_memory(&charrnn::memory::sampling(s.config(), std::mem::size_of_val(&s.model.params[0])), args.memory.max_memory)?;
        write_sample(&args, &s)
    })
}

fn write_sample<T: Real>(args: &Args, state: &TrainState<T>) -> Result<()> {
    let seeded = args.seed.as_ref().is_some_and(|s| !s.is_empty());
    if args.length == 0 && !seeded {
        // nothing asked for: not even the random first character
        return Ok(());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.rng_seed.unwrap_or_else(|| rand::rng().random()));
    let vocab = &state.vocab;
    let prime = match &args.seed {
        Some(seed) if seeded => sample::encode_seed(vocab, seed).map_err(|e| match e {
            SampleError::UnknownSeedChar { .. } => usage(e.to_string()),
            other => other.into(),
        })?,
        _ => vec![rng.random_range(0..vocab.len() as u32)],
    };
    let draw = if args.argmax {
        Draw::Argmax
    } else {
        Draw::Sample {
            temperature: args.temperature,
            top_k: args.top_k,
        }
    };
    let mut sampler = Sampler::new(&state.model, draw)?;

    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut buf = [0u8; 4];
    let result = (|| -> io::Result<()> {
        for &id in &prime {
            out.write_all(vocab.char(id).encode_utf8(&mut buf).as_bytes())?;
        }
        sample::generate(&mut sampler, &prime, args.length, &mut rng, |id| {
            let c = vocab.char(id);
            out.write_all(c.encode_utf8(&mut buf).as_bytes())?;
            if c == '\n' {
                out.flush()?;
            }
            Ok::<(), io::Error>(())
        })?;
        out.write_all(b"\n")?;
        out.flush()
    })();
    match result {
        // `charrnn sample | head` closes the pipe early: that is a normal end
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
