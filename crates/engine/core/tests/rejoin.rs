//! A replica that lost its disk rejoins behind a fence: it casts no vote where it may have
//! voted before, so a value it helped choose is never contradicted, and it comes back to
//! voting and proposing by itself.

#![allow(clippy::unwrap_used)]

mod harness;

use harness::{MS, Net};
use synod_core::{Ballot, Envelope, Message, Payload, ProposeError, RejoinStatus, ReplicaId, Slot};

fn gsns_with_proposals(net: &Net, id: u16) -> Vec<(Slot, Vec<synod_core::ProposalId>)> {
    net.delivered
        .get(&ReplicaId(id))
        .map(|ds| {
            ds.iter()
                .filter(|d| !d.proposals.is_empty())
                .map(|d| (d.gsn, d.proposals.iter().map(|p| p.id).collect()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_value_chosen_with_the_forgetful_replicas_vote_survives_its_lost_disk() {
    let mut net = Net::with(3, |o| o.takeover_timeout_ns = 10 * MS);
    // r0 and r2 choose x in r0's slot; r1 hears nothing of it.
    net.blocked.insert((ReplicaId(0), ReplicaId(1)));
    net.blocked.insert((ReplicaId(2), ReplicaId(1)));
    let x = net.propose(0, "x");
    net.settle();
    assert_eq!(net.log(0), vec![x], "chosen by r0 and r2");
    let x_slot = gsns_with_proposals(&net, 0)[0].0;

    // r2 loses its disk, r0 goes silent. r1 wants to write behind r0's slot: without the
    // fence, r2 would promise with nothing accepted and r1 would fill r0's slot with a no-op.
    net.heal();
    net.isolate(0);
    net.lose_disk(2, 7);
    let y = net.propose(1, "y");
    net.run_for(500);
    assert!(
        net.delivered
            .get(&ReplicaId(1))
            .is_none_or(|ds| ds.iter().all(|d| d.gsn < x_slot)),
        "r1 cannot decide r0's slot without r0 or r2's vote: {:?}",
        gsns_with_proposals(&net, 1)
    );
    assert!(
        net.r(2).metrics().fenced_votes > 0,
        "r1's take-over reached r2 and was refused"
    );
    assert!(
        net.sent
            .iter()
            .any(|e| e.from == ReplicaId(2)
                && matches!(e.message, Message::RejoinRequest { nonce: 7 })),
        "r2 asks its peers to propose its rejoin"
    );

    // r0 comes back: x stays where it was chosen, everywhere.
    net.heal();
    net.run_for(3_000);
    net.assert_same_logs(&[0, 1, 2]);
    let log = gsns_with_proposals(&net, 1);
    assert_eq!(log[0], (x_slot, vec![x]));
    assert!(net.log(1).contains(&y));
    assert_eq!(
        net.r(2).rejoin_status(),
        None,
        "r2 caught up past its fence by itself, in an otherwise idle group"
    );

    // r2 proposes again, with LSNs above any it used before the loss (x's was 1 at r0;
    // r2's own earlier LSNs are all delivered or closed at the fence).
    let z = net.propose(2, "z");
    net.run_for(500);
    net.assert_same_logs(&[0, 1, 2]);
    assert_eq!(net.log(0).iter().filter(|p| **p == z).count(), 1);
}

#[test]
fn a_replica_waiting_for_its_rejoin_neither_votes_nor_proposes() {
    let mut net = Net::with(3, |_| {});
    net.isolate(2);
    net.lose_disk(2, 11);
    assert_eq!(net.r(2).rejoin_status(), Some(RejoinStatus::Waiting));
    let now = net.now;
    assert_eq!(
        net.r(2).propose(now, Payload::Command("w".into())),
        Err(ProposeError::Rejoining),
        "no proposals before the fence"
    );
    let ballot = Ballot {
        counter: 5,
        random: 1,
        proposer: ReplicaId(1),
    };
    for message in [
        Message::Prepare {
            ballot,
            slots: vec![Slot(3)],
        },
        Message::Accept {
            ballot,
            entries: vec![(Slot(3), synod_core::Value::Noop)],
        },
    ] {
        net.r(2).handle_message(
            now,
            Envelope {
                from: ReplicaId(1),
                to: ReplicaId(2),
                message,
            },
        );
    }
    net.drain(ReplicaId(2));
    assert_eq!(net.r(2).promised(Slot(3)), None, "no promise recorded");
    assert_eq!(net.r(2).metrics().fenced_votes, 2);
    assert!(
        !net.sent.iter().any(|e| e.from == ReplicaId(2)
            && matches!(
                e.message,
                Message::Promise { .. } | Message::Accepted { .. } | Message::Rejected { .. }
            )),
        "no vote and no refusal either"
    );
}

#[test]
fn a_rejoin_sets_the_same_fence_on_every_replica_and_survives_a_restart() {
    let mut net = Net::with(3, |o| o.takeover_timeout_ns = 10 * MS);
    for i in 0..5 {
        net.propose(i % 3, &format!("w{i}"));
    }
    net.run_for(200);
    net.lose_disk(1, 99);
    net.run_for(200);
    let status = net.r(1).rejoin_status();
    // Either still catching up or done; if catching up, the fence is 4 x config_lag above the
    // slot that delivered the rejoin.
    if let Some(RejoinStatus::CatchingUp { fence }) = status {
        assert!(fence.0 >= 64);
    }
    // A restart in the middle keeps the fence (the fence record and the delivered rejoin).
    net.crash_and_restart(1);
    net.run_for(3_000);
    assert_eq!(net.r(1).rejoin_status(), None);
    net.assert_same_logs(&[0, 2]);
    let w = net.propose(1, "after");
    net.run_for(300);
    net.assert_same_logs(&[0, 1, 2]);
    assert!(net.log(1).contains(&w));
}

#[test]
fn a_stale_rejoin_delivered_after_a_newer_one_changes_nothing() {
    let mut net = Net::with(3, |o| o.takeover_timeout_ns = 10 * MS);
    net.propose(0, "a");
    net.run_for(100);
    // Two losses in a row, each rejoined.
    net.lose_disk(2, 1);
    net.run_for(2_000);
    assert_eq!(net.r(2).rejoin_status(), None);
    net.lose_disk(2, 2);
    net.run_for(2_000);
    assert_eq!(net.r(2).rejoin_status(), None);
    let before = net.r(2).metrics().proposals;
    // A request for the first loss, delayed somewhere, is agreed only now.
    let now = net.now;
    net.r(0)
        .propose(
            now,
            Payload::Config(synod_core::ConfigChange::Rejoin {
                member: ReplicaId(2),
                nonce: 1,
                after: None,
            }),
        )
        .unwrap();
    net.drain(ReplicaId(0));
    net.run_for(500);
    assert_eq!(
        net.r(2).rejoin_status(),
        None,
        "the stale rejoin did not fence r2 again"
    );
    let w = net.propose(2, "still writing");
    net.run_for(300);
    net.assert_same_logs(&[0, 1]);
    assert!(net.log(0).contains(&w));
    assert_eq!(net.r(2).metrics().proposals, before + 1);
}
