//! [`Store`]: the durable log of every agreement group hosted by one node, in one redb file.
//!
//! Layout: table `log`, keyed by `group (u32, big endian) ‖ sequence (u64, big endian)`,
//! so each group's records are contiguous and in append order. Values are checksummed records
//! (see [`crate::codec`]). A group's latest snapshot (which carries the whole application
//! state, megabytes) is kept apart, in a file ([`SnapshotFiles`]): the node writes it off the
//! commit path, and compacting the log neither reads nor rewrites it.
//!
//! Group commit: [`Store::commit`] writes the records of any number of groups in one write
//! transaction and makes it durable with one fsync. redb commits atomically (copy-on-write
//! pages, checksummed, with a two-slot commit header), so a crash or power cut mid-commit
//! leaves the previous commit: there is never a torn record to truncate at the tail.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, StorageBackend, TableDefinition};
use synod_core::{DurableState, Record};

use crate::codec::{self, DecodeError};
use crate::snapshots::SnapshotFiles;

const LOG: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("log");

/// The `seq` that [`StorageError::Corrupt`] reports for a group's snapshot.
pub const SNAPSHOT_SEQ: u64 = u64::MAX;

pub use synod_core::GroupId;

/// A storage failure. Engine errors are fatal to the node (etcd's rule: a replica that cannot
/// trust its disk must stop); `Corrupt` is fatal to one group, which the node then
/// quarantines.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The embedded engine failed (I/O error, full disk, corrupt page).
    #[error("storage engine: {0}")]
    Engine(#[from] redb::Error),
    /// A record of a group failed its checksum or could not be decoded.
    #[error(
        "group {group} is corrupt at record {seq}: {source}; it must not be served from this disk"
    )]
    Corrupt {
        /// The group.
        group: u32,
        /// The record's sequence number in the group's log ([`SNAPSHOT_SEQ`]: its snapshot).
        seq: u64,
        /// What was wrong with it.
        source: DecodeError,
    },
    /// A snapshot file could not be written, read or removed.
    #[error("snapshot file: {0}")]
    SnapshotIo(#[from] std::io::Error),
}

impl StorageError {
    /// Whether the database itself is damaged (redb found a bad page checksum, a file shorter
    /// than its own layout, ...), as opposed to an I/O failure: its content cannot be trusted
    /// and the node must not serve from it.
    #[must_use]
    pub fn is_corruption(&self) -> bool {
        matches!(self, StorageError::Engine(redb::Error::Corrupted(_))) || self.is_short_read()
    }

    /// Whether a read ended before the end of what the database refers to: a file cut short
    /// (redb reports a cut on a page boundary this way rather than as `Corrupted`), or one
    /// still being copied into place. Damage, if it persists: look again before acting on it.
    #[must_use]
    pub fn is_short_read(&self) -> bool {
        matches!(self, StorageError::Engine(redb::Error::Io(e))
            if e.kind() == std::io::ErrorKind::UnexpectedEof)
    }
}

/// Folds a group's log records in order; returns the state and the sequence number after the
/// last record.
fn fold_log(db: &Database, group: GroupId) -> Result<(DurableState, u64), StorageError> {
    let tx = db.begin_read().map_err(engine)?;
    let table = tx.open_table(LOG).map_err(engine)?;
    let (lo, hi) = (key(group, 0), key(group, u64::MAX));
    let mut state = DurableState::default();
    let mut end = 0;
    for entry in table.range(lo.as_slice()..=hi.as_slice()).map_err(engine)? {
        let (k, v) = entry.map_err(engine)?;
        let (_, seq) = split_key(k.value());
        let record = codec::decode(v.value()).map_err(|source| StorageError::Corrupt {
            group: group.0,
            seq,
            source,
        })?;
        state.apply(&record);
        end = seq + 1;
    }
    Ok((state, end))
}

