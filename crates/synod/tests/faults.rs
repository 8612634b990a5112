//! Fault scenarios on real processes: a cluster of the real binary, each node in its own
//! network namespace, clients recording every operation (`synod workload`), faults applied on
//! a timeline (nftables partitions, one-way partitions and packet loss inside the nodes'
//! namespaces; SIGKILL with power-cut storage; SIGSTOP/SIGCONT; damaged and replaced disks;
//! members added and removed). After each scenario every
//! node must hold the same state, the history must be linearizable key by key and GSNs must
//! follow real time (`common::netns::run`); each scenario adds its own checks below. Reports
//! (JSON, markdown, an SVG of throughput with the fault window shaded) go to
//! `target/fault-reports/`; docs/RELIABILITY.md has the latest figures.
//!
//! The scenarios run one at a time (they share two cores with the cluster they start).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Mutex;

use common::netns::{Fault, Scenario, run};

/// One scenario at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const SECOND: u64 = 1_000_000;

#[test]
fn an_isolated_node_refuses_writes_the_majority_goes_on_and_it_recovers_after_the_heal() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = run(&Scenario {
        name: "isolate-one-of-three",
        what: "node 0 cut off from both peers by nftables for 5 s, then healed",
        nodes: 3,
        spares: 0,
        clients: 6,
        secs: 14.0,
        faults: vec![(4.0, Fault::Isolate(0)), (9.0, Fault::Heal(0))],
        window: (4.0, 9.0),
        by_name: false,
    });
    let (cut, heal) = (run.at(0), run.at(1));
    // Two seconds cover failure detection and the clock offset between test and workload.
    assert_eq!(
        run.acked_puts(0, cut + 2 * SECOND, heal),
        0,
        "the isolated node acknowledged a write while cut off"
    );
    assert!(
        run.acked_puts(1, cut, heal) + run.acked_puts(2, cut, heal) > 0,
        "the majority stopped writing"
    );
    assert!(
        run.acked_puts(0, heal + 2 * SECOND, u64::MAX) > 0,
        "the isolated node did not serve writes again after the heal"
    );
}

#[test]
fn a_node_killed_with_sigkill_loses_nothing_acknowledged_and_rejoins() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = run(&Scenario {
        name: "kill-9-and-restart",
        what: "node 1 killed with SIGKILL (power-cut storage: unsynced writes lost), \
               restarted 3 s later",
        nodes: 3,
        spares: 0,
        clients: 6,
        secs: 12.0,
        faults: vec![(4.0, Fault::Kill(1)), (7.0, Fault::Restart(1))],
        window: (4.0, 7.0),
        by_name: false,
    });
    let (killed, restarted) = (run.at(0), run.at(1));
    assert!(
        run.acked_puts(0, killed, restarted) + run.acked_puts(2, killed, restarted) > 0,
        "the survivors stopped writing"
    );
    assert!(
        run.acked_puts(1, restarted + SECOND, u64::MAX) > 0,
        "the restarted node did not serve writes again"
    );
}

#[test]
fn a_paused_node_a_one_way_partition_and_lossy_links_keep_the_history_linearizable() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = run(&Scenario {
        name: "pause-one-way-loss",
        what: "node 2 paused (SIGSTOP) for 3 s; then node 0 stops hearing node 1 (one-way) for \
               3 s; then every node loses 10% of its incoming peer packets for 3 s",
        nodes: 3,
        spares: 0,
        clients: 6,
        secs: 16.0,
        faults: vec![
            (2.0, Fault::Pause(2)),
            (5.0, Fault::Resume(2)),
            (6.0, Fault::DeafTo(0, 1)),
            (9.0, Fault::HearAgain(0, 1)),
            (10.0, Fault::Loss(0, 10)),
            (10.0, Fault::Loss(1, 10)),
            (10.0, Fault::Loss(2, 10)),
            (13.0, Fault::NoLoss(0)),
            (13.0, Fault::NoLoss(1)),
            (13.0, Fault::NoLoss(2)),
        ],
        window: (2.0, 13.0),
        by_name: false,
    });
    let total = |from: u64, to: u64| (0..3).map(|n| run.acked_puts(n, from, to)).sum::<usize>();
    assert!(
        run.acked_puts(0, run.at(0), run.at(1)) + run.acked_puts(1, run.at(0), run.at(1)) > 0,
        "nodes 0 and 1 stopped writing while node 2 was paused"
    );
    assert!(
        total(run.at(2), run.at(3)) > 0,
        "nothing was written during the one-way partition"
    );
    assert!(
        total(run.at(4), run.at(7)) > 0,
        "nothing was written with 10% loss"
    );
}

