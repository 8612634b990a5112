//! The learner role: decisions, delivery in GSN order with exactly-once and local-order
//! guarantees, configuration changes, heartbeats, catch-up, snapshots and compaction.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::ConfigChange;
use crate::message::Message;
use crate::record::Record;
use crate::snapshot::{Snapshot, SnapshotError};
use crate::types::{Lsn, Payload, Proposal, ProposalId, ReplicaId, Slot, Time, Value};

use super::{ConfigOutcome, Delivery, Replica, SnapshotRequest};

impl Replica {
    /// Records that `slot` is decided with `value`, announcing it if this replica decided it.
    pub(super) fn learn(&mut self, slot: Slot, value: Value) {
        self.learn_inner(slot, value, true);
    }

    /// Records a decision heard from a peer (not re-announced).
    pub(super) fn learn_from_peer(&mut self, slot: Slot, value: Value) {
        self.learn_inner(slot, value, false);
    }

    fn learn_inner(&mut self, slot: Slot, value: Value, announce: bool) {
        if let Some(known) = self.decided.get(&slot) {
            if *known != value {
                // Two different values decided for one slot: a safety violation somewhere.
                // Keep the first, count it, and let tests (which check this counter) fail.
                self.metrics.conflicting_decisions += 1;
            }
            return;
        }
        if slot < self.next_deliver {
            return;
        }
        self.decided.insert(slot, value.clone());
        self.metrics.decided += 1;
        match self.out.persist.last_mut() {
            Some(Record::Decided { entries }) => entries.push((slot, value.clone())),
            _ => self.out.persist.push(Record::Decided {
                entries: vec![(slot, value.clone())],
            }),
        }
        if matches!(value, Value::Batch(_)) {
            self.observe_slot(slot);
        }
        if let Some(attempt) = self.attempts.remove(&slot)
            && let Some(own) = &attempt.own
            && value != Value::Batch(own.clone())
        {
            self.requeue(attempt.own);
        }
        if announce {
            self.decided_out.push((slot, value));
        }
        self.deliver_ready_slots();
    }

    /// Delivers every decided slot at the frontier, in order.
    pub(super) fn deliver_ready_slots(&mut self) {
        while let Some(value) = self.decided.get(&self.next_deliver).cloned() {
            let gsn = self.next_deliver;
            let mut delivery = Delivery {
                gsn,
                time: self.core.agreed_time,
                proposals: Vec::new(),
                config: Vec::new(),
            };
            if let Value::Batch(batch) = value {
                self.core.agreed_time = self.core.agreed_time.max(batch.time);
                for p in &batch.proposals {
                    self.deliver_proposal(gsn, p, &mut delivery);
                }
                self.follow_the_sun(gsn);
            }
            self.close_rejoined_epochs(gsn, &mut delivery);
            delivery.time = self.core.agreed_time;
            self.next_deliver = gsn.next();
            if self.undurable_decisions.contains_key(&gsn) {
                self.out_has_late_delivery = true;
            }
            if !self.out_has_late_delivery {
                self.out.early_deliveries += 1;
            }
            self.out.deliveries.push(delivery);
        }
    }

    /// Exactly-once per proposal id; in preserve-local-order mode, also in LSN order per
    /// proposer (later LSNs are held back until the earlier ones are delivered).
    fn deliver_proposal(&mut self, gsn: Slot, p: &Proposal, delivery: &mut Delivery) {
        let proposer = p.id.proposer;
        let set = self.core.delivered.entry(proposer).or_default();
        if set.contains(p.id.lsn) {
            return;
        }
        if !self.opts.params.preserve_local_order {
            self.emit(gsn, p.clone(), delivery);
            return;
        }
        let held = self.core.held.entry(proposer).or_default();
        if p.id.lsn != Lsn(set.contiguous.0 + 1) {
            held.entry(p.id.lsn).or_insert_with(|| p.clone());
            return;
        }
        self.emit(gsn, p.clone(), delivery);
        // The held proposals that follow on, up to the last LSN (which has no successor).
        while let Some(next) = self.core.delivered[&proposer].contiguous.0.checked_add(1)
            && let Some(p) = self
                .core
                .held
                .get_mut(&proposer)
                .and_then(|h| h.remove(&Lsn(next)))
        {
            self.emit(gsn, p, delivery);
        }
        if self.core.held.get(&proposer).is_some_and(|h| h.is_empty()) {
            self.core.held.remove(&proposer);
        }
    }

