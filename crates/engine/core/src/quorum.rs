//! Quorum policies, expressed as phase-1 and phase-2 quorums that must intersect
//! (Flexible Paxos, Howard et al. 2016).
//!
//! Safety needs only that every phase-1 quorum intersects every phase-2 quorum of the same
//! slot's configuration. [`QuorumPolicy::validate`] refuses a policy for which that cannot be
//! guaranteed, with an error that says why.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::types::ReplicaId;

/// How many, and which, replicas must answer in each phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuorumPolicy {
    /// More than half of the members, in both phases.
    Majority,
    /// Majority; with an even number of members, exactly half is also a quorum when it includes
    /// the tie-breaker.
    MajorityTieBreaker {
        /// The distinguished replica that breaks ties.
        tie_breaker: ReplicaId,
    },
    /// One distinguished replica decides alone (its site commits with no WAN round trip).
    Singleton {
        /// The replica whose vote is the quorum.
        replica: ReplicaId,
    },
    /// Every member must accept (phase 2); any one member suffices for phase 1.
    Unanimous,
    /// Counted quorums of the given sizes; safe when `phase1 + phase2 > members`.
    Flexible {
        /// Replicas needed in phase 1.
        phase1: usize,
        /// Replicas needed in phase 2.
        phase2: usize,
    },
}

/// Why a policy cannot be used with a membership.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// There are no members at all.
    #[error("a group needs at least one member")]
    NoMembers,
    /// A distinguished replica named by the policy is not a member.
    #[error("{role} {replica} is not a member of the group")]
    NotAMember {
        /// Which role the policy gives it.
        role: &'static str,
        /// The missing replica.
        replica: ReplicaId,
    },
    /// Counted quorums that could miss each other.
    #[error(
        "phase-1 quorum {phase1} + phase-2 quorum {phase2} must exceed the {members} members, \
         otherwise two quorums can be disjoint and two values can be chosen"
    )]
    NoIntersection {
        /// Phase-1 size.
        phase1: usize,
        /// Phase-2 size.
        phase2: usize,
        /// Member count.
        members: usize,
    },
    /// A counted quorum larger than the group, or empty: it can never be reached.
    #[error("quorum size {size} is outside 1..={members}: it could never be reached")]
    Unreachable {
        /// The impossible size.
        size: usize,
        /// Member count.
        members: usize,
    },
}

impl QuorumPolicy {
    /// Checks that every phase-1 quorum intersects every phase-2 quorum for `members`.
    ///
    /// # Errors
    /// A [`PolicyError`] naming what is wrong.
    pub fn validate(&self, members: &BTreeSet<ReplicaId>) -> Result<(), PolicyError> {
        let n = members.len();
        if n == 0 {
            return Err(PolicyError::NoMembers);
        }
        match self {
            QuorumPolicy::Majority | QuorumPolicy::Unanimous => Ok(()),
            QuorumPolicy::MajorityTieBreaker { tie_breaker } => {
                if members.contains(tie_breaker) {
                    Ok(())
                } else {
                    Err(PolicyError::NotAMember {
                        role: "tie-breaker",
                        replica: *tie_breaker,
                    })
                }
            }
            QuorumPolicy::Singleton { replica } => {
                if members.contains(replica) {
                    Ok(())
                } else {
                    Err(PolicyError::NotAMember {
                        role: "singleton",
                        replica: *replica,
                    })
                }
            }
            QuorumPolicy::Flexible { phase1, phase2 } => {
                for size in [*phase1, *phase2] {
                    if size == 0 || size > n {
                        return Err(PolicyError::Unreachable { size, members: n });
                    }
                }
                if phase1 + phase2 <= n {
                    return Err(PolicyError::NoIntersection {
                        phase1: *phase1,
                        phase2: *phase2,
                        members: n,
                    });
                }
                Ok(())
            }
        }
    }

    /// True if `voters` (only members are counted) form a phase-1 quorum.
    #[must_use]
    pub fn is_phase1_quorum(
        &self,
        members: &BTreeSet<ReplicaId>,
        voters: &BTreeSet<ReplicaId>,
    ) -> bool {
        self.is_quorum(members, voters, Phase::One)
    }

    /// True if `voters` (only members are counted) form a phase-2 quorum.
    #[must_use]
    pub fn is_phase2_quorum(
        &self,
        members: &BTreeSet<ReplicaId>,
        voters: &BTreeSet<ReplicaId>,
    ) -> bool {
        self.is_quorum(members, voters, Phase::Two)
    }

