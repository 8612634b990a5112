//! # synod-model: an exhaustive model check of the slot protocol
//!
//! A small, abstract model of what `synod-core` does in one slot under weak reservations,
//! checked with stateright by breadth-first search over every interleaving:
//!
//! - 3 replicas, each an acceptor; 2 slots, slot `s` owned by replica `s`;
//! - the owner either proposes its value with the reserved ballot `(0, owner)` (no phase 1) or
//!   skips the slot, deciding a no-op on its own and announcing it;
//! - the owner's ring successor may take the slot over: phase 1 with ballot `(1, taker)`,
//!   adopting the highest accepted value or filling a no-op, then phase 2. It may start at
//!   any moment, the owner alive and proposing or not: what makes a replica take over (a
//!   take-over timeout, a revocation while the owner is suspected, a peer whose connection
//!   the transport lost, `Replica::handle_peer_lost`) decides only when, and every moment
//!   is explored;
//! - the network may lose, duplicate and reorder every message (a sent message stays in the
//!   network and may be delivered any number of times, or never). A proposer acts on any
//!   quorum of answers present in the network (which answers reached it is left open). A
//!   value is chosen once a quorum accepted it at one ballot; learning it is not modelled
//!   separately (every learner learns a chosen value), except an owner's skip, which is a
//!   decision taken alone;
//! - any one replica may crash once and restart, keeping what it persisted (promises,
//!   accepted values, whether it used or skipped its slot, what it learned) and losing the rest.
//!
//! Properties: *always* at most one value gathers a quorum of acceptances per slot, and a
//! slot its owner skipped is only ever chosen as a no-op (so all learners agree); *sometimes*
//! an owner's value is chosen, and a taker-over gets an owner's value it adopted chosen.
//! Slot 0 can be taken over; slot 1 is its owner's alone (taking over both squares the state
//! space past what CI can search). What it does not model: batching, many slots, configuration changes, catch-up and
//! snapshots (the simulator covers those on the real code).

// Message fields are named after the protocol (slot, ballot, from, ...); one doc line each
// would only repeat the names.
#![allow(missing_docs)]

use std::collections::BTreeSet;

use stateright::{Model, Property};

/// Replicas in the model.
pub const REPLICAS: usize = 3;
/// Slots in the model.
pub const SLOTS: usize = 2;
const QUORUM: usize = REPLICAS / 2 + 1;

/// `(counter, proposer)`; the owner's reserved ballot has counter 0.
pub type Ballot = (u8, u8);

/// A slot's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Val {
    /// Skipped or filled by a taker-over.
    Noop,
    /// The owner's value for that slot.
    Own(u8),
}

/// Protocol messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    /// Phase 1a.
    Prepare { slot: u8, ballot: Ballot },
    /// Phase 1b.
    Promise {
        slot: u8,
        ballot: Ballot,
        from: u8,
        accepted: Option<(Ballot, Val)>,
    },
    /// Phase 2a.
    Accept { slot: u8, ballot: Ballot, val: Val },
    /// Phase 2b.
    Accepted {
        slot: u8,
        ballot: Ballot,
        val: Val,
        from: u8,
    },
}

/// One replica's state. Everything is durable except `crashed`; proposers keep no other
/// volatile state in this abstraction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Replica {
    promised: [Option<Ballot>; SLOTS],
    accepted: [Option<(Ballot, Val)>; SLOTS],
    /// The owner used (proposed in or skipped) its slot.
    own_used: bool,
    /// Phase 1 started / phase 2 started by this replica as taker-over, per slot.
    took_over: [bool; SLOTS],
    taker_accept_sent: [bool; SLOTS],
    learned: [Option<Val>; SLOTS],
    crashes: u8,
    crashed: bool,
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    replicas: Vec<Replica>,
    network: BTreeSet<Msg>,
}

/// What can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The owner proposes its value in its slot, with the reserved ballot.
    OwnerPropose(u8),
    /// The owner skips its slot: decides a no-op alone.
    OwnerSkip(u8),
    /// The owner's successor starts phase 1 on the slot (slot 0 only, see `taken_over_slots`).
    TakeOver(u8),
    /// The taker-over, holding a quorum of promises, sends phase 2 with this value.
    TakerAccept(u8, Val),
    /// A Prepare or Accept reaches an acceptor.
    Deliver(Msg, u8),
    /// A replica crashes.
    Crash(u8),
    /// A crashed replica restarts with its durable state.
    Restart(u8),
}

