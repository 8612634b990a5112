//! Faults: partitions, crashes that lose unsynced records, restarts, pauses and
//! configuration changes, and the heal that starts the liveness phase.

use std::collections::BTreeSet;

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use synod_core::{
    Config, ConfigChange, DurableState, Payload, QuorumPolicy, Record, Replica, ReplicaId, Slot,
    SunRole, SunSchedule, SunShift,
};

use super::{Kind, MS, Sim, US};
use crate::checker::{AppState, Violation};

impl Sim {
    pub(super) fn live_ids(&self) -> Vec<ReplicaId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.replica.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    pub(super) fn fault_step(&mut self) {
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
        // A connection lost while both ends live (a reset, a re-dial): a false suspicion.
        // Drawn only when enabled, so seeds without hints replay as they always did.
        if self.sc.lost_hint_p > 0.0 && self.rng.random_bool(self.sc.lost_hint_p / 10.0) {
            let live = self.live_ids();
            if live.len() > 1 {
                let to = live[self.rng.random_range(0..live.len())];
                let lost = live[self.rng.random_range(0..live.len())];
                if to != lost {
                    self.schedule(self.sc.delay_min_us * US, Kind::PeerLost { to, lost });
                }
            }
        }
    }

    /// A crashed process's connections end at once: its peers hear of it (unless cut off
    /// from it), after anything it sent before (TCP delivers in order, then the end).
    fn tell_peers_of_crash(&mut self, id: ReplicaId) {
        if self.sc.lost_hint_p == 0.0 || !self.rng.random_bool(self.sc.lost_hint_p) {
            return;
        }
        let after = (self.sc.delay_min_us + self.sc.delay_jitter_us) * US + US;
        let peers: Vec<ReplicaId> = self.live_ids().into_iter().filter(|p| *p != id).collect();
        for to in peers {
            if !self.blocked.contains_key(&(id, to)) {
                self.schedule(after, Kind::PeerLost { to, lost: id });
            }
        }
    }

    pub(super) fn partition(&mut self, ids: &[ReplicaId]) {
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

    pub(super) fn crash(&mut self, id: ReplicaId) {
        let torn = self.rng.random_bool(self.sc.torn_p);
        // Drawn only when enabled, so seeds without amnesia replay as they always did.
        let amnesia = self.sc.amnesia_p > 0.0
            && self.rng.random_bool(self.sc.amnesia_p)
            && self.may_lose_disk(id);
        let nonce = if amnesia { self.rng.random() } else { 0 };
        let node = self.nodes.get_mut(&id).expect("exists");
        if node.replica.is_none() {
            return;
        }
        node.replica = None;
        node.incarnation += 1;
        node.waiting.clear();
        node.unanswered.clear();
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
        self.tell_peers_of_crash(id);
        if amnesia {
            // What a node does with a corrupt log: wipe it and leave one fence record, in
            // one commit. Its acknowledged but undelivered proposals are lost with the disk.
            let node = self.nodes.get_mut(&id).expect("exists");
            node.durable = vec![Record::Fence { nonce }];
            node.latest_snapshot = None;
            self.checker.lost_disk(id);
            self.rejoining.insert(id);
            self.stats.amnesias += 1;
            self.log(|| format!("{id} lost its disk (fence nonce {nonce:#x})"));
        }
    }

    /// Whether `id` may lose its disk now: the group must be able to agree on its rejoin and
    /// fill its slots without it (three or more members under a majority policy, no
    /// follow-the-sun schedule, no other member rejoining). Losing the disks of two members
    /// of three is data loss no protocol can repair, and a policy that needs the victim's
    /// vote cannot decide its rejoin.
    fn may_lose_disk(&self, id: ReplicaId) -> bool {
        let Some(replica) = self.nodes[&id].replica.as_ref() else {
            return false;
        };
        let ok = |c: &Config| {
            c.members.len() >= 3
                && c.sun.is_none()
                && matches!(
                    c.policy,
                    QuorumPolicy::Majority | QuorumPolicy::MajorityTieBreaker { .. }
                )
        };
        ok(replica.latest_config())
            && ok(replica.config_at(replica.applied()))
            && !self.rejoining_now(Some(id))
    }

    /// Whether a member other than `except` lost its disk and has not yet caught up past
    /// its fence (a crashed one counts as still rejoining).
    pub(super) fn rejoining_now(&self, except: Option<ReplicaId>) -> bool {
        self.rejoining.iter().any(|r| {
            Some(*r) != except
                && self.nodes[r]
                    .replica
                    .as_ref()
                    .is_none_or(|x| x.rejoin_status().is_some())
        })
    }

    pub(super) fn restart(&mut self, id: ReplicaId) -> Result<(), Violation> {
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

    pub(super) fn reconfigure(&mut self, live: &[ReplicaId]) {
        let at = live[self.rng.random_range(0..live.len())];
        let config = self.nodes[&at]
            .replica
            .as_ref()
            .expect("live")
            .latest_config()
            .clone();
        let members: Vec<ReplicaId> = config.members.iter().copied().collect();
        let pick = |rng: &mut ChaCha8Rng| members[rng.random_range(0..members.len())];
        // While a member rejoins, no policy may come to need its vote (it has none to give
        // below its fence, and its rejoin could never be decided).
        // Seeds that lose disks keep to policies any majority can serve: a policy or schedule
        // decided while a member lags can reach it only after it lost its disk.
        let choice = if self.rejoining_now(None) {
            5
        } else if self.sc.amnesia_p > 0.0 {
            [0, 1, 2, 5][self.rng.random_range(0..4)]
        } else {
            self.rng.random_range(0..6)
        };
        let change = match choice {
            0 if members.len() < 7 => {
                let id = ReplicaId(self.next_id);
                self.next_id += 1;
                self.add_node(id);
                ConfigChange::AddMember(id)
            }
            // Removals race (each proposer checks its own view); where disks get lost, keep
            // enough members that two concurrent removals still leave three.
            1 if members.len() > 3 + 2 * usize::from(self.sc.amnesia_p > 0.0) => {
                ConfigChange::RemoveMember(pick(&mut self.rng))
            }
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
        self.tell_what_the_node_heard(at);
        let node = self.nodes.get_mut(&at).expect("exists");
        let replica = node.replica.as_mut().expect("live");
        if let Ok(pid) = replica.propose(self.now, Payload::Config(change)) {
            node.unanswered.insert(pid);
            self.checker.proposed.insert(pid, Bytes::new());
        }
        let r = self.drain(at);
        self.note(r);
    }

    /// Liveness phase: heal partitions, stop loss, restart and resume everyone, and drop
    /// policies that need one particular replica (a singleton that was removed cannot come
    /// back, but schedules may still point at a slow one).
    pub(super) fn heal_all(&mut self) {
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
}
