//! A channel's ledger: what every member applies, in agreed order, kept on disk.
//!
//! [`Channel::deliver`] takes each envelope the agreement delivers (a transaction or a tick)
//! with the agreed time, cuts blocks ([`crate::cutter`]), validates each block's transactions
//! in order (signature, duplicate id, bad read/write set, MVCC read conflicts, phantom range
//! reads) and commits the valid ones' writes with version `(block, index)`. Everything here is
//! deterministic: members fed the same envelopes hold byte-identical chains and state.
//!
//! The chain, the world state, every key's history and the transaction index are in the
//! channel's database ([`crate::store`]); in memory are only the tip (height, last header
//! hash, commit hash, the chain tree's frontier) and the cutter's pending batch. The blocks an
//! envelope cuts are committed in one database transaction with the tip and the position in
//! the agreed order they reflect, so what is on disk is always the state after some prefix of
//! the order, whatever moment a crash comes at. Commits are synced only at checkpoints
//! ([`Channel::checkpoint`]) and every [`SYNC_EVERY`] blocks: after a crash the node replays
//! the log from the last synced position, which it keeps. Reads go through a [`LedgerView`],
//! a consistent read transaction that never blocks the writer.

use std::sync::Arc;

use bytes::Bytes;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use synod_exec::Position;

use crate::block::{Block, BlockMetadata, commit_hash, genesis_block};
use crate::cutter::{BatchConfig, BlockCutter};
use crate::merkle::{self, Hash};
use crate::store::{
    self, BLOCKS, BY_HASH, CHAIN, HASHES, HISTORY, META, STATE, StoreError, TIP, TXS, decode,
    encode,
};
use crate::tx::{Key, Transaction, ValidationCode, Version};
use crate::validate::{View, judge};
pub use crate::view::LedgerView;

/// What the agreement delivers to a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Envelope {
    /// An encoded [`Transaction`] (decoded, and judged, at validation).
    Tx(Bytes),
    /// Agreed time moved on (proposed by a node whose pending batch fell due).
    Tick,
}

impl Envelope {
    /// The canonical encoding.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_stdvec(self).expect("encoding an envelope cannot fail"))
    }

    /// Decodes [`Self::encode`]'s output.
    ///
    /// # Errors
    /// The bytes are not an envelope.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// Checks the signature of the transaction an envelope carries, ahead of its validation:
/// its encoding and whether the signature is valid (`None` for a tick, or bytes that decode
/// to no transaction, which validation marks `BAD_PAYLOAD` by itself). The costly part of
/// validation (an Ed25519 verification) depends on nothing but the bytes, so a node runs it
/// for each envelope as it arrives, in parallel, and hands the verdicts to
/// [`Channel::deliver_checked`].
#[must_use]
pub fn check_signature(envelope: &[u8]) -> Option<(Bytes, bool)> {
    match Envelope::decode(envelope) {
        Ok(Envelope::Tx(bytes)) => {
            let tx = Transaction::decode(&bytes).ok()?;
            Some((bytes, tx.signature_valid()))
        }
        Ok(Envelope::Tick) | Err(_) => None,
    }
}

/// A transaction's hash: SHA-256 of its encoding, as submitted. It names one submission,
/// whoever signed it and whatever its id.
#[must_use]
pub fn tx_hash(encoded: &[u8]) -> Hash {
    use sha2::Digest;
    sha2::Sha256::digest(encoded).into()
}

/// Where a transaction ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxStatus {
    /// Its block.
    pub block: u64,
    /// Its index in the block.
    pub index: u32,
    /// Its validation code.
    pub code: ValidationCode,
}

/// Proof that a transaction is in the chain: the transaction against its block's header (an
/// RFC 6962 audit path under the data hash), and the header against the chain tree of
/// `height` blocks (an audit path under `chain_root`). Compare `chain_root` with what other
/// nodes report for that height (or a root you trust) and nothing else need be trusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxProof {
    /// The block's header.
    pub header: crate::block::BlockHeader,
    /// Transactions in the block.
    pub size: u64,
    /// The transaction's index.
    pub index: u64,
    /// The encoded transaction.
    pub tx: Bytes,
    /// The audit path of the transaction under the header's data hash.
    pub path: Vec<u8>,
    /// Blocks in the chain tree the header is proven in.
    pub height: u64,
    /// The RFC 6962 root of the first `height` header hashes.
    pub chain_root: Hash,
    /// The audit path of the header's hash under `chain_root`.
    pub header_path: Vec<u8>,
}

