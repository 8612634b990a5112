//! The key-value store as independent registers, checked key by key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{History, Model, Op, Outcome, Violation, linearizable};

/// A key-value operation as a client issues it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvCall {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The value (unique per write, so a read names the write it saw).
        value: String,
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Read `key` (linearizable read).
    Get {
        /// The key.
        key: String,
    },
}

impl KvCall {
    /// The key the operation is on.
    pub fn key(&self) -> &str {
        match self {
            KvCall::Put { key, .. } | KvCall::Delete { key } | KvCall::Get { key } => key,
        }
    }
}

/// A key-value operation's result.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvRet {
    /// A write or delete was applied.
    Done,
    /// A read's value (`None`: absent).
    Value(Option<String>),
}

/// One key as a register.
struct Register;

impl Model for Register {
    type State = Option<String>;
    type Call = KvCall;
    type Ret = KvRet;

    fn init(&self) -> Option<String> {
        None
    }

    fn step(&self, state: &Option<String>, call: &KvCall) -> (Option<String>, KvRet) {
        match call {
            KvCall::Put { value, .. } => (Some(value.clone()), KvRet::Done),
            KvCall::Delete { .. } => (None, KvRet::Done),
            KvCall::Get { .. } => (state.clone(), KvRet::Value(state.clone())),
        }
    }
}

/// A key whose history no order explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyViolation {
    /// The key.
    pub key: String,
    /// What the search found.
    pub violation: Violation,
}

/// Checks every key's history for linearizability (reads with unknown outcomes are dropped:
/// they change nothing).
///
/// # Errors
/// The first key (in key order) whose history is not linearizable.
pub fn check(history: &History<KvCall, KvRet>) -> Result<(), KeyViolation> {
    let mut by_key: BTreeMap<&str, Vec<Op<KvCall, KvRet>>> = BTreeMap::new();
    for op in history {
        if matches!(op.call, KvCall::Get { .. }) && !matches!(op.outcome, Outcome::Ok(_)) {
            continue;
        }
        by_key.entry(op.call.key()).or_default().push(op.clone());
    }
    for (key, ops) in by_key {
        if let Err(violation) = linearizable(&Register, &ops) {
            return Err(KeyViolation {
                key: key.to_string(),
                violation,
            });
        }
    }
    Ok(())
}
