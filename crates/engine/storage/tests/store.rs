//! The store against its promises: what a commit makes durable survives a crash, a torn write
//! never surfaces half a commit, corruption is reported with the group and record, and
//! compaction keeps what recovery needs.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use synod_core::{
    Ballot, Batch, CoreState, DurableState, Lsn, Payload, Record, ReplicaId, Slot, Snapshot, Time,
    Value,
};
use synod_storage::{GroupId, StorageError, Store, UnsyncedFile, codec};

/// A scratch directory for snapshot files (the tests with a test backend keep no snapshots).
fn snapshot_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("synod-store-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A snapshot of a one-member group covering the slots below `next_slot`.
fn snapshot_at(next_slot: u64) -> Arc<Snapshot> {
    Arc::new(Snapshot {
        next_slot: Slot(next_slot),
        core: CoreState {
            configs: synod_core::config::ConfigHistory::new(synod_core::Config::majority([
                ReplicaId(0),
            ])),
            delivered: Default::default(),
            agreed_time: Time(0),
            held: Default::default(),
            rejoined: Default::default(),
        },
        app: Bytes::from_static(b"app state"),
    })
}

fn cmd(i: u64) -> Record {
    Record::Proposal {
        lsn: Lsn(i),
        payload: Payload::Command(Bytes::from(format!("command {i}"))),
    }
}

fn accepted(slot: u64) -> Record {
    let value = Value::Batch(Arc::new(Batch {
        time: Time(slot),
        proposals: vec![],
    }));
    Record::Accepted {
        slot: Slot(slot),
        ballot: Ballot {
            counter: 1,
            random: 2,
            proposer: ReplicaId(1),
        },
        value,
    }
}

#[test]
fn records_of_many_groups_share_one_commit_and_recover_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let (backend, crash) = UnsyncedFile::open(&path).unwrap();
    let mut store = Store::open_with_backend(backend, &snapshot_dir()).unwrap();
    let syncs_before = crash.syncs();
    let a = vec![cmd(1), accepted(0)];
    let b = vec![cmd(1), cmd(2), Record::OwnNext { slot: Slot(3) }];
    store
        .commit([(GroupId(1), a.as_slice()), (GroupId(7), b.as_slice())])
        .unwrap();
    assert_eq!(store.commits(), 1);
    let per_commit = crash.syncs() - syncs_before;
    assert!(
        (1..=2).contains(&per_commit),
        "one commit, {per_commit} fsyncs"
    );
    assert_eq!(
        store.recover(GroupId(1)).unwrap(),
        DurableState::from_records(&a)
    );
    assert_eq!(
        store.recover(GroupId(7)).unwrap(),
        DurableState::from_records(&b)
    );
    assert_eq!(store.groups().unwrap(), vec![GroupId(1), GroupId(7)]);
    assert_eq!(store.recover(GroupId(3)).unwrap(), DurableState::default());
}

#[test]
fn what_was_committed_survives_a_power_cut_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let mut all = Vec::new();
    {
        let (backend, crash) = UnsyncedFile::open(&path).unwrap();
        let mut store = Store::open_with_backend(backend, &snapshot_dir()).unwrap();
        for i in 1..=20 {
            let batch = vec![cmd(i), accepted(i)];
            store.commit([(GroupId(0), batch.as_slice())]).unwrap();
            all.extend(batch);
        }
        crash.crash(|_| false).unwrap();
        // The process is gone: later commits cannot succeed.
        assert!(store.commit([(GroupId(0), [cmd(99)].as_slice())]).is_err());
    }
    let (backend, _) = UnsyncedFile::open(&path).unwrap();
    let store = Store::open_with_backend(backend, &snapshot_dir()).unwrap();
    assert_eq!(
        store.recover(GroupId(0)).unwrap(),
        DurableState::from_records(&all)
    );
}

/// A crash in the middle of a commit, with a random half of the unsynced pages torn onto the
/// disk, for many crash points: recovery yields exactly the acknowledged commits, plus at most
/// the one in flight (which nobody was told about), never part of it.
#[test]
fn a_torn_commit_is_all_or_nothing() {
    let mut mid_commit = 0;
    let mut recovered_in_flight = 0;
    for crash_point in (0..120).step_by(3) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let mut acked: Vec<Vec<Record>> = Vec::new();
        let mut in_flight = None;
        {
            let (backend, crash) = UnsyncedFile::open(&path).unwrap();
            let mut store = Store::open_with_backend(backend, &snapshot_dir()).unwrap();
            crash.crash_after_writes(crash_point, crash_point * 7919 + 1);
            for i in 0..40u64 {
                let batch: Vec<Record> = (0..(i % 5 + 1)).map(|k| cmd(i * 10 + k)).collect();
                match store.commit([
                    (GroupId(2), batch.as_slice()),
                    (GroupId(3), batch.as_slice()),
                ]) {
                    Ok(()) => acked.push(batch),
                    Err(_) => {
                        in_flight = Some(batch);
                        break;
                    }
                }
            }
            if !crash.has_crashed() {
                crash.crash(|i| i % 2 == 0).unwrap();
            }
        }
        let (backend, _) = UnsyncedFile::open(&path).unwrap();
        let store = match Store::open_with_backend(backend, &snapshot_dir()) {
            Ok(s) => s,
            Err(e) => panic!("crash point {crash_point}: the store did not reopen: {e}"),
        };
        let flat: Vec<Record> = acked.concat();
        let without = DurableState::from_records(&flat);
        let with = in_flight.map(|b| DurableState::from_records(&[flat.clone(), b].concat()));
        mid_commit += usize::from(with.is_some());
        for g in [GroupId(2), GroupId(3)] {
            let got = store.recover(g).unwrap();
            recovered_in_flight += usize::from(got != without);
            assert!(
                got == without || Some(&got) == with.as_ref(),
                "crash point {crash_point}: group {g:?} recovered a state that is neither the acknowledged commits nor them plus the one in flight"
            );
        }
    }
    // The crash points really fall inside commits (the test would prove little otherwise).
    assert!(
        mid_commit >= 30,
        "only {mid_commit} of 40 crashes hit a commit"
    );
    println!(
        "{mid_commit} crashes inside a commit; the in-flight commit survived {recovered_in_flight} times"
    );
}

