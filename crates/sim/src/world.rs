//! The simulated world: replicas, a lossy network, disks that lose what was not fsynced, a
//! clock, clients and a fault schedule, all driven from one seed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use synod_core::{
    Config, ConfigChange, Delivery, DurableState, Envelope, GroupParams, Message, Options, Payload,
    ProposalId, QuorumPolicy, Ready, Record, Replica, ReplicaId, Slot, Snapshot, SnapshotRequest,
    SunRole, SunSchedule, SunShift, Time,
};

use crate::checker::{AppState, Checker, Violation};
use crate::swarm::Scenario;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
/// Simulated wall clock starts at a fixed day (2026-01-01) so follow-the-sun has a time of day.
const EPOCH: u64 = 1_767_225_600 * 1_000_000_000;

#[derive(Debug)]
enum Kind {
    Deliver(Envelope),
    Timer(ReplicaId, u64),
    FsyncDone(ReplicaId, u64),
    Client,
    FaultTick,
    Restart(ReplicaId),
    Resume(ReplicaId),
    Heal(Vec<(ReplicaId, ReplicaId)>),
    SnapshotArrive {
        to: ReplicaId,
        req: SnapshotRequest,
        incarnation: u64,
    },
}

#[derive(Debug)]
struct Event {
    at: Time,
    seq: u64,
    kind: Kind,
}
impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// A ready whose records are not yet durable.
struct Pending {
    seq: u64,
    has_records: bool,
    messages: Vec<Envelope>,
    deliveries: Vec<Delivery>,
    snapshot_needed: Option<SnapshotRequest>,
    abandoned: Vec<ProposalId>,
    proposals: Vec<ProposalId>,
}

struct Node {
    opts: Options,
    replica: Option<Replica>,
    incarnation: u64,
    durable: Vec<Record>,
    unsynced: Vec<Record>,
    waiting: VecDeque<Pending>,
    /// (records covered, highest ready seq covered) of the fsync in flight.
    fsync: Option<(usize, u64)>,
    last_seq: u64,
    persisted_seq: u64,
    told_seq: u64,
    paused: bool,
    inbox: Vec<Envelope>,
    timer: Option<(Time, u64)>,
    timer_gen: u64,
    app: AppState,
    /// Deliveries below this were superseded by an installed snapshot.
    app_floor: Slot,
    since_snapshot: u64,
    latest_snapshot: Option<Arc<Snapshot>>,
}

/// Counters for a run.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Messages sent.
    pub sent: u64,
    /// Messages lost by the network or a partition.
    pub dropped: u64,
    /// Crashes.
    pub crashes: u64,
    /// Pauses.
    pub pauses: u64,
    /// Partitions started.
    pub partitions: u64,
    /// Configuration changes proposed.
    pub reconfigs: u64,
    /// Commands accepted by a replica.
    pub submitted: u64,
    /// Proposals refused (minority, overload); the client retried.
    pub refused: u64,
    /// Snapshots installed by lagging replicas.
    pub snapshots_installed: u64,
    /// Longest time with no delivery anywhere, nanoseconds.
    pub longest_stall_ns: u64,
    /// Longest time with no delivery anywhere after the replica killed by [`Sim::kill_at`]
    /// died, nanoseconds.
    pub stall_after_kill_ns: u64,
    /// Longest time with no delivery before that kill, nanoseconds (the baseline).
    pub longest_stall_before_kill_ns: u64,
    /// Highest GSN delivered.
    pub gsn: u64,
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Counters.
    pub stats: Stats,
    /// Hash of everything that happened, for determinism checks.
    pub trace: u64,
    /// Simulated time when everything converged, milliseconds.
    pub converged_ms: u64,
}

