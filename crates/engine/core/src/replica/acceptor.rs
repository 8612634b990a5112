//! The acceptor role: promises and accepts, each recorded before it is answered.

use crate::message::{Message, PromiseEntry};
use crate::record::Record;
use crate::types::{Ballot, ReplicaId, Slot, Value};

use super::Replica;

/// What an acceptor does with one slot of a Prepare or Accept.
enum Verdict {
    /// The slot is covered by a snapshot: the sender must catch up.
    Truncated,
    /// The slot is decided: tell the sender.
    Decided(Value),
    /// Too far ahead of what this replica has delivered: ignored until it catches up.
    TooFar,
    /// This replica lost its state and the slot is below its fence: no vote.
    Fenced,
    /// A higher ballot is promised.
    Reject(Ballot),
    /// Go ahead.
    Ok,
}

impl Replica {
    fn verdict(&self, slot: Slot, ballot: Ballot, accept: bool) -> Verdict {
        if slot < self.log_start {
            return Verdict::Truncated;
        }
        if let Some(v) = self.decided.get(&slot) {
            return Verdict::Decided(v.clone());
        }
        if !self.may_vote(slot) {
            return Verdict::Fenced;
        }
        // Bounded memory: an acceptor holds state only for slots within a few configuration
        // horizons of its delivered prefix. The rejoin fence relies on this bound.
        if slot.0 >= self.next_deliver.0 + self.vote_reach() {
            return Verdict::TooFar;
        }
        let promised = self.promised.get(&slot).copied();
        let ignore_promise = accept && cfg!(feature = "mutation-accept-ignores-promise");
        match promised {
            Some(p) if p > ballot && !ignore_promise => Verdict::Reject(p),
            _ => Verdict::Ok,
        }
    }

    /// Phase 1b. Paxos: promise `ballot` unless a higher one is promised, reporting the
    /// highest-ballot value accepted so far.
    pub(super) fn on_prepare(&mut self, from: ReplicaId, ballot: Ballot, slots: &[Slot]) {
        let mut promises = Vec::new();
        let mut rejected = Vec::new();
        let mut decided = Vec::new();
        let mut truncated = false;
        let mut max_slot = None;
        for &slot in slots {
            max_slot = max_slot.max(Some(slot));
            match self.verdict(slot, ballot, false) {
                Verdict::Truncated => truncated = true,
                Verdict::Decided(v) => decided.push((slot, v)),
                Verdict::TooFar => {}
                Verdict::Fenced => self.metrics.fenced_votes += 1,
                Verdict::Reject(p) => rejected.push((slot, p)),
                Verdict::Ok => {
                    if self.promised.get(&slot) != Some(&ballot) {
                        self.promised.insert(slot, ballot);
                        self.out.persist.push(Record::Promised { slot, ballot });
                    }
                    let accepted = self.accepted.get(&slot).cloned();
                    promises.push(PromiseEntry { slot, accepted });
                }
            }
        }
        self.reply(
            from,
            ballot,
            promises,
            rejected,
            decided,
            truncated,
            |ballot, entries| Message::Promise { ballot, entries },
        );
        if from != self.id && slots.contains(&self.next_deliver) {
            self.defer_takeover(self.next_deliver);
        }
        if let Some(s) = max_slot {
            // Someone is taking these slots over: any of our own unused slots up to and
            // including them can only ever be no-ops, so skip them now.
            self.skip_own_below(s.next());
        }
    }

    /// Phase 2b. Paxos: accept unless a higher ballot is promised.
    pub(super) fn on_accept(
        &mut self,
        from: ReplicaId,
        ballot: Ballot,
        entries: Vec<(Slot, Value)>,
    ) {
        if ballot.is_reserved() {
            // Only a slot's owner may use the reserved ballot there. Checked where this replica
            // knows the slot's configuration; otherwise the peer is trusted (it is
            // authenticated and will be checked by replicas that are up to date).
            let horizon = self.horizon();
            let bad = entries.iter().any(|(slot, _)| {
                *slot >= self.log_start
                    && *slot < horizon
                    && self.core.configs.at(*slot).owner(*slot) != from
            });
            if !self.opts.params.reservations || bad {
                self.metrics.dropped_messages += 1;
                return;
            }
        }
        let mut acked = Vec::new();
        let mut rejected = Vec::new();
        let mut decided = Vec::new();
        let mut truncated = false;
        let mut max_slot = None;
        for (slot, value) in entries {
            if matches!(value, Value::Batch(_)) {
                max_slot = max_slot.max(Some(slot));
            }
            match self.verdict(slot, ballot, true) {
                Verdict::Truncated => truncated = true,
                Verdict::Decided(v) => decided.push((slot, v)),
                Verdict::TooFar => {}
                Verdict::Fenced => self.metrics.fenced_votes += 1,
                Verdict::Reject(p) => rejected.push((slot, p)),
                Verdict::Ok => {
                    let promised = self.promised.entry(slot).or_insert(ballot);
                    *promised = (*promised).max(ballot);
                    self.accepted.insert(slot, (ballot, value.clone()));
                    if from == self.id {
                        // Our own vote counts towards a quorum at once (the message never
                        // leaves the process): a decision resting on it waits for this record.
                        self.undurable_accepts.insert(slot, self.next_seq);
                    }
                    self.out.persist.push(Record::Accepted {
                        slot,
                        ballot,
                        value,
                    });
                    acked.push(slot);
                }
            }
        }
        self.reply(
            from,
            ballot,
            acked,
            rejected,
            decided,
            truncated,
            |ballot, slots| Message::Accepted { ballot, slots },
        );
        if let Some(s) = max_slot {
            self.observe_slot(s);
            if from != self.id {
                // Mencius skip rule: another proposer is using slot `s`, so our own unused slots
                // below it would only hold up delivery. Skip them (piggybacked on this answer).
                self.observe_slot(s);
                self.skip_own_below(s);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reply<T>(
        &mut self,
        to: ReplicaId,
        ballot: Ballot,
        ok: Vec<T>,
        rejected: Vec<(Slot, Ballot)>,
        decided: Vec<(Slot, Value)>,
        truncated: bool,
        make_ok: impl FnOnce(Ballot, Vec<T>) -> Message,
    ) {
        if !ok.is_empty() {
            self.send(to, make_ok(ballot, ok));
        }
        if !rejected.is_empty() {
            self.send(
                to,
                Message::Rejected {
                    ballot,
                    entries: rejected,
                },
            );
        }
        if !decided.is_empty() {
            self.send(to, Message::Decided { entries: decided });
        }
        if truncated {
            self.send(
                to,
                Message::SnapshotNeeded {
                    log_start: self.log_start,
                },
            );
        }
    }
}
