//! The store's state machine: a deterministic map applied in GSN order.
//!
//! Every node applies the same commands in the same order, so every node holds the same map;
//! each entry records the GSN that created and last modified it (Consul's `CreateIndex` and
//! `ModifyIndex`), which is what compare-and-set compares.

use imbl::{OrdMap, Vector};

use crate::cautious;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A command, as proposed through the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    /// Set `key` to `value`; with `cas`, only if the key's modify GSN equals it (0: absent).
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Bytes,
        /// Compare-and-set condition.
        cas: Option<u64>,
    },
    /// Delete `key`; with `cas`, only if its modify GSN equals it.
    Delete {
        /// The key.
        key: String,
        /// Compare-and-set condition.
        cas: Option<u64>,
    },
}

impl KvCommand {
    /// The key it changes.
    #[must_use]
    pub fn key(&self) -> &str {
        match self {
            KvCommand::Put { key, .. } | KvCommand::Delete { key, .. } => key,
        }
    }
}

/// What a client proposes: a command and, optionally, an idempotency token. A command whose
/// token was applied before is not applied again; the first outcome is returned instead, so a
/// client may retry a write whose answer it never got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRequest {
    /// Client-chosen token, unique per intended write (at most [`TOKEN_MAX`] bytes).
    pub token: Option<String>,
    /// The command.
    pub cmd: KvCommand,
}

/// Longest idempotency token accepted, bytes.
pub const TOKEN_MAX: usize = 128;
/// Tokens remembered; the oldest are forgotten first (the same way on every node).
pub const TOKENS_KEPT: usize = 100_000;

/// What applying a command produced, returned to the client that proposed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutput {
    /// Applied.
    Done,
    /// A compare-and-set condition did not hold; nothing changed.
    CasFailed {
        /// The key's modify GSN at that point (0 if absent).
        current: u64,
    },
}

/// One stored value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The value.
    pub value: Bytes,
    /// GSN of the write that created the key.
    pub create_gsn: u64,
    /// GSN of the last write.
    pub modify_gsn: u64,
}

/// The store's state. Persistent (structure-sharing) collections: a clone is O(1), so a
/// snapshot copies the state in the event loop and encodes it on another thread.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kv {
    #[serde(deserialize_with = "cautious::ord_map")]
    entries: OrdMap<String, Entry>,
    /// Outcome and GSN of every remembered idempotency token.
    #[serde(deserialize_with = "cautious::ord_map")]
    tokens: OrdMap<String, (u64, KvOutput)>,
    /// Tokens in the order they were applied, for forgetting the oldest.
    #[serde(deserialize_with = "cautious::vector")]
    token_order: Vector<String>,
}

impl Kv {
    /// Applies a client request delivered at `gsn`; returns the GSN whose outcome it is (an
    /// earlier one for a repeated token) and the outcome.
    pub fn apply_request(&mut self, gsn: u64, req: &KvRequest) -> (u64, KvOutput) {
        let Some(token) = &req.token else {
            return (gsn, self.apply(gsn, &req.cmd));
        };
        if let Some((first, output)) = self.tokens.get(token) {
            return (*first, output.clone());
        }
        let output = self.apply(gsn, &req.cmd);
        self.tokens.insert(token.clone(), (gsn, output.clone()));
        self.token_order.push_back(token.clone());
        while self.token_order.len() > TOKENS_KEPT {
            if let Some(old) = self.token_order.pop_front() {
                self.tokens.remove(&old);
            }
        }
        (gsn, output)
    }

    /// Applies one command delivered at `gsn`.
    pub fn apply(&mut self, gsn: u64, cmd: &KvCommand) -> KvOutput {
        let current = |kv: &Kv, key: &str| kv.entries.get(key).map_or(0, |e| e.modify_gsn);
        match cmd {
            KvCommand::Put { key, value, cas } => {
                if let Some(expected) = cas {
                    let now = current(self, key);
                    if now != *expected {
                        return KvOutput::CasFailed { current: now };
                    }
                }
                let create_gsn = self.entries.get(key).map_or(gsn, |e| e.create_gsn);
                self.entries.insert(
                    key.clone(),
                    Entry {
                        value: value.clone(),
                        create_gsn,
                        modify_gsn: gsn,
                    },
                );
                KvOutput::Done
            }
            KvCommand::Delete { key, cas } => {
                if let Some(expected) = cas {
                    let now = current(self, key);
                    if now != *expected {
                        return KvOutput::CasFailed { current: now };
                    }
                }
                self.entries.remove(key);
                KvOutput::Done
            }
        }
    }

    /// The entry for `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Entry)> + 'a {
        self.entries
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A hash of the whole content (keys, values, modify GSNs), equal on nodes that applied the
    /// same commands.
    #[must_use]
    pub fn content_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (k, e) in &self.entries {
            for b in k
                .bytes()
                .chain(e.value.iter().copied())
                .chain(e.modify_gsn.to_le_bytes())
            {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_set_uses_the_modify_gsn() {
        let mut kv = Kv::default();
        let put = |cas| KvCommand::Put {
            key: "a".into(),
            value: Bytes::from_static(b"1"),
            cas,
        };
        assert_eq!(
            kv.apply(5, &put(Some(0))),
            KvOutput::Done,
            "0 means: create only if absent"
        );
        assert_eq!(
            kv.apply(6, &put(Some(0))),
            KvOutput::CasFailed { current: 5 }
        );
        assert_eq!(kv.apply(7, &put(Some(5))), KvOutput::Done);
        let e = kv.get("a").expect("written");
        assert_eq!((e.create_gsn, e.modify_gsn), (5, 7));
        assert_eq!(
            kv.apply(
                8,
                &KvCommand::Delete {
                    key: "a".into(),
                    cas: Some(6)
                }
            ),
            KvOutput::CasFailed { current: 7 }
        );
        assert_eq!(
            kv.apply(
                9,
                &KvCommand::Delete {
                    key: "a".into(),
                    cas: None
                }
            ),
            KvOutput::Done
        );
        assert!(kv.is_empty());
    }

    #[test]
    fn a_repeated_token_returns_the_first_outcome_without_applying_again() {
        let mut kv = Kv::default();
        let req = KvRequest {
            token: Some("t1".into()),
            cmd: KvCommand::Put {
                key: "a".into(),
                value: Bytes::from_static(b"1"),
                cas: Some(0),
            },
        };
        assert_eq!(kv.apply_request(3, &req), (3, KvOutput::Done));
        // Without the token, the same create-if-absent would now fail.
        assert_eq!(kv.apply_request(9, &req), (3, KvOutput::Done));
        assert_eq!(kv.get("a").expect("written").modify_gsn, 3);
        let untokened = KvRequest { token: None, ..req };
        assert_eq!(
            kv.apply_request(10, &untokened),
            (10, KvOutput::CasFailed { current: 3 })
        );
    }

    #[test]
    fn prefix_lists_in_key_order() {
        let mut kv = Kv::default();
        for (i, k) in ["b/2", "a", "b/1", "c"].iter().enumerate() {
            kv.apply(
                i as u64,
                &KvCommand::Put {
                    key: (*k).into(),
                    value: Bytes::new(),
                    cas: None,
                },
            );
        }
        let keys: Vec<&String> = kv.prefix("b/").map(|(k, _)| k).collect();
        assert_eq!(keys, ["b/1", "b/2"]);
    }
}
