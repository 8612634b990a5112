//! Watches: what each of a node's watchers is owed, in revision order, none lost or repeated.
//!
//! A node keeps one [`Watchers`] per keyspace. Each applied write is offered to it
//! ([`Watchers::on_write`]); a watch that is in step (it has been given every revision up to
//! the store's) takes the write's events at once into its buffer. A watch that starts in the
//! past, or whose reader fell behind and filled its buffer, is out of step: it is caught up
//! from the keyspace's history ([`Watchers::catch_up`]), a bounded batch at a time, until it is
//! in step again. A watch whose next revision the history no longer holds is cancelled with
//! the compacted revision, as etcd cancels it. Every buffer is bounded: a reader that does not
//! read makes its watch fall out of step, not the node's memory grow.
//!
//! No clock and no I/O here: the node calls these as it applies writes and as readers take
//! what is buffered ([`Watchers::take`]).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::{Event, EventKind, KeyRange, Mvcc, MvccError, Revision};

/// A watch's id, unique among a node's watches of one keyspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WatchId(pub i64);

/// What a watch asks for (etcd's `WatchCreateRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchSpec {
    /// The keys.
    pub range: KeyRange,
    /// The first revision to report (0 or less: the next write).
    pub start: i64,
    /// Report the key as it was before each change.
    pub prev_kv: bool,
    /// Leave out puts.
    pub no_put: bool,
    /// Leave out deletes.
    pub no_delete: bool,
}

/// Why a watch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// The revision it needed next was compacted away (etcd's `compact_revision`).
    Compacted(Revision),
}

struct Watch {
    spec: WatchSpec,
    /// The first revision it has not been given (buffered or caught up) yet.
    next: Revision,
    /// Events given and not yet taken, oldest first.
    buffer: VecDeque<Event>,
    /// Whether it takes writes as they are applied (else it is caught up from history).
    in_step: bool,
}

impl Watch {
    fn wants(&self, e: &Event) -> bool {
        self.spec.range.contains(&e.kv.key)
            && !(self.spec.no_put && e.kind == EventKind::Put)
            && !(self.spec.no_delete && e.kind == EventKind::Delete)
    }

    fn give(&mut self, e: &Event) {
        let mut e = e.clone();
        if !self.spec.prev_kv {
            e.prev_kv = None;
        }
        self.buffer.push_back(e);
    }
}

/// A node's watches of one keyspace.
pub struct Watchers {
    watches: BTreeMap<WatchId, Watch>,
    /// Events one watch may hold untaken before it falls out of step.
    buffer_max: usize,
}

impl Watchers {
    /// No watches; each may buffer `buffer_max` events (at least 1) before it falls out of
    /// step.
    #[must_use]
    pub fn new(buffer_max: usize) -> Watchers {
        Watchers {
            watches: BTreeMap::new(),
            buffer_max: buffer_max.max(1),
        }
    }

    /// Starts watch `id` over `store` as it is now.
    ///
    /// # Errors
    /// [`Cancelled::Compacted`] if it starts at or below the compacted revision.
    pub fn add(&mut self, id: WatchId, spec: WatchSpec, store: &Mvcc) -> Result<(), Cancelled> {
        let now = store.revision();
        let next = if spec.start <= 0 {
            Revision(now.0 + 1)
        } else {
            Revision(spec.start)
        };
        if next <= store.compacted() {
            return Err(Cancelled::Compacted(store.compacted()));
        }
        let in_step = next.0 > now.0;
        self.watches.insert(
            id,
            Watch {
                spec,
                next,
                buffer: VecDeque::new(),
                in_step,
            },
        );
        Ok(())
    }

    /// Ends watch `id` (its buffered events are dropped).
    pub fn remove(&mut self, id: WatchId) {
        self.watches.remove(&id);
    }

    /// Offers the write that made revision `revision` (its `changes`, in order) to every watch
    /// in step. A watch whose buffer is full falls out of step (to be caught up later).
    pub fn on_write(&mut self, revision: Revision, changes: &[Event]) {
        let buffer_max = self.buffer_max;
        for w in self.watches.values_mut().filter(|w| w.in_step) {
            // Given already (caught up past it), or a watch that starts later.
            if revision != w.next {
                continue;
            }
            if w.buffer.len() >= buffer_max {
                w.in_step = false;
                continue;
            }
            for e in changes {
                if w.wants(e) {
                    w.give(e);
                }
            }
            w.next = Revision(revision.0 + 1);
        }
    }

    /// Catches the watches that are out of step up from `store`'s history, as far as their
    /// buffers allow (a revision's events are given whole, so a buffer may exceed its bound
    /// by one write). Returns the watches cancelled because the history they needed is gone.
    pub fn catch_up(&mut self, store: &Mvcc) -> Vec<(WatchId, Cancelled)> {
        let mut cancelled = Vec::new();
        let buffer_max = self.buffer_max;
        for (id, w) in self.watches.iter_mut().filter(|(_, w)| !w.in_step) {
            if w.buffer.len() >= buffer_max {
                continue;
            }
            let events = match store.events_since(w.next, &w.spec.range) {
                Ok(events) => events,
                Err(MvccError::Compacted(at)) => {
                    cancelled.push((*id, Cancelled::Compacted(at)));
                    continue;
                }
                Err(_) => continue,
            };
            let mut rest = events.into_iter().peekable();
            while let Some((rev, _)) = rest.peek().cloned() {
                if w.buffer.len() >= buffer_max {
                    break;
                }
                while let Some((_, e)) = rest.next_if(|(r, _)| *r == rev) {
                    if w.wants(&e) {
                        w.give(&e);
                    }
                }
                w.next = Revision(rev.0 + 1);
            }
            if rest.peek().is_none() {
                // Nothing left in the history for it: in step from the next write on.
                w.next = Revision(store.revision().0 + 1);
                w.in_step = true;
            }
        }
        for (id, _) in &cancelled {
            self.watches.remove(id);
        }
        cancelled
    }

    /// Takes up to `max` of watch `id`'s buffered events, oldest first.
    pub fn take(&mut self, id: WatchId, max: usize) -> Vec<Event> {
        let Some(w) = self.watches.get_mut(&id) else {
            return Vec::new();
        };
        let n = max.min(w.buffer.len());
        w.buffer.drain(..n).collect()
    }

    /// The revision up to which watch `id` has been given everything (what a progress
    /// notification reports), if it exists.
    #[must_use]
    pub fn progress(&self, id: WatchId) -> Option<Revision> {
        self.watches.get(&id).map(|w| Revision(w.next.0 - 1))
    }

    /// How many watches there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.watches.len()
    }

    /// No watch.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }
}
