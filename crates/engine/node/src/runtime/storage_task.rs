//! The storage thread: owns the [`Store`] and commits each batch of records (one fsync).
//!
//! Snapshots take another road. A snapshot carries the whole application state (megabytes),
//! so it is written to its own file by a second thread while commits go on; once the file is
//! durable, that thread also reads the group's log (a redb reader, beside the writer) and
//! works out the compaction, which the storage thread then applies in one short commit.
//! Nothing waits for a snapshot to be durable: until it is, the log still holds everything a
//! restart needs (it is compacted only afterwards), and peers that need the snapshot are served
//! from memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use synod_core::{Record, Snapshot};
use synod_storage::{CompactionPlan, GroupId, LogReader, SnapshotFiles, Store};
use tokio::sync::mpsc;

/// Work for the storage thread.
pub(super) enum StorageJob {
    /// One commit: records of many groups, then the groups whose log to delete. Answered on
    /// the `done` channel.
    Commit {
        /// Groups whose log is wiped first, leaving one fence record with this nonce (their
        /// state here could not be trusted; they rejoin).
        reset: Vec<(GroupId, u64)>,
        records: Vec<(GroupId, Vec<Record>)>,
        /// Groups removed from the catalog: their log is deleted after these records.
        remove: Vec<GroupId>,
    },
}

/// What a commit cost.
pub(super) struct CommitDone {
    pub(super) fsync: Duration,
    pub(super) records: usize,
}

/// Runs until the event loop drops its end of `jobs`.
pub(super) fn storage_thread(
    mut store: Store,
    jobs: std::sync::mpsc::Receiver<StorageJob>,
    done: mpsc::Sender<Result<CommitDone, String>>,
) {
    let (snapshots_tx, snapshots_rx) = std::sync::mpsc::channel();
    // Compactions planned once a snapshot file is durable. Polled between commits: this
    // thread must not hold a sender of `jobs`, or it would never see the event loop go away.
    let (compact_tx, compact_rx) = std::sync::mpsc::channel::<CompactionPlan>();
    let files = store.snapshot_files();
    let reader = store.log_reader();
    let writer = std::thread::Builder::new()
        .name("synod-snapshots".into())
        .spawn(move || snapshot_thread(&files, &reader, &snapshots_rx, &compact_tx));
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            let _ = done.blocking_send(Err(format!("cannot start the snapshot writer: {e}")));
            return;
        }
    };
    serve(&mut store, &jobs, &done, &snapshots_tx, &compact_rx);
    // The snapshot thread reads the database too: it must be gone before this thread returns,
    // so that whoever joins this thread may open the database again.
    drop(snapshots_tx);
    let _ = writer.join();
}

fn serve(
    store: &mut Store,
    jobs: &std::sync::mpsc::Receiver<StorageJob>,
    done: &mpsc::Sender<Result<CommitDone, String>>,
    snapshots_tx: &std::sync::mpsc::Sender<(GroupId, Arc<Snapshot>)>,
    compact_rx: &std::sync::mpsc::Receiver<CompactionPlan>,
) {
    loop {
        let job = match jobs.recv_timeout(Duration::from_millis(20)) {
            Ok(job) => Some(job),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        while let Ok(plan) = compact_rx.try_recv() {
            let t = Instant::now();
            // Replace the log with what recovery needs after the new snapshot, so disk use
            // stays bounded under a steady write load.
            if let Err(e) = store.apply_compaction(&plan) {
                let _ = done.blocking_send(Err(e.to_string()));
                return;
            }
            tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "compacted");
        }
        let Some(job) = job else { continue };
        match job {
            StorageJob::Commit {
                reset,
                records,
                remove,
            } => {
                let started = Instant::now();
                for (g, nonce) in reset {
                    if let Err(e) = store.reset_group(g, nonce) {
                        let _ = done.blocking_send(Err(e.to_string()));
                        return;
                    }
                }
                let mut logged = Vec::with_capacity(records.len());
                let mut snapshots = Vec::new();
                for (g, rs) in records {
                    let (snaps, rest): (Vec<Record>, Vec<Record>) = rs
                        .into_iter()
                        .partition(|r| matches!(r, Record::Snapshot(_)));
                    for s in snaps {
                        if let Record::Snapshot(s) = s {
                            snapshots.push((g, s));
                        }
                    }
                    logged.push((g, rest));
                }
                let count = logged.iter().map(|(_, r)| r.len()).sum();
                let mut result = store
                    .commit(logged.iter().map(|(g, r)| (*g, r.as_slice())))
                    .map(|()| CommitDone {
                        fsync: started.elapsed(),
                        records: count,
                    })
                    .map_err(|e| e.to_string());
                if result.is_ok() {
                    // A snapshot never becomes durable before the records that came before it
                    // (records retiring proposals it shows delivered, for one).
                    for s in snapshots {
                        let _ = snapshots_tx.send(s);
                    }
                    for g in remove {
                        if let Err(e) = store.remove_group(g) {
                            result = Err(e.to_string());
                        }
                    }
                }
                if done.blocking_send(result).is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes snapshots to their files, newest wins, then asks for the log's compaction.
fn snapshot_thread(
    files: &SnapshotFiles,
    reader: &LogReader,
    snapshots: &std::sync::mpsc::Receiver<(GroupId, Arc<Snapshot>)>,
    compact: &std::sync::mpsc::Sender<CompactionPlan>,
) {
    while let Ok((mut group, mut snapshot)) = snapshots.recv() {
        // Only the newest queued snapshot of a group is worth writing.
        while let Ok((g, s)) = snapshots.try_recv() {
            if g != group {
                write(files, reader, compact, group, &snapshot);
            }
            (group, snapshot) = (g, s);
        }
        write(files, reader, compact, group, &snapshot);
    }
}

fn write(
    files: &SnapshotFiles,
    reader: &LogReader,
    compact: &std::sync::mpsc::Sender<CompactionPlan>,
    group: GroupId,
    snapshot: &Arc<Snapshot>,
) {
    let t = Instant::now();
    match files.write(group, snapshot) {
        Ok(true) => {
            tracing::debug!(
                group = %group.0,
                ms = t.elapsed().as_secs_f64() * 1e3,
                "snapshot written"
            );
            match reader.plan_compaction(group, snapshot.next_slot.0) {
                Ok(plan) => {
                    let _ = compact.send(plan);
                }
                // A bad record stops the group at the next restart; here, only the compaction
                // is skipped.
                Err(e) => tracing::error!(group = group.0, error = %e, "cannot plan a compaction"),
            }
        }
        Ok(false) => {}
        // The log still holds everything; the next snapshot tries again.
        Err(e) => tracing::warn!(group = group.0, error = %e, "could not write a snapshot file"),
    }
}
