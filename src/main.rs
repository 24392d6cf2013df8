//! The `shadergan` command line: train, sample, eval (score a checkpoint),
//! sweep (train and score several seeds), summarize (seeds already scored),
//! train-classifier, bench, info.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "shadergan",
    version,
    about = "Train GANs with hand-written WGSL compute shaders"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train a GAN (the default command): writes a run folder with losses, samples and a checkpoint.
    Train(cli::train::TrainArgs),
    /// Draw samples from a checkpoint into a PNG.
    Sample(cli::sample::SampleArgs),
    /// Score a checkpoint with the published protocols.
    Eval(cli::eval::EvalArgs),
    /// Train and score K seeds of a preset or a recipe file: mean ± standard error.
    Sweep(cli::sweep::SweepArgs),
    /// Mean ± standard error over seeds already scored (runs, or sweeps' folders); trains nothing.
    Summarize(cli::summarize::SummarizeArgs),
    /// Train the classifier behind the image scores (FD, inception score).
    TrainClassifier(cli::classifier::ClassifierArgs),
    /// Time the kernels and whole GAN steps on the GPU and the CPU backend, side by side.
    Bench(cli::bench::BenchArgs),
    /// List the GPU adapters, the one chosen, its features and its limits.
    Info {
        /// The adapter: its number in the list above, or text its name contains (else SHADERGAN_ADAPTER, else the best).
        #[arg(long)]
        adapter: Option<String>,
    },
}

/// Exit status of a command line clap refuses (clap's own convention).
const USAGE_EXIT: u8 = 2;

/// Clap's usage error as one line: the `error:` line, then whatever follows it
/// before the usage block (the arguments a "required" error lists, clap's
/// tips), without the usage and the `--help` hint. Like every other error,
/// a usage error is one line that names the flag.
fn one_line_usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let mut line = lines
        .next()
        .unwrap_or("error: invalid command line")
        .to_string();
    for more in lines {
        line.push_str(if line.ends_with(':') { " " } else { "; " });
        line.push_str(more);
    }
    if !line.starts_with("error:") {
        line.insert_str(0, "error: ");
    }
    line
}

/// The command to run, or the exit status when there is none (help, version, a usage error).
fn parse() -> Result<Command, ExitCode> {
    let cli = Cli::try_parse().map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(USAGE_EXIT)
        }
        _ => {
            eprintln!("{}", one_line_usage_error(&e));
            ExitCode::from(USAGE_EXIT)
        }
    })?;
    // No subcommand: `train` with its defaults.
    Ok(cli.command.unwrap_or_else(|| {
        Cli::parse_from(["shadergan", "train"])
            .command
            .expect("train parses with no arguments")
    }))
}

/// Output into a closed pipe (`shadergan info | head`) ends the process
/// quietly, as it does other command-line tools, instead of panicking in `println!`.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    let command = match parse() {
        Ok(command) => command,
        Err(status) => return status,
    };
    // The fault-injection testing hook: a value that names no fault is refused up front.
    if let Err(e) = shadergan::fault::from_env() {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match command {
        Command::Train(args) => cli::train::run(&args),
        Command::Sample(args) => cli::sample::run(&args),
        Command::Eval(args) => cli::eval::run(&args),
        Command::Sweep(args) => cli::sweep::run(&args),
        Command::Summarize(args) => cli::summarize::run(&args),
        Command::TrainClassifier(args) => cli::classifier::run(&args),
        Command::Bench(args) => cli::bench::run(&args),
        Command::Info { adapter } => cli::info::run(adapter.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<cli::train::Interrupted>() {
            Some(stop) => {
                eprintln!("{stop}");
                ExitCode::from(u8::try_from(128 + stop.signal).unwrap_or(255))
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
