//! `charrnn prepare`: turn other people's data into a training text.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use charrnn::io::fsutil::{self, AtomicFile};
use charrnn::io::prepare::files;
use charrnn::io::prepare::stackexchange::{self, Filter, PrepareError};

use super::signals::{self, Stop};

/// Make a training text from a Stack Exchange dump or a source tree.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    source: Source,
}

#[derive(clap::Subcommand)]
enum Source {
    Stackexchange(StackExchange),
    Files(Files),
}

/// A Stack Exchange dump's Posts.xml: each question's title and body, then its answers, as plain text.
#[derive(clap::Args)]
struct StackExchange {
    /// Posts.xml from a site's dump (e.g. datascience.stackexchange.com.7z, unpacked)
    #[arg(value_name = "POSTS_XML")]
    posts: PathBuf,
    #[arg(long, short = 'o', value_name = "PATH", default_value = "input.txt")]
    out: PathBuf,
    /// Keep the first N questions that pass the other filters (with all their answers)
    #[arg(long, value_name = "N", value_parser = super::positive_int::<u64>)]
    max_posts: Option<u64>,
    /// Keep only questions and answers scoring at least S
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    min_score: Option<i64>,
    /// Keep only questions tagged with one of these (comma-separated)
    #[arg(long, value_name = "TAGS", value_delimiter = ',')]
    tags: Vec<String>,
    /// Memory for sorting answers under their questions before spilling to temp files
    #[arg(long, value_name = "MB", default_value_t = 128, value_parser = super::positive_int::<usize>)]
    sort_memory: usize,
    /// Replace an existing output file
    #[arg(long)]
    force: bool,
}

/// A source tree: every text file with the given extensions, concatenated in path order.
#[derive(clap::Args)]
struct Files {
    /// Top of the tree (hidden files and directories such as .git are skipped)
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Extensions to take, comma-separated (default: every file)
    #[arg(long, value_name = "EXTS", value_delimiter = ',')]
    ext: Vec<String>,
    #[arg(long, short = 'o', value_name = "PATH", default_value = "input.txt")]
    out: PathBuf,
    /// Replace an existing output file
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> Result<()> {
    match args.source {
        Source::Stackexchange(a) => stack_exchange(a),
        Source::Files(a) => source_tree(a),
    }
}

fn open_output(out: &Path, force: bool) -> Result<AtomicFile> {
    if out.exists() && !force {
        return Err(super::usage(format!(
            "{} already exists; replace it with --force",
            out.display()
        )));
    }
    fsutil::check_writable(out).with_context(|| format!("cannot write {}", out.display()))?;
    let stale = fsutil::remove_dead_temps(out);
    if stale > 0 {
        eprintln!("note: removed {stale} temp file(s) left by an earlier prepare that was killed");
    }
    AtomicFile::create(out).with_context(|| format!("cannot write {}", out.display()))
}

/// Ctrl+C, SIGTERM or SIGHUP stops the work; the output is not written and temp
/// files go away.
fn install_signals() -> Result<Stop> {
    signals::install(
        None,
        "aborting; temp files may be left, and the next prepare removes them",
    )
}

fn interrupted(err: PrepareError, out: &Path, stop: &Stop) -> anyhow::Error {
    match err {
        PrepareError::Interrupted => {
            let signal = stop.signal().unwrap_or(signal_hook::consts::SIGINT);
            let message = match signal {
                signal_hook::consts::SIGINT => {
                    format!("interrupted; {} was not written", out.display())
                }
                _ => format!(
                    "stopped by {}; {} was not written",
                    signals::name(signal),
                    out.display()
                ),
            };
            super::Interrupted { message, signal }.into()
        }
        e => e.into(),
    }
}

fn stack_exchange(a: StackExchange) -> Result<()> {
    let size = std::fs::metadata(&a.posts)
        .with_context(|| format!("cannot read {}", a.posts.display()))?
        .len();
    let mut out = open_output(&a.out, a.force)?;
    let stop = install_signals()?;
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr_with_hz(5));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} [{elapsed_precise}<{eta}]",
        )
        .expect("valid template"),
    );
    let filter = Filter {
        max_posts: a.max_posts,
        min_score: a.min_score,
        tags: a
            .tags
            .iter()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
            .collect(),
    };
    let temp_dir = fsutil::parent_dir(&a.out);
    let progress = |bytes| bar.set_position(bytes);
    let summary = stackexchange::prepare(
        &a.posts,
        &mut out,
        &filter,
        &temp_dir,
        a.sort_memory << 20,
        &progress,
        &stop.flag,
    )
    .map_err(|e| interrupted(e, &a.out, &stop))?;
    bar.finish_and_clear();
    out.commit()
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    let s = summary;
    eprintln!(
        "wrote {} ({} bytes): {} questions, {} answers from {} rows; left out {} questions and {} answers (filters, \
         or answers to questions left out), {} other rows",
        a.out.display(),
        s.bytes_out,
        s.questions,
        s.answers,
        s.rows,
        s.questions_filtered,
        s.answers_filtered,
        s.other_rows
    );
    if s.questions == 0 {
        eprintln!(
            "warning: no question passed the filters; {} is empty",
            a.out.display()
        );
    }
    Ok(())
}

fn source_tree(a: Files) -> Result<()> {
    let exts: Vec<String> = a
        .ext
        .iter()
        .map(|e| e.trim().trim_start_matches('.').to_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    if !a.dir.is_dir() {
        bail!(
            "{}: not a directory; give the top of a source tree",
            a.dir.display()
        );
    }
    let mut out = open_output(&a.out, a.force)?;
    let stop = install_signals()?;
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} files [{elapsed_precise}]")
            .expect("valid template"),
    );
    let progress = |n| bar.set_position(n);
    let s = files::prepare(&a.dir, &exts, Some(&a.out), &mut out, &progress, &stop.flag)
        .map_err(|e| interrupted(e, &a.out, &stop))?;
    bar.finish_and_clear();
    out.commit()
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    eprintln!(
        "wrote {} ({} bytes) from {} files; skipped {} binary, {} not UTF-8, {} unreadable, {} with other extensions",
        a.out.display(),
        s.bytes_out,
        s.files,
        s.binary,
        s.not_utf8,
        s.unreadable.len(),
        s.other_extension
    );
    for (path, why) in s.unreadable.iter().take(10) {
        eprintln!("  unreadable: {} ({why})", path.display());
    }
    if s.files == 0 {
        eprintln!("warning: no file matched; {} is empty", a.out.display());
    }
    Ok(())
}
