//! The ledger's subcommands of the `synod` command line: `synod channel` and `synod notary`
//! administer channels and notaries (`admin.rs`); `synod ledger verify|prove|consistency`
//! audit a channel's chain on every node, trusting none (`audit.rs`).

use anyhow::Result;
use clap::Subcommand;
use synod_client::ApiArgs;

mod admin;
mod audit;

pub use admin::{ChannelOp, NotaryOp, channel, notary};

/// An audit of a channel's chain.
#[derive(Subcommand)]
pub enum LedgerOp {
    /// Fetch a channel's chain from each node, audit it from genesis (every header link,
    /// every Merkle root, every validation replayed) and check that all nodes agree at their
    /// common height. Trusts no node: each chain is checked on its own.
    Verify {
        /// The channel.
        #[arg(long)]
        channel: String,
        /// The nodes' API URLs (comma-separated; default: --api alone).
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
    },
    /// Check that a transaction is in the chain: its proof from the first node (under its
    /// block's header, and the header under the chain root), and that root against what every
    /// node holds at that height. Trusts no node.
    Prove {
        /// The channel.
        #[arg(long)]
        channel: String,
        /// The transaction id.
        #[arg(long)]
        tx: String,
        /// The nodes' API URLs (comma-separated; default: --api alone).
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
    },
    /// Check that the chain a node holds now extends a chain tree seen before (its height
    /// and root, from `synod ledger prove` or `verify`): no block below it was rewritten.
    Consistency {
        /// The channel.
        #[arg(long)]
        channel: String,
        /// The height seen before.
        #[arg(long)]
        height: u64,
        /// The chain root seen at that height (hex).
        #[arg(long)]
        root: String,
    },
}

/// Runs an audit against the nodes `api` and the operation name; returns the report.
///
/// # Errors
/// A node could not be read, or the chain failed the audit.
pub fn ledger(api: &ApiArgs, op: LedgerOp) -> Result<String> {
    match op {
        LedgerOp::Verify { channel, nodes } => audit::verify(api, &channel, &nodes),
        LedgerOp::Prove { channel, tx, nodes } => audit::prove(api, &channel, &tx, &nodes),
        LedgerOp::Consistency {
            channel,
            height,
            root,
        } => audit::consistency(api, &channel, height, &root),
    }
}