/// The model, with switches for planted bugs (to show the check can fail).
#[derive(Clone, Debug, Default)]
pub struct SlotModel {
    /// Planted bug: the taker-over ignores accepted values and fills a no-op.
    pub bug_takeover_ignores_accepted: bool,
    /// Planted bug: a restarted acceptor forgets its promises (keeps accepted values).
    pub bug_forget_promise: bool,
    /// Slots in play (1 or 2).
    pub slots: u8,
    /// Slots (from 0) whose owner's successor may take them over; the others only see their
    /// owner propose or skip. Taking over every slot multiplies the state space by itself.
    pub taken_over_slots: u8,
}

impl SlotModel {
    /// The model as CI checks it: both slots.
    #[must_use]
    pub fn new() -> SlotModel {
        SlotModel {
            slots: SLOTS as u8,
            taken_over_slots: 1,
            ..SlotModel::default()
        }
    }
}

fn taker(slot: u8) -> u8 {
    (slot + 1) % REPLICAS as u8
}

/// Values the taker-over may send in phase 2: for every quorum of its promises, the
/// highest-ballot accepted value among them, or a no-op if none accepted anything.
fn taker_choices(st: &State, slot: u8, ballot: Ballot, ignore_accepted: bool) -> BTreeSet<Val> {
    let promises: Vec<(u8, Option<(Ballot, Val)>)> = st
        .network
        .iter()
        .filter_map(|m| match m {
            Msg::Promise {
                slot: s,
                ballot: b,
                from,
                accepted,
            } if *s == slot && *b == ballot => Some((*from, *accepted)),
            _ => None,
        })
        .collect();
    let mut out = BTreeSet::new();
    for mask in 0u32..(1 << promises.len()) {
        let chosen: Vec<&(u8, Option<(Ballot, Val)>)> = promises
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, p)| p)
            .collect();
        let voters: BTreeSet<u8> = chosen.iter().map(|(f, _)| *f).collect();
        if voters.len() < QUORUM || voters.len() != chosen.len() {
            continue;
        }
        let adopted = chosen
            .iter()
            .filter_map(|(_, a)| *a)
            .max_by_key(|(b, _)| *b)
            .map(|(_, v)| v);
        out.insert(if ignore_accepted {
            Val::Noop
        } else {
            adopted.unwrap_or(Val::Noop)
        });
    }
    out
}

