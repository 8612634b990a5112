//! Scenario tests of one agreement group, one per requirement of the core.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod harness;

use std::sync::Arc;

use bytes::Bytes;
use harness::{MS, Net};
use synod_core::{
    Ballot, Batch, ConfigChange, ConfigError, Envelope, GroupParams, Lsn, Message, Payload,
    PolicyError, Proposal, ProposalId, ProposeError, QuorumPolicy, Record, ReplicaId, Slot,
    SunRole, SunSchedule, SunShift, Time, Value,
};

fn params(reservations: bool) -> GroupParams {
    GroupParams {
        reservations,
        preserve_local_order: false,
        config_lag: 16,
    }
}

fn cmd(s: &str) -> Payload {
    Payload::Command(Bytes::from(s.to_string()))
}

#[test]
fn a_proposal_is_persisted_in_the_ready_that_proposes_it() {
    let mut net = Net::new(3, params(true));
    let now = net.now;
    let r0 = net.r(0);
    let id = r0.propose(now, cmd("x")).expect("accepted");
    assert_eq!(
        id,
        ProposalId {
            proposer: ReplicaId(0),
            lsn: Lsn(1)
        }
    );
    let ready = r0.poll_ready().expect("a ready");
    // Slot 0 is r0's own: phase 2 directly, with the reserved ballot. The proposal log record,
    // the reservation watermark and r0's own vote are all in this ready, so the driver makes
    // them durable before any Accept leaves (the Ready contract).
    let ballot = Ballot::reserved(ReplicaId(0));
    assert_eq!(
        ready.persist[0],
        Record::Proposal {
            lsn: Lsn(1),
            payload: cmd("x")
        }
    );
    assert!(ready.persist.contains(&Record::OwnNext { slot: Slot(1) }));
    assert!(
        ready.persist.iter().any(
            |r| matches!(r, Record::Accepted { slot: Slot(0), ballot: b, .. } if *b == ballot)
        )
    );
    let targets: Vec<ReplicaId> = ready
        .messages
        .iter()
        .filter(|e| matches!(&e.message, Message::Accept { ballot: b, entries } if *b == ballot && entries[0].0 == Slot(0)))
        .map(|e| e.to)
        .collect();
    assert_eq!(targets, vec![ReplicaId(1), ReplicaId(2)]);
    assert!(ready.deliveries.is_empty());
    r0.handle_persisted(now, ready.seq);
}

#[test]
fn every_replica_proposes_and_all_deliver_the_same_sequence() {
    for reservations in [true, false] {
        let mut net = Net::new(3, params(reservations));
        let mut all = Vec::new();
        for i in 0..20 {
            for r in 0..3 {
                all.push(net.propose(r, &format!("{r}-{i}")));
            }
            net.run_for(1);
        }
        net.run_for(500);
        net.assert_same_logs(&[0, 1, 2]);
        let mut log = net.log(0);
        assert_eq!(log.len(), 60, "reservations={reservations}");
        log.sort();
        all.sort();
        assert_eq!(log, all, "every proposal delivered exactly once");
        // GSNs are consecutive from 0 on every replica.
        for r in 0..3u16 {
            let gsns: Vec<u64> = net.delivered[&ReplicaId(r)]
                .iter()
                .map(|d| d.gsn.0)
                .collect();
            assert_eq!(gsns, (0..gsns.len() as u64).collect::<Vec<_>>());
        }
    }
}

#[test]
fn batches_respect_count_and_byte_limits_and_the_window() {
    let mut net = Net::with(3, |o| {
        o.params.config_lag = 64;
        o.window = 2;
        o.batch_commands_max = 64;
    });
    for i in 0..200 {
        net.propose(0, &format!("c{i}"));
    }
    let first_accept = net
        .sent
        .iter()
        .find_map(|e| match &e.message {
            Message::Accept { entries, .. } if e.from == ReplicaId(0) => Some(entries.clone()),
            _ => None,
        })
        .expect("r0 proposed");
    // The proposals become durable one ready at a time in this harness, so the first batch may
    // be small; what matters is the window (2 slots) and the count limit.
    assert!(first_accept.len() <= 2);
    net.settle();
    net.run_for(100);
    for e in &net.sent {
        if let Message::Accept { entries, .. } = &e.message {
            assert!(entries.len() <= 2, "window of 2 own slots per message");
            for (_, v) in entries {
                if let Value::Batch(b) = v {
                    assert!(b.proposals.len() <= 64);
                }
            }
        }
    }
    assert_eq!(net.log(1).len(), 200);

    let mut net = Net::with(3, |o| o.batch_bytes_max = 1_000);
    let now = net.now;
    for i in 0..30 {
        net.r(0)
            .propose(now, Payload::Command(Bytes::from(vec![i as u8; 100])))
            .expect("ok");
    }
    net.drain(ReplicaId(0));
    net.run_for(100);
    for e in &net.sent {
        if let Message::Accept { entries, .. } = &e.message {
            for (_, v) in entries {
                assert!(
                    v.size_bytes() <= 1_000 + 16 + 9 * 12,
                    "batch over the byte limit: {}",
                    v.size_bytes()
                );
            }
        }
    }
    assert_eq!(net.log(2).len(), 30);
    let too_big = net
        .r(0)
        .propose(now, Payload::Command(Bytes::from(vec![0; 2_000])));
    assert!(matches!(too_big, Err(ProposeError::TooLarge { .. })));
}

