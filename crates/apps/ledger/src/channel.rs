//! A channel's ledger: what every member applies, in agreed order, and the queries on it.
//!
//! [`Channel::deliver`] takes each envelope the agreement delivers (a transaction or a tick)
//! with the agreed time, cuts blocks ([`crate::cutter`]), validates each block's transactions
//! in order (signature, duplicate id, bad read/write set, MVCC read conflicts, phantom range
//! reads) and commits the valid ones' writes with version `(block, index)`. Everything here is
//! deterministic: members fed the same envelopes hold byte-identical chains and state.

use bytes::Bytes;
use imbl::{OrdMap, Vector};
use serde::{Deserialize, Serialize};

use crate::block::{Block, BlockMetadata, commit_hash, genesis_block};
use crate::cutter::{BatchConfig, BlockCutter};
use crate::merkle::{self, Hash};
use crate::tx::{Key, Transaction, ValidationCode, Version};
use crate::validate::{View, judge};

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

/// One channel's ledger and world state.
///
/// Every collection is persistent (`imbl`), so a clone is O(1) whatever the chain's length:
/// a node snapshots a channel, and hands readers a copy, without copying the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ChannelWire")]
pub struct Channel {
    config: BatchConfig,
    cutter: BlockCutter,
    blocks: Vector<Block>,
    header_hashes: Vector<Hash>,
    /// The chain tree as it grows, and its root at every height (`roots[h - 1]` over the
    /// first `h` header hashes), so that a root costs no hashing. Derived from
    /// `header_hashes`: not encoded, rebuilt when decoded.
    #[serde(skip_serializing)]
    frontier: merkle::Frontier,
    #[serde(skip_serializing)]
    roots: Vector<Hash>,
    by_hash: OrdMap<Hash, u64>,
    state: OrdMap<Key, (Bytes, Version)>,
    history: OrdMap<Key, Vector<(Version, Option<Bytes>)>>,
    txs: OrdMap<String, TxStatus>,
    commit: Hash,
}

/// A [`Channel`] as encoded (in snapshots): everything but what is derived.
#[derive(Deserialize)]
struct ChannelWire {
    config: BatchConfig,
    cutter: BlockCutter,
    blocks: Vector<Block>,
    header_hashes: Vector<Hash>,
    by_hash: OrdMap<Hash, u64>,
    state: OrdMap<Key, (Bytes, Version)>,
    history: OrdMap<Key, Vector<(Version, Option<Bytes>)>>,
    txs: OrdMap<String, TxStatus>,
    commit: Hash,
}

impl From<ChannelWire> for Channel {
    fn from(w: ChannelWire) -> Channel {
        let mut frontier = merkle::Frontier::default();
        let mut roots = Vector::new();
        for hash in &w.header_hashes {
            frontier.push(hash);
            roots.push_back(frontier.root());
        }
        Channel {
            config: w.config,
            cutter: w.cutter,
            blocks: w.blocks,
            header_hashes: w.header_hashes,
            frontier,
            roots,
            by_hash: w.by_hash,
            state: w.state,
            history: w.history,
            txs: w.txs,
            commit: w.commit,
        }
    }
}

impl Channel {
    /// A channel whose genesis block holds `genesis` (its configuration, encoded by the
    /// caller) and which cuts blocks by `config`.
    #[must_use]
    pub fn genesis(config: BatchConfig, genesis: Bytes, time: u64) -> Channel {
        let mut c = Channel {
            config,
            cutter: BlockCutter::default(),
            blocks: Vector::new(),
            header_hashes: Vector::new(),
            frontier: merkle::Frontier::default(),
            roots: Vector::new(),
            by_hash: OrdMap::new(),
            state: OrdMap::new(),
            history: OrdMap::new(),
            txs: OrdMap::new(),
            commit: [0; 32],
        };
        let block = genesis_block(genesis, time);
        c.commit = block.metadata.commit_hash;
        c.push(block);
        c
    }

