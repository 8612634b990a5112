//! The node's event loop: one task drives every group's [`Replica`], one thread owns the
//! [`Store`], and the [`Transport`] carries frames to peers.
//!
//! Group commit: readies of all groups are collected while a commit is in flight and go to
//! storage together as the next commit (one fsync). Only when a commit is durable are its
//! readies' messages sent and deliveries applied (the core's contract), in the order the
//! readies were produced.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::any::Any;

use bytes::Bytes;
use synod_core::{ConfigChange, Payload, Ready, Record, ReplicaId, Slot, Snapshot, Time};
use synod_storage::{GroupId, StorageError};
use synod_transport::frame::Frame;
use synod_transport::tls::TlsIdentity;
use synod_transport::{Inbound, StartError, Transport};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::catalog::{AdminCommand, AdminOutput, Catalog};
pub use crate::error::RequestError;
use crate::host::{Applied, Apps, Command, Waiter};
use synod_exec::WorkerPool;

mod groups;
mod handle;
mod metrics;
mod repair;
mod snapshot;
mod storage_task;

pub use handle::Node;

use groups::{Dormant, Group};
use metrics::NodeMetrics;
use snapshot::{Latest, Rest, with_head};
use storage_task::{CommitDone, StorageJob};

/// The group every cluster starts with.
pub const DEFAULT_GROUP: GroupId = GroupId(0);

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id (also its replica id in every group).
    pub node: ReplicaId,
    /// Where the database lives.
    pub data_dir: PathBuf,
    /// Where to listen for peers.
    pub listen: std::net::SocketAddr,
    /// The other nodes: where each listens, by IP address or DNS name.
    pub peers: BTreeMap<ReplicaId, synod_transport::PeerAddr>,
    /// Members of the default group when the cluster is first created.
    pub members: Vec<ReplicaId>,
    /// TLS material.
    pub identity: TlsIdentity,
    /// Keep unsynced writes in memory until fsync, so SIGKILL behaves like a power cut.
    pub power_cut_test_mode: bool,
    /// Take-over timeout, milliseconds.
    pub takeover_ms: u64,
    /// Heartbeat interval, milliseconds.
    pub heartbeat_ms: u64,
    /// A peer not heard from for this long counts as unreachable: with too few reachable
    /// peers the node refuses writes (503). Must exceed the longest pause a loaded node's
    /// event loop can take, or busy nodes refuse writes they could serve.
    pub liveness_ms: u64,
    /// Slots applied between snapshots of a group (then its log is compacted).
    pub snapshot_every: u64,
    /// Slots of log kept behind this node's applied GSN for lagging peers; a peer further
    /// behind is sent a snapshot instead.
    pub log_retention: u64,
    /// Commands a group's executor holds unfinished before the node stops taking in peer
    /// messages and requests until it has drained (back-pressure; 4,096 by default).
    pub executor_capacity: usize,
    /// This node lost its disk (its data directory is new, under an id that voted before):
    /// with an empty data directory, every group it hosts starts fenced and rejoins (see
    /// docs/OPERATIONS.md). Ignored once the node has state and has finished rejoining.
    pub rejoin: bool,
    /// The applications this node can host, by kind (the default group runs the registry's
    /// default kind).
    pub apps: Arc<Apps>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory or database could not be opened.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// I/O on the data directory.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The transport could not start.
    #[error("transport: {0}")]
    Transport(#[from] StartError),
    /// A snapshot's application state could not be decoded.
    #[error("group {group}: snapshot state is unreadable: {detail}")]
    Snapshot {
        /// The group.
        group: GroupId,
        /// What went wrong.
        detail: String,
    },
    /// The data directory was written by a version that lays out its log or snapshots
    /// differently. Nothing is changed: run that version, or start this one on a new
    /// directory (docs/OPERATIONS.md).
    #[error(
        "the data directory holds {found}; this version reads {expected}; nothing was \
         changed: run the version that wrote it, or start on an empty data directory"
    )]
    DataFormat {
        /// What the directory holds.
        found: String,
        /// What this version reads.
        expected: String,
    },
    /// The group runs a kind of application this node's binary does not include. Nothing is
    /// wiped: run a binary that has it.
    #[error("group {group}: this node has no application of kind {kind:?}; nothing was changed")]
    UnknownKind {
        /// The group.
        group: GroupId,
        /// Its kind.
        kind: String,
    },
    /// A group's application could not open its store on this node.
    #[error("group {group}: its application's store cannot be opened: {detail}")]
    AppStore {
        /// The group.
        group: GroupId,
        /// Why.
        detail: String,
    },
    /// A snapshot was written by another version of Synod, in a format this one does not
    /// read. Nothing is wiped: run the version that wrote it.
    #[error(
        "group {group}: its snapshot is in another version's format ({detail}); nothing was \
         changed: run the Synod version that wrote it"
    )]
    SnapshotFormat {
        /// The group.
        group: GroupId,
        /// The formats.
        detail: String,
    },
}