/// Drops what a snapshot at `floor` covers from a folded state.
fn prune_below(state: &mut DurableState, floor: u64) {
    let keep = synod_core::Slot(floor);
    state.promised = state.promised.split_off(&keep);
    state.accepted = state.accepted.split_off(&keep);
    state.decided = state.decided.split_off(&keep);
}

/// The records that recover `state`, without its snapshot (which lives in its file).
fn log_records(state: &DurableState) -> Vec<Record> {
    state
        .to_records()
        .into_iter()
        .filter(|r| !matches!(r, Record::Snapshot(_)))
        .collect()
}

/// Reads a store's log from another thread, to plan compactions without holding up commits
/// (redb readers see a consistent committed state while the writer goes on).
#[derive(Clone, Debug)]
pub struct LogReader {
    db: Arc<Database>,
}

/// A compaction worked out by [`LogReader::plan_compaction`], for [`Store::apply_compaction`].
#[derive(Clone, Debug)]
pub struct CompactionPlan {
    group: GroupId,
    /// The log's end (next sequence number) when planned.
    end: u64,
    /// The fewest records that fold to the group's state as of `end`, above the snapshot.
    keep: Vec<Record>,
}

impl LogReader {
    /// Folds `group`'s log as committed now and works out the records that still matter
    /// once a snapshot at `snapshot_next_slot` is durable.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] if a record fails its check; the engine's error.
    pub fn plan_compaction(
        &self,
        group: GroupId,
        snapshot_next_slot: u64,
    ) -> Result<CompactionPlan, StorageError> {
        let (mut state, end) = fold_log(&self.db, group)?;
        prune_below(&mut state, snapshot_next_slot);
        Ok(CompactionPlan {
            group,
            end,
            keep: log_records(&state),
        })
    }
}

/// Where [`Store::open`] keeps a database's snapshot files: `{file}.snapshots/` beside it.
fn snapshot_dir(db: &Path) -> std::path::PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".snapshots");
    db.with_file_name(name)
}

fn engine(e: impl Into<redb::Error>) -> StorageError {
    StorageError::Engine(e.into())
}

