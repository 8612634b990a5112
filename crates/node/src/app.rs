//! What a group's executor runs: the [`synod_exec::Application`] of a hosted group, which is
//! the key-value store and, in the default group, the catalog; in a ledger channel, the
//! channel's ledger (`synod_ledger::Channel`).
//!
//! Locks: a write locks its key (and, with an idempotency token, the token log, which orders
//! tokened writes among themselves so the oldest token is forgotten first on every node); a
//! linearizable read locks its key for reading, a recursive read locks everything for reading;
//! a catalog change locks the catalog; a ledger envelope locks the ledger (envelopes are cut
//! into blocks in GSN order, so they run one at a time), but the costly part of validating it,
//! its signature check, runs before as a command that locks only its own verdict, so the checks
//! of successive envelopes run in parallel with each other and with the ledger. Commands on
//! different keys run in parallel on the node's worker pool. The store's own data sits behind one short mutex (its commands are
//! cheap); the locks are what keep each command's view serial, and every access is checked
//! against them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use synod_core::Slot;
use synod_exec::{Application, Ctx, Locks};
use tokio::sync::watch;

use synod_ledger::{Channel, Notary};

use crate::catalog::{AdminCommand, AdminOutput, Catalog, GroupInfo, GroupKind};
use crate::kv::{Entry, Kv, KvCommand, KvOutput, KvRequest};

/// What a command locks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LockKey {
    /// One key of the store.
    Entry(String),
    /// The idempotency-token log.
    Tokens,
    /// The catalog (default group only).
    Catalog,
    /// The channel's ledger (ledger channels only).
    Ledger,
    /// A state a notary request consumes (written) or refers to (read).
    State(synod_ledger::StateRef),
    /// The signature check numbered so of a ledger envelope: written by the check, read by
    /// the envelope's command, which so runs after its own check (and only its own).
    Signature(u64),
}

/// What a read asks for.
#[derive(Clone, Debug)]
pub(crate) struct Query {
    pub(crate) key: String,
    pub(crate) recurse: bool,
}

/// The result of a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    /// Everything below this GSN is reflected.
    pub gsn: Slot,
    /// The entry, if the key exists (single-key reads).
    pub entry: Option<Entry>,
    /// Every entry under the prefix, in key order (recursive reads).
    pub entries: Vec<(String, Entry)>,
}

impl Query {
    pub(crate) fn run(&self, gsn: Slot, kv: &Kv) -> ReadResult {
        if self.recurse {
            let entries = kv
                .prefix(&self.key)
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect();
            ReadResult {
                gsn,
                entry: None,
                entries,
            }
        } else {
            ReadResult {
                gsn,
                entry: kv.get(&self.key).cloned(),
                entries: Vec::new(),
            }
        }
    }

    fn locks(&self) -> Locks<LockKey> {
        if self.recurse {
            Locks::ReadAll
        } else {
            Locks::keys([LockKey::Entry(self.key.clone())], [])
        }
    }
}

/// A command for a group's executor.
#[derive(Debug)]
pub(crate) enum GroupCommand {
    /// A key-value command agreed in the log.
    Kv(KvRequest),
    /// A linearizable read, run on the node that serves it at its barrier's place in the
    /// order (other nodes apply the barrier as a no-op).
    Read(Query),
    /// A catalog change agreed in the default group.
    Admin(AdminCommand),
    /// A notarisation request delivered at agreed time `time`.
    Notarise {
        /// The request.
        req: synod_ledger::NotariseRequest,
        /// Agreed time of its slot, nanoseconds since the Unix epoch.
        time: u64,
    },
    /// Checks the signature of the transaction a ledger envelope carries, ahead of its
    /// [`GroupCommand::Ledger`]: it locks only its verdict, so the checks of successive
    /// envelopes run in parallel with each other and with the ledger, and the verdicts wait in
    /// [`GroupApp`]'s cache for the block that holds them.
    LedgerCheck {
        /// The encoded envelope.
        envelope: bytes::Bytes,
        /// The check's number (unique in the group on this node).
        check: u64,
    },
    /// A ledger envelope (a transaction or a tick) delivered at agreed time `time`.
    Ledger {
        /// The encoded envelope.
        envelope: bytes::Bytes,
        /// Agreed time of its slot, nanoseconds since the Unix epoch.
        time: u64,
        /// The number of its [`GroupCommand::LedgerCheck`].
        check: u64,
    },
}

