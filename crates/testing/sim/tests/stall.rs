//! How long writes stall when a replica restarts at once, in simulated time (exact and
//! repeatable, whatever the machine is doing): the number of timeouts the protocol waits, not
//! the speed of a machine.
//!
//! A process restarted at once (a rolling upgrade, a crash under a supervisor) is heard by
//! its peers again before they take its slots over, so they wait for it to fill them, up to
//! four take-over timeouts (`patience_for_live_owner`). What it proposed before the crash died
//! with the process; it must settle those slots itself, at once. It used to wait until last
//! in the take-over ring (three timeouts) and the stall took about four timeouts; planted bug
//! `mutation-restart-settles-last` brings that back.

use synod_core::ReplicaId;
use synod_sim::{Scenario, Sim};

/// Seeds per victim.
const SEEDS: u64 = 12;

/// The take-over timeout the simulator gives its replicas with `Scenario::calm` (5 ms plus
/// the worst round trip on its 1 ms links).
const TAKEOVER_MS: f64 = 7.0;

#[test]
fn a_replica_restarted_at_once_settles_its_own_slots_without_the_peers_waiting_for_it() {
    let mut stalls = Vec::new();
    for victim in 0..3u16 {
        for seed in 0..SEEDS {
            let mut sc = Scenario::calm(3, true);
            sc.commands = 4_000;
            sc.client_gap_us = 250;
            sc.fault_ms = 1_500;
            let mut sim = Sim::new(seed, sc);
            // Down for 1 ms: back before any peer's take-over timer fires.
            sim.bounce_at(ReplicaId(victim), 800, 1_000);
            let report = sim
                .run()
                .unwrap_or_else(|v| panic!("victim {victim}, seed {seed}: {v}"));
            stalls.push(report.stats.stall_after_kill_ns as f64 / 1e6);
        }
    }
    stalls.sort_by(f64::total_cmp);
    let median = stalls[stalls.len() / 2];
    // Settled at once, the stall is about three timeouts (detection by the restarted replica
    // after a heartbeat, phase 1 and 2 with fsyncs); waiting for the ring it was over five.
    assert!(
        median < 4.0 * TAKEOVER_MS,
        "median stall after an immediate restart {median:.1} ms, {:.1} take-over timeouts \
         (all: {stalls:?})",
        median / TAKEOVER_MS
    );
}
