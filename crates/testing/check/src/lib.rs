//! Checkers for histories of client operations recorded against a running cluster.
//!
//! A [`History`] is what clients saw: each operation's call, its outcome (ok with a result,
//! failed for certain, or unknown, e.g. after a timeout), and monotonic invoke and completion
//! times. The checkers say whether some order of the operations explains every result:
//!
//! - [`linearizable`]: the Wing–Gong–Lowe search with memoisation (Lowe, "Testing for
//!   linearizability", 2017), over any sequential [`Model`]. An unknown operation may take
//!   effect at any point after its invocation, or never; a failed one never does.
//! - [`kv`]: the key-value store as a map of independent registers, checked key by key
//!   (linearizability is compositional, so the per-key checks together check the map).
//! - [`gsn_order`]: the global sequence respects real time: an acknowledged write that
//!   completed before another was invoked has a smaller GSN.
//!
//! What this crate does not do: record histories (the fault-test harness does) or decide what
//! counts as "unknown" (an operation whose request may have reached the cluster is unknown).

pub mod kv;
mod wgl;

pub use wgl::{Model, Violation, linearizable};

use serde::{Deserialize, Serialize};

/// What became of an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome<R> {
    /// Completed with this result.
    Ok(R),
    /// Certainly not applied (refused before it was proposed).
    Fail,
    /// May or may not have been applied (a timeout, a dropped connection, a crash).
    Unknown,
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op<C, R> {
    /// Unique id.
    pub id: u64,
    /// What was asked.
    pub call: C,
    /// What came back.
    pub outcome: Outcome<R>,
    /// When the client sent it (monotonic, any unit).
    pub invoke: u64,
    /// When the client got the answer (same clock; ignored for unknown outcomes).
    pub complete: u64,
}

/// Operations, in any order.
pub type History<C, R> = Vec<Op<C, R>>;

/// An acknowledged write that completed before another was invoked, yet got a GSN that is not
/// smaller: the global sequence contradicts real time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderViolation {
    /// The earlier operation (completed first).
    pub earlier: u64,
    /// Its GSN.
    pub earlier_gsn: u64,
    /// The later operation (invoked after the earlier one completed).
    pub later: u64,
    /// Its GSN.
    pub later_gsn: u64,
}

/// Checks that acknowledged writes, given as `(id, invoke, complete, gsn)`, are numbered in
/// real-time order: if `a` completed before `b` was invoked then `gsn(a) < gsn(b)` (several
/// writes may share a GSN only if they overlapped in time: one slot carries a batch).
///
/// # Errors
/// The first pair found out of order.
pub fn gsn_order(writes: &[(u64, u64, u64, u64)]) -> Result<(), OrderViolation> {
    let mut by_invoke: Vec<&(u64, u64, u64, u64)> = writes.iter().collect();
    by_invoke.sort_by_key(|w| w.1);
    let mut by_complete: Vec<&(u64, u64, u64, u64)> = writes.iter().collect();
    by_complete.sort_by_key(|w| w.2);
    // Sweep: for each write in invoke order, the largest GSN among writes completed strictly
    // before its invocation must be smaller than its own.
    let mut done = 0;
    let mut max: Option<&(u64, u64, u64, u64)> = None;
    for b in by_invoke {
        while done < by_complete.len() && by_complete[done].2 < b.1 {
            let a = by_complete[done];
            if max.is_none_or(|m| a.3 > m.3) {
                max = Some(a);
            }
            done += 1;
        }
        if let Some(a) = max
            && a.3 >= b.3
        {
            return Err(OrderViolation {
                earlier: a.0,
                earlier_gsn: a.3,
                later: b.0,
                later_gsn: b.3,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsn_order_accepts_overlap_and_rejects_a_later_write_numbered_earlier() {
        // (id, invoke, complete, gsn)
        let ok = [(1, 0, 10, 5), (2, 5, 15, 5), (3, 11, 20, 6)];
        assert_eq!(gsn_order(&ok), Ok(()));
        let bad = [(1, 0, 10, 7), (2, 11, 20, 6)];
        assert_eq!(
            gsn_order(&bad),
            Err(OrderViolation {
                earlier: 1,
                earlier_gsn: 7,
                later: 2,
                later_gsn: 6
            })
        );
        let same_slot_but_sequential = [(1, 0, 10, 7), (2, 11, 20, 7)];
        assert!(gsn_order(&same_slot_but_sequential).is_err());
    }
}