/// What a command produced.
#[derive(Debug)]
pub(crate) enum GroupOutput {
    /// The GSN whose outcome it is (an earlier one for a repeated token) and the outcome.
    Kv(u64, KvOutput),
    Read(ReadResult),
    Admin(AdminOutput),
    /// The blocks the envelope cut (`None`: the group is not a ledger channel).
    Ledger(Option<Vec<u64>>),
    /// A signature was checked ahead of time.
    Checked,
    /// The notary's answer (`None`: the group is not a notary).
    Notary(Option<synod_ledger::NotaryOutcome>),
}

/// The default group's catalog and where its changes are published.
pub(crate) struct CatalogCell {
    catalog: Mutex<Catalog>,
    publish: watch::Sender<Arc<Catalog>>,
}

/// A group's application state.
pub(crate) struct GroupApp {
    kv: Mutex<Kv>,
    catalog: Option<CatalogCell>,
    /// Shared with readers, who lock it off the event loop (`Node::ledger_read`).
    ledger: Option<Arc<Mutex<Channel>>>,
    /// Signature verdicts of transactions checked ahead of validation, by encoding. Only
    /// speeds validation up: a transaction missing here is checked when its block is cut,
    /// with the same result.
    signatures: Mutex<SignatureCache>,
    /// A notary's consumed states. Requests lock the states they touch, so requests on
    /// different states run in parallel; the mutex only guards the map's memory.
    notary: Option<Mutex<Notary>>,
}

/// What a group's snapshot carries: the key-value store, and in the default group the catalog.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct AppState {
    pub(crate) kv: Kv,
    pub(crate) catalog: Option<Catalog>,
    /// A ledger channel's ledger.
    pub(crate) ledger: Option<Channel>,
    /// A notary's consumed states.
    pub(crate) notary: Option<Notary>,
}

impl AppState {
    /// The state of a group that has applied nothing yet: an empty store, or a channel with
    /// only its genesis block (which records the channel's name, id, creation GSN, first
    /// members and batch rules).
    pub(crate) fn fresh(info: Option<&GroupInfo>) -> AppState {
        let notary = info
            .filter(|i| i.kind == GroupKind::Notary)
            .map(|_| Notary::default());
        let ledger = info.and_then(|info| match &info.kind {
            GroupKind::Kv | GroupKind::Notary => None,
            GroupKind::Ledger(batch) => {
                // Only what never changes: a node that joins later, when the catalog lists
                // more hosts or another access list, must build the same genesis block.
                let genesis = ChannelGenesis {
                    name: &info.name,
                    id: info.id,
                    created_gsn: info.created_gsn,
                    members: &info.genesis,
                    batch: *batch,
                };
                let genesis =
                    postcard::to_stdvec(&genesis).expect("encoding into a Vec cannot fail");
                Some(Channel::genesis(*batch, bytes::Bytes::from(genesis), 0))
            }
        });
        AppState {
            kv: Kv::default(),
            catalog: None,
            ledger,
            notary,
        }
    }

    /// The encoding a snapshot carries: a format byte, then the state (postcard).
    pub(crate) fn encode(&self) -> bytes::Bytes {
        let mut out = vec![APP_FORMAT];
        out.extend(postcard::to_stdvec(self).expect("encoding into a Vec cannot fail"));
        bytes::Bytes::from(out)
    }

    /// Decodes a snapshot's application state.
    ///
    /// # Errors
    /// [`AppDecodeError::Format`] if another version of Synod wrote it (the data may be
    /// sound: a node must not wipe it), [`AppDecodeError::Undecodable`] if it does not decode
    /// in this format.
    pub(crate) fn decode(bytes: &[u8]) -> Result<AppState, AppDecodeError> {
        match bytes.split_first() {
            Some((&APP_FORMAT, state)) => {
                postcard::from_bytes(state).map_err(|e| AppDecodeError::Undecodable(e.to_string()))
            }
            Some((&other, _)) => Err(AppDecodeError::Format(other)),
            None => Err(AppDecodeError::Undecodable("empty".into())),
        }
    }
}

