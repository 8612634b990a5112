//! Three real nodes in one process, talking over mutual TLS on loopback, with real storage:
//! any node accepts writes, all apply the same sequence, and a restarted node recovers from
//! disk and catches up.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{config, converged, free_ports, put, write_with_retry};
use synod_kv::{KvCommand, KvNode, KvOutput};
use synod_node::{DEFAULT_GROUP, Node, NodeConfig};
use synod_transport::certs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_writes_all_apply_the_same_and_a_restarted_node_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let n0 = Node::start(config(&ca, 0, &addrs, dir.path()))
        .await
        .unwrap();
    let n1 = Node::start(config(&ca, 1, &addrs, dir.path()))
        .await
        .unwrap();
    let mut n2 = Node::start(config(&ca, 2, &addrs, dir.path()))
        .await
        .unwrap();

    let mut last = None;
    for i in 0..30 {
        let node = [&n0, &n1, &n2][i % 3];
        let r = write_with_retry(node, put(&format!("k{i}"), &format!("v{i}"))).await;
        assert_eq!(r.output, KvOutput::Done);
        last = Some(r.gsn);
    }
    // A linearizable read on another node sees the last acknowledged write.
    let read = n1.read(DEFAULT_GROUP, "k29", true).await.unwrap();
    assert_eq!(read.entry.unwrap().value, Bytes::from("v29"));
    assert!(read.gsn > last.unwrap());
    // Compare-and-set through the log.
    let cas = KvCommand::Put {
        key: "k0".into(),
        value: Bytes::from("x"),
        cas: Some(1),
    };
    assert!(matches!(
        write_with_retry(&n2, cas).await.output,
        KvOutput::CasFailed { .. }
    ));
    assert!(
        converged(&[&n0, &n1, &n2]).await,
        "all nodes apply the same sequence"
    );

    // Restart node 2 from its disk while the others keep writing.
    drop(n2);
    for i in 30..40 {
        write_with_retry(&n0, put(&format!("k{i}"), "after")).await;
    }
    n2 = Node::start(config(&ca, 2, &addrs, dir.path()))
        .await
        .unwrap();
    write_with_retry(&n2, put("from-restarted", "yes")).await;
    assert!(
        converged(&[&n0, &n1, &n2]).await,
        "the restarted node caught up"
    );
    let s = n2.status().await;
    assert_eq!(s[0].items, 41);
    let stale = n2.read(DEFAULT_GROUP, "k35", false).await.unwrap();
    assert_eq!(stale.entry.unwrap().value, Bytes::from("after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_past_the_truncation_point_installs_a_snapshot_from_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let small = |node| NodeConfig {
        snapshot_every: 20,
        log_retention: 10,
        ..config(&ca, node, &addrs, dir.path())
    };
    let n0 = Node::start(small(0)).await.unwrap();
    let n1 = Node::start(small(1)).await.unwrap();
    let n2 = Node::start(small(2)).await.unwrap();
    write_with_retry(&n0, put("first", "1")).await;
    assert!(converged(&[&n0, &n1, &n2]).await);
    drop(n2);
    // Far more slots than the retention while node 2 is down: the survivors snapshot and
    // truncate their logs past what node 2 has.
    for i in 0..150 {
        let node = if i % 2 == 0 { &n0 } else { &n1 };
        write_with_retry(node, put(&format!("k{i}"), &format!("v{i}"))).await;
    }
    let n2 = Node::start(small(2)).await.unwrap();
    assert!(
        converged(&[&n0, &n1, &n2]).await,
        "node 2 caught up through a snapshot"
    );
    let metrics = n2.metrics().await;
    // At least one: catching up may take a second snapshot when the first falls behind.
    let installed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("synod_snapshots_installed_total{group=\"0\"} "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        installed > 0,
        "node 2 must have installed a snapshot, not replayed the log:\n{metrics}"
    );
    let s = n2.status().await;
    assert_eq!(s[0].items, 151);
    assert_eq!(
        n2.read(DEFAULT_GROUP, "k149", false)
            .await
            .unwrap()
            .entry
            .unwrap()
            .value,
        Bytes::from("v149")
    );
    // And it keeps working normally afterwards.
    write_with_retry(&n2, put("after", "yes")).await;
    assert!(converged(&[&n0, &n1, &n2]).await);

    // Disk stays bounded: node 0's log was compacted behind its snapshots (written to their
    // own file off the commit path), so it holds far fewer records than the ~150 slots of
    // writes produced (several records each).
    tokio::time::sleep(Duration::from_millis(300)).await;
    n0.stop().await;
    let db = dir.path().join("node0/synod.redb");
    let store = synod_storage::Store::open(&db).unwrap();
    let records = store.len(synod_storage::GroupId(0)).unwrap();
    assert!(records < 250, "node 0's log holds {records} records");
    let snapshot = store.recover(synod_storage::GroupId(0)).unwrap().snapshot;
    assert!(
        snapshot.is_some_and(|s| s.next_slot.0 > 100),
        "the latest snapshot is on disk"
    );
}

/// With executors that hold a single command, every delivery overflows into the group's
/// backlog and the event loop stops taking input until the executor drains (back-pressure).
/// Concurrent writes through every node must still all apply, in one order everywhere, with
/// snapshots (exclusive jobs) queued through the same backlog, and reads stay linearizable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_executor_holds_back_the_node_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let tiny = |node| NodeConfig {
        executor_capacity: 1,
        snapshot_every: 25,
        ..config(&ca, node, &addrs, dir.path())
    };
    let nodes = [
        Node::start(tiny(0)).await.unwrap(),
        Node::start(tiny(1)).await.unwrap(),
        Node::start(tiny(2)).await.unwrap(),
    ];
    let nodes = std::sync::Arc::new(nodes);
    let mut clients = Vec::new();
    for c in 0..12usize {
        let nodes = nodes.clone();
        clients.push(tokio::spawn(async move {
            for i in 0..15 {
                let node = &nodes[(c + i) % 3];
                let r =
                    write_with_retry(node, put(&format!("c{c}/k{}", i % 4), &format!("{i}"))).await;
                assert_eq!(r.output, KvOutput::Done);
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let [n0, n1, n2] = &*nodes;
    assert!(converged(&[n0, n1, n2]).await, "all nodes apply the same");
    for c in 0..12 {
        // Each client's last write to k2 was i = 14.
        let read = n1
            .read(DEFAULT_GROUP, &format!("c{c}/k2"), true)
            .await
            .unwrap();
        assert_eq!(read.entry.unwrap().value, Bytes::from("14"));
    }
    let recursive = n2.list(DEFAULT_GROUP, "c3/", true).await.unwrap();
    assert_eq!(recursive.entries.len(), 4);
    let (mut stalls, mut snapshots) = (0.0, 0.0);
    for n in [n0, n1, n2] {
        let m = n.metrics().await;
        let value = |name: &str| -> f64 {
            let line = m.lines().find(|l| l.starts_with(name)).unwrap();
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        stalls += value("synod_executor_stalls_total");
        snapshots += value("synod_snapshots_total");
    }
    assert!(stalls > 0.0, "the executors never pushed back");
    assert!(snapshots > 0.0, "no snapshot went through the backlog");
    assert_eq!(n0.status().await[0].items, 48);
}
