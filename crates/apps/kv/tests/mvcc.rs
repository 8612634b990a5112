//! The revisioned keyspace (`synod_kv::mvcc`) against a reference that keeps the whole state
//! at every revision: random writes, transactions, compactions and reads at random revisions
//! must answer alike, and a watch's replay must be the differences between revisions.
//! Conformance with etcd itself is to be checked against the real server, not here.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use synod_kv::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRequest, EventKind, KeyRange, KeyValue, Mvcc,
    MvccError, Op, OpResponse, PutRequest, RangeRequest, RangeResponse, Revision, SortOrder,
    SortTarget,
};

type State = BTreeMap<Bytes, KeyValue>;

type Change = (EventKind, KeyValue, Option<KeyValue>);

/// The reference: every revision's whole state, and its changes in order.
struct Model {
    states: Vec<State>,
    changes: Vec<Vec<Change>>,
    compacted: i64,
    /// Leases granted and not revoked.
    leases: std::collections::BTreeSet<i64>,
}

impl Model {
    fn new() -> Model {
        // Index = revision; revision 0 is never read, revision 1 is the empty store.
        Model {
            states: vec![State::new(), State::new()],
            changes: vec![Vec::new(), Vec::new()],
            compacted: 0,
            leases: std::collections::BTreeSet::new(),
        }
    }

    fn revision(&self) -> i64 {
        (self.states.len() - 1) as i64
    }

    fn keys(state: &State, range: &KeyRange) -> Vec<KeyValue> {
        state
            .values()
            .filter(|kv| range.contains(&kv.key))
            .cloned()
            .collect()
    }

    fn apply(&mut self, op: &Op) -> Result<OpResponse, MvccError> {
        let mut state = self.states.last().unwrap().clone();
        let next = self.revision() + 1;
        let mut changes = Vec::new();
        let response = self.run(op, &mut state, next, &mut changes)?;
        if !changes.is_empty() {
            self.states.push(state);
            self.changes.push(changes);
        }
        Ok(response)
    }

    fn run(
        &self,
        op: &Op,
        state: &mut State,
        next: i64,
        changes: &mut Vec<Change>,
    ) -> Result<OpResponse, MvccError> {
        Ok(match op {
            Op::Range(r) => {
                let at = if r.revision > 0 {
                    self.at(r.revision)?
                } else {
                    state.clone()
                };
                OpResponse::Range(respond(r, Model::keys(&at, &r.range)))
            }
            Op::Put(p) => {
                let prev = state.get(&p.key).cloned();
                if (p.ignore_value || p.ignore_lease) && prev.is_none() {
                    return Err(MvccError::KeyNotFound);
                }
                if p.lease != 0 && !self.leases.contains(&p.lease) {
                    return Err(MvccError::LeaseNotFound);
                }
                let kv = KeyValue {
                    key: p.key.clone(),
                    create_revision: prev.as_ref().map_or(next, |k| k.create_revision),
                    mod_revision: next,
                    version: prev.as_ref().map_or(0, |k| k.version) + 1,
                    value: if p.ignore_value {
                        prev.as_ref().unwrap().value.clone()
                    } else {
                        p.value.clone()
                    },
                    lease: if p.ignore_lease {
                        prev.as_ref().unwrap().lease
                    } else {
                        p.lease
                    },
                };
                state.insert(p.key.clone(), kv.clone());
                changes.push((EventKind::Put, kv, prev.clone()));
                OpResponse::Put {
                    prev_kv: if p.prev_kv { prev } else { None },
                }
            }
            Op::Delete(d) => {
                let gone = Model::keys(state, &d.range);
                for kv in &gone {
                    state.remove(&kv.key);
                    let deleted = KeyValue {
                        key: kv.key.clone(),
                        mod_revision: next,
                        ..KeyValue::default()
                    };
                    changes.push((EventKind::Delete, deleted, Some(kv.clone())));
                }
                OpResponse::Delete {
                    deleted: gone.len() as i64,
                    prev_kvs: if d.prev_kv { gone } else { Vec::new() },
                }
            }
            Op::Txn {
                compare,
                success,
                failure,
            } => {
                // Comparisons see the state before the operation began (as etcd's do).
                let before = self.states.last().unwrap();
                let succeeded = compare.iter().all(|c| {
                    let found = Model::keys(before, &c.range);
                    if found.is_empty() {
                        !matches!(c.target, CompareTarget::Value(_))
                            && holds(&KeyValue::default(), c)
                    } else {
                        found.iter().all(|kv| holds(kv, c))
                    }
                });
                let mut responses = Vec::new();
                for op in if succeeded { success } else { failure } {
                    responses.push(self.run(op, state, next, changes)?);
                }
                OpResponse::Txn {
                    succeeded,
                    responses,
                }
            }
        })
    }

