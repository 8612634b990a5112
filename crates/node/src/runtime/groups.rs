//! One hosted group (its replica, its state, the clients waiting on it) and the group
//! lifecycle: opening groups at startup, creating and removing them as the catalog says.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use synod_core::{
    Config, Delivery, DurableState, Payload, ProposalId, Replica, ReplicaId, Slot, Snapshot,
};
use synod_exec::{Executor, Job, Reply, WorkerPool};
use synod_storage::GroupId;
use tokio::sync::{Notify, oneshot, watch};

use super::snapshot::{Incoming, with_encoding};
use super::{NodeError, RequestError, Runtime, WriteResult, now};
use crate::app::{
    AppDecodeError, AppState, GroupApp, GroupCommand, GroupOutput, Query, ReadResult,
};
use crate::catalog::{AdminOutput, Catalog, Command, GroupInfo};

/// A client waiting for its proposal to be applied.
pub(super) enum Waiter {
    Write(oneshot::Sender<Result<WriteResult, RequestError>>),
    Read(Query, oneshot::Sender<Result<ReadResult, RequestError>>),
    Admin(oneshot::Sender<Result<(Slot, AdminOutput), RequestError>>),
    Config(oneshot::Sender<Result<Slot, RequestError>>),
    /// A ledger envelope: the GSN it was ordered at and the blocks it cut.
    Ledger(oneshot::Sender<Result<(Slot, Vec<u64>), RequestError>>),
    /// A tick this node proposed for its channel: nobody waits.
    Tick,
    /// A notarisation: the GSN it was ordered at and the notary's answer.
    Notary(oneshot::Sender<Result<(Slot, synod_ledger::NotaryOutcome), RequestError>>),
}

impl Waiter {
    pub(super) fn fail(self, e: RequestError) {
        match self {
            Waiter::Write(reply) => drop(reply.send(Err(e))),
            Waiter::Read(_, reply) => drop(reply.send(Err(e))),
            Waiter::Admin(reply) => drop(reply.send(Err(e))),
            Waiter::Config(reply) => drop(reply.send(Err(e))),
            Waiter::Ledger(reply) => drop(reply.send(Err(e))),
            Waiter::Notary(reply) => drop(reply.send(Err(e))),
            Waiter::Tick => {}
        }
    }
}

/// A delivery's jobs not yet admitted by the executor (it was full), and the GSN its last job
/// completes.
pub(super) struct Backlogged {
    pub(super) jobs: Vec<Job<GroupApp>>,
    pub(super) next_gsn: Slot,
}

pub(super) struct Group {
    pub(super) id: u32,
    pub(super) replica: Replica,
    /// Runs the group's agreed commands (in parallel where their keys do not conflict).
    pub(super) exec: Executor<GroupApp>,
    /// Deliveries handed over but not admitted yet, in GSN order: the event loop admits them
    /// before it does anything else, so a slow application holds back the agreement instead
    /// of queueing without bound.
    pub(super) backlog: VecDeque<Backlogged>,
    pub(super) waiting: HashMap<ProposalId, Waiter>,
    pub(super) since_snapshot: u64,
    /// The latest snapshot and its encoding, to serve peers that need it.
    pub(super) snapshot: Option<(Arc<Snapshot>, Bytes)>,
    /// A snapshot being received.
    pub(super) receiving: Option<Incoming>,
    /// Deliveries below this GSN are already in the state (an installed snapshot covers them;
    /// readies produced before the install may still carry some).
    pub(super) applied_floor: Slot,
    /// A snapshot of this group is being taken.
    pub(super) snapshotting: bool,
    /// Deliveries below this GSN have been handed to the executor (some may still run: the
    /// executor's watermark, [`Executor::applied`], says what has finished).
    pub(super) handed_to: Slot,
    /// Readies of this group, collected or committing, whose deliveries wait for their fsync:
    /// while any does, later deliveries wait too (GSN order).
    pub(super) readies_holding_deliveries: usize,
    /// A ledger channel: the agreed time its pending batch falls due for which this node
    /// last proposed a tick, and when (its clock).
    pub(super) tick_for: Option<(u64, u64)>,
    /// Numbers the signature checks of ledger envelopes, so each envelope's command waits for
    /// its own check (`LockKey::Signature`).
    pub(super) checks: u64,
}