    /// Applies one delivered envelope at agreed time `time`; returns the numbers of the blocks
    /// it committed (usually none, at most two). Undecodable bytes count as a tick.
    pub fn deliver(&mut self, envelope: &[u8], time: u64) -> Vec<u64> {
        self.deliver_checked(envelope, time, &mut |_| None)
    }

    /// Like [`Self::deliver`], taking the signature verdicts of transactions checked ahead of
    /// time ([`check_signature`], run in parallel as envelopes arrive): `checked` returns a
    /// transaction's verdict given its encoding, or `None` to have it checked here. A verdict
    /// is a pure function of the bytes, so the result is the same either way.
    pub fn deliver_checked(
        &mut self,
        envelope: &[u8],
        time: u64,
        checked: &mut dyn FnMut(&Bytes) -> Option<bool>,
    ) -> Vec<u64> {
        let config = self.config;
        let batches = match Envelope::decode(envelope) {
            Ok(Envelope::Tx(tx)) => self.cutter.ordered(&config, tx, time),
            Ok(Envelope::Tick) | Err(_) => self.cutter.on_time(&config, time),
        };
        batches
            .into_iter()
            .map(|data| self.commit_block_checked(data, time, checked))
            .collect()
    }

    /// The channel's batch rules.
    #[must_use]
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// When (agreed time) the pending batch falls due, if there is one: the driver proposes a
    /// [`Envelope::Tick`] once its clock passes it.
    #[must_use]
    pub fn due_at(&self) -> Option<u64> {
        self.cutter.due_at(&self.config)
    }

    /// Validates `data` in order and commits it as the next block; returns its number.
    pub fn commit_block(&mut self, data: Vec<Bytes>, time: u64) -> u64 {
        self.commit_block_checked(data, time, &mut |_| None)
    }

    fn commit_block_checked(
        &mut self,
        data: Vec<Bytes>,
        time: u64,
        checked: &mut dyn FnMut(&Bytes) -> Option<bool>,
    ) -> u64 {
        let number = self.blocks.len() as u64;
        let previous = self.header_hashes.back().copied().unwrap_or([0; 32]);
        let mut flags = Vec::with_capacity(data.len());
        let mut writes = Vec::new();
        for (index, bytes) in data.iter().enumerate() {
            let index = index as u32;
            let code = match Transaction::decode(bytes) {
                Err(_) => ValidationCode::BadPayload,
                Ok(tx) => {
                    let signature_valid = checked(bytes).unwrap_or_else(|| tx.signature_valid());
                    let code = judge(&tx, signature_valid, &*self);
                    // Only a correctly signed transaction claims its id: a forgery must not
                    // make the genuine one a duplicate.
                    if !matches!(
                        code,
                        ValidationCode::BadCreatorSignature | ValidationCode::DuplicateTxid
                    ) {
                        self.txs.insert(
                            tx.body.id.clone(),
                            TxStatus {
                                block: number,
                                index,
                                code,
                            },
                        );
                    }
                    if code == ValidationCode::Valid {
                        let version = Version {
                            block: number,
                            tx: index,
                        };
                        for (key, value) in &tx.body.writes {
                            self.write(key, value.clone(), version);
                        }
                        writes.extend(tx.body.writes);
                    }
                    code
                }
            };
            flags.push(code);
        }
        let header = Block::header_for(number, previous, &data);
        self.commit = commit_hash(self.commit, number, &flags, &writes);
        self.push(Block {
            header,
            data,
            metadata: BlockMetadata {
                flags,
                time,
                commit_hash: self.commit,
            },
        });
        number
    }

    fn write(&mut self, key: &Key, value: Option<Bytes>, version: Version) {
        match &value {
            Some(v) => {
                self.state.insert(key.clone(), (v.clone(), version));
            }
            None => {
                self.state.remove(key);
            }
        }
        self.history
            .entry(key.clone())
            .or_default()
            .push_back((version, value));
    }

    fn push(&mut self, block: Block) {
        let hash = block.header.hash();
        self.by_hash.insert(hash, block.header.number);
        self.header_hashes.push_back(hash);
        self.frontier.push(&hash);
        self.roots.push_back(self.frontier.root());
        self.blocks.push_back(block);
    }

