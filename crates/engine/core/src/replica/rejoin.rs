//! Rejoining after lost state: the fence.
//!
//! A replica whose durable state is gone (a log that failed its checksum, a replaced disk)
//! must not simply start again as a fresh acceptor under its old id: it may have promised a
//! ballot or accepted a value that a quorum counted, and a forgetful vote can let two values
//! be chosen for one slot. Nor may it reuse its reserved ballot or its LSNs.
//!
//! So the driver wipes the group's log and writes one [`Record::Fence`](crate::Record) with a
//! random nonce in its place, in one commit. The replica then:
//! 1. casts no vote and proposes nothing, and asks its peers (with every heartbeat) to
//!    propose [`ConfigChange::Rejoin`] carrying its nonce;
//! 2. catches up from its peers like any lagging replica (log or snapshot);
//! 3. once it has delivered the rejoin, at slot `d`, votes again in slots from the *fence*
//!    `d + 4 × config_lag`, and proposes again once it has delivered everything below it.
//!
//! Why the fence is safe: an acceptor votes only in slots below its delivered prefix plus
//! `4 × config_lag` ([`Replica::vote_reach`], the acceptor's `TooFar` rule), and its delivered
//! prefix when it lost its state was decided before the loss, while slot `d` was decided
//! after it (it holds a nonce drawn after the loss). So every slot below that prefix is below
//! `d`, and every old vote lies below the fence. Its old proposals (its reserved ballot, its
//! take-overs, its batches) lie below `d + config_lag`, the proposer's horizon: below the
//! fence too. Its own slots below the fence are taken over by its peers, which treat it as
//! unable to fill them.
//!
//! The fence is deterministic: every replica records it in [`CoreState::rejoined`] when it
//! delivers the rejoin, and when it delivers the slot before the fence it *closes* the
//! member's old LSN sequence (releases what preserve-local-order held back, and forgets the
//! gaps left by proposals the loss erased), so the member's new LSNs start above every old one.

use crate::config::ConfigChange;
use crate::message::Message;
use crate::snapshot::Rejoined;
use crate::types::{Lsn, Payload, ReplicaId, Slot};

use super::{Delivery, RejoinStatus, Replica};

/// Where this replica's own fence stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fence {
    /// It never lost its state.
    Open,
    /// It lost its state and has not delivered its rejoin yet: no votes anywhere.
    Unknown,
    /// Votes from this slot on.
    From(Slot),
}

impl Replica {
    /// How far above its delivered prefix an acceptor votes (and so the fence's distance
    /// above the slot delivering a rejoin).
    pub(super) fn vote_reach(&self) -> u64 {
        4 * self.opts.params.config_lag
    }

    pub(super) fn fence(&self) -> Fence {
        let Some(nonce) = self.fence_nonce else {
            return Fence::Open;
        };
        if cfg!(feature = "mutation-rejoin-without-fence") {
            // Planted bug: a replica that lost its state votes and proposes at once.
            return Fence::Open;
        }
        match self.core.rejoined.get(&self.id) {
            Some(r) if r.nonce == nonce => Fence::From(r.fence),
            _ => Fence::Unknown,
        }
    }

    /// Whether this replica may promise or accept in `slot`.
    pub(super) fn may_vote(&self, slot: Slot) -> bool {
        match self.fence() {
            Fence::Open => true,
            Fence::Unknown => false,
            Fence::From(fence) => slot >= fence,
        }
    }

    /// Whether this replica must not propose, take over or skip yet: it has not delivered
    /// everything below its fence.
    pub(super) fn proposer_fenced(&self) -> bool {
        match self.fence() {
            Fence::Open => false,
            Fence::Unknown => true,
            Fence::From(fence) => self.next_deliver < fence,
        }
    }

    /// The lowest own slot this replica may ever use again (its fence), if it is fenced.
    pub(super) fn own_floor(&self) -> Option<Slot> {
        match self.fence() {
            Fence::Open => Some(Slot(0)),
            Fence::Unknown => None,
            Fence::From(fence) => Some(fence),
        }
    }

    /// Whether `peer` cannot fill its slots at our frontier because it is rejoining: it asked
    /// us to propose its rejoin, or its fence lies above our frontier.
    pub(super) fn peer_fenced(&self, peer: ReplicaId) -> bool {
        self.rejoin_requests.contains_key(&peer)
            || self
                .core
                .rejoined
                .get(&peer)
                .is_some_and(|r| self.next_deliver < r.fence)
    }

    /// Where this replica stands in rejoining, if it lost its state and has not delivered
    /// everything below its fence yet.
    #[must_use]
    pub fn rejoin_status(&self) -> Option<RejoinStatus> {
        match self.fence() {
            Fence::Open => None,
            Fence::Unknown => Some(RejoinStatus::Waiting),
            Fence::From(fence) if self.next_deliver < fence => {
                Some(RejoinStatus::CatchingUp { fence })
            }
            Fence::From(_) => None,
        }
    }

    /// The slot that delivered this replica's own rejoin, once known. Everything this replica
    /// had delivered before it lost its state lies below that slot: so does the creation of
    /// every group (in the default group's log) it could have voted in.
    #[must_use]
    pub fn rejoined_at(&self) -> Option<Slot> {
        let nonce = self.fence_nonce?;
        self.core
            .rejoined
            .get(&self.id)
            .filter(|r| r.nonce == nonce)
            .map(|r| r.at)
    }

