//! # synod-sim: a deterministic simulator for `synod-core`
//!
//! Drives N [`synod_core::Replica`]s from one seed through message loss, duplication,
//! reordering and delay; partitions (isolate one, random splits, one-way); crashes that lose
//! everything not fsynced (sometimes keeping a torn prefix); restarts; pauses; membership,
//! quorum-policy and follow-the-sun changes; snapshots and aggressive log truncation. After
//! every delivery it checks agreement, validity, exactly-once and local order; at every
//! restart, that promises did not go backwards. Then it heals everything and requires every
//! acknowledged proposal on every live member within a deadline.
//!
//! There are no threads, sockets or clocks: a run is a pure function of its seed, so any
//! failure is reproduced by `cargo run -p synod-sim --release -- run --seed N`.
//!
//! What it does not do: test the real storage, transport or binary (the node crate's tests do).

pub mod checker;
pub mod swarm;
pub mod world;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use checker::Violation;
pub use swarm::Scenario;
pub use world::{Report, Sim, Stats};

/// The scenario a seed stands for.
#[must_use]
pub fn scenario_for(seed: u64) -> Scenario {
    Scenario::from_seed(&mut ChaCha8Rng::seed_from_u64(seed))
}

/// Runs one seed.
///
/// # Errors
/// The violation, prefixed with the command that reproduces it.
pub fn run_seed(seed: u64) -> Result<Report, Violation> {
    Sim::new(seed, scenario_for(seed))
        .run()
        .map_err(|v| format!("{v}\n  reproduce: {}", repro(seed)))
}

/// The one-line command that replays `seed` with a trace.
#[must_use]
pub fn repro(seed: u64) -> String {
    format!("cargo run -p synod-sim --release -- run --seed {seed} --verbose")
}

/// Seeds kept because they once failed; CI replays them all.
#[must_use]
pub fn regression_seeds() -> Vec<u64> {
    include_str!("../sim-regressions.txt")
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.parse().ok())
        .collect()
}