#[test]
fn ballots_order_by_counter_then_random_then_proposer() {
    let b = |c, r, p| Ballot {
        counter: c,
        random: r,
        proposer: ReplicaId(p),
    };
    let mut v = vec![b(2, 0, 0), b(1, 9, 0), b(1, 9, 1), b(1, 3, 7), b(0, 0, 4)];
    v.sort();
    assert_eq!(
        v,
        vec![b(0, 0, 4), b(1, 3, 7), b(1, 9, 0), b(1, 9, 1), b(2, 0, 0)]
    );
    assert!(
        Ballot::reserved(ReplicaId(9)) < b(1, 0, 0),
        "the owner's ballot is below every other"
    );
}

#[test]
fn contending_proposers_back_off_and_still_agree() {
    let mut net = Net::with(3, |o| {
        o.params = params(false);
        o.backoff_base_ns = 2 * MS;
        o.takeover_timeout_ns = 20 * MS;
    });
    for i in 0..10 {
        for r in 0..3 {
            net.propose(r, &format!("{r}/{i}"));
        }
    }
    net.run_for(2_000);
    net.assert_same_logs(&[0, 1, 2]);
    assert_eq!(net.log(0).len(), 30);
    let preempted: u64 = (0..3).map(|r| net.r(r).metrics().preemptions).sum();
    let backoffs: u64 = (0..3).map(|r| net.r(r).metrics().backoffs).sum();
    assert!(
        preempted > 0 && backoffs > 0,
        "proposers collided: {preempted} pre-emptions, {backoffs} backoffs"
    );
}

#[test]
fn an_idle_owner_skips_in_the_same_answer_without_an_extra_round_trip() {
    let mut net = Net::new(3, params(true));
    net.propose(1, "from r1"); // slot 1 is r1's; slot 0 (r0's) and slot 2 (r2's) are idle.
    net.settle(); // no timers fire: only the skip rule can unblock slot 0
    assert_eq!(net.log(0).len(), 1);
    assert_eq!(net.log(2).len(), 1);
    // r0's reply to the Accept for slot 1 travelled with its skip of slot 0.
    let skip = net.sent.iter().position(|e| {
        e.from == ReplicaId(0) && matches!(&e.message, Message::Decided { entries } if entries.contains(&(Slot(0), Value::Noop)))
    });
    let ack = net
        .sent
        .iter()
        .position(|e| e.from == ReplicaId(0) && matches!(e.message, Message::Accepted { .. }));
    assert!(skip.is_some() && ack.is_some());
    assert_eq!(net.r(0).metrics().skipped, 1);
    assert_eq!(net.r(1).metrics().takeovers, 0);
}

