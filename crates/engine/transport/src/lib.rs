//! # synod-transport: mutual-TLS connections between Synod nodes
//!
//! What it does: length-delimited, versioned, bounded frames ([`frame`]) carrying the core's
//! messages tagged with their group; rustls mutual TLS with certificates from a cluster CA
//! ([`tls`], [`certs`] for development certificates); a peer's claimed node id is checked
//! against its certificate; per-peer bounded outbound queues; reconnection with a growing,
//! randomized backoff ([`Transport`]).
//!
//! What it does not do: plaintext (every connection is mutual TLS), retries of lost frames
//! (the protocol retransmits), or routing frames to groups (the node does).

#![forbid(unsafe_code)]

pub mod certs;
pub mod frame;
pub mod tls;
mod transport;

pub use transport::{
    Inbound, PER_NODE_MAX, SendError, StartError, Transport, TransportConfig, TransportStats,
    UNIDENTIFIED_MAX,
};
