//! # synod-transport: mutual-TLS connections between Synod nodes
//!
//! What it does: length-delimited, versioned, bounded frames ([`frame`]) carrying the core's
//! messages tagged with their group; rustls mutual TLS with certificates from a cluster CA
//! ([`tls`], [`certs`] for development certificates); a peer's claimed node id is checked
//! against its certificate; per-peer bounded outbound queues; reconnection with a growing,
//! randomized backoff ([`Transport`]). Peers are addressed by IP address or DNS name
//! ([`PeerAddr`]), names resolved in-process at each dial ([`Resolver`]: hosts file and
//! resolv.conf, no libc resolver, so a static binary needs no NSS modules).
//!
//! What it does not do: plaintext (every connection is mutual TLS), retries of lost frames
//! (the protocol retransmits), or routing frames to groups (the node does).

#![forbid(unsafe_code)]

mod addr;
pub mod certs;
pub mod frame;
pub mod tls;
mod transport;

pub use addr::{AddrError, PeerAddr, Resolver};
pub use transport::{
    Inbound, PER_NODE_MAX, SendError, StartError, Transport, TransportConfig, TransportStats,
    UNIDENTIFIED_MAX,
};
