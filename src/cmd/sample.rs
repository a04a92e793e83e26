//! `charrnn sample`: write text from a checkpoint, primed by a seed.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use charrnn::linalg::Real;
use charrnn::sample::beam;
use charrnn::sample::{self, Draw, Primed, Sampler, UnknownChars};
use charrnn::train::TrainState;
use charrnn::train::checkpoint;
use charrnn::with_state;

use super::interactive::Settings;
use super::prime::{prime_error, report_skipped};
use super::{positive_float, positive_int, signals};

/// Write text from a trained model; output starts with the seed and streams as it is drawn.
///
/// Draws go through --temperature, then --top-k, then --top-p, in that order.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PATH", default_value = "charrnn.ckpt")]
    checkpoint: PathBuf,
    /// Text to prime the hidden state with [default: one random character of the vocabulary]
    #[arg(long, value_name = "TEXT", conflicts_with = "seed_file")]
    seed: Option<String>,
    /// Prime from a file (`-` reads stdin), streamed through the model and not echoed
    #[arg(long, value_name = "PATH")]
    seed_file: Option<PathBuf>,
    /// Seed characters the model has never seen: stop with an error, or skip them and say how many
    #[arg(long, value_name = "WHAT", value_enum, default_value_t = UnknownChars::Error)]
    unknown: UnknownChars,
    /// Characters to write after the seed
    #[arg(short = 'n', long = "length", value_name = "N", default_value_t = 1000)]
    length: usize,
    /// Divide the logits by T: below 1 is more conservative, above 1 more surprising
    #[arg(long, value_name = "T", default_value_t = 1.0, value_parser = positive_float, allow_negative_numbers = true)]
    temperature: f64,
    /// Draw only from the K likeliest characters
    #[arg(long, value_name = "K", value_parser = positive_int::<usize>, allow_negative_numbers = true)]
    top_k: Option<usize>,
    /// Nucleus sampling: draw only from the smallest set of likeliest characters whose
    /// probabilities add up to at least P (0 < P <= 1)
    #[arg(long, value_name = "P", value_parser = super::decay_factor, allow_negative_numbers = true)]
    top_p: Option<f64>,
    /// Always take the likeliest character (greedy; char-rnn's -sample 0)
    #[arg(long, conflicts_with_all = ["temperature", "top_k", "top_p"])]
    argmax: bool,
    /// Beam search: write the likeliest continuation of N characters a beam of W sequences
    /// finds (summed log-probabilities), W at most 1024. Prints nothing until the search
    /// ends; --beam 1 is --argmax. Its log-probability goes to stderr
    #[arg(long, value_name = "W", value_parser = beam_width,
          conflicts_with_all = ["temperature", "top_k", "top_p", "argmax", "interactive"])]
    beam: Option<usize>,
    /// Read a prime per line and write a continuation for each, until end of input (Ctrl+D).
    /// On a terminal it prompts and takes :help, :temperature, :length, :top-k, :top-p, :reset
    #[arg(long, short = 'i', conflicts_with_all = ["seed", "seed_file"])]
    interactive: bool,
    /// Seed for the random draws; the same seed gives the same text [default: random]
    #[arg(long, value_name = "N")]
    rng_seed: Option<u64>,
    #[command(flatten)]
    memory: super::MemoryFlag,
}

/// clap value parser: a beam width from 1 to [`beam::MAX_WIDTH`].
fn beam_width(s: &str) -> Result<usize, String> {
    match positive_int::<usize>(s) {
        Ok(w) if w <= beam::MAX_WIDTH => Ok(w),
        Ok(w) => Err(format!(
            "a beam of {w} is wider than charrnn searches (at most {}): each step feeds every \
             kept sequence, so time and memory grow with the width",
            beam::MAX_WIDTH
        )),
        Err(e) => Err(e),
    }
}

pub fn run(args: Args) -> Result<()> {
    super::check_checkpoint_memory(&args.checkpoint, args.memory.max_memory)?;
    with_state!(checkpoint::load_for_use(&args.checkpoint)?, s => {
        let value = std::mem::size_of_val(&s.model.params[0]);
        let mut need = charrnn::memory::sampling(s.config(), value);
        if let Some(width) = args.beam {
            need = charrnn::memory::beam_search(s.config(), value, width, args.length);
        }
        super::check_memory(&need, args.memory.max_memory)?;
        let result = if args.interactive {
            super::interactive::run(&args.settings(), &s, args.rng())
        } else {
            write_sample(&args, &s)
        };
        match result {
            // `charrnn sample | head` closes the pipe early: that is a normal end
            Err(e) if e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) => Ok(()),
            other => other,
        }
    })
}

impl Args {
    fn draw(&self) -> Draw {
        if self.argmax || self.beam.is_some() {
            Draw::Argmax
        } else {
            Draw::Sample {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
            }
        }
    }

    fn settings(&self) -> Settings {
        Settings {
            length: self.length,
            draw: self.draw(),
            unknown: self.unknown,
        }
    }

    fn rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.rng_seed.unwrap_or_else(|| rand::rng().random()))
    }
}

