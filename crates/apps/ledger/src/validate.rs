//! The validation rules: a [`crate::Channel`] judges each transaction of a block against the
//! state through a [`View`] (its database, as the block's own transaction sees it).

use std::collections::HashSet;

use crate::store::StoreError;
use crate::tx::{Key, Transaction, ValidationCode, Version};

/// The committed state a transaction is judged against: everything before it in the agreed
/// order (earlier blocks, and earlier valid transactions of its own block).
pub(crate) trait View {
    /// A key's current version (`None`: absent).
    fn version(&self, key: &Key) -> Result<Option<Version>, StoreError>;
    /// Whether a correctly signed transaction of `creator` with this id was ordered before.
    fn id_taken(&self, creator: &[u8; 32], id: &str) -> Result<bool, StoreError>;
    /// Every key in `start..end` with its version, in key order.
    fn range(&self, start: &Key, end: &Key) -> Result<Vec<(Key, Version)>, StoreError>;
}

/// Fabric's order of checks: the creator's signature (checked by the caller, which may do it
/// apart, in parallel: it depends on nothing else), a duplicate id, a malformed read/write
/// set, then MVCC: every key read still at the version read, every range read still holding
/// exactly the keys and versions seen (else a phantom).
///
/// # Errors
/// The state could not be read.
pub(crate) fn judge(
    tx: &Transaction,
    signature_valid: bool,
    view: &impl View,
) -> Result<ValidationCode, StoreError> {
    let body = &tx.body;
    if !signature_valid {
        return Ok(ValidationCode::BadCreatorSignature);
    }
    if view.id_taken(&body.creator, &body.id)? {
        return Ok(ValidationCode::DuplicateTxid);
    }
    if !well_formed(tx) {
        return Ok(ValidationCode::BadRwset);
    }
    for (key, seen) in &body.reads {
        if view.version(key)? != *seen {
            return Ok(ValidationCode::MvccReadConflict);
        }
    }
    for range in &body.ranges {
        if view.range(&range.start, &range.end)? != range.seen {
            return Ok(ValidationCode::PhantomReadConflict);
        }
    }
    Ok(ValidationCode::Valid)
}

/// An id, keys that are not empty and not listed twice, ranges that go forwards.
pub(crate) fn well_formed(tx: &Transaction) -> bool {
    let body = &tx.body;
    let mut reads = HashSet::new();
    let mut writes = HashSet::new();
    !body.id.is_empty()
        && body
            .reads
            .iter()
            .all(|(k, _)| !k.is_empty() && reads.insert(k))
        && body
            .writes
            .iter()
            .all(|(k, _)| !k.is_empty() && writes.insert(k))
        && body.ranges.iter().all(|r| r.start <= r.end)
}