/// A group's state as seen by this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group.
    pub group: GroupId,
    /// Its name in the catalog (empty if this node's catalog does not know it yet).
    pub name: String,
    /// The kind of application it runs (empty if this node's catalog does not know it yet).
    pub kind: String,
    /// Slots below this are applied here.
    pub applied: Slot,
    /// The furthest a peer has said it applied: `peers_applied - applied` is how far this
    /// node is behind.
    pub peers_applied: Slot,
    /// Current members.
    pub members: Vec<ReplicaId>,
    /// Whether this node hears from a quorum.
    pub has_quorum: bool,
    /// Items the application holds, as it counts them (read from the live state, which may
    /// already hold commands past `applied` that finished early).
    pub items: u64,
    /// A digest of the application's content, live like `items`: equal on nodes once they are
    /// idle at the same GSN.
    pub content_hash: u64,
    /// Proposals accepted here but not yet applied.
    pub pending: usize,
    /// Set if this node's copy of the group is corrupt (quarantined): the error.
    pub corrupt: Option<String>,
    /// Set while this node's copy of the group rejoins after its state was lost or wiped:
    /// why, and how far it has come. It casts no vote below its fence and refuses writes
    /// (503) until it has caught up past it.
    pub rejoining: Option<String>,
    /// Idle: its replica here sends no heartbeats and arms no timer until a write or a peer
    /// wakes it (every group but the default one goes quiet when nothing is left to do).
    pub quiet: bool,
}

fn now() -> Time {
    Time(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    )
}

/// The timing options every hosted group's replica gets.
#[derive(Clone, Copy, Debug)]
struct Timing {
    takeover_ms: u64,
    heartbeat_ms: u64,
    liveness_ms: u64,
}

type Answer<T> = oneshot::Sender<Result<T, RequestError>>;

/// What the handle asks of the event loop.
enum Request {
    /// Propose an application command.
    Submit {
        group: GroupId,
        command: Bytes,
        reply: Answer<Applied>,
    },
    /// A linearizable read: a barrier through the log, then the application's query.
    Query {
        group: GroupId,
        query: Box<dyn Any + Send>,
        reply: Answer<Applied>,
    },
    /// A barrier through the log: answered once everything before it is applied here.
    Barrier {
        group: GroupId,
        reply: Answer<Slot>,
    },
    /// The application and its applied GSN, for a reader off the event loop.
    App {
        group: GroupId,
        reply: Answer<(Arc<dyn Any + Send + Sync>, Slot)>,
    },
    Admin {
        cmd: AdminCommand,
        reply: Answer<(Slot, AdminOutput)>,
    },
    Config {
        group: GroupId,
        change: ConfigChange,
        reply: Answer<Slot>,
    },
    Status {
        reply: oneshot::Sender<Vec<GroupStatus>>,
    },
    Metrics {
        reply: oneshot::Sender<String>,
    },
}

/// What work done off the event loop reports back.
enum Background {
    /// A checkpoint was taken and encoded (`HostedGroup::snapshot`).
    Checkpointed {
        group: GroupId,
        snapshot: Arc<Snapshot>,
        head: Bytes,
        export: Option<Arc<dyn crate::host::Export>>,
    },
    /// The rest of a snapshot's stream was written for a peer.
    Exported {
        group: GroupId,
        next_slot: Slot,
        result: std::io::Result<snapshot::Written>,
    },
    /// A received snapshot's state was built.
    Staged {
        group: GroupId,
        from: ReplicaId,
        result: Result<(Arc<Snapshot>, Bytes, crate::host::Staged), String>,
    },
}