impl Model for SlotModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            replicas: vec![Replica::default(); REPLICAS],
            network: BTreeSet::new(),
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        for s in 0..self.slots {
            let owner = &state.replicas[s as usize];
            if !owner.crashed && !owner.own_used {
                actions.push(Action::OwnerPropose(s));
                actions.push(Action::OwnerSkip(s));
            }
            if s >= self.taken_over_slots {
                continue;
            }
            let t = &state.replicas[taker(s) as usize];
            if !t.crashed && !t.took_over[s as usize] && t.learned[s as usize].is_none() {
                actions.push(Action::TakeOver(s));
            }
            if !t.crashed && t.took_over[s as usize] && !t.taker_accept_sent[s as usize] {
                for v in taker_choices(state, s, (1, taker(s)), self.bug_takeover_ignores_accepted)
                {
                    actions.push(Action::TakerAccept(s, v));
                }
            }
        }
        for msg in &state.network {
            if matches!(msg, Msg::Prepare { .. } | Msg::Accept { .. }) {
                for to in 0..REPLICAS as u8 {
                    if !state.replicas[to as usize].crashed {
                        actions.push(Action::Deliver(msg.clone(), to));
                    }
                }
            }
        }
        let crashed_once = state.replicas.iter().any(|r| r.crashes > 0);
        for (i, r) in state.replicas.iter().enumerate() {
            if r.crashed {
                actions.push(Action::Restart(i as u8));
            } else if !crashed_once {
                actions.push(Action::Crash(i as u8));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut st = last.clone();
        match action {
            Action::OwnerPropose(s) => {
                st.replicas[s as usize].own_used = true;
                st.network.insert(Msg::Accept {
                    slot: s,
                    ballot: (0, s),
                    val: Val::Own(s),
                });
            }
            Action::OwnerSkip(s) => {
                // Safe without a round trip: only the owner could propose anything but a no-op
                // here, and it records that it never will.
                let owner = &mut st.replicas[s as usize];
                owner.own_used = true;
                owner.learned[s as usize] = Some(Val::Noop);
            }
            Action::TakeOver(s) => {
                let t = taker(s);
                st.replicas[t as usize].took_over[s as usize] = true;
                st.network.insert(Msg::Prepare {
                    slot: s,
                    ballot: (1, t),
                });
            }
            Action::TakerAccept(s, val) => {
                let t = taker(s);
                st.replicas[t as usize].taker_accept_sent[s as usize] = true;
                st.network.insert(Msg::Accept {
                    slot: s,
                    ballot: (1, t),
                    val,
                });
            }
            Action::Deliver(msg, to) => {
                let r = &mut st.replicas[to as usize];
                match msg {
                    Msg::Prepare { slot, ballot } => {
                        let s = slot as usize;
                        if r.promised[s].is_none_or(|p| p <= ballot) {
                            r.promised[s] = Some(ballot);
                            let accepted = r.accepted[s];
                            st.network.insert(Msg::Promise {
                                slot,
                                ballot,
                                from: to,
                                accepted,
                            });
                        }
                    }
                    Msg::Accept { slot, ballot, val } => {
                        let s = slot as usize;
                        if r.promised[s].is_none_or(|p| p <= ballot) {
                            r.promised[s] = Some(ballot);
                            r.accepted[s] = Some((ballot, val));
                            st.network.insert(Msg::Accepted {
                                slot,
                                ballot,
                                val,
                                from: to,
                            });
                        }
                    }
                    Msg::Promise { .. } | Msg::Accepted { .. } => return None,
                }
            }
            Action::Crash(i) => {
                let r = &mut st.replicas[i as usize];
                r.crashed = true;
                r.crashes += 1;
                if self.bug_forget_promise {
                    r.promised = Default::default();
                }
            }
            Action::Restart(i) => st.replicas[i as usize].crashed = false,
        }
        Some(st)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("at most one value is chosen per slot", |_, st: &State| {
                (0..SLOTS as u8).all(|s| chosen(st, s).len() <= 1)
            }),
            Property::always(
                "a skipped slot can only be chosen as a no-op",
                |_, st: &State| {
                    (0..SLOTS as u8).all(|s| {
                        st.replicas[s as usize].learned[s as usize] != Some(Val::Noop)
                            || chosen(st, s).iter().all(|v| *v == Val::Noop)
                    })
                },
            ),
            Property::sometimes("an owner's value is chosen", |_, st: &State| {
                (0..SLOTS as u8).any(|s| chosen(st, s).iter().any(|v| matches!(v, Val::Own(_))))
            }),
            Property::sometimes(
                "a taker-over decides an owner's value it adopted",
                |_, st: &State| {
                    (0..SLOTS as u8).any(|s| {
                    st.network.iter().any(|m| {
                        matches!(m, Msg::Accepted { slot, ballot: (1, _), val: Val::Own(_), .. } if *slot == s)
                    }) && chosen(st, s).iter().any(|v| matches!(v, Val::Own(_)))
                })
                },
            ),
        ]
    }
}

/// Values for which a quorum of acceptors sent `Accepted` at one ballot.
fn chosen(st: &State, slot: u8) -> BTreeSet<Val> {
    let mut votes: std::collections::BTreeMap<(Ballot, Val), BTreeSet<u8>> = Default::default();
    for m in &st.network {
        if let Msg::Accepted {
            slot: s,
            ballot,
            val,
            from,
        } = m
            && *s == slot
        {
            votes.entry((*ballot, *val)).or_default().insert(*from);
        }
    }
    votes
        .into_iter()
        .filter(|(_, v)| v.len() >= QUORUM)
        .map(|((_, val), _)| val)
        .collect()
}
