//! [`Node`]: the handle the API layer holds. Every call is a message to the event loop; the
//! catalog is also published on a watch channel so name lookups do not queue behind writes.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use synod_core::{ConfigChange, GroupId, ReplicaId, Slot};
use synod_exec::{GroupSpec, Hosted, WorkerPool};
use synod_transport::{Transport, TransportConfig};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tracing::Instrument;

use super::groups::Group;
use super::metrics::NodeMetrics;
use super::repair::{Recovered, open_store};
use super::storage_task::{StorageJob, storage_thread};
use super::{
    DEFAULT_GROUP, GroupStatus, NodeConfig, NodeError, Request, RequestError, Runtime, Timing,
};
use crate::catalog::{AdminCommand, AdminOutput, Catalog, DEFAULT_GROUP_NAME};
use crate::host::Applied;

/// A running node. Dropping it stops the node.
#[derive(Debug)]
pub struct Node {
    requests: mpsc::Sender<Request>,
    catalog: watch::Receiver<Arc<Catalog>>,
    peer_addr: std::net::SocketAddr,
    data_dir: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
    storage: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Node {
    /// Opens storage, recovers every group, connects to peers and starts serving.
    ///
    /// # Errors
    /// [`NodeError`] if storage, a snapshot or the transport cannot be opened.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let db = config.data_dir.join("synod.redb");
        super::repair::check_data_format(&config.data_dir)?;
        // A group whose state on this disk cannot be trusted is wiped and rejoins from its
        // peers, the node's other groups serving meanwhile; a database that is damaged as a
        // whole is set aside and every group rejoins.
        let (
            store,
            Recovered {
                dormant,
                default: default_state,
                repairs,
                marker,
            },
        ) = open_store(&config)?;
        let metrics = NodeMetrics {
            repairs: repairs.len() as u64,
            ..NodeMetrics::default()
        };
        let genesis: Vec<ReplicaId> = config.members.clone();
        let fresh = Catalog::new(&genesis, config.apps.default_kind());
        let (catalog_tx, catalog_rx) = watch::channel(Arc::new(fresh.clone()));

        let mut tcfg = TransportConfig::new(config.node, config.listen, config.identity.clone());
        tcfg.peers = config.peers.clone();
        let (transport, inbound) = Transport::start(tcfg).await?;
        let peer_addr = transport.local_addr();
        let (storage_tx, storage_rx) = std::sync::mpsc::channel::<StorageJob>();
        let (done_tx, done_rx) = mpsc::channel(4);
        let storage = std::thread::Builder::new()
            .name(format!("synod-storage-{}", config.node))
            .spawn(move || storage_thread(store, storage_rx, done_tx))
            .map_err(|source| NodeError::DataDir { path: db, source })?;
        let (requests, request_rx) = mpsc::channel(4096);
        let (background, background_rx) = mpsc::unbounded_channel();
        let apps_dir = config.data_dir.join("apps");
        // Transfers do not survive a restart: a partial one is asked for again.
        let transfer_dir = config.data_dir.join("transfer");
        let _ = std::fs::remove_dir_all(&transfer_dir);
        for dir in [&apps_dir, &transfer_dir] {
            std::fs::create_dir_all(dir).map_err(|source| NodeError::DataDir {
                path: dir.clone(),
                source,
            })?;
        }
        let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let mut runtime = Runtime {
            node: config.node,
            groups: BTreeMap::new(),
            awake: std::collections::BTreeSet::from([DEFAULT_GROUP]),
            dormant,
            corrupt: BTreeMap::new(),
            known_peers: config.peers.clone(),
            node_heard: BTreeMap::new(),
            timing: Timing {
                takeover_ms: config.takeover_ms,
                heartbeat_ms: config.heartbeat_ms,
                liveness_ms: config.liveness_ms,
            },
            transport: Arc::new(transport),
            collecting: std::collections::VecDeque::new(),
            in_flight: None,
            storage: storage_tx,
            snapshot_every: config.snapshot_every.max(1),
            log_retention: config.log_retention,
            remove_next: Vec::new(),
            reset_next: Vec::new(),
            repairs,
            rejoin_marker: marker,
            background,
            apps_dir,
            transfer_dir,
            power_cut_test_mode: config.power_cut_test_mode,
            metrics,
            pool: WorkerPool::new(workers),
            executor_capacity: config.executor_capacity.max(1),
            progress: Arc::new(Notify::new()),
            catalog: catalog_rx.clone(),
            apps: config.apps.clone(),
        };
        let opts = runtime.options(DEFAULT_GROUP, &genesis);
        let spec = GroupSpec {
            id: DEFAULT_GROUP,
            name: DEFAULT_GROUP_NAME.to_string(),
            created_gsn: 0,
            genesis,
            params: Bytes::new(),
        };
        let default = Group::open(
            &spec,
            config.apps.default_kind(),
            opts,
            default_state,
            Some(catalog_tx),
            &runtime.hosting(),
        )?;
        runtime.groups.insert(DEFAULT_GROUP, default);
        runtime.reconcile();
        let span = tracing::info_span!("node", id = %config.node);
        let task = tokio::spawn(
            runtime
                .run(inbound, request_rx, done_rx, background_rx)
                .instrument(span),
        );
        Ok(Node {
            requests,
            catalog: catalog_rx,
            peer_addr,
            data_dir: config.data_dir.clone(),
            task,
            storage: Some(storage),
        })
    }

