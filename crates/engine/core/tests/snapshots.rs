//! A peer's snapshot is checked before it is installed: one whose engine state no replica
//! could have made (found by fuzzing: `fuzz/regressions/snapshot/`) is refused, changes
//! nothing, and the replica goes on to install a sound one.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod harness;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use harness::Net;
use synod_core::{
    Config, HistoryError, Lsn, Message, Options, Payload, Proposal, ProposalId, Record, Rejoined,
    Replica, ReplicaId, Slot, Snapshot, SnapshotError, Time,
};

/// The last snapshot `id` made durable.
fn latest_snapshot(net: &Net, id: ReplicaId) -> Arc<Snapshot> {
    net.durable[&id]
        .iter()
        .rev()
        .find_map(|r| match r {
            Record::Snapshot(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap()
}

/// A three-member group whose replica 2 fell behind a truncation: the sound snapshot it was
/// asked for, with the net that made it.
fn lagging_replica_and_its_snapshot() -> (Net, Arc<Snapshot>) {
    let mut net = Net::with(3, |o| o.params.reservations = false);
    net.isolate(2);
    for i in 0..30 {
        net.propose(0, &format!("c{i}"));
    }
    net.run_for(100);
    let now = net.now;
    for r in 0..2 {
        let applied = net.r(r).applied();
        net.r(r).compact(now, Bytes::from_static(b"app"), applied);
        net.drain(ReplicaId(r));
    }
    let snapshot = latest_snapshot(&net, ReplicaId(0));
    (net, snapshot)
}

/// Every way of spoiling a sound snapshot that the fuzzer found, with the refusal it must get.
fn spoiled(sound: &Snapshot) -> Vec<(&'static str, Snapshot, SnapshotError)> {
    let next = sound.next_slot;
    let lag = 16; // the harness's `config_lag`
    let mut out = Vec::new();

    let mut s = sound.clone();
    s.core.configs = synod_core::config::ConfigHistory::new(Config::majority([]));
    let invalid = Config::majority([]).validate().unwrap_err();
    out.push((
        "a configuration without members",
        s,
        SnapshotError::History(HistoryError::Invalid {
            from: Slot(0),
            error: invalid,
        }),
    ));

    let mut s = sound.clone();
    let ahead = Slot(next.0 + 10 * lag);
    s.core
        .configs
        .push(ahead, Config::majority([ReplicaId(0), ReplicaId(1)]));
    out.push((
        "a configuration further ahead than a change reaches",
        s,
        SnapshotError::History(HistoryError::TooFarAhead {
            last: ahead,
            next_slot: next,
        }),
    ));

    let mut s = sound.clone();
    s.next_slot = Slot(u64::MAX);
    out.push((
        "a snapshot at the last slot",
        s,
        SnapshotError::TooFar(Slot(u64::MAX)),
    ));

    let mut s = sound.clone();
    let far = Slot(1_437_985_727_979);
    s.core.rejoined.insert(
        ReplicaId(0),
        Rejoined {
            nonce: 7,
            at: Slot(1),
            fence: far,
        },
    );
    out.push((
        "a rejoin fence a trillion slots ahead",
        s,
        SnapshotError::Rejoin {
            member: ReplicaId(0),
            at: Slot(1),
            fence: far,
            next_slot: next,
        },
    ));

    let mut s = sound.clone();
    let proposal = Proposal {
        id: ProposalId {
            proposer: ReplicaId(1),
            lsn: Lsn(900),
        },
        payload: Payload::Command(Bytes::from_static(b"x")),
    };
    s.core
        .held
        .entry(ReplicaId(0))
        .or_default()
        .insert(Lsn(901), proposal);
    out.push((
        "a proposal held back under another proposer and LSN",
        s,
        SnapshotError::Held {
            proposer: ReplicaId(0),
            lsn: Lsn(901),
        },
    ));
    out
}

#[test]
fn an_impossible_snapshot_is_refused_and_a_sound_one_installed_after_it() {
    let (mut net, sound) = lagging_replica_and_its_snapshot();
    assert_eq!(net.r(2).check_snapshot(&sound), Ok(()));
    let before = net.r(2).applied();
    for (what, snapshot, error) in spoiled(&sound) {
        assert_eq!(
            net.r(2).check_snapshot(&snapshot),
            Err(error),
            "{what}: the refusal names what is wrong"
        );
        let now = net.now;
        assert!(
            !net.r(2).install_snapshot(now, Arc::new(snapshot)),
            "{what}: refused"
        );
        net.drain(ReplicaId(2));
        assert_eq!(net.r(2).applied(), before, "{what}: nothing changed");
    }
    // Each refusal counts, the check's and the install's.
    assert_eq!(net.r(2).metrics().snapshots_refused, 10);
    assert_eq!(net.r(2).metrics().snapshots_installed, 0);

    // The sound snapshot still installs, and the replica takes part in the group after it.
    let now = net.now;
    assert!(net.r(2).install_snapshot(now, sound.clone()));
    net.drain(ReplicaId(2));
    assert_eq!(net.r(2).applied(), sound.next_slot);
    net.heal();
    net.propose(2, "after");
    net.run_for(200);
    assert_eq!(net.r(2).applied(), net.r(0).applied());
    assert!(net.r(2).applied() > sound.next_slot);
}

/// The fuzzer's reproducers (a peer's snapshot stream: the encoding's length as 8 bytes, then
/// the postcard encoding), installed into a replica of a fresh three-member group as the node
/// installs them, then run for a while: each is refused, and nothing panics.
#[test]
fn the_fuzzers_snapshot_reproducers_are_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../fuzz/regressions/snapshot");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let (head, body) = data.split_first_chunk::<8>().unwrap();
        let len = usize::try_from(u64::from_le_bytes(*head))
            .unwrap()
            .min(body.len());
        let snapshot: Snapshot = postcard::from_bytes(&body[..len]).unwrap();

        let members = [1, 2, 3].map(ReplicaId);
        let mut now = Time(1_000_000_000);
        let mut replica = Replica::new(Options::new(members[0], Config::majority(members)), now);
        let refusal = replica.check_snapshot(&snapshot);
        assert!(refusal.is_err(), "{}: refused", path.display());
        assert!(!replica.install_snapshot(now, Arc::new(snapshot)));
        // A little life after it, where a state it had corrupted would panic.
        for _ in 0..3 {
            now = now.add_nanos(1_000_000_000);
            replica.handle_timeout(now);
            let _ = replica.propose(now, Payload::Command(Bytes::from_static(b"x")));
            while let Some(ready) = replica.poll_ready() {
                replica.handle_persisted(now, ready.seq);
            }
        }
        replayed += 1;
    }
    assert_eq!(replayed, 6, "every reproducer in {}", dir.display());
}

/// A proposal whose delivery reaches its proposer only inside a peer's snapshot is reported
/// (`Ready::delivered_in_snapshot`), so the node answers its client instead of leaving it
/// waiting for a delivery that will never come (found as a hung write in the ledger's tests).
#[test]
fn a_proposal_delivered_only_in_a_snapshot_is_reported_to_its_proposer() {
    let mut net = Net::with(3, |o| o.params.reservations = false);
    // Replica 2's accept requests leave, then it is cut off: the others accept its value, and
    // take the slot over (adopting that value) once it stalls.
    let mine = net.propose(2, "mine");
    let mut accepted = 0;
    while accepted < 2 {
        let env = net
            .queue
            .pop_front()
            .expect("replica 2's proposal is under way");
        if env.to == ReplicaId(2) && matches!(env.message, Message::Accepted { .. }) {
            accepted += 1;
            continue;
        }
        let (to, now) = (env.to, net.now);
        net.replicas.get_mut(&to).unwrap().handle_message(now, env);
        net.drain(to);
    }
    net.isolate(2);
    net.queue
        .retain(|e| e.to != ReplicaId(2) && e.from != ReplicaId(2));
    net.run_for(200);
    assert!(net.log(0).contains(&mine), "the others delivered it");
    for i in 0..30 {
        net.propose(0, &format!("c{i}"));
    }
    net.run_for(100);
    let now = net.now;
    let applied = net.r(0).applied();
    net.r(0).compact(now, Bytes::from_static(b"app"), applied);
    net.drain(ReplicaId(0));
    let snapshot = latest_snapshot(&net, ReplicaId(0));
    assert!(!net.log(2).contains(&mine), "replica 2 never learned it");
    assert_eq!(net.r(2).pending_proposals(), 1);

    let now = net.now;
    assert!(net.r(2).install_snapshot(now, snapshot));
    let mut reported = Vec::new();
    while let Some(ready) = net.r(2).poll_ready() {
        reported.extend(ready.delivered_in_snapshot.iter().copied());
        net.execute(ReplicaId(2), ready);
    }
    assert_eq!(reported, vec![mine], "its client is told");
    assert_eq!(
        net.r(2).pending_proposals(),
        0,
        "and it is not proposed again"
    );
    assert!(!net.log(2).contains(&mine), "no delivery carries it here");
}