/// What a channel's genesis block holds: its creation, as the catalog recorded it.
#[derive(Serialize)]
struct ChannelGenesis<'a> {
    name: &'a str,
    id: u32,
    created_gsn: u64,
    members: &'a [u16],
    batch: synod_ledger::BatchConfig,
}

/// The format of a snapshot's application state ([`AppState::encode`]). Raise it with every
/// change to the encoding of the state (the catalog, the store, a channel, a notary), so that
/// a node never mistakes another version's snapshot for damage.
pub(crate) const APP_FORMAT: u8 = 1;

/// Why a snapshot's application state cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppDecodeError {
    /// Written in another format (by another version of Synod).
    #[error("written in format {0}; this node reads format {APP_FORMAT}")]
    Format(u8),
    /// Does not decode in this format.
    #[error("does not decode: {0}")]
    Undecodable(String),
}

/// Most bytes of transactions whose signature verdicts wait for their blocks. Entries leave
/// when their block is cut; one that never is (a snapshot installed over it) stays, so a full
/// cache is emptied, which costs only the speed-up.
const SIGNATURES_MAX_BYTES: usize = 64 << 20;

/// Signature verdicts of transactions checked ahead of validation, by encoding, and the
/// bytes they hold.
#[derive(Default)]
pub(crate) struct SignatureCache {
    verdicts: HashMap<bytes::Bytes, bool>,
    bytes: usize,
    /// The largest transaction a block of this channel may hold: larger ones are dropped by
    /// the cutter, so their verdicts would never be taken.
    tx_max: usize,
}

impl SignatureCache {
    fn insert(&mut self, tx: bytes::Bytes, valid: bool) {
        if tx.len() > self.tx_max {
            return;
        }
        if self.bytes + tx.len() > SIGNATURES_MAX_BYTES {
            self.verdicts.clear();
            self.bytes = 0;
        }
        let len = tx.len();
        // The same bytes twice (a resubmission) are held, and counted, once.
        if self.verdicts.insert(tx, valid).is_none() {
            self.bytes += len;
        }
    }

    fn take(&mut self, tx: &bytes::Bytes) -> Option<bool> {
        let valid = self.verdicts.remove(tx)?;
        self.bytes -= tx.len();
        Some(valid)
    }

