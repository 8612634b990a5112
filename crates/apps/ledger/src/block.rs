//! Blocks: a header chained by hash (number, previous header hash, data hash = RFC 6962 root
//! of the block's transactions), the transactions, and metadata kept outside the header hash
//! (validation flags, agreed time, and the commit hash, which chains the flags and the state
//! updates so that nodes can compare final state as well as order).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::merkle::{self, Hash};
use crate::tx::{Key, ValidationCode};

/// What the header hash covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Height: the genesis block is 0.
    pub number: u64,
    /// Hash of the previous block's header (zeros for genesis).
    pub previous_hash: Hash,
    /// RFC 6962 Merkle root of `data`.
    pub data_hash: Hash,
}

impl BlockHeader {
    /// SHA-256 over a domain tag, the number (big endian), the previous hash and the data hash.
    #[must_use]
    pub fn hash(&self) -> Hash {
        let mut h = Sha256::new();
        h.update(b"synod-ledger/header/v1\0");
        h.update(self.number.to_be_bytes());
        h.update(self.previous_hash);
        h.update(self.data_hash);
        h.finalize().into()
    }
}

/// Kept with the block, outside the header hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMetadata {
    /// One validation code per transaction, in order.
    pub flags: Vec<ValidationCode>,
    /// Agreed time when the block was cut, nanoseconds since the Unix epoch.
    pub time: u64,
    /// Chains the previous commit hash, this block's flags and its state updates.
    pub commit_hash: Hash,
}

/// A block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The chained header.
    pub header: BlockHeader,
    /// Encoded transactions (the genesis block holds the channel's configuration).
    pub data: Vec<Bytes>,
    /// Flags, time, commit hash.
    pub metadata: BlockMetadata,
}

impl Block {
    /// The header of a block holding `data`, after the block whose header hash is `previous`.
    #[must_use]
    pub fn header_for(number: u64, previous: Hash, data: &[Bytes]) -> BlockHeader {
        BlockHeader {
            number,
            previous_hash: previous,
            data_hash: merkle::root(data),
        }
    }
}

/// The commit hash after a block: SHA-256 over a domain tag, the previous commit hash, the
/// block number, the flags and every write of every valid transaction, in order (each key and
/// value length-prefixed, a deletion marked).
#[must_use]
pub fn commit_hash(
    previous: Hash,
    number: u64,
    flags: &[ValidationCode],
    writes: &[(Key, Option<Bytes>)],
) -> Hash {
    let mut h = Sha256::new();
    h.update(b"synod-ledger/commit/v1\0");
    h.update(previous);
    h.update(number.to_be_bytes());
    h.update((flags.len() as u64).to_be_bytes());
    h.update(flags.iter().map(|f| *f as u8).collect::<Vec<u8>>());
    for (key, value) in writes {
        h.update((key.len() as u64).to_be_bytes());
        h.update(key.as_bytes());
        match value {
            Some(v) => {
                h.update([1]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v);
            }
            None => h.update([0]),
        }
    }
    h.finalize().into()
}

/// Block 0: the channel's configuration (encoded by the caller), marked valid.
#[must_use]
pub fn genesis_block(genesis: Bytes, time: u64) -> Block {
    let header = Block::header_for(0, [0; 32], std::slice::from_ref(&genesis));
    let flags = vec![ValidationCode::Valid];
    let commit = commit_hash([0; 32], 0, &flags, &[]);
    Block {
        header,
        data: vec![genesis],
        metadata: BlockMetadata {
            flags,
            time,
            commit_hash: commit,
        },
    }
}
