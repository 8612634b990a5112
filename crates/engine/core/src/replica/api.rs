//! The replica's public interface types: options, the `Ready` output, errors and counters.

use crate::config::{Config, ConfigError, GroupParams};
use crate::message::Envelope;
use crate::record::Record;
use crate::types::{Payload, Proposal, ProposalId, ReplicaId, Slot, Time};

/// Tunables of one replica. Durations are in nanoseconds.
#[derive(Clone, Debug)]
pub struct Options {
    /// This replica.
    pub id: ReplicaId,
    /// Group-wide fixed settings (must be equal on all replicas).
    pub params: GroupParams,
    /// The configuration at slot 0.
    pub genesis: Config,
    /// Seed of the replica's random source (ballot randomness, backoff, jitter).
    pub seed: u64,
    /// Own slots (or contended slots) in flight at once.
    pub window: usize,
    /// Commands per batch.
    pub batch_commands_max: usize,
    /// Bytes per batch (a larger single command is refused at `propose`).
    pub batch_bytes_max: usize,
    /// Proposals accepted but not yet delivered; beyond this `propose` is refused.
    pub pending_proposals_max: usize,
    /// Interval between heartbeats.
    pub heartbeat_interval_ns: u64,
    /// How long an attempt waits for answers before re-sending its current phase (lost
    /// messages). Should exceed a round trip.
    pub retransmit_interval_ns: u64,
    /// How long the delivery frontier may stall before a replica takes over its slot
    /// (multiplied by the replica's rank after the owner, plus jitter).
    pub takeover_timeout_ns: u64,
    /// A peer not heard from for this long counts as unreachable for minority detection.
    pub liveness_timeout_ns: u64,
    /// First backoff after a pre-emption; doubles per consecutive pre-emption.
    pub backoff_base_ns: u64,
    /// Backoff cap.
    pub backoff_max_ns: u64,
    /// How long to wait for a catch-up answer before asking again.
    pub catchup_timeout_ns: u64,
    /// Decided slots per catch-up answer.
    pub catchup_slots_max: usize,
    /// How far past the highest slot in use a taker-over revokes a silent owner's slots.
    pub revoke_lookahead: u64,
    /// Entries per protocol message; a peer's message with more is dropped.
    pub message_entries_max: usize,
    /// Stop heartbeats and timers while the group has nothing to do (see `quiet.rs`). A quiet
    /// replica hears nothing from its peers, so a driver that turns this on tells it what its
    /// node hears from theirs ([`crate::Replica::heard_from`]) before each proposal and
    /// message: without that, a proposal to a replica quiet for longer than the liveness
    /// timeout is refused for want of a quorum, and the group may go quiet again before the
    /// client's next try.
    pub quiesce: bool,
}

impl Options {
    /// Defaults for a LAN cluster with `members`, as replica `id`.
    #[must_use]
    pub fn new(id: ReplicaId, genesis: Config) -> Options {
        Options {
            id,
            params: GroupParams::default(),
            genesis,
            seed: u64::from(id.0),
            window: 16,
            batch_commands_max: 256,
            batch_bytes_max: 1 << 20,
            pending_proposals_max: 100_000,
            heartbeat_interval_ns: 20_000_000,
            retransmit_interval_ns: 40_000_000,
            takeover_timeout_ns: 30_000_000,
            liveness_timeout_ns: 200_000_000,
            backoff_base_ns: 1_000_000,
            backoff_max_ns: 100_000_000,
            catchup_timeout_ns: 100_000_000,
            catchup_slots_max: 512,
            revoke_lookahead: 64,
            message_entries_max: 4096,
            quiesce: true,
        }
    }
}

/// Why a proposal was refused. Nothing was written; the caller may retry.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// This replica has not heard from a quorum recently: it is in a minority and refuses
    /// writes (reads of what it has applied are still served).
    #[error("no quorum reachable: this replica is in a minority and refuses writes")]
    NoQuorum,
    /// Too many proposals are pending; the payload is handed back.
    #[error("overloaded: {0} proposals pending")]
    Overloaded(usize, Payload),
    /// The command is larger than a batch may be.
    #[error("command of {size} bytes exceeds the batch limit of {max} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// This replica is not a member of the group's current configuration.
    #[error("this replica is not a member of the group")]
    NotMember,
    /// This replica lost its state and is rejoining: it proposes nothing until it has caught
    /// up past its fence (see [`crate::Replica::rejoin_status`]).
    #[error("this replica is rejoining after losing its state; it proposes again once caught up")]
    Rejoining,
    /// A configuration change that would leave the group unsafe.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Every LSN of this replica's proposal sequence is used: never in practice (2^64
    /// proposals), only when a peer's message named one of this replica's proposals at the
    /// last LSN (found by fuzzing: `fuzz/regressions/frame/own-lsn-max`).
    #[error("this replica's proposal sequence is exhausted")]
    Exhausted,
}

