//! The proposer role: batching, own slots under weak reservations, contention for free slots
//! without them, phase 1 and 2, backoff, take-over of stalled slots and revocation of silent
//! owners.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::message::{Message, PromiseEntry};
use crate::record::Record;
use crate::types::{Ballot, Batch, Proposal, ProposalId, ReplicaId, Slot, Time, Value};

use super::{Attempt, Phase, Replica};

impl Replica {
    fn own_in_flight(&self) -> usize {
        self.attempts.values().filter(|a| a.own.is_some()).count()
    }

    /// Starts as many slots as the window allows for queued proposals.
    pub(super) fn drive_proposals(&mut self) {
        if self.queue.is_empty() || self.now < self.propose_after || self.proposer_fenced() {
            return;
        }
        if !self.core.configs.latest().members.contains(&self.id) {
            return;
        }
        if self.opts.params.reservations {
            let mut entries = Vec::new();
            while !self.queue.is_empty() && self.own_in_flight() < self.opts.window {
                let Some(slot) = self.next_own_slot() else {
                    break;
                };
                let batch = self.cut_batch();
                self.own_next = slot.next();
                let value = Value::Batch(batch.clone());
                let phase = Phase::Accepting {
                    value: value.clone(),
                    voters: BTreeSet::new(),
                };
                let ballot = Ballot::reserved(self.id);
                let attempt = Attempt {
                    ballot,
                    phase,
                    own: Some(batch),
                    started: self.now,
                    sent: self.now,
                };
                self.attempts.insert(slot, attempt);
                self.observe_slot(slot);
                entries.push((slot, value));
                self.metrics.batches += 1;
            }
            if entries.is_empty() && self.own_in_flight() == 0 && !self.queue.is_empty() {
                // No own slot before the configuration horizon: a member added recently owns
                // none yet, and an idle cluster does not move the horizon. Announce the slot we
                // want (heartbeats carry it): owners skip their slots below it and silent ones
                // are taken over, which moves the horizon. Proposing a batch in someone else's
                // slot instead would break the skip rule, which relies on only the owner ever
                // proposing anything but a no-op there.
                let latest = self.core.configs.latest();
                if latest.members.contains(&self.id) {
                    let mut s = self.own_next.max(self.horizon());
                    while latest.owner(s) != self.id {
                        s = s.next();
                    }
                    self.observe_slot(s);
                }
            }
            if !entries.is_empty() {
                self.out.persist.push(Record::OwnNext {
                    slot: self.own_next,
                });
                let ballot = Ballot::reserved(self.id);
                let slots: Vec<Slot> = entries.iter().map(|(s, _)| *s).collect();
                for member in self.members_of(&slots) {
                    self.send(
                        member,
                        Message::Accept {
                            ballot,
                            entries: entries.clone(),
                        },
                    );
                }
            }
        } else {
            while !self.queue.is_empty() && self.own_in_flight() < self.opts.window {
                let Some(slot) = self.free_member_slot() else {
                    break;
                };
                let batch = self.cut_batch();
                self.metrics.batches += 1;
                self.start_prepare(vec![slot], Some(batch));
            }
        }
    }

    /// Without reservations: the lowest slot not known to be in use (decided, or promised or
    /// accepted here) above our own attempts, where this replica is a member. Others may be
    /// using it unbeknown to us; phase 1 sorts that out. A replica added recently is a member
    /// only from the slot its addition takes effect; it proposes there, and the slots in
    /// between get filled by take-over.
    fn free_member_slot(&self) -> Option<Slot> {
        let last_attempt = self
            .attempts
            .keys()
            .next_back()
            .map_or(Slot(0), |s| s.next());
        let mut slot = self.next_deliver.max(last_attempt);
        while slot < self.horizon() {
            let used = self.decided.contains_key(&slot)
                || self.promised.contains_key(&slot)
                || self.accepted.contains_key(&slot);
            if !used && self.core.configs.at(slot).members.contains(&self.id) {
                return Some(slot);
            }
            slot = slot.next();
        }
        None
    }

    /// The lowest own slot that is free: not decided, not attempted, not being taken over.
    pub(super) fn next_own_slot(&self) -> Option<Slot> {
        let mut s = self.own_next.max(self.next_deliver).max(self.own_floor()?);
        let horizon = self.horizon();
        let reserved = Ballot::reserved(self.id);
        while s < horizon {
            let config = self.core.configs.at(s);
            if config.owner(s) == self.id
                && !self.decided.contains_key(&s)
                && !self.attempts.contains_key(&s)
                && self.promised.get(&s).is_none_or(|p| *p <= reserved)
            {
                return Some(s);
            }
            s = s.next();
        }
        None
    }

