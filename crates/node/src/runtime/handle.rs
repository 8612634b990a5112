//! [`Node`]: the handle the API layer holds. Every call is a message to the event loop; the
//! catalog is also published on a watch channel so name lookups do not queue behind writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use synod_core::{ConfigChange, Payload, Slot};
use synod_exec::WorkerPool;
use synod_transport::{Transport, TransportConfig};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tracing::Instrument;

use super::groups::Group;
use super::metrics::NodeMetrics;
use super::repair::{Recovered, open_store};
use super::storage_task::{StorageJob, storage_thread};
use super::{
    DEFAULT_GROUP, GroupStatus, NodeConfig, NodeError, Query, ReadResult, Request, RequestError,
    Runtime, Timing, WriteResult,
};
use crate::catalog::{AdminCommand, AdminOutput, Catalog, Command};
use crate::kv::{KvCommand, KvRequest};

/// A running node. Dropping it stops the node.
#[derive(Debug)]
pub struct Node {
    requests: mpsc::Sender<Request>,
    /// Signs this node's notarisations (`data_dir/notary.key`).
    notary_key: Arc<ed25519_dalek::SigningKey>,
    catalog: watch::Receiver<Arc<Catalog>>,
    peer_addr: std::net::SocketAddr,
    /// Bounds the ledger reads running at once (each on a blocking thread; a proof walks the
    /// whole chain): one per core, the rest wait their turn.
    ledger_readers: Arc<tokio::sync::Semaphore>,
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
        let notary_key = super::repair::notary_key(&config.data_dir)?;
        let db = config.data_dir.join("synod.redb");
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
        let fresh = Catalog::new(&config.members);
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
        let (snapshots_encoded, snapshots_rx) = mpsc::unbounded_channel();
        let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let mut runtime = Runtime {
            node: config.node,
            groups: BTreeMap::new(),
            dormant,
            corrupt: BTreeMap::new(),
            known_peers: config.peers.clone(),
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
            snapshots_encoded,
            metrics,
            pool: WorkerPool::new(workers),
            executor_capacity: config.executor_capacity.max(1),
            progress: Arc::new(Notify::new()),
            catalog: catalog_rx.clone(),
        };
        let opts = runtime.options(&config.members);
        let default = Group::open(
            DEFAULT_GROUP,
            opts,
            default_state,
            Some(catalog_tx),
            &runtime.pool,
            runtime.executor_capacity,
            runtime.progress.clone(),
            None,
        )?;
        runtime.groups.insert(DEFAULT_GROUP, default);
        runtime.reconcile();
        let span = tracing::info_span!("node", id = config.node);
        let task = tokio::spawn(
            runtime
                .run(inbound, request_rx, done_rx, snapshots_rx)
                .instrument(span),
        );
        Ok(Node {
            requests,
            notary_key: Arc::new(notary_key),
            catalog: catalog_rx,
            peer_addr,
            ledger_readers: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            )),
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
    pub fn resolve(&self, name: &str) -> Option<u32> {
        self.catalog.borrow().group(name).map(|g| g.id)
    }

    /// Proposes a KV command in `group` and waits until it is applied here.
    ///
    /// # Errors
    /// [`RequestError`]; on `Stopped` the outcome is unknown.
    pub async fn write(&self, group: u32, cmd: KvCommand) -> Result<WriteResult, RequestError> {
        self.write_once(group, cmd, None).await
    }