struct Runtime {
    node: ReplicaId,
    groups: BTreeMap<GroupId, Group>,
    /// The groups the loop looks at on every turn (backlogs, timers): all but those with
    /// nothing to do (a quiet replica, nothing applying, no application timer), so that a
    /// node's idle groups cost it nothing per turn. A group joins on any input to its replica
    /// (`collect`); it leaves only in `flush_backlogs`, once its backlog is drained.
    awake: BTreeSet<GroupId>,
    /// Groups in storage that the catalog has not claimed yet.
    dormant: Dormant,
    /// Groups whose log on this node is corrupt, with the error: they neither vote nor serve.
    corrupt: BTreeMap<GroupId, String>,
    /// Peer addresses the transport dials.
    known_peers: BTreeMap<ReplicaId, synod_transport::PeerAddr>,
    /// When each peer node was last heard from, through any group: what a quiet group's
    /// replica, which hears nothing itself, is told before it wakes.
    node_heard: BTreeMap<ReplicaId, Time>,
    timing: Timing,
    transport: Arc<Transport>,
    /// Readies produced since the last commit started, in order.
    collecting: VecDeque<(GroupId, Ready)>,
    /// Readies whose records are being committed.
    in_flight: Option<VecDeque<(GroupId, Ready)>>,
    storage: std::sync::mpsc::Sender<StorageJob>,
    snapshot_every: u64,
    log_retention: u64,
    /// Groups whose log to delete with the next commit.
    remove_next: Vec<GroupId>,
    /// Groups whose log to wipe, leaving a fence record, before the next commit's records.
    reset_next: Vec<(GroupId, u64)>,
    /// Why each group was wiped here, while it rejoins.
    repairs: BTreeMap<GroupId, String>,
    /// Present while the node rejoins after a lost disk: every group it creates starts
    /// fenced. Removed once every hosted group has caught up past its fence.
    rejoin_marker: Option<PathBuf>,
    /// Where work done off the event loop reports back (unbounded: at most one of each kind
    /// per group is in flight, and a worker thread must never block on the event loop).
    background: mpsc::UnboundedSender<Background>,
    /// Where groups' directories are (`<data dir>/apps`).
    apps_dir: PathBuf,
    /// Where snapshot transfers are written (`<data dir>/transfer`).
    transfer_dir: PathBuf,
    power_cut_test_mode: bool,
    metrics: NodeMetrics,
    /// Runs every group's commands.
    pool: WorkerPool,
    executor_capacity: usize,
    /// Signalled by an executor that drained after refusing jobs for lack of room.
    progress: Arc<Notify>,
    /// The default group's catalog, as applied here; a change means reconcile.
    catalog: watch::Receiver<Arc<Catalog>>,
    /// The applications this node can host.
    apps: Arc<Apps>,
}

