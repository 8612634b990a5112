//! Auditing a chain from genesis, trusting nothing the node says: every header link, every
//! Merkle root, and every block's validation replayed, its flags and commit hash compared.

use crate::block::Block;
use crate::channel::Channel;
use crate::cutter::BatchConfig;
use crate::merkle::{self, Hash};

/// What a successful audit covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Blocks checked, genesis included.
    pub blocks: u64,
    /// Transactions replayed.
    pub transactions: u64,
    /// The tip's header hash.
    pub tip: Hash,
    /// The commit hash after the last block.
    pub commit_hash: Hash,
}

/// The first thing wrong with a chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// No genesis block.
    #[error("the chain is empty")]
    Empty,
    /// A block's number is not its height.
    #[error("block at height {height} says it is number {number}")]
    Number {
        /// Where it is.
        height: u64,
        /// What it says.
        number: u64,
    },
    /// A header does not link to the previous header's hash.
    #[error("block {0} does not link to the previous header")]
    Link(u64),
    /// A data hash is not the Merkle root of the block's transactions.
    #[error("block {0}: the data hash is not the Merkle root of its transactions")]
    DataHash(u64),
    /// Replaying validation gives other flags.
    #[error("block {0}: replayed validation flags differ from the recorded ones")]
    Flags(u64),
    /// Replaying gives another commit hash (other state updates).
    #[error("block {0}: replayed commit hash differs from the recorded one")]
    CommitHash(u64),
    /// The replay's own store failed (out of memory or disk).
    #[error("the replay failed: {0}")]
    Replay(String),
}

/// Audits `blocks` (from genesis) as a channel cutting by `config` would have produced them.
///
/// # Errors
/// The first [`AuditError`].
pub fn audit(blocks: &[Block], config: BatchConfig) -> Result<AuditReport, AuditError> {
    let genesis = blocks.first().ok_or(AuditError::Empty)?;
    let mut replay = Channel::genesis(
        config,
        genesis.data.first().cloned().unwrap_or_default(),
        genesis.metadata.time,
    );
    let mut previous: Option<Hash> = None;
    let mut transactions = 0;
    for (height, block) in blocks.iter().enumerate() {
        let height = height as u64;
        let h = &block.header;
        if h.number != height {
            return Err(AuditError::Number {
                height,
                number: h.number,
            });
        }
        if h.previous_hash != previous.unwrap_or([0; 32]) {
            return Err(AuditError::Link(height));
        }
        if h.data_hash != merkle::root(&block.data) {
            return Err(AuditError::DataHash(height));
        }
        if height > 0 {
            replay.commit_block(block.data.clone(), block.metadata.time);
            transactions += block.data.len() as u64;
        }
        let replayed = replay
            .view()
            .and_then(|v| v.block(height))
            .map_err(|e| AuditError::Replay(e.to_string()))?
            .ok_or(AuditError::Flags(height))?;
        if replayed.metadata.flags != block.metadata.flags {
            return Err(AuditError::Flags(height));
        }
        if replayed.metadata.commit_hash != block.metadata.commit_hash {
            return Err(AuditError::CommitHash(height));
        }
        previous = Some(h.hash());
    }
    Ok(AuditReport {
        blocks: blocks.len() as u64,
        transactions,
        tip: previous.unwrap_or([0; 32]),
        commit_hash: replay.commit_hash(),
    })
}
