//! [`Replica`]: one member of one agreement group, as a sans-IO state machine.
//!
//! The replica plays every Paxos role at once: proposer (`proposer.rs`), acceptor
//! (`acceptor.rs`) and learner (`learner.rs`, which also delivers, catches up and compacts).
//! This file holds the state, the public inputs and the [`Ready`] output.
//!
//! # The driver's contract
//! After every input, drain [`Replica::poll_ready`]. For each [`Ready`], in order:
//! 1. append `persist` to stable storage and make it durable (fsync);
//! 2. only then send `messages` and apply `deliveries`;
//! 3. call [`Replica::handle_persisted`] with the ready's `seq`.
//!
//! Then re-arm one timer for [`Replica::poll_timeout`] and call [`Replica::handle_timeout`]
//! when it fires. Several readies (of several groups) may share one fsync.

mod acceptor;
mod api;
mod learner;
mod proposer;
mod quiet;
mod rejoin;

pub use api::{
    ConfigOutcome, Delivery, Metrics, Options, ProposeError, Ready, RejoinStatus, SnapshotRequest,
};

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::config::{Config, ConfigHistory};
use crate::message::{Envelope, Message};
use crate::record::{DurableState, Record};
use crate::snapshot::CoreState;
use crate::types::{Ballot, Batch, Lsn, Payload, ProposalId, ReplicaId, Slot, Time, Value};

/// A slot this replica is driving through phase 1 and/or phase 2.
#[derive(Debug)]
struct Attempt {
    ballot: Ballot,
    phase: Phase,
    /// Our own batch, if we are trying to get it into this slot.
    own: Option<Arc<Batch>>,
    started: Time,
    /// When the current phase was last sent (for retransmission over lossy links).
    sent: Time,
}

#[derive(Debug)]
enum Phase {
    Preparing {
        promises: BTreeMap<ReplicaId, Option<(Ballot, Value)>>,
    },
    Accepting {
        value: Value,
        voters: BTreeSet<ReplicaId>,
    },
}

/// Protocol state and logic for one replica of one group. Performs no I/O and reads no clock.
#[derive(Debug)]
pub struct Replica {
    opts: Options,
    id: ReplicaId,
    rng: ChaCha8Rng,
    now: Time,

    // Acceptor.
    promised: BTreeMap<Slot, Ballot>,
    accepted: BTreeMap<Slot, (Ballot, Value)>,

    // Learner.
    /// Decided values at or above `log_start` (kept to serve catch-up until compaction).
    decided: BTreeMap<Slot, Value>,
    /// Slots below this are covered by a snapshot and no longer held.
    log_start: Slot,
    /// First slot not yet delivered.
    next_deliver: Slot,
    core: CoreState,

    // Proposer.
    proposals: BTreeMap<Lsn, Payload>,
    last_lsn: Lsn,
    /// Highest ready sequence the driver reported durable.
    persisted_seq: u64,
    /// Durable proposals waiting for a slot.
    queue: BTreeSet<Lsn>,
    attempts: BTreeMap<Slot, Attempt>,
    /// Weak reservations: own slots below this are used or skipped.
    own_next: Slot,
    /// After a restart: own slots below this (where `own_next` stood) may hold proposals
    /// this replica began before the crash and cannot finish; it settles them itself, at
    /// once (see `takeover_delay`). `Slot(0)` for a fresh replica.
    settle_own_below: Slot,
    /// Highest slot known to be in use anywhere.
    highest_seen: Slot,
    /// Highest ballot counter seen per slot above the frontier, to pick the next ballot.
    counters: BTreeMap<Slot, u32>,
    /// No proposing before this (after a restart, and during backoff).
    propose_after: Time,
    backoff_exponent: u32,

