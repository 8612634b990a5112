//! # synod-core: leaderless multi-slot Paxos for one agreement group, without I/O
//!
//! A [`Replica`] is one member of one agreement group. Any replica proposes; every slot
//! (agreement number) is decided by its own instance of Paxos among a quorum; decided slots,
//! in order, are the global sequence (GSN), delivered identically on every replica. There is
//! no leader, no term and no election.
//!
//! What this crate does:
//! - Paxos per slot with distinguished, fair ballots `(counter, random, proposer)`;
//! - a proposal log with LSNs, exactly-once delivery per `(proposer, LSN)` and an optional
//!   preserve-local-order mode;
//! - batching and a window of concurrent slots per proposer;
//! - weak reservations (Mencius-style slot ownership, skips, take-over and revocation of
//!   silent owners) or open contention with randomized exponential backoff;
//! - quorum policies as intersecting phase-1/phase-2 quorums, configuration changes and a
//!   follow-the-sun schedule through the log;
//! - catch-up, snapshots, and the applied-GSN watermark for garbage collection;
//! - minority detection (refuse writes promptly without a quorum);
//! - rejoining after lost state: a replica whose log was lost votes again only above a fence
//!   agreed through the log, so it never contradicts a vote it forgot.
//!
//! What it does not do: no sockets, files, threads, clocks or global randomness. Time and a
//! random seed are inputs; output is a [`Ready`] whose records the driver makes durable before
//! sending its messages (the etcd-raft contract). Encoding, storage, transport, snapshots'
//! transfer and the application live in other crates.

#![forbid(unsafe_code)]

pub mod config;
pub mod message;
pub mod quorum;
pub mod record;
mod replica;
pub mod snapshot;
pub mod types;

pub use config::{
    Config, ConfigChange, ConfigError, GroupParams, HistoryError, SunRole, SunSchedule, SunShift,
};
pub use message::{Envelope, Message, PromiseEntry};
pub use quorum::{PolicyError, QuorumPolicy};
pub use record::{DurableState, Record};
pub use replica::{
    ConfigOutcome, Delivery, Metrics, Options, ProposeError, Ready, RejoinStatus, Replica,
    SnapshotRequest,
};
pub use snapshot::{CoreState, DeliveredSet, Rejoined, Snapshot, SnapshotError};
pub use types::{
    Ballot, Batch, GroupId, Lsn, Payload, Proposal, ProposalId, ReplicaId, Slot, Time, Value,
};
