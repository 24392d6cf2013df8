//! The `shadergan` command line: train, sample, eval, bench, train-classifier, info.

use std::process::ExitCode;

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
    /// Score a checkpoint with the published protocols, or train and score several seeds.
    Eval(cli::eval::EvalArgs),
    /// Train the classifier behind the image scores (FD, inception score).
    TrainClassifier(cli::classifier::ClassifierArgs),
    /// Time the kernels and whole GAN steps on the GPU and the CPU backend, side by side.
    Bench(cli::bench::BenchArgs),
    /// List the GPU adapters, the one chosen, its features and its limits.
    Info {
        /// Pick the adapter whose name contains this text (else SHADERGAN_ADAPTER, else the best).
        #[arg(long)]
        adapter: Option<String>,
    },
}

fn main() -> ExitCode {
    // No subcommand: `train` with its defaults.
    let command = Cli::parse()
        .command
        .or_else(|| Cli::parse_from(["shadergan", "train"]).command)
        .expect("train parses with no arguments");
    let result = match command {
        Command::Train(args) => cli::train::run(&args),
        Command::Sample(args) => cli::sample::run(&args),
        Command::Eval(args) => cli::eval::run(&args),
        Command::TrainClassifier(args) => cli::classifier::run(&args),
        Command::Bench(args) => cli::bench::run(&args),
        Command::Info { adapter } => cli::info::run(adapter.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<cli::train::Interrupted>() {
            Some(stop) => {
                eprintln!("{stop}");
                ExitCode::from(130)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