    fn clear(&mut self) {
        self.verdicts.clear();
        self.bytes = 0;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GroupApp {
    /// The application of a group starting from `state`; `catalog` is the default group's
    /// publisher (the catalog is published at once).
    pub(crate) fn new(state: AppState, catalog: Option<watch::Sender<Arc<Catalog>>>) -> Self {
        let catalog = catalog.map(|publish| {
            let c = state
                .catalog
                .unwrap_or_else(|| (**publish.borrow()).clone());
            publish.send_replace(Arc::new(c.clone()));
            CatalogCell {
                catalog: Mutex::new(c),
                publish,
            }
        });
        GroupApp {
            kv: Mutex::new(state.kv),
            catalog,
            signatures: Mutex::new(SignatureCache {
                tx_max: state
                    .ledger
                    .as_ref()
                    .map_or(0, |l| l.config().absolute_max_bytes),
                ..SignatureCache::default()
            }),
            ledger: state.ledger.map(|l| Arc::new(Mutex::new(l))),
            notary: state.notary.map(Mutex::new),
        }
    }

    /// Runs `f` on the channel's ledger as applied so far (`None`: not a ledger channel).
    pub(crate) fn with_ledger<T>(&self, f: impl FnOnce(&Channel) -> T) -> Option<T> {
        self.ledger.as_ref().map(|l| f(&lock(l)))
    }

    /// The channel's ledger, for readers that lock it where they run (`None`: not a ledger
    /// channel).
    pub(crate) fn ledger(&self) -> Option<Arc<Mutex<Channel>>> {
        self.ledger.clone()
    }

    /// A read outside the GSN order (`?stale`): each key's value is one its history had, but
    /// keys may reflect different GSNs (commands on other keys finish in any order).
    pub(crate) fn read_stale(&self, query: &Query, applied: Slot) -> ReadResult {
        query.run(applied, &lock(&self.kv))
    }

    /// Keys in the store and a hash of its content (for status; stale like
    /// [`GroupApp::read_stale`]).
    pub(crate) fn summary(&self) -> (usize, u64) {
        let kv = lock(&self.kv);
        (kv.len(), kv.content_hash())
    }
}

impl Application for GroupApp {
    type Key = LockKey;
    type Command = GroupCommand;
    type Output = GroupOutput;
    type Snapshot = AppState;

    fn locks(&self, cmd: &GroupCommand) -> Locks<LockKey> {
        match cmd {
            GroupCommand::Kv(req) => {
                let token = req.token.as_ref().map(|_| LockKey::Tokens);
                let key = match &req.cmd {
                    KvCommand::Put { key, .. } | KvCommand::Delete { key, .. } => {
                        Some(LockKey::Entry(key.clone()))
                    }
                    KvCommand::Barrier => None,
                };
                Locks::keys([], key.into_iter().chain(token))
            }
            GroupCommand::Read(query) => query.locks(),
            GroupCommand::Admin(_) => Locks::keys([], [LockKey::Catalog]),
            GroupCommand::Ledger { check, .. } => {
                Locks::keys([LockKey::Signature(*check)], [LockKey::Ledger])
            }
            // A pure function of the envelope, so it depends on nothing before it.
            GroupCommand::LedgerCheck { check, .. } => {
                Locks::keys([], [LockKey::Signature(*check)])
            }
            GroupCommand::Notarise { req, .. } => Locks::keys(
                req.references.iter().cloned().map(LockKey::State),
                req.inputs.iter().cloned().map(LockKey::State),
            ),
        }
    }

    fn apply(&self, ctx: &Ctx<'_, LockKey>, cmd: GroupCommand) -> GroupOutput {
        match cmd {
            GroupCommand::Kv(req) => {
                if req.token.is_some() {
                    ctx.check_write(&LockKey::Tokens);
                }
                if let KvCommand::Put { key, .. } | KvCommand::Delete { key, .. } = &req.cmd {
                    ctx.check_write(&LockKey::Entry(key.clone()));
                }
                let (at, output) = lock(&self.kv).apply_request(ctx.gsn(), &req);
                GroupOutput::Kv(at, output)
            }
            GroupCommand::Read(query) => {
                if query.recurse {
                    ctx.check_scan();
                } else {
                    ctx.check_read(&LockKey::Entry(query.key.clone()));
                }
                GroupOutput::Read(query.run(Slot(ctx.gsn() + 1), &lock(&self.kv)))
            }
            GroupCommand::Admin(cmd) => {
                ctx.check_write(&LockKey::Catalog);
                let Some(cell) = &self.catalog else {
                    return GroupOutput::Admin(AdminOutput::Refused(
                        "catalog changes go to the default group".into(),
                    ));
                };
                let mut catalog = lock(&cell.catalog);
                let output = catalog.apply(ctx.gsn(), &cmd);
                if !matches!(output, AdminOutput::Refused(_)) {
                    // Published before the client hears back, so a client that reads the
                    // catalog after its change was acknowledged sees it.
                    cell.publish.send_replace(Arc::new(catalog.clone()));
                }
                GroupOutput::Admin(output)
            }
            GroupCommand::Notarise { req, time } => {
                for r in &req.references {
                    ctx.check_read(&LockKey::State(r.clone()));
                }
                for i in &req.inputs {
                    ctx.check_write(&LockKey::State(i.clone()));
                }
                GroupOutput::Notary(self.notary.as_ref().map(|n| lock(n).notarise(&req, time)))
            }
            GroupCommand::LedgerCheck { envelope, check } => {
                ctx.check_write(&LockKey::Signature(check));
                if self.ledger.is_some()
                    && let Some((tx, valid)) = synod_ledger::check_signature(&envelope)
                {
                    lock(&self.signatures).insert(tx, valid);
                }
                GroupOutput::Checked
            }
            GroupCommand::Ledger {
                envelope,
                time,
                check,
            } => {
                ctx.check_read(&LockKey::Signature(check));
                ctx.check_write(&LockKey::Ledger);
                GroupOutput::Ledger(self.ledger.as_ref().map(|l| {
                    lock(l)
                        .deliver_checked(&envelope, time, &mut |tx| lock(&self.signatures).take(tx))
                }))
            }
        }
    }

    fn snapshot(&self) -> AppState {
        AppState {
            kv: lock(&self.kv).clone(),
            catalog: self.catalog.as_ref().map(|c| lock(&c.catalog).clone()),
            ledger: self.ledger.as_ref().map(|l| lock(l).clone()),
            notary: self.notary.as_ref().map(|n| lock(n).clone()),
        }
    }

    fn restore(&self, state: AppState) {
        *lock(&self.kv) = state.kv;
        if let (Some(mine), Some(theirs)) = (&self.ledger, state.ledger) {
            *lock(mine) = theirs;
            // Verdicts of transactions the installed state already holds would never be taken.
            lock(&self.signatures).clear();
        }
        if let (Some(mine), Some(theirs)) = (&self.notary, state.notary) {
            *lock(mine) = theirs;
        }
        if let (Some(cell), Some(theirs)) = (&self.catalog, state.catalog) {
            cell.publish.send_replace(Arc::new(theirs.clone()));
            *lock(&cell.catalog) = theirs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ed25519_dalek::SigningKey;
    use synod_exec::{Executor, Job, WorkerPool};
    use synod_ledger::{BatchConfig, Envelope, Transaction, TxBody};

    fn envelope(n: u8) -> Bytes {
        let signer = SigningKey::from_bytes(&[n % 3 + 1; 32]);
        let mut tx = Transaction::sign(
            TxBody {
                id: format!("t{n}"),
                creator: signer.verifying_key().to_bytes(),
                reads: vec![],
                ranges: vec![],
                writes: vec![(format!("k{}", n % 4), Some(Bytes::from(vec![n])))],
            },
            &signer,
        );
        if n.is_multiple_of(5) {
            // A forgery: someone else's key named as creator.
            tx.body.creator = SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes();
        }
        Envelope::Tx(tx.encode()).encode()
    }

    #[test]
    fn signatures_checked_ahead_are_used_by_the_block_that_holds_them_and_then_dropped() {
        let batch = BatchConfig {
            max_message_count: 4,
            ..BatchConfig::default()
        };
        let info = GroupInfo {
            id: 1,
            name: "ch".into(),
            genesis: vec![0],
            hosts: [0].into(),
            created_gsn: 0,
            kind: GroupKind::Ledger(batch),
            access: None,
        };
        let pool = WorkerPool::new(2);
        let exec = Executor::new(GroupApp::new(AppState::fresh(Some(&info)), None), &pool, 64);
        let mut serial = AppState::fresh(Some(&info)).ledger.expect("a channel");
        // Nine envelopes: two full blocks, one transaction left pending.
        for n in 1..=9u8 {
            let envelope = envelope(n);
            serial.deliver(&envelope, u64::from(n));
            let check = GroupCommand::LedgerCheck {
                envelope: envelope.clone(),
                check: u64::from(n),
            };
            let apply = GroupCommand::Ledger {
                envelope,
                time: u64::from(n),
                check: u64::from(n),
            };
            exec.submit_many([check, apply].map(|cmd| Job::Command {
                gsn: u64::from(n),
                cmd,
                reply: None,
            }))
            .expect("submitted");
        }
        exec.wait_idle();
        let app = exec.app();
        assert_eq!(app.with_ledger(Clone::clone), Some(serial));
        assert_eq!(app.with_ledger(Channel::height), Some(3));
        // The eight verdicts of the cut blocks were taken; the pending one waits.
        assert_eq!(lock(&app.signatures).verdicts.len(), 1);
    }
}