    /// Takes queued proposals, in LSN order, up to the batch limits.
    fn cut_batch(&mut self) -> Arc<Batch> {
        let mut proposals = Vec::new();
        let mut bytes = 0;
        while let Some(&lsn) = self.queue.first() {
            let payload = &self.proposals[&lsn];
            let size = payload.size_bytes();
            if !proposals.is_empty()
                && (proposals.len() >= self.opts.batch_commands_max
                    || bytes + size > self.opts.batch_bytes_max)
            {
                break;
            }
            bytes += size;
            proposals.push(Proposal {
                id: ProposalId {
                    proposer: self.id,
                    lsn,
                },
                payload: payload.clone(),
            });
            self.queue.pop_first();
        }
        Arc::new(Batch {
            time: self.now,
            proposals,
        })
    }

    /// Members of the configurations of `slots`, this replica included.
    fn members_of(&self, slots: &[Slot]) -> BTreeSet<ReplicaId> {
        let mut out = BTreeSet::new();
        let mut last: Option<*const crate::config::Config> = None;
        for s in slots {
            let c = self.core.configs.at(*s);
            if last != Some(Arc::as_ptr(c)) {
                out.extend(c.members.iter().copied());
                last = Some(Arc::as_ptr(c));
            }
        }
        out
    }

    /// Phase 1a for `slots` with a fresh ballot above every ballot seen there.
    pub(super) fn start_prepare(&mut self, slots: Vec<Slot>, own: Option<Arc<Batch>>) {
        if slots.is_empty() {
            return;
        }
        let counter = slots
            .iter()
            .filter_map(|s| self.counters.get(s))
            .max()
            .copied()
            .unwrap_or(0);
        let counter = counter.max(
            slots
                .iter()
                .filter_map(|s| self.promised.get(s))
                .map(|b| b.counter)
                .max()
                .unwrap_or(0),
        );
        // Saturating: a peer's ballot at the largest counter (no correct replica reaches it)
        // must not overflow here; the slot then waits for that peer, it is not decided twice.
        let ballot = self.fresh_ballot(counter.saturating_add(1));
        for &slot in &slots {
            if own.is_some() {
                self.observe_slot(slot);
            }
            let phase = Phase::Preparing {
                promises: BTreeMap::new(),
            };
            let attempt = Attempt {
                ballot,
                phase,
                own: own.clone(),
                started: self.now,
                sent: self.now,
            };
            if let Some(old) = self.attempts.insert(slot, attempt) {
                self.requeue(old.own);
            }
        }
        for member in self.members_of(&slots) {
            self.send(
                member,
                Message::Prepare {
                    ballot,
                    slots: slots.clone(),
                },
            );
        }
    }

    /// Phase 1b received: once a phase-1 quorum has promised, pick the value (Paxos: the
    /// highest-ballot accepted value among them, else our own batch or a no-op) and go to
    /// phase 2.
    pub(super) fn on_promise(
        &mut self,
        from: ReplicaId,
        ballot: Ballot,
        entries: Vec<PromiseEntry>,
    ) {
        let mut to_accept = Vec::new();
        let mut requeue = Vec::new();
        for entry in entries {
            let config = self.core.configs.at(entry.slot).clone();
            let Some(attempt) = self.attempts.get_mut(&entry.slot) else {
                continue;
            };
            if attempt.ballot != ballot {
                continue;
            }
            let Phase::Preparing { promises } = &mut attempt.phase else {
                continue;
            };
            promises.insert(from, entry.accepted);
            let voters: BTreeSet<ReplicaId> = promises.keys().copied().collect();
            if !config.policy.is_phase1_quorum(&config.members, &voters) {
                continue;
            }
            let adopted = promises
                .values()
                .flatten()
                .max_by_key(|(b, _)| *b)
                .map(|(_, v)| v.clone());
            let adopted = if cfg!(feature = "mutation-takeover-ignores-accepted") {
                None
            } else {
                adopted
            };
            let value = match adopted {
                Some(v) => v,
                None => attempt.own.clone().map_or(Value::Noop, Value::Batch),
            };
            if let Some(own) = &attempt.own
                && value != Value::Batch(own.clone())
            {
                requeue.push(attempt.own.take());
            }
            attempt.phase = Phase::Accepting {
                value: value.clone(),
                voters: BTreeSet::new(),
            };
            attempt.sent = self.now;
            to_accept.push((entry.slot, value));
        }
        for own in requeue {
            self.requeue(own);
        }
        if !to_accept.is_empty() {
            let slots: Vec<Slot> = to_accept.iter().map(|(s, _)| *s).collect();
            for member in self.members_of(&slots) {
                self.send(
                    member,
                    Message::Accept {
                        ballot,
                        entries: to_accept.clone(),
                    },
                );
            }
        }
    }

