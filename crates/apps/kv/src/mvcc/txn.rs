//! Writes: `Put`, `DeleteRange` and `Txn` (compare, then one branch), all the changes of one
//! operation at one revision, and the checks that refuse a bad one before anything changes.

use std::cmp::Ordering;

use bytes::Bytes;
use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::{
    Event, EventKind, KeyRange, KeyValue, Lease, Mvcc, MvccError, RangeRequest, RangeResponse,
    Revision, TXN_DEPTH_MAX, TXN_OPS_MAX,
};

/// A write (etcd's `PutRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    /// The key.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
    /// The lease to attach the key to (0: none).
    pub lease: i64,
    /// Return the key as it was.
    pub prev_kv: bool,
    /// Keep the current value (the key must exist).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist).
    pub ignore_lease: bool,
}

/// A delete (etcd's `DeleteRangeRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    /// The keys.
    pub range: KeyRange,
    /// Return the keys as they were.
    pub prev_kv: bool,
}

/// What a comparison looks at, and the value it compares with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    /// The version (0: absent).
    Version(i64),
    /// The create revision (0: absent).
    Create(i64),
    /// The mod revision (0: absent).
    Mod(i64),
    /// The value (an absent key fails any comparison of its value).
    Value(Bytes),
    /// The lease (0: none or absent).
    Lease(i64),
}

/// How the key's field must relate to the given value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    /// Equal.
    Equal,
    /// The key's is greater.
    Greater,
    /// The key's is less.
    Less,
    /// Not equal.
    NotEqual,
}

/// One condition of a transaction (etcd's `Compare`): every key in the range must meet it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    /// The keys.
    pub range: KeyRange,
    /// The field and the value.
    pub target: CompareTarget,
    /// The relation.
    pub result: CompareResult,
}

/// An operation (etcd's `RequestOp`, and the top-level requests).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A read.
    Range(RangeRequest),
    /// A write.
    Put(PutRequest),
    /// A delete.
    Delete(DeleteRequest),
    /// A transaction: if every comparison holds, `success`, else `failure`.
    Txn {
        /// The conditions.
        compare: Vec<Compare>,
        /// Run if all hold.
        success: Vec<Op>,
        /// Run otherwise.
        failure: Vec<Op>,
    },
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResponse {
    /// A read's keys.
    Range(RangeResponse),
    /// A write: the key as it was, if asked for and it existed.
    Put {
        /// The previous key.
        prev_kv: Option<KeyValue>,
    },
    /// A delete: how many keys went, and (if asked for) what they were.
    Delete {
        /// Keys deleted.
        deleted: i64,
        /// The keys as they were.
        prev_kvs: Vec<KeyValue>,
    },
    /// A transaction: which branch ran, and its operations' responses.
    Txn {
        /// Whether every comparison held.
        succeeded: bool,
        /// The responses of the branch that ran.
        responses: Vec<OpResponse>,
    },
}

/// Refuses what etcd refuses before running anything, in etcd's order (clients see the same
/// error): each operation's own fields (empty keys, a value or lease given with
/// `ignore_value`/`ignore_lease`), transactions larger than the budget of [`TXN_OPS_MAX`]
/// operations (a nested transaction spends its parent's), nesting deeper than
/// [`TXN_DEPTH_MAX`]; then a branch that writes a key twice.
pub(super) fn check(op: &Op) -> Result<(), MvccError> {
    check_fields(op, TXN_OPS_MAX, 0)?;
    if let Op::Txn {
        success, failure, ..
    } = op
    {
        writes(success)?;
        writes(failure)?;
    }
    Ok(())
}

fn check_fields(op: &Op, budget: usize, depth: usize) -> Result<(), MvccError> {
    match op {
        Op::Range(r) if r.range.key.is_empty() => Err(MvccError::EmptyKey),
        Op::Delete(d) if d.range.key.is_empty() => Err(MvccError::EmptyKey),
        Op::Put(p) if p.key.is_empty() => Err(MvccError::EmptyKey),
        Op::Put(p) if p.ignore_value && !p.value.is_empty() => Err(MvccError::ValueProvided),
        Op::Put(p) if p.ignore_lease && p.lease != 0 => Err(MvccError::LeaseProvided),
        Op::Range(_) | Op::Put(_) | Op::Delete(_) => Ok(()),
        Op::Txn {
            compare,
            success,
            failure,
        } => {
            if depth >= TXN_DEPTH_MAX {
                return Err(MvccError::TooDeep);
            }
            let ops = compare.len().max(success.len()).max(failure.len());
            if ops > budget {
                return Err(MvccError::TooManyOps);
            }
            for op in success.iter().chain(failure) {
                check_fields(op, budget - ops, depth + 1)?;
            }
            Ok(())
        }
    }
}

