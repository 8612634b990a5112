//! Property test: any sequence of peer messages, however malformed or contradictory, leaves a
//! replica running. Nothing panics (internal invariants are checked after every input in test
//! builds); contradictions are counted, not trusted blindly.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use synod_core::{
    Ballot, Batch, Config, ConfigChange, Envelope, Lsn, Message, Options, Payload, PromiseEntry,
    Proposal, ProposalId, ProposeError, QuorumPolicy, Replica, ReplicaId, Slot, Time, Value,
};

fn replica_id() -> impl Strategy<Value = ReplicaId> {
    prop_oneof![
        Just(ReplicaId(1)),
        Just(ReplicaId(2)),
        Just(ReplicaId(0)),
        Just(ReplicaId(9))
    ]
}

fn ballot() -> impl Strategy<Value = Ballot> {
    (0u32..4, 0u32..3, replica_id()).prop_map(|(counter, random, proposer)| Ballot {
        counter,
        random,
        proposer,
    })
}

fn slot() -> impl Strategy<Value = Slot> {
    prop_oneof![
        (0u64..48).prop_map(Slot),
        Just(Slot(u64::MAX / 2)),
        Just(Slot(5_000))
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        4 => any::<u8>().prop_map(|b| Payload::Command(Bytes::from(vec![b; 3]))),
        1 => replica_id().prop_map(|r| Payload::Config(ConfigChange::AddMember(r))),
        1 => replica_id().prop_map(|r| Payload::Config(ConfigChange::RemoveMember(r))),
        1 => (replica_id(), any::<u64>())
            .prop_map(|(member, nonce)| Payload::Config(ConfigChange::Rejoin {
                member,
                nonce,
                after: None
            })),
        1 => replica_id().prop_map(|r| Payload::Config(ConfigChange::SetPolicy(QuorumPolicy::Singleton { replica: r }))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Noop),
        3 => proptest::collection::vec((replica_id(), 1u64..6, payload()), 0..4).prop_map(|ps| {
            let proposals = ps
                .into_iter()
                .map(|(proposer, lsn, payload)| Proposal { id: ProposalId { proposer, lsn: Lsn(lsn) }, payload })
                .collect();
            Value::Batch(Arc::new(Batch { time: Time(0), proposals }))
        }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let slots = || proptest::collection::vec(slot(), 0..4);
    prop_oneof![
        (ballot(), slots()).prop_map(|(ballot, slots)| Message::Prepare { ballot, slots }),
        (
            ballot(),
            proptest::collection::vec((slot(), proptest::option::of((ballot(), value()))), 0..3)
        )
            .prop_map(|(ballot, es)| Message::Promise {
                ballot,
                entries: es
                    .into_iter()
                    .map(|(slot, accepted)| PromiseEntry { slot, accepted })
                    .collect()
            }),
        (ballot(), proptest::collection::vec((slot(), value()), 0..3))
            .prop_map(|(ballot, entries)| Message::Accept { ballot, entries }),
        (ballot(), slots()).prop_map(|(ballot, slots)| Message::Accepted { ballot, slots }),
        (
            ballot(),
            proptest::collection::vec((slot(), ballot()), 0..3)
        )
            .prop_map(|(ballot, entries)| Message::Rejected { ballot, entries }),
        proptest::collection::vec((slot(), value()), 0..4)
            .prop_map(|entries| Message::Decided { entries }),
        (slot(), slot(), any::<bool>()).prop_map(|(applied, highest_seen, quiet)| {
            Message::Heartbeat {
                applied,
                highest_seen,
                quiet,
            }
        }),
        (slot(), slot()).prop_map(|(from, to)| Message::CatchUp { from, to }),
        slot().prop_map(|log_start| Message::SnapshotNeeded { log_start }),
        any::<u64>().prop_map(|nonce| Message::RejoinRequest { nonce }),
    ]
}

#[derive(Debug, Clone)]
enum Input {
    Message(ReplicaId, Message),
    Timeout(u64),
    Propose(u8),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        8 => (replica_id(), message()).prop_map(|(f, m)| Input::Message(f, m)),
        1 => (1u64..50_000_000).prop_map(Input::Timeout),
        1 => any::<u8>().prop_map(Input::Propose),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn no_message_sequence_panics_a_replica(inputs in proptest::collection::vec(input(), 1..120), reservations in any::<bool>()) {
        let ids: Vec<ReplicaId> = (0..3).map(ReplicaId).collect();
        let mut opts = Options::new(ReplicaId(0), Config::majority(ids));
        opts.params.reservations = reservations;
        opts.params.config_lag = 16;
        let mut now = Time(1_000_000_000);
        let mut r = Replica::new(opts, now);
        for input in inputs {
            match input {
                Input::Message(from, message) => r.handle_message(now, Envelope { from, to: ReplicaId(0), message }),
                Input::Timeout(dt) => {
                    now = now.add_nanos(dt);
                    r.handle_timeout(now);
                }
                Input::Propose(b) => {
                    let _ = r.propose(now, Payload::Command(Bytes::from(vec![b])));
                }
            }
            while let Some(ready) = r.poll_ready() {
                // Deliveries stay in GSN order whatever the peers claim.
                for w in ready.deliveries.windows(2) {
                    prop_assert_eq!(w[1].gsn.0, w[0].gsn.0 + 1);
                }
                r.handle_persisted(now, ready.seq);
            }
        }
    }
}

/// Found by fuzzing (`fuzz/regressions/frame/ballot-counter-max`): one `Rejected` naming a
/// ballot whose counter is `u32::MAX` made the replica's next take-over overflow its counter
/// (a panic with overflow checks, a wrap to a low ballot without). The counter saturates.
#[test]
fn a_peers_ballot_at_the_counters_end_does_not_overflow_a_take_over() {
    let ids: Vec<ReplicaId> = (1..=3).map(ReplicaId).collect();
    let mut now = Time(1_000_000_000);
    let mut r = Replica::new(Options::new(ReplicaId(1), Config::majority(ids)), now);
    let top = Ballot {
        counter: u32::MAX,
        random: 0,
        proposer: ReplicaId(3),
    };
    r.handle_message(
        now,
        Envelope {
            from: ReplicaId(3),
            to: ReplicaId(1),
            message: Message::Rejected {
                ballot: top,
                entries: vec![(Slot(0), top)],
            },
        },
    );
    let _ = r.propose(now, Payload::Command(Bytes::from_static(b"x")));
    let mut prepares = 0;
    for _ in 0..40 {
        now = now.add_nanos(100_000_000);
        r.handle_timeout(now);
        while let Some(ready) = r.poll_ready() {
            for m in &ready.messages {
                if let Message::Prepare { ballot, .. } = &m.message {
                    prepares += 1;
                    assert!(ballot.counter >= top.counter, "{ballot:?} below {top:?}");
                }
            }
            r.handle_persisted(now, ready.seq);
        }
    }
    assert!(prepares > 0, "the replica tried to take slot 0 over");
}

/// Found by fuzzing (`fuzz/regressions/frame/own-lsn-max`): a peer's `Decided` delivering a
/// proposal under this replica's own id at the last LSN made its next proposal overflow the
/// LSN. The proposal is refused instead, and delivery of held or sparse LSNs at the top of the
/// range stops there.
#[test]
fn a_peer_naming_our_last_lsn_exhausts_our_proposals_without_a_panic() {
    let ids: Vec<ReplicaId> = (1..=3).map(ReplicaId).collect();
    for preserve_local_order in [false, true] {
        let mut opts = Options::new(ReplicaId(1), Config::majority(ids.clone()));
        opts.params.preserve_local_order = preserve_local_order;
        let now = Time(1_000_000_000);
        let mut r = Replica::new(opts, now);
        let ours = |lsn| Proposal {
            id: ProposalId {
                proposer: ReplicaId(1),
                lsn: Lsn(lsn),
            },
            payload: Payload::Command(Bytes::from_static(b"x")),
        };
        let batch = |proposals| {
            Value::Batch(Arc::new(Batch {
                time: now,
                proposals,
            }))
        };
        r.handle_message(
            now,
            Envelope {
                from: ReplicaId(2),
                to: ReplicaId(1),
                message: Message::Decided {
                    entries: vec![
                        (Slot(0), batch(vec![ours(u64::MAX - 1), ours(1)])),
                        (Slot(1), batch(vec![ours(u64::MAX)])),
                    ],
                },
            },
        );
        while let Some(ready) = r.poll_ready() {
            r.handle_persisted(now, ready.seq);
        }
        assert_eq!(
            r.propose(now, Payload::Command(Bytes::from_static(b"y"))),
            Err(ProposeError::Exhausted),
            "preserve_local_order {preserve_local_order}"
        );
    }
}

/// Found by fuzzing (`fuzz/regressions/frame/prepare-slot-max`): a `Prepare` naming slot
/// `u64::MAX` overflowed `Slot::next` in the acceptor. Every slot a message names must lie
/// below `Slot::LIMIT`; a message naming one past it is dropped as malformed.
#[test]
fn a_message_naming_a_slot_past_the_limit_is_dropped() {
    let ids: Vec<ReplicaId> = (1..=3).map(ReplicaId).collect();
    let now = Time(1_000_000_000);
    let mut r = Replica::new(Options::new(ReplicaId(1), Config::majority(ids)), now);
    let ballot = Ballot {
        counter: 1,
        random: 0,
        proposer: ReplicaId(2),
    };
    for message in [
        Message::Prepare {
            ballot,
            slots: vec![Slot(u64::MAX)],
        },
        Message::Decided {
            entries: vec![(Slot::LIMIT, Value::Noop)],
        },
        Message::Heartbeat {
            applied: Slot(0),
            highest_seen: Slot(u64::MAX),
            quiet: false,
        },
        Message::CatchUp {
            from: Slot(0),
            to: Slot(u64::MAX),
        },
    ] {
        let before = r.metrics().dropped_messages;
        r.handle_message(
            now,
            Envelope {
                from: ReplicaId(2),
                to: ReplicaId(1),
                message: message.clone(),
            },
        );
        while let Some(ready) = r.poll_ready() {
            r.handle_persisted(now, ready.seq);
        }
        assert_eq!(r.metrics().dropped_messages, before + 1, "{message:?}");
    }
}
