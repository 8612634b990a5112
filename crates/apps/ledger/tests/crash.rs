//! Crash consistency of a channel kept on disk, tested the way the storage crate tests torn
//! commits: the channel's database on the power-cut backend (`UnsyncedFile`: writes reach the
//! file only when synced), a crash after a chosen number of page writes with a random part of
//! the unsynced pages torn onto the file, then the database reopened. Whatever the crash
//! point, the channel recovers to the serial replay of the envelopes before the position it
//! records, never behind its last checkpoint; replaying the rest from there (as a node does
//! from its log) gives the same ledger as a channel that never crashed.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use synod_exec::Position;
use synod_ledger::{BatchConfig, Channel, Envelope, Transaction, TxBody, Version};
use synod_storage::UnsyncedFile;

const ENVELOPES: u64 = 120;
/// A node checkpoints every so many slots (its snapshot interval).
const CHECKPOINT_EVERY: u64 = 25;

fn config() -> BatchConfig {
    BatchConfig {
        max_message_count: 3,
        batch_timeout_ns: 50,
        ..BatchConfig::default()
    }
}

/// The agreed order: transactions reading and writing a few keys (some reads stale, so some
/// conflict), deletions, ticks and garbage, at growing agreed times.
fn envelopes() -> Vec<(Bytes, u64)> {
    let signer = SigningKey::from_bytes(&[5; 32]);
    (0..ENVELOPES)
        .map(|i| {
            let envelope = match i % 11 {
                7 => Envelope::Tick.encode(),
                9 => Bytes::from_static(b"\xff garbage"),
                _ => {
                    let k = format!("k{}", i % 6);
                    let seen = (i % 4 == 0).then_some(Version {
                        block: i / 3,
                        tx: 0,
                    });
                    let value = (i % 13 != 0).then(|| Bytes::from(vec![b'v'; (i % 50) as usize]));
                    let body = TxBody {
                        id: format!("t{i}"),
                        creator: signer.verifying_key().to_bytes(),
                        reads: vec![(k.clone(), seen)],
                        ranges: vec![],
                        writes: vec![(k, value), (format!("log{i}"), Some(Bytes::from("x")))],
                    };
                    Envelope::Tx(Transaction::sign(body, &signer).encode()).encode()
                }
            };
            (envelope, i * 10)
        })
        .collect()
}

fn genesis() -> Bytes {
    Bytes::from_static(b"genesis: crash test")
}

fn open(path: &std::path::Path) -> (Channel, synod_storage::CrashHandle) {
    let (backend, crash) = UnsyncedFile::open(path).unwrap();
    let db = redb::Database::builder()
        .create_with_backend(backend)
        .unwrap();
    (
        Channel::open_or_create(db, config(), genesis).unwrap(),
        crash,
    )
}

/// Feeds `envelopes[from..]` to `channel`, checkpointing as a node would; stops at the first
/// store error (the crash). Returns the last checkpoint that succeeded.
fn feed(channel: &mut Channel, all: &[(Bytes, u64)], from: u64) -> Option<Position> {
    let mut checkpointed = None;
    for (i, (envelope, time)) in all.iter().enumerate().skip(from as usize) {
        let next = Position::slot(i as u64 + 1);
        if channel
            .deliver_checked(envelope, *time, next, &mut |_| None)
            .is_err()
        {
            break;
        }
        if (i as u64 + 1).is_multiple_of(CHECKPOINT_EVERY) {
            if channel.checkpoint(next).is_err() {
                break;
            }
            checkpointed = Some(next);
        }
    }
    checkpointed
}

/// The serial replay of `envelopes[..n]` in a channel that never crashes.
fn replay(all: &[(Bytes, u64)], n: u64) -> Channel {
    let mut c = Channel::genesis(config(), genesis(), 0);
    for (envelope, time) in &all[..n as usize] {
        c.deliver(envelope, *time);
    }
    c
}

fn digest(c: &Channel) -> [u8; 32] {
    c.view().unwrap().content_digest().unwrap()
}

#[test]
fn a_crash_at_any_point_recovers_to_the_serial_replay_up_to_the_recorded_position() {
    let all = envelopes();
    let whole = replay(&all, ENVELOPES);
    let (mut crashed, mut behind_checkpoint_never) = (0, true);
    let mut positions = std::collections::BTreeSet::new();
    for crash_point in (0..240).step_by(3) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let checkpoint = {
            let (mut channel, crash) = open(&path);
            crash.crash_after_writes(crash_point, crash_point * 7919 + 1);
            let checkpoint = feed(&mut channel, &all, 0);
            if crash.has_crashed() {
                crashed += 1;
            } else {
                // Past the end: a power cut now, tearing every other unsynced page.
                crash.crash(|page| page % 2 == 0).unwrap();
            }
            checkpoint
        };
        let (mut recovered, _) = open(&path);
        let at = recovered.durable().unwrap();
        assert_eq!(
            at.index, 0,
            "crash point {crash_point}: one command per slot here"
        );
        behind_checkpoint_never &= checkpoint.is_none_or(|c| at >= c);
        positions.insert(at);
        // What the database holds is the serial replay of the envelopes before its position.
        let serial = replay(&all, at.gsn);
        assert_eq!(
            (recovered.tip(), recovered.commit_hash(), digest(&recovered)),
            (serial.tip(), serial.commit_hash(), digest(&serial)),
            "crash point {crash_point}: recovered at {at:?}, which is not the replay up to it"
        );
        assert_eq!(
            recovered.due_at(),
            serial.due_at(),
            "crash point {crash_point}: the pending batch"
        );
        // And replaying the rest, as the node does from its log, ends where a channel that
        // never crashed ends.
        feed(&mut recovered, &all, at.gsn);
        assert_eq!(
            digest(&recovered),
            digest(&whole),
            "crash point {crash_point}"
        );
        assert_eq!(recovered.tip(), whole.tip(), "crash point {crash_point}");
    }
    assert!(behind_checkpoint_never, "a crash lost a checkpoint's state");
    println!(
        "{crashed} crashes inside the run, recovered at {} positions",
        positions.len()
    );
    assert!(
        crashed >= 30,
        "only {crashed} crash points fell inside the run"
    );
    // The crashes fell at many places: recoveries at several checkpoints, from genesis on.
    assert!(positions.len() >= 4, "recovered only at {positions:?}");
}