impl Runtime {
    async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut requests: mpsc::Receiver<Request>,
        mut done: mpsc::Receiver<Result<CommitDone, String>>,
        mut background: mpsc::UnboundedReceiver<Background>,
    ) {
        loop {
            // Back-pressure: while an executor has no room for the commands already agreed,
            // nothing else is taken in (no peer messages, no new client requests), so a slow
            // application slows the agreement down instead of growing a queue.
            while !self.flush_backlogs() {
                self.metrics.executor_stalls += 1;
                self.progress.notified().await;
            }
            let deadline = self.next_timer();
            tokio::select! {
                biased;
                Some(result) = done.recv() => {
                    match result {
                        Err(e) => {
                            // A replica that cannot trust its disk must stop (etcd's rule).
                            tracing::error!(node = %self.node, error = %e, "storage failed; stopping the node");
                            return;
                        }
                        Ok(c) => self.metrics.record_commit(&c),
                    }
                    self.committed();
                }
                Some(done) = background.recv() => match done {
                    Background::Checkpointed { group, snapshot, head, export } => {
                        self.snapshot_encoded(group, snapshot, head, export);
                    }
                    Background::Exported { group, next_slot, result } => {
                        self.exported(group, next_slot, result);
                    }
                    Background::Staged { group, from, result } => self.staged(group, from, result),
                },
                Some(inb) = inbound.recv() => self.on_inbound(inb),
                Some(req) = requests.recv() => self.on_request(req),
                Ok(()) = self.catalog.changed() => self.reconcile(),
                () = tokio::time::sleep_until(deadline) => self.on_timers(),
            }
            self.pump();
        }
    }

    /// Admits every group's backlogged commands its executor has room for; true when no
    /// backlog is left. A group whose executor failed (its application panicked: a bug) is
    /// quarantined like a corrupt log: replicas must not diverge.
    fn flush_backlogs(&mut self) -> bool {
        let mut drained = true;
        let mut failed = Vec::new();
        let mut settled = Vec::new();
        for id in &self.awake {
            let Some(g) = self.groups.get_mut(id) else {
                settled.push(*id);
                continue;
            };
            // Checked on every turn, not only when something is backlogged: a group whose
            // application failed must stop serving at once. (A group leaves `awake` only once
            // nothing runs in its executor: an application fails only while running.)
            if let Some(e) = g.host.failure() {
                failed.push((*id, e));
                continue;
            }
            match g.host.flush() {
                Ok(true) if !g.needs_turns() => settled.push(*id),
                Ok(done) => drained &= done,
                Err(e) => failed.push((*id, e)),
            }
        }
        for id in settled {
            self.awake.remove(&id);
        }
        for (id, e) in failed {
            tracing::error!(group = %id, error = %e, "group quarantined: its application failed");
            if let Some(mut g) = self.groups.remove(&id) {
                g.close();
            }
            // Like a removed group: its collected readies are neither committed nor sent.
            self.collecting.retain(|(g, _)| *g != id);
            self.corrupt
                .insert(id, format!("group {id}: the application failed: {e}"));
        }
        drained
    }

    fn next_timer(&self) -> tokio::time::Instant {
        let now_wall = now();
        let earliest = self
            .awake
            .iter()
            .filter_map(|id| self.groups.get(id)?.replica.poll_timeout())
            .min();
        let delay = earliest.map_or(Duration::from_millis(100), |t| {
            Duration::from_nanos(t.since(now_wall))
        });
        tokio::time::Instant::from_std(Instant::now() + delay.max(Duration::from_micros(100)))
    }

    fn on_timers(&mut self) {
        let t = now();
        let due: Vec<GroupId> = self
            .awake
            .iter()
            .filter(|id| {
                self.groups
                    .get(id)
                    .and_then(|g| g.replica.poll_timeout())
                    .is_some_and(|d| d <= t)
            })
            .copied()
            .collect();
        for id in due {
            if let Some(g) = self.groups.get_mut(&id) {
                g.replica.handle_timeout(t);
                self.collect(id);
            }
        }
        if !self.repairs.is_empty() || self.rejoin_marker.is_some() {
            self.maybe_finish_rejoin();
        }
        self.propose_due_timers(t);
    }

    /// An application whose timer is due by this node's clock (a ledger channel's pending
    /// batch has waited its batch timeout): propose its command, whose delivery moves agreed
    /// time on every member. Once per due time, and again a second later if it is still due
    /// (the command may have been refused, without a quorum, or lost with its proposer).
    fn propose_due_timers(&mut self, now: Time) {
        const RETRY_NS: u64 = 1_000_000_000;
        let due: Vec<(GroupId, u64, Bytes)> = self
            .awake
            .iter()
            .filter_map(|id| {
                let g = self.groups.get(id)?;
                let timer = g.host.timer()?;
                let fresh = match g.timer_for {
                    Some((due, tried)) => {
                        due != timer.due_ns || now.0.saturating_sub(tried) >= RETRY_NS
                    }
                    None => true,
                };
                (timer.due_ns <= now.0 && fresh).then_some((*id, timer.due_ns, timer.command))
            })
            .collect();
        for (id, at, command) in due {
            if let Some(g) = self.groups.get_mut(&id) {
                g.timer_for = Some((at, now.0));
            }
            self.propose(id, app_payload(command), Waiter::Nobody);
        }
    }

    /// Reconciles if the catalog changed since the last look. Called before handling input:
    /// a catalog change is published before its client is answered (on a worker thread), so a
    /// request that follows the answer must find the group it created.
    fn catch_up_with_catalog(&mut self) {
        if self.catalog.has_changed().unwrap_or(false) {
            self.reconcile();
        }
    }

    fn on_inbound(&mut self, inb: Inbound) {
        self.catch_up_with_catalog();
        let (from, frame) = match inb {
            Inbound::Frame { from, frame } => (from, frame),
            Inbound::Lost { from } => return self.on_peer_lost(from),
        };
        self.node_heard.insert(from, now());
        let (group, envelope) = match frame {
            Frame::Group { group, envelope } => (group, envelope),
            Frame::SnapshotRequest {
                group,
                min_next_slot,
                offset,
            } => {
                return self.serve_snapshot(from, group, min_next_slot, offset);
            }
            Frame::SnapshotChunk {
                group,
                next_slot,
                total,
                offset,
                data,
            } => {
                return self.receive_snapshot(from, group, next_slot, total, offset, &data);
            }
            Frame::Hello { .. } => return,
        };
        // The transport proved the sender's node id; a message must not claim another.
        if envelope.from != from || envelope.to != self.node {
            tracing::warn!(group = %group, from = %from, claimed = %envelope.from, "dropped a message with a forged sender");
            self.metrics.forged_messages += 1;
            return;
        }
        if let Some(g) = self.groups.get_mut(&group) {
            g.tell_what_the_node_heard(&self.node_heard);
            g.replica.handle_message(now(), envelope);
            self.collect(group);
        }
    }

    /// A peer's connection ended (its process stopped or died, most likely): every group it
    /// is a member of suspects it at once rather than after a take-over timeout of silence.
    fn on_peer_lost(&mut self, peer: ReplicaId) {
        self.metrics.peers_lost += 1;
        let ids: Vec<GroupId> = self.groups.keys().copied().collect();
        for id in ids {
            if let Some(g) = self.groups.get_mut(&id) {
                g.replica.handle_peer_lost(now(), peer);
            }
            self.collect(id);
        }
    }

    fn on_request(&mut self, req: Request) {
        self.catch_up_with_catalog();
        match req {
            Request::Submit {
                group,
                command,
                reply,
            } => self.propose(group, app_payload(command), Waiter::Command(reply)),
            Request::Query {
                group,
                query,
                reply,
            } => {
                // A barrier through the log: once applied here, everything acknowledged before
                // the read started is applied here too.
                let barrier = Payload::Command(Command::Barrier.encode());
                self.propose(group, barrier, Waiter::Query(query, reply));
            }
            Request::Barrier { group, reply } => {
                let barrier = Payload::Command(Command::Barrier.encode());
                self.propose(group, barrier, Waiter::Barrier(reply));
            }
            Request::App { group, reply } => {
                // The reader works where it runs: a read (a proof over a long chain) never
                // holds up the event loop.
                let result = match self.groups.get(&group) {
                    Some(g) => Ok((g.host.app(), g.host.applied())),
                    None => Err(self.unavailable(group)),
                };
                let _ = reply.send(result);
            }
            Request::Admin { cmd, reply } => {
                let payload = Payload::Command(Command::Catalog(cmd).encode());
                self.propose(DEFAULT_GROUP, payload, Waiter::Admin(reply));
            }
            Request::Config {
                group,
                change,
                reply,
            } => self.propose(group, Payload::Config(change), Waiter::Config(reply)),
            Request::Metrics { reply } => {
                let _ = reply.send(self.render_metrics());
            }
            Request::Status { reply } => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn status(&self) -> Vec<GroupStatus> {
        let catalog = self.catalog.borrow().clone();
        let named = |id: GroupId| {
            catalog
                .group_by_id(id)
                .map(|g| (g.name.clone(), g.kind.clone()))
                .unwrap_or_default()
        };
        self.groups
            .values()
            .map(|g| {
                let summary = g.host.summary();
                let (name, kind) = named(g.id);
                GroupStatus {
                    group: g.id,
                    name,
                    kind,
                    applied: g.host.applied(),
                    peers_applied: g.replica.peers_applied(),
                    members: g.replica.latest_config().members.iter().copied().collect(),
                    has_quorum: g.replica.has_quorum(),
                    items: summary.items,
                    content_hash: summary.digest,
                    pending: g.replica.pending_proposals(),
                    corrupt: None,
                    rejoining: self.rejoin_note(g),
                    quiet: g.replica.is_quiet(),
                }
            })
            .chain(self.corrupt.iter().map(|(id, e)| {
                let (name, kind) = named(*id);
                GroupStatus {
                    group: *id,
                    name,
                    kind,
                    applied: Slot(0),
                    peers_applied: Slot(0),
                    members: Vec::new(),
                    has_quorum: false,
                    items: 0,
                    content_hash: 0,
                    pending: 0,
                    corrupt: Some(e.clone()),
                    rejoining: None,
                    quiet: false,
                }
            }))
            .collect()
    }

    /// Why `group` cannot serve here: corrupt, or not hosted.
    fn unavailable(&self, group: GroupId) -> RequestError {
        match self.corrupt.get(&group) {
            Some(e) => RequestError::Corrupt(e.clone()),
            None => RequestError::NoGroup(group),
        }
    }

    fn propose(&mut self, group: GroupId, payload: Payload, waiter: Waiter) {
        let unavailable = self.unavailable(group);
        let Some(g) = self.groups.get_mut(&group) else {
            return waiter.fail(unavailable);
        };
        g.tell_what_the_node_heard(&self.node_heard);
        match g.replica.propose(now(), payload) {
            Ok(id) => {
                g.waiting.insert(id, waiter);
            }
            Err(e) => waiter.fail(e.into()),
        }
        self.collect(group);
    }

    /// Moves a group's readies into the current collection.
    ///
    /// A ready's early deliveries (decisions already durable elsewhere, see
    /// [`Ready::early_deliveries`]) are applied and answered here, before its fsync, when no
    /// earlier ready of the group still holds deliveries: a write's answer then waits for
    /// the acceptors' fsync but not for this node's decision record.
    fn collect(&mut self, group: GroupId) {
        // Every input to a replica ends here: the group is looked at again on every turn
        // until `flush_backlogs` finds it has nothing left to do.
        if self.groups.contains_key(&group) {
            self.awake.insert(group);
        }
        while let Some(g) = self.groups.get_mut(&group) {
            let Some(mut ready) = g.replica.poll_ready() else {
                break;
            };
            if g.readies_holding_deliveries == 0 && ready.early_deliveries > 0 {
                let late = ready.deliveries.split_off(ready.early_deliveries);
                for d in std::mem::replace(&mut ready.deliveries, late) {
                    g.apply(&d);
                }
                self.maybe_snapshot(group);
            }
            if let Some(g) = self.groups.get_mut(&group)
                && !ready.deliveries.is_empty()
            {
                g.readies_holding_deliveries += 1;
            }
            self.collecting.push_back((group, ready));
        }
    }

    /// Starts a snapshot of `group` if one is due and every slot the replica has delivered
    /// has been handed to the executor (a later ready may hold deliveries not handed over yet;
    /// a snapshot then would claim slots its state lacks). The copy is taken by an exclusive
    /// job, at exactly that place in the order, and encoded on a blocking thread
    /// (`HostedGroup::snapshot`), so neither the event loop nor the executor waits for a large
    /// state; [`Self::snapshot_encoded`] finishes it.
    fn maybe_snapshot(&mut self, group: GroupId) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        if g.snapshotting
            || g.since_snapshot < self.snapshot_every
            || g.handed_to != g.replica.applied()
            // After a restart in the middle of a slot (a disk-backed application resumed at
            // a command past the slot's first), the state is not that of a slot's start until
            // that slot has been handed over whole.
            || synod_exec::Position::slot(g.handed_to.0) < g.host.resumed_at()
        {
            return;
        }
        g.since_snapshot = 0;
        g.snapshotting = true;
        let (next_slot, core) = g.replica.snapshot_state();
        let done = self.background.clone();
        let handed_to = g.handed_to;
        g.host.snapshot(
            handed_to,
            Box::new(move |app, export| {
                let started = Instant::now();
                let (snapshot, head) = with_head(Snapshot {
                    next_slot,
                    core,
                    app,
                });
                tracing::debug!(
                    group = %group,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    bytes = head.len(),
                    "snapshot encoded"
                );
                let _ = done.send(Background::Checkpointed {
                    group,
                    snapshot,
                    head,
                    export,
                });
            }),
        );
    }

    /// A snapshot finished encoding: the replica compacts its log behind it and it is served
    /// to peers that need it.
    fn snapshot_encoded(
        &mut self,
        group: GroupId,
        snapshot: Arc<Snapshot>,
        head: Bytes,
        export: Option<Arc<dyn crate::host::Export>>,
    ) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        g.snapshotting = false;
        // Keep the log from the slowest member's applied GSN, but no more than
        // `log_retention` slots: a member further behind (down for long) gets this
        // snapshot instead, so one dead node does not make every disk grow.
        let applied = g.replica.applied().0;
        let floor = applied.saturating_sub(self.log_retention);
        let retain = Slot(g.replica.gc_watermark().0.max(floor));
        if g.replica.compact_with(now(), snapshot.clone(), retain) {
            let rest = export.map_or(Rest::Nothing, Rest::Unwritten);
            g.snapshot = Some(Latest {
                snapshot,
                head,
                rest,
            });
            self.metrics.snapshots += 1;
        }
        self.collect(group);
    }

    /// Starts the next commit if none is in flight; releases readies that need no fsync.
    fn pump(&mut self) {
        loop {
            if self.in_flight.is_some() {
                return;
            }
            if self.collecting.is_empty()
                && self.remove_next.is_empty()
                && self.reset_next.is_empty()
            {
                return;
            }
            if self.remove_next.is_empty()
                && self.reset_next.is_empty()
                && self.collecting.iter().all(|(_, r)| r.persist.is_empty())
            {
                let batch = std::mem::take(&mut self.collecting);
                self.release(batch);
                continue;
            }
            let batch = std::mem::take(&mut self.collecting);
            let mut records: BTreeMap<GroupId, Vec<Record>> = BTreeMap::new();
            for (g, r) in &batch {
                records
                    .entry(*g)
                    .or_default()
                    .extend(r.persist.iter().cloned());
            }
            let job = StorageJob::Commit {
                reset: std::mem::take(&mut self.reset_next),
                records: records.into_iter().collect(),
                remove: std::mem::take(&mut self.remove_next),
            };
            if self.storage.send(job).is_err() {
                tracing::error!(node = %self.node, "storage thread is gone");
                return;
            }
            self.in_flight = Some(batch);
            return;
        }
    }

    fn committed(&mut self) {
        if let Some(batch) = self.in_flight.take() {
            self.release(batch);
        }
    }

    /// The batch's records are durable: send, apply, acknowledge.
    fn release(&mut self, batch: VecDeque<(GroupId, Ready)>) {
        for (group, ready) in batch {
            for envelope in ready.messages {
                let to = envelope.to;
                let _ = self.transport.send(to, &Frame::Group { group, envelope });
            }
            let Some(g) = self.groups.get_mut(&group) else {
                continue;
            };
            if !ready.deliveries.is_empty() {
                for d in &ready.deliveries {
                    g.apply(d);
                }
                g.readies_holding_deliveries = g.readies_holding_deliveries.saturating_sub(1);
            }
            self.maybe_snapshot(group);
            let Some(g) = self.groups.get_mut(&group) else {
                continue;
            };
            if let Some(req) = ready.snapshot_needed {
                let stale = !g.staging
                    && g.receiving
                        .as_ref()
                        .is_none_or(|r| r.last.elapsed() > Duration::from_secs(5));
                if stale {
                    tracing::info!(group = %group, from = req.from.0, "fetching a snapshot");
                    g.receiving = None;
                    g.asked = Some(req.from);
                    let ask = Frame::SnapshotRequest {
                        group,
                        min_next_slot: req.min_next_slot.0,
                        offset: 0,
                    };
                    let _ = self.transport.send(req.from, &ask);
                }
            }
            // Neither kind will be delivered here: their clients are told now rather than
            // wait for ever.
            for id in ready.abandoned {
                if let Some(w) = g.waiting.remove(&id) {
                    w.fail(RequestError::Stopped);
                }
            }
            for id in ready.delivered_in_snapshot {
                if let Some(w) = g.waiting.remove(&id) {
                    w.fail(RequestError::OutputUnknown);
                }
            }
            g.replica.handle_persisted(now(), ready.seq);
            self.collect(group);
        }
    }
}

/// The payload that proposes an application's command.
fn app_payload(command: Bytes) -> Payload {
    Payload::Command(Command::App(command).encode())
}