#[test]
fn a_minority_of_five_refuses_writes_while_the_majority_goes_on() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    const MINORITY: &[usize] = &[0, 1];
    let run = run(&Scenario {
        name: "split-two-of-five",
        what: "five nodes; nodes 0 and 1 cut off from nodes 2, 3 and 4 for 5 s, then joined",
        nodes: 5,
        spares: 0,
        clients: 5,
        secs: 22.0,
        faults: vec![(4.0, Fault::Split(MINORITY)), (9.0, Fault::Join(MINORITY))],
        window: (4.0, 9.0),
        by_name: false,
    });
    let (split, joined) = (run.at(0), run.at(1));
    for n in MINORITY {
        assert_eq!(
            run.acked_puts(*n, split + 2 * SECOND, joined),
            0,
            "node {n} of the minority acknowledged a write"
        );
    }
    assert!(
        (2..5)
            .map(|n| run.acked_puts(n, split, joined))
            .sum::<usize>()
            > 0,
        "the majority stopped writing"
    );
    assert!(
        MINORITY
            .iter()
            .map(|n| run.acked_puts(*n, joined + 2 * SECOND, u64::MAX))
            .sum::<usize>()
            > 0,
        "the minority did not serve writes again after the split healed"
    );
}

#[test]
fn a_majorities_ring_of_five_keeps_the_history_linearizable_and_heals() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = run(&Scenario {
        name: "majorities-ring-of-five",
        what: "five nodes; each hears only its two ring neighbours for 5 s (every node has a \
               majority, no two the same), then healed",
        nodes: 5,
        spares: 0,
        clients: 5,
        secs: 16.0,
        faults: vec![(4.0, Fault::Ring), (9.0, Fault::Unring)],
        window: (4.0, 9.0),
        by_name: false,
    });
    // Safety is checked by `run`; liveness after the heal here: every node's clients write
    // again once the ring is gone.
    let healed = run.at(1);
    for n in 0..5 {
        assert!(
            run.acked_puts(n, healed + 2 * SECOND, u64::MAX) > 0,
            "node {n} did not serve writes after the ring healed"
        );
    }
}

#[test]
fn damaged_and_replaced_disks_are_repaired_from_the_peers_under_load() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = run(&Scenario {
        name: "damaged-disks",
        what: "each node in turn killed and its disk damaged: node 1's last log record \
               overwritten, node 2's database file cut to half its length, node 0's data \
               directory deleted (restarted with --rejoin); each must repair from its peers",
        nodes: 3,
        spares: 0,
        clients: 6,
        secs: 22.0,
        faults: vec![
            (3.0, Fault::Kill(1)),
            (3.2, Fault::CorruptTail(1)),
            (3.4, Fault::Restart(1)),
            (3.5, Fault::AwaitRejoined(1)),
            (8.0, Fault::Kill(2)),
            (8.2, Fault::TruncateDb(2)),
            (8.4, Fault::Restart(2)),
            (8.5, Fault::AwaitRejoined(2)),
            (13.0, Fault::Kill(0)),
            (13.2, Fault::WipeData(0)),
            (13.4, Fault::RestartRejoin(0)),
            (13.5, Fault::AwaitRejoined(0)),
        ],
        window: (3.0, 14.0),
        by_name: false,
    });
    for (node, what) in [
        (1, "group wiped: its state on this disk cannot be trusted"),
        (2, "the database is damaged: set aside"),
        (0, "rejoining: this node's data directory is empty"),
    ] {
        assert!(
            run.logs[node].contains(what),
            "node {node} did not report its repair ({what:?})"
        );
    }
    // Every damaged node serves writes again once repaired, and the others kept writing
    // while it was down.
    for (node, rejoined) in [(1, run.at(3)), (2, run.at(7)), (0, run.at(11))] {
        assert!(
            run.acked_puts(node, rejoined, u64::MAX) > 0,
            "node {node} did not serve writes after its repair"
        );
    }
    let (first_down, back) = (run.at(0), run.at(3));
    assert!(
        run.acked_puts(0, first_down, back) + run.acked_puts(2, first_down, back) > 0,
        "the others stopped writing while node 1 was repaired"
    );
}

