//! Quiescence: an idle group costs nothing.
//!
//! A node may host thousands of groups, most of them idle most of the time. Heartbeats are
//! what an idle group would still spend (a message to every peer every interval), so a replica
//! stops sending them, and arms no timer, once there is provably nothing for the group to
//! do (CockroachDB quiesces idle ranges the same way):
//!
//! - it has nothing of its own in flight: no queued or pending proposals, no attempts, no
//!   catch-up, snapshot, take-over or rejoin under way, nothing undurable;
//! - every slot it has seen in use is delivered (`highest_seen < next_deliver`);
//! - every peer of the current and latest configuration was heard from within the liveness
//!   timeout and reported exactly this applied slot.
//!
//! Going quiet, it sends a last heartbeat marked `quiet`, so that each peer learns its final
//! position and can go quiet in turn. A quiet replica stays quiet on a heartbeat that brings
//! no news (the same applied slot, no higher slot in use); it answers one from a peer that is
//! not quiet (which may have lost the last heartbeat), so the group settles even over a lossy
//! network. Anything else wakes it: a proposal, any other message, a heartbeat with news.
//!
//! Safety does not depend on any of this: a quiet replica decides nothing and votes as any
//! replica does when a message wakes it. What quiescence trades is failure detection while
//! idle: a quiet replica hears nothing from its peers. The driver knows better, since the
//! node hears from its peers through its other groups (a node keeps its default group
//! awake for that): it passes that on with [`Replica::heard_from`] before waking a replica, so
//! that a write to a woken group is refused at once only if a quorum is really out of reach.
//! While quiet, [`Replica::has_quorum`] reports the quorum it had when it went quiet.

use crate::message::Message;
use crate::types::{ReplicaId, Slot, Time};

use super::Replica;

impl Replica {
    /// True if this replica sends no heartbeats and arms no timer (see the module header).
    #[must_use]
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Whether there is nothing left for this group to do (the conditions in the header).
    pub(super) fn can_quiesce(&self) -> bool {
        if !self.opts.quiesce
            || !self.queue.is_empty()
            || !self.proposals.is_empty()
            || !self.attempts.is_empty()
            || self.takeover_at.is_some()
            || self.catchup_deadline.is_some()
            || self.snapshot_deadline.is_some()
            || !self.rejoin_requests.is_empty()
            || self.proposer_fenced()
            || !self.undurable_accepts.is_empty()
            || !self.undurable_decisions.is_empty()
            || !self.suspected.is_empty()
            || self.highest_seen >= self.next_deliver
            || self.decided.range(self.next_deliver..).next().is_some()
            || self.accepted.range(self.next_deliver..).next().is_some()
        {
            return false;
        }
        if cfg!(feature = "mutation-quiesce-ignores-peers") {
            // Planted bug: go quiet without knowing that every peer is where we are.
            return true;
        }
        self.quorum_peers().into_iter().all(|peer| {
            self.peer_applied.get(&peer) == Some(&self.next_deliver)
                && self
                    .last_heard
                    .get(&peer)
                    .is_some_and(|t| self.now.since(*t) <= self.opts.liveness_timeout_ns)
        })
    }

    /// The peers in the configuration of the next slot and in the latest one: the replicas
    /// whose position a quiet replica must know.
    fn quorum_peers(&self) -> Vec<ReplicaId> {
        let mut peers: Vec<ReplicaId> = self
            .core
            .configs
            .at(self.next_deliver)
            .members
            .iter()
            .chain(self.core.configs.latest().members.iter())
            .copied()
            .filter(|m| *m != self.id)
            .collect();
        peers.sort_unstable();
        peers.dedup();
        peers
    }

    /// Heartbeats are due: sends them, and goes quiet if there is nothing left to do (the
    /// heartbeat just sent, marked quiet, is the last).
    pub(super) fn heartbeat_or_quiesce(&mut self) {
        let quiet = self.can_quiesce();
        self.send_heartbeats(quiet);
        if quiet {
            self.quiet = true;
            self.metrics.quiesced += 1;
        }
    }

    /// A quiet replica's answer to a heartbeat that brings no news: `true` if it was one (and
    /// was answered if the sender is not quiet), `false` if the replica must wake for it.
    pub(super) fn stays_quiet_for(&mut self, from: ReplicaId, message: &Message) -> bool {
        let Message::Heartbeat {
            applied,
            highest_seen,
            quiet,
        } = *message
        else {
            return false;
        };
        if applied != self.next_deliver || highest_seen > self.highest_seen {
            return false;
        }
        if !quiet {
            let (applied, highest_seen) = (self.next_deliver, self.highest_seen);
            self.send(
                from,
                Message::Heartbeat {
                    applied,
                    highest_seen,
                    quiet: true,
                },
            );
        }
        true
    }

    /// Leaves quiescence, if quiet: heartbeats resume at once.
    pub(super) fn wake(&mut self) {
        if !self.quiet {
            return;
        }
        self.quiet = false;
        self.metrics.woken += 1;
        self.next_heartbeat = self.now;
    }

    /// Tells the replica that `peer`'s node was heard from at `at` (through another group, or
    /// the node's own traffic): a quiet replica hears nothing from its peers itself. Counts
    /// for the quorum a proposal needs; a replica not in any known configuration is ignored.
    pub fn heard_from(&mut self, peer: ReplicaId, at: Time) {
        if peer == self.id || !self.core.configs.knows(peer) {
            return;
        }
        let t = self.last_heard.entry(peer).or_insert(at);
        *t = (*t).max(at);
    }

    /// The slot a quiet replica has applied up to, with every peer (for tests).
    #[doc(hidden)]
    #[must_use]
    pub fn quiet_at(&self) -> Option<Slot> {
        self.quiet.then_some(self.next_deliver)
    }
}