#[test]
fn deliveries_resting_on_our_own_unsynced_records_wait_and_the_others_are_early() {
    let mut net = Net::new(3, params(true));
    let now = net.now;
    // r1 proposes into its slot 1; slot 0 (r0's) is idle.
    net.r(1).propose(now, cmd("y")).unwrap();
    let r1_ready = net.r(1).poll_ready().unwrap();
    let accept_to_r0 = r1_ready
        .messages
        .iter()
        .find(|e| e.to == ReplicaId(0))
        .cloned()
        .unwrap();
    net.r(1).handle_persisted(now, r1_ready.seq);
    // r0 accepts slot 1 and skips its own slot 0 in the same ready. The skip is final only once
    // r0's `OwnNext` record is durable, so slot 0's delivery must wait for this ready's fsync.
    net.r(0).handle_message(now, accept_to_r0);
    let r0_ready = net.r(0).poll_ready().unwrap();
    assert!(
        r0_ready
            .persist
            .contains(&Record::OwnNext { slot: Slot(1) })
    );
    assert_eq!(r0_ready.deliveries.len(), 1, "slot 0, the skipped no-op");
    assert_eq!(r0_ready.early_deliveries, 0, "a skip waits for its record");
    net.r(0).handle_persisted(now, r0_ready.seq);
    // r1 hears r0's vote and skip. Both decisions are durable elsewhere (r0's skip record,
    // and a quorum of durable votes: r1's own is in a persisted ready), so r1 may apply both
    // slots before its decision record is on disk.
    for e in r0_ready
        .messages
        .into_iter()
        .filter(|e| e.to == ReplicaId(1))
    {
        net.r(1).handle_message(now, e);
    }
    let r1_ready = net.r(1).poll_ready().unwrap();
    assert_eq!(r1_ready.deliveries.len(), 2);
    assert_eq!(r1_ready.early_deliveries, 2);
    assert!(
        r1_ready
            .persist
            .iter()
            .any(|r| matches!(r, Record::Decided { .. })),
        "the decision record still goes to disk, just off the critical path"
    );

    // A singleton quorum decides on its own vote alone: the delivery waits for that vote's
    // record, which is in the same ready.
    let mut net = Net::with(3, |o| {
        o.params = params(false);
        o.genesis.policy = QuorumPolicy::Singleton {
            replica: ReplicaId(0),
        };
    });
    let now = net.now;
    net.r(0).propose(now, cmd("x")).unwrap();
    let ready = net.r(0).poll_ready().unwrap();
    assert_eq!(ready.deliveries.len(), 1);
    assert_eq!(
        ready.early_deliveries, 0,
        "our own undurable vote decided it"
    );
}

#[test]
fn a_silent_owners_slot_is_taken_over_adopting_its_accepted_value() {
    let mut net = Net::with(3, |o| {
        o.params = params(true);
        o.takeover_timeout_ns = 10 * MS;
    });
    // r0's Accept for its slot 0 reaches r1 only; r0 hears nothing back, then goes silent.
    net.blocked.insert((ReplicaId(0), ReplicaId(2)));
    net.blocked.insert((ReplicaId(1), ReplicaId(0)));
    let x = net.propose(0, "x");
    net.settle();
    net.isolate(0);
    let y = net.propose(2, "y"); // slot 2, behind r0's undecided slot 0
    net.run_for(200);
    assert_eq!(
        net.log(1),
        vec![x, y],
        "the taker adopted r0's accepted value"
    );
    net.assert_same_logs(&[1, 2]);
    assert!(net.r(1).metrics().takeovers + net.r(2).metrics().takeovers > 0);
    // r0 comes back and learns the same history.
    net.heal();
    net.run_for(300);
    net.assert_same_logs(&[0, 1, 2]);
}

#[test]
fn a_takeover_with_nothing_accepted_fills_a_noop() {
    let mut net = Net::with(3, |o| o.takeover_timeout_ns = 10 * MS);
    net.isolate(0);
    let y = net.propose(1, "y"); // slot 1, behind silent r0's slot 0
    net.run_for(200);
    assert_eq!(net.log(1), vec![y]);
    assert_eq!(
        net.delivered[&ReplicaId(1)][0].proposals,
        vec![],
        "slot 0 was filled with a no-op"
    );
}

#[test]
fn a_singleton_quorum_decides_alone() {
    let mut net = Net::with(3, |o| {
        o.params = params(false);
        o.genesis.policy = QuorumPolicy::Singleton {
            replica: ReplicaId(0),
        };
    });
    net.isolate(0);
    net.run_for(1);
    let x = net.propose(0, "x");
    net.run_for(5);
    assert_eq!(net.log(0), vec![x]);
}

#[test]
fn unsafe_policies_are_refused_with_a_reason() {
    let mut net = Net::new(3, params(true));
    let now = net.now;
    let err = net
        .r(0)
        .propose(
            now,
            Payload::Config(ConfigChange::SetPolicy(QuorumPolicy::Flexible {
                phase1: 1,
                phase2: 2,
            })),
        )
        .unwrap_err();
    assert_eq!(
        err,
        ProposeError::Config(ConfigError::Policy(PolicyError::NoIntersection {
            phase1: 1,
            phase2: 2,
            members: 3
        }))
    );
    assert!(
        err.to_string().contains("must exceed the 3 members"),
        "{err}"
    );
    let err = net
        .r(0)
        .propose(
            now,
            Payload::Config(ConfigChange::RemoveMember(ReplicaId(7))),
        )
        .unwrap_err();
    assert_eq!(
        err,
        ProposeError::Config(ConfigError::NotMember(ReplicaId(7)))
    );
}

