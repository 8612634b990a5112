//! # synod-storage: the durable log of a Synod node
//!
//! What it does: stores the [`synod_core::Record`]s of every agreement group a node hosts —
//! proposal log, promises, accepted values, decisions, snapshots — in one embedded redb
//! database, each record checksummed (crc32c), with group commit (records of many groups, one
//! fsync), per-group recovery into a [`synod_core::DurableState`] that refuses corrupt
//! records, and compaction after snapshots so disk use stays bounded. [`UnsyncedFile`] is a
//! backend for the power-cut test mode: nothing reaches the file before an fsync.
//!
//! What it does not do: decide when to flush (the node's storage task batches readies), talk
//! to peers (the node quarantines a corrupt group), or store application
//! state beyond the snapshot bytes the core hands it.
//!
//! Why redb rather than fjall: see docs/STORAGE.md.

#![forbid(unsafe_code)]

pub mod codec;
mod snapshots;
mod store;
mod unsynced;

pub use snapshots::SnapshotFiles;
pub use store::{CompactionPlan, GroupId, LogReader, SNAPSHOT_SEQ, StorageError, Store};
pub use unsynced::{CrashHandle, UnsyncedFile};
