//! Group configuration: members, quorum policy, follow-the-sun schedule, and the history of
//! configurations by slot.
//!
//! A configuration change is itself a proposal. Delivered at slot `d`, it takes effect at slot
//! `d + config_lag`, so the configuration of any slot below `next_to_deliver + config_lag` is
//! known from the delivered prefix alone, and no slot ever has two configurations. A proposer
//! only works on slots whose configuration it knows.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::quorum::{PolicyError, QuorumPolicy};
use crate::types::{ReplicaId, Slot, Time};

/// Settings fixed when a group is created: every replica must use the same, because they
/// change what is delivered or which ballots are legal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupParams {
    /// Weak reservations: slots are owned round-robin and owners skip phase 1.
    pub reservations: bool,
    /// Deliver each proposer's commands in its LSN order.
    pub preserve_local_order: bool,
    /// Slots between the delivery of a configuration change and the slot it governs. Also the
    /// furthest any replica works ahead of its delivered prefix.
    pub config_lag: u64,
}

impl Default for GroupParams {
    fn default() -> Self {
        GroupParams {
            reservations: true,
            preserve_local_order: false,
            config_lag: 256,
        }
    }
}

/// Which role a follow-the-sun schedule moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SunRole {
    /// The policy becomes `Singleton { replica: holder }`.
    Singleton,
    /// The policy becomes `MajorityTieBreaker { tie_breaker: holder }`.
    TieBreaker,
}

/// One shift of a follow-the-sun schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SunShift {
    /// Start of the shift, seconds after midnight UTC.
    pub start_secs: u32,
    /// Who holds the role during the shift.
    pub holder: ReplicaId,
}

/// Moves the singleton or tie-breaker role by time of day. The time used is the agreed time
/// (carried in batches in the log), never a replica's own clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SunSchedule {
    /// The role that moves.
    pub role: SunRole,
    /// Shifts; the one with the latest start at or before the time of day applies (wrapping
    /// around midnight to the last shift).
    pub shifts: Vec<SunShift>,
}

const SECS_PER_DAY: u64 = 86_400;

impl SunSchedule {
    /// The holder at agreed time `t`.
    #[must_use]
    pub fn holder_at(&self, t: Time) -> Option<ReplicaId> {
        let tod = (t.0 / 1_000_000_000 % SECS_PER_DAY) as u32;
        let mut best: Option<&SunShift> = None;
        let mut last: Option<&SunShift> = None;
        for s in &self.shifts {
            if s.start_secs <= tod && best.is_none_or(|b| s.start_secs > b.start_secs) {
                best = Some(s);
            }
            if last.is_none_or(|l| s.start_secs > l.start_secs) {
                last = Some(s);
            }
        }
        best.or(last).map(|s| s.holder)
    }

    /// The policy the schedule prescribes at `t`.
    #[must_use]
    pub fn policy_at(&self, t: Time) -> Option<QuorumPolicy> {
        self.holder_at(t).map(|holder| match self.role {
            SunRole::Singleton => QuorumPolicy::Singleton { replica: holder },
            SunRole::TieBreaker => QuorumPolicy::MajorityTieBreaker {
                tie_breaker: holder,
            },
        })
    }
}

/// The configuration of one slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Voting members, in id order (slot ownership rotates in this order).
    pub members: BTreeSet<ReplicaId>,
    /// Quorums.
    pub policy: QuorumPolicy,
    /// Optional follow-the-sun schedule; when set it overrides `policy` as agreed time moves.
    pub sun: Option<SunSchedule>,
}

/// A change proposed through the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigChange {
    /// Add a voting member.
    AddMember(ReplicaId),
    /// Remove a member.
    RemoveMember(ReplicaId),
    /// Replace the quorum policy.
    SetPolicy(QuorumPolicy),
    /// Install or clear a follow-the-sun schedule.
    SetSunSchedule(Option<SunSchedule>),
    /// `member` lost its durable state (a corrupt log, a replaced disk) and asks to vote
    /// again. Changes no configuration: its delivery at slot `d` is the *fence* (see
    /// `replica/rejoin.rs`): the member votes and proposes again only from slot
    /// `d + 4 × config_lag` on, above every slot it could have voted in before.
    Rejoin {
        /// The member that forgot its state.
        member: ReplicaId,
        /// Chosen at random by the member when it found its state lost, to recognise the
        /// delivery of its own request (and not an older one).
        nonce: u64,
        /// The slot that delivered the member's previous rejoin, as the proposer knew it
        /// (`None`: none). Applied only if that is still the latest: a compare-and-set, so a
        /// stale request delayed past a newer one changes nothing.
        after: Option<Slot>,
    },
}