    /// Stops the node and waits until its database is closed, so the same data directory can
    /// be opened again at once. (Dropping the node stops it too, without waiting.)
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        // The event loop is gone, so the storage thread's job queue is closed: it finishes the
        // commit in hand, if any, and exits, closing the database.
        if let Some(storage) = self.storage.take() {
            let _ = tokio::task::spawn_blocking(move || storage.join()).await;
        }
    }

    /// Where this node listens for peers.
    #[must_use]
    pub fn peer_addr(&self) -> std::net::SocketAddr {
        self.peer_addr
    }

    /// This node's view of the catalog (as of the default group's GSN applied here).
    #[must_use]
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// The id of the group called `name`, as this node's catalog knows it.
    #[must_use]
    pub fn resolve(&self, name: &str) -> Option<GroupId> {
        self.catalog.borrow().group(name).map(|g| g.id)
    }

    /// This node's data directory (an application may keep files of its own there).
    #[must_use]
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Proposes an application command (bytes its application decodes) in `group` and waits
    /// until it is applied here; returns its GSN and the application's output, boxed.
    ///
    /// # Errors
    /// [`RequestError`]; on `Stopped` the outcome is unknown.
    pub async fn submit(&self, group: GroupId, command: Bytes) -> Result<Applied, RequestError> {
        self.ask(|reply| Request::Submit {
            group,
            command,
            reply,
        })
        .await
    }

    /// As [`Self::submit`], for a group known to run application `A`: its output, typed.
    ///
    /// # Errors
    /// [`RequestError::WrongKind`] if the group runs another application, or as
    /// [`Self::submit`].
    pub async fn submit_to<A: Hosted>(
        &self,
        group: GroupId,
        command: Bytes,
    ) -> Result<(Slot, A::Output), RequestError> {
        let applied = self.submit(group, command).await?;
        let output = applied
            .output
            .downcast::<A::Output>()
            .map_err(|_| RequestError::WrongKind)?;
        Ok((applied.gsn, *output))
    }

    /// A linearizable read: a barrier through `group`'s log, then `query` (the application's
    /// `Hosted::Query`, boxed) runs here at the barrier's place in the order, so it reflects
    /// every write acknowledged before the call.
    ///
    /// # Errors
    /// [`RequestError`]; `WrongKind` if the group's application takes another query type.
    pub async fn query(
        &self,
        group: GroupId,
        query: Box<dyn Any + Send>,
    ) -> Result<Applied, RequestError> {
        self.ask(|reply| Request::Query {
            group,
            query,
            reply,
        })
        .await
    }

    /// As [`Self::query`], typed for application `A`.
    ///
    /// # Errors
    /// As [`Self::query`].
    pub async fn query_to<A: Hosted>(
        &self,
        group: GroupId,
        query: A::Query,
    ) -> Result<(Slot, A::Output), RequestError> {
        let applied = self.query(group, Box::new(query)).await?;
        let output = applied
            .output
            .downcast::<A::Output>()
            .map_err(|_| RequestError::WrongKind)?;
        Ok((applied.gsn, *output))
    }

    /// Waits until everything agreed in `group` before the call is applied here (a barrier
    /// through the log); returns the barrier's GSN. A name created through another node a
    /// moment ago is in this node's catalog once a barrier on the default group returns.
    ///
    /// # Errors
    /// [`RequestError`].
    pub async fn barrier(&self, group: GroupId) -> Result<Slot, RequestError> {
        self.ask(|reply| Request::Barrier { group, reply }).await
    }

    /// `group`'s application as hosted here, for reads outside the GSN order (stale reads,
    /// ledger queries), with the GSN below which everything is applied. The state may already
    /// reflect commands past that GSN which finished early.
    ///
    /// # Errors
    /// [`RequestError::NoGroup`] or `Corrupt` if this node does not serve the group.
    pub async fn app(
        &self,
        group: GroupId,
    ) -> Result<(Arc<dyn Any + Send + Sync>, Slot), RequestError> {
        self.ask(|reply| Request::App { group, reply }).await
    }

    /// As [`Self::app`], typed.
    ///
    /// # Errors
    /// [`RequestError::WrongKind`] if the group runs another application, or as
    /// [`Self::app`].
    pub async fn app_of<A: Hosted>(&self, group: GroupId) -> Result<(Arc<A>, Slot), RequestError> {
        let (app, applied) = self.app(group).await?;
        let app = app.downcast::<A>().map_err(|_| RequestError::WrongKind)?;
        Ok((app, applied))
    }

    /// Proposes a catalog change in the default group and waits until it is applied here.
    ///
    /// # Errors
    /// [`RequestError`]; on `Stopped` the outcome is unknown (catalog changes are safe to
    /// retry: creating an existing group with the same members answers with that group).
    pub async fn admin(&self, cmd: AdminCommand) -> Result<(Slot, AdminOutput), RequestError> {
        self.ask(|reply| Request::Admin { cmd, reply }).await
    }

    /// Proposes a change to `group`'s own configuration (add or remove a voting member,
    /// change the quorum policy) and waits until it is applied here. Returns the GSN from
    /// which the new configuration governs.
    ///
    /// # Errors
    /// [`RequestError::Config`] if the change is refused (for example the node is already a
    /// member), or another [`RequestError`].
    pub async fn change_config(
        &self,
        group: GroupId,
        change: ConfigChange,
    ) -> Result<Slot, RequestError> {
        self.ask(|reply| Request::Config {
            group,
            change,
            reply,
        })
        .await
    }

    /// Sends a request to the event loop and waits for its answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, RequestError>>) -> Request,
    ) -> Result<T, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(make(reply))
            .await
            .map_err(|_| RequestError::Stopped)?;
        rx.await.map_err(|_| RequestError::Stopped)?
    }

    /// Prometheus text exposition of the node's and its groups' counters.
    pub async fn metrics(&self) -> String {
        let (reply, rx) = oneshot::channel();
        if self
            .requests
            .send(Request::Metrics { reply })
            .await
            .is_err()
        {
            return String::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Status of every group hosted here.
    pub async fn status(&self) -> Vec<GroupStatus> {
        let (reply, rx) = oneshot::channel();
        if self.requests.send(Request::Status { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}
