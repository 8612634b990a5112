//! Messages between replicas of one group.
//!
//! Every phase message carries a list of slots so that one message can drive many slots (a
//! batch of own slots, a range taken over from a silent owner). Receivers handle entries one
//! by one; an entry that fails validation drops the whole message, counted.

use serde::{Deserialize, Serialize};

use crate::types::{Ballot, ReplicaId, Slot, Value};

/// A message with its addressing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Sender.
    pub from: ReplicaId,
    /// Receiver.
    pub to: ReplicaId,
    /// Body.
    pub message: Message,
}

/// What an acceptor already accepted in a slot, reported in a promise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromiseEntry {
    /// The slot.
    pub slot: Slot,
    /// The highest-ballot value accepted there, if any.
    pub accepted: Option<(Ballot, Value)>,
}

/// The protocol's messages (Paxos phase 1a/1b/2a/2b, learning, liveness and catch-up).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Phase 1a: promise not to accept below `ballot` in `slots`, and report accepted values.
    Prepare {
        /// The proposer's ballot (its `proposer` must be the sender).
        ballot: Ballot,
        /// Slots to prepare.
        slots: Vec<Slot>,
    },
    /// Phase 1b.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// One entry per promised slot.
        entries: Vec<PromiseEntry>,
    },
    /// Phase 2a: accept these values at `ballot`.
    Accept {
        /// The proposer's ballot (its `proposer` must be the sender).
        ballot: Ballot,
        /// Slot and value pairs.
        entries: Vec<(Slot, Value)>,
    },
    /// Phase 2b.
    Accepted {
        /// The ballot accepted.
        ballot: Ballot,
        /// Slots accepted at it.
        slots: Vec<Slot>,
    },
    /// A Prepare or Accept was refused because of a higher promise.
    Rejected {
        /// The ballot that was refused.
        ballot: Ballot,
        /// Per slot, the higher ballot the acceptor has promised.
        entries: Vec<(Slot, Ballot)>,
    },
    /// These slots are decided. Also how an owner announces skipped slots (a skip is a decided
    /// no-op: only the owner could have proposed anything else there).
    Decided {
        /// Slot and value pairs.
        entries: Vec<(Slot, Value)>,
    },
    /// Periodic liveness and progress report.
    Heartbeat {
        /// Slots below this are delivered (applied) by the sender.
        applied: Slot,
        /// Highest slot the sender knows to be in use.
        highest_seen: Slot,
        /// The sender has nothing to do and sends no more heartbeats until it wakes.
        quiet: bool,
    },
    /// Ask for decided slots in `from..to`.
    CatchUp {
        /// First slot wanted.
        from: Slot,
        /// One past the last slot wanted.
        to: Slot,
    },
    /// The sender no longer has the slots asked for: fetch a snapshot.
    SnapshotNeeded {
        /// The sender's log starts here.
        log_start: Slot,
    },
    /// The sender lost its durable state and asks the receiver to propose
    /// [`crate::ConfigChange::Rejoin`] for it (it may not propose anything itself).
    RejoinRequest {
        /// The sender's rejoin nonce.
        nonce: u64,
    },
}

impl Message {
    /// Short name for counters and traces.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Prepare { .. } => "prepare",
            Message::Promise { .. } => "promise",
            Message::Accept { .. } => "accept",
            Message::Accepted { .. } => "accepted",
            Message::Rejected { .. } => "rejected",
            Message::Decided { .. } => "decided",
            Message::Heartbeat { .. } => "heartbeat",
            Message::CatchUp { .. } => "catchup",
            Message::SnapshotNeeded { .. } => "snapshot_needed",
            Message::RejoinRequest { .. } => "rejoin_request",
        }
    }
}