/// The keys a branch may put and the ranges it may delete, refusing a branch that writes a key
/// twice, as etcd's `checkIntervals` does: this level's puts must be distinct from each other,
/// from any nested transaction's, and outside every delete of this level or a nested one; a
/// nested transaction's puts must be outside the deletes of this level and of the nested
/// transactions before it. Its two branches exclude each other, so a key put in both counts
/// once, and its own puts and deletes were checked within it.
fn writes(branch: &[Op]) -> Result<(Vec<Bytes>, Vec<KeyRange>), MvccError> {
    let mut deletes: Vec<KeyRange> = branch
        .iter()
        .filter_map(|op| match op {
            Op::Delete(d) => Some(d.range.clone()),
            _ => None,
        })
        .collect();
    let mut puts: Vec<Bytes> = Vec::new();
    // The ranges are taken literally, as etcd's check takes them: `[key, end)`, or the key
    // alone. So a delete of "every key from `key` on" (`end` the byte 0) covers nothing here,
    // and etcd accepts a put next to it; so must we, to answer as it does.
    let deleted = |deletes: &[KeyRange], k: &Bytes| {
        deletes.iter().any(|d| {
            if d.end.is_empty() {
                d.key == *k
            } else {
                d.key <= *k && *k < d.end
            }
        })
    };
    for op in branch {
        let Op::Txn {
            success, failure, ..
        } = op
        else {
            continue;
        };
        let (then_puts, then_deletes) = writes(success)?;
        let (else_puts, else_deletes) = writes(failure)?;
        for k in &then_puts {
            if puts.contains(k) || deleted(&deletes, k) {
                return Err(MvccError::DuplicateKey);
            }
            puts.push(k.clone());
        }
        for k in &else_puts {
            if (puts.contains(k) && !then_puts.contains(k)) || deleted(&deletes, k) {
                return Err(MvccError::DuplicateKey);
            }
            if !puts.contains(k) {
                puts.push(k.clone());
            }
        }
        deletes.extend(then_deletes);
        deletes.extend(else_deletes);
    }
    for op in branch {
        if let Op::Put(p) = op {
            if puts.contains(&p.key) || deleted(&deletes, &p.key) {
                return Err(MvccError::DuplicateKey);
            }
            puts.push(p.key.clone());
        }
    }
    Ok((puts, deletes))
}

