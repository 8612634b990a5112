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
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use serde::Serialize;
use synod_core::{GroupId, ReplicaId};
use synod_exec::host::{decode_with_format, encode_with_format};
use synod_exec::{
    Agreed, AppDir, Application, Ctx, GroupSpec, Hosted, Locks, Position, StateError, Summary,
    Timer,
};

use crate::channel::{Channel, Envelope, LedgerView, check_signature};
use crate::cutter::BatchConfig;
use crate::merkle::Hash;
use crate::notary::{NotariseRequest, Notary, NotaryOutcome, StateRef};
use crate::store::{StoreError, open_database};

/// The kind name of ledger channels in the catalog.
pub const CHANNEL_KIND: &str = "ledger";
/// The kind name of notaries in the catalog.
pub const NOTARY_KIND: &str = "notary";

/// The format of a channel's snapshot encoding (its description; the state is streamed);
/// raise it with every change to it or to the checkpoint stream.
const CHANNEL_FORMAT: u8 = 3;
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
    /// An envelope (a transaction or a tick) delivered at `at` (its position and agreed time).
    Deliver {
        /// The encoded envelope.
        envelope: Bytes,
        /// Where it was agreed, and the agreed time of its slot.
        at: Agreed,
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

/// A ledger channel as a group's application, its ledger on disk ([`Channel`]).
pub struct ChannelApp {
    channel: Mutex<Channel>,
    /// Where the channel's database lives (`None`: in memory, for tests).
    dir: Option<AppDir>,
    /// Signature verdicts checked ahead of validation.
    signatures: Mutex<SignatureCache>,
    /// Numbers the signature checks, so each envelope's delivery waits for its own check.
    /// Assigned on the node's event loop in GSN order ([`Hosted::ahead`]).
    checks: AtomicU64,
}

impl std::fmt::Debug for ChannelApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelApp")
            .field("channel", &*lock(&self.channel))
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The database file in a channel's directory.
const DATABASE: &str = "ledger.redb";
/// Where a checkpoint received from a peer is built before it replaces the database:
/// `staged-<slot>.redb`, one name per checkpoint.
const STAGED: &str = "staged-";

/// A staged database's file, removed unless it was installed.
#[derive(Debug)]
pub struct StagedFile(Option<std::path::PathBuf>);

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes staged databases left by a run that stopped (they are rebuilt when needed).
fn remove_staged(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(STAGED) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// What a channel's snapshot is: a checkpoint to stream to peers, or one received and
/// staged, to install.
pub enum ChannelState {
    /// A consistent view of the database at a checkpoint.
    View(LedgerView),
    /// A database built from a peer's checkpoint, in its staging file (none: in memory),
    /// removed if it is never installed.
    Staged(Channel, StagedFile),
}

/// What a channel's checkpoint says of itself in the node's snapshot record (its state is
/// streamed apart): enough to check that a staged copy is the state it claims to be.
#[derive(Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
struct Described {
    applied: Position,
    height: u64,
    last: Hash,
    commit: Hash,
}

impl Described {
    fn of(tip: &crate::channel::Tip) -> Described {
        Described {
            applied: tip.applied,
            height: tip.height,
            last: tip.last,
            commit: tip.commit,
        }
    }
}

fn genesis_of(spec: &GroupSpec, batch: BatchConfig) -> Bytes {
    let genesis = ChannelGenesis {
        name: &spec.name,
        id: spec.id,
        created_gsn: spec.created_gsn,
        members: &spec.genesis,
        batch,
    };
    Bytes::from(postcard::to_stdvec(&genesis).expect("encoding into a Vec cannot fail"))
}

fn store_error(e: &StoreError) -> StateError {
    StateError::Store(e.to_string())
}

impl ChannelApp {
    /// The channel of group `spec` in memory, holding only its genesis block (which records
    /// the channel's name, id, creation GSN, first members and batch rules). Parameters that
    /// do not decode give Fabric's default batch rules (the API refuses such a creation).
    #[must_use]
    pub fn new(spec: &GroupSpec) -> ChannelApp {
        let batch = decode_channel_params(&spec.params).unwrap_or_default();
        ChannelApp::from_channel(Channel::genesis(batch, genesis_of(spec, batch), 0))
    }

    /// The channel of group `spec` in its directory `dir`: opened where it stands, or created
    /// with its genesis block.
    ///
    /// # Errors
    /// [`StateError::Store`]: its database cannot be opened or read.
    pub fn open(spec: &GroupSpec, dir: &AppDir) -> Result<ChannelApp, StateError> {
        let batch = decode_channel_params(&spec.params).unwrap_or_default();
        remove_staged(&dir.path);
        let db = open_database(&dir.path.join(DATABASE), dir.power_cut_test_mode)
            .map_err(|e| store_error(&e))?;
        let channel = Channel::open_or_create(db, batch, || genesis_of(spec, batch))
            .map_err(|e| store_error(&e))?;
        Ok(ChannelApp {
            dir: Some(dir.clone()),
            ..ChannelApp::from_channel(channel)
        })
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
            dir: None,
            checks: AtomicU64::new(0),
        }
    }

    /// A consistent view of the channel as committed, for readers: the lock is held only to
    /// begin it, never while a reader walks the chain.
    ///
    /// # Errors
    /// The database failed.
    pub fn view(&self) -> Result<LedgerView, StoreError> {
        lock(&self.channel).view()
    }

    /// The tip (height and last header hash) and commit hash as applied so far.
    #[must_use]
    pub fn tip(&self) -> ((u64, Hash), Hash) {
        let c = lock(&self.channel);
        (c.tip(), c.commit_hash())
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

    /// A checkpoint at `applied`: durable, and a view of it.
    fn checkpoint_at(&self, applied: Position) -> ChannelState {
        match lock(&self.channel).checkpoint(applied) {
            Ok(view) => ChannelState::View(view),
            // The group cannot go on without its store: its executor stops and the node
            // quarantines it (the error is in the node's status).
            Err(e) => panic!("channel checkpoint failed: {e}"),
        }
    }
}

impl Application for ChannelApp {
    type Key = LedgerLock;
    type Command = LedgerOp;
    type Output = BlocksCut;
    type Snapshot = ChannelState;

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
                at,
                check,
            } => {
                ctx.check_read(&LedgerLock::Signature(check));
                ctx.check_write(&LedgerLock::Ledger);
                let delivered = lock(&self.channel).deliver_checked(
                    &envelope,
                    at.time_ns,
                    at.next(),
                    &mut |tx| lock(&self.signatures).take(tx),
                );
                // As for a checkpoint: without its store the group cannot go on.
                delivered.unwrap_or_else(|e| panic!("channel store failed: {e}"))
            }
        }
    }

    fn snapshot(&self) -> ChannelState {
        // A view of what is committed, writing nothing (the node takes checkpoints through
        // `Hosted::checkpoint`, which makes one durable at a slot's start).
        match lock(&self.channel).view() {
            Ok(view) => ChannelState::View(view),
            Err(e) => panic!("channel view failed: {e}"),
        }
    }

    fn restore(&self, state: ChannelState) {
        let ChannelState::Staged(staged, mut file) = state else {
            panic!("a channel is restored from a staged checkpoint, not from a view");
        };
        let mut channel = lock(&self.channel);
        if let (Some(path), Some(dir)) = (file.0.take(), &self.dir) {
            // The staged database replaces the old one under its name; readers of the old
            // one keep their open file until they finish.
            let installed = std::fs::rename(&path, dir.path.join(DATABASE))
                .and_then(|()| std::fs::File::open(&dir.path)?.sync_all());
            if let Err(e) = installed {
                panic!("cannot install a channel checkpoint: {e}");
            }
        }
        *channel = staged;
        // Verdicts of transactions the installed state already holds would never be taken.
        lock(&self.signatures).clear();
    }
}