    pub(super) fn emit(&mut self, gsn: Slot, p: Proposal, delivery: &mut Delivery) {
        let inserted = self
            .core
            .delivered
            .entry(p.id.proposer)
            .or_default()
            .insert(p.id.lsn);
        assert!(inserted, "invariant: a proposal is delivered at most once");
        if let Payload::Config(change) = &p.payload {
            let result = self.apply_config(gsn, change);
            delivery.config.push(ConfigOutcome { id: p.id, result });
        }
        if p.id.proposer == self.id {
            self.retire(p.id.lsn);
        }
        delivery.proposals.push(p);
    }

    fn retire(&mut self, lsn: Lsn) {
        if self.proposals.remove(&lsn).is_some() {
            self.queue.remove(&lsn);
            self.out.persist.push(Record::Retired { lsn });
        }
    }

    /// A change delivered at `gsn` governs slots from `gsn + config_lag`.
    fn apply_config(
        &mut self,
        gsn: Slot,
        change: &ConfigChange,
    ) -> Result<Slot, crate::ConfigError> {
        if let ConfigChange::Rejoin {
            member,
            nonce,
            after,
        } = change
        {
            // No configuration changes: the delivery only sets the member's fence.
            return self.apply_rejoin(gsn, *member, *nonce, *after);
        }
        let from = Slot(gsn.0 + self.opts.params.config_lag);
        let before = self.core.configs.latest();
        let was_member = before.members.contains(&self.id);
        let next = before.apply(change)?;
        // Only a change that takes us out counts: a joining replica is not a member yet.
        let removed_self = was_member && !next.members.contains(&self.id);
        self.core.configs.set(from, next);
        if removed_self {
            self.abandon_proposals();
        }
        Ok(from)
    }

    /// Retires our proposals that the delivered sets show delivered already (after a restart
    /// or a snapshot install, which deliver them in the snapshot's state, not here), and
    /// reports them in [`crate::Ready::delivered_in_snapshot`].
    pub(super) fn retire_delivered_own(&mut self) {
        let mine = self
            .core
            .delivered
            .get(&self.id)
            .cloned()
            .unwrap_or_default();
        let done: Vec<Lsn> = self
            .proposals
            .keys()
            .copied()
            .filter(|l| mine.contains(*l))
            .collect();
        for lsn in done {
            self.retire(lsn);
            if !cfg!(feature = "mutation-forget-snapshot-delivered") {
                self.out.delivered_in_snapshot.push(ProposalId {
                    proposer: self.id,
                    lsn,
                });
            }
        }
    }

    /// Removed from the group: stop driving our proposals and say so.
    fn abandon_proposals(&mut self) {
        let lsns: Vec<Lsn> = self.proposals.keys().copied().collect();
        for lsn in lsns {
            self.retire(lsn);
            self.out.abandoned.push(ProposalId {
                proposer: self.id,
                lsn,
            });
        }
    }

    /// Follow-the-sun: the schedule, read at agreed time, may move the distinguished role.
    /// Every replica derives the same change at the same slot.
    fn follow_the_sun(&mut self, gsn: Slot) {
        let latest = self.core.configs.latest().clone();
        let Some(sun) = &latest.sun else { return };
        let Some(policy) = sun.policy_at(self.core.agreed_time) else {
            return;
        };
        if policy == latest.policy {
            return;
        }
        let mut next = (*latest).clone();
        next.policy = policy;
        if next.validate().is_ok() {
            self.core
                .configs
                .set(Slot(gsn.0 + self.opts.params.config_lag), next);
        }
    }