    // ----- Queries ------------------------------------------------------------------------

    /// Blocks committed (the next block's number).
    #[must_use]
    pub fn height(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// The tip: height and the last header's hash.
    #[must_use]
    pub fn tip(&self) -> (u64, Hash) {
        (
            self.height(),
            self.header_hashes.back().copied().unwrap_or([0; 32]),
        )
    }

    /// The commit hash after the last block (equal on members with equal final state).
    #[must_use]
    pub fn commit_hash(&self) -> Hash {
        self.commit
    }

    /// A block by number.
    #[must_use]
    pub fn block(&self, number: u64) -> Option<&Block> {
        self.blocks.get(usize::try_from(number).ok()?)
    }

    /// A block by its header hash.
    #[must_use]
    pub fn block_by_hash(&self, hash: &Hash) -> Option<&Block> {
        self.block(*self.by_hash.get(hash)?)
    }

    /// Every block, from genesis (a copy: the blocks' data is shared, not copied).
    #[must_use]
    pub fn blocks(&self) -> Vec<Block> {
        self.blocks.iter().cloned().collect()
    }

    /// A transaction's outcome, if it was ordered (and correctly signed).
    #[must_use]
    pub fn tx_status(&self, id: &str) -> Option<TxStatus> {
        self.txs.get(id).copied()
    }

    /// A key's current value and version.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<(&Bytes, Version)> {
        self.state.get(key).map(|(v, ver)| (v, *ver))
    }

    /// Every committed write to a key, oldest first (`None`: deleted); `None` if it was never
    /// written.
    #[must_use]
    pub fn history(&self, key: &str) -> Option<&Vector<(Version, Option<Bytes>)>> {
        self.history.get(key)
    }

    /// The RFC 6962 root over the first `height` block header hashes (the chain tree).
    #[must_use]
    pub fn chain_root(&self, height: u64) -> Option<Hash> {
        match usize::try_from(height).ok()? {
            0 => Some(merkle::root::<Hash>(&[])),
            h => self.roots.get(h - 1).copied(),
        }
    }

    /// Proof that the chain at `old` blocks is a prefix of the chain at `new` blocks (hashes
    /// the first `new` header hashes: run it off any latency-critical thread).
    #[must_use]
    pub fn prove_consistency(&self, old: u64, new: u64) -> Option<Vec<u8>> {
        let (old, new) = (usize::try_from(old).ok()?, usize::try_from(new).ok()?);
        (old > 0 && old < new && new <= self.header_hashes.len()).then(|| {
            let hashes: Vec<Hash> = self.header_hashes.iter().take(new).copied().collect();
            merkle::prove_consistency(&hashes, old)
        })
    }

    /// Proof that transaction `id` is in its block, and its block in the chain (hashes every
    /// header hash, like [`Self::prove_consistency`]).
    #[must_use]
    pub fn prove_tx(&self, id: &str) -> Option<TxProof> {
        let status = self.tx_status(id)?;
        let block = self.block(status.block)?;
        let index = status.index as usize;
        let number = usize::try_from(status.block).ok()?;
        Some(TxProof {
            header: block.header,
            size: block.data.len() as u64,
            index: index as u64,
            tx: block.data.get(index)?.clone(),
            path: merkle::prove_inclusion(&block.data, index),
            height: self.height(),
            chain_root: self.chain_root(self.height())?,
            header_path: merkle::prove_inclusion(
                &self.header_hashes.iter().copied().collect::<Vec<_>>(),
                number,
            ),
        })
    }
}

impl View for Channel {
    fn version(&self, key: &Key) -> Option<Version> {
        self.state.get(key).map(|(_, v)| *v)
    }

    fn id_taken(&self, id: &str) -> bool {
        self.txs.contains_key(id)
    }

    fn range(&self, start: &Key, end: &Key) -> Vec<(Key, Version)> {
        self.state
            .range(start.clone()..end.clone())
            .map(|(k, (_, v))| (k.clone(), *v))
            .collect()
    }
}
