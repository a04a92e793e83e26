//! `charrnn info`: what a checkpoint holds.

use std::path::{Path, PathBuf};

use anyhow::Result;

use charrnn::linalg::Real;
use charrnn::optim::Kind;
use charrnn::train::checkpoint;
use charrnn::train::{Clip, TrainState};
use charrnn::with_state;

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
    let opt = match h.optimizer {
        Kind::RmsProp { decay } => format!("rmsprop (decay {decay})"),
        Kind::Adam { beta1, beta2 } => format!("adam (betas {beta1}, {beta2})"),
        Kind::Adagrad => "adagrad".into(),
    };
    let clip = match h.clip {
        Clip::Value(c) => format!("clip {c:?}"),
        Clip::Norm(c) => format!("clip norm {c:?}"),
    };
    let r = &s.rate;
    let decay = if r.decay < 1.0 {
        format!(", lr decay {} after epoch {}", r.decay, r.decay_after)
    } else {
        String::new()
    };
    // the rate of the next update, whatever the schedule
    let now = r.at(s.iteration);
    let opt_line = format!(
        "{opt}, learning_rate {:?} (now {now:?}){decay}, {clip}",
        r.base
    );
    let val = |v: Option<f64>| {
        v.map_or("-".to_string(), |v| {
            format!(
                "{v:.6} nats/char ({:.4} bits/char)",
                v / std::f64::consts::LN_2
            )
        })
    };
    println!(
        "checkpoint     {} (format v{}, {bytes} bytes)",
        path.display(),
        checkpoint::file_version(path).unwrap_or(checkpoint::VERSION)
    );
    println!("model          {}, {}", s.config().describe(), T::NAME);
    println!("parameters     {}", s.model.params.len());
    println!(
        "training       seq_length {}, batch {}, dropout {}, rng_seed {}",
        h.seq_length, h.batch_size, h.dropout, h.rng_seed
    );
    println!("optimizer      {opt_line}");
    if !(r.is_plain_step() && h.weight_decay == 0.0) {
        let length = r
            .total
            .map_or(String::new(), |n| format!(" over {n} iterations"));
        println!(
            "schedule       {}{length}, warmup {}, min_lr {:?}, weight decay {:?}",
            r.schedule, r.warmup, r.min_lr, h.weight_decay
        );
    }
    if let Some(e) = &s.ema {
        println!(
            "averaged       EMA decay {:?} over {} updates (eval, sample and export use it)",
            e.decay, e.steps
        );
    }
    let e = &s.session;
    println!(
        "session        sample every {} ({} chars), log every {}, validate every {}, checkpoint every {}{}",
        e.sample_every,
        e.sample_len,
        e.log_every,
        e.eval_every,
        e.checkpoint_every,
        if e.keep_best { ", keep best" } else { "" }
    );
    println!("iteration      {} (epoch {})", s.iteration, s.epoch);
    println!(
        "smooth_loss    {:.6} ({:.6} nats/char)",
        s.smooth_loss,
        s.smooth_loss / h.seq_length as f64
    );
    println!("last_loss      {:.6}", s.last_loss);
    if h.val_fraction > 0.0 {
        println!(
            "validation     last {} of the text; last {}, best {}",
            h.val_fraction,
            val(s.last_val),
            val(s.best_val)
        );
    }
    println!("data_pointer   {}", s.pointer);
    println!("elapsed        {:.1}s", s.elapsed_s);
    println!(
        "text           {} ({} chars, {} bytes, xxh3 {:016x})",
        s.text.name, s.text.chars, s.text.bytes, s.text.hash
    );
    println!("vocabulary     {vocab:?}");
}