impl Group {
    /// Opens a group from what its storage recovered. `catalog` is the default group's
    /// publisher (with the catalog of a new cluster), `None` for other groups.
    #[allow(clippy::too_many_arguments)] // the executor's pool, capacity and wake-up travel together
    pub(super) fn open(
        id: u32,
        opts: synod_core::Options,
        state: DurableState,
        catalog: Option<watch::Sender<Arc<Catalog>>>,
        pool: &WorkerPool,
        capacity: usize,
        progress: Arc<Notify>,
        info: Option<&GroupInfo>,
    ) -> Result<Group, NodeError> {
        // The snapshot and its encoding (served to peers) share the application state.
        let mut state = state;
        let latest_snapshot = state
            .snapshot
            .take()
            .map(|s| with_encoding(Arc::unwrap_or_clone(s)));
        state.snapshot = latest_snapshot.as_ref().map(|(s, _)| s.clone());
        let app = match &state.snapshot {
            Some(s) if !s.app.is_empty() => AppState::decode(&s.app).map_err(|e| match e {
                AppDecodeError::Format(_) => NodeError::SnapshotFormat {
                    group: id,
                    detail: e.to_string(),
                },
                AppDecodeError::Undecodable(detail) => NodeError::Snapshot { group: id, detail },
            })?,
            _ => AppState::fresh(info),
        };
        let handed_to = latest_snapshot
            .as_ref()
            .map_or(Slot(0), |(s, _)| s.next_slot);
        let exec =
            Executor::with_progress(GroupApp::new(app, catalog), pool, capacity, move || {
                progress.notify_one()
            });
        exec.mark_applied(handed_to.0);
        Ok(Group {
            id,
            replica: Replica::recover(opts, now(), state),
            exec,
            backlog: VecDeque::new(),
            waiting: HashMap::new(),
            since_snapshot: 0,
            snapshot: latest_snapshot,
            receiving: None,
            applied_floor: Slot(0),
            snapshotting: false,
            handed_to,
            readies_holding_deliveries: 0,
            tick_for: None,
            checks: 0,
        })
    }

