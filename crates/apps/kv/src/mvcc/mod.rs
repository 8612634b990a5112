//! A revisioned keyspace with etcd v3's semantics: the state machine the etcd API (issue 16)
//! will serve, kept apart from the transport so its rules can be tested on their own.
//!
//! What it does: byte keys and values; a store-wide revision that grows by one per write
//! (a `Put`, a `DeleteRange` that deletes something, a `Txn` that writes anything), so every
//! node that applies the same commands in the same order numbers them alike; per key its
//! create and mod revisions, version and lease, as etcd keeps them. `Range` reads at the
//! current revision or an earlier one; `Txn` compares, then runs one branch, all at one
//! revision, its reads seeing its own writes; `Compact` forgets history. Every change is kept
//! as an [`Event`] (with the value it replaced) until compacted: a read at an earlier
//! revision undoes the newer events, and a watch replays them.
//!
//! Leases ([`Lease`], [`Mvcc::grant`]) are agreed state too: granted, renewed, revoked (deleting their keys at
//! one revision) and expired by commands; a put must name an existing lease.
//!
//! [`Watchers`] keeps what each of a node's watches is owed, from applied writes or from the
//! history, in revision order, every buffer bounded.
//!
//! What it does not do (yet): time (the node's timers propose expiries), and the wire
//! protocol.
//!
//! Bounds: history is kept for at most [`Mvcc::history_max`] revisions (the oldest compacted
//! as new ones arrive, the same way on every node: it depends only on the revision), a
//! transaction holds at most [`TXN_OPS_MAX`] operations (comparisons, or operations of one
//! branch; a nested transaction spends its parent's budget, as in etcd), nested at most
//! [`TXN_DEPTH_MAX`] deep.

mod lease;
mod range;
mod txn;
mod watch;

use std::sync::Arc;

use bytes::Bytes;
use imbl::{OrdMap, Vector};
use serde::{Deserialize, Serialize};

use crate::cautious;

pub use lease::Lease;
pub use range::{KeyRange, RangeRequest, RangeResponse, SortOrder, SortTarget};
pub use txn::{Compare, CompareResult, CompareTarget, DeleteRequest, Op, OpResponse, PutRequest};
pub use watch::{Cancelled, WatchId, WatchSpec, Watchers};

/// Operations allowed in one branch of a transaction (etcd's default `--max-txn-ops`).
pub const TXN_OPS_MAX: usize = 128;
/// How deep transactions may nest.
pub const TXN_DEPTH_MAX: usize = 32;
/// Revisions of history kept by default before the oldest are compacted.
pub const HISTORY_MAX_DEFAULT: i64 = 100_000;

/// A store-wide revision (etcd's `revision`, an `int64` on the wire). Revision 1 is the empty
/// store, as in etcd; each write makes the next.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Revision(pub i64);

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A key's current value and its bookkeeping (etcd's `mvccpb.KeyValue`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key.
    pub key: Bytes,
    /// Revision of the write that created the key (since it was last deleted).
    pub create_revision: i64,
    /// Revision of the last write to it.
    pub mod_revision: i64,
    /// Writes since creation: 1 when created.
    pub version: i64,
    /// The value.
    pub value: Bytes,
    /// The lease the key is attached to (0: none).
    pub lease: i64,
}

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The key was written.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change to one key (etcd's `mvccpb.Event`, with the value it replaced).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// After a put, the key as written; after a delete, the key and the revision of the
    /// delete only (as etcd sends it).
    pub kv: KeyValue,
    /// The key before the change, if it existed.
    pub prev_kv: Option<KeyValue>,
}

/// Why an operation was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MvccError {
    /// A read or a compaction below the compacted revision.
    #[error("mvcc: required revision has been compacted (compacted at {0})")]
    Compacted(Revision),
    /// A read or a compaction above the current revision.
    #[error("mvcc: required revision is a future revision")]
    FutureRevision,
    /// `ignore_value` or `ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// An empty key.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// A value given with `ignore_value`.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// A lease given with `ignore_lease`.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// A transaction writes one key twice, or puts a key it also deletes.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// A transaction over the budget of [`TXN_OPS_MAX`] operations.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// A put names a lease that does not exist, or a lease operation one that does not.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A grant of an id already granted.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// Transactions nested more than [`TXN_DEPTH_MAX`] deep.
    #[error("etcdserver: transactions nested too deep")]
    TooDeep,
}

/// The changes one write made, at one revision, in order.
pub type Changes = Arc<[Event]>;

