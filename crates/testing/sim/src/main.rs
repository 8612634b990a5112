//! `synod-sim`: run, replay and soak simulator seeds.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use synod_sim::{Sim, repro, run_seed, scenario_for};

#[derive(Parser)]
#[command(about = "Deterministic fault simulator for the Synod agreement core")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed and print what happened.
    Run {
        /// The seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print every fault and event of note to stderr.
        #[arg(long)]
        verbose: bool,
    },
    /// Run many seeds; print every failing one.
    Soak {
        /// How many seeds.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        /// First seed (random if omitted).
        #[arg(long)]
        start: Option<u64>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run { seed, verbose } => {
            let sc = scenario_for(seed);
            println!("seed {seed}: {sc:?}");
            let mut sim = Sim::new(seed, sc);
            sim.set_verbose(verbose);
            let started = Instant::now();
            match sim.run() {
                Ok(r) => {
                    println!(
                        "ok in {:.2?}: converged at {} ms simulated; {:?}",
                        started.elapsed(),
                        r.converged_ms,
                        r.stats
                    );
                    ExitCode::SUCCESS
                }
                Err(v) => {
                    println!("FAILED: {v}\n  reproduce: {}", repro(seed));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Soak { seeds, start } => {
            let start = start.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
            println!("soak: seeds {start}..{}", start + seeds);
            let mut failed = 0;
            for seed in start..start + seeds {
                if let Err(v) = run_seed(seed) {
                    failed += 1;
                    println!("seed {seed} FAILED: {v}");
                }
            }
            println!("{} passed, {failed} failed", seeds - failed);
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