    /// Phase 2b received: a phase-2 quorum at one ballot decides the slot.
    pub(super) fn on_accepted(&mut self, from: ReplicaId, ballot: Ballot, slots: &[Slot]) {
        let mut chosen = Vec::new();
        for &slot in slots {
            let config = self.core.configs.at(slot).clone();
            let Some(attempt) = self.attempts.get_mut(&slot) else {
                continue;
            };
            if attempt.ballot != ballot {
                continue;
            }
            let Phase::Accepting { value, voters } = &mut attempt.phase else {
                continue;
            };
            voters.insert(from);
            let mut counted = voters.clone();
            if cfg!(feature = "mutation-quorum-minus-one")
                && let Some(extra) = config.members.iter().find(|m| !counted.contains(m))
            {
                counted.insert(*extra);
            }
            if config.policy.is_phase2_quorum(&config.members, &counted) {
                chosen.push((slot, value.clone(), counted.contains(&self.id)));
            }
        }
        for (slot, value, counted_self) in chosen {
            self.backoff_exponent = 0;
            if counted_self && let Some(seq) = self.undurable_accepts.get(&slot).copied() {
                self.undurable_decisions.insert(slot, seq);
            }
            self.learn(slot, value);
        }
    }

    /// A higher ballot pre-empted some of our attempts: give those slots up and back off.
    pub(super) fn on_rejected(&mut self, ballot: Ballot, entries: &[(Slot, Ballot)]) {
        let mut preempted = false;
        let mut own_slot_revoked = false;
        for &(slot, promised) in entries {
            let c = self.counters.entry(slot).or_insert(0);
            *c = (*c).max(promised.counter);
            if self.attempts.get(&slot).is_some_and(|a| a.ballot == ballot) {
                let attempt = self.attempts.remove(&slot).expect("checked above");
                own_slot_revoked |= attempt.ballot.is_reserved();
                self.requeue(attempt.own);
                preempted = true;
                self.metrics.preemptions += 1;
            }
        }
        if preempted {
            // CSMA/CD-style: a random delay from a window that doubles per consecutive
            // pre-emption, so colliding proposers spread out instead of duelling.
            self.backoff_exponent = (self.backoff_exponent + 1).min(20);
            let window =
                (self.opts.backoff_base_ns << self.backoff_exponent).min(self.opts.backoff_max_ns);
            let delay = self.random_below(window);
            self.propose_after = self.propose_after.max(self.now.add_nanos(delay));
            self.metrics.backoffs += 1;
        }
        if own_slot_revoked {
            // A taker-over is revoking our slots: move past everything in use.
            self.skip_own_below(self.highest_seen.next());
        }
    }

    /// Returns an aborted batch's proposals to the queue (those not yet delivered).
    pub(super) fn requeue(&mut self, own: Option<Arc<Batch>>) {
        if let Some(batch) = own {
            for p in &batch.proposals {
                if self.proposals.contains_key(&p.id.lsn) {
                    self.queue.insert(p.id.lsn);
                }
            }
        }
    }

    /// Notes that `slot` holds (or is being tried with) a client batch somewhere. No-ops do not
    /// count: a stalled frontier only matters when real work waits behind it, and revocation
    /// ahead of need must not look like progress (or it would feed itself).
    pub(super) fn observe_slot(&mut self, slot: Slot) {
        self.highest_seen = self.highest_seen.max(slot);
    }

    /// The highest slot known in use: seen in use anywhere, or decided here. An owner skips
    /// its slots as far as a peer's revocation reaches, past anything in use; those no-ops,
    /// decided past an undecided slot, hold the frontier as stalled as a slot in use does
    /// (else an idle group keeps them undelivered for ever, and never goes quiet). Not folded
    /// into `highest_seen`, from which revocations look ahead: that would ratchet.
    pub(super) fn highest_in_use(&self) -> Slot {
        self.decided
            .last_key_value()
            .map_or(self.highest_seen, |(s, _)| self.highest_seen.max(*s))
    }