fn write_sample<T: Real>(args: &Args, state: &TrainState<T>) -> Result<()> {
    let seeded = args.seed_file.is_some() || args.seed.as_ref().is_some_and(|s| !s.is_empty());
    if args.length == 0 && !seeded {
        // nothing asked for: not even the random first character
        return Ok(());
    }
    let mut rng = args.rng();
    let vocab = &state.vocab;
    let mut sampler = Sampler::new(&state.model, args.draw())?;
    let mut out = Streamed::new(io::stdout().lock());
    let mut buf = [0u8; 4];
    // the first Ctrl+C, SIGTERM or SIGHUP ends the text where it is (written out)
    let stop = signals::install(None, "aborting")?;

    let source = match &args.seed_file {
        Some(path) if path.as_os_str() == "-" => "the seed on stdin".to_string(),
        Some(path) => format!("the seed file {}", path.display()),
        None => "--seed".to_string(),
    };
    let primed = match (&args.seed, &args.seed_file) {
        (_, Some(path)) if path.as_os_str() == "-" => {
            let p = sample::feed_prime(&mut sampler, vocab, io::stdin().lock(), args.unknown);
            p.map_err(|e| prime_error(e, &source))?
        }
        (_, Some(path)) => {
            let file = File::open(path)
                .with_context(|| format!("cannot open the seed file {}", path.display()))?;
            let p = sample::feed_prime(&mut sampler, vocab, io::BufReader::new(file), args.unknown);
            p.map_err(|e| prime_error(e, &source))?
        }
        (Some(seed), None) => {
            // checked whole before anything is written, then echoed as fed
            let p = sample::read_prime(vocab, seed.as_bytes(), args.unknown, |_| Ok(()));
            p.map_err(|e| prime_error(e, &source))?;
            let p = sample::read_prime(vocab, seed.as_bytes(), args.unknown, |id| {
                sampler.feed(id);
                out.write_all(vocab.char(id).encode_utf8(&mut buf).as_bytes())?;
                Ok(())
            });
            p.map_err(|e| prime_error(e, &source))?
        }
        (None, None) => Primed::default(),
    };
    report_skipped(&primed, &source);
    if primed.last.is_none() {
        if seeded {
            eprintln!(
                "note: the seed held no character the model knows; starting from a random one"
            );
        }
        let id = rng.random_range(0..vocab.len() as u32);
        out.write_all(vocab.char(id).encode_utf8(&mut buf).as_bytes())?;
        sampler.feed(id);
    }
    // what is written so far shows at once, before the first draw
    out.flush()?;

    if let Some(width) = args.beam {
        out.flush()?;
        let best = beam::search(&mut sampler, width, args.length).swap_remove(0);
        for &id in &best.ids {
            out.write_all(vocab.char(id).encode_utf8(&mut buf).as_bytes())?;
        }
        eprintln!(
            "beam {width}: log-probability {:.4} nats ({:.4} nats/char)",
            best.log_prob,
            -best.log_prob / best.ids.len().max(1) as f64
        );
    } else {
        let drawn = sample::continue_for(&mut sampler, args.length, &mut rng, |id| {
            if stop.flag.load(Ordering::Relaxed) {
                return Err(Ended::Stopped);
            }
            let c = vocab.char(id);
            out.write_all(c.encode_utf8(&mut buf).as_bytes())?;
            out.stream(c == '\n')?;
            Ok(())
        });
        match drawn {
            Ok(()) => {}
            Err(Ended::Write(e)) => return Err(e.into()),
            Err(Ended::Stopped) => {
                out.write_all(b"\n")?;
                out.flush()?;
                let signal = stop.signal().unwrap_or(signal_hook::consts::SIGINT);
                return Err(super::Interrupted {
                    message: format!("stopped by {}", signals::name(signal)),
                    signal,
                }
                .into());
            }
        }
    }
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Why drawing stopped before its length.
enum Ended {
    Write(io::Error),
    Stopped,
}

impl From<io::Error> for Ended {
    fn from(e: io::Error) -> Self {
        Ended::Write(e)
    }
}

/// Standard output, buffered, but shown as it is drawn: written out at every
/// line's end and at least every [`Streamed::EVERY`], so a long text (or one
/// without newlines) appears as it grows, and a closed pipe is seen within that
/// time (`charrnn sample -n 1000000000 | head` ends when head does).
struct Streamed<W: Write> {
    out: io::BufWriter<W>,
    flushed: Instant,
}

impl<W: Write> Streamed<W> {
    const EVERY: Duration = Duration::from_millis(50);

    fn new(out: W) -> Self {
        Streamed {
            out: io::BufWriter::new(out),
            flushed: Instant::now(),
        }
    }

    /// Writes out what is buffered at a line's end, or when it has waited long enough.
    fn stream(&mut self, line_end: bool) -> io::Result<()> {
        if line_end || self.flushed.elapsed() >= Self::EVERY {
            self.flush()?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Streamed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flushed = Instant::now();
        self.out.flush()
    }
}