    /// Like [`Self::write`], with an idempotency token: retrying with the same token after a
    /// lost answer applies the command at most once and returns the first outcome.
    ///
    /// # Errors
    /// [`RequestError`]; on `Stopped` the outcome is unknown (retry with the same token).
    pub async fn write_once(
        &self,
        group: u32,
        cmd: KvCommand,
        token: Option<String>,
    ) -> Result<WriteResult, RequestError> {
        self.ask(|reply| Request::Write {
            group,
            req: KvRequest { token, cmd },
            reply,
        })
        .await
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
        group: u32,
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
    /// Orders a ledger envelope (an encoded `synod_ledger::Envelope`) in channel `group` and
    /// waits until it is applied here: returns its GSN and the blocks it cut (usually none; a
    /// transaction is judged when its block is cut: see [`Self::ledger_read`]).
    ///
    /// # Errors
    /// [`RequestError`]; `Refused` if the group is not a ledger channel.
    pub async fn ledger_submit(
        &self,
        group: u32,
        envelope: Bytes,
    ) -> Result<(Slot, Vec<u64>), RequestError> {
        self.ask(|reply| Request::Ledger {
            group,
            envelope,
            reply,
        })
        .await
    }

    /// Runs `f` on channel `group`'s ledger as applied on this node so far.
    ///
    /// # Errors
    /// [`RequestError::NoGroup`] if this node hosts no such channel.
    pub async fn ledger_read<T: Send + 'static>(
        &self,
        group: u32,
        f: impl FnOnce(&synod_ledger::Channel) -> T + Send + 'static,
    ) -> Result<T, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::LedgerRead { group, reply })
            .await
            .map_err(|_| RequestError::Stopped)?;
        let ledger = rx
            .await
            .map_err(|_| RequestError::Stopped)?
            .ok_or(RequestError::NoGroup(group))?;
        // On a blocking thread: the ledger's lock is held while a block is cut, and some
        // reads (proofs) walk the whole chain. They walk a copy (O(1): persistent
        // collections), so the lock is held only to take it and no executor worker waits.
        let permit = self
            .ledger_readers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RequestError::Stopped)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let copy = ledger
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            f(&copy)
        })
        .await
        .map_err(|_| RequestError::Stopped)
    }

    /// Notarises `req` in notary `group`: once the notary has applied it here, returns its
    /// GSN, the outcome and, on success, this node's Ed25519 signature over the notary's
    /// identity ([`Self::notary_identity`]) and the request
    /// (`synod_ledger::notary::verify_notarisation` checks it against
    /// [`Self::notary_public_key`]).
    ///
    /// # Errors
    /// [`RequestError`]; `NoGroup` if the group is not a notary hosted here.
    pub async fn notarise(
        &self,
        group: u32,
        req: synod_ledger::NotariseRequest,
    ) -> Result<
        (
            Slot,
            synod_ledger::NotaryOutcome,
            Option<ed25519_dalek::Signature>,
        ),
        RequestError,
    > {
        let notary = self.notary_identity(group)?;
        let (gsn, outcome) = self
            .ask(|reply| Request::Notarise {
                group,
                req: req.clone(),
                reply,
            })
            .await?;
        let signature = (outcome == synod_ledger::NotaryOutcome::Notarised)
            .then(|| synod_ledger::notary::sign_notarisation(&self.notary_key, &notary, &req));
        Ok((gsn, outcome, signature))
    }

    /// Notary `group` as a signature names it (name, id, creation GSN), from this node's
    /// catalog.
    ///
    /// # Errors
    /// [`RequestError::NoGroup`] if the catalog knows no such group.
    pub fn notary_identity(
        &self,
        group: u32,
    ) -> Result<synod_ledger::notary::NotaryIdentity, RequestError> {
        let catalog = self.catalog();
        let info = catalog
            .group_by_id(group)
            .ok_or(RequestError::NoGroup(group))?;
        Ok(synod_ledger::notary::NotaryIdentity {
            name: info.name.clone(),
            id: info.id,
            created_gsn: info.created_gsn,
        })
    }

    /// This node's notary public key (Ed25519).
    #[must_use]
    pub fn notary_public_key(&self) -> [u8; 32] {
        self.notary_key.verifying_key().to_bytes()
    }

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

    /// Reads `key`: linearizable (through a barrier in the log) or from local state.
    ///
    /// # Errors
    /// [`RequestError`].
    pub async fn read(
        &self,
        group: u32,
        key: &str,
        linearizable: bool,
    ) -> Result<ReadResult, RequestError> {
        self.query(group, key, false, linearizable).await
    }

    /// Lists every key under `prefix`: linearizable or from local state.
    ///
    /// # Errors
    /// [`RequestError`].
    pub async fn list(
        &self,
        group: u32,
        prefix: &str,
        linearizable: bool,
    ) -> Result<ReadResult, RequestError> {
        self.query(group, prefix, true, linearizable).await
    }

    async fn query(
        &self,
        group: u32,
        key: &str,
        recurse: bool,
        linearizable: bool,
    ) -> Result<ReadResult, RequestError> {
        let query = Query {
            key: key.to_string(),
            recurse,
        };
        self.ask(|reply| Request::Read {
            group,
            query,
            linearizable,
            reply,
        })
        .await
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

/// Encodes what a node proposes.
pub(super) fn encode_command(cmd: &Command) -> Payload {
    Payload::Command(Bytes::from(
        postcard::to_stdvec(cmd).expect("encoding into a Vec cannot fail"),
    ))
}