    /// With the heartbeats: while our rejoin is not delivered, ask every peer to propose it.
    pub(super) fn request_rejoin(&mut self) {
        if let (Fence::Unknown, Some(nonce)) = (self.fence(), self.fence_nonce) {
            // Our configurations may be stale (we may know only the first): ask everyone we
            // hear from too.
            let mut peers: std::collections::BTreeSet<ReplicaId> =
                self.peers().into_iter().collect();
            peers.extend(self.last_heard.keys().filter(|p| **p != self.id));
            for peer in peers {
                self.send(peer, Message::RejoinRequest { nonce });
            }
        }
    }

    /// A peer lost its state: propose its rejoin once per nonce (several peers may each
    /// propose it; only the first delivered counts).
    pub(super) fn on_rejoin_request(&mut self, from: ReplicaId, nonce: u64) {
        let delivered = self
            .core
            .rejoined
            .get(&from)
            .is_some_and(|r| r.nonce == nonce);
        if delivered || self.rejoin_requests.get(&from) == Some(&nonce) {
            return;
        }
        let change = ConfigChange::Rejoin {
            member: from,
            nonce,
            after: self.core.rejoined.get(&from).map(|r| r.at),
        };
        if self.try_propose(Payload::Config(change)).is_ok() {
            self.rejoin_requests.insert(from, nonce);
            self.metrics.rejoins_proposed += 1;
        }
        // Refused (no quorum, not a member, rejoining ourselves): the peer asks again.
    }

    /// Delivers a rejoin at `gsn`: records the member's fence, if the rejoin it was proposed
    /// after is still the latest (compare-and-set: duplicates of a request and stale requests
    /// delayed past a newer one change nothing; a refused one is proposed again when the
    /// member asks again). Returns the fence, or why the change was refused.
    pub(super) fn apply_rejoin(
        &mut self,
        gsn: Slot,
        member: ReplicaId,
        nonce: u64,
        after: Option<Slot>,
    ) -> Result<Slot, crate::ConfigError> {
        // Whatever the outcome, our proposal of it is settled: propose again if asked again.
        if self
            .rejoin_requests
            .get(&member)
            .is_some_and(|n| *n == nonce)
        {
            self.rejoin_requests.remove(&member);
        }
        if !self.core.configs.latest().members.contains(&member) {
            return Err(crate::ConfigError::NotMember(member));
        }
        let current = self.core.rejoined.get(&member).copied();
        if current.map(|r| r.at) != after {
            // Stale, or a duplicate of one already applied: the latest stands.
            return Ok(current.map_or(Slot(0), |r| r.fence));
        }
        let fence = Slot(gsn.0 + self.vote_reach());
        // The slots below the fence must be filled (others skip theirs, the member's are
        // revoked) before the member may propose again: treat them as in use, so an idle
        // group fills them too. Bounded (the fence is fixed), so this cannot feed itself.
        self.observe_slot(Slot(fence.0 - 1));
        self.core.rejoined.insert(
            member,
            Rejoined {
                nonce,
                at: gsn,
                fence,
            },
        );
        Ok(fence)
    }

    /// After a restart or a snapshot install: the slots below a fence not yet reached are
    /// still to be filled, as when the rejoin was delivered.
    pub(super) fn observe_pending_fences(&mut self) {
        let pending: Vec<Slot> = self
            .core
            .rejoined
            .values()
            .map(|r| r.fence)
            .filter(|f| *f > self.next_deliver)
            .collect();
        for fence in pending {
            self.observe_slot(Slot(fence.0 - 1));
        }
    }

    /// After delivering `gsn`: closes the old LSN sequence of each member whose fence is the
    /// next slot. Its old proposals all lie below the fence, so none can come later; those
    /// preserve-local-order held back behind a lost LSN are released now, in LSN order, and
    /// the gaps are forgotten, so the member's new LSNs (above all of these) are not held
    /// back or mistaken for old ones.
    pub(super) fn close_rejoined_epochs(&mut self, gsn: Slot, delivery: &mut Delivery) {
        let closing: Vec<ReplicaId> = self
            .core
            .rejoined
            .iter()
            .filter(|(_, r)| r.fence == gsn.next())
            .map(|(m, _)| *m)
            .collect();
        for member in closing {
            let held = self.core.held.remove(&member).unwrap_or_default();
            for (_, p) in held {
                if !self
                    .core
                    .delivered
                    .entry(member)
                    .or_default()
                    .contains(p.id.lsn)
                {
                    self.emit(gsn, p, delivery);
                }
            }
            let set = self.core.delivered.entry(member).or_default();
            if let Some(top) = set.sparse.last().copied() {
                set.contiguous = set.contiguous.max(top);
                set.sparse.clear();
            }
        }
    }

    /// The highest LSN of ours anyone has delivered (or holds back): a new proposal's LSN must
    /// exceed it, since after a rejoin our proposal log no longer remembers the old ones.
    pub(super) fn own_lsn_floor(&self) -> Lsn {
        let delivered = self.core.delivered.get(&self.id).map_or(Lsn(0), |d| {
            d.sparse
                .last()
                .copied()
                .unwrap_or(d.contiguous)
                .max(d.contiguous)
        });
        let held = self
            .core
            .held
            .get(&self.id)
            .and_then(|h| h.keys().next_back().copied())
            .unwrap_or(Lsn(0));
        delivered.max(held)
    }
}
