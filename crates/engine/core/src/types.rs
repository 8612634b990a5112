//! Identifiers, ballots and the values agreed in slots.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::ConfigChange;

/// A point in time, in nanoseconds. The core never reads a clock: every input carries `now`.
///
/// The driver passes wall-clock nanoseconds since the UNIX epoch (follow-the-sun schedules read
/// the time of day from it); the simulator fabricates it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time(pub u64);

impl Time {
    /// `self + nanos`, saturating.
    #[must_use]
    pub fn add_nanos(self, nanos: u64) -> Time {
        Time(self.0.saturating_add(nanos))
    }
    /// Nanoseconds from `earlier` to `self`, zero if `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: Time) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Identifies one replica of a group. Unique for the life of the group (a replaced node gets a
/// new id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId(pub u16);

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// Identifies an agreement group in a cluster (assigned by the catalog, never reused). The
/// core runs one group and never needs it; the node, its storage, transport and applications
/// name groups by it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct GroupId(pub u32);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An agreement number. Each slot is decided by one instance of Paxos; decided slots, in order,
/// are the global sequence, so a slot number *is* the GSN of what is delivered from it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Slot(pub u64);

impl Slot {
    /// Above the highest slot a peer's message or snapshot may name (2^62): beyond any
    /// group's life (146,000 years at a million slots a second), and low enough that no sum
    /// the replica makes of a slot and its parameters overflows. A message naming a slot at or
    /// past it is malformed (fuzzing found `u64::MAX` overflowing `next`).
    pub const LIMIT: Slot = Slot(1 << 62);

    /// The next slot.
    #[must_use]
    pub fn next(self) -> Slot {
        Slot(self.0 + 1)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// Local sequence number: the order in which one proposer accepted its client commands.
/// Starts at 1; consecutive with no gaps.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Lsn(pub u64);

/// Globally unique identity of a proposal: delivery is exactly-once per `ProposalId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProposalId {
    /// The replica whose proposal log holds it.
    pub proposer: ReplicaId,
    /// Its position in that proposal log.
    pub lsn: Lsn,
}

/// A Paxos round number. Ordered by `counter`, then `random`, then `proposer` (derive order),
/// which makes ballots unique per proposer and fair: two proposers that pick the same counter
/// are ordered by a fresh random draw, not always in favour of the larger id.
///
/// `counter == 0` is reserved for a slot's owner under weak reservations: the owner's ballot
/// `(0, 0, owner)` is lower than every other ballot, so phase 1 for it is implicitly complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    /// Incremented past every ballot the proposer has seen for the slot.
    pub counter: u32,
    /// Drawn fresh for every attempt.
    pub random: u32,
    /// The replica that owns this ballot; only it may send Prepare or Accept with it.
    pub proposer: ReplicaId,
}

impl Ballot {
    /// The reserved ballot an owner uses on its own slots (no phase 1).
    #[must_use]
    pub fn reserved(owner: ReplicaId) -> Ballot {
        Ballot {
            counter: 0,
            random: 0,
            proposer: owner,
        }
    }
    /// True for an owner's reserved ballot.
    #[must_use]
    pub fn is_reserved(&self) -> bool {
        self.counter == 0
    }
}

/// What a client asked the group to order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// An application command; opaque to the engine.
    Command(Bytes),
    /// A change to the group's own configuration, applied when delivered.
    Config(ConfigChange),
}

impl Payload {
    /// Approximate encoded size, used for batch limits.
    #[must_use]
    pub fn size_bytes(&self) -> usize {
        match self {
            Payload::Command(b) => b.len() + 8,
            Payload::Config(_) => 64,
        }
    }
}

/// One entry of a proposer's proposal log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Exactly-once key.
    pub id: ProposalId,
    /// What to order.
    pub payload: Payload,
}

/// A batch of proposals from one proposer, agreed in one slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The proposer's clock when it cut the batch. Agreed time (the maximum seen in the log so
    /// far) is derived from these, so every replica sees the same time at the same GSN.
    pub time: Time,
    /// The proposals, in the proposer's LSN order.
    pub proposals: Vec<Proposal>,
}

/// The value of a slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// Nothing: an owner skipped its slot or a taker-over filled a silent owner's slot.
    Noop,
    /// Client proposals. Shared because one decided value is sent to every peer.
    Batch(Arc<Batch>),
}

impl Value {
    /// Approximate encoded size.
    #[must_use]
    pub fn size_bytes(&self) -> usize {
        match self {
            Value::Noop => 1,
            Value::Batch(b) => {
                16 + b
                    .proposals
                    .iter()
                    .map(|p| p.payload.size_bytes() + 12)
                    .sum::<usize>()
            }
        }
    }
}
