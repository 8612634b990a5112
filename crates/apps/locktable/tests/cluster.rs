//! The example application on a real three-node cluster (real TCP with mutual TLS, real disks):
//! clients on every node race for the same lock, exactly one wins and every node agrees who; a
//! release lets another in with a larger fencing token; a node restarted from its disk
//! resumes the same table. The default group runs the lock table too: the engine needs no
//! other application.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use synod_locktable::{Holder, KIND, LockAnswer, LockCommand, LockTable, change, holder};
use synod_node::catalog::{AdminCommand, AdminOutput};
use synod_node::{Apps, Node, NodeConfig, ReplicaId, RequestError};
use synod_transport::certs::{self, Pem};
use synod_transport::tls::TlsIdentity;

fn config(ca: &Pem, node: u16, addrs: &[SocketAddr], dir: &std::path::Path) -> NodeConfig {
    let cert = certs::issue_node(ca, node).unwrap();
    NodeConfig {
        node: ReplicaId(node),
        data_dir: dir.join(format!("node{node}")),
        listen: addrs[node as usize],
        peers: (0..addrs.len() as u16)
            .filter(|n| *n != node)
            .map(|n| (ReplicaId(n), addrs[n as usize].into()))
            .collect::<BTreeMap<_, _>>(),
        members: (0..addrs.len() as u16).map(ReplicaId).collect(),
        identity: TlsIdentity::from_pem(&ca.cert, &cert.cert, &cert.key).unwrap(),
        power_cut_test_mode: false,
        takeover_ms: 50,
        heartbeat_ms: 10,
        liveness_ms: 500,
        snapshot_every: 10_000,
        log_retention: 50_000,
        executor_capacity: 4096,
        rejoin: false,
        // The only application these nodes know.
        apps: Arc::new(Apps::new(KIND, LockTable::new)),
    }
}

fn free_ports(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

/// Retries while the cluster is forming (no quorum yet), up to 10 s.
async fn retry<T>(mut f: impl AsyncFnMut() -> Result<T, RequestError>) -> T {
    for _ in 0..200 {
        match f().await {
            Ok(t) => return t,
            Err(RequestError::Refused(_) | RequestError::Stopped | RequestError::NoGroup(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("request failed: {e}"),
        }
    }
    panic!("no answer after 10 s");
}

fn acquire(name: &str, owner: &str) -> LockCommand {
    LockCommand::Acquire {
        lock: name.into(),
        owner: owner.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_per_lock_on_every_node_with_growing_fencing_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| config(&ca, n, &addrs, dir.path());
    let n0 = Node::start(cfg(0)).await.unwrap();
    let mut n1 = Node::start(cfg(1)).await.unwrap();
    let n2 = Node::start(cfg(2)).await.unwrap();

    // A second lock table, created like any group.
    let create = AdminCommand::CreateGroup {
        name: "jobs".into(),
        members: [0, 1, 2].map(ReplicaId).to_vec(),
        kind: KIND.into(),
        params: bytes::Bytes::new(),
        access: None,
    };
    let AdminOutput::Group(jobs) =
        retry(async || n0.admin(create.clone()).await.map(|r| r.1)).await
    else {
        panic!("not created")
    };

    for group in [synod_node::DEFAULT_GROUP, jobs.id] {
        // Three clients, one per node, race for the same lock.
        let (a, b, c) = tokio::join!(
            retry(async || change(&n0, group, &acquire("leader", "a")).await),
            retry(async || change(&n1, group, &acquire("leader", "b")).await),
            retry(async || change(&n2, group, &acquire("leader", "c")).await),
        );
        let answers = [("a", a), ("b", b), ("c", c)];
        let winners: Vec<(&str, u64)> = answers
            .iter()
            .filter_map(|(who, a)| match a {
                LockAnswer::Granted { token } => Some((*who, *token)),
                _ => None,
            })
            .collect();
        assert_eq!(winners.len(), 1, "exactly one winner: {answers:?}");
        let (winner, token) = winners[0];
        let expected = Holder {
            owner: winner.to_string(),
            token,
        };
        for (_, answer) in &answers {
            assert!(
                matches!(answer, LockAnswer::Granted { .. })
                    || *answer == LockAnswer::Held(expected.clone()),
                "a loser is told who holds it: {answer:?}"
            );
        }
        // Every node agrees, through a linearizable read.
        for n in [&n0, &n1, &n2] {
            let h = retry(async || holder(n, group, "leader").await).await;
            assert_eq!(h.as_ref(), Some(&expected));
        }
        // Acquiring again is idempotent; a loser cannot release; the winner can.
        let again = retry(async || change(&n2, group, &acquire("leader", winner)).await).await;
        assert_eq!(again, LockAnswer::Granted { token });
        let loser = ["a", "b", "c"].into_iter().find(|w| *w != winner).unwrap();
        let release = |owner: &str| LockCommand::Release {
            lock: "leader".into(),
            owner: owner.into(),
        };
        let refused = retry(async || change(&n1, group, &release(loser)).await).await;
        assert_eq!(refused, LockAnswer::NotHeld);
        let released = retry(async || change(&n0, group, &release(winner)).await).await;
        assert_eq!(released, LockAnswer::Released);
        // The next holder's fencing token is larger: a stale holder's writes can be refused.
        let next = retry(async || change(&n1, group, &acquire("leader", loser)).await).await;
        let LockAnswer::Granted { token: later } = next else {
            panic!("free after release: {next:?}")
        };
        assert!(later > token, "{later} > {token}");
    }

    // A node restarted from its disk resumes the same table.
    let before = retry(async || holder(&n0, jobs.id, "leader").await).await;
    n1.stop().await;
    n1 = Node::start(cfg(1)).await.unwrap();
    let after = retry(async || holder(&n1, jobs.id, "leader").await).await;
    assert_eq!(after, before);
    assert!(after.is_some());
    drop((n0, n1, n2));
}