    fn is_quorum(
        &self,
        members: &BTreeSet<ReplicaId>,
        voters: &BTreeSet<ReplicaId>,
        phase: Phase,
    ) -> bool {
        let n = members.len();
        let count = voters.iter().filter(|v| members.contains(v)).count();
        let needed = match self {
            QuorumPolicy::Majority => n / 2 + 1,
            QuorumPolicy::MajorityTieBreaker { tie_breaker } => {
                if n.is_multiple_of(2) && count == n / 2 && voters.contains(tie_breaker) {
                    return true;
                }
                n / 2 + 1
            }
            QuorumPolicy::Singleton { replica } => {
                return members.contains(replica) && voters.contains(replica);
            }
            QuorumPolicy::Unanimous => match phase {
                Phase::One => 1,
                Phase::Two => n,
            },
            QuorumPolicy::Flexible { phase1, phase2 } => match phase {
                Phase::One => *phase1,
                Phase::Two => *phase2,
            },
        };
        count >= needed.max(1)
    }
}

#[derive(Clone, Copy)]
enum Phase {
    One,
    Two,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u16) -> BTreeSet<ReplicaId> {
        (0..n).map(ReplicaId).collect()
    }

    fn subsets(m: &BTreeSet<ReplicaId>) -> Vec<BTreeSet<ReplicaId>> {
        let v: Vec<_> = m.iter().copied().collect();
        (0u32..(1 << v.len()))
            .map(|mask| {
                v.iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, r)| *r)
                    .collect()
            })
            .collect()
    }

    fn policies(n: u16) -> Vec<QuorumPolicy> {
        let mut p = vec![QuorumPolicy::Majority, QuorumPolicy::Unanimous];
        for r in 0..n {
            p.push(QuorumPolicy::MajorityTieBreaker {
                tie_breaker: ReplicaId(r),
            });
            p.push(QuorumPolicy::Singleton {
                replica: ReplicaId(r),
            });
        }
        for a in 0..=usize::from(n) + 1 {
            for b in 0..=usize::from(n) + 1 {
                p.push(QuorumPolicy::Flexible {
                    phase1: a,
                    phase2: b,
                });
            }
        }
        p
    }

    /// Every policy that validates has intersecting quorums, for every pair of voter sets, and
    /// the full membership is always a quorum of both phases (so validation never accepts a
    /// policy that cannot make progress with everyone up).
    #[test]
    fn validated_policies_intersect_exhaustively() {
        for n in 1..=6u16 {
            let m = members(n);
            let all = subsets(&m);
            for policy in policies(n) {
                if policy.validate(&m).is_err() {
                    continue;
                }
                assert!(
                    policy.is_phase1_quorum(&m, &m),
                    "{policy:?} n={n}: all not a q1"
                );
                assert!(
                    policy.is_phase2_quorum(&m, &m),
                    "{policy:?} n={n}: all not a q2"
                );
                for q1 in all.iter().filter(|s| policy.is_phase1_quorum(&m, s)) {
                    for q2 in all.iter().filter(|s| policy.is_phase2_quorum(&m, s)) {
                        assert!(
                            q1.intersection(q2).next().is_some(),
                            "{policy:?} n={n}: {q1:?} and {q2:?} are disjoint"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn unsafe_policies_are_refused_with_a_reason() {
        let m = members(4);
        let err = QuorumPolicy::Flexible {
            phase1: 2,
            phase2: 2,
        }
        .validate(&m)
        .unwrap_err();
        assert!(
            err.to_string().contains("must exceed the 4 members"),
            "{err}"
        );
        let err = QuorumPolicy::Singleton {
            replica: ReplicaId(9),
        }
        .validate(&m)
        .unwrap_err();
        assert_eq!(
            err,
            PolicyError::NotAMember {
                role: "singleton",
                replica: ReplicaId(9)
            }
        );
        assert!(
            QuorumPolicy::Flexible {
                phase1: 5,
                phase2: 1
            }
            .validate(&m)
            .is_err()
        );
        assert_eq!(
            QuorumPolicy::Majority.validate(&BTreeSet::new()),
            Err(PolicyError::NoMembers)
        );
    }

    #[test]
    fn tie_breaker_decides_half_splits_only() {
        let m = members(4);
        let p = QuorumPolicy::MajorityTieBreaker {
            tie_breaker: ReplicaId(0),
        };
        let with_tb: BTreeSet<_> = [ReplicaId(0), ReplicaId(3)].into();
        let without: BTreeSet<_> = [ReplicaId(1), ReplicaId(2)].into();
        assert!(p.is_phase2_quorum(&m, &with_tb));
        assert!(!p.is_phase2_quorum(&m, &without));
        // Non-members never count.
        let strangers: BTreeSet<_> = [ReplicaId(7), ReplicaId(8), ReplicaId(9)].into();
        assert!(!QuorumPolicy::Majority.is_phase2_quorum(&m, &strangers));
    }
}
