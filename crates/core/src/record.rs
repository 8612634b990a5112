//! What a replica writes to stable storage, and the state it recovers from.
//!
//! The driver appends every [`Record`] of a [`crate::Ready`] to its log and makes it durable
//! before sending that `Ready`'s messages. Recovery folds the surviving records, in order, into
//! a [`DurableState`]; a torn tail only ever loses a suffix, which is safe because nothing that
//! depended on a lost record was sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;
use crate::types::{Ballot, Lsn, Payload, Slot, Value};

/// One durable fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// Proposal log: a client command accepted with this LSN.
    Proposal {
        /// Its LSN.
        lsn: Lsn,
        /// What to order.
        payload: Payload,
    },
    /// Proposal log: this proposal has been delivered; it need not be resubmitted.
    Retired {
        /// Its LSN.
        lsn: Lsn,
    },
    /// Agreement log: promised not to accept below `ballot` in `slot`.
    Promised {
        /// The slot.
        slot: Slot,
        /// The promise.
        ballot: Ballot,
    },
    /// Agreement log: accepted `value` at `ballot` in `slot` (implies a promise of `ballot`).
    Accepted {
        /// The slot.
        slot: Slot,
        /// The ballot.
        ballot: Ballot,
        /// The value.
        value: Value,
    },
    /// Agreement log: decided slots (including the owner's own skips).
    Decided {
        /// Slot and value pairs.
        entries: Vec<(Slot, Value)>,
    },
    /// Weak reservations: every own slot below this has been used or skipped, so the reserved
    /// ballot must never be used below it again.
    OwnNext {
        /// The next own slot.
        slot: Slot,
    },
    /// A snapshot of everything below `snapshot.next_slot`; earlier records are obsolete.
    Snapshot(Arc<Snapshot>),
}

/// Recovered state: the fold of a replica's surviving records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableState {
    /// The newest snapshot, if any.
    pub snapshot: Option<Arc<Snapshot>>,
    /// Highest promise per slot (from `Promised` and `Accepted`).
    pub promised: BTreeMap<Slot, Ballot>,
    /// Highest-ballot accepted value per slot.
    pub accepted: BTreeMap<Slot, (Ballot, Value)>,
    /// Decided values.
    pub decided: BTreeMap<Slot, Value>,
    /// Proposals not yet retired.
    pub proposals: BTreeMap<Lsn, Payload>,
    /// Highest LSN ever assigned.
    pub last_lsn: Lsn,
    /// Reservation watermark.
    pub own_next: Slot,
}

impl DurableState {
    /// Folds records in log order.
    #[must_use]
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> DurableState {
        let mut s = DurableState::default();
        for r in records {
            s.apply(r);
        }
        s
    }

    /// Folds one record.
    pub fn apply(&mut self, record: &Record) {
        let floor = self.snapshot.as_ref().map_or(Slot(0), |s| s.next_slot);
        match record {
            Record::Proposal { lsn, payload } => {
                self.proposals.insert(*lsn, payload.clone());
                self.last_lsn = self.last_lsn.max(*lsn);
            }
            Record::Retired { lsn } => {
                self.proposals.remove(lsn);
            }
            Record::Promised { slot, ballot } => {
                if *slot >= floor {
                    let p = self.promised.entry(*slot).or_insert(*ballot);
                    *p = (*p).max(*ballot);
                }
            }
            Record::Accepted {
                slot,
                ballot,
                value,
            } => {
                if *slot >= floor {
                    let p = self.promised.entry(*slot).or_insert(*ballot);
                    *p = (*p).max(*ballot);
                    let newer = self.accepted.get(slot).is_none_or(|(b, _)| b <= ballot);
                    if newer {
                        self.accepted.insert(*slot, (*ballot, value.clone()));
                    }
                }
            }
            Record::Decided { entries } => {
                for (slot, value) in entries {
                    if *slot >= floor {
                        self.decided.insert(*slot, value.clone());
                    }
                }
            }
            Record::OwnNext { slot } => self.own_next = self.own_next.max(*slot),
            Record::Snapshot(snap) => {
                if floor < snap.next_slot {
                    let keep = snap.next_slot;
                    self.promised = self.promised.split_off(&keep);
                    self.accepted = self.accepted.split_off(&keep);
                    self.decided = self.decided.split_off(&keep);
                    self.snapshot = Some(snap.clone());
                }
            }
        }
    }
}
