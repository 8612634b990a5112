//! A Corda-style notary: the replicated state is the set of consumed state references. A
//! request consumes its inputs if none was consumed by another transaction; the same request
//! again gets the same success; a conflict names each input and the transaction that consumed
//! it. Time windows are checked against agreed time (carried in the log), never a node's
//! clock. The node signs a success with its own Ed25519 key, outside the replicated state.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// An output of a transaction: the transaction's id and the output's index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StateRef {
    /// The transaction that created the state.
    pub tx: String,
    /// Its index among that transaction's outputs.
    pub index: u32,
}

/// A notarisation request, as ordered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotariseRequest {
    /// The transaction to notarise.
    pub tx_id: String,
    /// States it consumes.
    pub inputs: Vec<StateRef>,
    /// States it only refers to: they must be unconsumed, and stay so.
    pub references: Vec<StateRef>,
    /// Agreed time must be in `[from, until)`, nanoseconds since the Unix epoch.
    pub time_window: Option<(Option<u64>, Option<u64>)>,
}

/// The notary's answer (before the node's signature).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotaryOutcome {
    /// The inputs are now consumed by this transaction (or were already, by this same one).
    Notarised,
    /// Some inputs or references were consumed by other transactions: each, with the
    /// consuming transaction. Nothing was consumed.
    Conflict(Vec<(StateRef, String)>),
    /// Agreed time `now` was outside the request's window. Nothing was consumed.
    OutsideTimeWindow {
        /// Agreed time when the request was ordered.
        now: u64,
    },
    /// The request is malformed (no id, no inputs, an input listed twice).
    Invalid,
}

/// The consumed-states set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notary {
    consumed: BTreeMap<StateRef, String>,
}

impl Notary {
    /// Applies one ordered request at agreed time `now`.
    pub fn notarise(&mut self, req: &NotariseRequest, now: u64) -> NotaryOutcome {
        let mut inputs: Vec<&StateRef> = req.inputs.iter().collect();
        inputs.sort();
        let twice = inputs.windows(2).any(|w| w[0] == w[1]);
        if req.tx_id.is_empty() || req.inputs.is_empty() || twice {
            return NotaryOutcome::Invalid;
        }
        if let Some((from, until)) = req.time_window {
            let early = from.is_some_and(|f| now < f);
            let late = until.is_some_and(|u| now >= u);
            if early || late {
                return NotaryOutcome::OutsideTimeWindow { now };
            }
        }
        let mut conflicts = Vec::new();
        for input in &req.inputs {
            match self.consumed.get(input) {
                Some(by) if *by != req.tx_id => conflicts.push((input.clone(), by.clone())),
                _ => {}
            }
        }
        for reference in &req.references {
            // A state this request both consumes and refers to is no conflict once this very
            // transaction consumed it: such a request (the API refuses them; a log may hold one
            // from before) must find the same success on its retry as any other.
            match self.consumed.get(reference) {
                Some(by) if *by == req.tx_id && inputs.binary_search(&reference).is_ok() => {}
                Some(by) => conflicts.push((reference.clone(), by.clone())),
                None => {}
            }
        }
        if !conflicts.is_empty() {
            return NotaryOutcome::Conflict(conflicts);
        }
        for input in &req.inputs {
            self.consumed.insert(input.clone(), req.tx_id.clone());
        }
        NotaryOutcome::Notarised
    }

    /// The transaction that consumed `state`, if any.
    #[must_use]
    pub fn consumed_by(&self, state: &StateRef) -> Option<&str> {
        self.consumed.get(state).map(String::as_str)
    }

    /// States consumed so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.consumed.len()
    }

    /// Whether nothing was consumed yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.consumed.is_empty()
    }
}

const NOTARY_DOMAIN: &[u8] = b"synod-ledger/notarised/v2\0";

/// Which notary signed: its name, and the id and creation GSN the cluster's catalog gave it
/// (a notary removed and created again under the same name is another notary). A node signs
/// for all the notaries it hosts with one key, so the signature must say which one it
/// speaks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotaryIdentity {
    /// Its name.
    pub name: String,
    /// Its group id (never reused).
    pub id: u32,
    /// GSN of its creation in the default group.
    pub created_gsn: u64,
}

/// What a notarisation signature covers: a domain tag, the notary, and the whole request as
/// judged (transaction id, inputs, references, time window), in their canonical encoding.
fn notarised_bytes(notary: &NotaryIdentity, req: &NotariseRequest) -> Vec<u8> {
    let mut out = NOTARY_DOMAIN.to_vec();
    out.extend(postcard::to_stdvec(&(notary, req)).expect("encoding into a Vec cannot fail"));
    out
}

/// The node's signature saying that `notary` notarised `req`.
#[must_use]
pub fn sign_notarisation(
    key: &SigningKey,
    notary: &NotaryIdentity,
    req: &NotariseRequest,
) -> Signature {
    key.sign(&notarised_bytes(notary, req))
}

/// Checks that `signature` is `key`'s, saying that `notary` notarised `req`.
#[must_use]
pub fn verify_notarisation(
    key: &VerifyingKey,
    notary: &NotaryIdentity,
    req: &NotariseRequest,
    signature: &Signature,
) -> bool {
    key.verify(&notarised_bytes(notary, req), signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(index: u32) -> StateRef {
        StateRef {
            tx: "issue".into(),
            index,
        }
    }

    #[test]
    fn a_retry_is_the_same_success_even_for_a_state_both_consumed_and_referred_to() {
        let mut notary = Notary::default();
        let both = NotariseRequest {
            tx_id: "t".into(),
            inputs: vec![state(0)],
            references: vec![state(0)],
            time_window: None,
        };
        assert_eq!(notary.notarise(&both, 1), NotaryOutcome::Notarised);
        assert_eq!(
            notary.notarise(&both, 2),
            NotaryOutcome::Notarised,
            "a retry"
        );
        assert_eq!(notary.consumed_by(&state(0)), Some("t"));
        // The same transaction id referring to it without consuming it conflicts, as does
        // another transaction referring to it.
        let again = NotariseRequest {
            inputs: vec![state(2)],
            ..both.clone()
        };
        assert_eq!(
            notary.notarise(&again, 3),
            NotaryOutcome::Conflict(vec![(state(0), "t".into())])
        );
        let other = NotariseRequest {
            tx_id: "u".into(),
            inputs: vec![state(1)],
            references: vec![state(0)],
            time_window: None,
        };
        assert_eq!(
            notary.notarise(&other, 3),
            NotaryOutcome::Conflict(vec![(state(0), "t".into())])
        );
        assert_eq!(notary.consumed_by(&state(1)), None, "nothing consumed");
    }
}
