//! One hosted group (its replica, its state, the clients waiting on it) and the group
//! lifecycle: opening groups at startup, creating and removing them as the catalog says.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use synod_core::{
    Config, Delivery, DurableState, Payload, ProposalId, Replica, ReplicaId, Slot, Snapshot,
};
use synod_storage::GroupId;
use tokio::sync::{oneshot, watch};

use super::snapshot::{Incoming, encode_snapshot};
use super::{NodeError, Query, ReadResult, RequestError, Runtime, WriteResult, now};
use crate::catalog::{AdminOutput, Catalog, Command};
use crate::kv::Kv;

/// A client waiting for its proposal to be applied.
pub(super) enum Waiter {
    Write(oneshot::Sender<Result<WriteResult, RequestError>>),
    Read(Query, oneshot::Sender<Result<ReadResult, RequestError>>),
    Admin(oneshot::Sender<Result<(Slot, AdminOutput), RequestError>>),
    Config(oneshot::Sender<Result<Slot, RequestError>>),
}

impl Waiter {
    pub(super) fn fail(self, e: RequestError) {
        match self {
            Waiter::Write(reply) => drop(reply.send(Err(e))),
            Waiter::Read(_, reply) => drop(reply.send(Err(e))),
            Waiter::Admin(reply) => drop(reply.send(Err(e))),
            Waiter::Config(reply) => drop(reply.send(Err(e))),
        }
    }
}

/// What a group's snapshot carries: the key-value store, and in the default group the catalog.
#[derive(Serialize, Deserialize)]
pub(super) struct AppState {
    kv: Kv,
    catalog: Option<Catalog>,
}

impl AppState {
    /// The encoding a snapshot carries.
    pub(super) fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_stdvec(self).expect("encoding into a Vec cannot fail"))
    }
}

pub(super) struct Group {
    pub(super) id: u32,
    pub(super) replica: Replica,
    pub(super) kv: Kv,
    /// The cluster catalog (the default group only), and where to publish its changes.
    pub(super) catalog: Option<(Catalog, watch::Sender<Arc<Catalog>>)>,
    /// Set when an applied command changed the catalog; the runtime then reconciles.
    pub(super) catalog_changed: bool,
    pub(super) waiting: HashMap<ProposalId, Waiter>,
    pub(super) since_snapshot: u64,
    /// The latest snapshot and its encoding, to serve peers that need it.
    pub(super) snapshot: Option<(Arc<Snapshot>, Bytes)>,
    /// A snapshot being received.
    pub(super) receiving: Option<Incoming>,
    /// Deliveries below this GSN are already in the state (an installed snapshot covers them;
    /// readies produced before the install may still carry some).
    pub(super) applied_floor: Slot,
    /// A snapshot of this group is being encoded on another thread.
    pub(super) snapshotting: bool,
    /// The state reflects exactly the slots below this.
    pub(super) applied_to: Slot,
    /// Readies of this group, collected or committing, whose deliveries wait for their fsync:
    /// while any does, later deliveries wait too (GSN order).
    pub(super) readies_holding_deliveries: usize,
}

impl Group {
    /// Opens a group from what its storage recovered. `catalog` is the default group's
    /// publisher (with the catalog of a new cluster), `None` for other groups.
    pub(super) fn open(
        id: u32,
        opts: synod_core::Options,
        state: DurableState,
        catalog: Option<(Catalog, watch::Sender<Arc<Catalog>>)>,
    ) -> Result<Group, NodeError> {
        let latest_snapshot = state.snapshot.clone();
        let (kv, catalog) = match &state.snapshot {
            Some(s) if !s.app.is_empty() => {
                let app = decode_state(&s.app)
                    .map_err(|detail| NodeError::Snapshot { group: id, detail })?;
                let catalog = catalog.map(|(fresh, tx)| (app.catalog.unwrap_or(fresh), tx));
                (app.kv, catalog)
            }
            _ => (Kv::default(), catalog),
        };
        if let Some((c, tx)) = &catalog {
            tx.send_replace(Arc::new(c.clone()));
        }
        let applied_to = latest_snapshot.as_ref().map_or(Slot(0), |s| s.next_slot);
        Ok(Group {
            id,
            replica: Replica::recover(opts, now(), state),
            kv,
            catalog,
            catalog_changed: false,
            waiting: HashMap::new(),
            since_snapshot: 0,
            snapshot: latest_snapshot.map(|s| {
                let bytes = encode_snapshot(&s);
                (s, bytes)
            }),
            receiving: None,
            applied_floor: Slot(0),
            snapshotting: false,
            applied_to,
            readies_holding_deliveries: 0,
        })
    }

    /// A copy of the group's application state for a snapshot: O(1) for the store, whose
    /// collections share structure; the catalog is small.
    pub(super) fn state_copy(&self) -> AppState {
        AppState {
            kv: self.kv.clone(),
            catalog: self.catalog.as_ref().map(|(c, _)| c.clone()),
        }
    }

    /// Replaces the application state with a snapshot's.
    pub(super) fn restore_state(&mut self, app: AppState) {
        self.kv = app.kv;
        if let (Some((mine, tx)), Some(theirs)) = (&mut self.catalog, app.catalog) {
            *mine = theirs;
            tx.send_replace(Arc::new(mine.clone()));
            self.catalog_changed = true;
        }
    }