#[test]
fn a_corrupt_record_stops_its_group_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("node.redb")).unwrap();
    let records: Vec<Record> = (1..=5).map(cmd).collect();
    store
        .commit([
            (GroupId(1), records.as_slice()),
            (GroupId(2), records.as_slice()),
        ])
        .unwrap();
    let mut bad = codec::encode(&records[2]);
    let last = bad.len() - 1;
    bad[last] ^= 0x10;
    store.dangerous_overwrite_raw(GroupId(1), 2, &bad).unwrap();
    let err = store.recover(GroupId(1)).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Corrupt {
                group: 1,
                seq: 2,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("group 1 is corrupt at record 2")
            && msg.contains("must not be served from this disk"),
        "{msg}"
    );
    // Other groups are unaffected.
    assert_eq!(
        store.recover(GroupId(2)).unwrap(),
        DurableState::from_records(&records)
    );
}

#[test]
fn a_reset_group_holds_only_its_fence_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let mut store = Store::open(&path).unwrap();
    let records: Vec<Record> = (1..=5).map(cmd).collect();
    store
        .commit([
            (GroupId(1), records.as_slice()),
            (GroupId(2), records.as_slice()),
        ])
        .unwrap();
    store
        .commit([(GroupId(1), [Record::Snapshot(snapshot_at(3))].as_slice())])
        .unwrap();
    store
        .snapshot_files()
        .write(GroupId(1), &snapshot_at(3))
        .unwrap();
    store
        .dangerous_overwrite_raw(GroupId(1), 2, b"not a record")
        .unwrap();
    assert!(store.recover(GroupId(1)).is_err());

    store.reset_group(GroupId(1), 42).unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let state = store.recover(GroupId(1)).unwrap();
    assert_eq!(
        state,
        DurableState {
            fence: Some(42),
            ..DurableState::default()
        },
        "nothing of the old log or its snapshot is left, only the fence"
    );
    assert_eq!(store.len(GroupId(1)).unwrap(), 1);
    assert_eq!(
        store.recover(GroupId(2)).unwrap(),
        DurableState::from_records(&records),
        "other groups are untouched"
    );
}

#[test]
fn compaction_keeps_what_recovery_needs_and_bounds_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("node.redb")).unwrap();
    let mut all = Vec::new();
    for i in 1..=200u64 {
        let batch = vec![cmd(i), accepted(i), Record::Retired { lsn: Lsn(i) }];
        store.commit([(GroupId(0), batch.as_slice())]).unwrap();
        all.extend(batch);
    }
    all.push(cmd(201)); // one proposal still pending
    store.commit([(GroupId(0), [cmd(201)].as_slice())]).unwrap();
    let snapshot = snapshot_at(150);
    all.push(Record::Snapshot(snapshot.clone()));
    store
        .commit([(GroupId(0), [Record::Snapshot(snapshot)].as_slice())])
        .unwrap();
    let before = store.recover(GroupId(0)).unwrap();
    assert_eq!(before, DurableState::from_records(&all));
    assert_eq!(
        store.len(GroupId(0)).unwrap(),
        601,
        "the snapshot is kept apart from the log"
    );
    // What the node does after a snapshot: compact the log against it, without the blob.
    store.compact_log(GroupId(0)).unwrap();
    let after = store.recover(GroupId(0)).unwrap();
    assert_eq!(after, before);
    assert_eq!(
        after.last_lsn,
        Lsn(201),
        "LSNs are never reused after compaction"
    );
    assert!(
        store.len(GroupId(0)).unwrap() < 60,
        "{} records left",
        store.len(GroupId(0)).unwrap()
    );
    // Appending after compaction continues the log.
    store.commit([(GroupId(0), [cmd(202)].as_slice())]).unwrap();
    assert_eq!(store.recover(GroupId(0)).unwrap().last_lsn, Lsn(202));
    // An older snapshot never replaces a newer one.
    let older = Arc::new(Snapshot {
        next_slot: Slot(100),
        ..(*before.snapshot.clone().unwrap()).clone()
    });
    store
        .commit([(GroupId(0), [Record::Snapshot(older)].as_slice())])
        .unwrap();
    assert_eq!(
        store
            .recover(GroupId(0))
            .unwrap()
            .snapshot
            .unwrap()
            .next_slot,
        Slot(150)
    );
    store.remove_group(GroupId(0)).unwrap();
    assert!(store.groups().unwrap().is_empty());
    assert!(store.recover(GroupId(0)).unwrap().snapshot.is_none());
}

