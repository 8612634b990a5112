//! The storage thread: owns the [`Store`], commits each batch of records (one fsync), then
//! compacts the logs of groups that took a snapshot in it.

use std::time::{Duration, Instant};

use synod_core::Record;
use synod_storage::{GroupId, Store};
use tokio::sync::mpsc;

/// One commit for the storage thread: records of many groups, then the groups whose log to
/// compact (their snapshot record is in this commit).
pub(super) struct StorageJob {
    pub(super) records: Vec<(GroupId, Vec<Record>)>,
    pub(super) compact: Vec<GroupId>,
    /// Groups removed from the catalog: their log is deleted after the records and
    /// compactions of this job.
    pub(super) remove: Vec<GroupId>,
}

/// What a commit cost.
pub(super) struct CommitDone {
    pub(super) fsync: Duration,
    pub(super) records: usize,
}

pub(super) fn storage_thread(
    mut store: Store,
    jobs: std::sync::mpsc::Receiver<StorageJob>,
    done: mpsc::Sender<Result<CommitDone, String>>,
) {
    while let Ok(job) = jobs.recv() {
        let started = Instant::now();
        let records = job.records.iter().map(|(_, r)| r.len()).sum();
        let mut result = store
            .commit(job.records.iter().map(|(g, r)| (*g, r.as_slice())))
            .map(|()| CommitDone {
                fsync: started.elapsed(),
                records,
            })
            .map_err(|e| e.to_string());
        if result.is_ok() {
            for g in job.compact {
                // Rewrite the group's log as what recovery needs after its new snapshot, so
                // disk use stays bounded under a steady write load.
                if let Err(e) = store.recover(g).and_then(|state| store.compact(g, &state)) {
                    result = Err(e.to_string());
                }
            }
            for g in job.remove {
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
