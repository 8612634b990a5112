//! Groups created and removed at run time through the catalog, and membership changes: an
//! empty node joins a running cluster through a snapshot and then votes; a member is removed
//! while writes continue.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use synod_kv::KvNode;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{admin, config, converged, converged_in, free_ports, put, write_in, write_with_retry};
use synod_core::{ConfigChange, ReplicaId};
use synod_node::access::Caller;
use synod_node::catalog::{AdminCommand, AdminOutput};
use synod_node::{DEFAULT_GROUP, GroupId, Node, NodeConfig, RequestError};
use synod_transport::certs;

/// Waits (up to 10 s) until `node` hosts (or, with `false`, no longer hosts) `group`.
async fn hosts(node: &Node, group: GroupId, expected: bool) -> bool {
    for _ in 0..400 {
        let now = node.status().await.iter().any(|s| s.group == group);
        if now == expected {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Three nodes, and a group "orders" (id 1) that all three host.
async fn three_nodes_with_orders(cfg: &impl Fn(u16) -> NodeConfig) -> [Node; 3] {
    let n0 = Node::start(cfg(0)).await.unwrap();
    let n1 = Node::start(cfg(1)).await.unwrap();
    let n2 = Node::start(cfg(2)).await.unwrap();
    let create = common::create_kv("orders", &[0, 1, 2]);
    assert!(matches!(admin(&n0, create).await, AdminOutput::Group(_)));
    [n0, n1, n2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_created_on_their_members_survive_restarts_and_are_removed_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| config(&ca, n, &addrs, dir.path());
    let n0 = Node::start(cfg(0)).await.unwrap();
    let mut n1 = Node::start(cfg(1)).await.unwrap();
    let n2 = Node::start(cfg(2)).await.unwrap();

    // Created through node 2, which is not among the new group's members.
    let create = common::create_kv("orders", &[0, 1]);
    let AdminOutput::Group(info) = admin(&n2, create.clone()).await else {
        panic!("the group was not created")
    };
    assert_eq!(
        (info.id, info.genesis.clone()),
        (GroupId(1), vec![ReplicaId(0), ReplicaId(1)])
    );
    assert_eq!(
        n2.resolve("orders"),
        Some(GroupId(1)),
        "the creator's catalog knows it"
    );
    assert!(hosts(&n0, GroupId(1), true).await && hosts(&n1, GroupId(1), true).await);
    assert!(
        !n2.status().await.iter().any(|s| s.group == GroupId(1)),
        "a non-member does not host the group"
    );
    assert_eq!(
        n2.write(GroupId(1), put("k", "v")).await.unwrap_err(),
        RequestError::NoGroup(GroupId(1))
    );
    // Retrying the creation is harmless.
    assert_eq!(admin(&n0, create).await, AdminOutput::Group(info.clone()));

    // The new group orders its own writes; the default group does not see them.
    write_in(&n0, GroupId(1), put("order-1", "book")).await;
    let read = n1.read(GroupId(1), "order-1", true).await.unwrap();
    assert_eq!(read.entry.unwrap().value, Bytes::from("book"));
    assert!(
        n0.read(DEFAULT_GROUP, "order-1", true)
            .await
            .unwrap()
            .entry
            .is_none()
    );

    // A restarted member reopens the group from its disk and keeps serving it.
    n1.stop().await;
    n1 = Node::start(cfg(1)).await.unwrap();
    assert!(hosts(&n1, GroupId(1), true).await);
    write_in(&n1, GroupId(1), put("order-2", "pen")).await;
    assert!(converged_in(&[&n0, &n1], GroupId(1)).await);
    let status = n1.status().await;
    let orders = status.iter().find(|s| s.group == GroupId(1)).unwrap();
    assert_eq!((orders.name.as_str(), orders.items), ("orders", 2));

    // Removal (through a non-member) drops the group on every host, on disk too.
    let removed = admin(
        &n2,
        AdminCommand::RemoveGroup {
            name: "orders".into(),
            by: Caller::Unauthenticated,
        },
    )
    .await;
    assert!(matches!(removed, AdminOutput::Removed(_)), "{removed:?}");
    assert!(hosts(&n0, GroupId(1), false).await && hosts(&n1, GroupId(1), false).await);
    assert_eq!(n0.resolve("orders"), None);
    n0.stop().await;
    let n0 = Node::start(cfg(0)).await.unwrap();
    write_with_retry(&n0, put("still", "here")).await;
    assert!(
        !n0.status().await.iter().any(|s| s.group == GroupId(1)),
        "a removed group does not come back after a restart"
    );
    assert!(converged(&[&n0, &n1, &n2]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_node_joins_through_a_snapshot_votes_and_a_member_is_removed_under_writes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(4);
    let first = &addrs[..3];
    let small = |node: u16| NodeConfig {
        snapshot_every: 20,
        log_retention: 10,
        ..config(&ca, node, first, dir.path())
    };
    let n0 = Node::start(small(0)).await.unwrap();
    let n1 = Node::start(small(1)).await.unwrap();
    let n2 = Node::start(small(2)).await.unwrap();
    for i in 0..80 {
        write_with_retry([&n0, &n1, &n2][i % 3], put(&format!("k{i}"), "v")).await;
    }

    // Node 3 starts empty, knowing the cluster's genesis members and their addresses; the
    // cluster learns its address through the catalog, then adds it as a voting member.
    let joiner = NodeConfig {
        node: ReplicaId(3),
        listen: addrs[3],
        peers: first
            .iter()
            .enumerate()
            .map(|(i, a)| (ReplicaId(i as u16), (*a).into()))
            .collect::<BTreeMap<_, _>>(),
        ..small(0)
    };
    let joiner = NodeConfig {
        identity: {
            let c = certs::issue_node(&ca, 3).unwrap();
            synod_transport::tls::TlsIdentity::from_pem(&ca.cert, &c.cert, &c.key).unwrap()
        },
        data_dir: dir.path().join("node3"),
        ..joiner
    };
    let n3 = Node::start(joiner).await.unwrap();
    let registered = admin(
        &n1,
        AdminCommand::RegisterNode {
            node: ReplicaId(3),
            addr: addrs[3].to_string(),
        },
    )
    .await;
    assert_eq!(registered, AdminOutput::Registered);
    n0.change_config(DEFAULT_GROUP, ConfigChange::AddMember(ReplicaId(3)))
        .await
        .unwrap();
    // Writes continue while it catches up.
    for i in 80..120 {
        write_with_retry([&n0, &n1, &n2][i % 3], put(&format!("k{i}"), "v")).await;
    }
    assert!(
        converged(&[&n0, &n1, &n2, &n3]).await,
        "the new node caught up"
    );
    let metrics = n3.metrics().await;
    let installed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("synod_snapshots_installed_total{group=\"0\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        installed >= 1.0,
        "the new node came in through a snapshot (the log was truncated):\n{metrics}"
    );
    assert_eq!(
        n3.status().await[0].members,
        [0, 1, 2, 3].map(ReplicaId).to_vec()
    );
    assert_eq!(n3.status().await[0].items, 120);

    // It votes: with 4 members a quorum is 3, so with node 0 gone the cluster needs node 3.
    drop(n0);
    write_with_retry(&n3, put("needs-node-3", "yes")).await;

    // Remove the dead member while writes continue; the three left keep a quorum of 2.
    let writer = async {
        for i in 0..30 {
            write_with_retry([&n1, &n2, &n3][i % 3], put(&format!("w{i}"), "v")).await;
        }
    };
    let removal = n1.change_config(DEFAULT_GROUP, ConfigChange::RemoveMember(ReplicaId(0)));
    let (_, removed) = tokio::join!(writer, removal);
    removed.unwrap();
    assert!(converged(&[&n1, &n2, &n3]).await);
    assert_eq!(
        n1.status().await[0].members,
        [1, 2, 3].map(ReplicaId).to_vec()
    );
    drop(n2);
    write_with_retry(&n1, put("two-of-three", "yes")).await;
}

/// Waits (up to 20 s) until no group on `node` is rejoining; returns the last status seen.
async fn rejoined(node: &Node) -> Vec<synod_node::GroupStatus> {
    let mut status = Vec::new();
    for _ in 0..800 {
        status = node.status().await;
        if status.iter().all(|s| s.rejoining.is_none()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    status
}

/// Flips record `which` (of `len`) of `group` on a stopped node's disk, as a bad sector would.
fn corrupt_record(db: &std::path::Path, group: GroupId, which: impl Fn(u64) -> u64) {
    let mut store = synod_storage::Store::open(db).unwrap();
    let seq = which(store.len(group).unwrap());
    store
        .dangerous_overwrite_raw(group, seq, b"not a record")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_a_corrupt_log_is_wiped_and_repairs_from_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| config(&ca, n, &addrs, dir.path());
    let [n0, n1, n2] = three_nodes_with_orders(&cfg).await;
    for i in 0..10 {
        write_in(&n0, GroupId(1), put(&format!("o{i}"), "v")).await;
    }
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
    n2.stop().await;

    corrupt_record(&dir.path().join("node2/synod.redb"), GroupId(1), |len| {
        len / 2
    });
    let n2 = Node::start(cfg(2)).await.unwrap();
    assert!(
        n2.metrics().await.contains("synod_group_repairs_total 1"),
        "the corrupt group was found and wiped at startup"
    );
    // Writes go on meanwhile through the other nodes; the repaired copy catches up, passes
    // its fence by itself, and serves again: reads of what was written before the damage,
    // and writes.
    write_in(&n1, GroupId(1), put("o-during", "v")).await;
    assert!(hosts(&n2, GroupId(1), true).await);
    let status = rejoined(&n2).await;
    assert!(
        status
            .iter()
            .all(|s| s.rejoining.is_none() && s.corrupt.is_none()),
        "{status:?}"
    );
    let read = n2.read(GroupId(1), "o3", true).await.unwrap();
    assert_eq!(read.entry.map(|e| e.value), Some(Bytes::from("v")));
    write_in(&n2, GroupId(1), put("o-after", "from the repaired node")).await;
    write_with_retry(&n2, put("default-still-works", "yes")).await;
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
    assert!(converged(&[&n0, &n1, &n2]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_default_group_repairs_too_and_the_node_keeps_its_other_groups() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| config(&ca, n, &addrs, dir.path());
    let [n0, n1, n2] = three_nodes_with_orders(&cfg).await;
    for i in 0..5 {
        write_with_retry(&n0, put(&format!("d{i}"), "v")).await;
    }
    write_in(&n0, GroupId(1), put("o1", "v")).await;
    assert!(converged(&[&n0, &n1, &n2]).await);
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
    n2.stop().await;

    // The default group holds the catalog: before, its corruption stopped the node.
    corrupt_record(&dir.path().join("node2/synod.redb"), GroupId(0), |len| {
        len - 1
    });
    let n2 = Node::start(cfg(2)).await.unwrap();
    let status = rejoined(&n2).await;
    assert!(status.iter().all(|s| s.rejoining.is_none()), "{status:?}");
    write_with_retry(&n2, put("d-after", "v")).await;
    write_in(&n2, GroupId(1), put("o-after", "v")).await;
    assert!(converged(&[&n0, &n1, &n2]).await);
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
    assert_eq!(
        n2.read(DEFAULT_GROUP, "d3", true)
            .await
            .unwrap()
            .entry
            .map(|e| e.value),
        Some(Bytes::from("v"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_replaced_disk_rejoins_every_group_it_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| config(&ca, n, &addrs, dir.path());
    let [n0, n1, n2] = three_nodes_with_orders(&cfg).await;
    for i in 0..10 {
        write_in(&n0, GroupId(1), put(&format!("o{i}"), "v")).await;
    }
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
    n2.stop().await;

    // A new, empty disk under the old id: started with `rejoin`, no group may act as a
    // fresh acceptor (it voted before); each rejoins behind a fence.
    let data = dir.path().join("node2");
    std::fs::remove_dir_all(&data).unwrap();
    let mut again = cfg(2);
    again.rejoin = true;
    let n2 = Node::start(again.clone()).await.unwrap();
    assert!(data.join("REJOINING").exists());
    write_in(&n0, GroupId(1), put("o-during", "v")).await;
    assert!(
        hosts(&n2, GroupId(1), true).await,
        "the catalog came back from the peers"
    );
    let status = rejoined(&n2).await;
    assert!(status.iter().all(|s| s.rejoining.is_none()), "{status:?}");
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
    assert_eq!(
        n2.read(GroupId(1), "o7", true)
            .await
            .unwrap()
            .entry
            .map(|e| e.value),
        Some(Bytes::from("v"))
    );
    for _ in 0..200 {
        if !data.join("REJOINING").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        !data.join("REJOINING").exists(),
        "rejoin mode ends once every hosted group is past its fence"
    );
    // Restarted with the same flag, a node that has state again is just restarted.
    n2.stop().await;
    let n2 = Node::start(again).await.unwrap();
    assert!(hosts(&n2, GroupId(1), true).await);
    write_in(&n2, GroupId(1), put("o-after", "v")).await;
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_database_is_set_aside_and_every_group_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| config(&ca, n, &addrs, dir.path());
    let [n0, n1, n2] = three_nodes_with_orders(&cfg).await;
    for i in 0..10 {
        write_in(&n0, GroupId(1), put(&format!("o{i}"), "v")).await;
        write_with_retry(&n1, put(&format!("d{i}"), "v")).await;
    }
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
    n2.stop().await;

    // The tail of node 2's database file is gone: redb finds it shorter than its own layout.
    let db = dir.path().join("node2/synod.redb");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    let n2 = Node::start(cfg(2)).await.unwrap();
    let aside: Vec<_> = std::fs::read_dir(dir.path().join("node2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("synod.redb.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the damaged file is kept for inspection");
    assert!(
        hosts(&n2, GroupId(1), true).await,
        "the catalog came back from the peers"
    );
    let status = rejoined(&n2).await;
    assert!(status.iter().all(|s| s.rejoining.is_none()), "{status:?}");
    write_in(&n2, GroupId(1), put("o-after", "v")).await;
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
    assert!(converged(&[&n0, &n1, &n2]).await);
    assert_eq!(
        n2.read(DEFAULT_GROUP, "d9", true)
            .await
            .unwrap()
            .entry
            .map(|e| e.value),
        Some(Bytes::from("v"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_snapshot_state_is_unreadable_is_wiped_and_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| config(&ca, n, &addrs, dir.path());
    // A snapshot that passes its checksum but whose state does not decode in this version's
    // format (the node's format 2, then garbage: a format bug, say): the group cannot be
    // opened from it.
    let [n0, n1, n2] = restarted_with_planted_snapshot(&cfg, dir.path(), &[2, 0xff, 0xff]).await;
    // The catalog claims the group, opening it fails, and it is wiped and rejoins: never
    // reopened as a fresh replica that would have forgotten its votes.
    assert!(hosts(&n2, GroupId(1), true).await);
    let status = rejoined(&n2).await;
    assert!(status.iter().all(|s| s.rejoining.is_none()), "{status:?}");
    assert!(n2.metrics().await.contains("synod_group_repairs_total 1"));
    assert_eq!(
        n2.read(GroupId(1), "o1", true)
            .await
            .unwrap()
            .entry
            .map(|e| e.value),
        Some(Bytes::from("v"))
    );
    write_in(&n1, GroupId(1), put("o2", "v")).await;
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
}

/// Three nodes with group "orders" holding `o1`; node 2 is stopped, given a snapshot of the
/// group whose application state is `app`, and started again (its default group serving).
async fn restarted_with_planted_snapshot(
    cfg: &impl Fn(u16) -> NodeConfig,
    dir: &std::path::Path,
    app: &'static [u8],
) -> [Node; 3] {
    let [n0, n1, n2] = three_nodes_with_orders(cfg).await;
    write_in(&n0, GroupId(1), put("o1", "v")).await;
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
    n2.stop().await;
    plant_snapshot(dir, app);
    let n2 = Node::start(cfg(2)).await.unwrap();
    write_with_retry(&n2, put("default-works", "yes")).await;
    [n0, n1, n2]
}

/// Writes a snapshot of group 1 for node 2 (stopped) whose application state is `app`; it
/// passes its checksum.
fn plant_snapshot(dir: &std::path::Path, app: &'static [u8]) {
    let files =
        synod_storage::SnapshotFiles::open(&dir.join("node2/synod.redb.snapshots")).unwrap();
    let snapshot = std::sync::Arc::new(synod_core::Snapshot {
        next_slot: synod_core::Slot(1),
        core: synod_core::CoreState {
            configs: synod_core::config::ConfigHistory::new(synod_core::Config::majority(
                [0, 1, 2].map(ReplicaId),
            )),
            delivered: Default::default(),
            agreed_time: synod_core::Time(0),
            held: Default::default(),
            rejoined: Default::default(),
        },
        app: bytes::Bytes::from_static(app),
    });
    assert!(files.write(synod_storage::GroupId(1), &snapshot).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_in_another_versions_format_is_kept_not_wiped() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| config(&ca, n, &addrs, dir.path());
    // The node's layout (format 2, no catalog), then the key-value store's state written by a
    // later version of the application (format 200): the data may be sound, so the node must
    // not wipe it; it leaves the group unserved and says why.
    let [n0, n1, n2] =
        restarted_with_planted_snapshot(&cfg, dir.path(), &[2, 0, 200, 1, 2, 3]).await;
    let metrics = async || n2.metrics().await;
    let mut quarantined = false;
    for _ in 0..200 {
        if metrics()
            .await
            .contains("synod_group_corrupt{group=\"1\"} 1")
        {
            quarantined = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(quarantined, "{}", metrics().await);
    assert!(metrics().await.contains("synod_group_repairs_total 0"));
    assert!(
        n2.read(GroupId(1), "o1", true).await.is_err(),
        "not served here"
    );
    // The others go on without it.
    write_in(&n1, GroupId(1), put("o2", "v")).await;
    assert!(converged_in(&[&n0, &n1], GroupId(1)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_a_kind_the_binary_lacks_is_listed_unserved_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| config(&ca, n, &addrs, dir.path());
    let nodes = [0, 1, 2].map(cfg);
    let [n0, n1, n2] = three_nodes_with_orders(&|n| nodes[n as usize].clone()).await;
    // Agreed like any creation (the catalog does not know which kinds a binary has), but no
    // node here can open it: each says so in its status, and nothing else is disturbed.
    let create = AdminCommand::CreateGroup {
        name: "photos".into(),
        members: [0, 1, 2].map(ReplicaId).to_vec(),
        kind: "photo-store".into(),
        params: Bytes::new(),
        access: None,
    };
    let AdminOutput::Group(info) = admin(&n0, create).await else {
        panic!("not created")
    };
    for node in [&n0, &n1, &n2] {
        let mut why = None;
        for _ in 0..200 {
            why = node
                .status()
                .await
                .into_iter()
                .find(|s| s.group == info.id)
                .and_then(|s| s.corrupt);
            if why.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let why = why.expect("listed as not served");
        assert!(why.contains("photo-store"), "{why}");
    }
    write_in(&n2, GroupId(1), put("o1", "v")).await;
    assert!(converged_in(&[&n0, &n1, &n2], GroupId(1)).await);
}

/// Whether `node` reports every group of `groups` quiet, and its default group awake.
async fn all_quiet(node: &Node, groups: &[GroupId]) -> bool {
    let status = node.status().await;
    let quiet = |g: &GroupId| status.iter().any(|s| s.group == *g && s.quiet);
    groups.iter().all(quiet) && !quiet(&DEFAULT_GROUP)
}

/// Idle groups go quiet on every node (no heartbeats, no timers: the loop does not even look
/// at them), while the default group stays awake; a write through any node wakes a group at
/// once (its first attempt is not refused for want of a quorum), and it goes quiet again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_groups_go_quiet_and_a_write_wakes_one_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| config(&ca, n, &addrs, dir.path());
    let nodes = [
        Node::start(cfg(0)).await.unwrap(),
        Node::start(cfg(1)).await.unwrap(),
        Node::start(cfg(2)).await.unwrap(),
    ];
    let mut groups = Vec::new();
    for i in 0..12 {
        let create = common::create_kv(&format!("idle-{i}"), &[0, 1, 2]);
        let AdminOutput::Group(info) = admin(&nodes[i % 3], create).await else {
            panic!("not created")
        };
        groups.push(info.id);
    }
    for (i, g) in groups.iter().enumerate() {
        assert!(hosts(&nodes[0], *g, true).await && hosts(&nodes[2], *g, true).await);
        write_in(&nodes[i % 3], *g, put("k", "first")).await;
    }
    let settle = async |groups: &[GroupId]| {
        for _ in 0..200 {
            let mut quiet = true;
            for n in &nodes {
                quiet &= all_quiet(n, groups).await;
            }
            if quiet {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(settle(&groups).await, "idle groups did not go quiet");

    // Long enough for a peer to count as gone by a quiet replica's own reckoning (liveness
    // 0.5 s here): the node's default group tells it otherwise.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for (i, g) in groups.iter().enumerate() {
        let node = &nodes[(i + 1) % 3];
        let written = node.write(*g, put("k", "second")).await;
        assert!(
            written.is_ok(),
            "a write to a woken group failed: {written:?}"
        );
    }
    for g in &groups {
        assert!(converged_in(&[&nodes[0], &nodes[1], &nodes[2]], *g).await);
    }
    assert!(settle(&groups).await, "woken groups did not go quiet again");
}