    /// Hands a delivery's commands to the executor (or its backlog, behind earlier ones);
    /// answers configuration changes, which touch no application state, at once.
    pub(super) fn apply(&mut self, d: &Delivery) {
        if d.gsn < self.applied_floor {
            // An installed snapshot already holds this slot's effects; its clients cannot be
            // given their outputs, only told the outcome is unknown.
            for p in &d.proposals {
                if let Some(w) = self.waiting.remove(&p.id) {
                    w.fail(RequestError::Stopped);
                }
            }
            return;
        }
        self.handed_to = d.gsn.next();
        self.since_snapshot += 1;
        let mut jobs = Vec::new();
        for p in &d.proposals {
            match &p.payload {
                Payload::Command(bytes) => self.jobs(d.gsn, d.time, p.id, bytes, &mut jobs),
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
        self.backlog.push_back(Backlogged {
            jobs,
            next_gsn: d.gsn.next(),
        });
        // A failed executor stays failed: the event loop's own flush reports it.
        let _ = self.flush();
    }

    /// Puts a job in the order behind everything handed over so far.
    pub(super) fn push_job(&mut self, job: Job<GroupApp>) {
        self.backlog.push_back(Backlogged {
            jobs: vec![job],
            next_gsn: self.handed_to,
        });
        let _ = self.flush();
    }

    /// Admits backlogged jobs while the executor has room; true when the backlog is empty.
    /// An executor that failed (the application panicked) leaves the group unable to go on:
    /// the caller quarantines it.
    pub(super) fn flush(&mut self) -> Result<bool, String> {
        while let Some(front) = self.backlog.front_mut() {
            let rest = self.exec.try_submit_many(std::mem::take(&mut front.jobs))?;
            if !rest.is_empty() {
                front.jobs = rest;
                return Ok(false);
            }
            self.exec.mark_applied(front.next_gsn.0);
            self.backlog.pop_front();
        }
        Ok(true)
    }

    /// Adds the executor jobs for a command delivered at `gsn` to `jobs`: the command,
    /// carrying the answer to the client waiting on it here (if any), and before a ledger
    /// envelope its signature check (run in parallel, see `GroupCommand::LedgerCheck`).
    fn jobs(
        &mut self,
        gsn: Slot,
        time: synod_core::Time,
        id: ProposalId,
        bytes: &[u8],
        jobs: &mut Vec<Job<GroupApp>>,
    ) {
        let waiter = self.waiting.remove(&id);
        // Undecodable commands are skipped the same way on every node.
        let Ok(cmd) = postcard::from_bytes::<Command>(bytes) else {
            if let Some(w) = waiter {
                w.fail(RequestError::Stopped);
            }
            return;
        };
        let check = self.checks;
        if let Command::Ledger(envelope) = &cmd {
            self.checks += 1;
            jobs.push(Job::Command {
                gsn: gsn.0,
                cmd: GroupCommand::LedgerCheck {
                    envelope: envelope.clone(),
                    check,
                },
                reply: None,
            });
        }
        let (cmd, reply): (GroupCommand, Option<Reply<GroupOutput>>) = match (cmd, waiter) {
            (Command::Kv(req), Some(Waiter::Read(query, reply))) if req.token.is_none() => (
                GroupCommand::Read(query),
                Some(Box::new(move |out| {
                    if let GroupOutput::Read(r) = out {
                        let _ = reply.send(Ok(r));
                    }
                })),
            ),
            (Command::Kv(req), Some(Waiter::Write(reply))) => (
                GroupCommand::Kv(req),
                Some(Box::new(move |out| {
                    if let GroupOutput::Kv(at, output) = out {
                        let _ = reply.send(Ok(WriteResult {
                            gsn: Slot(at),
                            output,
                        }));
                    }
                })),
            ),
            (Command::Admin(cmd), Some(Waiter::Admin(reply))) => (
                GroupCommand::Admin(cmd),
                Some(Box::new(move |out| {
                    if let GroupOutput::Admin(output) = out {
                        let _ = reply.send(Ok((gsn, output)));
                    }
                })),
            ),
            (Command::Ledger(envelope), Some(Waiter::Ledger(reply))) => {
                let group = self.id;
                (
                    GroupCommand::Ledger {
                        envelope,
                        time: time.0,
                        check,
                    },
                    Some(Box::new(move |out| {
                        let result = match out {
                            GroupOutput::Ledger(Some(blocks)) => Ok((gsn, blocks)),
                            // Not a ledger channel: ordered, and ignored everywhere.
                            _ => Err(RequestError::NoGroup(group)),
                        };
                        let _ = reply.send(result);
                    })),
                )
            }
            (Command::Notarise(req), Some(Waiter::Notary(reply))) => {
                let group = self.id;
                (
                    GroupCommand::Notarise { req, time: time.0 },
                    Some(Box::new(move |out| {
                        let result = match out {
                            GroupOutput::Notary(Some(outcome)) => Ok((gsn, outcome)),
                            _ => Err(RequestError::NoGroup(group)),
                        };
                        let _ = reply.send(result);
                    })),
                )
            }
            (cmd, other) => {
                if let Some(w) = other {
                    w.fail(RequestError::Stopped);
                }
                let cmd = match cmd {
                    Command::Kv(req) => GroupCommand::Kv(req),
                    Command::Admin(cmd) => GroupCommand::Admin(cmd),
                    Command::Ledger(envelope) => GroupCommand::Ledger {
                        envelope,
                        time: time.0,
                        check,
                    },
                    Command::Notarise(req) => GroupCommand::Notarise { req, time: time.0 },
                };
                (cmd, None)
            }
        };
        jobs.push(Job::Command {
            gsn: gsn.0,
            cmd,
            reply,
        });
    }

    /// Stops serving: every waiting client learns the outcome is unknown.
    pub(super) fn close(&mut self) {
        for (_, w) in self.waiting.drain() {
            w.fail(RequestError::Stopped);
        }
        self.backlog.clear();
    }
}

impl Runtime {
    /// Opens group `info` (not the default group) from `state` and hosts it.
    ///
    /// # Errors
    /// Its state cannot be used (a snapshot whose application state does not decode).
    pub(super) fn host(&mut self, info: &GroupInfo, state: DurableState) -> Result<(), NodeError> {
        let opts = self.options(&info.genesis);
        let group = Group::open(
            info.id,
            opts,
            state,
            None,
            &self.pool,
            self.executor_capacity,
            self.progress.clone(),
            Some(info),
        )?;
        self.groups.insert(info.id, group);
        self.collect(info.id);
        Ok(())
    }

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
        if !self.groups.contains_key(&super::DEFAULT_GROUP) {
            return;
        }
        let catalog = self.catalog.borrow_and_update().clone();
        for (node, addr) in catalog.nodes() {
            let Ok(addr) = addr.parse() else { continue };
            if *node != self.node && self.known_peers.get(node) != Some(&addr) {
                tracing::info!(peer = node, %addr, "dialing a node registered in the catalog");
                self.transport.add_peer(*node, addr);
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
                Ok(()) => tracing::info!(group = info.id, name = %info.name, "hosting group"),
                // Another version's snapshot: the data may be sound, so nothing is wiped; the
                // group is not served here until the matching version runs.
                Err(e @ NodeError::SnapshotFormat { .. }) => {
                    tracing::error!(group = info.id, error = %e, "group not served");
                    self.corrupt.insert(info.id, e.to_string());
                }
                // Its state cannot be used (a snapshot that does not decode): never reopened
                // as a fresh replica (it would have forgotten its votes), but wiped and
                // rejoined behind a fence.
                Err(e) => self.open_fenced(info, e.to_string()),
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