impl TxProof {
    /// Checks the proof against its header, trusting nothing else from the node.
    ///
    /// # Errors
    /// The transaction is not in the block the header describes.
    pub fn verify(&self) -> Result<(), merkle::ProofError> {
        merkle::verify_inclusion(
            self.header.data_hash,
            self.size,
            &self.tx,
            self.index,
            &self.path,
        )?;
        merkle::verify_inclusion(
            self.chain_root,
            self.height,
            &self.header.hash(),
            self.header.number,
            &self.header_path,
        )
    }
}

/// Block commits between two synced ones (besides checkpoints): bounds what a crash makes
/// the node replay from its log, and lets the database reuse the pages it freed (redb frees
/// pages only at synced commits).
pub const SYNC_EVERY: u64 = 64;

/// What a channel keeps in memory, and in its database's `meta` table with every commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tip {
    pub(crate) config: BatchConfig,
    /// The batch being filled (as of this commit: later envelopes are replayed into it).
    pub(crate) cutter: BlockCutter,
    /// Blocks committed.
    pub(crate) height: u64,
    /// The last block's header hash.
    pub(crate) last: Hash,
    /// The commit hash after the last block.
    pub(crate) commit: Hash,
    /// The chain tree over every header hash so far.
    pub(crate) frontier: merkle::Frontier,
    /// Where in the agreed order this state stands (every command before it applied).
    pub(crate) applied: Position,
}

/// One channel's ledger and world state, on disk.
pub struct Channel {
    db: Arc<Database>,
    tip: Tip,
    /// Block commits since the last synced one.
    unsynced: u64,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("height", &self.tip.height)
            .field("applied", &self.tip.applied)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// A channel in memory whose genesis block holds `genesis` (its configuration, encoded by
    /// the caller) and which cuts blocks by `config` (tests, audits).
    #[must_use]
    pub fn genesis(config: BatchConfig, genesis: Bytes, time: u64) -> Channel {
        Channel::create(store::memory_database(), config, genesis, time)
            .expect("a database in memory does not fail")
    }

    /// Opens the channel in `db`, or creates it there (genesis block holding `genesis`, cut
    /// by `config`) if `db` holds none.
    ///
    /// # Errors
    /// The database failed, or holds something this version cannot read.
    pub fn open_or_create(
        db: Database,
        config: BatchConfig,
        genesis: impl FnOnce() -> Bytes,
    ) -> Result<Channel, StoreError> {
        match read_tip(&db)? {
            Some(tip) => Ok(Channel {
                db: Arc::new(db),
                tip,
                unsynced: 0,
            }),
            None => Channel::create(db, config, genesis(), 0),
        }
    }

    /// Opens the channel a database holds (a checkpoint received from a peer), once its chain
    /// agrees with its tip (`check_chain`).
    ///
    /// # Errors
    /// The database failed, holds no channel, or its chain is not the one its tip describes.
    pub fn open(db: Database) -> Result<Channel, StoreError> {
        let tip = read_tip(&db)?
            .ok_or_else(|| StoreError::Corrupt("no channel in the database".into()))?;
        check_chain(&db, &tip)?;
        Ok(Channel {
            db: Arc::new(db),
            tip,
            unsynced: 0,
        })
    }

    fn create(
        db: Database,
        config: BatchConfig,
        genesis: Bytes,
        time: u64,
    ) -> Result<Channel, StoreError> {
        let mut c = Channel {
            db: Arc::new(db),
            tip: Tip {
                config,
                cutter: BlockCutter::default(),
                height: 0,
                last: [0; 32],
                commit: [0; 32],
                frontier: merkle::Frontier::default(),
                applied: Position::default(),
            },
            unsynced: 0,
        };
        let block = genesis_block(genesis, time);
        let txn = c.db.begin_write()?;
        // Every table exists from the start, so that readers find them all.
        store::create_tables(&txn)?;
        c.tip.commit = block.metadata.commit_hash;
        push(&txn, &mut c.tip, &block)?;
        write_tip(&txn, &c.tip)?;
        txn.commit()?;
        Ok(c)
    }