    // Liveness, catch-up, revocation.
    last_heard: BTreeMap<ReplicaId, Time>,
    peer_applied: BTreeMap<ReplicaId, Slot>,
    next_heartbeat: Time,
    /// Nothing to do: no heartbeats, no timer, until an input wakes it (`quiet.rs`).
    quiet: bool,
    takeover_at: Option<Time>,
    /// When the frontier stalled at `stall_slot`.
    stall_started: Time,
    /// The frontier slot `takeover_at` was armed for.
    stall_slot: Option<Slot>,
    /// Take-overs already tried at `stall_slot`.
    takeover_round: u32,
    suspected: BTreeSet<ReplicaId>,
    revoked_upto: BTreeMap<ReplicaId, Slot>,
    catchup_deadline: Option<Time>,
    /// The end of the range the catch-up in flight asked for.
    catchup_to: Slot,
    snapshot_deadline: Option<Time>,

    // Rejoining after lost state (`rejoin.rs`).
    /// Set if this replica lost its state: the nonce of its rejoin.
    fence_nonce: Option<u64>,
    /// Peers whose rejoin we proposed and have not yet delivered: peer -> nonce.
    rejoin_requests: BTreeMap<ReplicaId, u64>,

    // Early delivery (see `Ready::early_deliveries`).
    /// Own acceptances whose record is in a ready not yet durable: slot -> that ready's seq.
    undurable_accepts: BTreeMap<Slot, u64>,
    /// Decisions that rest on a record of a ready not yet durable (an owner's skip, or a
    /// quorum counting our own undurable acceptance): slot -> that ready's seq.
    undurable_decisions: BTreeMap<Slot, u64>,
    /// A delivery of the ready being built had to wait for its records: later ones wait too.
    out_has_late_delivery: bool,

    // Output.
    out: Ready,
    next_seq: u64,
    self_inbox: VecDeque<Message>,
    decided_out: Vec<(Slot, Value)>,
    metrics: Metrics,
    /// Inputs handled, for spacing out the invariant checks that walk the whole log.
    inputs: u64,
}

impl Replica {
    /// A new replica with empty storage (the group's first start, or a joining member).
    #[must_use]
    pub fn new(opts: Options, now: Time) -> Replica {
        Replica::recover(opts, now, DurableState::default())
    }

