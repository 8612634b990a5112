//! The channel and the notary as applications a Synod node hosts ([`synod_exec::Hosted`]).
//!
//! A channel: every agreed envelope (a transaction or a tick) goes to the [`Channel`] in GSN
//! order, so envelopes lock the ledger and run one at a time; but the costly part of judging
//! a transaction, its signature check, runs ahead as a command of its own
//! ([`LedgerOp::Check`]) that locks only its verdict, so the checks of successive envelopes
//! run in parallel with each other and with the ledger. The verdicts wait in a bounded cache
//! for the block that holds them; a verdict missing there is checked when the block is cut,
//! with the same result, so the cache only ever saves time. The batch timeout is an agreed
//! timer: when the pending batch falls due, the node proposes a tick.
//!
//! A notary: a request locks the states it consumes (written) and refers to (read), so
//! requests on different states run in parallel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use serde::Serialize;
use synod_core::{GroupId, ReplicaId};
use synod_exec::host::{decode_with_format, encode_with_format};
use synod_exec::{Agreed, Application, Ctx, GroupSpec, Hosted, Locks, StateError, Summary, Timer};

use crate::channel::{Channel, Envelope, check_signature};
use crate::cutter::BatchConfig;
use crate::notary::{NotariseRequest, Notary, NotaryOutcome, StateRef};

/// The kind name of ledger channels in the catalog.
pub const CHANNEL_KIND: &str = "ledger";
/// The kind name of notaries in the catalog.
pub const NOTARY_KIND: &str = "notary";

/// The format of a channel's snapshot encoding; raise it with every change to it.
const CHANNEL_FORMAT: u8 = 1;
/// The format of a notary's snapshot encoding; raise it with every change to it.
const NOTARY_FORMAT: u8 = 1;

/// What a channel command locks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LedgerLock {
    /// The channel's ledger.
    Ledger,
    /// The verdict of signature check number `n`: written by the check, read by its
    /// envelope's delivery, which so runs after its own check (and only its own).
    Signature(u64),
}

/// A channel command.
#[derive(Clone, Debug)]
pub enum LedgerOp {
    /// Checks the signature of the transaction an envelope carries, ahead of its delivery.
    Check {
        /// The encoded envelope.
        envelope: Bytes,
        /// The check's number (unique in the group on this node).
        check: u64,
    },
    /// An envelope (a transaction or a tick) delivered at agreed time `time`.
    Deliver {
        /// The encoded envelope.
        envelope: Bytes,
        /// Agreed time of its slot, nanoseconds since the Unix epoch.
        time: u64,
        /// The number of its [`LedgerOp::Check`].
        check: u64,
    },
}

/// What a channel command produced: the blocks an envelope cut (none for a check).
pub type BlocksCut = Vec<u64>;

/// A channel's parameters, as the catalog records them at creation.
#[must_use]
pub fn channel_params(batch: &BatchConfig) -> Bytes {
    Bytes::from(postcard::to_stdvec(batch).expect("encoding into a Vec cannot fail"))
}

/// Decodes what [`channel_params`] wrote (`None`: not a channel's parameters).
#[must_use]
pub fn decode_channel_params(params: &[u8]) -> Option<BatchConfig> {
    postcard::from_bytes(params).ok()
}

/// What a channel's genesis block holds: its creation, as the catalog recorded it. Only what
/// never changes: a node that joins later, when the catalog lists more hosts or another access
/// list, must build the same genesis block.
#[derive(Serialize)]
struct ChannelGenesis<'a> {
    name: &'a str,
    id: GroupId,
    created_gsn: u64,
    members: &'a [ReplicaId],
    batch: BatchConfig,
}

/// Most bytes of transactions whose signature verdicts wait for their blocks. Entries leave
/// when their block is cut; one that never is (a snapshot installed over it) stays, so a full
/// cache is emptied, which costs only the speed-up.
const SIGNATURES_MAX_BYTES: usize = 64 << 20;