#[test]
fn a_membership_change_takes_effect_config_lag_slots_later() {
    let mut net = Net::new(3, params(true));
    net.propose(0, "a");
    net.run_for(10);
    let now = net.now;
    net.r(1)
        .propose(now, Payload::Config(ConfigChange::AddMember(ReplicaId(3))))
        .expect("ok");
    net.drain(ReplicaId(1));
    net.run_for(50);
    let d = net.delivered[&ReplicaId(2)]
        .iter()
        .find(|d| !d.config.is_empty())
        .expect("delivered")
        .clone();
    let from = d.config[0].result.clone().expect("accepted");
    assert_eq!(from, Slot(d.gsn.0 + 16));
    for r in 0..3 {
        let rep = net.r(r);
        assert_eq!(rep.config_at(Slot(from.0 - 1)).members.len(), 3);
        assert_eq!(rep.config_at(from).members.len(), 4);
    }
}

#[test]
fn follow_the_sun_moves_the_singleton_by_agreed_time() {
    let mut net = Net::with(3, |o| o.params = params(false));
    // The harness clock starts at 1 s past midnight (UTC).
    let sun = SunSchedule {
        role: SunRole::Singleton,
        shifts: vec![
            SunShift {
                start_secs: 0,
                holder: ReplicaId(1),
            },
            SunShift {
                start_secs: 3,
                holder: ReplicaId(2),
            },
        ],
    };
    let now = net.now;
    net.r(0)
        .propose(
            now,
            Payload::Config(ConfigChange::SetSunSchedule(Some(sun))),
        )
        .expect("ok");
    net.drain(ReplicaId(0));
    net.run_for(20);
    net.propose(0, "morning");
    net.run_for(20);
    let applied = net.r(0).applied();
    assert_eq!(
        net.r(0).latest_config().policy,
        QuorumPolicy::Singleton {
            replica: ReplicaId(1)
        }
    );
    assert_eq!(
        net.r(0).config_at(applied).policy,
        QuorumPolicy::Majority,
        "not yet in effect"
    );
    net.run_for(2_500); // agreed time passes 3 s only when a batch carries it
    net.propose(1, "afternoon");
    net.run_for(20);
    for r in 0..3 {
        assert_eq!(
            net.r(r).latest_config().policy,
            QuorumPolicy::Singleton {
                replica: ReplicaId(2)
            }
        );
    }
}

#[test]
fn local_order_holds_back_a_later_lsn_until_the_earlier_one_is_delivered() {
    let mut net = Net::new(
        3,
        GroupParams {
            reservations: true,
            preserve_local_order: true,
            config_lag: 16,
        },
    );
    let p = |lsn| Proposal {
        id: ProposalId {
            proposer: ReplicaId(1),
            lsn: Lsn(lsn),
        },
        payload: cmd("p"),
    };
    let batch = |lsns: &[u64]| {
        Value::Batch(Arc::new(Batch {
            time: Time(0),
            proposals: lsns.iter().map(|l| p(*l)).collect(),
        }))
    };
    let now = net.now;
    // Slot 0 carries LSN 2 (agreed first), slot 1 carries LSN 1 and, again, LSN 2.
    let decided = Message::Decided {
        entries: vec![(Slot(0), batch(&[2])), (Slot(1), batch(&[1, 2]))],
    };
    net.r(0).handle_message(
        now,
        Envelope {
            from: ReplicaId(1),
            to: ReplicaId(0),
            message: decided,
        },
    );
    net.drain(ReplicaId(0));
    let ds = &net.delivered[&ReplicaId(0)];
    assert_eq!(ds[0].proposals, vec![], "LSN 2 waits for LSN 1");
    assert_eq!(
        ds[1].proposals,
        vec![p(1), p(2)],
        "then both, once each, in LSN order"
    );
}

