//! Helpers shared by the in-process cluster tests.

// Each test file uses a different subset.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use synod_kv::{KvCommand, KvNode, WriteResult};
use synod_node::{DEFAULT_GROUP, GroupId, Node, NodeConfig, ReplicaId, RequestError};
use synod_transport::certs::{self, Pem};
use synod_transport::tls::TlsIdentity;

pub(crate) fn free_ports(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

/// The applications these tests host: the key-value store (the default group's), ledger
/// channels and notaries.
pub(crate) fn apps() -> std::sync::Arc<synod_node::Apps> {
    std::sync::Arc::new(
        synod_node::Apps::new(synod_kv::KIND, synod_kv::KvApp::new)
            .with_dir(synod_ledger::CHANNEL_KIND, synod_ledger::ChannelApp::open)
            .with(synod_ledger::NOTARY_KIND, synod_ledger::NotaryApp::new),
    )
}

/// Creates a key-value group.
pub(crate) fn create_kv(name: &str, members: &[u16]) -> synod_node::catalog::AdminCommand {
    synod_node::catalog::AdminCommand::CreateGroup {
        name: name.into(),
        members: members.iter().copied().map(ReplicaId).collect(),
        kind: synod_kv::KIND.into(),
        params: Bytes::new(),
        access: None,
    }
}

pub(crate) fn config(ca: &Pem, node: u16, addrs: &[SocketAddr], dir: &Path) -> NodeConfig {
    let cert = certs::issue_node(ca, node).unwrap();
    let peers: BTreeMap<ReplicaId, synod_node::PeerAddr> = addrs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i as u16 != node)
        .map(|(i, a)| (ReplicaId(i as u16), (*a).into()))
        .collect();
    NodeConfig {
        node: ReplicaId(node),
        data_dir: dir.join(format!("node{node}")),
        listen: addrs[node as usize],
        peers,
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
        apps: apps(),
    }
}

pub(crate) fn put(key: &str, value: &str) -> KvCommand {
    KvCommand::Put {
        key: key.into(),
        value: Bytes::from(value.to_string()),
        cas: None,
    }
}

pub(crate) async fn write_with_retry(node: &Node, cmd: KvCommand) -> WriteResult {
    write_in(node, DEFAULT_GROUP, cmd).await
}

/// Writes `cmd` in `group`, retrying while the node has no quorum (up to 10 s).
pub(crate) async fn write_in(node: &Node, group: GroupId, cmd: KvCommand) -> WriteResult {
    for _ in 0..200 {
        match node.write(group, cmd.clone()).await {
            Ok(r) => return r,
            Err(RequestError::Refused(_) | RequestError::Stopped) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    panic!("no quorum after 10 s");
}

pub(crate) async fn converged(nodes: &[&Node]) -> bool {
    converged_in(nodes, DEFAULT_GROUP).await
}

/// Whether every node hosts `group` at the same applied GSN with the same content (waits up to
/// 10 s).
pub(crate) async fn converged_in(nodes: &[&Node], group: GroupId) -> bool {
    for _ in 0..400 {
        let mut status = Vec::new();
        for n in nodes {
            status.push(n.status().await.into_iter().find(|s| s.group == group));
        }
        let same = status.windows(2).all(|w| match (&w[0], &w[1]) {
            (Some(a), Some(b)) => a.applied == b.applied && a.content_hash == b.content_hash,
            _ => false,
        });
        if same && status[0].is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Agrees on a catalog change through `node`, retrying while there is no quorum (up to 10 s).
pub(crate) async fn admin(
    node: &Node,
    cmd: synod_node::catalog::AdminCommand,
) -> synod_node::catalog::AdminOutput {
    for _ in 0..200 {
        match node.admin(cmd.clone()).await {
            Ok((_, out)) => return out,
            Err(RequestError::Refused(_) | RequestError::Stopped) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("admin failed: {e}"),
        }
    }
    panic!("no quorum after 10 s");
}
