//! Snapshots: the engine's own state at a slot boundary, bundled with the application's.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigHistory, GroupParams, HistoryError};
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
        // (The last LSN has no successor: a peer may name one, see `ProposeError::Exhausted`.)
        while let Some(next) = self.contiguous.0.checked_add(1)
            && self.sparse.remove(&Lsn(next))
        {
            self.contiguous = Lsn(next);
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

/// Why a snapshot received from a peer is refused ([`Snapshot::check`]): its engine state is
/// not one a replica could have made. Peers are authenticated nodes, so this guards against a
/// bug or a corrupt transfer, never routine: installing such a state would stop the group on
/// this node (a panic, or a fence that marks a trillion slots in use).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A snapshot at or past [`Slot::LIMIT`].
    #[error("a snapshot at slot {0}, past the highest slot a group can reach")]
    TooFar(Slot),
    /// The configuration history.
    #[error("{0}")]
    History(#[from] HistoryError),
    /// A rejoin recorded at or past the snapshot's slot, or with a fence further past its
    /// delivery than a rejoin puts one.
    #[error(
        "{member}'s rejoin, delivered at {at} with its fence at {fence}, is impossible at slot {next_slot}"
    )]
    Rejoin {
        /// The member.
        member: ReplicaId,
        /// Where it says the rejoin was delivered.
        at: Slot,
        /// The fence it names.
        fence: Slot,
        /// The snapshot's first undelivered slot.
        next_slot: Slot,
    },
    /// A delivered set whose sparse part is not above its contiguous part.
    #[error("{0}'s delivered set lists an LSN at or below its contiguous prefix")]
    Delivered(ReplicaId),
    /// A proposal held back under another proposer or LSN than its own, or already delivered.
    #[error(
        "a proposal held back under {proposer} at {lsn:?} is not that proposer's undelivered proposal of that LSN"
    )]
    Held {
        /// The proposer it is filed under.
        proposer: ReplicaId,
        /// The LSN it is filed under.
        lsn: Lsn,
    },
}

impl Snapshot {
    /// Checks the engine's part against what a replica of a group with `params` could have
    /// made (its configuration history, the rejoins' fences, the delivered and held-back
    /// proposals). The application's part is the application's to check.
    ///
    /// # Errors
    /// The first inconsistency found.
    pub fn check(&self, params: &GroupParams) -> Result<(), SnapshotError> {
        let next_slot = self.next_slot;
        if next_slot >= Slot::LIMIT {
            return Err(SnapshotError::TooFar(next_slot));
        }
        let core = &self.core;
        core.configs.check(next_slot, params.config_lag)?;
        // A rejoin delivered at `at` fences its member at `at` plus the vote reach.
        let reach = 4 * params.config_lag;
        for (member, r) in &core.rejoined {
            if r.at >= next_slot || r.fence.0 > r.at.0.saturating_add(reach) {
                return Err(SnapshotError::Rejoin {
                    member: *member,
                    at: r.at,
                    fence: r.fence,
                    next_slot,
                });
            }
        }
        for (proposer, d) in &core.delivered {
            if d.sparse.first().is_some_and(|l| *l <= d.contiguous) {
                return Err(SnapshotError::Delivered(*proposer));
            }
        }
        for (proposer, held) in &core.held {
            for (lsn, p) in held {
                let delivered = core
                    .delivered
                    .get(proposer)
                    .is_some_and(|d| d.contains(*lsn));
                if p.id.proposer != *proposer || p.id.lsn != *lsn || delivered {
                    return Err(SnapshotError::Held {
                        proposer: *proposer,
                        lsn: *lsn,
                    });
                }
            }
        }
        Ok(())
    }
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
