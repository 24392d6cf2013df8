//! `shadergan summarize DIR...`: mean ± standard error over the seeds already
//! scored in the folders (a sweep split over machines or cut short); reads
//! only, writes nothing.

use std::path::PathBuf;

use clap::Args;
use shadergan::eval::sweep;

#[derive(Args, Clone, Debug)]
pub struct SummarizeArgs {
    /// Runs, or sweeps holding seed-* runs; they must share one configuration.
    #[arg(value_name = "DIR", required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// Print the summary as JSON (the shape of a sweep's summary.json).
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &SummarizeArgs) -> anyhow::Result<()> {
    let (runs, unfinished) = sweep::gather(&a.dirs)?;
    for dir in &unfinished {
        eprintln!(
            "note: {} has no eval.json (unfinished); left out",
            dir.display()
        );
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&sweep::summary_json(&runs))?
        );
        return Ok(());
    }
    println!("{}", sweep::heading(&runs));
    for line in sweep::summary_lines(&runs) {
        println!("{line}");
    }
    Ok(())
}