/// One simulated cluster.
pub struct Sim {
    seed: u64,
    sc: Scenario,
    rng: ChaCha8Rng,
    now: Time,
    events: BinaryHeap<Reverse<Event>>,
    event_seq: u64,
    nodes: BTreeMap<ReplicaId, Node>,
    genesis: Config,
    blocked: BTreeMap<(ReplicaId, ReplicaId), u32>,
    checker: Checker,
    app_store: Vec<AppState>,
    next_id: u16,
    next_command: u64,
    healing: bool,
    trace: u64,
    last_delivery: Time,
    /// Kill this replica at this time and never restart it (write-stall measurement).
    kill_at: Option<(ReplicaId, Time)>,
    /// Replicas killed for good.
    killed: BTreeSet<ReplicaId>,
    killed_at: Option<Time>,
    /// A violation found where it could not be returned directly.
    failure: Option<Violation>,
    verbose: bool,
    /// Public counters.
    pub stats: Stats,
}

impl Sim {
    /// A cluster for `scenario`, all randomness from `seed`.
    #[must_use]
    pub fn new(seed: u64, sc: Scenario) -> Sim {
        let genesis = Config::majority((0..sc.replicas).map(ReplicaId));
        let mut checker = Checker::default();
        checker.local_order = sc.preserve_local_order;
        let mut sim = Sim {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x05ee_d0f5_170d),
            now: Time(EPOCH),
            events: BinaryHeap::new(),
            event_seq: 0,
            nodes: BTreeMap::new(),
            genesis,
            blocked: BTreeMap::new(),
            checker,
            app_store: Vec::new(),
            next_id: sc.replicas,
            next_command: 0,
            healing: false,
            trace: 0,
            last_delivery: Time(EPOCH),
            kill_at: None,
            killed: BTreeSet::new(),
            killed_at: None,
            failure: None,
            verbose: false,
            stats: Stats::default(),
            sc,
        };
        for i in 0..sim.sc.replicas {
            sim.add_node(ReplicaId(i));
        }
        sim.schedule(0, Kind::Client);
        sim.schedule(10 * MS, Kind::FaultTick);
        sim
    }

    /// Prints every event to stderr.
    pub fn set_verbose(&mut self, v: bool) {
        self.verbose = v;
    }

    /// Kills `replica` for good at `at_ms` (for the write-stall benchmark).
    pub fn kill_at(&mut self, replica: ReplicaId, at_ms: u64) {
        self.kill_at = Some((replica, Time(EPOCH + at_ms * MS)));
    }

    fn options(&self, id: ReplicaId, incarnation: u64) -> Options {
        let mut o = Options::new(id, self.genesis.clone());
        o.params = GroupParams {
            reservations: self.sc.reservations,
            preserve_local_order: self.sc.preserve_local_order,
            config_lag: self.sc.config_lag,
        };
        o.seed = self
            .seed
            .wrapping_mul(31)
            .wrapping_add(u64::from(id.0) << 20)
            .wrapping_add(incarnation);
        o.window = self.sc.window;
        o.batch_commands_max = self.sc.batch_max;
        // As an operator would: timeouts above the worst round trip.
        let rtt = 2 * (self.sc.delay_min_us + self.sc.delay_jitter_us) * US;
        o.takeover_timeout_ns = self.sc.takeover_us * US + rtt;
        // Fsync takes up to 2 ms here, on both ends of a round trip.
        o.retransmit_interval_ns = self.sc.heartbeat_us * US + rtt + 4 * MS;
        o.heartbeat_interval_ns = self.sc.heartbeat_us * US;
        o.liveness_timeout_ns = 10 * self.sc.heartbeat_us * US;
        o.catchup_timeout_ns = 5 * self.sc.heartbeat_us * US
            + 4 * (self.sc.delay_min_us + self.sc.delay_jitter_us) * US;
        o.backoff_base_ns = (self.sc.delay_min_us * US).max(MS);
        o.backoff_max_ns = 50 * MS;
        o.revoke_lookahead = (2 * self.sc.window as u64 * u64::from(self.sc.replicas)).max(8);
        o
    }

    fn add_node(&mut self, id: ReplicaId) {
        let opts = self.options(id, 0);
        let replica = Replica::new(opts.clone(), self.now);
        self.nodes.insert(
            id,
            Node {
                opts,
                replica: Some(replica),
                incarnation: 0,
                durable: Vec::new(),
                unsynced: Vec::new(),
                waiting: VecDeque::new(),
                fsync: None,
                last_seq: 0,
                persisted_seq: 0,
                told_seq: 0,
                paused: false,
                inbox: Vec::new(),
                timer: None,
                timer_gen: 0,
                app: AppState::default(),
                app_floor: Slot(0),
                since_snapshot: 0,
                latest_snapshot: None,
            },
        );
        let r = self.drain(id);
        self.note(r);
    }

    fn note(&mut self, r: Result<(), Violation>) {
        if let Err(v) = r {
            self.failure.get_or_insert(v);
        }
    }

    fn schedule(&mut self, delay_ns: u64, kind: Kind) {
        self.event_seq += 1;
        let at = self.now.add_nanos(delay_ns);
        self.events.push(Reverse(Event {
            at,
            seq: self.event_seq,
            kind,
        }));
    }

    fn log(&self, what: impl FnOnce() -> String) {
        if self.verbose {
            eprintln!(
                "[{:>10.3}ms] {}",
                self.now.since(Time(EPOCH)) as f64 / 1e6,
                what()
            );
        }
    }

    /// Runs the fault phase, then heals everything and runs the liveness phase.
    ///
    /// # Errors
    /// The first violated invariant, or a liveness failure.
    pub fn run(mut self) -> Result<Report, Violation> {
        let fault_end = Time(EPOCH + self.sc.fault_ms * MS);
        let deadline = fault_end.add_nanos(self.sc.liveness_ms * MS);
        let mut next_check = fault_end;
        while let Some(Reverse(ev)) = self.events.pop() {
            if ev.at > deadline {
                break;
            }
            self.now = ev.at;
            if let Some((victim, at)) = self.kill_at
                && self.now >= at
            {
                self.kill_at = None;
                self.crash(victim);
                self.killed.insert(victim);
                self.killed_at = Some(self.now);
            }
            if !self.healing && self.now >= fault_end {
                self.heal_all();
            }
            self.trace = mix(self.trace, self.now.0 ^ ev.seq);
            self.handle(ev.kind)?;
            if let Some(v) = self.failure.take() {
                return Err(v);
            }
            if self.healing && self.now >= next_check {
                next_check = self.now.add_nanos(100 * MS);
                if self.converged()? {
                    self.final_checks()?;
                    return Ok(Report {
                        seed: self.seed,
                        trace: self.trace,
                        converged_ms: self.now.since(Time(EPOCH)) / MS,
                        stats: self.stats,
                    });
                }
            }
        }
        let mut detail = String::new();
        for (id, n) in &self.nodes {
            if let Some(r) = &n.replica {
                let missing = self.checker.missing(&n.app);
                detail.push_str(&format!(
                    "\n  {id}: applied {} app {} log_start {} pending {} missing {} {:?} metrics {:?}\n     {}",
                    r.applied(),
                    n.app.next_gsn,
                    r.log_start(),
                    r.pending_proposals(),
                    missing.len(),
                    missing.iter().take(4).collect::<Vec<_>>(),
                    r.metrics(),
                    r.debug_state()
                ));
            }
        }
        Err(format!(
            "liveness: acknowledged proposals not delivered everywhere {} ms after the heal (submitted {} of {}){detail}",
            self.sc.liveness_ms, self.stats.submitted, self.sc.commands
        ))
    }

    fn handle(&mut self, kind: Kind) -> Result<(), Violation> {
        match kind {
            Kind::Deliver(env) => {
                let (from, to) = (env.from, env.to);
                if self.blocked.contains_key(&(from, to)) {
                    self.stats.dropped += 1;
                    return Ok(());
                }
                let Some(node) = self.nodes.get_mut(&to) else {
                    return Ok(());
                };
                let Some(replica) = node.replica.as_mut() else {
                    self.stats.dropped += 1;
                    return Ok(());
                };
                if node.paused {
                    node.inbox.push(env);
                    return Ok(());
                }
                if self.verbose {
                    eprintln!(
                        "[{:>10.3}ms] {from}->{to} {:?}",
                        self.now.since(Time(EPOCH)) as f64 / 1e6,
                        env.message
                    );
                }
                replica.handle_message(self.now, env);
                self.drain(to)
            }
            Kind::Timer(id, generation) => {
                let Some(node) = self.nodes.get_mut(&id) else {
                    return Ok(());
                };
                if node.timer.map(|(_, g)| g) != Some(generation) || node.paused {
                    return Ok(());
                }
                node.timer = None;
                if let Some(r) = node.replica.as_mut() {
                    r.handle_timeout(self.now);
                }
                self.drain(id)
            }
            Kind::FsyncDone(id, incarnation) => self.fsync_done(id, incarnation),
            Kind::Client => {
                self.client_step();
                Ok(())
            }
            Kind::FaultTick => {
                if !self.healing {
                    self.fault_step();
                    self.schedule(10 * MS, Kind::FaultTick);
                }
                Ok(())
            }
            Kind::Restart(id) => self.restart(id),
            Kind::Resume(id) => {
                let Some(node) = self.nodes.get_mut(&id) else {
                    return Ok(());
                };
                if !node.paused {
                    return Ok(());
                }
                node.paused = false;
                let inbox = std::mem::take(&mut node.inbox);
                if self.verbose {
                    eprintln!("{id} resumes with {} queued messages", inbox.len());
                }
                if let Some(r) = node.replica.as_mut() {
                    for env in inbox {
                        r.handle_message(self.now, env);
                    }
                    r.handle_timeout(self.now);
                }
                node.timer = None;
                self.drain(id)
            }
            Kind::Heal(pairs) => {
                for p in pairs {
                    if let Some(c) = self.blocked.get_mut(&p) {
                        *c -= 1;
                        if *c == 0 {
                            self.blocked.remove(&p);
                        }
                    }
                }
                Ok(())
            }
            Kind::SnapshotArrive {
                to,
                req,
                incarnation,
            } => self.snapshot_arrive(to, req, incarnation),
        }
    }

    // ----- Driving replicas ---------------------------------------------------------------

    /// Drains every ready of `id` and re-arms its timer.
    fn drain(&mut self, id: ReplicaId) -> Result<(), Violation> {
        loop {
            let Some(node) = self.nodes.get_mut(&id) else {
                return Ok(());
            };
            let Some(replica) = node.replica.as_mut() else {
                return Ok(());
            };
            if let Some(ready) = replica.poll_ready() {
                self.on_ready(id, ready)?;
                continue;
            }
            if node.persisted_seq > node.told_seq {
                node.told_seq = node.persisted_seq;
                replica.handle_persisted(self.now, node.persisted_seq);
                continue;
            }
            break;
        }
        self.maybe_compact(id)?;
        self.rearm(id);
        Ok(())
    }

    fn rearm(&mut self, id: ReplicaId) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(t) = node.replica.as_ref().and_then(Replica::poll_timeout) else {
            return;
        };
        let t = t.max(self.now.add_nanos(US));
        if node.timer.map(|(at, _)| at) == Some(t) {
            return;
        }
        node.timer_gen += 1;
        let generation = node.timer_gen;
        node.timer = Some((t, generation));
        let delay = t.since(self.now);
        self.schedule(delay, Kind::Timer(id, generation));
    }

    fn on_ready(&mut self, id: ReplicaId, ready: Ready) -> Result<(), Violation> {
        let proposals: Vec<ProposalId> = ready
            .persist
            .iter()
            .filter_map(|r| match r {
                Record::Proposal { lsn, .. } => Some(ProposalId {
                    proposer: id,
                    lsn: *lsn,
                }),
                _ => None,
            })
            .collect();
        let node = self.nodes.get_mut(&id).expect("node exists");
        let has_records = !ready.persist.is_empty();
        node.unsynced.extend(ready.persist);
        node.last_seq = ready.seq;
        let pending = Pending {
            seq: ready.seq,
            has_records,
            messages: ready.messages,
            deliveries: ready.deliveries,
            snapshot_needed: ready.snapshot_needed,
            abandoned: ready.abandoned,
            proposals,
        };
        let ack_before_persist = cfg!(feature = "mutation-ack-before-persist");
        if ack_before_persist || (!has_records && node.waiting.is_empty()) {
            if !ack_before_persist {
                node.persisted_seq = node.persisted_seq.max(pending.seq);
            }
            self.release(id, pending)?;
        } else {
            node.waiting.push_back(pending);
        }
        self.start_fsync(id);
        Ok(())
    }

    fn start_fsync(&mut self, id: ReplicaId) {
        let node = self.nodes.get_mut(&id).expect("node exists");
        if node.fsync.is_some() || node.unsynced.is_empty() {
            return;
        }
        node.fsync = Some((node.unsynced.len(), node.last_seq));
        let incarnation = node.incarnation;
        let latency = self.rng.random_range(50..=2_000) * US;
        self.schedule(latency, Kind::FsyncDone(id, incarnation));
    }

    fn fsync_done(&mut self, id: ReplicaId, incarnation: u64) -> Result<(), Violation> {
        let node = self.nodes.get_mut(&id).expect("node exists");
        if node.incarnation != incarnation {
            return Ok(());
        }
        let Some((len, seq)) = node.fsync.take() else {
            return Ok(());
        };
        let synced: Vec<Record> = node.unsynced.drain(..len).collect();
        node.durable.extend(synced);
        if cfg!(feature = "mutation-ack-before-persist") {
            node.persisted_seq = node.persisted_seq.max(seq);
        }
        let mut released = Vec::new();
        while let Some(front) = node.waiting.front() {
            if front.seq <= seq || !front.has_records {
                let p = node.waiting.pop_front().expect("front exists");
                node.persisted_seq = node.persisted_seq.max(p.seq);
                released.push(p);
            } else {
                break;
            }
        }
        for p in released {
            self.release(id, p)?;
        }
        self.start_fsync(id);
        self.drain(id)
    }

    /// The ready's records are durable: send, apply, report.
    fn release(&mut self, id: ReplicaId, p: Pending) -> Result<(), Violation> {
        for env in p.messages {
            match &env.message {
                Message::Promise { ballot, entries } => {
                    for e in entries {
                        self.checker.promise_sent(id, e.slot, *ballot);
                    }
                }
                Message::Accepted { ballot, slots } => {
                    for s in slots {
                        self.checker.promise_sent(id, *s, *ballot);
                    }
                }
                _ => {}
            }
            self.send(env);
        }
        for d in &p.deliveries {
            let node = self.nodes.get_mut(&id).expect("node exists");
            if d.gsn < node.app_floor {
                continue;
            }
            self.checker.apply(id, &mut node.app, d)?;
            node.since_snapshot += 1;
            self.trace = mix(self.trace, node.app.hash ^ u64::from(id.0));
            if self.verbose && self.killed_at.is_some() && d.gsn.0 + 1 > self.stats.gsn {
                eprintln!(
                    "[{:>10.3}ms] gsn {} delivered first by {id}",
                    self.now.since(Time(EPOCH)) as f64 / 1e6,
                    d.gsn
                );
            }
            if d.gsn.0 + 1 > self.stats.gsn {
                self.stats.gsn = d.gsn.0 + 1;
                let gap = self.now.since(self.last_delivery);
                self.stats.longest_stall_ns = self.stats.longest_stall_ns.max(gap);
                if self.killed_at.is_some() {
                    // Gaps ending after the kill: the first spans it.
                    self.stats.stall_after_kill_ns = self.stats.stall_after_kill_ns.max(gap);
                } else if self.kill_at.is_some() && self.now > Time(EPOCH + 100 * MS) {
                    self.stats.longest_stall_before_kill_ns =
                        self.stats.longest_stall_before_kill_ns.max(gap);
                }
                self.last_delivery = self.now;
            }
        }
        if let Some(req) = p.snapshot_needed {
            let incarnation = self.nodes[&id].incarnation;
            let delay = 2 * (self.sc.delay_min_us + self.sc.delay_jitter_us) * US;
            self.schedule(
                delay,
                Kind::SnapshotArrive {
                    to: id,
                    req,
                    incarnation,
                },
            );
        }
        self.checker.abandoned.extend(p.abandoned);
        self.checker.acked.extend(p.proposals);
        Ok(())
    }

    fn send(&mut self, env: Envelope) {
        self.stats.sent += 1;
        if self.rng.random_bool(self.sc.loss) {
            self.stats.dropped += 1;
            return;
        }
        let copies = if self.rng.random_bool(self.sc.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.sc.delay_min_us + self.rng.random_range(0..=self.sc.delay_jitter_us);
            self.schedule(delay * US, Kind::Deliver(env.clone()));
        }
    }

    fn maybe_compact(&mut self, id: ReplicaId) -> Result<(), Violation> {
        let node = self.nodes.get_mut(&id).expect("node exists");
        let Some(replica) = node.replica.as_mut() else {
            return Ok(());
        };
        if node.since_snapshot < self.sc.snapshot_every
            || !node.waiting.is_empty()
            || node.app.next_gsn != replica.applied()
        {
            return Ok(());
        }
        node.since_snapshot = 0;
        let retain = if self.sc.aggressive_gc {
            replica.applied()
        } else {
            replica.gc_watermark()
        };
        self.app_store.push(node.app.clone());
        let key = (self.app_store.len() - 1) as u64;
        let snap = replica.compact(self.now, Bytes::copy_from_slice(&key.to_le_bytes()), retain);
        node.latest_snapshot = Some(snap);
        self.drain(id)
    }

    fn snapshot_arrive(
        &mut self,
        to: ReplicaId,
        req: SnapshotRequest,
        incarnation: u64,
    ) -> Result<(), Violation> {
        if self.blocked.contains_key(&(req.from, to)) {
            return Ok(());
        }
        let Some(snap) = self
            .nodes
            .get(&req.from)
            .and_then(|n| n.replica.as_ref().and(n.latest_snapshot.clone()))
        else {
            return Ok(());
        };
        let node = self.nodes.get_mut(&to).expect("node exists");
        if node.incarnation != incarnation || node.paused {
            return Ok(());
        }
        let Some(replica) = node.replica.as_mut() else {
            return Ok(());
        };
        if replica.install_snapshot(self.now, snap.clone()) {
            let key = u64::from_le_bytes(snap.app[..8].try_into().expect("8-byte key"));
            node.app = self.app_store[key as usize].clone();
            node.app_floor = snap.next_slot;
            node.latest_snapshot = Some(snap.clone());
            self.stats.snapshots_installed += 1;
            self.log(|| format!("{to} installed a snapshot up to {}", snap.next_slot));
        }
        self.drain(to)
    }

    // ----- Clients ------------------------------------------------------------------------

    fn client_step(&mut self) {
        if self.stats.submitted as usize >= self.sc.commands {
            return;
        }
        let gap = self.rng.random_range(0..=2 * self.sc.client_gap_us) * US;
        self.schedule(gap.max(US), Kind::Client);
        let candidates: Vec<ReplicaId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.replica.is_some() && !n.paused)
            .map(|(id, _)| *id)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let id = candidates[self.rng.random_range(0..candidates.len())];
        self.next_command += 1;
        let body = Bytes::from(format!("cmd-{}-{}", self.seed, self.next_command));
        let node = self.nodes.get_mut(&id).expect("exists");
        let replica = node.replica.as_mut().expect("live");
        match replica.propose(self.now, Payload::Command(body.clone())) {
            Ok(pid) => {
                self.checker.proposed.insert(pid, body);
                self.stats.submitted += 1;
            }
            Err(_) => self.stats.refused += 1,
        }
        let r = self.drain(id);
        self.note(r);
    }

    // ----- Faults -------------------------------------------------------------------------

    fn live_ids(&self) -> Vec<ReplicaId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.replica.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    fn fault_step(&mut self) {
        let ids: Vec<ReplicaId> = self.nodes.keys().copied().collect();
        if self.rng.random_bool(self.sc.partition_p) && ids.len() > 1 {
            self.partition(&ids);
        }
        let live = self.live_ids();
        if self.rng.random_bool(self.sc.crash_p) && !live.is_empty() {
            let id = live[self.rng.random_range(0..live.len())];
            self.crash(id);
            let after = self.rng.random_range(0..=1_000) * MS;
            self.schedule(after, Kind::Restart(id));
        }
        let live = self.live_ids();
        if self.rng.random_bool(self.sc.pause_p) && !live.is_empty() {
            let id = live[self.rng.random_range(0..live.len())];
            let node = self.nodes.get_mut(&id).expect("exists");
            if !node.paused {
                node.paused = true;
                self.stats.pauses += 1;
                let after = self.rng.random_range(10..=1_000) * MS;
                self.schedule(after, Kind::Resume(id));
                self.log(|| format!("{id} paused"));
            }
        }
        let live = self.live_ids();
        if self.rng.random_bool(self.sc.reconfig_p) && !live.is_empty() {
            self.reconfigure(&live);
        }
    }

    fn partition(&mut self, ids: &[ReplicaId]) {
        let mut pairs = Vec::new();
        match self.rng.random_range(0..3) {
            0 => {
                // Isolate one replica, both ways.
                let x = ids[self.rng.random_range(0..ids.len())];
                for y in ids.iter().filter(|y| **y != x) {
                    pairs.push((x, *y));
                    pairs.push((*y, x));
                }
            }
            1 => {
                // Random split (majority/minority or even).
                let side: BTreeSet<ReplicaId> = ids
                    .iter()
                    .filter(|_| self.rng.random_bool(0.5))
                    .copied()
                    .collect();
                for a in ids {
                    for b in ids {
                        if side.contains(a) != side.contains(b) {
                            pairs.push((*a, *b));
                        }
                    }
                }
            }
            _ => {
                // One-way: a cannot reach b.
                let a = ids[self.rng.random_range(0..ids.len())];
                let b = ids[self.rng.random_range(0..ids.len())];
                if a != b {
                    pairs.push((a, b));
                }
            }
        }
        self.stats.partitions += 1;
        self.log(|| format!("partition {pairs:?}"));
        for p in &pairs {
            *self.blocked.entry(*p).or_insert(0) += 1;
        }
        let after = self.rng.random_range(50..=2_000) * MS;
        self.schedule(after, Kind::Heal(pairs));
    }

    fn crash(&mut self, id: ReplicaId) {
        let torn = self.rng.random_bool(self.sc.torn_p);
        let node = self.nodes.get_mut(&id).expect("exists");
        if node.replica.is_none() {
            return;
        }
        node.replica = None;
        node.incarnation += 1;
        node.waiting.clear();
        node.fsync = None;
        node.timer = None;
        node.paused = false;
        node.inbox.clear();
        let unsynced = std::mem::take(&mut node.unsynced);
        let kept = if torn && !unsynced.is_empty() {
            self.rng.random_range(0..=unsynced.len())
        } else {
            0
        };
        node.durable.extend(unsynced.into_iter().take(kept));
        self.stats.crashes += 1;
        self.log(|| format!("{id} crashed (kept {kept} unsynced records)"));
    }

    fn restart(&mut self, id: ReplicaId) -> Result<(), Violation> {
        let node = self.nodes.get_mut(&id).expect("exists");
        if node.replica.is_some() {
            return Ok(());
        }
        let state = DurableState::from_records(&node.durable);
        let (app, floor) = match &state.snapshot {
            Some(s) => {
                let key = u64::from_le_bytes(s.app[..8].try_into().expect("8-byte key"));
                (self.app_store[key as usize].clone(), s.next_slot)
            }
            None => (AppState::default(), Slot(0)),
        };
        node.latest_snapshot = state.snapshot.clone();
        let mut opts = node.opts.clone();
        opts.seed = opts.seed.wrapping_add(node.incarnation * 7919);
        let replica = Replica::recover(opts, self.now, state);
        self.checker
            .check_promises(id, replica.log_start(), |s| replica.promised(s))?;
        node.app = app;
        node.app_floor = floor;
        node.since_snapshot = 0;
        node.last_seq = 0;
        node.persisted_seq = 0;
        node.told_seq = 0;
        node.replica = Some(replica);
        self.log(|| format!("{id} restarted"));
        self.drain(id)
    }

    fn reconfigure(&mut self, live: &[ReplicaId]) {
        let at = live[self.rng.random_range(0..live.len())];
        let config = self.nodes[&at]
            .replica
            .as_ref()
            .expect("live")
            .latest_config()
            .clone();
        let members: Vec<ReplicaId> = config.members.iter().copied().collect();
        let pick = |rng: &mut ChaCha8Rng| members[rng.random_range(0..members.len())];
        let change = match self.rng.random_range(0..6) {
            0 if members.len() < 7 => {
                let id = ReplicaId(self.next_id);
                self.next_id += 1;
                self.add_node(id);
                ConfigChange::AddMember(id)
            }
            1 if members.len() > 3 => ConfigChange::RemoveMember(pick(&mut self.rng)),
            2 => ConfigChange::SetPolicy(QuorumPolicy::MajorityTieBreaker {
                tie_breaker: pick(&mut self.rng),
            }),
            3 => ConfigChange::SetPolicy(match self.rng.random_range(0..3) {
                0 => QuorumPolicy::Singleton {
                    replica: pick(&mut self.rng),
                },
                1 => QuorumPolicy::Unanimous,
                _ => {
                    let n = members.len();
                    let p1 = self.rng.random_range(1..=n);
                    QuorumPolicy::Flexible {
                        phase1: p1,
                        phase2: n + 1 - p1,
                    }
                }
            }),
            4 => {
                // Follow the sun: hand the role around every second of agreed time.
                let tod = ((self.now.0 / 1_000_000_000) % 86_400) as u32;
                let shifts = (0..3)
                    .map(|k| SunShift {
                        start_secs: (tod + 1 + k) % 86_400,
                        holder: pick(&mut self.rng),
                    })
                    .collect();
                let role = if self.rng.random_bool(0.5) {
                    SunRole::Singleton
                } else {
                    SunRole::TieBreaker
                };
                ConfigChange::SetSunSchedule(Some(SunSchedule { role, shifts }))
            }
            _ => ConfigChange::SetPolicy(QuorumPolicy::Majority),
        };
        self.log(|| format!("reconfigure via {at}: {change:?}"));
        self.stats.reconfigs += 1;
        let node = self.nodes.get_mut(&at).expect("exists");
        let replica = node.replica.as_mut().expect("live");
        if let Ok(pid) = replica.propose(self.now, Payload::Config(change)) {
            self.checker.proposed.insert(pid, Bytes::new());
        }
        let r = self.drain(at);
        self.note(r);
    }

    /// Liveness phase: heal partitions, stop loss, restart and resume everyone, and drop
    /// policies that need one particular replica (a singleton that was removed cannot come
    /// back, but schedules may still point at a slow one).
    fn heal_all(&mut self) {
        self.healing = true;
        self.blocked.clear();
        self.sc.loss = 0.0;
        self.log(|| "heal: everything".into());
        let ids: Vec<ReplicaId> = self.nodes.keys().copied().collect();
        for id in ids {
            let node = &self.nodes[&id];
            if node.replica.is_none() {
                if !self.killed.contains(&id) {
                    let r = self.restart(id);
                    self.note(r);
                }
            } else if node.paused {
                self.schedule(0, Kind::Resume(id));
            }
        }
    }

    /// True when every acknowledged proposal is applied by every live member.
    fn converged(&mut self) -> Result<bool, Violation> {
        if (self.stats.submitted as usize) < self.sc.commands {
            return Ok(false);
        }
        let Some(latest) = self
            .nodes
            .values()
            .filter_map(|n| n.replica.as_ref())
            .max_by_key(|r| r.applied())
            .map(|r| r.latest_config().members.clone())
        else {
            return Ok(false);
        };
        for id in &latest {
            let Some(node) = self.nodes.get(id) else {
                continue;
            };
            if node.replica.is_none() {
                if self.killed.contains(id) {
                    continue;
                }
                return Ok(false);
            }
            // A replica removed from the group gives up its undelivered proposals (reported as
            // abandoned, though a crash can lose that report): only members' must arrive.
            // A replica killed for good holds its undelivered proposals until it returns.
            let counts =
                |p: &ProposalId| latest.contains(&p.proposer) && !self.killed.contains(&p.proposer);
            if self.checker.missing(&node.app).iter().any(counts) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn final_checks(&self) -> Result<(), Violation> {
        for (id, n) in &self.nodes {
            if let Some(r) = &n.replica
                && r.metrics().conflicting_decisions > 0
            {
                return Err(format!(
                    "{id} saw {} conflicting decisions",
                    r.metrics().conflicting_decisions
                ));
            }
        }
        Ok(())
    }
}

fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(7)
}