/// The keyspace. Persistent collections: a clone (a snapshot) is O(1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mvcc {
    /// Live keys, as of the current revision.
    #[serde(deserialize_with = "cautious::ord_map")]
    kvs: OrdMap<Bytes, KeyValue>,
    /// The current revision.
    revision: Revision,
    /// History before this revision is gone.
    compacted: Revision,
    /// The changes of every revision above `compacted`, oldest first.
    #[serde(deserialize_with = "cautious::vector")]
    history: Vector<(Revision, Changes)>,
    /// How many revisions of history to keep.
    history_max: i64,
    /// Leases, by id.
    #[serde(deserialize_with = "cautious::ord_map")]
    leases: OrdMap<i64, Lease>,
}

impl Default for Mvcc {
    fn default() -> Mvcc {
        Mvcc::new(HISTORY_MAX_DEFAULT)
    }
}

impl Mvcc {
    /// An empty keyspace at revision 1 that keeps `history_max` revisions of history (at
    /// least 1).
    #[must_use]
    pub fn new(history_max: i64) -> Mvcc {
        Mvcc {
            kvs: OrdMap::new(),
            revision: Revision(1),
            compacted: Revision(0),
            history: Vector::new(),
            history_max: history_max.max(1),
            leases: OrdMap::new(),
        }
    }

    /// The current revision.
    #[must_use]
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The compacted revision: reads below it are refused (0 if never compacted).
    #[must_use]
    pub fn compacted(&self) -> Revision {
        self.compacted
    }

    /// How many revisions of history are kept.
    #[must_use]
    pub fn history_max(&self) -> i64 {
        self.history_max
    }

    /// Live keys now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.kvs.len()
    }

    /// No live key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.kvs.is_empty()
    }

    /// The key's current value, if it exists.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<&KeyValue> {
        self.kvs.get(key)
    }

    /// Applies `op`: the response, and the revision after it. A refused operation changes
    /// nothing.
    ///
    /// # Errors
    /// [`MvccError`]: why it was refused.
    pub fn apply(&mut self, op: &Op) -> Result<(OpResponse, Revision), MvccError> {
        txn::check(op)?;
        let mut writer = txn::Writer::new(self);
        writer.check_path(op)?;
        let response = writer.run(op)?;
        let (kvs, leases, changes) = writer.finish();
        self.commit(kvs, leases, changes);
        Ok((response, self.revision))
    }

    /// Takes a write's result: the next revision, if it changed anything.
    fn commit(
        &mut self,
        kvs: OrdMap<Bytes, KeyValue>,
        leases: OrdMap<i64, Lease>,
        changes: Vec<Event>,
    ) {
        self.leases = leases;
        if changes.is_empty() {
            return;
        }
        self.kvs = kvs;
        self.revision = Revision(self.revision.0 + 1);
        self.history
            .push_back((self.revision, Arc::from(changes.into_boxed_slice())));
        let floor = self.revision.0 - self.history_max;
        if floor > self.compacted.0 {
            self.compact_to(Revision(floor));
        }
    }

    /// Forgets the history below `at` (etcd's `Compact`): reads at earlier revisions and
    /// watches from them are refused from now on.
    ///
    /// # Errors
    /// [`MvccError::Compacted`] if `at` is not above the compacted revision,
    /// [`MvccError::FutureRevision`] if it is above the current one.
    pub fn compact(&mut self, at: Revision) -> Result<(), MvccError> {
        if at <= self.compacted {
            return Err(MvccError::Compacted(self.compacted));
        }
        if at > self.revision {
            return Err(MvccError::FutureRevision);
        }
        self.compact_to(at);
        Ok(())
    }

    fn compact_to(&mut self, at: Revision) {
        // A read at `at` itself stays possible: keep the changes above it.
        while self.history.front().is_some_and(|(r, _)| *r <= at) {
            self.history.pop_front();
        }
        self.compacted = at;
    }

    /// Every change at `from` or later to a key in `range`, oldest first, with its revision:
    /// what a watch starting at `from` replays.
    ///
    /// # Errors
    /// [`MvccError::Compacted`] if `from` is at or below the compacted revision (etcd cancels
    /// such a watch, naming the compacted revision).
    pub fn events_since(
        &self,
        from: Revision,
        range: &KeyRange,
    ) -> Result<Vec<(Revision, Event)>, MvccError> {
        if from <= self.compacted {
            return Err(MvccError::Compacted(self.compacted));
        }
        let start = self.history.iter().position(|(r, _)| *r >= from);
        let Some(start) = start else {
            return Ok(Vec::new());
        };
        Ok(self
            .history
            .iter()
            .skip(start)
            .flat_map(|(r, changes)| {
                changes
                    .iter()
                    .filter(|e| range.contains(&e.kv.key))
                    .map(move |e| (*r, e.clone()))
            })
            .collect())
    }

    /// The changes of the last write (for a node to hand its watchers), empty if none.
    #[must_use]
    pub fn last_changes(&self) -> Option<(Revision, Changes)> {
        self.history
            .back()
            .filter(|(r, _)| *r == self.revision)
            .cloned()
    }
}