    /// Applies one delivered envelope at agreed time `time`; returns the numbers of the blocks
    /// it committed (usually none, at most two). Undecodable bytes count as a tick.
    ///
    /// # Panics
    /// If the database fails (tests and audits, whose databases are in memory; a node uses
    /// [`Self::deliver_checked`]).
    pub fn deliver(&mut self, envelope: &[u8], time: u64) -> Vec<u64> {
        let at = self.tip.applied;
        self.deliver_checked(envelope, time, at, &mut |_| None)
            .expect("the ledger's database failed")
    }

    /// Like [`Self::deliver`], taking the signature verdicts of transactions checked ahead of
    /// time ([`check_signature`], run in parallel as envelopes arrive): `checked` returns a
    /// transaction's verdict given its encoding, or `None` to have it checked here. A verdict
    /// is a pure function of the bytes, so the result is the same either way. `applied` is
    /// the position in the agreed order after this envelope, recorded with the blocks it cuts.
    ///
    /// # Errors
    /// The database failed: the channel must not be used further (its tip in memory may be
    /// ahead of the database).
    pub fn deliver_checked(
        &mut self,
        envelope: &[u8],
        time: u64,
        applied: Position,
        checked: &mut dyn FnMut(&Bytes) -> Option<bool>,
    ) -> Result<Vec<u64>, StoreError> {
        let config = self.tip.config;
        let batches = match Envelope::decode(envelope) {
            Ok(Envelope::Tx(tx)) => self.tip.cutter.ordered(&config, tx, time),
            Ok(Envelope::Tick) | Err(_) => self.tip.cutter.on_time(&config, time),
        };
        self.tip.applied = applied;
        if batches.is_empty() {
            // Only the pending batch changed: replayed from the log after a crash.
            return Ok(Vec::new());
        }
        let txn = self.db.begin_write()?;
        let mut cut = Vec::with_capacity(batches.len());
        for data in batches {
            cut.push(commit_block(&txn, &mut self.tip, data, time, checked)?);
        }
        self.commit(txn, false)?;
        Ok(cut)
    }

    /// Validates `data` in order and commits it as the next block; returns its number.
    ///
    /// # Panics
    /// If the database fails (as [`Self::deliver`]).
    pub fn commit_block(&mut self, data: Vec<Bytes>, time: u64) -> u64 {
        let commit = || -> Result<u64, StoreError> {
            let txn = self.db.begin_write()?;
            let n = commit_block(&txn, &mut self.tip, data, time, &mut |_| None)?;
            self.commit(txn, false)?;
            Ok(n)
        };
        commit().expect("the ledger's database failed")
    }

