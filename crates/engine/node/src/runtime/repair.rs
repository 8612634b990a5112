//! Repairing a group whose state on this node cannot be trusted, and rejoining after a lost
//! disk.
//!
//! A group's copy here is wiped and rejoins from its peers when:
//! - a record of its log fails its checksum, or its snapshot file cannot be read (found at
//!   startup: [`recover_store`]);
//! - its snapshot's application state cannot be decoded (found when the group is opened:
//!   [`Runtime::open_fenced`]);
//! - the node runs with `rejoin` on an empty data directory (its disk was replaced): every
//!   group it hosts starts fenced, as long as the `REJOINING` marker file stands.
//!
//! Wiping leaves one fence record in the group's log (in the same commit), so the replica
//! casts no vote where it may have voted before and comes back by itself once the group has
//! agreed on its rejoin (`synod-core`, `replica/rejoin.rs`). Never is a group reopened as a
//! fresh acceptor under the same id. What is not repaired here: a group whose application
//! failed (a bug that would recur) stays quarantined.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use synod_core::{DurableState, RejoinStatus};
use synod_storage::{GroupId, StorageError, Store, UnsyncedFile};

use super::groups::{Dormant, Group};
use super::{DEFAULT_GROUP, NodeConfig, NodeError, Runtime};
use crate::catalog::GroupInfo;

/// The marker file that keeps a node in rejoin mode across restarts.
const REJOIN_MARKER: &str = "REJOINING";

/// A nonce for a rejoin: random, so that a second loss never matches an earlier rejoin.
pub(super) fn fresh_nonce() -> u64 {
    rand::random()
}

/// What startup found on disk, after wiping what could not be trusted.
pub(super) struct Recovered {
    /// Groups other than the default one, until the catalog claims them.
    pub(super) dormant: Dormant,
    /// The default group's state.
    pub(super) default: DurableState,
    /// Groups wiped at startup, and why.
    pub(super) repairs: BTreeMap<GroupId, String>,
    /// The rejoin marker, if the node is rejoining after a lost disk.
    pub(super) marker: Option<PathBuf>,
}

/// Opens the node's database and recovers every group (see [`recover_store`]). If redb finds
/// the database itself damaged (a bad page, a file truncated below its layout), the files are
/// renamed aside (`synod.redb.corrupt-<unix seconds>`, kept for inspection) and the node starts
/// from an empty database in rejoin mode: every group it hosts rejoins from its peers.
///
/// # Errors
/// A database that cannot be opened for any other reason (I/O, permissions), or the data
/// directory's errors.
pub(super) fn open_store(config: &NodeConfig) -> Result<(Store, Recovered), NodeError> {
    let db = config.data_dir.join("synod.redb");
    let attempt = |rejoin: bool| {
        let mut store = open_db(&db, config.power_cut_test_mode)?;
        let recovered = recover_store(&mut store, config, rejoin)?;
        Ok::<_, NodeError>((store, recovered))
    };
    let first = match attempt(false) {
        // A short read may be a file still being copied into place, or a flaky network file
        // system, rather than a file cut short: look again before setting anything aside.
        Err(NodeError::Storage(e)) if e.is_short_read() => {
            tracing::warn!(error = %e, "the database reads short; trying again in a second");
            std::thread::sleep(std::time::Duration::from_secs(1));
            attempt(false)
        }
        other => other,
    };
    match first {
        Err(NodeError::Storage(e)) if e.is_corruption() => {
            // The marker first: whatever a crash leaves of what follows, the node restarts
            // in rejoin mode and never treats an empty database as a fresh start.
            let marker = config.data_dir.join(REJOIN_MARKER);
            let io = |source| NodeError::DataDir {
                path: db.clone(),
                source,
            };
            write_marker(&marker).map_err(io)?;
            let aside = set_aside(&db).map_err(io)?;
            tracing::error!(
                error = %e,
                moved_to = %aside.display(),
                "the database is damaged: set aside; every group this node hosts rejoins from \
                 its peers"
            );
            attempt(true)
        }
        other => other,
    }
}

fn snapshots_dir(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".snapshots");
    PathBuf::from(name)
}

fn open_db(db: &Path, power_cut_test_mode: bool) -> Result<Store, NodeError> {
    if power_cut_test_mode {
        let (backend, _) = UnsyncedFile::open(db).map_err(|source| NodeError::DataDir {
            path: db.to_path_buf(),
            source,
        })?;
        Ok(Store::open_with_backend(backend, &snapshots_dir(db))?)
    } else {
        Ok(Store::open(db)?)
    }
}

