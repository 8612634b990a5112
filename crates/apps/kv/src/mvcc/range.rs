//! Key ranges as etcd names them, and `Range`: reads at the current revision or an earlier one.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{KeyValue, Mvcc, MvccError, Revision};

/// Keys as an etcd request names them: `key` alone (an empty `end`), every key from `key` on
/// (`end` is the single byte 0), or `[key, end)`. A `key` of the byte 0 with an `end` of the
/// byte 0 is every key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    /// The first key.
    pub key: Bytes,
    /// The end, as above.
    pub end: Bytes,
}

impl KeyRange {
    /// One key.
    pub fn key(key: impl Into<Bytes>) -> KeyRange {
        KeyRange {
            key: key.into(),
            end: Bytes::new(),
        }
    }

    /// Every key starting with `prefix` (etcd's `--prefix`: the end is the prefix with its
    /// last byte below 0xff incremented, or every key from the prefix on; the empty prefix is
    /// every key, named as etcd's clients name it).
    pub fn prefix(prefix: impl Into<Bytes>) -> KeyRange {
        let key: Bytes = prefix.into();
        if key.is_empty() {
            return KeyRange {
                key: Bytes::from_static(&[0]),
                end: Bytes::from_static(&[0]),
            };
        }
        let mut end = key.to_vec();
        while let Some(last) = end.pop() {
            if last < 0xff {
                end.push(last + 1);
                return KeyRange {
                    key,
                    end: end.into(),
                };
            }
        }
        KeyRange {
            key,
            end: Bytes::from_static(&[0]),
        }
    }

    /// Whether it names a single key.
    #[must_use]
    pub fn is_single(&self) -> bool {
        self.end.is_empty()
    }

    fn all_from(&self) -> bool {
        self.end.as_ref() == [0]
    }

    /// Whether `key` is in it.
    #[must_use]
    pub fn contains(&self, key: &[u8]) -> bool {
        if self.is_single() {
            return key == self.key.as_ref();
        }
        let from = if self.key.as_ref() == [0] && self.all_from() {
            &[][..]
        } else {
            self.key.as_ref()
        };
        key >= from && (self.all_from() || key < self.end.as_ref())
    }

    /// The bounds of an ordered map's range over it (`None`: nothing can be in it).
    pub(super) fn bounds(&self) -> Option<(Bound<Bytes>, Bound<Bytes>)> {
        if self.is_single() {
            return Some((
                Bound::Included(self.key.clone()),
                Bound::Included(self.key.clone()),
            ));
        }
        if self.all_from() {
            return Some((Bound::Included(self.key.clone()), Bound::Unbounded));
        }
        if self.end <= self.key {
            return None;
        }
        Some((
            Bound::Included(self.key.clone()),
            Bound::Excluded(self.end.clone()),
        ))
    }
}

/// What to sort a range's keys by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortTarget {
    /// The key (the order they are stored in).
    #[default]
    Key,
    /// The version.
    Version,
    /// The create revision.
    Create,
    /// The mod revision.
    Mod,
    /// The value.
    Value,
}

/// Which way to sort.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortOrder {
    /// Not given: key order for the key; ascending for any other target (as etcd does, after
    /// taking the limit in key order: see [`Mvcc::range`]).
    #[default]
    None,
    /// Ascending.
    Ascend,
    /// Descending.
    Descend,
}

/// A read (etcd's `RangeRequest`). Zero means "not set" in the numeric fields, as on the
/// wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    /// The keys.
    pub range: KeyRange,
    /// Read at this revision (0 or less: the current one).
    pub revision: i64,
    /// At most this many keys (0 or less: no limit).
    pub limit: i64,
    /// Order.
    pub sort_order: SortOrder,
    /// Sort key.
    pub sort_target: SortTarget,
    /// Keys without values.
    pub keys_only: bool,
    /// Only the count.
    pub count_only: bool,
    /// Only keys modified at or after this revision (0: no bound).
    pub min_mod_revision: i64,
    /// Only keys modified at or before this revision (0: no bound).
    pub max_mod_revision: i64,
    /// Only keys created at or after this revision (0: no bound).
    pub min_create_revision: i64,
    /// Only keys created at or before this revision (0: no bound).
    pub max_create_revision: i64,
}

