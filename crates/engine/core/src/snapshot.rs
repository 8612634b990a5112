//! Snapshots: the engine's own state at a slot boundary, bundled with the application's.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::ConfigHistory;
use crate::types::{Lsn, Proposal, ReplicaId, Slot, Time};

/// Which LSNs of one proposer have been delivered: everything up to `contiguous`, plus a
/// sparse set above it (proposals agreed out of LSN order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredSet {
    /// Every LSN at or below this has been delivered.
    pub contiguous: Lsn,
    /// Delivered LSNs above `contiguous`.
    pub sparse: BTreeSet<Lsn>,
}

impl DeliveredSet {
    /// True if `lsn` was delivered.
    #[must_use]
    pub fn contains(&self, lsn: Lsn) -> bool {
        lsn <= self.contiguous || self.sparse.contains(&lsn)
    }

    /// Marks `lsn` delivered; false if it already was.
    pub fn insert(&mut self, lsn: Lsn) -> bool {
        if self.contains(lsn) {
            return false;
        }
        self.sparse.insert(lsn);
        while self.sparse.remove(&Lsn(self.contiguous.0 + 1)) {
            self.contiguous = Lsn(self.contiguous.0 + 1);
        }
        true
    }
}

/// The engine's part of a snapshot: everything delivery depends on besides the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreState {
    /// Configurations governing slots from the snapshot point on.
    pub configs: ConfigHistory,
    /// Exactly-once state per proposer.
    pub delivered: BTreeMap<ReplicaId, DeliveredSet>,
    /// Agreed time: the largest batch time delivered so far.
    pub agreed_time: Time,
    /// Preserve-local-order mode: proposals agreed ahead of an earlier LSN, held back.
    pub held: BTreeMap<ReplicaId, BTreeMap<Lsn, Proposal>>,
    /// The latest delivered [`crate::ConfigChange::Rejoin`] of each member that lost its
    /// state: where it was delivered, hence where the member's fence lies.
    pub rejoined: BTreeMap<ReplicaId, Rejoined>,
}

/// A member's rejoin, as delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejoined {
    /// The nonce the member chose.
    pub nonce: u64,
    /// The slot that delivered it.
    pub at: Slot,
    /// The member's fence: it votes and proposes only in slots from here on. Every replica
    /// also closes the member's old LSN sequence when it delivers the slot before this one.
    pub fence: Slot,
}

/// Everything below `next_slot`: what a lagging replica installs instead of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The first slot not covered.
    pub next_slot: Slot,
    /// Engine state at that point.
    pub core: CoreState,
    /// Application state at that point, opaque to the engine.
    pub app: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_set_compacts_when_gaps_fill() {
        let mut d = DeliveredSet::default();
        assert!(d.insert(Lsn(2)));
        assert!(d.insert(Lsn(3)));
        assert_eq!(d.contiguous, Lsn(0));
        assert!(!d.insert(Lsn(3)));
        assert!(d.insert(Lsn(1)));
        assert_eq!(d.contiguous, Lsn(3));
        assert!(d.sparse.is_empty());
        assert!(d.contains(Lsn(2)) && !d.contains(Lsn(4)));
    }
}