/// Renames a damaged database (and its snapshot directory) aside; returns the new name.
fn set_aside(db: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let with_suffix = |p: &Path| {
        let mut name = p.as_os_str().to_os_string();
        name.push(format!(".corrupt-{secs}"));
        PathBuf::from(name)
    };
    let sync_dir = || match db.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    };
    // Snapshots first, each rename durable before the next: a database renamed aside with
    // its snapshots left in place would look like a group compacted to its snapshot.
    let snapshots = snapshots_dir(db);
    if snapshots.exists() {
        std::fs::rename(&snapshots, with_suffix(&snapshots))?;
        sync_dir()?;
    }
    let aside = with_suffix(db);
    std::fs::rename(db, &aside)?;
    sync_dir()?;
    Ok(aside)
}

/// Recovers every group from `store`. A group whose log fails its checksum or whose snapshot
/// cannot be read is wiped (a fence record in its place) and rejoins; with `config.rejoin`
/// (or `force_rejoin`: the database was set aside) and an empty store, the node enters
/// rejoin mode.
///
/// # Errors
/// The engine's errors (a disk that cannot be read or written at all stops the node), or the
/// marker file's.
fn recover_store(
    store: &mut Store,
    config: &NodeConfig,
    force_rejoin: bool,
) -> Result<Recovered, NodeError> {
    let groups = store.groups()?;
    let marker_path = config.data_dir.join(REJOIN_MARKER);
    let mut marker = marker_path.exists().then(|| marker_path.clone());
    if (config.rejoin || force_rejoin) && marker.is_none() {
        if groups.is_empty() {
            write_marker(&marker_path).map_err(|source| NodeError::DataDir {
                path: marker_path.clone(),
                source,
            })?;
            tracing::warn!(
                "rejoining: this node's data directory is empty; every group it hosts starts \
                 fenced and rejoins from its peers"
            );
            marker = Some(marker_path);
        } else {
            tracing::info!("`rejoin` ignored: the data directory holds this node's state");
        }
    }
    let mut repairs = BTreeMap::new();
    let mut recover = |store: &mut Store, gid: GroupId| match store.recover(gid) {
        Ok(state) => Ok(state),
        // Only what fails its checksum is wiped. An I/O error (a permission, a file limit, a
        // failing disk) stops the node instead: wiping on it could erase every copy at once.
        Err(e @ StorageError::Corrupt { .. }) => {
            tracing::error!(
                group = %gid,
                error = %e,
                "group wiped: its state on this disk cannot be trusted; it rejoins from its peers"
            );
            store.reset_group(gid, fresh_nonce())?;
            repairs.insert(gid, e.to_string());
            store.recover(gid)
        }
        Err(e) => Err(e),
    };
    let mut dormant = Dormant::new();
    for gid in groups {
        if gid != DEFAULT_GROUP {
            dormant.insert(gid, recover(store, gid)?);
        }
    }
    let mut default = recover(store, DEFAULT_GROUP)?;
    if marker.is_some() && default == DurableState::default() {
        // Rejoin mode, and the default group not written yet (a crash may have come between
        // the marker and this): fence it now, before anything else is written.
        store.reset_group(DEFAULT_GROUP, fresh_nonce())?;
        default = store.recover(DEFAULT_GROUP)?;
    }
    if marker.is_some() {
        repairs
            .entry(DEFAULT_GROUP)
            .or_insert_with(|| "this node lost its disk".into());
    }
    Ok(Recovered {
        dormant,
        default,
        repairs,
        marker,
    })
}

/// The layout of what this version writes in a data directory: the log's command envelope
/// (`host::Command`) and the snapshot state layout (`host::HOST_FORMAT`). Raise it with every
/// change a node of another version would read differently.
const DATA_FORMAT: &str = "synod data format 2\n";

