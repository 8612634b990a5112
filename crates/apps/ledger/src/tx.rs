//! Transactions (execute-order-validate): a client-chosen id, what the client read (keys with
//! the versions it saw, and key ranges with what they held), what it writes, signed by the
//! client's Ed25519 key; and the validation codes, numbered as Fabric numbers them.

use bytes::Bytes;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// A world-state key.
pub type Key = String;

/// Where a key's value was written: the block and the transaction's index in it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Version {
    /// Block number.
    pub block: u64,
    /// Index of the transaction in the block.
    pub tx: u32,
}

/// A range the client read (`start..end`), with every key and version it saw there: a key
/// added, removed or changed in the range since is a phantom read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRead {
    /// First key of the range.
    pub start: Key,
    /// One past the last key (exclusive).
    pub end: Key,
    /// What the range held when read.
    pub seen: Vec<(Key, Version)>,
}

/// What a transaction says, and what its signature covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxBody {
    /// Chosen by the client, within its own namespace: a second transaction of the same
    /// creator with the same id is never applied (DUPLICATE_TXID); another creator's may use
    /// it too.
    pub id: String,
    /// The submitting client's Ed25519 public key.
    pub creator: [u8; 32],
    /// Keys read, with the version seen (`None`: the key did not exist).
    pub reads: Vec<(Key, Option<Version>)>,
    /// Ranges read.
    pub ranges: Vec<RangeRead>,
    /// Keys written (`None`: deleted).
    pub writes: Vec<(Key, Option<Bytes>)>,
}

/// A signed transaction, as ordered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The content.
    pub body: TxBody,
    /// Ed25519 signature by `body.creator` over [`TxBody::signing_bytes`].
    pub signature: Bytes,
}

const SIGNING_DOMAIN: &[u8] = b"synod-ledger/tx/v1\0";

impl TxBody {
    /// The bytes the creator signs: a domain tag, then the canonical encoding.
    #[must_use]
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = SIGNING_DOMAIN.to_vec();
        out.extend(postcard::to_stdvec(self).expect("encoding a transaction body cannot fail"));
        out
    }
}

impl Transaction {
    /// Signs `body` with `key` (whose public half must be `body.creator`).
    #[must_use]
    pub fn sign(body: TxBody, key: &SigningKey) -> Transaction {
        let signature = key.sign(&body.signing_bytes());
        Transaction {
            body,
            signature: Bytes::copy_from_slice(&signature.to_bytes()),
        }
    }

    /// Whether the signature is the creator's over the body.
    #[must_use]
    pub fn signature_valid(&self) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.body.creator) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&self.signature) else {
            return false;
        };
        key.verify(&self.body.signing_bytes(), &sig).is_ok()
    }

    /// The canonical encoding (what a block's data holds).
    #[must_use]
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_stdvec(self).expect("encoding a transaction cannot fail"))
    }

    /// Decodes [`Self::encode`]'s output.
    ///
    /// # Errors
    /// The bytes are not a transaction.
    pub fn decode(bytes: &[u8]) -> Result<Transaction, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// A transaction's validation result, with Fabric's numbering (`TxValidationCode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum ValidationCode {
    /// Valid: its writes are applied.
    Valid = 0,
    /// The envelope is not a transaction.
    BadPayload = 2,
    /// The signature is not the creator's.
    BadCreatorSignature = 4,
    /// A transaction with this id was ordered before.
    DuplicateTxid = 9,
    /// A key read has changed since it was read.
    MvccReadConflict = 11,
    /// A range read holds other keys or versions than were read.
    PhantomReadConflict = 12,
    /// The read or write set is malformed (a key twice, an empty key, a range backwards).
    BadRwset = 22,
    /// Not validated (yet).
    NotValidated = 254,
}

impl ValidationCode {
    /// Fabric's name for the code.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ValidationCode::Valid => "VALID",
            ValidationCode::BadPayload => "BAD_PAYLOAD",
            ValidationCode::BadCreatorSignature => "BAD_CREATOR_SIGNATURE",
            ValidationCode::DuplicateTxid => "DUPLICATE_TXID",
            ValidationCode::MvccReadConflict => "MVCC_READ_CONFLICT",
            ValidationCode::PhantomReadConflict => "PHANTOM_READ_CONFLICT",
            ValidationCode::BadRwset => "BAD_RWSET",
            ValidationCode::NotValidated => "NOT_VALIDATED",
        }
    }
}
