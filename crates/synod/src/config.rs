//! `node.toml`: how one node is run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use synod_node::NodeConfig;
use synod_transport::tls::TlsIdentity;

/// The file format.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// This node's id.
    pub(crate) node: u16,
    /// Data directory.
    pub(crate) data_dir: PathBuf,
    /// Address for peer (node-to-node, mutual TLS) connections.
    pub(crate) listen_peer: SocketAddr,
    /// Address of the HTTP API.
    pub(crate) listen_api: SocketAddr,
    /// Address of the probes' plain-HTTP listener (`/livez`, `/readyz`; nothing else is
    /// served there). Left out: no such listener.
    #[serde(default)]
    pub(crate) listen_health: Option<SocketAddr>,
    /// A group more than this many slots behind its furthest peer is not ready (`/readyz`).
    #[serde(default = "default_ready_lag_slots")]
    pub(crate) ready_lag_slots: u64,
    /// Members of the default group when the cluster was created (the same list on every
    /// node, including nodes added later).
    pub(crate) members: Vec<u16>,
    /// This node is not among `members`: it joins a running cluster (`synod member add`).
    #[serde(default)]
    pub(crate) join: bool,
    /// Other nodes' peer addresses, by node id: `ip:port` or `dns-name:port` (a name is
    /// resolved again at every connection attempt, from /etc/hosts and DNS).
    pub(crate) peers: BTreeMap<String, synod_transport::PeerAddr>,
    /// TLS files.
    pub(crate) tls: TlsFiles,
    /// Lose unsynced writes on SIGKILL (tests only).
    #[serde(default)]
    pub(crate) power_cut_test_mode: bool,
    /// Take-over timeout in milliseconds.
    #[serde(default = "default_takeover_ms")]
    pub(crate) takeover_ms: u64,
    /// Heartbeat interval in milliseconds.
    #[serde(default = "default_heartbeat_ms")]
    pub(crate) heartbeat_ms: u64,
    /// A peer silent this long counts as unreachable (minority detection), in milliseconds.
    #[serde(default = "default_liveness_ms")]
    pub(crate) liveness_ms: u64,
    /// Slots applied between snapshots (then the log is compacted).
    #[serde(default = "default_snapshot_every")]
    pub(crate) snapshot_every: u64,
    /// Slots of log kept for lagging peers; further behind, they are sent a snapshot.
    #[serde(default = "default_log_retention")]
    pub(crate) log_retention: u64,
    /// Commands a group's executor holds unfinished before the node stops taking in more
    /// (back-pressure from the application to agreement).
    #[serde(default = "default_executor_capacity")]
    pub(crate) executor_capacity: usize,
    /// Serve the API as plain HTTP with no client authentication (benchmarks, local
    /// experiments). Without it the API is HTTPS and requires a client certificate from the
    /// cluster CA.
    #[serde(default)]
    pub(crate) insecure_plaintext_api: bool,
    /// How long a write may wait before the API answers 503, in milliseconds.
    #[serde(default = "default_request_timeout_ms")]
    pub(crate) request_timeout_ms: u64,
    /// This node's disk was lost or replaced: started with an empty data directory, every
    /// group it hosts rejoins behind a fence instead of starting as a fresh acceptor under an
    /// id that voted before. (`synod start --rejoin` sets it too.) Harmless once the node has
    /// state again.
    #[serde(default)]
    pub(crate) rejoin: bool,
    /// Client identities (certificate common names, `client-admin`) that may administer the
    /// cluster: create groups, channels and notaries, change the members of key-value groups
    /// and the default group, register node addresses. Left out: every identity from the
    /// cluster CA may (the node warns at start-up). `*` is anyone. Channels and notaries are
    /// administered by the admins their own access lists name.
    #[serde(default)]
    pub(crate) cluster_admins: Option<Vec<String>>,
    /// Most API connections this node holds at once; more are closed as they come.
    #[serde(default = "default_api_connections")]
    pub(crate) api_connections: usize,
    /// Most API connections one client identity holds at once on this node.
    #[serde(default = "default_api_connections_per_identity")]
    pub(crate) api_connections_per_identity: usize,
    /// An API connection's TLS handshake, and each request head, must arrive within this
    /// (milliseconds); an idle kept-alive connection is closed after it.
    #[serde(default = "default_api_header_timeout_ms")]
    pub(crate) api_header_timeout_ms: u64,
}

pub(crate) fn default_api_connections() -> usize {
    4_096
}
pub(crate) fn default_api_connections_per_identity() -> usize {
    256
}
pub(crate) fn default_api_header_timeout_ms() -> u64 {
    10_000
}

pub(crate) fn default_ready_lag_slots() -> u64 {
    1_000
}

fn default_takeover_ms() -> u64 {
    50
}
fn default_heartbeat_ms() -> u64 {
    10
}
fn default_liveness_ms() -> u64 {
    1_000
}
fn default_snapshot_every() -> u64 {
    10_000
}
fn default_log_retention() -> u64 {
    50_000
}
fn default_executor_capacity() -> usize {
    4_096
}
fn default_request_timeout_ms() -> u64 {
    2_000
}

/// PEM files for mutual TLS.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFiles {
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl FileConfig {
    pub(crate) fn load(path: &Path) -> Result<FileConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// What can be checked without the files it names: peer ids are numbers and not this
    /// node, and a genesis member does not `join` (nor a joining node claim to be one).
    pub(crate) fn check(&self) -> Result<()> {
        for id in self.peers.keys() {
            let id: u16 = id
                .parse()
                .with_context(|| format!("peer id {id:?} is not a number"))?;
            if id == self.node {
                bail!("node {id} lists itself as a peer");
            }
        }
        match (self.members.contains(&self.node), self.join) {
            (false, false) => bail!(
                "node {} is not among the genesis members {:?}; to add it to a running \
                 cluster set `join = true` and run `synod member add`",
                self.node,
                self.members
            ),
            (true, true) => bail!(
                "node {} is a genesis member; `join = true` is for nodes added later",
                self.node
            ),
            _ => Ok(()),
        }
    }

    pub(crate) fn node_config(&self) -> Result<NodeConfig> {
        self.check()?;
        let read = |p: &Path| {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        };
        let identity = TlsIdentity::from_pem(
            &read(&self.tls.ca)?,
            &read(&self.tls.cert)?,
            &read(&self.tls.key)?,
        )
        .context("loading the TLS identity")?;
        let mut peers = BTreeMap::new();
        for (id, addr) in &self.peers {
            let id: u16 = id.parse().context("checked above")?;
            peers.insert(synod_node::ReplicaId(id), addr.clone());
        }
        Ok(NodeConfig {
            node: synod_node::ReplicaId(self.node),
            data_dir: self.data_dir.clone(),
            listen: self.listen_peer,
            peers,
            members: self
                .members
                .iter()
                .copied()
                .map(synod_node::ReplicaId)
                .collect(),
            identity,
            power_cut_test_mode: self.power_cut_test_mode,
            takeover_ms: self.takeover_ms,
            heartbeat_ms: self.heartbeat_ms,
            liveness_ms: self.liveness_ms,
            snapshot_every: self.snapshot_every,
            log_retention: self.log_retention,
            executor_capacity: self.executor_capacity,
            rejoin: self.rejoin,
            apps: crate::apps::registry(),
        })
    }
}
