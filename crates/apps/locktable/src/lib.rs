//! # synod-locktable: a replicated lock table with fencing tokens
//!
//! An example of an application on the Synod engine, small enough to read in one sitting and
//! written without changing the engine (docs/APPLICATIONS.md walks through it). A client
//! acquires a named lock for an owner and gets a *fencing token* that grows with every grant of
//! that lock (the GSN of the grant, or one more than the lock's previous token when several
//! grants share a slot), so a resource guarded by the lock can refuse a stale holder's writes
//! (Kleppmann's fencing). Every node applies the same acquires
//! and releases in the same order, so every node agrees on who holds each lock.
//!
//! What the engine needs from it is two traits: [`synod_exec::Application`] (the locks each
//! command takes, and applying it) and [`synod_exec::Hosted`] (decoding agreed bytes, local
//! reads, snapshot encodings). A node hosts it once its registry knows the kind:
//! `Apps::new(...).with(KIND, LockTable::new)`.
//!
//! What it does not do: expire locks (a lock is held until released; leases with agreed
//! expiry are the coordination service's job), or serve HTTP.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use synod_exec::host::{decode_with_format, encode_with_format};
use synod_exec::{Agreed, Application, Ctx, GroupSpec, Hosted, Locks, StateError, Summary};

use synod_node::{GroupId, Node, RequestError};

/// The kind name of lock tables in the catalog.
pub const KIND: &str = "locktable";

/// The format of the table's snapshot encoding; raise it with every change to it.
const FORMAT: u8 = 1;

/// What a client proposes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockCommand {
    /// Take `lock` for `owner`, if it is free (or already `owner`'s).
    Acquire {
        /// The lock's name.
        lock: String,
        /// Who takes it.
        owner: String,
    },
    /// Give `lock` back, if `owner` holds it.
    Release {
        /// The lock's name.
        lock: String,
        /// Who gives it back.
        owner: String,
    },
}

impl LockCommand {
    fn lock(&self) -> &str {
        match self {
            LockCommand::Acquire { lock, .. } | LockCommand::Release { lock, .. } => lock,
        }
    }
}

/// A lock's holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Who holds it.
    pub owner: String,
    /// The fencing token of the grant: larger than every earlier grant's of this lock.
    pub token: u64,
}

/// One lock: its holder, and the last token it granted (kept after a release, so the next
/// grant's token is larger even within one slot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    /// Who holds it, if anyone.
    pub holder: Option<Holder>,
    /// The token of its last grant.
    pub last_token: u64,
}

/// What a command (or a read) produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockAnswer {
    /// The lock is the caller's, with this fencing token (the same token if the caller held
    /// it already: acquiring is idempotent).
    Granted {
        /// The fencing token.
        token: u64,
    },
    /// Someone else holds it.
    Held(Holder),
    /// Released.
    Released,
    /// The caller did not hold it; nothing changed.
    NotHeld,
    /// A read: who holds the lock, if anyone.
    Holder(Option<Holder>),
}

/// A command for the scheduler: an agreed change, or a read at a barrier's place.
#[derive(Clone, Debug)]
pub enum LockOp {
    /// An agreed acquire or release.
    Change(LockCommand),
    /// Who holds this lock (a linearizable read on one node).
    Read(String),
}

/// The table: lock name to its state.
#[derive(Debug, Default)]
pub struct LockTable {
    locks: Mutex<BTreeMap<String, LockState>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LockTable {
    /// An empty table (every lock table starts so).
    #[must_use]
    pub fn new(_spec: &GroupSpec) -> LockTable {
        LockTable::default()
    }

    /// The encoding of a command in the log.
    #[must_use]
    pub fn encode(cmd: &LockCommand) -> Bytes {
        Bytes::from(postcard::to_stdvec(cmd).expect("encoding into a Vec cannot fail"))
    }
}

impl Application for LockTable {
    /// Commands lock the name of the lock they touch: acquires of different locks run in
    /// parallel, two acquires of one lock run in GSN order.
    type Key = String;
    type Command = LockOp;
    type Output = LockAnswer;
    type Snapshot = BTreeMap<String, LockState>;

    fn locks(&self, op: &LockOp) -> Locks<String> {
        match op {
            LockOp::Change(cmd) => Locks::keys([], [cmd.lock().to_string()]),
            LockOp::Read(name) => Locks::keys([name.clone()], []),
        }
    }

