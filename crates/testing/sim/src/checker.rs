//! The oracle: safety invariants checked on every delivery, and the liveness condition.
//!
//! - Agreement: every replica delivers the same proposals at the same GSN.
//! - Validity: every delivered proposal was proposed, with that payload.
//! - Exactly-once: no replica's application sees a proposal twice.
//! - Local order (when enabled): each proposer's proposals arrive in LSN order.
//! - Promises never go backwards across restarts.
//! - Liveness: after the heal, every acknowledged proposal reaches every live member.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use synod_core::{Ballot, ConfigChange, Delivery, Lsn, Payload, ProposalId, ReplicaId, Slot};

/// A broken invariant, with what was observed.
pub type Violation = String;

/// What one replica's application has applied (volatile: rebuilt after a crash from the
/// snapshot and the replayed log).
#[derive(Clone, Debug, Default)]
pub struct AppState {
    /// The next GSN it expects.
    pub next_gsn: Slot,
    /// Every proposal applied.
    pub applied: BTreeSet<ProposalId>,
    /// Highest LSN applied per proposer.
    pub last_lsn: BTreeMap<ReplicaId, Lsn>,
    /// Rolling hash of everything applied, in order.
    pub hash: u64,
}

fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(5)
}

/// Global knowledge used by the checks.
#[derive(Debug, Default)]
pub struct Checker {
    /// Every proposal ever returned by `propose`, with its payload.
    pub proposed: BTreeMap<ProposalId, Bytes>,
    /// Proposals whose proposal-log record was durable: these must never be lost.
    pub acked: BTreeSet<ProposalId>,
    /// Proposals a removed replica gave up (may or may not be delivered).
    pub abandoned: BTreeSet<ProposalId>,
    /// What the first replica to deliver each GSN delivered there.
    chosen: BTreeMap<Slot, Vec<ProposalId>>,
    /// Highest promise each replica ever sent per slot.
    promises: BTreeMap<(ReplicaId, Slot), Ballot>,
    /// Preserve-local-order mode is on.
    pub local_order: bool,
    /// Replicas that lost their disk: their LSN sequence may jump once (the lost proposals
    /// leave gaps that every replica closes at the rejoin fence).
    pub lost_disks: BTreeSet<ReplicaId>,
}

impl Checker {
    /// Applies `delivery` to `app` on `replica`, checking agreement, validity, exactly-once and
    /// local order.
    ///
    /// # Errors
    /// The first violated invariant.
    pub fn apply(
        &mut self,
        replica: ReplicaId,
        app: &mut AppState,
        d: &Delivery,
    ) -> Result<(), Violation> {
        if d.gsn != app.next_gsn {
            return Err(format!(
                "{replica}: delivered GSN {} but expected {}",
                d.gsn, app.next_gsn
            ));
        }
        let ids: Vec<ProposalId> = d.proposals.iter().map(|p| p.id).collect();
        match self.chosen.get(&d.gsn) {
            Some(first) if *first != ids => {
                return Err(format!(
                    "agreement: {replica} delivered {ids:?} at GSN {} but another replica delivered {first:?}",
                    d.gsn
                ));
            }
            Some(_) => {}
            None => {
                self.chosen.insert(d.gsn, ids.clone());
            }
        }
        for p in &d.proposals {
            match (&p.payload, self.proposed.get(&p.id)) {
                (Payload::Command(b), Some(orig)) if b == orig => {}
                (Payload::Config(_), Some(_)) => {}
                // Replicas propose a peer's rejoin themselves, when it asks.
                (Payload::Config(ConfigChange::Rejoin { member, .. }), None)
                    if self.lost_disks.contains(member) => {}
                _ => {
                    return Err(format!(
                        "validity: {replica} delivered phantom or altered {:?}",
                        p.id
                    ));
                }
            }
            if !app.applied.insert(p.id) {
                return Err(format!(
                    "exactly-once: {replica} delivered {:?} twice (again at {})",
                    p.id, d.gsn
                ));
            }
            if self.local_order {
                let last = app.last_lsn.get(&p.id.proposer).copied().unwrap_or(Lsn(0));
                let in_order = if self.lost_disks.contains(&p.id.proposer) {
                    p.id.lsn > last
                } else {
                    p.id.lsn.0 == last.0 + 1
                };
                if !in_order {
                    return Err(format!(
                        "local order: {replica} delivered {:?} after LSN {} of that proposer",
                        p.id, last.0
                    ));
                }
            }
            let last = app.last_lsn.entry(p.id.proposer).or_default();
            *last = (*last).max(p.id.lsn);
            app.hash = mix(app.hash, u64::from(p.id.proposer.0) << 48 | p.id.lsn.0);
        }
        app.hash = mix(app.hash, d.gsn.0);
        app.next_gsn = d.gsn.next();
        Ok(())
    }

    /// Notes a promise (or an accept, which implies one) sent by `replica`.
    pub fn promise_sent(&mut self, replica: ReplicaId, slot: Slot, ballot: Ballot) {
        let e = self.promises.entry((replica, slot)).or_insert(ballot);
        *e = (*e).max(ballot);
    }

    /// After a restart: every promise the replica sent before is still held (for slots it
    /// has not compacted away, which it refuses to vote on at all).
    ///
    /// # Errors
    /// The first promise that went backwards.
    pub fn check_promises(
        &self,
        replica: ReplicaId,
        log_start: Slot,
        promised: impl Fn(Slot) -> Option<Ballot>,
    ) -> Result<(), Violation> {
        for ((r, slot), sent) in self
            .promises
            .range((replica, log_start)..=(replica, Slot(u64::MAX)))
        {
            debug_assert_eq!(*r, replica);
            let now = promised(*slot);
            if now < Some(*sent) {
                return Err(format!(
                    "promise went backwards on {replica} at {slot}: sent {sent:?}, now holds {now:?}"
                ));
            }
        }
        Ok(())
    }

    /// `replica` lost its disk: its acknowledged proposals not yet delivered are lost with
    /// it (they may or may not still be delivered), and it may no longer hold the promises
    /// it sent (its fence keeps it from voting where they mattered; agreement is checked).
    pub fn lost_disk(&mut self, replica: ReplicaId) {
        let lost: Vec<ProposalId> = self
            .acked
            .iter()
            .filter(|id| id.proposer == replica)
            .copied()
            .collect();
        self.abandoned.extend(lost);
        self.promises.retain(|(r, _), _| *r != replica);
        self.lost_disks.insert(replica);
    }

    /// Acknowledged proposals that `app` has not applied.
    #[must_use]
    pub fn missing(&self, app: &AppState) -> Vec<ProposalId> {
        self.acked
            .iter()
            .filter(|id| !self.abandoned.contains(id) && !app.applied.contains(id))
            .copied()
            .collect()
    }
}
