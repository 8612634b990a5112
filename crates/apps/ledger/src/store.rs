//! A channel's ledger on disk: the tables of its redb database, their key encodings, and the
//! checkpoint stream that copies a whole database to a peer.
//!
//! Every table maps bytes to bytes, with keys encoded so that byte order is the order the
//! queries walk (numbers big endian), which also lets one loop copy every table:
//!
//! | table     | key                                     | value                          |
//! |-----------|-----------------------------------------|--------------------------------|
//! | `meta`    | `tip`                                   | the [`crate::channel`] tip     |
//! | `blocks`  | number                                  | the block (postcard)           |
//! | `chain`   | number                                  | header hash, chain root after  |
//! | `by_hash` | header hash                             | number                         |
//! | `state`   | key                                     | value and version (postcard)   |
//! | `history` | key length (u32), key, block, tx        | value or deletion (postcard)   |
//! | `txs`     | id length (u32), id, creator            | its status (postcard)          |
//! | `hashes`  | SHA-256 of the encoded transaction      | its status (postcard)          |
//!
//! What this module does not do: decide what goes in the tables (the channel does), or sync
//! (the channel chooses each commit's durability).

use std::io::{Read, Write};
use std::path::Path;

use redb::{Database, ReadTransaction, ReadableTable, TableDefinition, TableHandle};
use sha2::{Digest, Sha256};

/// A table of the ledger's database.
pub(crate) type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

pub(crate) const META: Table = TableDefinition::new("meta");
pub(crate) const BLOCKS: Table = TableDefinition::new("blocks");
pub(crate) const CHAIN: Table = TableDefinition::new("chain");
pub(crate) const BY_HASH: Table = TableDefinition::new("by_hash");
pub(crate) const STATE: Table = TableDefinition::new("state");
pub(crate) const HISTORY: Table = TableDefinition::new("history");
pub(crate) const TXS: Table = TableDefinition::new("txs");
pub(crate) const HASHES: Table = TableDefinition::new("hashes");

/// Every table, in the order a checkpoint stream carries them (the index is its tag).
const TABLES: [Table; 8] = [META, BLOCKS, CHAIN, BY_HASH, STATE, HISTORY, TXS, HASHES];

/// Creates every table (in a new database).
pub(crate) fn create_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    for def in TABLES {
        txn.open_table(def)?;
    }
    Ok(())
}

/// The key of the tip in `meta`.
pub(crate) const TIP: &[u8] = b"tip";

/// How much of the database a node caches in memory, per channel: the recent blocks and the
/// hot part of the world state. The rest is read from disk (the page cache), so a node's
/// memory does not grow with its chains.
const CACHE_BYTES: usize = 16 << 20;

