//! One hosted group (its replica, its state, the clients waiting on it) and the group
//! lifecycle: opening groups at startup, creating and removing them as the catalog says.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use synod_core::{Config, Delivery, DurableState, Payload, ProposalId, Replica, ReplicaId, Slot};
use synod_exec::{Agreed, GroupSpec, StateError, WorkerPool};
use synod_storage::GroupId;
use tokio::sync::{Notify, watch};

use super::snapshot::{Incoming, Latest, Rest, with_head};
use super::{NodeError, RequestError, Runtime, now};
use crate::catalog::{Catalog, GroupInfo};
use crate::host::{Apps, HostedGroup, Open, OpenError, Waiter};

pub(super) struct Group {
    pub(super) id: GroupId,
    pub(super) replica: Replica,
    /// The group's application on its executor (commands run in parallel where their keys do
    /// not conflict), with the deliveries handed over but not admitted yet.
    pub(super) host: Box<dyn HostedGroup>,
    pub(super) waiting: HashMap<ProposalId, Waiter>,
    pub(super) since_snapshot: u64,
    /// The latest snapshot, to serve peers that need it.
    pub(super) snapshot: Option<Latest>,
    /// A snapshot being received.
    pub(super) receiving: Option<Incoming>,
    /// A received snapshot's state is being built off the event loop.
    pub(super) staging: bool,
    /// The peer this node last asked for a snapshot: only its transfer is received.
    pub(super) asked: Option<ReplicaId>,
    /// Deliveries below this GSN are already in the state (an installed snapshot covers them;
    /// readies produced before the install may still carry some).
    pub(super) applied_floor: Slot,
    /// A snapshot of this group is being taken.
    pub(super) snapshotting: bool,
    /// Deliveries below this GSN have been handed to the executor (some may still run: the
    /// host's watermark, `HostedGroup::applied`, says what has finished).
    pub(super) handed_to: Slot,
    /// Readies of this group, collected or committing, whose deliveries wait for their fsync:
    /// while any does, later deliveries wait too (GSN order).
    pub(super) readies_holding_deliveries: usize,
    /// The application's timer (`synod_exec::Timer`) this node last proposed a command for:
    /// its due time and when (this node's clock).
    pub(super) timer_for: Option<(u64, u64)>,
}

/// What the host needs to open a group's application.
pub(super) struct Hosting<'a> {
    pub(super) apps: &'a Apps,
    /// Where groups' directories are (`<data dir>/apps`).
    pub(super) apps_dir: &'a Path,
    pub(super) power_cut_test_mode: bool,
    pub(super) snapshot_every: u64,
    pub(super) pool: &'a WorkerPool,
    pub(super) capacity: usize,
    pub(super) progress: Arc<Notify>,
}

impl Group {
    /// Whether the event loop must look at this group on every turn: its replica is awake,
    /// its executor runs something, or its application has a timer set.
    pub(super) fn needs_turns(&self) -> bool {
        !self.replica.is_quiet() || self.host.backlog() > 0 || self.host.timer().is_some()
    }

    /// Passes on to a quiet replica when this node last heard each peer (see `node_heard`),
    /// before an input that may wake it: it heard nothing itself while quiet.
    pub(super) fn tell_what_the_node_heard(
        &mut self,
        heard: &BTreeMap<ReplicaId, synod_core::Time>,
    ) {
        if self.replica.is_quiet() {
            for (peer, at) in heard {
                self.replica.heard_from(*peer, *at);
            }
        }
    }