    fn at(&self, rev: i64) -> Result<State, MvccError> {
        if rev > self.revision() {
            return Err(MvccError::FutureRevision);
        }
        if rev < self.compacted {
            return Err(MvccError::Compacted(Revision(self.compacted)));
        }
        Ok(self.states[rev as usize].clone())
    }
}

fn holds(kv: &KeyValue, c: &Compare) -> bool {
    let ord = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(v) => kv.create_revision.cmp(v),
        CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
        CompareTarget::Value(v) => kv.value.cmp(v),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
    };
    match c.result {
        CompareResult::Equal => ord.is_eq(),
        CompareResult::NotEqual => ord.is_ne(),
        CompareResult::Greater => ord.is_gt(),
        CompareResult::Less => ord.is_lt(),
    }
}

/// A range's answer from the keys in it, as the reference computes it.
fn respond(r: &RangeRequest, all: Vec<KeyValue>) -> RangeResponse {
    let count = all.len() as i64;
    if r.count_only {
        return RangeResponse {
            kvs: vec![],
            more: false,
            count,
        };
    }
    let ok = |v: i64, lo: i64, hi: i64| (lo == 0 || v >= lo) && (hi == 0 || v <= hi);
    let filters = r.min_mod_revision != 0 || r.sort_order != SortOrder::None;
    let mut kvs: Vec<KeyValue> = all;
    if !filters && r.limit > 0 {
        kvs.truncate(r.limit as usize + 1);
    }
    kvs.retain(|kv| ok(kv.mod_revision, r.min_mod_revision, r.max_mod_revision));
    let key = |kv: &KeyValue| -> (i64, Bytes) {
        match r.sort_target {
            SortTarget::Key => (0, kv.key.clone()),
            SortTarget::Version => (kv.version, Bytes::new()),
            SortTarget::Create => (kv.create_revision, Bytes::new()),
            SortTarget::Mod => (kv.mod_revision, Bytes::new()),
            SortTarget::Value => (0, kv.value.clone()),
        }
    };
    match (r.sort_target, r.sort_order) {
        (SortTarget::Key, SortOrder::None) => {}
        (_, SortOrder::Descend) => kvs.sort_by_key(|kv| std::cmp::Reverse(key(kv))),
        _ => kvs.sort_by_key(key),
    }
    let more = r.limit > 0 && kvs.len() > r.limit as usize;
    if more {
        kvs.truncate(r.limit as usize);
    }
    if r.keys_only {
        for kv in &mut kvs {
            kv.value = Bytes::new();
        }
    }
    RangeResponse { kvs, more, count }
}

const KEYS: &[&str] = &["a", "ab", "b", "c", "d"];

fn key() -> impl Strategy<Value = Bytes> {
    prop::sample::select(KEYS).prop_map(|k| Bytes::from_static(k.as_bytes()))
}

fn range() -> impl Strategy<Value = KeyRange> {
    prop_oneof![
        key().prop_map(KeyRange::key),
        key().prop_map(KeyRange::prefix),
        (key(), key()).prop_map(|(a, b)| KeyRange { key: a, end: b }),
        Just(KeyRange {
            key: Bytes::from_static(&[0]),
            end: Bytes::from_static(&[0]),
        }),
    ]
}

fn range_request() -> impl Strategy<Value = RangeRequest> {
    (
        range(),
        0..3i64,
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![
            SortTarget::Key,
            SortTarget::Version,
            SortTarget::Create,
            SortTarget::Mod,
            SortTarget::Value,
        ]),
        prop::sample::select(vec![SortOrder::None, SortOrder::Ascend, SortOrder::Descend]),
        0..4i64,
    )
        .prop_map(
            |(range, limit, keys_only, count_only, sort_target, sort_order, min_mod)| {
                RangeRequest {
                    range,
                    limit,
                    keys_only,
                    count_only: count_only && limit == 0,
                    sort_target,
                    sort_order,
                    min_mod_revision: min_mod,
                    ..RangeRequest::default()
                }
            },
        )
}

