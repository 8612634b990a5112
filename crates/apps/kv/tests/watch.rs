//! Watches (`synod_kv::mvcc::Watchers`) over random writes, compactions and readers that read
//! slowly or not at all: every watch is given exactly the changes it asked for, in revision
//! order, none lost or repeated; or, if the history it needed was compacted away, it is
//! cancelled, having been given a prefix of them.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use synod_kv::mvcc::{
    Cancelled, DeleteRequest, Event, EventKind, KeyRange, Mvcc, Op, PutRequest, Revision, WatchId,
    WatchSpec, Watchers,
};

#[derive(Clone, Debug)]
enum Step {
    Put(u8),
    Delete(u8, bool),
    /// A watch starting this many revisions before the next one (0: the next write), over
    /// one key or a prefix, with or without the previous values, leaving out puts or deletes.
    Watch(i64, u8, bool, bool, u8),
    /// A reader takes up to this many events from a watch.
    Take(u8, usize),
    CatchUp,
    /// Compact this many revisions behind the current one.
    Compact(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..4u8).prop_map(Step::Put),
        2 => (0..4u8, any::<bool>()).prop_map(|(k, all)| Step::Delete(k, all)),
        2 => (0..6i64, 0..4u8, any::<bool>(), any::<bool>(), 0..4u8)
            .prop_map(|(back, k, prefix, prev, filter)| Step::Watch(back, k, prefix, prev, filter)),
        4 => (0..8u8, 0..4usize).prop_map(|(w, n)| Step::Take(w, n)),
        2 => Just(Step::CatchUp),
        1 => (0..4i64).prop_map(Step::Compact),
    ]
}

fn key(k: u8) -> Bytes {
    Bytes::from(["a", "ab", "b", "c"][usize::from(k)])
}

struct Seen {
    spec: WatchSpec,
    got: Vec<Event>,
    cancelled: Option<Cancelled>,
}

/// What a watch is owed from the full log of changes (never compacted, kept by the test).
fn owed(log: &[(Revision, Event)], spec: &WatchSpec, from: Revision) -> Vec<Event> {
    log.iter()
        .filter(|(r, e)| {
            *r >= from
                && spec.range.contains(&e.kv.key)
                && !(spec.no_put && e.kind == EventKind::Put)
                && !(spec.no_delete && e.kind == EventKind::Delete)
        })
        .map(|(_, e)| {
            let mut e = e.clone();
            if !spec.prev_kv {
                e.prev_kv = None;
            }
            e
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_watch_gets_its_changes_in_order_once_or_is_cancelled(
        steps in prop::collection::vec(step(), 1..120),
        buffer_max in 1..6usize,
    ) {
        let mut store = Mvcc::new(12);
        let mut watchers = Watchers::new(buffer_max);
        let mut log: Vec<(Revision, Event)> = Vec::new();
        let mut seen: BTreeMap<WatchId, (Revision, Seen)> = BTreeMap::new();
        let write = |store: &mut Mvcc, watchers: &mut Watchers, op: Op, log: &mut Vec<(Revision, Event)>| {
            let before = store.revision();
            store.apply(&op).unwrap();
            if store.revision() != before {
                let (rev, changes) = store.last_changes().unwrap();
                log.extend(changes.iter().map(|e| (rev, e.clone())));
                watchers.on_write(rev, &changes);
            }
        };
        for step in steps {
            match step {
                Step::Put(k) => {
                    let op = Op::Put(PutRequest { key: key(k), value: Bytes::from(log.len().to_string()), ..PutRequest::default() });
                    write(&mut store, &mut watchers, op, &mut log);
                }
                Step::Delete(k, all) => {
                    let range = if all { KeyRange::prefix("") } else { KeyRange::key(key(k)) };
                    write(&mut store, &mut watchers, Op::Delete(DeleteRequest { range, prev_kv: false }), &mut log);
                }
                Step::Watch(back, k, prefix, prev_kv, filter) => {
                    let id = WatchId(seen.len() as i64);
                    let start = if back == 0 { 0 } else { store.revision().0 + 1 - back };
                    let spec = WatchSpec {
                        range: if prefix { KeyRange::prefix(key(k)) } else { KeyRange::key(key(k)) },
                        start,
                        prev_kv,
                        no_put: filter == 1,
                        no_delete: filter == 2,
                    };
                    let from = if start <= 0 { Revision(store.revision().0 + 1) } else { Revision(start) };
                    match watchers.add(id, spec.clone(), &store) {
                        Ok(()) => {
                            seen.insert(id, (from, Seen { spec, got: Vec::new(), cancelled: None }));
                        }
                        Err(Cancelled::Compacted(at)) => {
                            prop_assert!(from <= at, "refused a watch the history still held");
                            prop_assert_eq!(at, store.compacted());
                        }
                    }
                }
                Step::Take(w, n) => {
                    if let Some((_, s)) = seen.get_mut(&WatchId(i64::from(w))) {
                        s.got.extend(watchers.take(WatchId(i64::from(w)), n));
                    }
                }
                Step::CatchUp => {
                    for (id, why) in watchers.catch_up(&store) {
                        seen.get_mut(&id).unwrap().1.cancelled = Some(why);
                    }
                }
                Step::Compact(back) => {
                    let _ = store.compact(Revision(store.revision().0 - back));
                }
            }
        }
        // The readers read everything left.
        for _ in 0..10_000 {
            for (id, why) in watchers.catch_up(&store) {
                seen.get_mut(&id).unwrap().1.cancelled = Some(why);
            }
            let mut taken = 0;
            for (id, (_, s)) in &mut seen {
                let got = watchers.take(*id, usize::MAX);
                taken += got.len();
                s.got.extend(got);
            }
            if taken == 0 {
                break;
            }
        }
        for (id, (from, s)) in &seen {
            let want = owed(&log, &s.spec, *from);
            if s.cancelled.is_some() {
                prop_assert!(want.starts_with(&s.got), "watch {:?}: a cancelled watch was given a prefix", id);
            } else {
                prop_assert_eq!(&s.got, &want, "watch {:?}", id);
                prop_assert_eq!(watchers.progress(*id), Some(store.revision()));
            }
        }
    }
}

#[test]
fn a_watch_below_the_compacted_revision_is_cancelled_with_it() {
    let mut store = Mvcc::new(1_000);
    for i in 0..5 {
        store
            .apply(&Op::Put(PutRequest {
                key: Bytes::from("k"),
                value: Bytes::from(i.to_string()),
                ..PutRequest::default()
            }))
            .unwrap();
    }
    store.compact(Revision(4)).unwrap();
    let mut watchers = Watchers::new(8);
    let spec = |start| WatchSpec {
        range: KeyRange::key("k"),
        start,
        ..WatchSpec::default()
    };
    assert_eq!(
        watchers.add(WatchId(1), spec(3), &store),
        Err(Cancelled::Compacted(Revision(4)))
    );
    // From just above it: the changes still held, then the next write.
    watchers.add(WatchId(2), spec(5), &store).unwrap();
    assert!(watchers.catch_up(&store).is_empty());
    let got: Vec<i64> = watchers
        .take(WatchId(2), 10)
        .iter()
        .map(|e| e.kv.mod_revision)
        .collect();
    assert_eq!(got, [5, 6]);
}