    /// Opens a group running an application of `kind` from what its storage recovered.
    /// `catalog` is the default group's publisher (with the catalog of a new cluster), `None`
    /// for other groups.
    pub(super) fn open(
        spec: &GroupSpec,
        kind: &str,
        opts: synod_core::Options,
        state: DurableState,
        catalog: Option<watch::Sender<Arc<Catalog>>>,
        hosting: &Hosting<'_>,
    ) -> Result<Group, NodeError> {
        let id = spec.id;
        // The snapshot and its stream (served to peers) share the application state.
        let mut state = state;
        let latest_snapshot = state
            .snapshot
            .take()
            .map(|s| with_head(Arc::unwrap_or_clone(s)));
        state.snapshot = latest_snapshot.as_ref().map(|(s, _)| s.clone());
        let snapshot_at = latest_snapshot
            .as_ref()
            .map_or(Slot(0), |(s, _)| s.next_slot);
        let dir = app_dir(hosting.apps_dir, id);
        if state.fence.is_some() && state.snapshot.is_none() {
            // Wiped (it rejoins from its peers): nothing of its old state may remain.
            remove_app_dir(&dir);
        }
        let progress = hosting.progress.clone();
        let host = hosting
            .apps
            .open(
                kind,
                Open {
                    spec,
                    state: state
                        .snapshot
                        .as_ref()
                        .map(|s| &s.app[..])
                        .filter(|a| !a.is_empty()),
                    next_gsn: snapshot_at,
                    pool: hosting.pool,
                    capacity: hosting.capacity,
                    progress: Arc::new(move || progress.notify_one()),
                    catalog,
                    dir: synod_exec::AppDir {
                        path: dir,
                        power_cut_test_mode: hosting.power_cut_test_mode,
                    },
                },
            )
            .map_err(|e| match e {
                OpenError::UnknownKind(kind) => NodeError::UnknownKind { group: id, kind },
                OpenError::State(e @ StateError::Format { .. }) => NodeError::SnapshotFormat {
                    group: id,
                    detail: e.to_string(),
                },
                OpenError::State(e @ (StateError::Undecodable(_) | StateError::Behind { .. })) => {
                    NodeError::Snapshot {
                        group: id,
                        detail: e.to_string(),
                    }
                }
                OpenError::State(StateError::Store(detail)) => {
                    NodeError::AppStore { group: id, detail }
                }
            })?;
        // A disk-backed application resumes where its store is, at or past the snapshot.
        let resumed_at = Slot(host.resumed_at().gsn);
        let on_disk = host.on_disk();
        Ok(Group {
            id,
            replica: Replica::recover(opts, now(), state),
            waiting: HashMap::new(),
            // A disk-backed application's snapshot cannot be served after a restart (the
            // store has moved past it): the next checkpoint is taken as soon as it can be.
            since_snapshot: if on_disk { hosting.snapshot_every } else { 0 },
            snapshot: latest_snapshot.map(|(snapshot, head)| Latest {
                snapshot,
                head,
                rest: if on_disk {
                    Rest::Unavailable
                } else {
                    Rest::Nothing
                },
            }),
            host,
            receiving: None,
            staging: false,
            asked: None,
            applied_floor: resumed_at,
            snapshotting: false,
            handed_to: resumed_at,
            readies_holding_deliveries: 0,
            timer_for: None,
        })
    }

    /// Hands a delivery's commands to the application (behind earlier ones); answers
    /// configuration changes, which touch no application state, at once.
    pub(super) fn apply(&mut self, d: &Delivery) {
        if d.gsn < self.applied_floor {
            self.handed_to = self.handed_to.max(d.gsn.next());
            // An installed snapshot already holds this slot's effects; its clients cannot be
            // given their outputs, only told the command was applied.
            for p in &d.proposals {
                if let Some(w) = self.waiting.remove(&p.id) {
                    w.fail(RequestError::OutputUnknown);
                }
            }
            return;
        }
        self.handed_to = d.gsn.next();
        self.since_snapshot += 1;
        let mut commands = Vec::with_capacity(d.proposals.len());
        for p in &d.proposals {
            match &p.payload {
                Payload::Command(bytes) => {
                    commands.push((bytes.clone(), self.waiting.remove(&p.id)));
                }
                Payload::Config(_) => {
                    // Numbered with the commands (every node numbers them alike), though it
                    // touches no application state.
                    commands.push((Bytes::new(), None));
                    if let Some(Waiter::Config(reply)) = self.waiting.remove(&p.id) {
                        let outcome = d.config.iter().find(|o| o.id == p.id);
                        let result = match outcome.map(|o| o.result.clone()) {
                            Some(Ok(from)) => Ok(from),
                            Some(Err(e)) => Err(RequestError::Config(e.to_string())),
                            None => Err(RequestError::Config("no outcome".into())),
                        };
                        let _ = reply.send(result);
                    }
                }
            }
        }
        let at = Agreed {
            gsn: d.gsn.0,
            index: 0,
            time_ns: d.time.0,
        };
        self.host.deliver(at, commands, d.gsn.next());
    }

    /// Stops serving: every waiting client learns the outcome is unknown.
    pub(super) fn close(&mut self) {
        for (_, w) in self.waiting.drain() {
            w.fail(RequestError::Stopped);
        }
        self.host.close();
    }
}

impl Runtime {
    /// Opens group `info` (not the default group) from `state` and hosts it.
    ///
    /// # Errors
    /// Its state cannot be used (a snapshot whose application state does not decode).
    pub(super) fn host(&mut self, info: &GroupInfo, state: DurableState) -> Result<(), NodeError> {
        let opts = self.options(info.id, &info.genesis);
        let group = Group::open(&info.spec(), &info.kind, opts, state, None, &self.hosting())?;
        self.groups.insert(info.id, group);
        self.awake.insert(info.id);
        self.collect(info.id);
        Ok(())
    }