fn put() -> impl Strategy<Value = Op> {
    (key(), 0..3u8, 0..3i64, any::<bool>(), 0..8u8).prop_map(|(key, v, lease, prev_kv, flags)| {
        Op::Put(PutRequest {
            key,
            value: Bytes::from(vec![b'v', v]),
            lease,
            prev_kv,
            ignore_value: flags == 1,
            ignore_lease: flags == 2,
        })
    })
}

fn delete() -> impl Strategy<Value = Op> {
    (range(), any::<bool>())
        .prop_map(|(range, prev_kv)| Op::Delete(DeleteRequest { range, prev_kv }))
}

fn compare() -> impl Strategy<Value = Compare> {
    (
        range(),
        prop_oneof![
            (0..3i64).prop_map(CompareTarget::Version),
            (0..6i64).prop_map(CompareTarget::Mod),
            (0..6i64).prop_map(CompareTarget::Create),
            (0..3u8).prop_map(|v| CompareTarget::Value(Bytes::from(vec![b'v', v]))),
            (0..3i64).prop_map(CompareTarget::Lease),
        ],
        prop::sample::select(vec![
            CompareResult::Equal,
            CompareResult::NotEqual,
            CompareResult::Greater,
            CompareResult::Less,
        ]),
    )
        .prop_map(|(range, target, result)| Compare {
            range,
            target,
            result,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let leaf = prop_oneof![3 => put(), 1 => delete(), 1 => range_request().prop_map(Op::Range)];
    leaf.prop_recursive(2, 12, 4, |inner| {
        (
            prop::collection::vec(compare(), 0..3),
            prop::collection::vec(inner.clone(), 0..4),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(compare, success, failure)| Op::Txn {
                compare,
                success,
                failure,
            })
    })
}

#[derive(Clone, Debug)]
enum Step {
    Op(Op),
    /// Compact at this many revisions behind the current one.
    Compact(i64),
    /// Read at this many revisions behind the current one.
    ReadBack(i64, RangeRequest),
    /// Replay the changes since this many revisions behind the current one.
    Watch(i64, KeyRange),
    /// Grant this lease.
    Grant(i64),
    /// Revoke this lease.
    Revoke(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => op().prop_map(Step::Op),
        1 => (0..6i64).prop_map(Step::Compact),
        3 => (0..8i64, range_request()).prop_map(|(b, r)| Step::ReadBack(b, r)),
        2 => (0..8i64, range()).prop_map(|(b, r)| Step::Watch(b, r)),
        1 => (1..3i64).prop_map(Step::Grant),
        1 => (1..4i64).prop_map(Step::Revoke),
    ]
}

/// The reference's replay from `from`: its changes, in order, in `range`.
fn replay(model: &Model, from: i64, range: &KeyRange) -> Vec<(i64, Change)> {
    (from..=model.revision())
        .flat_map(|rev| {
            model.changes[rev as usize]
                .iter()
                .filter(|c| range.contains(&c.1.key))
                .map(move |c| (rev, c.clone()))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_keyspace_answers_as_the_reference_does(steps in prop::collection::vec(step(), 1..60)) {
        let mut store = Mvcc::new(1_000);
        let mut model = Model::new();
        for step in steps {
            // Every lease's keys are the live keys naming it.
            let now = model.states.last().unwrap();
            for lease in store.leases() {
                let attached: Vec<&Bytes> = lease.keys.iter().collect();
                let naming: Vec<&Bytes> = now.values().filter(|kv| kv.lease == lease.id).map(|kv| &kv.key).collect();
                prop_assert_eq!(attached, naming);
            }
            match step {
                Step::Op(op) => {
                    let got = store.apply(&op);
                    // The reference has no notion of the pre-checks: skip what they refuse.
                    if let Err(
                        MvccError::DuplicateKey
                        | MvccError::EmptyKey
                        | MvccError::TooManyOps
                        | MvccError::ValueProvided
                        | MvccError::LeaseProvided,
                    ) = got
                    {
                        continue;
                    }
                    let want = model.apply(&op);
                    match (&got, &want) {
                        // A transaction with two faults may name either first (the keyspace
                        // checks its whole path before running, as etcd does).
                        (Err(_), Err(_)) => {}
                        _ => prop_assert_eq!(got.map(|(r, _)| r), want),
                    }
                    prop_assert_eq!(store.revision().0, model.revision());
                }
                Step::Grant(id) => {
                    let got = store.grant(id, 60);
                    if model.leases.insert(id) {
                        prop_assert_eq!(got, Ok(()));
                    } else {
                        prop_assert_eq!(got, Err(MvccError::LeaseExists));
                    }
                }
                Step::Revoke(id) => {
                    let got = store.revoke(id);
                    if model.leases.remove(&id) {
                        // Its keys go, in key order, at one revision (if it had any).
                        let mut state = model.states.last().unwrap().clone();
                        let next = model.revision() + 1;
                        let mut changes = Vec::new();
                        for kv in state.values().filter(|kv| kv.lease == id).cloned().collect::<Vec<_>>() {
                            state.remove(&kv.key);
                            let gone = KeyValue { key: kv.key.clone(), mod_revision: next, ..KeyValue::default() };
                            changes.push((EventKind::Delete, gone, Some(kv)));
                        }
                        if !changes.is_empty() {
                            model.states.push(state);
                            model.changes.push(changes);
                        }
                        prop_assert_eq!(got, Ok(Revision(model.revision())));
                    } else {
                        prop_assert_eq!(got, Err(MvccError::LeaseNotFound));
                    }
                }
                Step::Compact(back) => {
                    let at = Revision(model.revision() - back);
                    let got = store.compact(at);
                    if at.0 <= model.compacted {
                        prop_assert_eq!(got, Err(MvccError::Compacted(Revision(model.compacted))));
                    } else {
                        prop_assert_eq!(got, Ok(()));
                        model.compacted = at.0;
                    }
                }
                Step::ReadBack(back, mut req) => {
                    req.revision = (model.revision() - back).max(1);
                    let got = store.range(&req);
                    let want = model
                        .at(req.revision)
                        .map(|s| respond(&req, Model::keys(&s, &req.range)));
                    prop_assert_eq!(got, want);
                }
                Step::Watch(back, range) => {
                    let from = (model.revision() - back).max(1);
                    let got = store.events_since(Revision(from), &range);
                    if from <= model.compacted {
                        prop_assert_eq!(got, Err(MvccError::Compacted(Revision(model.compacted))));
                        continue;
                    }
                    let got: Vec<_> = got
                        .unwrap()
                        .into_iter()
                        .map(|(r, e)| (r.0, (e.kind, e.kv, e.prev_kv)))
                        .collect();
                    prop_assert_eq!(got, replay(&model, from, &range));
                }
            }
        }
    }
}

fn put_op(k: &'static str, v: &'static str) -> Op {
    Op::Put(PutRequest {
        key: Bytes::from_static(k.as_bytes()),
        value: Bytes::from_static(v.as_bytes()),
        ..PutRequest::default()
    })
}

#[test]
fn a_transaction_is_one_revision_and_its_reads_see_its_writes() {
    let mut store = Mvcc::default();
    let (_, rev) = store.apply(&put_op("x", "1")).unwrap();
    assert_eq!(
        rev,
        Revision(2),
        "the empty store is revision 1; a write makes 2"
    );
    let txn = Op::Txn {
        compare: vec![Compare {
            range: KeyRange::key("x"),
            target: CompareTarget::Value(Bytes::from_static(b"1")),
            result: CompareResult::Equal,
        }],
        success: vec![
            put_op("y", "2"),
            put_op("z", "3"),
            Op::Range(RangeRequest {
                range: KeyRange::prefix(""),
                ..RangeRequest::default()
            }),
        ],
        failure: vec![],
    };
    let (response, rev) = store.apply(&txn).unwrap();
    assert_eq!(rev, Revision(3), "one revision for the whole transaction");
    let OpResponse::Txn {
        succeeded,
        responses,
    } = response
    else {
        panic!("a txn answers a txn")
    };
    assert!(succeeded);
    let OpResponse::Range(read) = &responses[2] else {
        panic!("the third answer is the read")
    };
    let keys: Vec<&[u8]> = read.kvs.iter().map(|kv| kv.key.as_ref()).collect();
    assert_eq!(
        keys,
        [&b"x"[..], b"y", b"z"],
        "the read sees the txn's own writes"
    );
    assert!(
        read.kvs[1..]
            .iter()
            .all(|kv| kv.mod_revision == 3 && kv.create_revision == 3)
    );

    // A delete of nothing makes no revision.
    let (_, rev) = store
        .apply(&Op::Delete(DeleteRequest {
            range: KeyRange::key("absent"),
            prev_kv: false,
        }))
        .unwrap();
    assert_eq!(rev, Revision(3));
    // Writing a key twice in one branch is refused, and changes nothing.
    let twice = Op::Txn {
        compare: vec![],
        success: vec![put_op("k", "1"), put_op("k", "2")],
        failure: vec![],
    };
    assert_eq!(store.apply(&twice), Err(MvccError::DuplicateKey));
    assert_eq!(store.revision(), Revision(3));
    assert!(store.get(b"k").is_none());
}

#[test]
fn history_is_bounded_and_reads_below_it_are_refused() {
    let mut store = Mvcc::new(10);
    for i in 0..100u32 {
        store
            .apply(&Op::Put(PutRequest {
                key: Bytes::from(format!("k{}", i % 7)),
                value: Bytes::from(i.to_string()),
                ..PutRequest::default()
            }))
            .unwrap();
    }
    assert_eq!(store.revision(), Revision(101));
    assert_eq!(
        store.compacted(),
        Revision(91),
        "ten revisions of history kept"
    );
    let at = |rev| RangeRequest {
        range: KeyRange::prefix("k"),
        revision: rev,
        ..RangeRequest::default()
    };
    assert_eq!(
        store.range(&at(90)),
        Err(MvccError::Compacted(Revision(91)))
    );
    assert_eq!(store.range(&at(102)), Err(MvccError::FutureRevision));
    let old = store.range(&at(91)).unwrap();
    assert_eq!(old.count, 7);
    assert!(old.kvs.iter().all(|kv| kv.mod_revision <= 91));
    assert_eq!(
        store.events_since(Revision(91), &KeyRange::prefix("k")),
        Err(MvccError::Compacted(Revision(91)))
    );
    assert_eq!(
        store
            .events_since(Revision(92), &KeyRange::prefix("k"))
            .unwrap()
            .len(),
        10
    );
}

#[test]
fn an_expiry_proposed_before_a_renewal_was_agreed_is_void() {
    let mut store = Mvcc::default();
    store.grant(7, 10).unwrap();
    store
        .apply(&Op::Put(PutRequest {
            key: Bytes::from_static(b"held"),
            value: Bytes::from_static(b"1"),
            lease: 7,
            ..PutRequest::default()
        }))
        .unwrap();
    // A node's timer ran out having seen no renewal; a renewal was agreed before its expiry.
    let seen = store.lease(7).unwrap().renewals;
    assert_eq!(store.renew(7), Ok(seen + 1));
    assert_eq!(store.expire(7, seen), Ok(None), "void: renewed since");
    assert!(store.get(b"held").is_some());
    // An expiry naming the renewal count it saw, with none since, ends the lease and its keys.
    let before = store.revision();
    assert_eq!(store.expire(7, seen + 1), Ok(Some(Revision(before.0 + 1))));
    assert!(store.lease(7).is_none());
    assert!(store.get(b"held").is_none());
    assert_eq!(store.renew(7), Err(MvccError::LeaseNotFound));
    assert_eq!(
        store.expire(7, seen + 1),
        Ok(None),
        "an expiry of a lease gone is void"
    );
}

/// A keyspace decoded from a peer's snapshot (or a corrupt one) that announces more entries than
/// it holds is refused, without allocating for the announced count (each persistent collection
/// decodes one element at a time, as the store's do since fuzzing found that abort).
#[test]
fn a_keyspace_announcing_a_huge_collection_is_refused_without_allocating_for_it() {
    let mut store = Mvcc::new(100);
    store.grant(1, 60).unwrap();
    for k in ["a", "b"] {
        store
            .apply(&Op::Put(PutRequest {
                key: Bytes::from(k),
                value: Bytes::from_static(b"v"),
                lease: 1,
                ..PutRequest::default()
            }))
            .unwrap();
    }
    let encoded = postcard::to_allocvec(&store).unwrap();
    assert_eq!(postcard::from_bytes::<Mvcc>(&encoded).unwrap(), store);
    // The first field is the live keys: its length, a varint, announced as 2^62.
    let mut huge = vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40];
    huge.extend_from_slice(&encoded[1..]);
    assert!(postcard::from_bytes::<Mvcc>(&huge).is_err());
    // Every prefix is refused too, none panics.
    for cut in 0..encoded.len() {
        assert!(
            postcard::from_bytes::<Mvcc>(&encoded[..cut]).is_err(),
            "cut at {cut}"
        );
    }
}
