//! The `shadergan` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod info;

#[derive(Parser)]
#[command(
    name = "shadergan",
    version,
    about = "Train GANs with hand-written WGSL compute shaders"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the GPU adapters, the one chosen, its features and its limits.
    Info {
        /// Pick the adapter whose name contains this text (else SHADERGAN_ADAPTER, else the best).
        #[arg(long)]
        adapter: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { adapter } => info::run(adapter.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
