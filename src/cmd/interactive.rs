//! `charrnn sample --interactive`: a prime per line, a continuation for each.
//! The hidden state carries from one prompt to the next until `:reset`. On a
//! terminal it prompts (on stderr) and streams each character as it is drawn;
//! through a pipe it writes only the continuations, each followed by a newline.

use std::io::{self, BufRead, IsTerminal, Write};

use anyhow::Result;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use charrnn::linalg::Real;
use charrnn::sample::{self, Draw, Sampler, UnknownChars};
use charrnn::train::TrainState;

use super::prime::{prime_error, report_skipped};

/// What `--interactive` starts from and lets the user change between prompts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub length: usize,
    pub draw: Draw,
    pub unknown: UnknownChars,
}

const HELP: &str = "\
Type a prime and press Enter for a continuation; an empty line continues the text.
  :temperature T   divide the logits by T (e.g. 0.7)
  :top-k K         draw from the K likeliest characters (:top-k off to stop)
  :top-p P         draw from the likeliest characters whose probabilities reach P (:top-p off)
  :argmax          always take the likeliest character (:temperature, :top-k or :top-p ends it)
  :length N        write N characters per continuation
  :reset           forget the hidden state (start over)
  :help            this list
Ctrl+D ends.";

pub fn run<T: Real>(start: &Settings, state: &TrainState<T>, mut rng: ChaCha8Rng) -> Result<()> {
    let vocab = &state.vocab;
    let terminal = io::stdin().is_terminal();
    let mut settings = *start;
    let mut sampler = Sampler::new(&state.model, settings.draw)?;
    // the last character drawn, fed before the next prime so the text runs on
    let mut pending: Option<u32> = None;
    let mut fed_any = false;
    let mut out = io::stdout().lock();
    if terminal {
        eprintln!("charrnn: a prime per line, :help for settings, Ctrl+D to end");
    }
    let mut lines = io::stdin().lock().lines();
    let mut buf = [0u8; 4];
    loop {
        if terminal {
            eprint!("> ");
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if let Some(command) = line.strip_prefix(':') {
            match apply(command, &mut settings) {
                Ok(Change::Reset) => {
                    sampler.reset();
                    (pending, fed_any) = (None, false);
                }
                Ok(Change::Help) => eprintln!("{HELP}"),
                Ok(Change::Settings) => {
                    sampler.set_draw(settings.draw)?;
                    if terminal {
                        eprintln!("{}", describe(&settings));
                    }
                }
                Err(message) => eprintln!("{message} (:help lists the commands)"),
            }
            continue;
        }
        if let Some(id) = pending.take() {
            sampler.feed(id);
        }
        let primed = sample::feed_prime(&mut sampler, vocab, line.as_bytes(), settings.unknown);
        let primed = match primed {
            Ok(p) => p,
            Err(e) if terminal => {
                eprintln!("{}", prime_error(e, "the prime"));
                continue;
            }
            Err(e) => return Err(prime_error(e, "the prime")),
        };
        report_skipped(&primed, "the prime");
        fed_any |= primed.last.is_some();
        if !fed_any {
            // nothing to continue from: one random character of the vocabulary
            let id = rng.random_range(0..vocab.len() as u32);
            out.write_all(vocab.char(id).encode_utf8(&mut buf).as_bytes())?;
            sampler.feed(id);
            fed_any = true;
        }
        let n = settings.length;
        sample::continue_for(&mut sampler, n, &mut rng, |id| {
            out.write_all(vocab.char(id).encode_utf8(&mut buf).as_bytes())?;
            pending = Some(id);
            if terminal {
                out.flush()?;
            }
            Ok::<(), io::Error>(())
        })?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    if terminal {
        eprintln!();
    }
    Ok(())
}

enum Change {
    Settings,
    Reset,
    Help,
}

/// Applies one `:command` to the settings.
fn apply(command: &str, settings: &mut Settings) -> Result<Change, String> {
    let mut words = command.split_whitespace();
    let name = words.next().unwrap_or("");
    let value = words.next();
    let (temperature, top_k, top_p) = match settings.draw {
        Draw::Sample {
            temperature,
            top_k,
            top_p,
        } => (temperature, top_k, top_p),
        Draw::Argmax => (1.0, None, None),
    };
    let need = |what: &str| value.ok_or_else(|| format!(":{name} needs {what}"));
    let parsed = |r: Result<f64, String>| r.map_err(|e| format!(":{name} {e}"));
    let off = value == Some("off");
    let draw = |temperature, top_k, top_p| Draw::Sample {
        temperature,
        top_k,
        top_p,
    };
    settings.draw = match name {
        "help" | "h" | "?" => return Ok(Change::Help),
        "reset" => return Ok(Change::Reset),
        "length" | "n" => {
            let v = need("a number of characters")?;
            settings.length = v
                .parse()
                .map_err(|_| format!(":length needs a whole number, got {v:?}"))?;
            return Ok(Change::Settings);
        }
        "argmax" => Draw::Argmax,
        "temperature" | "t" => draw(
            parsed(super::positive_float(need("a number above 0")?))?,
            top_k,
            top_p,
        ),
        "top-k" | "k" if off => draw(temperature, None, top_p),
        "top-k" | "k" => {
            let k = super::positive_int::<usize>(need("a number of characters")?)
                .map_err(|e| format!(":top-k {e}"))?;
            draw(temperature, Some(k), top_p)
        }
        "top-p" | "p" if off => draw(temperature, top_k, None),
        "top-p" | "p" => draw(
            temperature,
            top_k,
            Some(parsed(super::decay_factor(need("a probability")?))?),
        ),
        _ => return Err(format!("unknown command :{name}")),
    };
    Ok(Change::Settings)
}

fn describe(s: &Settings) -> String {
    let draw = match s.draw {
        Draw::Argmax => "argmax".to_string(),
        Draw::Sample {
            temperature,
            top_k,
            top_p,
        } => {
            let mut d = format!("temperature {temperature}");
            if let Some(k) = top_k {
                d += &format!(", top-k {k}");
            }
            if let Some(p) = top_p {
                d += &format!(", top-p {p}");
            }
            d
        }
    };
    format!("{draw}; {} characters per continuation", s.length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use charrnn::sample::UnknownChars;

    #[test]
    fn commands_change_the_settings_and_bad_ones_say_why() {
        let mut s = Settings {
            length: 100,
            draw: Draw::default(),
            unknown: UnknownChars::Error,
        };
        assert!(matches!(
            apply("temperature 0.7", &mut s),
            Ok(Change::Settings)
        ));
        assert!(matches!(apply("top-k 5", &mut s), Ok(Change::Settings)));
        assert!(matches!(apply("top-p 0.9", &mut s), Ok(Change::Settings)));
        assert!(matches!(apply("length 300", &mut s), Ok(Change::Settings)));
        let want = Draw::Sample {
            temperature: 0.7,
            top_k: Some(5),
            top_p: Some(0.9),
        };
        assert_eq!((s.draw, s.length), (want, 300));
        apply("top-k off", &mut s).unwrap();
        assert!(matches!(s.draw, Draw::Sample { top_k: None, .. }));
        for bad in [
            "temperature -1",
            "temperature",
            "top-k 0",
            "top-p 1.5",
            "length x",
            "bogus",
        ] {
            let before = s;
            let err = apply(bad, &mut s).err().unwrap_or_default();
            assert!(!err.is_empty(), ":{bad} was accepted");
            assert_eq!(s, before, ":{bad} changed the settings");
        }
        assert!(matches!(apply("reset", &mut s), Ok(Change::Reset)));
        assert!(matches!(apply("help", &mut s), Ok(Change::Help)));
    }
}