#[test]
fn a_snapshot_built_earlier_compacts_up_to_its_own_slot_only() {
    let mut net = Net::with(3, |o| o.params = params(false));
    for i in 0..10 {
        net.propose(0, &format!("a{i}"));
    }
    net.run_for(50);
    // The driver captures the engine state, then encodes its own state elsewhere while the
    // replica keeps delivering.
    let (at, core) = net.r(0).snapshot_state();
    for i in 0..10 {
        net.propose(1, &format!("b{i}"));
    }
    net.run_for(50);
    assert!(net.r(0).applied() > at);
    let now = net.now;
    let snapshot = Arc::new(synod_core::Snapshot {
        next_slot: at,
        core,
        app: Bytes::from_static(b"state at `at`"),
    });
    let everything = net.r(0).applied();
    assert!(net.r(0).compact_with(now, snapshot.clone(), everything));
    assert_eq!(
        net.r(0).log_start(),
        at,
        "the log is cut at the snapshot's slot, not beyond what it covers"
    );
    let ready = net.r(0).poll_ready().unwrap();
    assert!(ready.persist.contains(&Record::Snapshot(snapshot.clone())));
    // A snapshot older than the log's start (a newer one was installed meanwhile) is refused.
    let stale = Arc::new(synod_core::Snapshot {
        next_slot: Slot(0),
        ..(*snapshot).clone()
    });
    assert!(!net.r(0).compact_with(now, stale, everything));
}

#[test]
fn a_replica_behind_the_truncation_point_asks_for_a_snapshot() {
    let mut net = Net::with(3, |o| o.params = params(false));
    net.isolate(2);
    for i in 0..30 {
        net.propose(0, &format!("c{i}"));
    }
    net.run_for(100);
    let now = net.now;
    for r in 0..2 {
        let applied = net.r(r).applied();
        // Truncate past the GC watermark (r2 is behind): r2 must then use a snapshot.
        assert!(net.r(r).gc_watermark() < applied);
        net.r(r).compact(now, Bytes::from_static(b"app"), applied);
        net.drain(ReplicaId(r));
    }
    net.heal();
    net.run_for(200);
    let (who, req) = net
        .snapshot_requests
        .first()
        .copied()
        .expect("a snapshot request");
    assert_eq!(who, ReplicaId(2));
    let snap = {
        let d = net.durable[&req.from].iter().rev().find_map(|r| match r {
            Record::Snapshot(s) => Some(s.clone()),
            _ => None,
        });
        d.expect("peer has a snapshot")
    };
    assert!(snap.next_slot >= req.min_next_slot);
    let now = net.now;
    assert!(net.r(2).install_snapshot(now, snap.clone()));
    net.drain(ReplicaId(2));
    assert_eq!(net.r(2).applied(), snap.next_slot);
    net.propose(2, "after");
    net.run_for(100);
    assert_eq!(net.r(2).applied(), net.r(0).applied());
}

#[test]
fn the_gc_watermark_is_the_slowest_members_applied_gsn() {
    let mut net = Net::new(3, params(true));
    for i in 0..10 {
        net.propose(0, &format!("c{i}"));
    }
    net.run_for(200);
    let applied = net.r(0).applied();
    assert_eq!(net.r(0).gc_watermark(), applied);
    net.isolate(2);
    let before = net.r(2).applied();
    for i in 0..10 {
        net.propose(0, &format!("d{i}"));
    }
    net.run_for(200);
    assert!(net.r(0).applied() > before);
    assert_eq!(
        net.r(0).gc_watermark(),
        before,
        "held back by the isolated member"
    );
}

#[test]
fn a_minority_replica_refuses_writes_promptly_but_reports_what_it_applied() {
    let mut net = Net::new(3, params(true));
    net.propose(0, "a");
    net.run_for(50);
    let applied = net.r(0).applied();
    net.isolate(0);
    net.run_for(250); // past the 200 ms liveness timeout
    let now = net.now;
    assert_eq!(net.r(0).propose(now, cmd("b")), Err(ProposeError::NoQuorum));
    assert!(!net.r(0).has_quorum());
    assert_eq!(net.r(0).applied(), applied);
    net.heal();
    net.run_for(100);
    net.propose(0, "c");
    net.run_for(100);
    assert_eq!(net.log(1).len(), 2);
}