    fn apply(&self, ctx: &Ctx<'_, String>, op: LockOp) -> LockAnswer {
        match op {
            LockOp::Read(name) => {
                ctx.check_read(&name);
                let locks = lock(&self.locks);
                LockAnswer::Holder(locks.get(&name).and_then(|l| l.holder.clone()))
            }
            LockOp::Change(LockCommand::Acquire { lock: name, owner }) => {
                ctx.check_write(&name);
                let mut locks = lock(&self.locks);
                let state = locks.entry(name).or_default();
                match &state.holder {
                    Some(h) if h.owner == owner => LockAnswer::Granted { token: h.token },
                    Some(h) => LockAnswer::Held(h.clone()),
                    None => {
                        // The GSN, the same on every node; one more than the last grant if
                        // that was in this same slot (a release and an acquire batched).
                        let token = ctx.gsn().max(state.last_token + 1);
                        state.last_token = token;
                        state.holder = Some(Holder { owner, token });
                        LockAnswer::Granted { token }
                    }
                }
            }
            LockOp::Change(LockCommand::Release { lock: name, owner }) => {
                ctx.check_write(&name);
                let mut locks = lock(&self.locks);
                match locks.get_mut(&name) {
                    Some(state) if state.holder.as_ref().is_some_and(|h| h.owner == owner) => {
                        state.holder = None;
                        LockAnswer::Released
                    }
                    _ => LockAnswer::NotHeld,
                }
            }
        }
    }

    fn snapshot(&self) -> BTreeMap<String, LockState> {
        lock(&self.locks).clone()
    }

    fn restore(&self, state: BTreeMap<String, LockState>) {
        *lock(&self.locks) = state;
    }
}

impl Hosted for LockTable {
    type Query = String;

    fn decode(&self, bytes: &Bytes, _at: Agreed) -> Option<LockOp> {
        postcard::from_bytes(bytes).ok().map(LockOp::Change)
    }

    fn query(&self, name: String) -> LockOp {
        LockOp::Read(name)
    }

    fn encode_state(state: &BTreeMap<String, LockState>) -> Bytes {
        encode_with_format(FORMAT, state)
    }

    fn decode_state(&self, bytes: &[u8]) -> Result<BTreeMap<String, LockState>, StateError> {
        decode_with_format(FORMAT, bytes)
    }

    fn summary(&self) -> Summary {
        let locks = lock(&self.locks);
        // A digest of who holds what, equal on nodes idle at the same GSN.
        let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
        let mut held = 0;
        for (name, state) in locks.iter() {
            let owner = state.holder.as_ref().map_or("", |h| h.owner.as_str());
            held += u64::from(state.holder.is_some());
            for b in name
                .bytes()
                .chain(owner.bytes())
                .chain(state.last_token.to_le_bytes())
            {
                digest = (digest ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        Summary {
            items: held,
            digest,
        }
    }
}

/// Agrees on `cmd` in lock table `group` through `node`; returns its answer.
///
/// # Errors
/// [`RequestError`]; on `Stopped` the outcome is unknown (acquire again: it is idempotent).
pub async fn change(
    node: &Node,
    group: GroupId,
    cmd: &LockCommand,
) -> Result<LockAnswer, RequestError> {
    let (_, answer) = node
        .submit_to::<LockTable>(group, LockTable::encode(cmd))
        .await?;
    Ok(answer)
}

/// Who holds `name`, as of a barrier through the log (linearizable).
///
/// # Errors
/// [`RequestError`].
pub async fn holder(
    node: &Node,
    group: GroupId,
    name: &str,
) -> Result<Option<Holder>, RequestError> {
    match node.query_to::<LockTable>(group, name.to_string()).await? {
        (_, LockAnswer::Holder(h)) => Ok(h),
        _ => Err(RequestError::WrongKind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(table: &LockTable, gsn: u64, cmd: LockCommand) -> LockAnswer {
        let op = LockOp::Change(cmd);
        let locks = table.locks(&op);
        table.apply(&Ctx::new(gsn, &locks), op)
    }

    fn acquire(owner: &str) -> LockCommand {
        LockCommand::Acquire {
            lock: "L".into(),
            owner: owner.into(),
        }
    }

    fn release(owner: &str) -> LockCommand {
        LockCommand::Release {
            lock: "L".into(),
            owner: owner.into(),
        }
    }

    #[test]
    fn tokens_grow_with_every_grant_even_within_one_slot() {
        let table = LockTable::default();
        // Acquire, release and acquire by another, all in the batch of slot 7.
        assert_eq!(
            apply(&table, 7, acquire("a")),
            LockAnswer::Granted { token: 7 }
        );
        assert_eq!(apply(&table, 7, release("a")), LockAnswer::Released);
        assert_eq!(
            apply(&table, 7, acquire("b")),
            LockAnswer::Granted { token: 8 }
        );
        // A slot the previous grant already reached still gives a larger token.
        assert_eq!(apply(&table, 8, release("b")), LockAnswer::Released);
        assert_eq!(
            apply(&table, 8, acquire("c")),
            LockAnswer::Granted { token: 9 }
        );
        // Acquiring again is idempotent; a later grant takes its slot's GSN.
        assert_eq!(
            apply(&table, 20, acquire("c")),
            LockAnswer::Granted { token: 9 }
        );
        assert_eq!(apply(&table, 21, release("c")), LockAnswer::Released);
        assert_eq!(
            apply(&table, 30, acquire("a")),
            LockAnswer::Granted { token: 30 }
        );
    }
}