    // ----- Heartbeats and catch-up --------------------------------------------------------

    /// Sends every peer where this replica stands; `quiet`: the last until it wakes.
    pub(super) fn send_heartbeats(&mut self, quiet: bool) {
        self.request_rejoin();
        let applied = self.next_deliver;
        let highest_seen = self.highest_seen;
        for peer in self.peers() {
            self.send(
                peer,
                Message::Heartbeat {
                    applied,
                    highest_seen,
                    quiet,
                },
            );
        }
    }

    pub(super) fn on_heartbeat(&mut self, from: ReplicaId, applied: Slot, highest_seen: Slot) {
        let known = self.peer_applied.entry(from).or_insert(applied);
        *known = (*known).max(applied);
        self.observe_slot(highest_seen);
        // A lost Accept must not leave our own slots holding everyone up.
        self.skip_own_below(highest_seen);
        self.maybe_catch_up();
    }

    pub(super) fn highest_applied_peer(&self) -> Slot {
        self.peer_applied.values().copied().max().unwrap_or(Slot(0))
    }

    /// Asks a peer that has applied further for the decided slots we lack.
    pub(super) fn maybe_catch_up(&mut self) {
        if self.catchup_deadline.is_some() || self.snapshot_deadline.is_some() {
            return;
        }
        let behind: Vec<(ReplicaId, Slot)> = self
            .peer_applied
            .iter()
            .filter(|(_, a)| **a > self.next_deliver)
            .map(|(p, a)| (*p, *a))
            .collect();
        if behind.is_empty() {
            return;
        }
        let (peer, applied) = behind[self.random_below(behind.len() as u64) as usize];
        let to = applied.min(Slot(
            self.next_deliver.0 + self.opts.catchup_slots_max as u64,
        ));
        self.send(
            peer,
            Message::CatchUp {
                from: self.next_deliver,
                to,
            },
        );
        self.catchup_deadline = Some(self.now.add_nanos(self.opts.catchup_timeout_ns));
        self.catchup_to = to;
        self.metrics.catchup_requests += 1;
    }

    pub(super) fn on_catchup(&mut self, from: ReplicaId, start: Slot, to: Slot) {
        if start < self.log_start {
            self.send(
                from,
                Message::SnapshotNeeded {
                    log_start: self.log_start,
                },
            );
            return;
        }
        let entries: Vec<(Slot, Value)> = self
            .decided
            .range(start..to)
            .take(self.opts.catchup_slots_max)
            .map(|(s, v)| (*s, v.clone()))
            .collect();
        if !entries.is_empty() {
            self.send(from, Message::Decided { entries });
        }
    }

    pub(super) fn on_snapshot_needed(&mut self, from: ReplicaId, log_start: Slot) {
        if log_start <= self.next_deliver || self.snapshot_deadline.is_some() {
            return;
        }
        self.catchup_deadline = None;
        self.out.snapshot_needed = Some(SnapshotRequest {
            from,
            min_next_slot: log_start,
        });
        self.snapshot_deadline = Some(self.now.add_nanos(self.opts.catchup_timeout_ns * 4));
    }

    // ----- Snapshots and compaction -------------------------------------------------------