/// What went wrong with a ledger's store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (I/O, a full disk, a damaged file).
    #[error("ledger database: {0}")]
    Database(#[from] redb::Error),
    /// A file outside the database (a checkpoint stream) failed.
    #[error("ledger checkpoint: {0}")]
    Io(#[from] std::io::Error),
    /// Something in the store does not decode: written by another version, or damaged.
    #[error("ledger store: {0}")]
    Corrupt(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> StoreError {
                StoreError::Database(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError
);

/// Opens (or creates) the database at `path`; in the power-cut test mode on a backend that
/// loses unsynced writes at a SIGKILL, as a power cut would.
///
/// # Errors
/// The database cannot be opened.
pub fn open_database(path: &Path, power_cut_test_mode: bool) -> Result<Database, StoreError> {
    let mut builder = Database::builder();
    builder.set_cache_size(CACHE_BYTES);
    if power_cut_test_mode {
        let (backend, _) = synod_storage::UnsyncedFile::open(path)?;
        Ok(builder.create_with_backend(backend)?)
    } else {
        Ok(builder.create(path)?)
    }
}

/// A database in memory (tests, and a channel replayed by an audit).
#[must_use]
pub fn memory_database() -> Database {
    let mut builder = Database::builder();
    builder.set_cache_size(CACHE_BYTES);
    builder
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .expect("a database in memory opens")
}

/// Encodes `value` (postcard).
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("encoding into a Vec cannot fail")
}

/// Decodes what [`encode`] wrote; `what` names it in the error.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// The `history` key of `key`'s write at `(block, tx)`.
pub(crate) fn history_key(key: &str, block: u64, tx: u32) -> Vec<u8> {
    let mut k = history_prefix(key);
    k.extend_from_slice(&block.to_be_bytes());
    k.extend_from_slice(&tx.to_be_bytes());
    k
}

/// The `txs` key of transaction `id` of `creator`: ids are the creator's own, so another
/// signer's transaction cannot take one.
pub(crate) fn tx_key(id: &str, creator: &[u8; 32]) -> Vec<u8> {
    let mut k = tx_prefix(id);
    k.extend_from_slice(creator);
    k
}

/// What every `txs` key of `id` (whatever its creator) starts with.
pub(crate) fn tx_prefix(id: &str) -> Vec<u8> {
    let len = u32::try_from(id.len()).unwrap_or(u32::MAX);
    let mut k = Vec::with_capacity(4 + id.len() + 32);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// What every `history` key of `key` starts with.
pub(crate) fn history_prefix(key: &str) -> Vec<u8> {
    let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let mut k = Vec::with_capacity(4 + key.len() + 12);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

/// The tag that ends a checkpoint stream.
const END: u8 = 0xff;

/// Writes every table of the database as `read` sees it to `out`: records of (table, key,
/// value), then an end record with their count and the SHA-256 of everything before it.
///
/// # Errors
/// The database or `out` failed.
pub(crate) fn write_checkpoint(
    read: &ReadTransaction,
    out: &mut dyn Write,
) -> Result<(), StoreError> {
    write_tables(read, out, &TABLES)
}

/// A digest of the ledger's content: its chain, state, history and transaction index (not
/// its tip, which also records where in the agreed order it stands). Equal on members that
/// applied the same envelopes.
///
/// # Errors
/// The database failed.
pub(crate) fn content_digest(read: &ReadTransaction) -> Result<[u8; 32], StoreError> {
    let mut digest = Hashing::new(std::io::sink());
    write_tables(read, &mut digest, &TABLES[1..])?;
    Ok(digest.digest())
}

pub(crate) fn write_tables(
    read: &ReadTransaction,
    out: &mut dyn Write,
    tables: &[Table],
) -> Result<(), StoreError> {
    let mut out = Hashing::new(out);
    let mut records = 0u64;
    for def in tables {
        let tag = TABLES
            .iter()
            .position(|t| t.name() == def.name())
            .expect("a table of the ledger");
        let table = match read.open_table(*def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        for entry in table.iter()? {
            let (k, v) = entry?;
            let (k, v) = (k.value(), v.value());
            out.write_all(&[u8::try_from(tag).expect("eight tables")])?;
            for part in [k, v] {
                let len = u32::try_from(part.len())
                    .map_err(|_| StoreError::Corrupt("a record over 4 GiB".into()))?;
                out.write_all(&len.to_le_bytes())?;
                out.write_all(part)?;
            }
            records += 1;
        }
    }
    out.write_all(&[END])?;
    out.write_all(&records.to_le_bytes())?;
    let digest = out.digest();
    out.inner.write_all(&digest)?;
    out.inner.flush()?;
    Ok(())
}

/// Fills `db` (empty) from a stream [`write_checkpoint`] wrote, a batch of records per
/// transaction, so that nothing near the whole state is ever in memory; the last commit is
/// durable.
///
/// # Errors
/// The stream is cut short, damaged (its count or digest does not match) or not a checkpoint;
/// or the database failed.
pub(crate) fn read_checkpoint(db: &Database, input: &mut dyn Read) -> Result<(), StoreError> {
    const BATCH_BYTES: usize = 32 << 20;
    let mut input = Hashing::new(input);
    let corrupt = |what: &str| StoreError::Corrupt(format!("checkpoint stream: {what}"));
    let mut records = 0u64;
    loop {
        let txn = db.begin_write()?;
        let mut batch = 0usize;
        let ended = {
            let mut tables = TABLES
                .iter()
                .map(|def| txn.open_table(*def))
                .collect::<Result<Vec<_>, _>>()?;
            loop {
                let mut tag = [0];
                input.read_exact(&mut tag)?;
                if tag[0] == END {
                    break true;
                }
                let table = tables
                    .get_mut(usize::from(tag[0]))
                    .ok_or_else(|| corrupt("an unknown table"))?;
                let k = read_part(&mut input)?;
                let v = read_part(&mut input)?;
                table.insert(&k[..], &v[..])?;
                records += 1;
                batch += k.len() + v.len();
                if batch >= BATCH_BYTES {
                    break false;
                }
            }
        };
        if ended {
            let mut count = [0; 8];
            input.read_exact(&mut count)?;
            let digest = input.digest();
            let mut claimed = [0; 32];
            input.inner.read_exact(&mut claimed)?;
            if u64::from_le_bytes(count) != records || digest != claimed {
                return Err(corrupt("its count or digest does not match"));
            }
            txn.commit()?;
            return Ok(());
        }
        let mut txn = txn;
        txn.set_durability(redb::Durability::None)?;
        txn.commit()?;
    }
}

/// Most bytes of one key or value in a checkpoint stream (a block is at most a batch of
/// transactions of at most 64 MiB each).
const PART_MAX: usize = 1 << 30;

fn read_part(input: &mut impl Read) -> Result<Vec<u8>, StoreError> {
    let mut len = [0; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > PART_MAX {
        return Err(StoreError::Corrupt(format!(
            "checkpoint stream: a record of {len} bytes"
        )));
    }
    // Grown as the bytes arrive, so a length that lies costs no more than the stream holds.
    let mut part = Vec::with_capacity(len.min(64 << 10));
    input.take(len as u64).read_to_end(&mut part)?;
    if part.len() != len {
        return Err(StoreError::Corrupt("checkpoint stream: cut short".into()));
    }
    Ok(part)
}

/// A reader or writer that hashes what passes through it.
struct Hashing<T> {
    inner: T,
    hash: Sha256,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Hashing<T> {
        Hashing {
            inner,
            hash: Sha256::new(),
        }
    }

    fn digest(&self) -> [u8; 32] {
        self.hash.clone().finalize().into()
    }
}

impl<T: Write> Write for Hashing<T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<T: Read> Read for Hashing<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}