/// What a read found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResponse {
    /// The keys, filtered, sorted and limited (empty if `count_only`).
    pub kvs: Vec<KeyValue>,
    /// Whether the filters let more keys through than the limit returned.
    pub more: bool,
    /// Keys in the range at that revision, before filters and limit.
    pub count: i64,
}

impl Mvcc {
    /// The keys of `range` as they were at revision `at`.
    ///
    /// # Errors
    /// [`MvccError::Compacted`] below the compacted revision, [`MvccError::FutureRevision`]
    /// above the current one.
    pub fn range_at(&self, range: &KeyRange, at: Revision) -> Result<Vec<KeyValue>, MvccError> {
        if at > self.revision {
            return Err(MvccError::FutureRevision);
        }
        if at < self.compacted {
            return Err(MvccError::Compacted(self.compacted));
        }
        let Some(bounds) = range.bounds() else {
            return Ok(Vec::new());
        };
        let mut view: BTreeMap<Bytes, KeyValue> = self
            .kvs
            .range(bounds)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Undo the changes after `at`, newest first.
        for (_, changes) in self.history.iter().rev().take_while(|(r, _)| *r > at) {
            for e in changes.iter().rev().filter(|e| range.contains(&e.kv.key)) {
                match &e.prev_kv {
                    Some(prev) => view.insert(prev.key.clone(), prev.clone()),
                    None => view.remove(&e.kv.key),
                };
            }
        }
        Ok(view.into_values().collect())
    }

    /// Serves a read (etcd's `Range`).
    ///
    /// # Errors
    /// As [`Mvcc::range_at`].
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, MvccError> {
        let at = if req.revision <= 0 {
            self.revision
        } else {
            Revision(req.revision)
        };
        let all = self.range_at(&req.range, at)?;
        let count = i64::try_from(all.len()).unwrap_or(i64::MAX);
        if req.count_only {
            return Ok(RangeResponse {
                kvs: Vec::new(),
                more: false,
                count,
            });
        }
        // etcd's algorithm, step by step, since clients see its corners: with no order and
        // no filter the limit is taken in key order first (one more than asked, for `more`),
        // and only then are the keys sorted, by any target but the key ascending.
        let filtered = req.sort_order != SortOrder::None
            || req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        let limit = usize::try_from(req.limit).unwrap_or(0);
        let mut kvs = all;
        if !filtered && limit > 0 {
            kvs.truncate(limit + 1);
        }
        let within = |v: i64, min: i64, max: i64| (min <= 0 || v >= min) && (max <= 0 || v <= max);
        kvs.retain(|kv| {
            within(kv.mod_revision, req.min_mod_revision, req.max_mod_revision)
                && within(
                    kv.create_revision,
                    req.min_create_revision,
                    req.max_create_revision,
                )
        });
        let order = match (req.sort_target, req.sort_order) {
            (SortTarget::Key, order) => order,
            (_, SortOrder::None) => SortOrder::Ascend,
            (_, order) => order,
        };
        sort(&mut kvs, req.sort_target, order);
        let more = limit > 0 && kvs.len() > limit;
        if more {
            kvs.truncate(limit);
        }
        if req.keys_only {
            for kv in &mut kvs {
                kv.value = Bytes::new();
            }
        }
        Ok(RangeResponse { kvs, more, count })
    }
}

/// Sorts by `target` in `order` (none: key order, as stored). Stable, so ties stay in key
/// order (etcd's sort is not stable; for the few keys a test can compare, it behaves alike).
fn sort(kvs: &mut [KeyValue], target: SortTarget, order: SortOrder) {
    if order == SortOrder::None {
        return;
    }
    kvs.sort_by(|a, b| {
        let ord = match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        };
        if order == SortOrder::Descend {
            ord.reverse()
        } else {
            ord
        }
    });
}
