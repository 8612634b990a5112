//! # synod-node: a Synod node
//!
//! What it does: hosts agreement groups (each a [`synod_core::Replica`]) in one tokio task,
//! persists their records through [`synod_storage::Store`] on a dedicated thread with group
//! commit (one fsync for the readies of every group collected meanwhile), sends their messages
//! over [`synod_transport::Transport`] (mutual TLS) only once durable, applies deliveries to the
//! replicated key-value store ([`kv`]) and answers the clients waiting on them. A restarted
//! node recovers every group from disk and catches up from its peers.
//!
//! Not yet: the HTTP API and the `synod` binary, snapshot transfer between nodes, groups
//! created at run time, metrics. (Issue 3 tracks them.)

#![forbid(unsafe_code)]

pub mod catalog;
pub mod kv;
mod runtime;

pub use runtime::{
    DEFAULT_GROUP, GroupStatus, Node, NodeConfig, NodeError, ReadResult, RequestError, WriteResult,
};