    /// What opening a group's application takes.
    pub(super) fn hosting(&self) -> Hosting<'_> {
        Hosting {
            apps: &self.apps,
            apps_dir: &self.apps_dir,
            power_cut_test_mode: self.power_cut_test_mode,
            snapshot_every: self.snapshot_every,
            pool: &self.pool,
            capacity: self.executor_capacity,
            progress: self.progress.clone(),
        }
    }

    /// Replica options for group `group`, whose first configuration has `genesis` as members.
    /// Every group but the default one goes quiet when idle: the default group's heartbeats
    /// are how this node keeps hearing its peers (`node_heard`), which it tells a quiet
    /// group's replica before waking it.
    pub(super) fn options(&self, group: GroupId, genesis: &[ReplicaId]) -> synod_core::Options {
        let mut opts =
            synod_core::Options::new(self.node, Config::majority(genesis.iter().copied()));
        opts.seed = u64::from(self.node.0) ^ now().0;
        opts.takeover_timeout_ns = self.timing.takeover_ms * 1_000_000;
        opts.heartbeat_interval_ns = self.timing.heartbeat_ms * 1_000_000;
        opts.retransmit_interval_ns = 2 * self.timing.heartbeat_ms * 1_000_000;
        opts.liveness_timeout_ns = self.timing.liveness_ms * 1_000_000;
        opts.quiesce = group != super::DEFAULT_GROUP;
        opts
    }

    /// Makes the hosted groups and known peers match the catalog: opens groups this node
    /// hosts but lacks (from storage if it has their log), removes groups the catalog removed,
    /// dials nodes registered through the log. Idempotent.
    pub(super) fn reconcile(&mut self) {
        if !self.groups.contains_key(&super::DEFAULT_GROUP) {
            return;
        }
        let catalog = self.catalog.borrow_and_update().clone();
        for (node, addr) in catalog.nodes() {
            let Ok(addr) = addr.parse::<synod_transport::PeerAddr>() else {
                continue;
            };
            if *node != self.node && self.known_peers.get(node) != Some(&addr) {
                tracing::info!(peer = %node, %addr, "dialing a node registered in the catalog");
                self.transport.add_peer(*node, addr.clone());
                self.known_peers.insert(*node, addr);
            }
        }
        for info in catalog.groups() {
            // A quarantined copy (its application failed) is never replaced by a fresh replica
            // here: a fresh acceptor would have forgotten promises it made, which is unsafe
            // under the same node id. Repairs go through a fence (`repair.rs`).
            if info.id == super::DEFAULT_GROUP
                || self.groups.contains_key(&info.id)
                || self.corrupt.contains_key(&info.id)
                || !info.hosts.contains(&self.node)
            {
                continue;
            }
            let state = match self.dormant.remove(&info.id) {
                Some(state) => state,
                None => self.fresh_state(info.id, info.created_gsn),
            };
            match self.host(info, state) {
                Ok(()) => tracing::info!(group = %info.id, name = %info.name, "hosting group"),
                // Another version's snapshot, a kind of application this binary lacks, or an
                // application store that cannot be opened (another version's, permissions): the
                // data may be sound, and every node may fail alike, so nothing is wiped; the
                // group is not served here until the cause is fixed.
                Err(
                    e @ (NodeError::SnapshotFormat { .. }
                    | NodeError::UnknownKind { .. }
                    | NodeError::AppStore { .. }),
                ) => {
                    tracing::error!(group = %info.id, error = %e, "group not served");
                    self.corrupt.insert(info.id, e.to_string());
                }
                // Its state cannot be used (a snapshot that does not decode): never reopened
                // as a fresh replica (it would have forgotten its votes), but wiped and
                // rejoined behind a fence.
                Err(e) => self.open_fenced(info, e.to_string()),
            }
        }
        let removed: Vec<GroupId> = self
            .groups
            .keys()
            .chain(self.dormant.keys())
            .chain(self.corrupt.keys())
            .copied()
            .filter(|id| catalog.is_removed(*id))
            .collect();
        for id in removed {
            tracing::info!(group = %id, "removing group (removed from the catalog)");
            self.dormant.remove(&id);
            self.corrupt.remove(&id);
            if let Some(mut g) = self.groups.remove(&id) {
                g.close();
            }
            remove_app_dir(&app_dir(&self.apps_dir, id));
            self.collecting.retain(|(g, _)| *g != id);
            self.remove_next.push(id);
        }
    }
}

/// Groups found in storage other than the default one, waiting for the catalog to claim them
/// (at startup the catalog may not yet have replayed their creation).
pub(super) type Dormant = BTreeMap<GroupId, DurableState>;

/// Group `id`'s directory on this node.
pub(super) fn app_dir(apps_dir: &Path, id: GroupId) -> PathBuf {
    apps_dir.join(id.0.to_string())
}

/// Removes a group's directory (an application's store), logging what cannot be removed.
pub(super) fn remove_app_dir(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => tracing::info!(dir = %dir.display(), "removed a group's directory"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot remove a group's directory")
        }
    }
}