#[test]
fn malformed_and_stranger_messages_are_dropped_and_counted() {
    let mut net = Net::new(3, params(true));
    let now = net.now;
    let ballot = Ballot {
        counter: 1,
        random: 5,
        proposer: ReplicaId(2),
    };
    let bad = [
        // The ballot is not the sender's.
        Envelope {
            from: ReplicaId(1),
            to: ReplicaId(0),
            message: Message::Prepare {
                ballot,
                slots: vec![Slot(0)],
            },
        },
        // Nothing to prepare.
        Envelope {
            from: ReplicaId(2),
            to: ReplicaId(0),
            message: Message::Prepare {
                ballot,
                slots: vec![],
            },
        },
        // A stranger.
        Envelope {
            from: ReplicaId(9),
            to: ReplicaId(0),
            message: Message::Decided {
                entries: vec![(Slot(0), Value::Noop)],
            },
        },
        // The reserved ballot on a slot the sender does not own (slot 0 is r0's).
        Envelope {
            from: ReplicaId(1),
            to: ReplicaId(0),
            message: Message::Accept {
                ballot: Ballot::reserved(ReplicaId(1)),
                entries: vec![(Slot(0), Value::Noop)],
            },
        },
        // Prepare with the reserved ballot.
        Envelope {
            from: ReplicaId(1),
            to: ReplicaId(0),
            message: Message::Prepare {
                ballot: Ballot::reserved(ReplicaId(1)),
                slots: vec![Slot(3)],
            },
        },
        // Backwards catch-up range.
        Envelope {
            from: ReplicaId(1),
            to: ReplicaId(0),
            message: Message::CatchUp {
                from: Slot(5),
                to: Slot(1),
            },
        },
        // Addressed to someone else.
        Envelope {
            from: ReplicaId(1),
            to: ReplicaId(2),
            message: Message::CatchUp {
                from: Slot(0),
                to: Slot(1),
            },
        },
    ];
    for env in bad.iter().cloned() {
        net.r(0).handle_message(now, env);
    }
    assert_eq!(net.r(0).metrics().dropped_messages, bad.len() as u64);
    assert_eq!(net.r(0).promised(Slot(0)), None, "no state changed");
    net.drain(ReplicaId(0));
    assert!(net.log(0).is_empty());
}

#[test]
fn a_restarted_acceptor_keeps_its_promises_and_resubmits_undecided_proposals() {
    let mut net = Net::with(3, |o| o.takeover_timeout_ns = 10 * MS);
    let ballot = Ballot {
        counter: 3,
        random: 1,
        proposer: ReplicaId(2),
    };
    let now = net.now;
    let prep = Envelope {
        from: ReplicaId(2),
        to: ReplicaId(1),
        message: Message::Prepare {
            ballot,
            slots: vec![Slot(40)],
        },
    };
    net.r(1).handle_message(now, prep);
    net.drain(ReplicaId(1));
    net.crash_and_restart(1);
    assert_eq!(net.r(1).promised(Slot(40)), Some(ballot));

    // r0's proposal is durable but r0 dies before anyone hears of it.
    net.isolate(0);
    let x = net.propose(0, "x");
    net.crash_and_restart(0);
    net.heal();
    net.run_for(300);
    net.assert_same_logs(&[0, 1, 2]);
    assert_eq!(
        net.log(1),
        vec![x],
        "resubmitted after the restart, delivered once"
    );
}

#[test]
fn a_recovered_snapshot_retires_the_proposals_it_shows_delivered() {
    // The node writes snapshots apart from the log, so a crash can leave a snapshot that
    // shows LSN 1 delivered with the log still holding LSN 1 unretired. Recovery must retire
    // it rather than propose it again (it would be dropped as a duplicate and never leave).
    let mut delivered = synod_core::DeliveredSet::default();
    delivered.insert(Lsn(1));
    let snapshot = Arc::new(synod_core::Snapshot {
        next_slot: Slot(3),
        core: synod_core::CoreState {
            configs: synod_core::config::ConfigHistory::new(synod_core::Config::majority(
                harness::ids(3),
            )),
            delivered: [(ReplicaId(0), delivered)].into_iter().collect(),
            agreed_time: Time(0),
            held: Default::default(),
            rejoined: Default::default(),
        },
        app: Bytes::new(),
    });
    let state = synod_core::DurableState::from_records(&[
        Record::Proposal {
            lsn: Lsn(1),
            payload: cmd("x"),
        },
        Record::Proposal {
            lsn: Lsn(2),
            payload: cmd("y"),
        },
        Record::Snapshot(snapshot),
    ]);
    let opts =
        synod_core::Options::new(ReplicaId(0), synod_core::Config::majority(harness::ids(3)));
    let mut r = synod_core::Replica::recover(opts, Time(1_000_000_000), state);
    assert_eq!(r.pending_proposals(), 1, "only LSN 2 is still to be agreed");
    let ready = r.poll_ready().unwrap();
    assert!(ready.persist.contains(&Record::Retired { lsn: Lsn(1) }));
}
