//! # synod-kv: the replicated key-value store, as an application of the Synod node
//!
//! What it does: keeps a map of string keys to byte values, every entry stamped with the GSN
//! that created and last modified it (Consul's `CreateIndex` and `ModifyIndex`), which is what
//! compare-and-set compares ([`store`]). Writes carrying an idempotency token are applied at
//! most once. [`KvApp`] hosts the store in a group ([`synod_exec::Hosted`]): a write locks
//! its key (and the token log when it carries a token), so writes to different keys run in
//! parallel on the node's scheduler. [`KvNode`] gives a [`synod_node::Node`] typed calls:
//! writes, linearizable reads (a barrier through the log, then the read at its place) and
//! stale reads (the state as applied here, off the event loop).
//!
//! The store stays in memory (persistent maps, so a snapshot copy is O(1)), as ZooKeeper's
//! does: it holds coordination data, small by design, and every read is served from memory.
//!
//! Its HTTP routes ([`http::router`], Consul's KV conventions) are built on `synod-api`; the
//! server merges them with the other applications'. What it does not do: watches or leases.
//!
//! [`mvcc`] is the revisioned keyspace the etcd v3 API will serve (revisions, ranges at past
//! revisions, transactions, compaction, the events a watch replays), checked against a real
//! etcd; it is not hosted or served yet.

#![forbid(unsafe_code)]

mod app;
mod cautious;
pub mod cli;
pub mod http;
pub mod mvcc;
pub mod store;

pub use app::{
    KIND, KvApp, KvLock, KvNode, KvOp, KvResult, PAGE_BYTES_MAX, PAGE_MAX, Query, ReadResult,
    WriteResult,
};
pub use store::{Entry, Kv, KvCommand, KvOutput, KvRequest, TOKEN_MAX, TOKENS_KEPT};
