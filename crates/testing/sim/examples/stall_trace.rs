//! Traces one write-stall run (`cargo run -p synod-sim --release --example stall_trace -- SEED VICTIM`).
use synod_core::ReplicaId;
use synod_sim::{Scenario, Sim};
fn main() {
    let mut args = std::env::args().skip(1);
    let seed = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let victim = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut sc = Scenario::calm(3, true);
    sc.commands = 4_000;
    sc.client_gap_us = 250;
    sc.fault_ms = 1_500;
    let mut sim = Sim::new(seed, sc);
    sim.set_verbose(true);
    sim.kill_at(ReplicaId(victim), 500);
    let r = sim.run().expect("passes");
    println!("{:?}", r.stats);
}
