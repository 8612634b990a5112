//! A tiny in-memory cluster for the core's scenario tests: a FIFO network with optional
//! blocked links, storage that is durable at once, and a manual clock. (The seeded,
//! fault-injecting simulator lives in `synod-sim`.)

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use synod_core::{
    Config, Delivery, DurableState, Envelope, GroupParams, Options, Payload, ProposalId, Ready,
    Record, Replica, ReplicaId, SnapshotRequest, Time,
};

pub const MS: u64 = 1_000_000;

pub struct Net {
    pub replicas: BTreeMap<ReplicaId, Replica>,
    pub opts: BTreeMap<ReplicaId, Options>,
    pub queue: VecDeque<Envelope>,
    pub now: Time,
    pub blocked: BTreeSet<(ReplicaId, ReplicaId)>,
    pub delivered: BTreeMap<ReplicaId, Vec<Delivery>>,
    pub durable: BTreeMap<ReplicaId, Vec<Record>>,
    pub snapshot_requests: Vec<(ReplicaId, SnapshotRequest)>,
    /// Every message sent, for assertions on traffic.
    pub sent: Vec<Envelope>,
}

pub fn ids(n: u16) -> Vec<ReplicaId> {
    (0..n).map(ReplicaId).collect()
}

impl Net {
    pub fn new(n: u16, params: GroupParams) -> Net {
        Net::with(n, |o| o.params = params.clone())
    }

    pub fn with(n: u16, tweak: impl Fn(&mut Options)) -> Net {
        let mut net = Net {
            replicas: BTreeMap::new(),
            opts: BTreeMap::new(),
            queue: VecDeque::new(),
            now: Time(1_000 * MS),
            blocked: BTreeSet::new(),
            delivered: BTreeMap::new(),
            durable: BTreeMap::new(),
            snapshot_requests: Vec::new(),
            sent: Vec::new(),
        };
        for id in ids(n) {
            let mut o = Options::new(id, Config::majority(ids(n)));
            o.params.config_lag = 16;
            // This harness has no node-level liveness to tell a woken replica its peers are
            // there (`Replica::heard_from`): groups stay awake unless a test asks otherwise
            // (`tests/quiet.rs`; the simulator runs with quiescence on).
            o.quiesce = false;
            tweak(&mut o);
            net.opts.insert(id, o.clone());
            net.replicas.insert(id, Replica::new(o, net.now));
            net.drain(id);
        }
        net
    }

    pub fn r(&mut self, id: u16) -> &mut Replica {
        self.replicas
            .get_mut(&ReplicaId(id))
            .expect("replica exists")
    }

    /// Executes one ready the way a driver must: persist, then send and deliver, then ack.
    pub fn execute(&mut self, id: ReplicaId, ready: Ready) {
        self.durable.entry(id).or_default().extend(ready.persist);
        for env in ready.messages {
            self.sent.push(env.clone());
            if !self.blocked.contains(&(env.from, env.to)) {
                self.queue.push_back(env);
            }
        }
        self.delivered
            .entry(id)
            .or_default()
            .extend(ready.deliveries);
        if let Some(req) = ready.snapshot_needed {
            self.snapshot_requests.push((id, req));
        }
        let now = self.now;
        if let Some(r) = self.replicas.get_mut(&id) {
            r.handle_persisted(now, ready.seq);
        }
    }

    pub fn drain(&mut self, id: ReplicaId) {
        while let Some(ready) = self.replicas.get_mut(&id).and_then(Replica::poll_ready) {
            self.execute(id, ready);
        }
    }

    pub fn drain_all(&mut self) {
        let all: Vec<ReplicaId> = self.replicas.keys().copied().collect();
        for id in all {
            self.drain(id);
        }
    }

    /// Delivers queued messages until none are left (bounded).
    pub fn settle(&mut self) {
        for _ in 0..1_000_000 {
            let Some(env) = self.queue.pop_front() else {
                return;
            };
            let to = env.to;
            let now = self.now;
            if let Some(r) = self.replicas.get_mut(&to) {
                r.handle_message(now, env);
                self.drain(to);
            }
        }
        panic!("network did not settle");
    }

    /// Advances the clock in 1 ms steps, firing due timers and settling after each.
    pub fn run_for(&mut self, ms: u64) {
        for _ in 0..ms {
            self.now = self.now.add_nanos(MS);
            let due: Vec<ReplicaId> = self
                .replicas
                .iter()
                .filter(|(_, r)| r.poll_timeout().is_some_and(|t| t <= self.now))
                .map(|(id, _)| *id)
                .collect();
            for id in due {
                let now = self.now;
                self.r(id.0).handle_timeout(now);
                self.drain(id);
            }
            self.settle();
        }
    }

    pub fn propose(&mut self, id: u16, body: &str) -> ProposalId {
        let now = self.now;
        let pid = self
            .r(id)
            .propose(now, Payload::Command(Bytes::from(body.to_string())))
            .expect("accepted");
        self.drain(ReplicaId(id));
        pid
    }

    /// The proposal ids a replica delivered, in order.
    pub fn log(&self, id: u16) -> Vec<ProposalId> {
        self.delivered
            .get(&ReplicaId(id))
            .map(|ds| {
                ds.iter()
                    .flat_map(|d| d.proposals.iter().map(|p| p.id))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn crash_and_restart(&mut self, id: u16) {
        let rid = ReplicaId(id);
        let state =
            DurableState::from_records(self.durable.get(&rid).map(Vec::as_slice).unwrap_or(&[]));
        self.queue.retain(|e| e.to != rid);
        let mut o = self.opts[&rid].clone();
        o.seed += 1000;
        self.delivered.remove(&rid);
        if let Some(s) = &state.snapshot {
            // The application restarts from the snapshot; later slots are re-delivered.
            let _ = s;
        }
        self.replicas
            .insert(rid, Replica::recover(o, self.now, state));
        self.drain(rid);
    }

    /// The replica's disk is lost: it restarts from a lone fence record, as a node does after
    /// wiping a corrupt log.
    pub fn lose_disk(&mut self, id: u16, nonce: u64) {
        let rid = ReplicaId(id);
        self.durable.insert(rid, vec![Record::Fence { nonce }]);
        self.crash_and_restart(id);
    }

    pub fn isolate(&mut self, id: u16) {
        for other in self.replicas.keys().copied().collect::<Vec<_>>() {
            if other.0 != id {
                self.blocked.insert((ReplicaId(id), other));
                self.blocked.insert((other, ReplicaId(id)));
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    pub fn assert_same_logs(&self, ids: &[u16]) {
        let first = self.log(ids[0]);
        for id in &ids[1..] {
            assert_eq!(self.log(*id), first, "r{id} and r{} disagree", ids[0]);
        }
    }
}
