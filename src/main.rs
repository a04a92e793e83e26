//! The `charrnn` command: parse arguments, dispatch to a subcommand, turn errors
//! into a message and an exit code (0 ok, 1 runtime error, 2 usage error).

mod cmd;

use clap::{Parser, Subcommand};

/// Buffers that the two threads of a pair write halves of start on a cache line
/// (see `charrnn::parallel::alloc`).
#[global_allocator]
static ALLOCATOR: charrnn::parallel::LineAligned = charrnn::parallel::LineAligned;

/// Train character-level recurrent language models (min-char-rnn, fast) and write text with them.
#[derive(Parser)]
#[command(name = "charrnn", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Train(Box<cmd::train::Args>),
    Sample(cmd::sample::Args),
    Eval(cmd::eval::Args),
    Score(cmd::score::Args),
    Info(cmd::info::Args),
    Export(cmd::export::Args),
    Plot(cmd::plot::Args),
    Prepare(cmd::prepare::Args),
    Visualize(cmd::visualize::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => cmd::train::run(*args),
        Command::Sample(args) => cmd::sample::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Score(args) => cmd::score::run(args),
        Command::Info(args) => cmd::info::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Plot(args) => cmd::plot::run(args),
        Command::Prepare(args) => cmd::prepare::run(args),
        Command::Visualize(args) => cmd::visualize::run(args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(cmd::exit_code(&err));
    }
}