    /// Commits `txn` with the tip; synced if `sync` or every [`SYNC_EVERY`] commits.
    fn commit(&mut self, mut txn: WriteTransaction, sync: bool) -> Result<(), StoreError> {
        write_tip(&txn, &self.tip)?;
        self.unsynced += 1;
        if sync || self.unsynced >= SYNC_EVERY {
            self.unsynced = 0;
        } else {
            txn.set_durability(redb::Durability::None)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Makes the state durable at `applied` (the start of a slot: nothing of it applied yet)
    /// and returns a view of it, consistent however far the channel moves on after.
    ///
    /// # Errors
    /// The database failed.
    pub fn checkpoint(&mut self, applied: Position) -> Result<LedgerView, StoreError> {
        if applied < self.tip.applied {
            // Recording it would make the commands between replay twice after a crash.
            return Err(StoreError::Corrupt(format!(
                "a checkpoint at {applied:?} is behind the state, at {:?}",
                self.tip.applied
            )));
        }
        self.tip.applied = applied;
        let txn = self.db.begin_write()?;
        self.commit(txn, true)?;
        self.view()
    }

    /// A consistent view of what is committed, for readers (which never block the writer).
    ///
    /// # Errors
    /// The database failed.
    pub fn view(&self) -> Result<LedgerView, StoreError> {
        LedgerView::new(self.db.begin_read()?, self.due_at())
    }

    /// The tip as applied (in memory).
    pub(crate) fn tip_state(&self) -> &Tip {
        &self.tip
    }

    /// Where in the agreed order the state on disk, as last committed, stands.
    ///
    /// # Errors
    /// The database failed.
    pub fn durable(&self) -> Result<Position, StoreError> {
        Ok(read_tip(&self.db)?.map_or(Position::default(), |t| t.applied))
    }

    /// The channel's batch rules.
    #[must_use]
    pub fn config(&self) -> &BatchConfig {
        &self.tip.config
    }

    /// When (agreed time) the pending batch falls due, if there is one: the driver proposes a
    /// [`Envelope::Tick`] once its clock passes it.
    #[must_use]
    pub fn due_at(&self) -> Option<u64> {
        self.tip.cutter.due_at(&self.tip.config)
    }

    /// Blocks committed (the next block's number).
    #[must_use]
    pub fn height(&self) -> u64 {
        self.tip.height
    }

    /// The tip: height and the last header's hash.
    #[must_use]
    pub fn tip(&self) -> (u64, Hash) {
        (self.tip.height, self.tip.last)
    }

    /// The commit hash after the last block (equal on members with equal final state).
    #[must_use]
    pub fn commit_hash(&self) -> Hash {
        self.tip.commit
    }
}

/// Checks that a received database's chain is the one its tip describes: a block under every
/// number below the tip's height and none above, each indexed by its header hash, each header
/// linking to the one before, the chain table's hashes and tree roots those of the blocks, and
/// the last hash and tree the tip's. A checkpoint whose tip says more than its tables hold was
/// installed before this check, and proofs over it then panicked (found by fuzzing:
/// `fuzz/regressions/app_state/checkpoint-tip-without-chain`). What the blocks' transactions
/// did to the world state is not replayed here (`synod ledger audit` does that); the stream
/// that carried them is checked whole by its digest.
fn check_chain(db: &Database, tip: &Tip) -> Result<(), StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("a received checkpoint: {what}"));
    let read = db.begin_read()?;
    let chain = read.open_table(CHAIN)?;
    let blocks = read.open_table(BLOCKS)?;
    let by_hash = read.open_table(BY_HASH)?;
    let mut frontier = merkle::Frontier::default();
    let mut previous: Option<Hash> = None;
    let mut height = 0u64;
    for (entry, block) in chain.iter()?.zip(blocks.iter()?) {
        let ((number, link), (block_number, block)) = (entry?, block?);
        let number = number.value();
        if number != height.to_be_bytes() || block_number.value() != number {
            return Err(corrupt(format!("no block {height}")));
        }
        let block: Block = decode(block.value(), "a block")?;
        let hash = block.header.hash();
        let link = link.value();
        frontier.push(&hash);
        if block.header.number != height
            || link.len() != 64
            || link[..32] != hash
            || link[32..] != frontier.root()
            || block.header.previous_hash != previous.unwrap_or([0; 32])
        {
            return Err(corrupt(format!("block {height} is not the chain's")));
        }
        match by_hash.get(&hash[..])? {
            Some(n) if n.value() == number => {}
            _ => {
                return Err(corrupt(format!(
                    "block {height} is not indexed by its hash"
                )));
            }
        }
        previous = Some(hash);
        height += 1;
    }
    if height == 0
        || height != tip.height
        || chain.len()? != height
        || blocks.len()? != height
        || by_hash.len()? != height
        || previous != Some(tip.last)
        || frontier != tip.frontier
    {
        return Err(corrupt(format!(
            "its tip says {} blocks, its tables hold another chain of {height}",
            tip.height
        )));
    }
    Ok(())
}

fn read_tip(db: &Database) -> Result<Option<Tip>, StoreError> {
    let read = db.begin_read()?;
    let meta = match read.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    meta.get(TIP)?
        .map(|v| decode(v.value(), "the tip"))
        .transpose()
}

fn write_tip(txn: &WriteTransaction, tip: &Tip) -> Result<(), StoreError> {
    #[cfg(feature = "mutation-commit-forgets-pending")]
    let tip = &Tip {
        cutter: BlockCutter::default(),
        ..tip.clone()
    };
    txn.open_table(META)?.insert(TIP, &encode(tip)[..])?;
    Ok(())
}

/// Appends `block` to the chain tables and the tip.
fn push(txn: &WriteTransaction, tip: &mut Tip, block: &Block) -> Result<(), StoreError> {
    let number = block.header.number;
    let hash = block.header.hash();
    tip.frontier.push(&hash);
    let mut chain = [0; 64];
    chain[..32].copy_from_slice(&hash);
    chain[32..].copy_from_slice(&tip.frontier.root());
    txn.open_table(BLOCKS)?
        .insert(&number.to_be_bytes()[..], &encode(block)[..])?;
    txn.open_table(CHAIN)?
        .insert(&number.to_be_bytes()[..], &chain[..])?;
    txn.open_table(BY_HASH)?
        .insert(&hash[..], &number.to_be_bytes()[..])?;
    tip.height = number + 1;
    tip.last = hash;
    Ok(())
}