/// Runs one operation on a working copy of the live keys (O(1) to take), recording its
/// changes; the store takes the copy only if the whole operation succeeds.
pub(super) struct Writer<'a> {
    store: &'a Mvcc,
    kvs: OrdMap<Bytes, KeyValue>,
    leases: OrdMap<i64, Lease>,
    /// The revision this operation's writes get.
    next: i64,
    changes: Vec<Event>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(store: &'a Mvcc) -> Writer<'a> {
        Writer {
            store,
            kvs: store.kvs.clone(),
            leases: store.leases.clone(),
            next: store.revision.0 + 1,
            changes: Vec::new(),
        }
    }

    /// The live keys and leases after the operation, and its changes (empty: it wrote
    /// nothing).
    pub(super) fn finish(self) -> (OrdMap<Bytes, KeyValue>, OrdMap<i64, Lease>, Vec<Event>) {
        (self.kvs, self.leases, self.changes)
    }

    /// What etcd checks against the keyspace before running a transaction, along the path its
    /// comparisons choose: first every put that keeps the key's value or lease (the key must
    /// exist), then every read at a given revision (not compacted, not in the future).
    pub(super) fn check_path(&self, op: &Op) -> Result<(), MvccError> {
        let keeps_missing_key = |p: &PutRequest| {
            (p.ignore_value || p.ignore_lease) && !self.store.kvs.contains_key(&p.key)
        };
        let no_lease = |p: &PutRequest| p.lease != 0 && !self.store.leases.contains_key(&p.lease);
        // etcd checks a put on its own for its lease first, a transaction's puts for their
        // keys first.
        if let Op::Put(p) = op {
            if no_lease(p) {
                return Err(MvccError::LeaseNotFound);
            }
            if keeps_missing_key(p) {
                return Err(MvccError::KeyNotFound);
            }
        }
        self.walk_path(op, &mut |_, op| match op {
            Op::Put(p) if keeps_missing_key(p) => Err(MvccError::KeyNotFound),
            Op::Put(p) if no_lease(p) => Err(MvccError::LeaseNotFound),
            _ => Ok(()),
        })?;
        self.walk_path(op, &mut |w, op| match op {
            Op::Range(r) if r.revision > 0 => {
                if r.revision > w.store.revision.0 {
                    Err(MvccError::FutureRevision)
                } else if r.revision < w.store.compacted.0 {
                    Err(MvccError::Compacted(w.store.compacted))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        })
    }

    fn walk_path(
        &self,
        op: &Op,
        visit: &mut impl FnMut(&Writer<'_>, &Op) -> Result<(), MvccError>,
    ) -> Result<(), MvccError> {
        visit(self, op)?;
        if let Op::Txn {
            compare,
            success,
            failure,
        } = op
        {
            let branch = if compare.iter().all(|c| self.holds(c)) {
                success
            } else {
                failure
            };
            for op in branch {
                self.walk_path(op, visit)?;
            }
        }
        Ok(())
    }

    pub(super) fn run(&mut self, op: &Op) -> Result<OpResponse, MvccError> {
        match op {
            Op::Range(req) => self.range(req).map(OpResponse::Range),
            Op::Put(req) => self.put(req),
            Op::Delete(req) => Ok(self.delete(req)),
            Op::Txn {
                compare,
                success,
                failure,
            } => {
                let succeeded = compare.iter().all(|c| self.holds(c));
                let branch = if succeeded { success } else { failure };
                let mut responses = Vec::with_capacity(branch.len());
                for op in branch {
                    responses.push(self.run(op)?);
                }
                Ok(OpResponse::Txn {
                    succeeded,
                    responses,
                })
            }
        }
    }

    /// A read inside a write sees the write's own changes; at an explicit earlier revision,
    /// the store as it was.
    fn range(&self, req: &RangeRequest) -> Result<RangeResponse, MvccError> {
        if req.revision > 0 || self.changes.is_empty() {
            return self.store.range(req);
        }
        let view = Mvcc {
            kvs: self.kvs.clone(),
            revision: Revision(self.next),
            compacted: self.store.compacted,
            history: imbl::Vector::new(),
            history_max: self.store.history_max,
            leases: self.leases.clone(),
        };
        view.range(req)
    }

    fn put(&mut self, req: &PutRequest) -> Result<OpResponse, MvccError> {
        let prev = self.kvs.get(&req.key).cloned();
        if (req.ignore_value || req.ignore_lease) && prev.is_none() {
            // Existed before the transaction (`check_path`), deleted earlier in it: etcd 3.4
            // crashes here; refusing the whole transaction changes nothing instead.
            return Err(MvccError::KeyNotFound);
        }
        let kv = KeyValue {
            key: req.key.clone(),
            create_revision: prev.as_ref().map_or(self.next, |p| p.create_revision),
            mod_revision: self.next,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: match (&prev, req.ignore_value) {
                (Some(p), true) => p.value.clone(),
                _ => req.value.clone(),
            },
            lease: match (&prev, req.ignore_lease) {
                (Some(p), true) => p.lease,
                _ => req.lease,
            },
        };
        self.attach(prev.as_ref().map_or(0, |p| p.lease), kv.lease, &kv.key);
        self.kvs.insert(req.key.clone(), kv.clone());
        self.changes.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev.clone(),
        });
        Ok(OpResponse::Put {
            prev_kv: prev.filter(|_| req.prev_kv),
        })
    }

    fn delete(&mut self, req: &DeleteRequest) -> OpResponse {
        let gone: Vec<KeyValue> = match req.range.bounds() {
            Some(bounds) => self.kvs.range(bounds).map(|(_, v)| v.clone()).collect(),
            None => Vec::new(),
        };
        for prev in &gone {
            self.attach(prev.lease, 0, &prev.key);
            self.kvs.remove(&prev.key);
            self.changes.push(Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: prev.key.clone(),
                    mod_revision: self.next,
                    ..KeyValue::default()
                },
                prev_kv: Some(prev.clone()),
            });
        }
        OpResponse::Delete {
            deleted: i64::try_from(gone.len()).unwrap_or(i64::MAX),
            prev_kvs: if req.prev_kv { gone } else { Vec::new() },
        }
    }

    /// Moves `key` from lease `from` to lease `to` (0: none).
    fn attach(&mut self, from: i64, to: i64, key: &Bytes) {
        if from == to {
            return;
        }
        if let Some(lease) = self.leases.get_mut(&from) {
            lease.keys.remove(key);
        }
        if let Some(lease) = self.leases.get_mut(&to) {
            lease.keys.insert(key.clone());
        }
    }

    /// Whether every key in the comparison's range meets it; with no key there, an absent key
    /// (every field zero) must, and a comparison of values fails. As in etcd, every comparison,
    /// a nested transaction's too, sees the keyspace as it was before the operation began (etcd
    /// picks the whole path through the branches first), while reads see its writes.
    fn holds(&self, c: &Compare) -> bool {
        let found: Vec<&KeyValue> = match c.range.bounds() {
            Some(bounds) => self.store.kvs.range(bounds).map(|(_, v)| v).collect(),
            None => Vec::new(),
        };
        if found.is_empty() {
            return !matches!(c.target, CompareTarget::Value(_)) && meets(&KeyValue::default(), c);
        }
        found.into_iter().all(|kv| meets(kv, c))
    }
}

fn meets(kv: &KeyValue, c: &Compare) -> bool {
    let ord = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(r) => kv.create_revision.cmp(r),
        CompareTarget::Mod(r) => kv.mod_revision.cmp(r),
        CompareTarget::Value(v) => kv.value.as_ref().cmp(v.as_ref()),
        CompareTarget::Lease(l) => kv.lease.cmp(l),
    };
    match c.result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}