/// Refuses a data directory written in another layout (a log replayed under another
/// encoding could be read differently and make replicas diverge); marks a new one.
///
/// # Errors
/// [`NodeError::DataFormat`] for another layout, [`NodeError::DataDir`] for I/O.
pub(super) fn check_data_format(data_dir: &Path) -> Result<(), NodeError> {
    let path = data_dir.join("FORMAT");
    let io = |source| NodeError::DataDir {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(found) if found == DATA_FORMAT => Ok(()),
        Ok(found) => Err(NodeError::DataFormat {
            found: found.trim().to_string(),
            expected: DATA_FORMAT.trim().to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A database without the mark was written before the mark existed, in the
            // earlier layout.
            if data_dir.join("synod.redb").exists() {
                return Err(NodeError::DataFormat {
                    found: "synod data format 1 (no FORMAT file)".into(),
                    expected: DATA_FORMAT.trim().to_string(),
                });
            }
            write_marker_with(&path, DATA_FORMAT.as_bytes()).map_err(io)
        }
        Err(e) => Err(io(e)),
    }
}

/// Creates `path` holding `bytes` durably (the file, then its directory entry).
fn write_marker_with(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Creates the marker durably (the file, then its directory entry).
fn write_marker(path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    file.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Runtime {
    /// Opens group `id` fenced, with nothing of its old state: its log is wiped before the
    /// next commit's records (a fence record in its place), and it rejoins from its peers.
    pub(super) fn open_fenced(&mut self, info: &GroupInfo, reason: String) {
        let id = info.id;
        let nonce = fresh_nonce();
        tracing::error!(group = %id, error = %reason, "group wiped: it rejoins from its peers");
        self.reset_next.push((id, nonce));
        self.repairs.insert(id, reason);
        self.metrics.repairs += 1;
        let state = DurableState {
            fence: Some(nonce),
            ..DurableState::default()
        };
        // With no snapshot to decode, opening cannot fail; if it did, stop serving.
        if let Err(e) = self.host(info, state) {
            self.corrupt.insert(id, e.to_string());
        }
    }

    /// The state a group this node hosts but has nothing of starts from: empty, or fenced
    /// while the node rejoins after a lost disk (it may have voted in the group before).
    ///
    /// A group whose creation the default group delivered at or after the slot of this node's
    /// own rejoin there was created after the loss: this node never voted in it, so it starts
    /// fresh. Any other group (or any group while that slot is not known yet) starts fenced.
    pub(super) fn fresh_state(&mut self, id: GroupId, created_gsn: u64) -> DurableState {
        if self.rejoin_marker.is_none() || self.created_after_loss(created_gsn) {
            return DurableState::default();
        }
        self.repairs.insert(id, "this node lost its disk".into());
        DurableState {
            fence: Some(fresh_nonce()),
            ..DurableState::default()
        }
    }

    /// For `/v1/status`: why and how far a group rejoins, if it does.
    pub(super) fn rejoin_note(&self, g: &Group) -> Option<String> {
        let reason = self.repairs.get(&g.id).map_or("", String::as_str);
        match g.replica.rejoin_status()? {
            RejoinStatus::Waiting => Some(format!(
                "waiting for the group to agree on its rejoin (wiped: {reason})"
            )),
            RejoinStatus::CatchingUp { fence } => Some(format!(
                "catching up to its fence at slot {fence}; no votes below it, writes refused \
                 until then (wiped: {reason})"
            )),
        }
    }

    /// Whether a group created at `created_gsn` in the default group's log was created after
    /// this node lost its disk (so never voted in here).
    fn created_after_loss(&self, created_gsn: u64) -> bool {
        self.groups
            .get(&DEFAULT_GROUP)
            .and_then(|g| g.replica.rejoined_at())
            .is_some_and(|d| created_gsn >= d.0)
    }

    /// Leaves rejoin mode once the catalog *as applied* covers the slot of this node's rejoin
    /// in the default group (so it lists every group created before the loss), and each of
    /// those this node hosts is open and past its fence. Groups created later were never
    /// voted in here and start fresh anyway.
    pub(super) fn maybe_finish_rejoin(&mut self) {
        self.repairs.retain(|id, _| {
            self.groups
                .get(id)
                .is_none_or(|g| g.replica.rejoin_status().is_some())
        });
        if self.rejoin_marker.is_none() {
            return;
        }
        let Some(default) = self.groups.get(&DEFAULT_GROUP) else {
            return;
        };
        let Some(loss) = default.replica.rejoined_at() else {
            return;
        };
        if default.replica.rejoin_status().is_some() || default.host.applied().0 <= loss.0 {
            return;
        }
        // The catalog applied past the rejoin slot: open what it lists first.
        self.catch_up_with_catalog();
        let catalog = self.catalog.borrow().clone();
        let all_done = catalog
            .groups()
            .filter(|info| info.hosts.contains(&self.node) && info.created_gsn < loss.0)
            .all(|info| {
                self.groups
                    .get(&info.id)
                    .is_some_and(|g| g.replica.rejoin_status().is_none())
            });
        let Some(marker) = self.rejoin_marker.clone().filter(|_| all_done) else {
            return;
        };
        match std::fs::remove_file(&marker) {
            Ok(()) => {
                tracing::info!("rejoined every group: leaving rejoin mode");
                self.rejoin_marker = None;
            }
            Err(e) => tracing::warn!(error = %e, "cannot remove the rejoin marker"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_in_another_layout_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // New: marked, then accepted again.
        check_data_format(dir.path()).expect("a new directory is marked");
        check_data_format(dir.path()).expect("and accepted");
        // Another version's mark.
        std::fs::write(dir.path().join("FORMAT"), "synod data format 9\n").expect("written");
        assert!(matches!(
            check_data_format(dir.path()),
            Err(NodeError::DataFormat { found, .. }) if found == "synod data format 9"
        ));
        // A database from before the mark existed.
        let old = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(old.path().join("synod.redb"), b"old").expect("written");
        assert!(matches!(
            check_data_format(old.path()),
            Err(NodeError::DataFormat { .. })
        ));
        assert!(!old.path().join("FORMAT").exists(), "nothing was changed");
    }
}
