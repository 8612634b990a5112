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
    Config, Delivery, Envelope, GroupParams, Options, Payload, ProposalId, Record, Replica,
    ReplicaId, Slot, Snapshot, SnapshotRequest, Time,
};

mod disk;
mod faults;

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
    /// `to`'s connection from `lost` ended (`Replica::handle_peer_lost`).
    PeerLost {
        to: ReplicaId,
        lost: ReplicaId,
    },
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
    delivered_in_snapshot: Vec<ProposalId>,
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
    /// This incarnation's proposals whose clients have no answer yet: the node answers one
    /// when it applies the proposal's delivery, or when the replica reports it abandoned or
    /// delivered in a snapshot. A crash answers them all (the clients lose the connection).
    unanswered: BTreeSet<ProposalId>,
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
    /// Crashes that lost the whole disk (the replica rejoined behind a fence).
    pub amnesias: u64,
    /// Connection-lost hints delivered (a crashed peer's, or a spurious one about a live
    /// peer).
    pub lost_hints: u64,
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
    /// From the kill to the first phase 1 anyone started after it (the peers noticed).
    pub takeover_after_kill_ns: u64,
    /// Longest time with no delivery before that kill, nanoseconds (the baseline).
    pub longest_stall_before_kill_ns: u64,
    /// Highest GSN delivered.
    pub gsn: u64,
    /// Times the replicas alive at the end went quiet (idle groups stop their heartbeats).
    pub quiesced: u64,
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
    /// Crash this replica at this time and restart it this much later (a rolling restart
    /// before the kill, for the write-stall benchmark).
    bounce_at: Option<(ReplicaId, Time, u64)>,
    /// Replicas killed for good.
    killed: BTreeSet<ReplicaId>,
    /// Replicas that lost their disk at some point (rejoining, or rejoined).
    rejoining: BTreeSet<ReplicaId>,
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
            bounce_at: None,
            killed: BTreeSet::new(),
            rejoining: BTreeSet::new(),
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

    /// Crashes `replica` at `at_ms` and restarts it `down_us` later, from its disk (for the
    /// write-stall benchmark: a rolling restart stops the nodes one after another). The
    /// longest stall after the crash is reported as `stall_after_kill_ns`.
    pub fn bounce_at(&mut self, replica: ReplicaId, at_ms: u64, down_us: u64) {
        self.bounce_at = Some((replica, Time(EPOCH + at_ms * MS), down_us * US));
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
        o.quiesce = self.sc.quiesce;
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
                unanswered: BTreeSet::new(),
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
            if let Some((bounced, at, down)) = self.bounce_at
                && self.now >= at
            {
                self.bounce_at = None;
                self.crash(bounced);
                self.schedule(down, Kind::Restart(bounced));
                // The stall after it counts as the stall after a kill.
                self.killed_at = Some(self.now);
            }
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
                    self.stats.quiesced = self
                        .nodes
                        .values()
                        .filter_map(|n| n.replica.as_ref())
                        .map(|r| r.metrics().quiesced)
                        .sum();
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
                    "\n  {id}: applied {} app {} log_start {} pending {} missing {} {:?} unanswered {:?} metrics {:?}\n     {}",
                    r.applied(),
                    n.app.next_gsn,
                    r.log_start(),
                    r.pending_proposals(),
                    missing.len(),
                    missing.iter().take(4).collect::<Vec<_>>(),
                    n.unanswered.iter().take(4).collect::<Vec<_>>(),
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
                if node.replica.is_none() {
                    self.stats.dropped += 1;
                    return Ok(());
                }
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
                self.tell_what_the_node_heard(to);
                let replica = self.nodes.get_mut(&to).and_then(|n| n.replica.as_mut());
                replica
                    .expect("live, as checked above")
                    .handle_message(self.now, env);
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
                if self.healing {
                    // A clock for the convergence check: once every group is quiet, nothing
                    // else may be scheduled.
                    self.schedule(100 * MS, Kind::FaultTick);
                } else {
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
            Kind::PeerLost { to, lost } => {
                let Some(node) = self.nodes.get_mut(&to) else {
                    return Ok(());
                };
                let Some(replica) = node.replica.as_mut().filter(|_| !node.paused) else {
                    return Ok(());
                };
                self.stats.lost_hints += 1;
                replica.handle_peer_lost(self.now, lost);
                self.drain(to)
            }
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

    fn send(&mut self, env: Envelope) {
        self.stats.sent += 1;
        if let Some(killed) = self.killed_at
            && self.stats.takeover_after_kill_ns == 0
            && matches!(env.message, synod_core::Message::Prepare { .. })
        {
            self.stats.takeover_after_kill_ns = self.now.since(killed).max(1);
        }
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

    // ----- Clients ------------------------------------------------------------------------

    fn client_step(&mut self) {
        if self.stats.submitted as usize >= self.sc.commands {
            return;
        }
        let mut gap = self.rng.random_range(0..=2 * self.sc.client_gap_us) * US;
        if self.sc.idle_spell_ms > 0 && self.next_command % 50 == 49 {
            gap = self.sc.idle_spell_ms * MS;
        }
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
        self.tell_what_the_node_heard(id);
        let node = self.nodes.get_mut(&id).expect("exists");
        let replica = node.replica.as_mut().expect("live");
        match replica.propose(self.now, Payload::Command(body.clone())) {
            Ok(pid) => {
                node.unanswered.insert(pid);
                self.checker.proposed.insert(pid, body);
                self.stats.submitted += 1;
            }
            Err(_) => self.stats.refused += 1,
        }
        let r = self.drain(id);
        self.note(r);
    }

    /// What a node does before it hands a quiet group a proposal or a message: tells the
    /// replica which peers' nodes it hears from (`Replica::heard_from`), since a quiet replica
    /// hears nothing itself (an awake one is told nothing: it hears its peers itself). A node
    /// hears its peers through the groups that are awake (its default group never goes
    /// quiet); the simulator, with one group per node, answers from the network instead: a
    /// peer is heard now if it is running and its link to `id` is open (the node would say
    /// when it last heard it, at most a heartbeat interval ago).
    fn tell_what_the_node_heard(&mut self, id: ReplicaId) {
        if !self
            .nodes
            .get(&id)
            .and_then(|n| n.replica.as_ref())
            .is_some_and(Replica::is_quiet)
        {
            return;
        }
        let heard: Vec<ReplicaId> = self
            .nodes
            .iter()
            .filter(|(peer, n)| {
                **peer != id
                    && n.replica.is_some()
                    && !n.paused
                    && !self.blocked.contains_key(&(**peer, id))
            })
            .map(|(peer, _)| *peer)
            .collect();
        if let Some(replica) = self.nodes.get_mut(&id).and_then(|n| n.replica.as_mut()) {
            for peer in heard {
                replica.heard_from(peer, self.now);
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
            // Every client of a live node has its answer: no proposal is left waiting for a
            // delivery that will never come here.
            if !node.unanswered.is_empty() {
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
