//! `livesessions-chaos`, behind `./dev chaos [--sessions N] [--seed S]`: prints the seed, runs
//! the chaos, prints the summary, and exits non-zero on any breach.

use clap::Parser;
use livesessions_chaos::{ChaosOptions, run};
use std::path::PathBuf;

/// A chaos run: mixed lifecycles while processes are killed and restarted, then the invariants.
#[derive(Debug, Parser)]
struct Cli {
    /// How many lifecycles (one session each).
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// The seed of the mix and of the faults; a random one when absent.
    #[arg(long)]
    seed: Option<u64>,
    /// Lifecycles driven at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// The `livesessions` binary; by default the one beside this program.
    #[arg(long)]
    livesessions: Option<PathBuf>,
    /// The temporal CLI.
    #[arg(long, env = "LIVESESSIONS_TEMPORAL_CLI", default_value = ".tools/temporal/bin/temporal")]
    temporal_cli: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let options = ChaosOptions {
        sessions: cli.sessions,
        seed: cli.seed.unwrap_or_else(rand::random),
        concurrency: cli.concurrency,
        livesessions: match cli.livesessions {
            Some(path) => path,
            None => std::env::current_exe()?.with_file_name("livesessions"),
        },
        temporal_cli: cli.temporal_cli,
    };
    let summary = run(&options).await?;
    print!("{}", summary.render());
    if summary.breaches() > 0 {
        std::process::exit(1);
    }
    Ok(())
}
