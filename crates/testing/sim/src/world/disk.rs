//! The node's disk and the ready contract: records go to an unsynced buffer, an fsync makes
//! them durable, and only then are the ready's messages sent and its deliveries applied.
//! Also snapshots: compaction and installing a peer's snapshot.

use bytes::Bytes;
use rand::Rng;
use synod_core::{Delivery, Message, ProposalId, Ready, Record, ReplicaId, SnapshotRequest, Time};

use super::{EPOCH, Kind, MS, Pending, Sim, US, mix};
use crate::checker::Violation;

impl Sim {
    pub(super) fn on_ready(&mut self, id: ReplicaId, ready: Ready) -> Result<(), Violation> {
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
        let mut deliveries = ready.deliveries;
        // Early deliveries are applied now, unless an earlier ready still holds deliveries
        // waiting for its fsync (GSN order comes first).
        let behind = node.waiting.iter().any(|p| !p.deliveries.is_empty());
        if !behind && ready.early_deliveries > 0 {
            let late = deliveries.split_off(ready.early_deliveries);
            let early = std::mem::replace(&mut deliveries, late);
            self.apply_deliveries(id, &early)?;
        }
        let node = self.nodes.get_mut(&id).expect("node exists");
        let pending = Pending {
            seq: ready.seq,
            has_records,
            messages: ready.messages,
            deliveries,
            snapshot_needed: ready.snapshot_needed,
            abandoned: ready.abandoned,
            delivered_in_snapshot: ready.delivered_in_snapshot,
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

    pub(super) fn start_fsync(&mut self, id: ReplicaId) {
        let node = self.nodes.get_mut(&id).expect("node exists");
        if node.fsync.is_some() || node.unsynced.is_empty() {
            return;
        }
        node.fsync = Some((node.unsynced.len(), node.last_seq));
        let incarnation = node.incarnation;
        let latency = self.rng.random_range(50..=2_000) * US;
        self.schedule(latency, Kind::FsyncDone(id, incarnation));
    }

    pub(super) fn fsync_done(&mut self, id: ReplicaId, incarnation: u64) -> Result<(), Violation> {
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
    pub(super) fn release(&mut self, id: ReplicaId, p: Pending) -> Result<(), Violation> {
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
        self.apply_deliveries(id, &p.deliveries)?;
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
        let node = self.nodes.get_mut(&id).expect("node exists");
        for pid in &p.delivered_in_snapshot {
            if !node.app.applied.contains(pid) {
                return Err(format!(
                    "{id} was told {pid:?} is delivered in its snapshot, which does not hold it"
                ));
            }
            node.unanswered.remove(pid);
        }
        for pid in &p.abandoned {
            node.unanswered.remove(pid);
        }
        self.checker.abandoned.extend(p.abandoned);
        self.checker.acked.extend(p.proposals);
        Ok(())
    }

    /// Applies deliveries to the node's application, checking every invariant.
    fn apply_deliveries(
        &mut self,
        id: ReplicaId,
        deliveries: &[Delivery],
    ) -> Result<(), Violation> {
        for d in deliveries {
            let node = self.nodes.get_mut(&id).expect("node exists");
            // Answered, with the output or (below the floor) with "outcome unknown".
            for p in &d.proposals {
                node.unanswered.remove(&p.id);
            }
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
        Ok(())
    }

    pub(super) fn maybe_compact(&mut self, id: ReplicaId) -> Result<(), Violation> {
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

    pub(super) fn snapshot_arrive(
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
}