#[test]
fn garbage_instead_of_a_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    std::fs::write(&path, vec![0x5a; 10_000]).unwrap();
    assert!(matches!(Store::open(&path), Err(StorageError::Engine(_))));
}

/// Opens the store at `path` the way a node does (the file backend, or the power-cut test
/// backend) and recovers group 0.
fn open_and_recover(path: &std::path::Path, test_backend: bool) -> Result<(), StorageError> {
    let store = if test_backend {
        let (backend, _) = UnsyncedFile::open(path).unwrap();
        Store::open_with_backend(backend, &path.with_extension("snapshots"))?
    } else {
        Store::open(path)?
    };
    store.recover(GroupId(0)).map(|_| ())
}

/// A node sets a damaged database aside and rejoins from its peers, but stops on an I/O
/// error (a failing device must not wipe anything): so a database cut short must always read
/// as damage. redb reports most cuts as `Corrupted` but a cut on a page boundary as an I/O
/// error, "unexpected end of file"; both must count as corruption. Every page boundary of a
/// database left by a killed process is tried, and cuts inside pages too.
#[test]
fn a_database_cut_short_anywhere_reads_as_damage_never_as_an_io_failure() {
    for test_backend in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        {
            let mut store = if test_backend {
                let (backend, _) = UnsyncedFile::open(&path).unwrap();
                Store::open_with_backend(backend, &path.with_extension("snapshots")).unwrap()
            } else {
                Store::open(&path).unwrap()
            };
            for i in 1..=2_000 {
                store.commit([(GroupId(0), &[cmd(i)][..])]).unwrap();
            }
            // Killed, not closed: redb finds the file as a crash leaves it.
            std::mem::forget(store);
        }
        let whole = std::fs::read(&path).unwrap();
        let len = whole.len();
        let cuts = (4096..len).step_by(4096).chain((1000..len).step_by(40_000));
        let (mut damaged, mut intact) = (0, 0);
        for cut in cuts {
            // A fresh file each time: the killed process's handle still locks the first.
            let copy = dir.path().join(format!("cut-{cut}.redb"));
            std::fs::write(&copy, &whole[..cut]).unwrap();
            match open_and_recover(&copy, test_backend) {
                Ok(()) => intact += 1,
                Err(e) => {
                    assert!(
                        e.is_corruption(),
                        "cut at {cut} of {len} (test backend: {test_backend}): {e:?}"
                    );
                    damaged += 1;
                }
            }
        }
        assert!(
            damaged > 50,
            "{damaged} cuts read as damage, {intact} opened"
        );
    }
}

#[test]
fn a_compaction_planned_while_commits_go_on_keeps_what_came_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("node.redb")).unwrap();
    let mut all = Vec::new();
    for i in 1..=100u64 {
        let batch = vec![cmd(i), accepted(i), Record::Retired { lsn: Lsn(i) }];
        store.commit([(GroupId(0), batch.as_slice())]).unwrap();
        all.extend(batch);
    }
    all.push(cmd(101)); // pending when the plan is made, retired after it
    store.commit([(GroupId(0), [cmd(101)].as_slice())]).unwrap();
    let snapshot = snapshot_at(80);
    all.push(Record::Snapshot(snapshot.clone()));
    store
        .commit([(GroupId(0), [Record::Snapshot(snapshot)].as_slice())])
        .unwrap();
    // Planned from another handle (as the node's snapshot thread does)...
    let plan = store.log_reader().plan_compaction(GroupId(0), 80).unwrap();
    // ...while commits go on.
    let later = vec![Record::Retired { lsn: Lsn(101) }, accepted(101), cmd(102)];
    store.commit([(GroupId(0), later.as_slice())]).unwrap();
    all.extend(later);
    assert!(store.apply_compaction(&plan).unwrap());
    let after = store.recover(GroupId(0)).unwrap();
    assert_eq!(after, DurableState::from_records(&all));
    assert!(
        !after.proposals.contains_key(&Lsn(101)),
        "a retirement after the plan is not undone"
    );
    assert!(
        store.len(GroupId(0)).unwrap() < 60,
        "{} records left",
        store.len(GroupId(0)).unwrap()
    );
    // A plan for a group removed meanwhile changes nothing.
    let plan = store.log_reader().plan_compaction(GroupId(0), 80).unwrap();
    store.remove_group(GroupId(0)).unwrap();
    assert!(!store.apply_compaction(&plan).unwrap());
    assert!(store.groups().unwrap().is_empty());
}
