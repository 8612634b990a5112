//! Snapshot files: each group's latest snapshot lives in its own file next to the database,
//! `group-{id}.snap`, not in the log. A snapshot carries the whole application state
//! (megabytes); writing it through the log's commits would stall every group's fsync behind
//! it, so the node writes it from another thread while commits go on, and compacts the log
//! only once the file is durable.
//!
//! Format: the snapshot's `next_slot` (8 bytes, little endian, so compaction can read it
//! without the rest), then the checksummed `Record::Snapshot` (see [`crate::codec`]). A file is
//! written to a temporary name, fsynced, renamed over the old one and the directory fsynced:
//! a crash leaves the old snapshot or the new one, never a mix.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use synod_core::{Record, Snapshot};

use crate::codec;
use crate::store::{GroupId, SNAPSHOT_SEQ, StorageError};

/// Where a node's snapshot files live. Cheap to clone; writes of different groups may run on
/// different threads.
#[derive(Clone, Debug)]
pub struct SnapshotFiles {
    dir: PathBuf,
}

impl SnapshotFiles {
    /// Snapshot files in `dir` (created if missing).
    ///
    /// # Errors
    /// The I/O error creating the directory.
    pub fn open(dir: &Path) -> std::io::Result<SnapshotFiles> {
        std::fs::create_dir_all(dir)?;
        Ok(SnapshotFiles {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, group: GroupId) -> PathBuf {
        self.dir.join(format!("group-{}.snap", group.0))
    }

    /// Makes `snapshot` the group's durable snapshot, unless the one on disk is newer.
    /// Returns whether it was written.
    ///
    /// # Errors
    /// The I/O error; the previous snapshot is intact then.
    pub fn write(&self, group: GroupId, snapshot: &Arc<Snapshot>) -> std::io::Result<bool> {
        if self
            .next_slot(group)
            .is_some_and(|n| n >= snapshot.next_slot.0)
        {
            return Ok(false);
        }
        let tmp = self.dir.join(format!("group-{}.snap.tmp", group.0));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&snapshot.next_slot.0.to_le_bytes())?;
            f.write_all(&codec::encode(&Record::Snapshot(snapshot.clone())))?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.path(group))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(true)
    }

    /// The `next_slot` of the group's snapshot on disk, if any (reads 8 bytes).
    #[must_use]
    pub fn next_slot(&self, group: GroupId) -> Option<u64> {
        let mut f = std::fs::File::open(self.path(group)).ok()?;
        let mut b = [0u8; 8];
        std::io::Read::read_exact(&mut f, &mut b).ok()?;
        Some(u64::from_le_bytes(b))
    }

    /// The group's snapshot record, verified.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] (with `seq` [`SNAPSHOT_SEQ`]) if the file fails its check; an
    /// I/O error reading it is [`StorageError::SnapshotIo`]; the node quarantines the group
    /// for either.
    pub fn read(&self, group: GroupId) -> Result<Option<Record>, StorageError> {
        let bytes = match std::fs::read(self.path(group)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::SnapshotIo(e)),
        };
        let corrupt = |source| StorageError::Corrupt {
            group: group.0,
            seq: SNAPSHOT_SEQ,
            source,
        };
        let Some(body) = bytes.get(8..) else {
            return Err(corrupt(codec::DecodeError::Truncated(bytes.len())));
        };
        codec::decode(body).map(Some).map_err(corrupt)
    }

    /// Deletes the group's snapshot.
    ///
    /// # Errors
    /// The I/O error (a missing file is not one).
    pub fn remove(&self, group: GroupId) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(group)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            Err(_) => Ok(()),
            Ok(()) => std::fs::File::open(&self.dir)?.sync_all(),
        }
    }

    /// Groups with a snapshot file.
    #[must_use]
    pub fn groups(&self) -> Vec<GroupId> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let id = name.strip_prefix("group-")?.strip_suffix(".snap")?;
                id.parse().ok().map(GroupId)
            })
            .collect()
    }
}
