//! Write stall when one replica is killed under load, in the simulator with 1 ms links: the
//! longest time with no delivery anywhere once the replica is gone (it never comes back).
//! Simulated time, so the figures are exact and repeatable; run over several seeds because
//! the victim's position in the slot rotation and the timers' jitter vary.
//!
//! `cargo bench -p synod-sim --bench write_stall`
//!
//! Timeouts are the node's LAN defaults scaled to the 1 ms links: take-over after 5 ms of
//! stall (plus the 2 ms round trip), heartbeats every 2 ms.
//!
//! Two ways of noticing the death: the peers are told the victim's connections ended (a
//! process killed on a live host: `Replica::handle_peer_lost`, a link delay after the crash),
//! or nothing tells them (a machine that vanished) and the take-over timeout does.

use synod_core::ReplicaId;
use synod_sim::{Scenario, Sim};

fn main() {
    println!("write stall after kill -9 of one of 3 replicas, 1 ms links, simulated time");
    println!(
        "{:<14} {:<16} {:>8} {:>10} {:>10} {:>10} {:>12}",
        "mode", "noticed by", "victim", "min_ms", "median_ms", "max_ms", "before_ms"
    );
    // Without reservations there are no owners to suspect: the hint changes nothing.
    for (reservations, hint) in [(true, true), (true, false), (false, false)] {
        let noticed = if hint { "connection lost" } else { "timeout" };
        for victim in 0..3u16 {
            let mut stalls = Vec::new();
            let mut before = Vec::new();
            for seed in 0..20 {
                let mut sc = Scenario::calm(3, reservations);
                sc.commands = 4_000;
                sc.client_gap_us = 250; // 4,000 commands/s offered
                sc.fault_ms = 1_500;
                sc.lost_hint_p = if hint { 1.0 } else { 0.0 };
                let mut sim = Sim::new(seed, sc);
                sim.kill_at(ReplicaId(victim), 500);
                let report = sim.run().unwrap_or_else(|v| panic!("seed {seed}: {v}"));
                stalls.push(report.stats.stall_after_kill_ns as f64 / 1e6);
                before.push(report.stats.longest_stall_before_kill_ns as f64 / 1e6);
            }
            stalls.sort_by(f64::total_cmp);
            before.sort_by(f64::total_cmp);
            let mode = if reservations {
                "reservations"
            } else {
                "contention"
            };
            println!(
                "{mode:<14} {noticed:<16} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>12.1}",
                format!("r{victim}"),
                stalls[0],
                stalls[stalls.len() / 2],
                stalls[stalls.len() - 1],
                before[before.len() / 2],
            );
        }
    }
    // A restart faster than the take-over timeout (a process restarted at once, as in a
    // rolling upgrade): the survivors hear the owner again before they take its slots over.
    for (down_us, hint) in [
        (1_000u64, true),
        (1_000, false),
        (100_000, true),
        (100_000, false),
    ] {
        println!(
            "\nthe victim crashed and restarted {} ms later (no kill), noticed by {}",
            down_us / 1_000,
            if hint { "connection lost" } else { "timeout" }
        );
        for victim in 0..3u16 {
            let mut stalls = Vec::new();
            for seed in 0..20 {
                let mut sc = Scenario::calm(3, true);
                sc.commands = 4_000;
                sc.client_gap_us = 250;
                sc.fault_ms = 1_500;
                sc.lost_hint_p = if hint { 1.0 } else { 0.0 };
                let mut sim = Sim::new(seed, sc);
                sim.bounce_at(ReplicaId(victim), 800, down_us);
                let report = sim.run().unwrap_or_else(|v| panic!("seed {seed}: {v}"));
                stalls.push(report.stats.stall_after_kill_ns as f64 / 1e6);
            }
            stalls.sort_by(f64::total_cmp);
            println!(
                "{:<14} {:>8} {:>10.1} {:>10.1} {:>10.1}",
                "reservations",
                format!("r{victim}"),
                stalls[0],
                stalls[stalls.len() / 2],
                stalls[stalls.len() - 1],
            );
        }
    }
}