    /// Weak reservations: decides our own unused slots below `bound` as no-ops. Safe without a
    /// round trip because only the owner may propose anything but a no-op in its slots, and it
    /// records that it never will before anyone hears of the skip.
    pub(super) fn skip_own_below(&mut self, bound: Slot) {
        if !self.opts.params.reservations || !self.core.configs.latest().members.contains(&self.id)
        {
            return;
        }
        // After lost state, only own slots from the fence on may be skipped: below it we may
        // have proposed a value we forgot.
        let Some(floor) = self.own_floor() else {
            return;
        };
        let bound = bound.min(self.horizon());
        if self.own_next.max(self.next_deliver).max(floor) >= bound {
            return;
        }
        // Queued work goes into our slots rather than being skipped past.
        self.drive_proposals();
        let start = self.own_next.max(self.next_deliver).max(floor);
        let mut skipped = Vec::new();
        let mut s = start;
        while s < bound {
            if self.core.configs.at(s).owner(s) == self.id
                && !self.decided.contains_key(&s)
                && !self.attempts.contains_key(&s)
            {
                skipped.push(s);
            }
            s = s.next();
        }
        if self.own_next < bound {
            self.own_next = bound;
            self.out.persist.push(Record::OwnNext { slot: bound });
        }
        self.metrics.skipped += skipped.len() as u64;
        for slot in skipped {
            // Only our own durable `OwnNext` makes this no-op final: until that record is on
            // disk, a crash could let us propose a value here after all.
            if !cfg!(feature = "mutation-early-skip") {
                self.undurable_decisions.insert(slot, self.next_seq);
            }
            self.learn(slot, Value::Noop);
        }
    }

    /// Re-sends the current phase of attempts that have waited a retransmission interval.
    pub(super) fn retransmit(&mut self) {
        let interval = self.opts.retransmit_interval_ns;
        let now = self.now;
        let mut prepares: BTreeMap<Ballot, Vec<Slot>> = BTreeMap::new();
        let mut accepts: BTreeMap<Ballot, Vec<(Slot, Value)>> = BTreeMap::new();
        for (slot, a) in &mut self.attempts {
            if now.since(a.sent) < interval {
                continue;
            }
            a.sent = now;
            match &a.phase {
                Phase::Preparing { .. } => prepares.entry(a.ballot).or_default().push(*slot),
                Phase::Accepting { value, .. } => {
                    accepts
                        .entry(a.ballot)
                        .or_default()
                        .push((*slot, value.clone()));
                }
            }
        }
        for (ballot, slots) in prepares {
            for member in self.members_of(&slots) {
                if member != self.id {
                    self.send(
                        member,
                        Message::Prepare {
                            ballot,
                            slots: slots.clone(),
                        },
                    );
                }
            }
        }
        for (ballot, entries) in accepts {
            let slots: Vec<Slot> = entries.iter().map(|(s, _)| *s).collect();
            for member in self.members_of(&slots) {
                if member != self.id {
                    self.send(
                        member,
                        Message::Accept {
                            ballot,
                            entries: entries.clone(),
                        },
                    );
                }
            }
        }
    }

    /// Earliest retransmission due.
    pub(super) fn next_retransmit(&self) -> Option<crate::types::Time> {
        self.attempts
            .values()
            .map(|a| a.sent.add_nanos(self.opts.retransmit_interval_ns))
            .min()
    }

    /// Rank of this replica for taking over `slot`: the owner's ring successor goes first, the
    /// owner itself last; non-members never.
    fn takeover_rank(&self, slot: Slot) -> Option<u64> {
        let config = self.core.configs.at(slot);
        let n = config.members.len();
        let me = config.index_of(self.id)?;
        let owner = config
            .index_of(config.owner(slot))
            .expect("owner is a member");
        Some(((me + 2 * n - owner - 1) % n) as u64)
    }