    pub(super) fn apply(&mut self, d: &Delivery) {
        if d.gsn < self.applied_floor {
            return;
        }
        self.applied_to = d.gsn.next();
        self.since_snapshot += 1;
        for p in &d.proposals {
            match &p.payload {
                Payload::Command(bytes) => self.apply_command(d.gsn, p.id, bytes),
                Payload::Config(_) => {
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
    }

    fn apply_command(&mut self, gsn: Slot, id: ProposalId, bytes: &[u8]) {
        // Undecodable commands are skipped the same way on every node.
        let Ok(cmd) = postcard::from_bytes::<Command>(bytes) else {
            return;
        };
        match cmd {
            Command::Kv(req) => {
                let (at, output) = self.kv.apply_request(gsn.0, &req);
                match self.waiting.remove(&id) {
                    Some(Waiter::Write(reply)) => {
                        let _ = reply.send(Ok(WriteResult {
                            gsn: Slot(at),
                            output,
                        }));
                    }
                    Some(Waiter::Read(query, reply)) => {
                        let _ = reply.send(Ok(query.run(gsn.next(), &self.kv)));
                    }
                    Some(other) => other.fail(RequestError::Stopped),
                    None => {}
                }
            }
            Command::Admin(cmd) => {
                let output = match &mut self.catalog {
                    Some((catalog, tx)) => {
                        let output = catalog.apply(gsn.0, &cmd);
                        if !matches!(output, AdminOutput::Refused(_)) {
                            // Published before the client hears back, so a client that reads
                            // the catalog after its change was acknowledged sees it.
                            tx.send_replace(Arc::new(catalog.clone()));
                            self.catalog_changed = true;
                        }
                        output
                    }
                    None => AdminOutput::Refused("catalog changes go to the default group".into()),
                };
                if let Some(w) = self.waiting.remove(&id) {
                    match w {
                        Waiter::Admin(reply) => drop(reply.send(Ok((gsn, output)))),
                        other => other.fail(RequestError::Stopped),
                    }
                }
            }
        }
    }

    /// Stops serving: every waiting client learns the outcome is unknown.
    pub(super) fn close(&mut self) {
        for (_, w) in self.waiting.drain() {
            w.fail(RequestError::Stopped);
        }
    }
}

/// Decodes a snapshot's application state.
pub(super) fn decode_state(bytes: &[u8]) -> Result<AppState, String> {
    postcard::from_bytes(bytes).map_err(|e| e.to_string())
}

impl Runtime {
    /// Replica options for a group whose first configuration has `genesis` as members.
    pub(super) fn options(&self, genesis: &[u16]) -> synod_core::Options {
        let mut opts = synod_core::Options::new(
            ReplicaId(self.node),
            Config::majority(genesis.iter().map(|m| ReplicaId(*m))),
        );
        opts.seed = u64::from(self.node) ^ now().0;
        opts.takeover_timeout_ns = self.timing.takeover_ms * 1_000_000;
        opts.heartbeat_interval_ns = self.timing.heartbeat_ms * 1_000_000;
        opts.retransmit_interval_ns = 2 * self.timing.heartbeat_ms * 1_000_000;
        opts.liveness_timeout_ns = self.timing.liveness_ms * 1_000_000;
        opts
    }

    /// Makes the hosted groups and known peers match the catalog: opens groups this node
    /// hosts but lacks (from storage if it has their log), removes groups the catalog removed,
    /// dials nodes registered through the log. Idempotent.
    pub(super) fn reconcile(&mut self) {
        let Some(catalog) = self
            .groups
            .get(&super::DEFAULT_GROUP)
            .and_then(|g| g.catalog.as_ref())
            .map(|(c, _)| c.clone())
        else {
            return;
        };
        for (node, addr) in catalog.nodes() {
            let Ok(addr) = addr.parse() else { continue };
            if *node != self.node && self.known_peers.get(node) != Some(&addr) {
                tracing::info!(peer = node, %addr, "dialing a node registered in the catalog");
                self.transport.add_peer(*node, addr);
                self.known_peers.insert(*node, addr);
            }
        }
        for info in catalog.groups() {
            // A corrupt copy is never replaced by a fresh replica here: a fresh acceptor would
            // have forgotten promises it made, which is unsafe under the same node id.
            if info.id == super::DEFAULT_GROUP
                || self.groups.contains_key(&info.id)
                || self.corrupt.contains_key(&info.id)
                || !info.hosts.contains(&self.node)
            {
                continue;
            }
            let state = self.dormant.remove(&info.id).unwrap_or_default();
            let opts = self.options(&info.genesis);
            match Group::open(info.id, opts, state, None) {
                Ok(g) => {
                    tracing::info!(group = info.id, name = %info.name, "hosting group");
                    self.groups.insert(info.id, g);
                    self.collect(info.id);
                }
                // Never retried with a fresh replica (it would have forgotten its votes):
                // quarantined like a corrupt log.
                Err(e) => {
                    tracing::error!(group = info.id, error = %e, "group quarantined: cannot open it");
                    self.corrupt.insert(info.id, e.to_string());
                }
            }
        }
        let removed: Vec<u32> = self
            .groups
            .keys()
            .chain(self.dormant.keys())
            .chain(self.corrupt.keys())
            .copied()
            .filter(|id| catalog.is_removed(*id))
            .collect();
        for id in removed {
            tracing::info!(group = id, "removing group (removed from the catalog)");
            self.dormant.remove(&id);
            self.corrupt.remove(&id);
            if let Some(mut g) = self.groups.remove(&id) {
                g.close();
            }
            self.collecting.retain(|(g, _)| *g != id);
            self.remove_next.push(GroupId(id));
        }
    }
}

/// Groups found in storage other than the default one, waiting for the catalog to claim them
/// (at startup the catalog may not yet have replayed their creation).
pub(super) type Dormant = BTreeMap<u32, DurableState>;
