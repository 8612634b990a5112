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
//!
//! A process that stops or dies closes its connections at once, and its peers hear of it
//! (`Replica::handle_peer_lost`): they revoke its slots then, not after a take-over timeout
//! of silence. Planted bug `mutation-ignore-peer-lost` drops the hint.

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

/// Median over victims and seeds, in ms, after `fault` was applied to a fresh sim: the
/// longest stall after it, or (`detection`) the time until a peer started a take-over.
fn median_stall(detection: bool, fault: impl Fn(&mut Sim, ReplicaId)) -> (f64, Vec<f64>) {
    let mut stalls = Vec::new();
    for victim in 0..3u16 {
        for seed in 0..SEEDS {
            let mut sc = Scenario::calm(3, true);
            sc.commands = 4_000;
            sc.client_gap_us = 250;
            sc.fault_ms = 1_500;
            sc.lost_hint_p = 1.0;
            let mut sim = Sim::new(seed, sc);
            fault(&mut sim, ReplicaId(victim));
            let report = sim
                .run()
                .unwrap_or_else(|v| panic!("victim {victim}, seed {seed}: {v}"));
            let stats = &report.stats;
            let ns = if detection {
                stats.takeover_after_kill_ns
            } else {
                stats.stall_after_kill_ns
            };
            stalls.push(ns as f64 / 1e6);
        }
    }
    stalls.sort_by(f64::total_cmp);
    let median = stalls[stalls.len() / 2];
    println!(
        "median {median:.1} ms, {:.1} take-over timeouts",
        median / TAKEOVER_MS
    );
    (median, stalls)
}

#[test]
fn the_peers_of_a_process_that_died_take_its_slots_over_without_waiting_for_a_timeout() {
    // Killed for good. Without the hint a peer starts phase 1 on its slots after a take-over
    // timeout of silence, ranked and jittered (1.6 timeouts in the median); with it, after
    // the hint's one-way trip and an fsync of the promise.
    let (median, all) = median_stall(true, |sim, victim| sim.kill_at(victim, 800));
    assert!(
        median < TAKEOVER_MS / 2.0,
        "median time from a kill the peers heard of to their take-over {median:.1} ms, {:.1} \
         take-over timeouts (all: {all:?})",
        median / TAKEOVER_MS
    );
}

#[test]
fn a_process_stopped_and_started_at_once_stalls_writes_under_two_timeouts() {
    // Down for 3 ms (a restart's own start): its peers revoke its slots when they hear it
    // went, and trust it again when it is back. Without the hint: 3.6 timeouts in the median.
    let (median, all) = median_stall(false, |sim, victim| sim.bounce_at(victim, 800, 3_000));
    assert!(
        median < 2.0 * TAKEOVER_MS,
        "median stall after a restart the peers heard of {median:.1} ms, {:.1} take-over \
         timeouts (all: {all:?})",
        median / TAKEOVER_MS
    );
}