    /// Arms (or clears) the take-over timer for a stalled delivery frontier.
    pub(super) fn update_takeover_timer(&mut self) {
        let stalled =
            self.next_deliver <= self.highest_in_use() && self.next_deliver < self.horizon();
        if !stalled {
            self.takeover_at = None;
            self.stall_slot = None;
            return;
        }
        if self.stall_slot != Some(self.next_deliver) {
            self.stall_slot = Some(self.next_deliver);
            self.stall_started = self.now;
            // Progress: relax the back-off one step rather than forgetting it, so that a
            // network slower than the configured timeout settles at a working delay.
            self.takeover_round = self.takeover_round.saturating_sub(1);
            self.arm_takeover();
        } else if self.takeover_at.is_none() {
            self.arm_takeover();
        }
    }

    /// The wait before taking over the frontier: ranked after the owner so that one replica
    /// usually goes alone, and doubled (randomized) per failed round at the same frontier so
    /// that competing taker-overs back off instead of duelling.
    fn takeover_delay(&mut self) -> Option<u64> {
        let t = self.opts.takeover_timeout_ns;
        let rank = self.takeover_rank(self.next_deliver)?;
        let owner = self
            .core
            .configs
            .at(self.next_deliver)
            .owner(self.next_deliver);
        if owner == self.id
            && self.next_deliver < self.settle_own_below
            && !cfg!(feature = "mutation-restart-settles-last")
        {
            // Our own slot from before a restart: whatever we proposed there died with the
            // process. The peers, hearing us alive again, wait for us to fill it (up to four
            // timeouts, `patience_for_live_owner`), so we settle it ourselves after one
            // heartbeat (time for the peers' decisions to reach us), not last in the ring.
            // Phase 1 adopts whatever a quorum may have accepted: as safe as any take-over.
            let h = self.opts.heartbeat_interval_ns;
            return Some(h + self.random_below(h / 2 + 1));
        }
        let scale = 1u64 << self.takeover_round.min(6);
        let jitter = self.random_below(t * scale / 2 + 1);
        Some(t * (1 + rank) * scale + jitter)
    }

    /// How much longer to wait before taking over the frontier from its owner, if at all. An
    /// owner heard from within the take-over timeout is alive, only slow (a loaded node): its
    /// skip or value is on the way, and taking its slots over would make it and the taker-over
    /// duel and suspect it, which costs more than the wait. It gets up to four timeouts in
    /// all; an owner silent for one timeout is taken over at once, as before. So is a live
    /// owner far behind the frontier (catching up after a partition, say): it cannot fill its
    /// slots soon, and waiting for it would stall every turn of its slots.
    fn patience_for_live_owner(&self) -> Option<u64> {
        if !self.opts.params.reservations {
            return None;
        }
        let t = self.opts.takeover_timeout_ns;
        let owner = self
            .core
            .configs
            .at(self.next_deliver)
            .owner(self.next_deliver);
        if self.far_behind(owner) {
            return None;
        }
        let silent_for = self.now.since(*self.last_heard.get(&owner)?);
        let stalled_for = self.now.since(self.stall_started);
        if owner == self.id || silent_for >= t || stalled_for >= 4 * t {
            return None;
        }
        Some((t - silent_for).min(4 * t - stalled_for).max(1))
    }

    /// Whether `peer` reports having applied far less than we have (more than four windows of
    /// every member's slots): a replica catching up, say after a partition, which cannot fill
    /// or skip its slots at the frontier until it has caught up.
    pub(super) fn far_behind(&self, peer: ReplicaId) -> bool {
        let members = self.core.configs.at(self.next_deliver).members.len();
        let in_flight = (self.opts.window * members) as u64;
        let applied = self.peer_applied.get(&peer).copied().unwrap_or(Slot(0));
        applied.0 + 4 * in_flight < self.next_deliver.0 || self.peer_fenced(peer)
    }

    /// Someone else is taking over the frontier: give them time before competing.
    pub(super) fn defer_takeover(&mut self, slot: Slot) {
        if slot == self.next_deliver && self.takeover_at.is_some() {
            self.arm_takeover();
        }
    }

    fn arm_takeover(&mut self) {
        self.takeover_at = self.takeover_delay().map(|d| self.now.add_nanos(d));
    }