/// The outcome of one delivered configuration change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigOutcome {
    /// The proposal that carried it.
    pub id: ProposalId,
    /// The slot from which the new configuration governs, or why it was refused.
    pub result: Result<Slot, ConfigError>,
}

/// What one slot delivers, in GSN order. Every slot is delivered exactly once, no-ops as
/// empty deliveries, so the application can label what it serves with a GSN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The slot, which is the global sequence number.
    pub gsn: Slot,
    /// Agreed time at this slot.
    pub time: Time,
    /// Proposals to apply, each exactly once across the group's history.
    pub proposals: Vec<Proposal>,
    /// Outcomes of configuration changes among them.
    pub config: Vec<ConfigOutcome>,
}

/// The core cannot serve a lagging replica from its log: fetch a snapshot from `from` and
/// call [`crate::Replica::install_snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// A peer that has one.
    pub from: ReplicaId,
    /// The snapshot must cover at least the slots below this.
    pub min_next_slot: Slot,
}

/// Work for the driver. See the module docs for the order in which to do it.
#[derive(Debug, Default)]
pub struct Ready {
    /// Sequence number to pass to [`crate::Replica::handle_persisted`].
    pub seq: u64,
    /// Records to make durable before anything else.
    pub persist: Vec<Record>,
    /// Messages to send once `persist` is durable.
    pub messages: Vec<Envelope>,
    /// Slots to apply, in GSN order: the first [`Self::early_deliveries`] at once, the rest
    /// once `persist` is durable.
    pub deliveries: Vec<Delivery>,
    /// How many of `deliveries` (a prefix) the driver may apply and answer *before* `persist`
    /// is durable, provided it has applied every delivery of earlier readies: each of their
    /// decisions is already durable elsewhere (on a quorum of acceptors, or at the peer that
    /// announced it), so a crash cannot change it. The others rest on a record of this or an
    /// earlier ready (our own skip, or a quorum that counted our own vote) and wait for it.
    /// This takes the decision's own fsync off a write's critical path.
    pub early_deliveries: usize,
    /// Set when this replica needs a snapshot to catch up.
    pub snapshot_needed: Option<SnapshotRequest>,
    /// Proposals this replica will no longer drive (it was removed from the group). They may
    /// or may not have been delivered.
    pub abandoned: Vec<ProposalId>,
    /// Our proposals that an installed snapshot shows delivered: their effects are in the
    /// snapshot's state, so no [`Delivery`] will carry them here and their outputs are not
    /// known. A driver tells their clients so, or they would wait for ever.
    pub delivered_in_snapshot: Vec<ProposalId>,
}

impl Ready {
    pub(super) fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.messages.is_empty()
            && self.deliveries.is_empty()
            && self.snapshot_needed.is_none()
            && self.abandoned.is_empty()
            && self.delivered_in_snapshot.is_empty()
    }
}

/// Counters, for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Proposals accepted by `propose`.
    pub proposals: u64,
    /// Proposals refused by `propose`.
    pub proposals_refused: u64,
    /// Slots this replica started driving with its own batch.
    pub batches: u64,
    /// Slots decided (learned) here.
    pub decided: u64,
    /// Own slots skipped (decided no-op by their owner).
    pub skipped: u64,
    /// Attempts aborted because an acceptor had promised a higher ballot.
    pub preemptions: u64,
    /// Backoffs started.
    pub backoffs: u64,
    /// Slots this replica tried to take over (phase 1 on another owner's or a stalled slot).
    pub takeovers: u64,
    /// Peers suspected at once because the transport lost their connection
    /// ([`crate::Replica::handle_peer_lost`]).
    pub peers_lost: u64,
    /// Peer messages dropped as malformed or from outside the configuration.
    pub dropped_messages: u64,
    /// Decisions from peers that contradicted a known decision (a safety bug somewhere).
    pub conflicting_decisions: u64,
    /// Catch-up requests sent.
    pub catchup_requests: u64,
    /// Snapshots installed.
    pub snapshots_installed: u64,
    /// Snapshots from peers refused because their engine state is impossible
    /// ([`crate::Replica::check_snapshot`]).
    pub snapshots_refused: u64,
    /// Prepares and accepts this replica left unanswered because they fell below its fence.
    pub fenced_votes: u64,
    /// Rejoin requests of peers this replica proposed.
    pub rejoins_proposed: u64,
    /// Times this replica went quiet (nothing to do: no heartbeats, no timer).
    pub quiesced: u64,
    /// Times it woke from quiet.
    pub woken: u64,
}

/// Where a replica that lost its state stands in rejoining its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejoinStatus {
    /// Its rejoin request is not yet delivered here: it casts no vote anywhere.
    Waiting,
    /// Its rejoin was delivered; it votes from `fence` on and proposes once it has delivered
    /// everything below `fence`.
    CatchingUp {
        /// The fence slot.
        fence: Slot,
    },
}