#[test]
fn a_member_added_and_removed_under_load_keeps_the_history_linearizable() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = run(&Scenario {
        name: "member-add-remove",
        what: "node 3 started empty and added to the default group under load (it catches up, \
               then votes), then removed again under load",
        nodes: 3,
        spares: 1,
        clients: 6,
        secs: 16.0,
        faults: vec![
            (3.0, Fault::StartSpare(3)),
            (3.5, Fault::AddMember(3)),
            (3.6, Fault::AwaitCaughtUp(3)),
            (9.0, Fault::RemoveMember(3)),
        ],
        window: (3.0, 10.0),
        by_name: false,
    });
    let total = |from: u64, to: u64| (0..3).map(|n| run.acked_puts(n, from, to)).sum::<usize>();
    assert!(
        total(run.at(1), run.at(2)) > 0,
        "nothing was written while node 3 caught up"
    );
    assert!(
        total(run.at(2), run.at(3)) > 0,
        "nothing was written while node 3 voted"
    );
    assert!(
        total(run.at(3), u64::MAX) > 0,
        "nothing was written after node 3 was removed"
    );
}

#[test]
fn nodes_that_know_each_other_only_by_dns_name_form_a_cluster_and_find_a_restarted_peer() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = run(&Scenario {
        name: "peers-by-dns-name",
        what: "every node names its peers by DNS name only (each namespace its own hosts \
               file); node 2 killed with SIGKILL and restarted",
        nodes: 3,
        spares: 0,
        clients: 6,
        secs: 10.0,
        faults: vec![(3.0, Fault::Kill(2)), (5.0, Fault::Restart(2))],
        window: (3.0, 5.0),
        by_name: true,
    });
    assert!(
        run.by_name,
        "`ip netns` is refused here, so the nodes could not be given names of their own"
    );
    for node in 0..3 {
        assert!(
            run.acked_puts(node, 0, run.at(0)) > 0,
            "node {node} acknowledged no write before the kill"
        );
    }
    assert!(
        run.acked_puts(2, run.at(1) + SECOND, u64::MAX) > 0,
        "the restarted node, found again by name, served no writes"
    );
}

#[test]
fn a_rolling_upgrade_under_load_loses_nothing_acknowledged() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = run(&Scenario {
        name: "rolling-upgrade",
        what: "each node in turn stopped with SIGTERM and started on the other build \
               (SYNOD_UPGRADE_FROM to SYNOD_UPGRADE_TO), the next only once it is ready",
        nodes: 3,
        spares: 0,
        clients: 6,
        secs: 16.0,
        faults: vec![
            (3.0, Fault::Upgrade(2)),
            (6.0, Fault::Upgrade(1)),
            (9.0, Fault::Upgrade(0)),
        ],
        window: (3.0, 12.0),
        // As a StatefulSet's pods know each other (a build older than names gets addresses).
        by_name: true,
    });
    // Nothing acknowledged lost and the history linearizable: checked by `run`. Here: how
    // long writes stalled around each node's stop and start (the goal is under 100 ms; the
    // bound asserted is loose, a timed assertion on a shared 2-core machine being flaky).
    let mut acks: Vec<u64> = run
        .record
        .ops
        .iter()
        .filter(|o| {
            matches!(o.call, synod_check::kv::KvCall::Put { .. })
                && matches!(o.outcome, synod_check::Outcome::Ok(_))
        })
        .map(|o| o.complete)
        .collect();
    acks.sort_unstable();
    // The longest gap between acknowledged writes in `from..to` (µs), and where it began.
    let longest_gap = |from: u64, to: u64| {
        acks.windows(2)
            .filter(|w| w[1] >= from && w[0] <= to)
            .map(|w| (w[1] - w[0], w[0]))
            .max()
            .unwrap_or((u64::MAX, 0))
    };
    // What the machine does with no fault, for comparison: the same clients, the second
    // before the first SIGTERM.
    let (calm, _) = longest_gap(run.begun[0] - SECOND, run.begun[0]);
    println!(
        "rolling-upgrade: longest write gap in the second before the first step (no fault): \
         {:.1} ms",
        calm as f64 / 1e3
    );
    for k in 0..3 {
        let from = run.begun[k];
        let (stall, at) = longest_gap(from, run.at(k) + SECOND);
        println!(
            "rolling-upgrade: step {k} ({:?}, {:.2} s from SIGTERM to ready): longest write \
             stall {:.1} ms, from {:+.3} s after the SIGTERM",
            run.applied[k].1,
            (run.at(k) - from) as f64 / 1e6,
            stall as f64 / 1e3,
            (at as f64 - from as f64) / 1e6
        );
        assert!(
            stall < SECOND,
            "writes stalled {} ms during step {k}",
            stall / 1_000
        );
    }
    assert!(
        run.acked_puts(0, run.at(2) + SECOND, u64::MAX) > 0,
        "the last upgraded node served no writes"
    );
}