    /// The frontier has been stuck for a take-over timeout: run phase 1 on every undecided
    /// slot up to the highest in use, adopting accepted values or filling no-ops.
    pub(super) fn take_over_stalled_slots(&mut self) {
        if self.proposer_fenced() {
            // A replica that lost its state might reuse a ballot it forgot: its peers take
            // over, not it.
            self.arm_takeover();
            return;
        }
        if let Some(wait) = self.patience_for_live_owner() {
            self.takeover_at = Some(self.now.add_nanos(wait));
            return;
        }
        let end = self
            .highest_in_use()
            .min(Slot(self.horizon().0.saturating_sub(1)));
        // Our own unused slots in the range need no phase 1.
        self.skip_own_below(end.next());
        let stale = self.opts.takeover_timeout_ns << self.takeover_round.min(6);
        self.takeover_round += 1;
        // Under reservations only the owner of the stalled frontier is suspect: the other
        // owners' undecided slots are most likely in flight, and taking them over would only
        // pre-empt live proposers. Their slots get their turn if they become the frontier.
        let blocking = self
            .core
            .configs
            .at(self.next_deliver)
            .owner(self.next_deliver);
        if self.opts.params.reservations && blocking != self.id {
            self.suspected.insert(blocking);
        }
        let mut slots = Vec::new();
        let mut s = self.next_deliver;
        while s <= end && slots.len() < self.opts.message_entries_max {
            let attempt_stale = self
                .attempts
                .get(&s)
                .is_none_or(|a| self.now.since(a.started) >= stale);
            let suspect = !self.opts.params.reservations
                || s == self.next_deliver
                || self.core.configs.at(s).owner(s) == blocking;
            if !self.decided.contains_key(&s) && attempt_stale && suspect {
                slots.push(s);
            }
            s = s.next();
        }
        self.metrics.takeovers += slots.len() as u64;
        self.start_prepare(slots, None);
        self.arm_takeover();
    }

    /// Tells the replica that the transport lost the connection `peer` sends on: its process
    /// most likely stopped or died (the kernel closes a dead process's sockets at once). The
    /// peer is suspected now rather than after a take-over timeout of silence, so its
    /// designated taker-over revokes its slots at once (`revoke_suspected_owners`) and a
    /// graceful stop or a crash under load stalls the frontier for a round trip, not a
    /// timeout. It is a hint: a network failure or a peer re-dialling looks the same, and a
    /// suspect heard from again is trusted again (`handle_message`). Only timing depends on
    /// it; revocation is phase 1 and 2 like any take-over, safe whenever it runs. Ignored
    /// while quiet (nothing waits on the peer) and without reservations (no owner to revoke).
    pub fn handle_peer_lost(&mut self, now: Time, peer: ReplicaId) {
        self.advance(now);
        let member = self
            .core
            .configs
            .at(self.next_deliver)
            .members
            .contains(&peer)
            || self.core.configs.latest().members.contains(&peer);
        if peer != self.id
            && member
            && !self.quiet
            && self.opts.params.reservations
            && !cfg!(feature = "mutation-ignore-peer-lost")
        {
            self.suspected.insert(peer);
            // Not a live owner to be patient with (`patience_for_live_owner`).
            self.last_heard.remove(&peer);
            self.metrics.peers_lost += 1;
        }
        self.after_input();
    }

    /// Mencius-style revocation: while an owner is suspected, its designated taker-over runs
    /// phase 1 on its slots ahead of need, so the owner's silence stalls nobody.
    pub(super) fn revoke_suspected_owners(&mut self) {
        if !self.opts.params.reservations || self.suspected.is_empty() || self.proposer_fenced() {
            return;
        }
        let config = self.core.configs.at(self.next_deliver).clone();
        let lookahead = self.opts.revoke_lookahead;
        for p in self.suspected.clone() {
            let Some(pi) = config.index_of(p) else {
                continue;
            };
            let members: Vec<ReplicaId> = config.members.iter().copied().collect();
            let n = members.len();
            let designated = (1..n)
                .map(|k| members[(pi + k) % n])
                .find(|m| !self.suspected.contains(m));
            if designated != Some(self.id) {
                continue;
            }
            let from = self
                .revoked_upto
                .get(&p)
                .copied()
                .unwrap_or(Slot(0))
                .max(self.next_deliver);
            let target = Slot(self.highest_seen.0 + lookahead).min(self.horizon());
            if from.0 + lookahead / 2 > target.0 {
                continue;
            }
            let mut slots = Vec::new();
            let mut s = from;
            while s < target && slots.len() < self.opts.message_entries_max {
                if self.core.configs.at(s).owner(s) == p
                    && !self.decided.contains_key(&s)
                    && !self.attempts.contains_key(&s)
                {
                    slots.push(s);
                }
                s = s.next();
            }
            self.revoked_upto.insert(p, s);
            self.metrics.takeovers += slots.len() as u64;
            self.start_prepare(slots, None);
        }
    }
}