/// The state a block's transactions are judged against: the database as this block's
/// transaction sees it, earlier valid transactions of the block included.
struct Judging<'t> {
    state: Table<'t, &'static [u8], &'static [u8]>,
    txs: Table<'t, &'static [u8], &'static [u8]>,
}

impl View for Judging<'_> {
    fn version(&self, key: &Key) -> Result<Option<Version>, StoreError> {
        self.state
            .get(key.as_bytes())?
            .map(|v| decode::<(Bytes, Version)>(v.value(), "a state entry").map(|(_, v)| v))
            .transpose()
    }

    fn id_taken(&self, creator: &[u8; 32], id: &str) -> Result<bool, StoreError> {
        Ok(self.txs.get(&store::tx_key(id, creator)[..])?.is_some())
    }

    fn range(&self, start: &Key, end: &Key) -> Result<Vec<(Key, Version)>, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for entry in self.state.range(start.as_bytes()..end.as_bytes())? {
            let (k, v) = entry?;
            let key = String::from_utf8(k.value().to_vec())
                .map_err(|_| StoreError::Corrupt("a state key is not UTF-8".into()))?;
            let (_, version) = decode::<(Bytes, Version)>(v.value(), "a state entry")?;
            out.push((key, version));
        }
        Ok(out)
    }
}

/// Validates `data` in order and writes it as the next block in `txn`; returns its number.
fn commit_block(
    txn: &WriteTransaction,
    tip: &mut Tip,
    data: Vec<Bytes>,
    time: u64,
    checked: &mut dyn FnMut(&Bytes) -> Option<bool>,
) -> Result<u64, StoreError> {
    let number = tip.height;
    let previous = tip.last;
    let mut flags = Vec::with_capacity(data.len());
    let mut writes = Vec::new();
    {
        let mut view = Judging {
            state: txn.open_table(STATE)?,
            txs: txn.open_table(TXS)?,
        };
        let mut history = txn.open_table(HISTORY)?;
        let mut hashes = txn.open_table(HASHES)?;
        for (index, bytes) in data.iter().enumerate() {
            let index = index as u32;
            let code = match Transaction::decode(bytes) {
                Err(_) => ValidationCode::BadPayload,
                Ok(tx) => {
                    let signature_valid = checked(bytes).unwrap_or_else(|| tx.signature_valid());
                    let code = judge(&tx, signature_valid, &view)?;
                    // Only a correctly signed transaction claims its id: a forgery must not
                    // make the genuine one a duplicate.
                    if !matches!(
                        code,
                        ValidationCode::BadCreatorSignature | ValidationCode::DuplicateTxid
                    ) {
                        let status = TxStatus {
                            block: number,
                            index,
                            code,
                        };
                        let key = store::tx_key(&tx.body.id, &tx.body.creator);
                        view.txs.insert(&key[..], &encode(&status)[..])?;
                    }
                    if code == ValidationCode::Valid {
                        let version = Version {
                            block: number,
                            tx: index,
                        };
                        for (key, value) in &tx.body.writes {
                            match value {
                                Some(v) => {
                                    view.state
                                        .insert(key.as_bytes(), &encode(&(v, version))[..])?;
                                }
                                None => {
                                    view.state.remove(key.as_bytes())?;
                                }
                            }
                            let at = store::history_key(key, version.block, version.tx);
                            history.insert(&at[..], &encode(value)[..])?;
                        }
                        writes.extend(tx.body.writes);
                    }
                    code
                }
            };
            // Every transaction, whatever its fate, is found by its hash: the submitter of one
            // with a bad signature (which claims no id) learns its outcome so.
            let hash = tx_hash(bytes);
            if hashes.get(&hash[..])?.is_none() {
                let status = TxStatus {
                    block: number,
                    index,
                    code,
                };
                hashes.insert(&hash[..], &encode(&status)[..])?;
            }
            flags.push(code);
        }
    }
    let header = Block::header_for(number, previous, &data);
    tip.commit = commit_hash(tip.commit, number, &flags, &writes);
    let block = Block {
        header,
        data,
        metadata: BlockMetadata {
            flags,
            time,
            commit_hash: tip.commit,
        },
    };
    push(txn, tip, &block)?;
    Ok(number)
}