/// Why a configuration change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The resulting policy would be unsafe or unreachable.
    #[error("unsafe quorum policy: {0}")]
    Policy(#[from] PolicyError),
    /// Adding a replica that is already a member.
    #[error("{0} is already a member")]
    AlreadyMember(ReplicaId),
    /// Removing a replica that is not a member.
    #[error("{0} is not a member")]
    NotMember(ReplicaId),
    /// A schedule with no shifts.
    #[error("a follow-the-sun schedule needs at least one shift")]
    EmptySchedule,
}

/// Why a configuration history received from a peer is not one a replica could hold
/// ([`ConfigHistory::check`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// No configuration at all.
    #[error("the configuration history is empty")]
    Empty,
    /// The first configuration starts after the slot it must govern.
    #[error("the first configuration starts at {first}, after the snapshot's slot {next_slot}")]
    StartsAfter {
        /// Where the first configuration starts.
        first: Slot,
        /// The snapshot's first undelivered slot.
        next_slot: Slot,
    },
    /// A configuration starts further ahead than a delivered change can put one.
    #[error("a configuration starts at {last}, too far past the snapshot's slot {next_slot}")]
    TooFarAhead {
        /// Where the newest configuration starts.
        last: Slot,
        /// The snapshot's first undelivered slot.
        next_slot: Slot,
    },
    /// Two configurations out of slot order.
    #[error("the configuration starting at {0} is out of slot order")]
    OutOfOrder(Slot),
    /// A configuration that is not valid.
    #[error("the configuration starting at {from}: {error}")]
    Invalid {
        /// Where it starts.
        from: Slot,
        /// What is wrong with it.
        error: ConfigError,
    },
}

impl Config {
    /// A configuration with a majority policy.
    #[must_use]
    pub fn majority(members: impl IntoIterator<Item = ReplicaId>) -> Config {
        Config {
            members: members.into_iter().collect(),
            policy: QuorumPolicy::Majority,
            sun: None,
        }
    }

    /// Checks the policy (and schedule, for every holder) against the members.
    ///
    /// # Errors
    /// Why the configuration is unsafe.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy.validate(&self.members)?;
        if let Some(sun) = &self.sun {
            if sun.shifts.is_empty() {
                return Err(ConfigError::EmptySchedule);
            }
            for s in &sun.shifts {
                sun.policy_at(Time(u64::from(s.start_secs) * 1_000_000_000))
                    .expect("non-empty schedule has a holder")
                    .validate(&self.members)?;
            }
        }
        Ok(())
    }

    /// The configuration after `change`, validated.
    ///
    /// # Errors
    /// Why the change is refused; the configuration is then unchanged.
    pub fn apply(&self, change: &ConfigChange) -> Result<Config, ConfigError> {
        let mut next = self.clone();
        match change {
            ConfigChange::AddMember(r) => {
                if !next.members.insert(*r) {
                    return Err(ConfigError::AlreadyMember(*r));
                }
            }
            ConfigChange::RemoveMember(r) => {
                if !next.members.remove(r) {
                    return Err(ConfigError::NotMember(*r));
                }
            }
            ConfigChange::SetPolicy(p) => next.policy = p.clone(),
            ConfigChange::SetSunSchedule(s) => next.sun = s.clone(),
            ConfigChange::Rejoin { member, .. } => {
                if !next.members.contains(member) {
                    return Err(ConfigError::NotMember(*member));
                }
            }
        }
        next.validate()?;
        Ok(next)
    }

    /// The owner of `slot` under weak reservations: members take turns in id order.
    #[must_use]
    pub fn owner(&self, slot: Slot) -> ReplicaId {
        let n = self.members.len() as u64;
        assert!(n > 0, "invariant: a configuration has members");
        *self
            .members
            .iter()
            .nth((slot.0 % n) as usize)
            .expect("index < len")
    }

    /// Position of `r` in ring order, if a member.
    #[must_use]
    pub fn index_of(&self, r: ReplicaId) -> Option<usize> {
        self.members.iter().position(|m| *m == r)
    }
}

/// Configurations by the first slot they govern. Entries are only ever appended, at slots above
/// every existing entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigHistory {
    entries: Vec<(Slot, Arc<Config>)>,
}

impl ConfigHistory {
    /// History starting with `genesis` at slot 0.
    #[must_use]
    pub fn new(genesis: Config) -> ConfigHistory {
        ConfigHistory {
            entries: vec![(Slot(0), Arc::new(genesis))],
        }
    }

    /// The configuration governing `slot` as far as known. Callers check that `slot` is inside
    /// the known horizon before relying on it for a quorum.
    #[must_use]
    pub fn at(&self, slot: Slot) -> &Arc<Config> {
        let idx = self.entries.partition_point(|(from, _)| *from <= slot);
        &self.entries[idx.saturating_sub(1)].1
    }

    /// The newest configuration (possibly not yet in effect).
    #[must_use]
    pub fn latest(&self) -> &Arc<Config> {
        &self.entries.last().expect("history is never empty").1
    }

