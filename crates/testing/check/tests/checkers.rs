//! The checkers are tested themselves: histories known to be linearizable must pass (including
//! random ones generated from a real register with random linearization points), and
//! histories known to be wrong (stale reads, phantom values, lost or duplicated writes, an
//! unknown write that takes effect twice) must fail.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use synod_check::kv::{KvCall, KvRet, check};
use synod_check::{Op, Outcome};

fn put(id: u64, value: &str, invoke: u64, complete: u64) -> Op<KvCall, KvRet> {
    Op {
        id,
        call: KvCall::Put {
            key: "k".into(),
            value: value.into(),
        },
        outcome: Outcome::Ok(KvRet::Done),
        invoke,
        complete,
    }
}

fn get(id: u64, seen: Option<&str>, invoke: u64, complete: u64) -> Op<KvCall, KvRet> {
    Op {
        id,
        call: KvCall::Get { key: "k".into() },
        outcome: Outcome::Ok(KvRet::Value(seen.map(str::to_string))),
        invoke,
        complete,
    }
}

fn unknown(mut op: Op<KvCall, KvRet>) -> Op<KvCall, KvRet> {
    op.outcome = Outcome::Unknown;
    op
}

#[test]
fn sequential_and_overlapping_histories_pass() {
    let h = vec![
        put(1, "a", 0, 10),
        get(2, Some("a"), 11, 20),
        put(3, "b", 21, 30),
        // Overlaps the put of c: may see b or c.
        put(4, "c", 31, 50),
        get(5, Some("b"), 32, 40),
        get(6, Some("c"), 41, 60),
    ];
    assert_eq!(check(&h), Ok(()));
}

#[test]
fn a_stale_read_after_a_completed_write_fails() {
    let h = vec![
        put(1, "a", 0, 10),
        put(2, "b", 11, 20),
        get(3, Some("a"), 21, 30),
    ];
    let v = check(&h).unwrap_err();
    assert_eq!(v.key, "k");
    assert!(v.violation.unexplained.contains(&3), "{v:?}");
}

#[test]
fn a_phantom_value_fails() {
    let h = vec![put(1, "a", 0, 10), get(2, Some("never-written"), 11, 20)];
    assert!(check(&h).is_err());
}

#[test]
fn a_lost_acknowledged_write_fails() {
    // The write was acknowledged, nothing overwrote it, yet a later read finds nothing.
    let h = vec![put(1, "a", 0, 10), get(2, None, 11, 20)];
    assert!(check(&h).is_err());
}

#[test]
fn a_write_applied_twice_fails() {
    // a, then b, both acknowledged in order; a later read sees a again: a was applied twice.
    let h = vec![
        put(1, "a", 0, 10),
        put(2, "b", 11, 20),
        get(3, Some("b"), 21, 30),
        get(4, Some("a"), 31, 40),
    ];
    assert!(check(&h).is_err());
}

#[test]
fn an_unknown_write_takes_effect_at_most_once() {
    // The unknown write of a may have happened (a read saw it)...
    let once = vec![
        unknown(put(1, "a", 0, 0)),
        get(2, Some("a"), 5, 10),
        put(3, "b", 11, 20),
        get(4, Some("b"), 21, 30),
    ];
    assert_eq!(check(&once), Ok(()));
    // ...or not at all...
    let never = vec![unknown(put(1, "a", 0, 0)), get(2, None, 100, 110)];
    assert_eq!(check(&never), Ok(()));
    // ...but not twice: after b overwrote it, a cannot come back.
    let twice = vec![
        unknown(put(1, "a", 0, 0)),
        get(2, Some("a"), 5, 10),
        put(3, "b", 11, 20),
        get(4, Some("b"), 21, 30),
        get(5, Some("a"), 31, 40),
    ];
    assert!(check(&twice).is_err());
}

#[test]
fn a_failed_write_never_takes_effect() {
    let mut failed = put(1, "a", 0, 10);
    failed.outcome = Outcome::Fail;
    let h = vec![failed, get(2, Some("a"), 11, 20)];
    assert!(check(&h).is_err());
}

/// A random history from a real register: each operation takes effect at a random point
/// within its [invoke, complete] window, in the order of those points.
fn arb_history() -> impl Strategy<Value = Vec<Op<KvCall, KvRet>>> {
    let op = (0u64..100, 1u64..30, 0u64..1000, 0u8..3, 0u8..3);
    proptest::collection::vec(op, 1..40).prop_map(|raw| {
        // (invoke, length, where in the window it takes effect, kind, key)
        let mut ops: Vec<(u64, u64, u64, u8, u8, usize)> = raw
            .iter()
            .enumerate()
            .map(|(i, (start, len, at, kind, key))| {
                let invoke = start * 1000;
                (
                    invoke,
                    invoke + len * 1000,
                    invoke + at * len,
                    *kind,
                    *key,
                    i,
                )
            })
            .collect();
        ops.sort_by_key(|o| (o.2, o.5));
        let mut state: [Option<String>; 3] = [None, None, None];
        let mut out = Vec::new();
        for (invoke, complete, _, kind, key, i) in ops {
            let k = format!("k{key}");
            let slot = &mut state[key as usize];
            let (call, ret) = match kind {
                0 => {
                    let value = format!("v{i}");
                    *slot = Some(value.clone());
                    (KvCall::Put { key: k, value }, KvRet::Done)
                }
                1 => {
                    *slot = None;
                    (KvCall::Delete { key: k }, KvRet::Done)
                }
                _ => (KvCall::Get { key: k }, KvRet::Value(slot.clone())),
            };
            out.push(Op {
                id: i as u64,
                call,
                outcome: Outcome::Ok(ret),
                invoke,
                complete,
            });
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn histories_of_a_real_register_pass(h in arb_history()) {
        prop_assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn a_read_of_a_value_never_written_fails(h in arb_history(), pick in any::<prop::sample::Index>()) {
        let reads: Vec<usize> = h.iter().enumerate()
            .filter(|(_, o)| matches!(o.call, KvCall::Get { .. }))
            .map(|(i, _)| i)
            .collect();
        prop_assume!(!reads.is_empty());
        let mut h = h;
        let i = reads[pick.index(reads.len())];
        h[i].outcome = Outcome::Ok(KvRet::Value(Some("phantom".into())));
        prop_assert!(check(&h).is_err());
    }
}
