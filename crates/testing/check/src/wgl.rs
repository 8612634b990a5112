//! The Wing–Gong–Lowe linearizability search with memoisation.
//!
//! The history becomes a list of call and return entries in time order. The search walks the
//! list from its head: at a call, it tries to linearize that operation next (apply it to the
//! model; its result must match what the client saw). If it matches and the pair (set of
//! operations linearized, model state) has not been explored before, the operation is lifted
//! out of the list and the walk restarts; at a return whose operation is not yet linearized,
//! the last choice is undone (backtracking). The history is linearizable when every return has
//! been lifted. The memo of explored (set, state) pairs is what keeps the search from being
//! exponential on ordinary histories.

use std::collections::HashSet;
use std::hash::Hash;

use crate::{Op, Outcome};

/// A sequential specification.
pub trait Model {
    /// The object's state.
    type State: Clone + Eq + Hash;
    /// An operation's input.
    type Call;
    /// An operation's result.
    type Ret: PartialEq;
    /// The state before any operation.
    fn init(&self) -> Self::State;
    /// Applies `call` to `state`: the next state and the result.
    fn step(&self, state: &Self::State, call: &Self::Call) -> (Self::State, Self::Ret);
}

/// No order of the operations explains the results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The longest prefix of a linearization the search found (operation ids, in order).
    pub longest_prefix: Vec<u64>,
    /// Acknowledged operations that never fitted after that prefix.
    pub unexplained: Vec<u64>,
}

const NONE: usize = usize::MAX;

struct Entry {
    op: usize,
    /// For a call entry: its return entry (NONE for an unknown outcome).
    ret: Option<usize>,
    prev: usize,
    next: usize,
}

struct List {
    entries: Vec<Entry>,
}

impl List {
    const HEAD: usize = 0;

    fn next(&self, i: usize) -> usize {
        self.entries[i].next
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.entries[i].prev, self.entries[i].next);
        self.entries[p].next = n;
        if n != NONE {
            self.entries[n].prev = p;
        }
    }

    /// Undoes `unlink(i)`; valid because lifts are undone in reverse order.
    fn relink(&mut self, i: usize) {
        let (p, n) = (self.entries[i].prev, self.entries[i].next);
        self.entries[p].next = i;
        if n != NONE {
            self.entries[n].prev = i;
        }
    }
}

/// Searches for a linearization of `history` under `model`; returns the operation ids in a
/// valid order (failed operations and unknown ones left out are not in it).
///
/// # Errors
/// [`Violation`] if there is none.
pub fn linearizable<M: Model>(
    model: &M,
    history: &[Op<M::Call, M::Ret>],
) -> Result<Vec<u64>, Violation> {
    let ops: Vec<&Op<M::Call, M::Ret>> = history
        .iter()
        .filter(|o| o.outcome != Outcome::Fail)
        .collect();
    // Events in time order; at equal times calls come first (the operations overlap).
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        events.push((o.invoke, false, i));
        if matches!(o.outcome, Outcome::Ok(_)) {
            events.push((o.complete.max(o.invoke), true, i));
        }
    }
    events.sort_by_key(|e| (e.0, e.1));
    let mut list = List {
        entries: Vec::with_capacity(events.len() + 1),
    };
    list.entries.push(Entry {
        op: NONE,
        ret: None,
        prev: NONE,
        next: NONE,
    });
    let mut call_entry = vec![NONE; ops.len()];
    for (k, (_, is_return, op)) in events.iter().enumerate() {
        let idx = k + 1;
        list.entries.push(Entry {
            op: *op,
            ret: None,
            prev: idx - 1,
            next: if k + 1 < events.len() { idx + 1 } else { NONE },
        });
        if *is_return {
            let c = call_entry[*op];
            list.entries[c].ret = Some(idx);
        } else {
            call_entry[*op] = idx;
        }
    }
    list.entries[List::HEAD].next = if events.is_empty() { NONE } else { 1 };
    let is_call = |list: &List, i: usize| call_entry[list.entries[i].op] == i;

    let mut remaining = ops
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .count();
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut state = model.init();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut entry = list.next(List::HEAD);
    while remaining > 0 {
        if entry != NONE && is_call(&list, entry) {
            let op = list.entries[entry].op;
            let (next, ret) = model.step(&state, &ops[op].call);
            let fits = match &ops[op].outcome {
                Outcome::Ok(seen) => *seen == ret,
                Outcome::Unknown | Outcome::Fail => true,
            };
            if fits {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone(), next.clone())) {
                    stack.push((entry, std::mem::replace(&mut state, next)));
                    list.unlink(entry);
                    if let Some(r) = list.entries[entry].ret {
                        list.unlink(r);
                        remaining -= 1;
                    }
                    if stack.len() > longest.len() {
                        longest = stack.iter().map(|(e, _)| list.entries[*e].op).collect();
                    }
                    entry = list.next(List::HEAD);
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            entry = list.next(entry);
            continue;
        }
        // A return whose operation is not linearized yet (or the end of the list): undo the
        // last choice and try the next candidate after it.
        let Some((e, previous)) = stack.pop() else {
            let done: HashSet<usize> = longest.iter().copied().collect();
            return Err(Violation {
                longest_prefix: longest.iter().map(|i| ops[*i].id).collect(),
                unexplained: ops
                    .iter()
                    .enumerate()
                    .filter(|(i, o)| matches!(o.outcome, Outcome::Ok(_)) && !done.contains(i))
                    .map(|(_, o)| o.id)
                    .collect(),
            });
        };
        let op = list.entries[e].op;
        linearized[op / 64] &= !(1 << (op % 64));
        state = previous;
        if let Some(r) = list.entries[e].ret {
            list.relink(r);
            remaining += 1;
        }
        list.relink(e);
        entry = list.next(e);
    }
    Ok(stack
        .iter()
        .map(|(e, _)| ops[list.entries[*e].op].id)
        .collect())
}