    /// A replica restarted from what survived on its storage. Undecided proposals from the
    /// proposal log are resubmitted once the replica has had a chance to catch up.
    #[must_use]
    pub fn recover(opts: Options, now: Time, state: DurableState) -> Replica {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ now.0.rotate_left(17));
        let (core, start) = match &state.snapshot {
            Some(s) => (s.core.clone(), s.next_slot),
            None => (
                CoreState {
                    configs: ConfigHistory::new(opts.genesis.clone()),
                    delivered: BTreeMap::new(),
                    agreed_time: Time(0),
                    held: BTreeMap::new(),
                    rejoined: BTreeMap::new(),
                },
                Slot(0),
            ),
        };
        let highest_durable = [
            state.promised.keys().next_back(),
            state.accepted.keys().next_back(),
            state.decided.keys().next_back(),
        ]
        .into_iter()
        .flatten()
        .max()
        .copied();
        // Never reuse the reserved ballot in a slot we may have touched before the crash.
        let own_next = state
            .own_next
            .max(highest_durable.map_or(start, Slot::next))
            .max(start);
        // LSNs must never be reused (delivery would drop a new proposal as a duplicate): take
        // the highest assigned one from the log, or what the snapshot shows delivered.
        let delivered_own = core.delivered.get(&opts.id).map_or(Lsn(0), |d| {
            d.sparse
                .iter()
                .next_back()
                .copied()
                .unwrap_or(d.contiguous)
                .max(d.contiguous)
        });
        let last_lsn = state.last_lsn.max(delivered_own);
        let restarted = state != DurableState::default();
        let fence_nonce = state.fence;
        let mut promised = state.promised;
        if cfg!(feature = "mutation-forget-promise") {
            // Planted bug: keep only what accepted values imply.
            promised = state.accepted.iter().map(|(s, (b, _))| (*s, *b)).collect();
        }
        let jitter = rng.next_u64() % opts.heartbeat_interval_ns.max(1);
        let id = opts.id;
        let mut r = Replica {
            id,
            rng,
            now,
            promised,
            accepted: state.accepted,
            decided: state.decided,
            log_start: start,
            next_deliver: start,
            core,
            queue: state.proposals.keys().copied().collect(),
            proposals: state.proposals,
            last_lsn,
            persisted_seq: 0,
            inputs: 0,
            attempts: BTreeMap::new(),
            own_next,
            settle_own_below: if restarted { own_next } else { Slot(0) },
            highest_seen: highest_durable.unwrap_or(start).max(start),
            counters: BTreeMap::new(),
            propose_after: if restarted {
                now.add_nanos(2 * opts.heartbeat_interval_ns)
            } else {
                now
            },
            backoff_exponent: 0,
            last_heard: BTreeMap::new(),
            peer_applied: BTreeMap::new(),
            next_heartbeat: now.add_nanos(jitter),
            quiet: false,
            takeover_at: None,
            stall_started: now,
            stall_slot: None,
            takeover_round: 0,
            suspected: BTreeSet::new(),
            revoked_upto: BTreeMap::new(),
            fence_nonce,
            rejoin_requests: BTreeMap::new(),
            catchup_deadline: None,
            catchup_to: Slot(0),
            snapshot_deadline: None,
            undurable_accepts: BTreeMap::new(),
            undurable_decisions: BTreeMap::new(),
            out_has_late_delivery: false,
            out: Ready::default(),
            next_seq: 1,
            self_inbox: VecDeque::new(),
            decided_out: Vec::new(),
            metrics: Metrics::default(),
            opts,
        };
        for m in r.core.configs.all_members() {
            r.last_heard.insert(m, now);
        }
        if let Some(nonce) = fence_nonce {
            // The driver may hand over a fence it has not written yet (a group it must create
            // fenced): record it before anything else leaves. Written again, it changes nothing.
            r.out.persist.push(Record::Fence { nonce });
        }
        // A snapshot can be durable before the records retiring proposals it shows delivered
        // (the node writes snapshots apart from the log): retire those now, or they would be
        // proposed again, dropped as duplicates on delivery, and never leave the proposal log.
        r.retire_delivered_own();
        r.deliver_ready_slots();
        r.observe_pending_fences();
        r.after_input();
        r
    }

    // ----- Inputs -------------------------------------------------------------------------

    /// Accepts a client command (or configuration change) into the proposal log and proposes
    /// it. Its record travels in the same [`Ready`] as the first messages about it, so it is
    /// durable before any peer hears of it.
    ///
    /// # Errors
    /// [`ProposeError`] when refused; nothing was recorded.
    pub fn propose(&mut self, now: Time, payload: Payload) -> Result<ProposalId, ProposeError> {
        self.advance(now);
        self.wake();
        let result = self.try_propose(payload);
        match &result {
            Ok(_) => self.metrics.proposals += 1,
            Err(_) => self.metrics.proposals_refused += 1,
        }
        self.after_input();
        result
    }

    fn try_propose(&mut self, payload: Payload) -> Result<ProposalId, ProposeError> {
        if !self.core.configs.latest().members.contains(&self.id) {
            return Err(ProposeError::NotMember);
        }
        if self.proposer_fenced() {
            return Err(ProposeError::Rejoining);
        }
        if !self.has_quorum() {
            return Err(ProposeError::NoQuorum);
        }
        if self.proposals.len() >= self.opts.pending_proposals_max {
            return Err(ProposeError::Overloaded(self.proposals.len(), payload));
        }
        let size = payload.size_bytes();
        if size > self.opts.batch_bytes_max {
            return Err(ProposeError::TooLarge {
                size,
                max: self.opts.batch_bytes_max,
            });
        }
        if let Payload::Config(change) = &payload {
            self.core.configs.latest().apply(change)?;
        }
        // After a rejoin the proposal log no longer knows our old LSNs; what was delivered does.
        let Some(lsn) = self.last_lsn.max(self.own_lsn_floor()).0.checked_add(1) else {
            return Err(ProposeError::Exhausted);
        };
        let lsn = Lsn(lsn);
        self.last_lsn = lsn;
        self.proposals.insert(lsn, payload.clone());
        self.out.persist.push(Record::Proposal { lsn, payload });
        // Proposed at once, in the same ready as its record: the driver makes the record
        // durable before any message of that ready leaves, so no peer hears of a proposal
        // that a crash could erase from the proposal log. (One fsync, not two, per write.)
        self.queue.insert(lsn);
        Ok(ProposalId {
            proposer: self.id,
            lsn,
        })
    }

    /// Handles a message from a peer. Malformed or out-of-configuration messages are dropped
    /// and counted.
    pub fn handle_message(&mut self, now: Time, envelope: Envelope) {
        self.advance(now);
        if envelope.to != self.id || envelope.from == self.id {
            self.metrics.dropped_messages += 1;
        } else if !self.core.configs.knows(envelope.from)
            && self.core.configs.latest().members.contains(&self.id)
            && self.fence() != rejoin::Fence::Unknown
        {
            // Not a member of any configuration we still know: a replica added at a slot we have
            // not delivered yet, or one removed a while ago. It takes no part in agreement here,
            // but it may learn: a removed replica must catch up to the slot that removed it (to
            // learn that it was, and give up its proposals). A replica that is itself joining
            // listens to every authenticated peer (the next branch), to catch up; so does one
            // that lost its state, which may know only the group's first configuration.
            match envelope.message {
                Message::Heartbeat { applied, .. } if applied < self.next_deliver => {
                    let (applied, highest_seen) = (self.next_deliver, self.highest_seen);
                    self.send(
                        envelope.from,
                        Message::Heartbeat {
                            applied,
                            highest_seen,
                            quiet: self.quiet,
                        },
                    );
                }
                Message::CatchUp { from: start, to } if start <= to => {
                    self.on_catchup(envelope.from, start, to);
                }
                _ => self.metrics.dropped_messages += 1,
            }
        } else if !self.well_formed(envelope.from, &envelope.message) {
            self.metrics.dropped_messages += 1;
        } else {
            self.last_heard.insert(envelope.from, now);
            // A suspect heard from again is trusted with its slots again, unless it is far
            // behind (catching up): it could not use them yet, and every one would stall the
            // frontier for a take-over timeout. Its slots keep being revoked until it is
            // current.
            if self.suspected.contains(&envelope.from) && !self.far_behind(envelope.from) {
                self.suspected.remove(&envelope.from);
                self.revoked_upto.remove(&envelope.from);
            }
            if self.quiet && self.stays_quiet_for(envelope.from, &envelope.message) {
                self.after_input();
                return;
            }
            self.wake();
            self.dispatch(envelope.from, envelope.message);
        }
        self.after_input();
    }

    /// Handles the timer armed from [`Self::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Time) {
        self.advance(now);
        if self.quiet {
            // Nothing is due while quiet (a driver may still call, on a timer armed before).
            self.after_input();
            return;
        }
        if now >= self.next_heartbeat {
            self.heartbeat_or_quiesce();
            self.next_heartbeat = now.add_nanos(self.opts.heartbeat_interval_ns);
        }
        if self.next_retransmit().is_some_and(|t| now >= t) {
            self.retransmit();
        }
        if self.takeover_at.is_some_and(|t| now >= t) {
            self.take_over_stalled_slots();
        }
        if self.catchup_deadline.is_some_and(|t| now >= t) {
            self.catchup_deadline = None;
            self.maybe_catch_up();
        }
        if self.snapshot_deadline.is_some_and(|t| now >= t) {
            self.snapshot_deadline = None;
        }
        self.after_input();
    }

    /// Tells the replica that the records of every ready up to `seq` are durable.
    pub fn handle_persisted(&mut self, now: Time, seq: u64) {
        self.advance(now);
        assert!(
            seq < self.next_seq,
            "invariant: only readies handed out can be persisted"
        );
        self.persisted_seq = self.persisted_seq.max(seq);
        let persisted = self.persisted_seq;
        self.undurable_accepts.retain(|_, s| *s > persisted);
        self.undurable_decisions.retain(|_, s| *s > persisted);
        self.after_input();
    }

    // ----- Outputs ------------------------------------------------------------------------

    /// The next batch of work, if any.
    #[must_use]
    pub fn poll_ready(&mut self) -> Option<Ready> {
        if self.out.is_empty() {
            return None;
        }
        let mut ready = std::mem::take(&mut self.out);
        ready.seq = self.next_seq;
        self.next_seq += 1;
        self.out_has_late_delivery = false;
        Some(ready)
    }

    /// When to call [`Self::handle_timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.quiet {
            return None;
        }
        let mut t = self.next_heartbeat;
        let deadlines = [
            self.takeover_at,
            self.catchup_deadline,
            self.snapshot_deadline,
            self.next_retransmit(),
        ];
        for d in deadlines.into_iter().flatten() {
            t = t.min(d);
        }
        if !self.queue.is_empty() && self.propose_after > self.now {
            t = t.min(self.propose_after);
        }
        Some(t)
    }

    // ----- Queries ------------------------------------------------------------------------

    /// This replica's id.
    #[must_use]
    pub fn id(&self) -> ReplicaId {
        self.id
    }

    /// Slots below this have been delivered here (the applied GSN watermark).
    #[must_use]
    pub fn applied(&self) -> Slot {
        self.next_deliver
    }

    /// The slot below which every member has applied: safe to truncate.
    #[must_use]
    pub fn gc_watermark(&self) -> Slot {
        let config = self.core.configs.latest();
        let mut w = self.next_deliver;
        for m in &config.members {
            if *m != self.id {
                w = w.min(self.peer_applied.get(m).copied().unwrap_or(Slot(0)));
            }
        }
        w
    }

    /// The first slot still held in the log (earlier ones are in the snapshot).
    #[must_use]
    pub fn log_start(&self) -> Slot {
        self.log_start
    }

    /// The furthest any peer has said (in its heartbeats) that it applied: how far this
    /// replica could still have to catch up. Read-only; a readiness probe compares it with
    /// [`Replica::applied`].
    #[must_use]
    pub fn peers_applied(&self) -> Slot {
        self.highest_applied_peer()
    }

    /// True if this replica has heard from a quorum within the liveness timeout.
    #[must_use]
    pub fn has_quorum(&self) -> bool {
        if self.quiet {
            // Every peer was heard, at our position, when it went quiet; nothing since says
            // otherwise (a write wakes it and finds out).
            return true;
        }
        let config = self.core.configs.at(self.next_deliver);
        let mut voters = BTreeSet::from([self.id]);
        for (peer, t) in &self.last_heard {
            if self.now.since(*t) <= self.opts.liveness_timeout_ns {
                voters.insert(*peer);
            }
        }
        config.policy.is_phase1_quorum(&config.members, &voters)
            && config.policy.is_phase2_quorum(&config.members, &voters)
    }

    /// The promise this replica holds for `slot` (for invariant checks across restarts).
    #[must_use]
    pub fn promised(&self, slot: Slot) -> Option<Ballot> {
        self.promised.get(&slot).copied()
    }

    /// The configuration governing `slot`, as far as this replica knows.
    #[must_use]
    pub fn config_at(&self, slot: Slot) -> &Config {
        self.core.configs.at(slot)
    }

    /// The newest configuration this replica knows (possibly not yet in effect).
    #[must_use]
    pub fn latest_config(&self) -> &Config {
        self.core.configs.latest()
    }

    /// How many times the take-over delay is doubled now (it doubles per take-over round at
    /// one frontier and relaxes one step per new stall): the wait before this replica takes
    /// over a silent owner is about `takeover_timeout × 2^this`. Read-only, for metrics.
    #[must_use]
    pub fn takeover_backoff(&self) -> u32 {
        self.takeover_round.min(6)
    }

    /// Counters.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Proposals in the proposal log not yet delivered.
    #[must_use]
    pub fn pending_proposals(&self) -> usize {
        self.proposals.len()
    }

    /// The engine's state as of the delivered prefix, to bundle into a snapshot.
    #[must_use]
    pub fn snapshot_state(&self) -> (Slot, CoreState) {
        (self.next_deliver, self.core.clone())
    }

    /// A one-line summary of the proposer's and learner's state, for debugging seeds.
    #[doc(hidden)]
    #[must_use]
    pub fn debug_state(&self) -> String {
        let attempts: Vec<String> = self
            .attempts
            .iter()
            .take(6)
            .map(|(s, a)| {
                let phase = match &a.phase {
                    Phase::Preparing { promises } => format!("P{}", promises.len()),
                    Phase::Accepting { voters, .. } => format!("A{}", voters.len()),
                };
                format!(
                    "{s}:{}/{}:{phase}{}",
                    a.ballot.counter,
                    a.ballot.proposer,
                    if a.own.is_some() { "*" } else { "" }
                )
            })
            .collect();
        format!(
            "next {} seen {} own_next {} queue {} attempts {} {:?} takeover_at {:?} round {} after {:?} suspected {:?} config {:?} latest {:?} pending {:?} next_own {:?} held {:?} delivered {:?} persisted {} configs {:?}",
            self.next_deliver,
            self.highest_seen,
            self.own_next,
            self.queue.len(),
            self.attempts.len(),
            attempts,
            self.takeover_at.map(|t| t.since(self.now)),
            self.takeover_round,
            self.propose_after.since(self.now),
            self.suspected,
            self.core.configs.at(self.next_deliver),
            self.core.configs.latest().members,
            self.proposals.keys().take(5).collect::<Vec<_>>(),
            self.next_own_slot(),
            self.core
                .held
                .iter()
                .map(|(r, h)| (*r, h.keys().take(3).collect::<Vec<_>>()))
                .collect::<Vec<_>>(),
            self.core.delivered.get(&self.id),
            self.persisted_seq,
            self.core.configs,
        )
    }

    // ----- Internals shared by the roles --------------------------------------------------

    fn advance(&mut self, now: Time) {
        // Time never goes backwards inside the core, whatever the driver's clock does.
        self.now = self.now.max(now);
    }

    /// The first slot whose configuration is not yet known.
    fn horizon(&self) -> Slot {
        Slot(self.next_deliver.0 + self.opts.params.config_lag)
    }

    fn dispatch(&mut self, from: ReplicaId, message: Message) {
        match message {
            Message::Prepare { ballot, slots } => self.on_prepare(from, ballot, &slots),
            Message::Accept { ballot, entries } => self.on_accept(from, ballot, entries),
            Message::Promise { ballot, entries } => self.on_promise(from, ballot, entries),
            Message::Accepted { ballot, slots } => self.on_accepted(from, ballot, &slots),
            Message::Rejected { ballot, entries } => self.on_rejected(ballot, &entries),
            Message::Decided { entries } => {
                for (slot, value) in entries {
                    self.learn_from_peer(slot, value);
                }
                if self.catchup_deadline.is_some() {
                    if self.next_deliver >= self.highest_applied_peer() {
                        self.catchup_deadline = None;
                    } else if self.next_deliver >= self.catchup_to {
                        // The range asked for is all here and we are still behind: ask for
                        // the next one now, not at the next timeout, so a far-behind replica
                        // catches up at the pace of round trips.
                        self.catchup_deadline = None;
                        self.maybe_catch_up();
                    }
                }
            }
            Message::Heartbeat {
                applied,
                highest_seen,
                ..
            } => self.on_heartbeat(from, applied, highest_seen),
            Message::CatchUp { from: start, to } => self.on_catchup(from, start, to),
            Message::SnapshotNeeded { log_start } => self.on_snapshot_needed(from, log_start),
            Message::RejoinRequest { nonce } => self.on_rejoin_request(from, nonce),
        }
    }

    /// Structural checks on a peer's message, before any state is touched.
    fn well_formed(&self, from: ReplicaId, message: &Message) -> bool {
        let max = self.opts.message_entries_max;
        let within = |s: &Slot| *s < Slot::LIMIT;
        let slots_within = match message {
            Message::Prepare { slots, .. } | Message::Accepted { slots, .. } => {
                slots.len() <= max && slots.iter().all(within)
            }
            Message::Accept { entries, .. } | Message::Decided { entries } => {
                entries.len() <= max && entries.iter().all(|(s, _)| within(s))
            }
            Message::Promise { entries, .. } => {
                entries.len() <= max && entries.iter().all(|e| within(&e.slot))
            }
            Message::Rejected { entries, .. } => {
                entries.len() <= max && entries.iter().all(|(s, _)| within(s))
            }
            Message::CatchUp { from: start, to } => within(start) && within(to),
            Message::Heartbeat {
                applied,
                highest_seen,
                ..
            } => within(applied) && within(highest_seen),
            Message::SnapshotNeeded { log_start } => within(log_start),
            Message::RejoinRequest { .. } => true,
        };
        if !slots_within {
            return false;
        }
        match message {
            Message::Prepare { ballot, slots } => {
                ballot.proposer == from
                    && !ballot.is_reserved()
                    && !slots.is_empty()
                    && slots.len() <= max
            }
            Message::Accept { ballot, entries } => {
                ballot.proposer == from && !entries.is_empty() && entries.len() <= max
            }
            Message::Promise { entries, .. } => entries.len() <= max,
            Message::Accepted { slots, .. } => slots.len() <= max,
            Message::Rejected { entries, .. } => entries.len() <= max,
            Message::Decided { entries } => entries.len() <= max,
            Message::CatchUp { from: start, to } => start <= to,
            Message::Heartbeat { .. }
            | Message::SnapshotNeeded { .. }
            | Message::RejoinRequest { .. } => true,
        }
    }

    fn send(&mut self, to: ReplicaId, message: Message) {
        if to == self.id {
            self.self_inbox.push_back(message);
        } else {
            self.out.messages.push(Envelope {
                from: self.id,
                to,
                message,
            });
        }
    }

    /// Every replica of every known configuration except this one.
    fn peers(&self) -> Vec<ReplicaId> {
        self.core
            .configs
            .all_members()
            .into_iter()
            .filter(|m| *m != self.id)
            .collect()
    }

    fn random_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.rng.next_u64() % bound
        }
    }

    fn fresh_ballot(&mut self, at_least_counter: u32) -> Ballot {
        Ballot {
            counter: at_least_counter.max(1),
            random: self.rng.next_u32(),
            proposer: self.id,
        }
    }

    /// Runs after every input: processes messages to self, flushes batched decisions,
    /// re-evaluates timers and proposals, and checks invariants.
    fn after_input(&mut self) {
        loop {
            while let Some(m) = self.self_inbox.pop_front() {
                self.dispatch(self.id, m);
            }
            self.drive_proposals();
            self.revoke_suspected_owners();
            if self.self_inbox.is_empty() {
                break;
            }
        }
        self.flush_decided();
        self.update_takeover_timer();
        if cfg!(debug_assertions) {
            self.inputs += 1;
            self.check_invariants();
        }
    }

    fn flush_decided(&mut self) {
        if self.decided_out.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.decided_out);
        for chunk in entries.chunks(self.opts.message_entries_max) {
            for peer in self.peers() {
                self.send(
                    peer,
                    Message::Decided {
                        entries: chunk.to_vec(),
                    },
                );
            }
        }
    }

    /// Internal invariants; a failure is a bug in this crate.
    fn check_invariants(&self) {
        assert!(
            self.log_start <= self.next_deliver,
            "invariant: log_start <= next_deliver"
        );
        assert!(
            !self.decided.contains_key(&self.next_deliver),
            "invariant: a decided frontier slot is delivered at once"
        );
        // Walking the whole log on every input makes a debug build quadratic when the log
        // grows (a member partitioned away holds back truncation): past 1,024 entries the walk
        // runs on every 64th input. Runs with short logs (most simulator runs) check always.
        if self.accepted.len() <= 1024 || self.inputs.is_multiple_of(64) {
            for (slot, (ballot, _)) in &self.accepted {
                let promised = self.promised.get(slot).copied();
                assert!(
                    promised >= Some(*ballot),
                    "invariant: accepted ballot <= promise at {slot}"
                );
            }
        }
        for slot in self.attempts.keys() {
            assert!(
                *slot >= self.next_deliver,
                "invariant: no attempt on a delivered slot"
            );
            assert!(
                !self.decided.contains_key(slot),
                "invariant: no attempt on a decided slot"
            );
        }
        if self.proposer_fenced() {
            assert!(
                self.attempts.is_empty(),
                "invariant: a replica below its fence drives no slot"
            );
        }
        for lsn in &self.queue {
            assert!(
                self.proposals.contains_key(lsn),
                "invariant: queued proposals are in the log"
            );
        }
    }
}
