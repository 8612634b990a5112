//! Reading a channel: a [`LedgerView`] is a read transaction of its database, consistent
//! (every answer from the same committed state) and never blocking the channel's writer.
//! Queries read from disk through the database's cache; proofs walk the chain's header
//! hashes, so run them off any latency-critical thread.

use bytes::Bytes;
use redb::{ReadOnlyTable, ReadTransaction};

use crate::block::Block;
use crate::channel::{Tip, TxProof, TxStatus};
use crate::merkle::{self, Hash};
use crate::store::{
    self, BLOCKS, BY_HASH, CHAIN, HASHES, HISTORY, META, STATE, StoreError, TIP, TXS, decode,
};
use crate::tx::Version;

/// A consistent view of a channel as committed.
pub struct LedgerView {
    read: ReadTransaction,
    tip: Tip,
    due_at: Option<u64>,
}

impl std::fmt::Debug for LedgerView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerView")
            .field("height", &self.tip.height)
            .finish_non_exhaustive()
    }
}

type Reader = ReadOnlyTable<&'static [u8], &'static [u8]>;

impl LedgerView {
    /// A view through `read`; `due_at` is when the writer's pending batch falls due (the
    /// pending batch is committed only with blocks and checkpoints, so the writer says).
    pub(crate) fn new(
        read: ReadTransaction,
        due_at: Option<u64>,
    ) -> Result<LedgerView, StoreError> {
        let tip = read
            .open_table(META)?
            .get(TIP)?
            .map(|v| decode(v.value(), "the tip"))
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("no channel in the database".into()))?;
        Ok(LedgerView { read, tip, due_at })
    }

    /// The read transaction (a checkpoint streams it to a peer).
    pub(crate) fn read(&self) -> &ReadTransaction {
        &self.read
    }

    pub(crate) fn tip_state(&self) -> &Tip {
        &self.tip
    }

    fn table(&self, def: store::Table) -> Result<Reader, StoreError> {
        Ok(self.read.open_table(def)?)
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

    /// The commit hash after the last block.
    #[must_use]
    pub fn commit_hash(&self) -> Hash {
        self.tip.commit
    }

    /// When the pending batch falls due, if there is one.
    #[must_use]
    pub fn due_at(&self) -> Option<u64> {
        self.due_at
    }

    /// A block by number.
    ///
    /// # Errors
    /// The database failed.
    pub fn block(&self, number: u64) -> Result<Option<Block>, StoreError> {
        self.table(BLOCKS)?
            .get(&number.to_be_bytes()[..])?
            .map(|v| decode(v.value(), "a block"))
            .transpose()
    }

    /// A block by its header hash.
    ///
    /// # Errors
    /// The database failed.
    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, StoreError> {
        let number = self
            .table(BY_HASH)?
            .get(&hash[..])?
            .map(|v| be_u64(v.value()));
        match number {
            Some(n) => self.block(n?),
            None => Ok(None),
        }
    }

    /// Blocks `from..to` (clamped to the chain), in order.
    ///
    /// # Errors
    /// The database failed.
    pub fn blocks(&self, from: u64, to: u64) -> Result<Vec<Block>, StoreError> {
        let to = to.min(self.tip.height);
        if from >= to {
            return Ok(Vec::new());
        }
        self.table(BLOCKS)?
            .range(&from.to_be_bytes()[..]..&to.to_be_bytes()[..])?
            .map(|entry| decode(entry?.1.value(), "a block"))
            .collect()
    }

    /// The outcome of `creator`'s transaction `id`, if it was ordered (and correctly signed).
    ///
    /// # Errors
    /// The database failed.
    pub fn tx_status(&self, creator: &[u8; 32], id: &str) -> Result<Option<TxStatus>, StoreError> {
        self.table(TXS)?
            .get(&store::tx_key(id, creator)[..])?
            .map(|v| decode(v.value(), "a transaction status"))
            .transpose()
    }

    /// Every correctly signed transaction ordered under `id`, by creator (ids are each
    /// creator's own, so several creators may use one).
    ///
    /// # Errors
    /// The database failed.
    pub fn tx_statuses(&self, id: &str) -> Result<Vec<([u8; 32], TxStatus)>, StoreError> {
        let prefix = store::tx_prefix(id);
        let mut end = prefix.clone();
        end.extend_from_slice(&[0xff; 32]);
        let mut out = Vec::new();
        for entry in self.table(TXS)?.range(&prefix[..]..=&end[..])? {
            let (k, v) = entry?;
            let creator: [u8; 32] = k.value()[prefix.len()..]
                .try_into()
                .map_err(|_| StoreError::Corrupt("a transaction key without its creator".into()))?;
            out.push((creator, decode(v.value(), "a transaction status")?));
        }
        Ok(out)
    }

    /// The outcome of the transaction whose encoding hashes to `hash` ([`crate::tx_hash`]),
    /// whatever it was: found even when it claimed no id (a bad signature, a duplicate).
    ///
    /// # Errors
    /// The database failed.
    pub fn tx_by_hash(&self, hash: &Hash) -> Result<Option<TxStatus>, StoreError> {
        self.table(HASHES)?
            .get(&hash[..])?
            .map(|v| decode(v.value(), "a transaction status"))
            .transpose()
    }

    /// A key's current value and version.
    ///
    /// # Errors
    /// The database failed.
    pub fn get(&self, key: &str) -> Result<Option<(Bytes, Version)>, StoreError> {
        self.table(STATE)?
            .get(key.as_bytes())?
            .map(|v| decode(v.value(), "a state entry"))
            .transpose()
    }

    /// The newest `newest` writes to a key, oldest first (`None`: deleted), with how many
    /// there are in all; `None` if it was never written.
    ///
    /// # Errors
    /// The database failed.
    #[allow(clippy::type_complexity)]
    pub fn history(
        &self,
        key: &str,
        newest: usize,
    ) -> Result<Option<(Vec<(Version, Option<Bytes>)>, u64)>, StoreError> {
        let prefix = store::history_prefix(key);
        let mut end = prefix.clone();
        end.extend_from_slice(&[0xff; 12]);
        let table = self.table(HISTORY)?;
        let mut total = 0u64;
        let mut out = Vec::new();
        for entry in table.range(&prefix[..]..=&end[..])?.rev() {
            let (k, v) = entry?;
            total += 1;
            if out.len() < newest {
                let k = k.value();
                let tail = &k[k.len() - 12..];
                let version = Version {
                    block: be_u64(&tail[..8])?,
                    tx: u32::from_be_bytes(tail[8..].try_into().expect("four bytes")),
                };
                out.push((version, decode(v.value(), "a history entry")?));
            }
        }
        out.reverse();
        Ok((total > 0).then_some((out, total)))
    }

    /// A digest of the chain, state, history and transaction index (not of where in the
    /// agreed order the channel stands): equal on members that applied the same envelopes.
    ///
    /// # Errors
    /// The database failed.
    pub fn content_digest(&self) -> Result<Hash, StoreError> {
        store::content_digest(&self.read)
    }

    /// The RFC 6962 root over the first `height` block header hashes (the chain tree).
    ///
    /// # Errors
    /// The database failed.
    pub fn chain_root(&self, height: u64) -> Result<Option<Hash>, StoreError> {
        if height == 0 {
            return Ok(Some(merkle::root::<Hash>(&[])));
        }
        if height > self.tip.height {
            return Ok(None);
        }
        let chain = self.table(CHAIN)?;
        let entry = chain.get(&(height - 1).to_be_bytes()[..])?;
        Ok(entry.map(|v| v.value()[32..].try_into().expect("64 bytes")))
    }

    /// The first `count` header hashes.
    fn header_hashes(&self, count: u64) -> Result<Vec<Hash>, StoreError> {
        self.table(CHAIN)?
            .range(&0u64.to_be_bytes()[..]..&count.to_be_bytes()[..])?
            .map(|entry| Ok(entry?.1.value()[..32].try_into().expect("64 bytes")))
            .collect()
    }

    /// Proof that the chain at `old` blocks is a prefix of the chain at `new` blocks.
    ///
    /// # Errors
    /// The database failed.
    pub fn prove_consistency(&self, old: u64, new: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if !(old > 0 && old < new && new <= self.tip.height) {
            return Ok(None);
        }
        let hashes = self.header_hashes(new)?;
        Ok(Some(merkle::prove_consistency(&hashes, old as usize)))
    }

    /// Proof that the transaction of `status` (as a status query found it) is in its block,
    /// and its block in the chain.
    ///
    /// # Errors
    /// The database failed.
    pub fn prove_tx(&self, status: TxStatus) -> Result<Option<TxProof>, StoreError> {
        let Some(block) = self.block(status.block)? else {
            return Ok(None);
        };
        let index = status.index as usize;
        let Some(tx) = block.data.get(index).cloned() else {
            return Ok(None);
        };
        let height = self.tip.height;
        let Some(chain_root) = self.chain_root(height)? else {
            return Ok(None);
        };
        let hashes = self.header_hashes(height)?;
        if hashes.len() as u64 != height || status.block >= height {
            // The chain table and the tip disagree: a store this node must not prove from.
            return Err(StoreError::Corrupt(format!(
                "the chain table holds {} of the tip's {height} header hashes",
                hashes.len()
            )));
        }
        Ok(Some(TxProof {
            header: block.header,
            size: block.data.len() as u64,
            index: index as u64,
            path: merkle::prove_inclusion(&block.data, index),
            tx,
            height,
            chain_root,
            header_path: merkle::prove_inclusion(&hashes, status.block as usize),
        }))
    }
}

fn be_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("a block number is not 8 bytes".into()))
}
