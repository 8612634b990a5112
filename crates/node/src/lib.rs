//! # synod-node: a Synod node
//!
//! What it does: hosts agreement groups (each a [`synod_core::Replica`]) in one tokio task,
//! persists their records through [`synod_storage::Store`] on a dedicated thread with group
//! commit (one fsync for the readies of every group collected meanwhile), sends their messages
//! over [`synod_transport::Transport`] (mutual TLS) only once durable, hands deliveries to each
//! group's [`synod_exec::Executor`] (which runs the replicated key-value store, [`kv`], in
//! parallel where keys do not conflict) and answers the clients waiting on them. A restarted
//! node recovers every group from disk and catches up from its peers.
//!
//! Groups are created, hosted and removed at run time through the [`catalog`], which is state
//! of the default group; membership changes go through each group's log. Ledger channels and
//! notaries carry an [`access`] list in the catalog. A group whose log is corrupt on disk is
//! wiped and rejoins behind a fence, catching up from its peers (see `runtime/repair.rs`).
//!
//! Not here: the HTTP API, client authentication and the `synod` binary (crate `synod`).

#![forbid(unsafe_code)]

pub mod access;
mod app;
pub mod catalog;
pub mod kv;
mod runtime;

pub use runtime::{
    DEFAULT_GROUP, GroupStatus, Node, NodeConfig, NodeError, ReadResult, RequestError, WriteResult,
};
