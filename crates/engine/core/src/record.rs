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
    /// This replica lost its earlier state (the driver wiped a corrupt log and wrote this
    /// record in its place, in one commit). It must not vote or propose until the rejoin
    /// carrying `nonce` is delivered, and then only above the fence it sets.
    Fence {
        /// Identifies this replica's rejoin request.
        nonce: u64,
    },
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
    /// Set if this replica lost its state once and must rejoin (the latest `Fence` record).
    pub fence: Option<u64>,
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

    /// The fewest records that fold back into this state (for compacting a log): the
    /// snapshot, then promises, accepted values, decisions, the proposal log and watermarks.
    #[must_use]
    pub fn to_records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        if let Some(s) = &self.snapshot {
            out.push(Record::Snapshot(s.clone()));
        }
        for (slot, ballot) in &self.promised {
            if self.accepted.get(slot).is_none_or(|(b, _)| b != ballot) {
                out.push(Record::Promised {
                    slot: *slot,
                    ballot: *ballot,
                });
            }
        }
        for (slot, (ballot, value)) in &self.accepted {
            out.push(Record::Accepted {
                slot: *slot,
                ballot: *ballot,
                value: value.clone(),
            });
        }
        if !self.decided.is_empty() {
            let entries = self.decided.iter().map(|(s, v)| (*s, v.clone())).collect();
            out.push(Record::Decided { entries });
        }
        for (lsn, payload) in &self.proposals {
            out.push(Record::Proposal {
                lsn: *lsn,
                payload: payload.clone(),
            });
        }
        if !self.proposals.contains_key(&self.last_lsn) && self.last_lsn > Lsn(0) {
            out.push(Record::Retired { lsn: self.last_lsn });
        }
        if self.own_next > Slot(0) {
            out.push(Record::OwnNext {
                slot: self.own_next,
            });
        }
        if let Some(nonce) = self.fence {
            out.push(Record::Fence { nonce });
        }
        out
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
                // A retired LSN was assigned: never hand it out again.
                self.last_lsn = self.last_lsn.max(*lsn);
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
            Record::Fence { nonce } => self.fence = Some(*nonce),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::types::{Batch, ReplicaId, Time};

    fn record() -> impl Strategy<Value = Record> {
        let ballot = (0u32..4, 0u32..3, 0u16..3).prop_map(|(c, r, p)| Ballot {
            counter: c,
            random: r,
            proposer: ReplicaId(p),
        });
        let value = prop_oneof![
            Just(Value::Noop),
            (0u64..9).prop_map(|t| Value::Batch(Arc::new(Batch {
                time: Time(t),
                proposals: vec![]
            })))
        ];
        prop_oneof![
            (1u64..8).prop_map(|l| Record::Proposal {
                lsn: Lsn(l),
                payload: Payload::Command(bytes::Bytes::from(vec![l as u8]))
            }),
            (1u64..8).prop_map(|l| Record::Retired { lsn: Lsn(l) }),
            (0u64..12, ballot.clone()).prop_map(|(s, ballot)| Record::Promised {
                slot: Slot(s),
                ballot
            }),
            (0u64..12, ballot, value.clone()).prop_map(|(s, ballot, value)| Record::Accepted {
                slot: Slot(s),
                ballot,
                value
            }),
            proptest::collection::vec((0u64..12, value), 1..3).prop_map(|es| Record::Decided {
                entries: es.into_iter().map(|(s, v)| (Slot(s), v)).collect()
            }),
            (0u64..12).prop_map(|s| Record::OwnNext { slot: Slot(s) }),
            (0u64..3).prop_map(|nonce| Record::Fence { nonce }),
        ]
    }

    proptest! {
        /// Compaction rewrites a log as `to_records()`; that must fold back to the same state.
        #[test]
        fn to_records_folds_back_to_the_same_state(records in proptest::collection::vec(record(), 0..40)) {
            let state = DurableState::from_records(&records);
            let again = DurableState::from_records(&state.to_records());
            prop_assert_eq!(again, state);
        }
    }
}