fn key(group: GroupId, seq: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&group.0.to_be_bytes());
    k[4..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn split_key(k: &[u8]) -> (GroupId, u64) {
    let group = u32::from_be_bytes(k[..4].try_into().expect("12-byte key"));
    let seq = u64::from_be_bytes(k[4..12].try_into().expect("12-byte key"));
    (GroupId(group), seq)
}

/// The node's durable log. Not thread-safe by itself: the node's storage task owns it.
#[derive(Debug)]
pub struct Store {
    db: Arc<Database>,
    snapshots: SnapshotFiles,
    /// Next sequence number per group (loaded lazily).
    next_seq: BTreeMap<GroupId, u64>,
    commits: u64,
}

impl Store {
    /// Opens (or creates) the store at `path`.
    ///
    /// # Errors
    /// The engine's error, e.g. a file that is not a redb database.
    pub fn open(path: &Path) -> Result<Store, StorageError> {
        let db = Database::create(path).map_err(engine)?;
        Store::init(db, &snapshot_dir(path))
    }

    /// Opens a store on a custom backend (the power-cut test mode uses
    /// [`crate::UnsyncedFile`]).
    ///
    /// # Errors
    /// The engine's error.
    pub fn open_with_backend(
        backend: impl StorageBackend,
        snapshot_dir: &Path,
    ) -> Result<Store, StorageError> {
        let db = Database::builder()
            .create_with_backend(backend)
            .map_err(engine)?;
        Store::init(db, snapshot_dir)
    }

    fn init(db: Database, snapshot_dir: &Path) -> Result<Store, StorageError> {
        let tx = db.begin_write().map_err(engine)?;
        tx.open_table(LOG).map_err(engine)?;
        tx.commit().map_err(engine)?;
        Ok(Store {
            db: Arc::new(db),
            snapshots: SnapshotFiles::open(snapshot_dir)?,
            next_seq: BTreeMap::new(),
            commits: 0,
        })
    }

    /// The snapshot files, to write snapshots from another thread.
    #[must_use]
    pub fn snapshot_files(&self) -> SnapshotFiles {
        self.snapshots.clone()
    }

    /// Durable commits made so far by this handle (each is one fsync).
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.commits
    }

    fn next_seq_of(&mut self, group: GroupId) -> Result<u64, StorageError> {
        if let Some(s) = self.next_seq.get(&group) {
            return Ok(*s);
        }
        let tx = self.db.begin_read().map_err(engine)?;
        let table = tx.open_table(LOG).map_err(engine)?;
        let (lo, hi) = (key(group, 0), key(group, u64::MAX));
        let last = table
            .range(lo.as_slice()..=hi.as_slice())
            .map_err(engine)?
            .next_back();
        let next = match last {
            Some(entry) => split_key(entry.map_err(engine)?.0.value()).1 + 1,
            None => 0,
        };
        self.next_seq.insert(group, next);
        Ok(next)
    }

    /// Appends the records of every group in `batch` and makes them durable with one fsync.
    /// When this returns `Ok`, the records survive a crash or power cut.
    ///
    /// # Errors
    /// The engine's error (e.g. a full disk); nothing of the batch is durable then.
    pub fn commit<'a>(
        &mut self,
        batch: impl IntoIterator<Item = (GroupId, &'a [Record])>,
    ) -> Result<(), StorageError> {
        let batch: Vec<(GroupId, &[Record])> = batch.into_iter().collect();
        let mut seqs = BTreeMap::new();
        for (group, _) in &batch {
            if !seqs.contains_key(group) {
                seqs.insert(*group, self.next_seq_of(*group)?);
            }
        }
        // Snapshots go to their files first (durable before this returns, like the rest). The
        // node's storage task takes them out of its commits and writes them from another thread.
        for (group, records) in &batch {
            for r in *records {
                if let Record::Snapshot(s) = r {
                    self.snapshots.write(*group, s)?;
                }
            }
        }
        let tx = self.db.begin_write().map_err(engine)?;
        {
            let mut table = tx.open_table(LOG).map_err(engine)?;
            for (group, records) in &batch {
                let seq = seqs.get_mut(group).expect("loaded above");
                for r in *records {
                    if matches!(r, Record::Snapshot(_)) {
                        continue;
                    }
                    table
                        .insert(key(*group, *seq).as_slice(), codec::encode(r).as_slice())
                        .map_err(engine)?;
                    *seq += 1;
                }
            }
        }
        tx.commit().map_err(engine)?;
        self.commits += 1;
        self.next_seq.extend(seqs);
        Ok(())
    }

    /// Reads a group's records, verifying every checksum, and folds them.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] naming the first bad record; the group must not be served
    /// from this disk.
    pub fn recover(&self, group: GroupId) -> Result<DurableState, StorageError> {
        let mut state = self.recover_log(group)?;
        if let Some(record) = self.snapshots.read(group)? {
            // Folding it after the log is the same as before: it drops what it covers.
            state.apply(&record);
        }
        Ok(state)
    }

    /// Folds a group's log records (not its snapshot), verifying every checksum.
    fn recover_log(&self, group: GroupId) -> Result<DurableState, StorageError> {
        Ok(fold_log(&self.db, group)?.0)
    }

    /// A handle that plans compactions from another thread (reading while this store
    /// commits).
    #[must_use]
    pub fn log_reader(&self) -> LogReader {
        LogReader {
            db: self.db.clone(),
        }
    }

    /// Applies a compaction planned by [`LogReader::plan_compaction`]: the kept records replace
    /// the tail of the planned range and everything before them is deleted, in one durable
    /// commit. Records appended since the plan stay as they are. Returns false, changing
    /// nothing, if the group's log was replaced meanwhile (removed) or is too short to hold
    /// the kept records in place.
    ///
    /// # Errors
    /// The engine's error.
    pub fn apply_compaction(&mut self, plan: &CompactionPlan) -> Result<bool, StorageError> {
        let keep = plan.keep.len() as u64;
        if self.next_seq_of(plan.group)? < plan.end || plan.end < keep {
            return Ok(false);
        }
        let first_kept = plan.end - keep;
        let tx = self.db.begin_write().map_err(engine)?;
        {
            let mut table = tx.open_table(LOG).map_err(engine)?;
            let (lo, hi) = (key(plan.group, 0), key(plan.group, first_kept));
            table
                .retain_in(lo.as_slice()..hi.as_slice(), |_, _| false)
                .map_err(engine)?;
            // The kept records fold to the state as of `end`, so they take the place of the
            // last records before it; what was appended since folds after them, as before.
            for (i, r) in plan.keep.iter().enumerate() {
                table
                    .insert(
                        key(plan.group, first_kept + i as u64).as_slice(),
                        codec::encode(r).as_slice(),
                    )
                    .map_err(engine)?;
            }
        }
        tx.commit().map_err(engine)?;
        self.commits += 1;
        Ok(true)
    }

    /// Every group with records.
    ///
    /// # Errors
    /// The engine's error.
    pub fn groups(&self) -> Result<Vec<GroupId>, StorageError> {
        let tx = self.db.begin_read().map_err(engine)?;
        let table = tx.open_table(LOG).map_err(engine)?;
        let mut out = Vec::new();
        let mut from = key(GroupId(0), 0);
        loop {
            let next = table.range(from.as_slice()..).map_err(engine)?.next();
            let Some(entry) = next else { break };
            let (group, _) = split_key(entry.map_err(engine)?.0.value());
            out.push(group);
            match group.0.checked_add(1) {
                Some(g) => from = key(GroupId(g), 0),
                None => break,
            }
        }
        // A group whose log compacted to nothing still has its snapshot.
        for g in self.snapshots.groups() {
            if !out.contains(&g) {
                out.push(g);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Records stored for `group`.
    ///
    /// # Errors
    /// The engine's error.
    pub fn len(&self, group: GroupId) -> Result<u64, StorageError> {
        let tx = self.db.begin_read().map_err(engine)?;
        let table = tx.open_table(LOG).map_err(engine)?;
        let (lo, hi) = (key(group, 0), key(group, u64::MAX));
        Ok(table
            .range(lo.as_slice()..=hi.as_slice())
            .map_err(engine)?
            .count() as u64)
    }

    /// Rewrites `group`'s log as the fewest records that recover `state` (after a snapshot,
    /// so disk use stays bounded), atomically and durably: a crash leaves the old log or the
    /// new one.
    ///
    /// # Errors
    /// The engine's error.
    pub fn compact(&mut self, group: GroupId, state: &DurableState) -> Result<(), StorageError> {
        self.replace_group(group, &log_records(state))
    }

    /// Compacts `group`'s log against its latest committed snapshot: drops every record the
    /// snapshot covers and rewrites the rest as the fewest records that recover the same
    /// state. Reads the log only (not the snapshot), so its cost follows the log's length.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] if a log record fails its check; the engine's error.
    pub fn compact_log(&mut self, group: GroupId) -> Result<(), StorageError> {
        // The same plan-and-apply path the node takes, in one call.
        let floor = self.snapshots.next_slot(group).unwrap_or(0);
        let plan = self.log_reader().plan_compaction(group, floor)?;
        if !self.apply_compaction(&plan)? {
            // The log is shorter than what it keeps: rewrite it whole.
            self.replace_group(group, &plan.keep)?;
        }
        Ok(())
    }

    /// Deletes a group's log.
    ///
    /// # Errors
    /// The engine's error.
    pub fn remove_group(&mut self, group: GroupId) -> Result<(), StorageError> {
        self.rewrite_group(group, &[], true)?;
        self.next_seq.remove(&group);
        Ok(())
    }

    /// Wipes a group whose state cannot be trusted (a record failed its check, its snapshot
    /// cannot be read or decoded): its log becomes one [`Record::Fence`] with `nonce`, in one
    /// durable commit, and its snapshot file is deleted. The group then rejoins behind a fence
    /// (see `synod-core`'s `replica/rejoin.rs`); a crash in between leaves either the old log
    /// (found corrupt again) or the fence, never an empty log that would start as a fresh
    /// acceptor under the old id.
    ///
    /// # Errors
    /// The engine's error, or the snapshot file's.
    pub fn reset_group(&mut self, group: GroupId, nonce: u64) -> Result<(), StorageError> {
        self.rewrite_group(group, &[Record::Fence { nonce }], true)
    }

    /// Replaces a group's whole log with `records`, in one durable commit.
    fn replace_group(&mut self, group: GroupId, records: &[Record]) -> Result<(), StorageError> {
        self.rewrite_group(group, records, false)
    }

    /// Replaces a group's log with `records` (and deletes its snapshot if `drop_snapshot`), in
    /// one durable commit.
    fn rewrite_group(
        &mut self,
        group: GroupId,
        records: &[Record],
        drop_snapshot: bool,
    ) -> Result<(), StorageError> {
        let tx = self.db.begin_write().map_err(engine)?;
        {
            let mut table = tx.open_table(LOG).map_err(engine)?;
            let (lo, hi) = (key(group, 0), key(group, u64::MAX));
            table
                .retain_in(lo.as_slice()..=hi.as_slice(), |_, _| false)
                .map_err(engine)?;
            for (seq, r) in records.iter().enumerate() {
                table
                    .insert(
                        key(group, seq as u64).as_slice(),
                        codec::encode(r).as_slice(),
                    )
                    .map_err(engine)?;
            }
        }
        tx.commit().map_err(engine)?;
        self.commits += 1;
        self.next_seq.insert(group, records.len() as u64);
        // The snapshot goes after its log: a crash in between leaves a group with a snapshot
        // and no log (still removed by the catalog), never a compacted log without its snapshot.
        if drop_snapshot {
            self.snapshots.remove(group)?;
        }
        Ok(())
    }

    /// Test hook: overwrites the bytes of a group's last stored record (a damaged log tail).
    ///
    /// # Errors
    /// The engine's error; [`StorageError::Corrupt`] (seq 0) if the group has no record.
    #[doc(hidden)]
    pub fn dangerous_overwrite_last_raw(
        &mut self,
        group: GroupId,
        bytes: &[u8],
    ) -> Result<(), StorageError> {
        let last = {
            let tx = self.db.begin_read().map_err(engine)?;
            let table = tx.open_table(LOG).map_err(engine)?;
            let (lo, hi) = (key(group, 0), key(group, u64::MAX));
            let mut range = table.range(lo.as_slice()..=hi.as_slice()).map_err(engine)?;
            match range.next_back() {
                Some(entry) => split_key(entry.map_err(engine)?.0.value()).1,
                None => {
                    return Err(StorageError::Corrupt {
                        group: group.0,
                        seq: 0,
                        source: DecodeError::Truncated(0),
                    });
                }
            }
        };
        self.dangerous_overwrite_raw(group, last, bytes)
    }

    /// Test hook: overwrites one stored record's bytes (as a bit flip on disk would, below the
    /// engine's own checks).
    #[doc(hidden)]
    pub fn dangerous_overwrite_raw(
        &mut self,
        group: GroupId,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), StorageError> {
        let tx = self.db.begin_write().map_err(engine)?;
        {
            let mut table = tx.open_table(LOG).map_err(engine)?;
            table
                .insert(key(group, seq).as_slice(), bytes)
                .map_err(engine)?;
        }
        tx.commit().map_err(engine)?;
        Ok(())
    }
}