    /// Checks a snapshot fetched from a peer before anything of it is used: whether its engine
    /// state is one a replica of this group could have made ([`Snapshot::check`]). The driver
    /// calls this before it restores the application's part; [`Self::install_snapshot`]
    /// refuses a snapshot that fails it. Each refusal is counted in
    /// [`crate::Metrics::snapshots_refused`].
    ///
    /// # Errors
    /// Why the snapshot is refused.
    pub fn check_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), SnapshotError> {
        let checked = if cfg!(feature = "mutation-snapshot-unchecked") {
            // Planted bug: a peer's snapshot is installed whatever its engine state says.
            Ok(())
        } else {
            snapshot.check(&self.opts.params)
        };
        if checked.is_err() {
            self.metrics.snapshots_refused += 1;
        }
        checked
    }

    /// Installs a snapshot fetched from a peer (after [`crate::Ready::snapshot_needed`]).
    /// Returns false, changing nothing, if it is not ahead of what is delivered here or
    /// [`Self::check_snapshot`] refuses it (counted in [`crate::Metrics::snapshots_refused`]).
    /// The driver restores the application state from `snapshot.app` when this returns true.
    pub fn install_snapshot(&mut self, now: Time, snapshot: Arc<Snapshot>) -> bool {
        self.advance(now);
        self.wake();
        let next = snapshot.next_slot;
        if next <= self.next_deliver {
            self.after_input();
            return false;
        }
        if self.check_snapshot(&snapshot).is_err() {
            self.after_input();
            return false;
        }
        self.out.persist.push(Record::Snapshot(snapshot.clone()));
        let was_member = self.core.configs.latest().members.contains(&self.id);
        self.core = snapshot.core.clone();
        self.next_deliver = next;
        self.log_start = next;
        self.decided = self.decided.split_off(&next);
        self.promised = self.promised.split_off(&next);
        self.accepted = self.accepted.split_off(&next);
        self.counters = self.counters.split_off(&next);
        let stale: Vec<Slot> = self.attempts.range(..next).map(|(s, _)| *s).collect();
        for s in stale {
            let a = self.attempts.remove(&s).expect("listed above");
            self.requeue(a.own);
        }
        self.own_next = self.own_next.max(next);
        self.highest_seen = self.highest_seen.max(next);
        self.retire_delivered_own();
        if was_member && !self.core.configs.latest().members.contains(&self.id) {
            self.abandon_proposals();
        }
        self.snapshot_deadline = None;
        self.catchup_deadline = None;
        self.metrics.snapshots_installed += 1;
        self.deliver_ready_slots();
        self.observe_pending_fences();
        self.after_input();
        true
    }

    /// Takes a snapshot at the delivered prefix with the application's state `app` (which
    /// must reflect exactly the slots below [`Self::applied`]), and forgets the log below
    /// `retain_from` (usually [`Self::gc_watermark`]; further only if lagging peers may be
    /// sent the snapshot instead). Returns the snapshot, to serve to peers.
    pub fn compact(&mut self, now: Time, app: Bytes, retain_from: Slot) -> Arc<Snapshot> {
        let snapshot = Arc::new(Snapshot {
            next_slot: self.next_deliver,
            core: self.core.clone(),
            app,
        });
        self.compact_with(now, snapshot.clone(), retain_from);
        snapshot
    }

    /// Like [`Self::compact`], with a snapshot built earlier from [`Self::snapshot_state`] and
    /// the application's state at that point (so the driver can encode a large state off its
    /// event loop while the replica goes on). Returns false, changing nothing, if the snapshot
    /// is not between [`Self::log_start`] and [`Self::applied`] (a peer's snapshot was
    /// installed meanwhile).
    pub fn compact_with(&mut self, now: Time, snapshot: Arc<Snapshot>, retain_from: Slot) -> bool {
        self.advance(now);
        if snapshot.next_slot < self.log_start || snapshot.next_slot > self.next_deliver {
            return false;
        }
        let cut = retain_from.min(snapshot.next_slot);
        self.out.persist.push(Record::Snapshot(snapshot));
        if cut > self.log_start {
            self.decided = self.decided.split_off(&cut);
            self.promised = self.promised.split_off(&cut);
            self.accepted = self.accepted.split_off(&cut);
            self.counters = self.counters.split_off(&cut);
            self.core.configs.forget_before(cut);
            self.log_start = cut;
        }
        self.after_input();
        true
    }
}
