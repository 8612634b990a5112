//! A peer whose connection the transport lost (`Replica::handle_peer_lost`): suspected at
//! once, its slots taken over without waiting for the take-over timeout; a false hint costs
//! nothing but timing.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod harness;

use harness::{MS, Net};
use synod_core::{GroupParams, ReplicaId};

fn net() -> Net {
    Net::with(3, |o| {
        o.params = GroupParams {
            reservations: true,
            preserve_local_order: false,
            // Room for revocation ahead of need (`revoke_lookahead` slots past the frontier).
            config_lag: 256,
        };
        o.takeover_timeout_ns = 10 * MS;
    })
}

#[test]
fn the_slots_of_a_peer_whose_connection_ended_are_taken_over_without_waiting() {
    let mut net = net();
    // r0 dies: nothing more from it. r1's command (slot 1) waits behind r0's slot 0.
    net.isolate(0);
    let y = net.propose(1, "y");
    net.settle();
    assert_eq!(net.log(1), vec![], "y waits behind r0's undecided slot");
    // Its connections end; r1 and r2 hear of it. No clock moves: the take-over runs on the
    // hint alone (phase 1 and 2 over this harness's instant network).
    for peer in [1, 2] {
        let now = net.now;
        net.r(peer).handle_peer_lost(now, ReplicaId(0));
        net.drain(ReplicaId(peer));
    }
    net.settle();
    assert_eq!(net.log(1), vec![y], "taken over without a timeout");
    net.assert_same_logs(&[1, 2]);
    assert!(net.r(1).metrics().peers_lost + net.r(2).metrics().peers_lost == 2);
}

#[test]
fn without_the_hint_the_same_stall_waits_for_the_timeout() {
    // The control for the test above: the same stall, no hint, no progress until the
    // take-over timeout has passed.
    let mut net = net();
    net.isolate(0);
    let y = net.propose(1, "y");
    net.run_for(5);
    assert_eq!(net.log(1), vec![], "taken over before the timeout");
    net.run_for(100);
    assert_eq!(net.log(1), vec![y]);
}

#[test]
fn a_false_hint_about_a_live_peer_loses_nothing_and_the_peer_keeps_its_slots() {
    let mut net = net();
    // A reset connection: r0 is alive but r1 and r2 are told it was lost, while r0 has a
    // command in flight in its own slot.
    let a = net.propose(0, "a");
    for peer in [1, 2] {
        let now = net.now;
        net.r(peer).handle_peer_lost(now, ReplicaId(0));
        net.drain(ReplicaId(peer));
    }
    net.settle();
    net.run_for(50);
    // Heard from again, r0 is trusted with its slots: its later commands commit in them.
    let b = net.propose(0, "b");
    let c = net.propose(2, "c");
    net.run_for(100);
    for id in [0, 1, 2] {
        let log = net.log(id);
        for p in [a, b, c] {
            assert_eq!(
                log.iter().filter(|q| **q == p).count(),
                1,
                "r{id} delivered {p:?} once: {log:?}"
            );
        }
    }
    net.assert_same_logs(&[0, 1, 2]);
    let before = net.r(1).metrics().takeovers;
    let d = net.propose(0, "d");
    net.run_for(100);
    assert!(net.log(1).contains(&d));
    assert_eq!(
        net.r(1).metrics().takeovers,
        before,
        "r0's slots are no longer revoked once it was heard from again"
    );
}