impl Hosted for ChannelApp {
    /// A channel answers reads from a view ([`ChannelApp::view`]), outside the order.
    type Query = std::convert::Infallible;

    fn decode(&self, bytes: &Bytes, at: Agreed) -> Option<LedgerOp> {
        // The channel itself judges what the envelope holds (garbage is recorded as such, the
        // same way on every node).
        Some(LedgerOp::Deliver {
            envelope: bytes.clone(),
            at,
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

    fn encode_state(state: &ChannelState) -> Bytes {
        let tip = match state {
            ChannelState::View(view) => view.tip_state().clone(),
            ChannelState::Staged(channel, _) => channel.tip_state().clone(),
        };
        encode_with_format(CHANNEL_FORMAT, &Described::of(&tip))
    }

    fn decode_state(&self, _bytes: &[u8]) -> Result<ChannelState, StateError> {
        Err(StateError::Undecodable(
            "a channel's state is streamed from its checkpoint, not decoded from a snapshot".into(),
        ))
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

    fn durable(&self) -> Option<Position> {
        // Read once, when the node opens the group: the tip as the database was opened with,
        // which is what is durable then.
        Some(lock(&self.channel).tip_state().applied)
    }

    fn checkpoint(&self, next_gsn: u64) -> ChannelState {
        self.checkpoint_at(Position::slot(next_gsn))
    }

    fn write_checkpoint(state: &ChannelState, out: &mut dyn Write) -> std::io::Result<()> {
        let ChannelState::View(view) = state else {
            return Err(std::io::Error::other("a staged channel is not streamed"));
        };
        crate::store::write_checkpoint(view.read(), out).map_err(std::io::Error::other)
    }

    fn read_checkpoint(
        &self,
        inline: &[u8],
        rest: &mut dyn Read,
    ) -> Result<ChannelState, StateError> {
        let described: Described = decode_with_format(CHANNEL_FORMAT, inline)?;
        let (db, file) = match &self.dir {
            Some(dir) => {
                let path = dir
                    .path
                    .join(format!("{STAGED}{}.redb", described.applied.gsn));
                let _ = std::fs::remove_file(&path);
                let file = StagedFile(Some(path.clone()));
                let db =
                    open_database(&path, dir.power_cut_test_mode).map_err(|e| store_error(&e))?;
                (db, file)
            }
            None => (crate::store::memory_database(), StagedFile(None)),
        };
        crate::store::read_checkpoint(&db, rest).map_err(|e| store_error(&e))?;
        let channel = Channel::open(db).map_err(|e| store_error(&e))?;
        if Described::of(channel.tip_state()) != described {
            return Err(StateError::Undecodable(
                "the streamed channel is not the checkpoint its snapshot describes".into(),
            ));
        }
        Ok(ChannelState::Staged(channel, file))
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
        let serial = ChannelApp::new(&spec);
        assert_eq!(
            lock(&serial.channel).config(),
            &batch,
            "the parameters carry the batch rules"
        );
        // Nine envelopes: two full blocks, one transaction left pending.
        for n in 1..=9u8 {
            let envelope = envelope(n);
            lock(&serial.channel).deliver(&envelope, u64::from(n));
            let at = Agreed {
                gsn: u64::from(n),
                index: 0,
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
        let digest = |a: &ChannelApp| a.view().unwrap().content_digest().unwrap();
        assert_eq!(digest(app), digest(&serial));
        assert_eq!(app.tip(), serial.tip());
        assert_eq!(app.tip().0.0, 3);
        // The eight verdicts of the cut blocks were taken; the pending one waits.
        assert_eq!(app.verdicts_waiting(), 1);
        assert_eq!(
            lock(&app.channel).durable().unwrap(),
            Position { gsn: 8, index: 1 },
            "the last block was cut at 8: what is on disk stands there"
        );
    }

    /// A checkpoint streamed as a node streams it to a peer, and installed there.
    fn transfer(
        from: &ChannelApp,
        to: &ChannelApp,
        next_gsn: u64,
        damage: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), StateError> {
        let state = from.checkpoint(next_gsn);
        let inline = ChannelApp::encode_state(&state);
        let mut stream = Vec::new();
        ChannelApp::write_checkpoint(&state, &mut stream).unwrap();
        damage(&mut stream);
        let staged = to.read_checkpoint(&inline, &mut &stream[..])?;
        to.restore(staged);
        Ok(())
    }

    /// A channel of blocks of three on disk in `dir`.
    fn open_channel(dir: &tempfile::TempDir) -> ChannelApp {
        let spec = GroupSpec {
            id: GroupId(1),
            name: "ch".into(),
            created_gsn: 0,
            genesis: vec![ReplicaId(0)],
            params: channel_params(&BatchConfig {
                max_message_count: 3,
                ..BatchConfig::default()
            }),
        };
        let dir = AppDir {
            path: dir.path().to_path_buf(),
            power_cut_test_mode: false,
        };
        ChannelApp::open(&spec, &dir).unwrap()
    }

    /// Two nodes' channels on disk: `a` with ten envelopes applied, `b` empty.
    fn two_channels() -> ([tempfile::TempDir; 2], ChannelApp, ChannelApp) {
        let dirs = [tempdir(), tempdir()];
        let (a, b) = (open_channel(&dirs[0]), open_channel(&dirs[1]));
        for n in 1..=10u8 {
            let locks = a.locks(
                &a.decode(
                    &envelope(n),
                    Agreed {
                        gsn: u64::from(n),
                        index: 0,
                        time_ns: 0,
                    },
                )
                .unwrap(),
            );
            let ctx = Ctx::new(u64::from(n), &locks);
            let cmd = a
                .decode(
                    &envelope(n),
                    Agreed {
                        gsn: u64::from(n),
                        index: 0,
                        time_ns: 0,
                    },
                )
                .unwrap();
            a.apply(&ctx, cmd);
        }
        (dirs, a, b)
    }

    #[test]
    fn a_checkpoint_whose_tables_disagree_with_its_tip_is_refused() {
        let (_dirs, a, b) = two_channels();
        let state = a.checkpoint(11);
        let inline = ChannelApp::encode_state(&state);
        let ChannelState::View(view) = &state else {
            panic!("a checkpoint of a channel is a view");
        };
        let before = b.tip();
        use crate::store::{BLOCKS, BY_HASH, CHAIN, HASHES, HISTORY, META, STATE, TXS};
        // Whole streams (their digests right) whose tables are not the chain the tip names.
        // The first was found by fuzzing (fuzz/regressions/app_state/): a channel with a tip
        // and no chain was installed, and a proof over it panicked.
        for (what, tables) in [
            ("only the tip", &[META][..]),
            (
                "no hash index",
                &[META, BLOCKS, CHAIN, STATE, HISTORY, TXS, HASHES][..],
            ),
            (
                "no chain table",
                &[META, BLOCKS, BY_HASH, STATE, HISTORY, TXS, HASHES][..],
            ),
        ] {
            let mut stream = Vec::new();
            crate::store::write_tables(view.read(), &mut stream, tables).unwrap();
            match b.read_checkpoint(&inline, &mut &stream[..]) {
                Err(e) => assert!(
                    e.to_string().contains("a received checkpoint"),
                    "{what}: {e}"
                ),
                Ok(_) => panic!("{what}: installed"),
            }
        }
        assert_eq!(b.tip(), before);
        // The whole stream still installs.
        let mut stream = Vec::new();
        ChannelApp::write_checkpoint(&state, &mut stream).unwrap();
        let staged = b.read_checkpoint(&inline, &mut &stream[..]).unwrap();
        b.restore(staged);
        assert_eq!(b.tip(), a.tip());
    }

    #[test]
    fn a_checkpoint_streams_to_another_node_and_damage_is_refused() {
        let (dirs, a, b) = two_channels();
        // Damaged or cut short: refused, and the receiver is unchanged.
        let before = b.tip();
        assert!(
            transfer(&a, &b, 11, |s| {
                let i = s.len() / 2;
                s[i] ^= 1;
            })
            .is_err()
        );
        assert!(transfer(&a, &b, 11, |s| s.truncate(s.len() - 40)).is_err());
        assert!(transfer(&a, &b, 11, |s| s.truncate(100)).is_err());
        assert_eq!(b.tip(), before);
        transfer(&a, &b, 11, |_| {}).unwrap();
        assert_eq!(b.tip(), a.tip());
        let digest = |x: &ChannelApp| x.view().unwrap().content_digest().unwrap();
        assert_eq!(digest(&b), digest(&a));
        assert_eq!(b.durable(), Some(Position::slot(11)));
        // The installed database is the receiver's own from now on: it reopens there.
        drop(b);
        let b = open_channel(&dirs[1]);
        assert_eq!(digest(&b), digest(&a));
        assert_eq!(b.durable(), Some(Position::slot(11)));
        assert!(
            std::fs::read_dir(dirs[1].path())
                .unwrap()
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with(STAGED)),
            "a staged database was left behind"
        );
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
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
        let at = Agreed {
            gsn: 3,
            index: 0,
            time_ns: 7,
        };
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