/// Signature verdicts of transactions checked ahead of validation, by encoding, and the
/// bytes they hold.
#[derive(Debug, Default)]
struct SignatureCache {
    verdicts: HashMap<Bytes, bool>,
    bytes: usize,
    /// The largest transaction a block of this channel may hold: larger ones are dropped by
    /// the cutter, so their verdicts would never be taken.
    tx_max: usize,
}

impl SignatureCache {
    fn insert(&mut self, tx: Bytes, valid: bool) {
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

    fn take(&mut self, tx: &Bytes) -> Option<bool> {
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

/// A ledger channel as a group's application.
#[derive(Debug)]
pub struct ChannelApp {
    channel: Mutex<Channel>,
    /// Signature verdicts checked ahead of validation.
    signatures: Mutex<SignatureCache>,
    /// Numbers the signature checks, so each envelope's delivery waits for its own check.
    /// Assigned on the node's event loop in GSN order ([`Hosted::ahead`]).
    checks: AtomicU64,
}

impl ChannelApp {
    /// The channel of group `spec`, holding only its genesis block (which records the
    /// channel's name, id, creation GSN, first members and batch rules). Parameters that do
    /// not decode give Fabric's default batch rules (the API refuses such a creation).
    #[must_use]
    pub fn new(spec: &GroupSpec) -> ChannelApp {
        let batch = decode_channel_params(&spec.params).unwrap_or_default();
        let genesis = ChannelGenesis {
            name: &spec.name,
            id: spec.id,
            created_gsn: spec.created_gsn,
            members: &spec.genesis,
            batch,
        };
        let genesis = postcard::to_stdvec(&genesis).expect("encoding into a Vec cannot fail");
        ChannelApp::from_channel(Channel::genesis(batch, Bytes::from(genesis), 0))
    }

    /// Hosts `channel` as it is.
    #[must_use]
    pub fn from_channel(channel: Channel) -> ChannelApp {
        ChannelApp {
            signatures: Mutex::new(SignatureCache {
                tx_max: channel.config().absolute_max_bytes,
                ..SignatureCache::default()
            }),
            channel: Mutex::new(channel),
            checks: AtomicU64::new(0),
        }
    }

    /// A copy of the channel as applied so far (O(1): persistent collections), for readers:
    /// the lock is held only to take it, never while a reader walks the chain.
    #[must_use]
    pub fn copy(&self) -> Channel {
        lock(&self.channel).clone()
    }

    /// The encoding of an envelope as a command in the log (it is its own encoding).
    #[must_use]
    pub fn encode(envelope: &Envelope) -> Bytes {
        envelope.encode()
    }

    /// Verdicts waiting for their blocks (for tests).
    #[must_use]
    pub fn verdicts_waiting(&self) -> usize {
        lock(&self.signatures).verdicts.len()
    }
}

impl Application for ChannelApp {
    type Key = LedgerLock;
    type Command = LedgerOp;
    type Output = BlocksCut;
    type Snapshot = Channel;

    fn locks(&self, cmd: &LedgerOp) -> Locks<LedgerLock> {
        match cmd {
            LedgerOp::Deliver { check, .. } => {
                Locks::keys([LedgerLock::Signature(*check)], [LedgerLock::Ledger])
            }
            // A pure function of the envelope, so it depends on nothing before it.
            LedgerOp::Check { check, .. } => Locks::keys([], [LedgerLock::Signature(*check)]),
        }
    }

    fn apply(&self, ctx: &Ctx<'_, LedgerLock>, cmd: LedgerOp) -> BlocksCut {
        match cmd {
            LedgerOp::Check { envelope, check } => {
                ctx.check_write(&LedgerLock::Signature(check));
                if let Some((tx, valid)) = check_signature(&envelope) {
                    lock(&self.signatures).insert(tx, valid);
                }
                Vec::new()
            }
            LedgerOp::Deliver {
                envelope,
                time,
                check,
            } => {
                ctx.check_read(&LedgerLock::Signature(check));
                ctx.check_write(&LedgerLock::Ledger);
                lock(&self.channel)
                    .deliver_checked(&envelope, time, &mut |tx| lock(&self.signatures).take(tx))
            }
        }
    }

    fn snapshot(&self) -> Channel {
        self.copy()
    }

    fn restore(&self, channel: Channel) {
        *lock(&self.channel) = channel;
        // Verdicts of transactions the installed state already holds would never be taken.
        lock(&self.signatures).clear();
    }
}

impl Hosted for ChannelApp {
    /// A channel answers reads from a copy ([`ChannelApp::copy`]), outside the order.
    type Query = std::convert::Infallible;

    fn decode(&self, bytes: &Bytes, at: Agreed) -> Option<LedgerOp> {
        // The channel itself judges what the envelope holds (garbage is recorded as such, the
        // same way on every node).
        Some(LedgerOp::Deliver {
            envelope: bytes.clone(),
            time: at.time_ns,
            check: 0,
        })
    }

    fn query(&self, query: Self::Query) -> LedgerOp {
        match query {}
    }

    fn ahead(&self, cmd: &mut LedgerOp) -> Option<LedgerOp> {
        let LedgerOp::Deliver {
            envelope, check, ..
        } = cmd
        else {
            return None;
        };
        *check = self.checks.fetch_add(1, Ordering::Relaxed);
        Some(LedgerOp::Check {
            envelope: envelope.clone(),
            check: *check,
        })
    }

    fn encode_state(state: &Channel) -> Bytes {
        encode_with_format(CHANNEL_FORMAT, state)
    }

    fn decode_state(&self, bytes: &[u8]) -> Result<Channel, StateError> {
        decode_with_format(CHANNEL_FORMAT, bytes)
    }

    fn timer(&self) -> Option<Timer> {
        let due_ns = lock(&self.channel).due_at()?;
        Some(Timer {
            due_ns,
            command: Envelope::Tick.encode(),
        })
    }

    fn summary(&self) -> Summary {
        let (height, tip) = lock(&self.channel).tip();
        Summary {
            items: height,
            digest: u64::from_le_bytes(tip[..8].try_into().expect("a hash has 32 bytes")),
        }
    }
}

/// A notary command: a request delivered at agreed time `time`.
#[derive(Clone, Debug)]
pub struct NotaryOp {
    /// The request.
    pub req: NotariseRequest,
    /// Agreed time of its slot, nanoseconds since the Unix epoch.
    pub time: u64,
}

/// A notary as a group's application.
#[derive(Debug, Default)]
pub struct NotaryApp {
    /// Requests lock the states they touch, so requests on different states run in parallel;
    /// the mutex only guards the map's memory.
    notary: Mutex<Notary>,
}

impl NotaryApp {
    /// An empty notary (every notary starts so, whatever its spec).
    #[must_use]
    pub fn new(_spec: &GroupSpec) -> NotaryApp {
        NotaryApp::default()
    }

    /// The encoding of a request as a command in the log.
    #[must_use]
    pub fn encode(req: &NotariseRequest) -> Bytes {
        Bytes::from(postcard::to_stdvec(req).expect("encoding into a Vec cannot fail"))
    }
}

impl Application for NotaryApp {
    type Key = StateRef;
    type Command = NotaryOp;
    type Output = NotaryOutcome;
    type Snapshot = Notary;

    fn locks(&self, cmd: &NotaryOp) -> Locks<StateRef> {
        Locks::keys(
            cmd.req.references.iter().cloned(),
            cmd.req.inputs.iter().cloned(),
        )
    }

    fn apply(&self, ctx: &Ctx<'_, StateRef>, cmd: NotaryOp) -> NotaryOutcome {
        for r in &cmd.req.references {
            ctx.check_read(r);
        }
        for i in &cmd.req.inputs {
            ctx.check_write(i);
        }
        lock(&self.notary).notarise(&cmd.req, cmd.time)
    }

    fn snapshot(&self) -> Notary {
        lock(&self.notary).clone()
    }

    fn restore(&self, notary: Notary) {
        *lock(&self.notary) = notary;
    }
}

impl Hosted for NotaryApp {
    /// A notary has no reads of its own: outcomes go to the requester.
    type Query = std::convert::Infallible;

    fn decode(&self, bytes: &Bytes, at: Agreed) -> Option<NotaryOp> {
        let req = postcard::from_bytes(bytes).ok()?;
        Some(NotaryOp {
            req,
            time: at.time_ns,
        })
    }

    fn query(&self, query: Self::Query) -> NotaryOp {
        match query {}
    }

    fn encode_state(state: &Notary) -> Bytes {
        encode_with_format(NOTARY_FORMAT, state)
    }

    fn decode_state(&self, bytes: &[u8]) -> Result<Notary, StateError> {
        decode_with_format(NOTARY_FORMAT, bytes)
    }

    fn summary(&self) -> Summary {
        Summary {
            items: lock(&self.notary).len() as u64,
            digest: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::{Transaction, TxBody};
    use ed25519_dalek::SigningKey;
    use synod_exec::{Executor, Job, WorkerPool};

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
        let spec = GroupSpec {
            id: GroupId(1),
            name: "ch".into(),
            created_gsn: 0,
            genesis: vec![ReplicaId(0)],
            params: channel_params(&batch),
        };
        let pool = WorkerPool::new(2);
        let exec = Executor::new(ChannelApp::new(&spec), &pool, 64);
        let mut serial = ChannelApp::new(&spec).copy();
        assert_eq!(
            serial.config(),
            &batch,
            "the parameters carry the batch rules"
        );
        // Nine envelopes: two full blocks, one transaction left pending.
        for n in 1..=9u8 {
            let envelope = envelope(n);
            serial.deliver(&envelope, u64::from(n));
            let at = Agreed {
                gsn: u64::from(n),
                time_ns: u64::from(n),
            };
            let mut cmd = exec.app().decode(&envelope, at).expect("decodes");
            let ahead = exec.app().ahead(&mut cmd).expect("a check ahead");
            exec.submit_many([ahead, cmd].map(|cmd| Job::Command {
                gsn: u64::from(n),
                cmd,
                reply: None,
            }))
            .expect("submitted");
        }
        exec.wait_idle();
        let app = exec.app();
        assert_eq!(app.copy(), serial);
        assert_eq!(app.copy().height(), 3);
        // The eight verdicts of the cut blocks were taken; the pending one waits.
        assert_eq!(app.verdicts_waiting(), 1);
        // A snapshot round-trips through its encoding.
        let state = ChannelApp::encode_state(&app.snapshot());
        assert_eq!(app.decode_state(&state).expect("decodes"), serial);
    }

    #[test]
    fn a_notary_round_trips_requests_and_state() {
        let app = NotaryApp::default();
        let req = NotariseRequest {
            tx_id: "t1".into(),
            inputs: vec![StateRef {
                tx: "issue".into(),
                index: 0,
            }],
            references: vec![],
            time_window: None,
        };
        let at = Agreed { gsn: 3, time_ns: 7 };
        let op = app.decode(&NotaryApp::encode(&req), at).expect("decodes");
        assert_eq!((op.req.clone(), op.time), (req, 7));
        assert!(app.decode(&Bytes::from_static(b"\xff\xff"), at).is_none());
        let locks = app.locks(&op);
        let ctx = Ctx::new(3, &locks);
        assert_eq!(app.apply(&ctx, op), NotaryOutcome::Notarised);
        let state = NotaryApp::encode_state(&app.snapshot());
        let copy = NotaryApp::default();
        copy.restore(copy.decode_state(&state).expect("decodes"));
        assert_eq!(copy.summary().items, 1);
    }
}
