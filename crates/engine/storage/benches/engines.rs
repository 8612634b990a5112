//! redb against fjall on the acceptor's write pattern: small records (200 bytes, keyed by
//! group and sequence) appended in batches, each batch made durable with one fsync (group
//! commit), as the node does for promises, accepted values and decisions.
//!
//! `cargo bench -p synod-storage --bench engines` (writes to a temporary directory on the
//! same disk as `TMPDIR`). The result and the choice are in docs/STORAGE.md.

use std::time::{Duration, Instant};

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};

const LOG: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("log");
const RECORD: usize = 200;

fn key(group: u32, seq: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&group.to_be_bytes());
    k[4..].copy_from_slice(&seq.to_be_bytes());
    k
}

struct Result {
    records_per_s: f64,
    p50: Duration,
    p99: Duration,
}

fn summarize(records: usize, total: Duration, mut lat: Vec<Duration>) -> Result {
    lat.sort();
    Result {
        records_per_s: records as f64 / total.as_secs_f64(),
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
    }
}

fn redb_run(batch: usize, commits: usize) -> Result {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = redb::Database::create(dir.path().join("log.redb")).expect("create");
    let value = vec![0xabu8; RECORD];
    let mut seq = 0u64;
    let mut lat = Vec::with_capacity(commits);
    let start = Instant::now();
    for _ in 0..commits {
        let t = Instant::now();
        let tx = db.begin_write().expect("tx");
        {
            let mut table = tx.open_table(LOG).expect("table");
            for i in 0..batch {
                seq += 1;
                table
                    .insert(key((i % 4) as u32, seq).as_slice(), value.as_slice())
                    .expect("insert");
            }
        }
        tx.commit().expect("commit (fsync)");
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    let read = db.begin_read().expect("read");
    assert_eq!(
        read.open_table(LOG).expect("table").len().expect("len"),
        seq
    );
    summarize(batch * commits, total, lat)
}

fn fjall_run(batch: usize, commits: usize) -> Result {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = fjall::Database::builder(dir.path()).open().expect("open");
    let ks = db
        .keyspace("log", fjall::KeyspaceCreateOptions::default)
        .expect("keyspace");
    let value = vec![0xabu8; RECORD];
    let mut seq = 0u64;
    let mut lat = Vec::with_capacity(commits);
    let start = Instant::now();
    for _ in 0..commits {
        let t = Instant::now();
        let mut b = db.batch();
        for i in 0..batch {
            seq += 1;
            b.insert(&ks, key((i % 4) as u32, seq).to_vec(), value.clone());
        }
        b.commit().expect("commit");
        db.persist(fjall::PersistMode::SyncAll).expect("fsync");
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    assert_eq!(ks.len().expect("len") as u64, seq);
    summarize(batch * commits, total, lat)
}

fn main() {
    println!(
        "{:<6} {:>6} {:>12} {:>10} {:>10}",
        "engine", "batch", "records/s", "p50_us", "p99_us"
    );
    for batch in [1usize, 16, 128] {
        let commits = if batch == 1 { 1_000 } else { 500 };
        for (name, r) in [
            ("redb", redb_run(batch, commits)),
            ("fjall", fjall_run(batch, commits)),
        ] {
            println!(
                "{name:<6} {batch:>6} {:>12.0} {:>10} {:>10}",
                r.records_per_s,
                r.p50.as_micros(),
                r.p99.as_micros()
            );
        }
    }
}