    /// Appends `config` governing slots from `from`.
    pub fn push(&mut self, from: Slot, config: Config) {
        let last = self.entries.last().expect("history is never empty").0;
        assert!(
            from > last,
            "invariant: configurations are appended in slot order"
        );
        self.entries.push((from, Arc::new(config)));
    }

    /// Sets the configuration governing slots from `from`: appends, or replaces the newest
    /// entry if it starts at the same slot (two changes delivered in one slot).
    pub fn set(&mut self, from: Slot, config: Config) {
        let last = self.entries.last_mut().expect("history is never empty");
        if last.0 == from {
            last.1 = Arc::new(config);
        } else {
            self.push(from, config);
        }
    }

    /// Checks a history received in a peer's snapshot at `next_slot` (its first undelivered
    /// slot) against what a replica's own history always is: not empty, in increasing slot
    /// order, its first entry governing `next_slot` or earlier, none starting `config_lag` or
    /// more slots past it (a change delivered below `next_slot` takes effect less than that
    /// far on), and every configuration valid.
    ///
    /// # Errors
    /// The first way in which the history is not one a replica could hold.
    pub fn check(&self, next_slot: Slot, config_lag: u64) -> Result<(), HistoryError> {
        let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) else {
            return Err(HistoryError::Empty);
        };
        if first.0 > next_slot {
            return Err(HistoryError::StartsAfter {
                first: first.0,
                next_slot,
            });
        }
        if last.0.0 >= next_slot.0.saturating_add(config_lag) {
            return Err(HistoryError::TooFarAhead {
                last: last.0,
                next_slot,
            });
        }
        if let Some(w) = self.entries.windows(2).find(|w| w[0].0 >= w[1].0) {
            return Err(HistoryError::OutOfOrder(w[1].0));
        }
        for (from, config) in &self.entries {
            config
                .validate()
                .map_err(|error| HistoryError::Invalid { from: *from, error })?;
        }
        Ok(())
    }

    /// Drops entries that no slot at or above `slot` can use any more.
    pub fn forget_before(&mut self, slot: Slot) {
        let idx = self.entries.partition_point(|(from, _)| *from <= slot);
        if idx > 1 {
            self.entries.drain(..idx - 1);
        }
    }

    /// True if `r` is a member of any configuration still in the history.
    #[must_use]
    pub fn knows(&self, r: ReplicaId) -> bool {
        self.entries.iter().any(|(_, c)| c.members.contains(&r))
    }

    /// Every replica that is a member of any configuration in the history.
    #[must_use]
    pub fn all_members(&self) -> BTreeSet<ReplicaId> {
        self.entries
            .iter()
            .flat_map(|(_, c)| c.members.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_answers_by_slot() {
        let mut h =
            ConfigHistory::new(Config::majority([ReplicaId(0), ReplicaId(1), ReplicaId(2)]));
        let c2 = h
            .latest()
            .apply(&ConfigChange::AddMember(ReplicaId(3)))
            .unwrap();
        h.push(Slot(10), c2);
        assert_eq!(h.at(Slot(9)).members.len(), 3);
        assert_eq!(h.at(Slot(10)).members.len(), 4);
        assert_eq!(h.at(Slot(1000)).members.len(), 4);
        h.forget_before(Slot(12));
        assert_eq!(h.at(Slot(12)).members.len(), 4);
        assert!(h.knows(ReplicaId(3)));
        assert!(!h.knows(ReplicaId(0)) || h.at(Slot(12)).members.contains(&ReplicaId(0)));
    }

    #[test]
    fn removing_the_singleton_is_refused() {
        let mut c = Config::majority([ReplicaId(0), ReplicaId(1), ReplicaId(2)]);
        c.policy = QuorumPolicy::Singleton {
            replica: ReplicaId(1),
        };
        let err = c
            .apply(&ConfigChange::RemoveMember(ReplicaId(1)))
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::Policy(PolicyError::NotAMember { .. })),
            "{err}"
        );
    }

    #[test]
    fn sun_schedule_wraps_midnight() {
        let s = SunSchedule {
            role: SunRole::Singleton,
            shifts: vec![
                SunShift {
                    start_secs: 8 * 3600,
                    holder: ReplicaId(0),
                },
                SunShift {
                    start_secs: 16 * 3600,
                    holder: ReplicaId(1),
                },
            ],
        };
        let at = |h: u64| s.holder_at(Time(h * 3600 * 1_000_000_000));
        assert_eq!(at(9), Some(ReplicaId(0)));
        assert_eq!(at(17), Some(ReplicaId(1)));
        assert_eq!(
            at(3),
            Some(ReplicaId(1)),
            "before the first shift: the last one continues"
        );
        assert_eq!(at(24 + 9), Some(ReplicaId(0)));
    }
}
