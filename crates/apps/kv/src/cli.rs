//! `synod kv`: put, get and delete keys of the default group through a node's API
//! (`/v1/kv/{key}`; gets are linearizable unless `--stale`).

use anyhow::Result;
use clap::Subcommand;
use synod_client::Client;

/// A key-value operation.
#[derive(Subcommand)]
pub enum KvOp {
    /// Set a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Read a key (linearizable unless --stale).
    Get {
        /// The key.
        key: String,
        /// Serve from the node's local state.
        #[arg(long)]
        stale: bool,
    },
    /// Delete a key.
    Del {
        /// The key.
        key: String,
    },
}

/// Runs `op` through `client`; returns the node's answer.
///
/// # Errors
/// The request failed or the node refused it.
pub fn run(client: &Client, op: KvOp) -> Result<String> {
    match op {
        KvOp::Put { key, value } => client.call("PUT", &format!("/v1/kv/{key}"), Some(value)),
        KvOp::Get { key, stale } => {
            let q = if stale { "?raw&stale" } else { "?raw" };
            client.call("GET", &format!("/v1/kv/{key}{q}"), None)
        }
        KvOp::Del { key } => client.call("DELETE", &format!("/v1/kv/{key}"), None),
    }
}
