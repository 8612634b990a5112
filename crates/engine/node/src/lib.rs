//! # synod-node: a Synod node
//!
//! What it does: hosts agreement groups (each a [`synod_core::Replica`]) in one tokio task,
//! persists their records through [`synod_storage::Store`] on a dedicated thread with group
//! commit (one fsync for the readies of every group collected meanwhile), sends their messages
//! over [`synod_transport::Transport`] (mutual TLS) only once durable, hands deliveries to each
//! group's application on a [`synod_exec::Executor`] (commands run in parallel where their
//! keys do not conflict) and answers the clients waiting on them. A restarted node recovers
//! every group from disk and catches up from its peers.
//!
//! Applications are plug-ins: the node knows them only through [`synod_exec::Application`]
//! and [`synod_exec::Hosted`], and opens each group's through the factory an [`Apps`] registry
//! holds for the group's kind (see docs/APPLICATIONS.md). What it proposes for them is bytes;
//! what comes back to the proposer is the application's output, which [`Node::submit_to`],
//! [`Node::query_to`] and [`Node::app_of`] hand over typed. An application may keep its state
//! on disk, in the group's directory the node gives it (`<data dir>/apps/<group id>`): the node
//! then resumes it from the position its store reports, truncates the log only behind its
//! checkpoints, and streams its checkpoints to peers through files (`runtime/snapshot.rs`).
//!
//! Groups are created, hosted and removed at run time through the [`catalog`], which is state
//! of the default group kept beside that group's application; membership changes go through
//! each group's log. A group may carry an [`access`] list in the catalog. A group whose log
//! is corrupt on disk is wiped and rejoins behind a fence, catching up from its peers (see
//! `runtime/repair.rs`).
//!
//! Not here: any application (the key-value store, ledger channels and notaries are crates of
//! their own), the HTTP API, client authentication and the `synod` binary (crate `synod`).

#![forbid(unsafe_code)]

pub mod access;
pub mod catalog;
mod error;
mod host;
mod runtime;

pub use host::{Applied, Apps};
pub use runtime::{DEFAULT_GROUP, GroupStatus, Node, NodeConfig, NodeError, RequestError};
pub use synod_core::{GroupId, ReplicaId, Slot};
pub use synod_exec::{Agreed, AppDir, GroupSpec, Hosted, Position, StateError, Summary, Timer};
pub use synod_transport::PeerAddr;
