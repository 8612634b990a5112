//! `synod channel` and `synod notary`: create, list, show, remove ledger channels and notaries,
//! and set who may read, write and administer them (the API's `/v1/channels` and
//! `/v1/notaries`). Identities are certificate common names (`client-alice`); `*` is anyone.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use synod_client::{AccessArgs, Client};

/// `synod channel ...`.
#[derive(Subcommand)]
pub enum ChannelOp {
    /// Create a ledger channel voted on by the given nodes (Fabric's batch rules unless set).
    Create {
        /// Its name (a-z, 0-9, '-', '_').
        name: String,
        /// Node ids of its members.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<u16>,
        /// Cut a block at this many transactions (default 500).
        #[arg(long)]
        max_message_count: Option<usize>,
        /// Cut a pending batch this long after its first transaction, agreed time (default
        /// 2,000 ms).
        #[arg(long)]
        batch_timeout_ms: Option<u64>,
        #[command(flatten)]
        /// Who may read, write and administer.
        access: AccessArgs,
    },
    /// List every channel, with its access list.
    List,
    /// Show a channel: height, tip and commit hash on the node asked.
    Show {
        /// Its name.
        name: String,
    },
    /// Replace a channel's access list (administrators only).
    Access {
        /// Its name.
        name: String,
        #[command(flatten)]
        /// Who may read, write and administer.
        access: AccessArgs,
    },
    /// Remove a channel and its chain on every node (administrators only).
    Rm {
        /// Its name.
        name: String,
    },
    /// Make a node a member of a channel: it catches up, then votes (administrators only).
    Join {
        /// The channel.
        name: String,
        /// The node's id.
        #[arg(long)]
        id: u16,
    },
    /// Remove a node from a channel's members (administrators only).
    Leave {
        /// The channel.
        name: String,
        /// The node's id.
        #[arg(long)]
        id: u16,
    },
}

/// `synod notary ...`.
#[derive(Subcommand)]
pub enum NotaryOp {
    /// Create a notary voted on by the given nodes.
    Create {
        /// Its name (a-z, 0-9, '-', '_').
        name: String,
        /// Node ids of its members.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<u16>,
        #[command(flatten)]
        /// Who may read, write and administer.
        access: AccessArgs,
    },
    /// List every notary, with its access list.
    List,
    /// Replace a notary's access list (administrators only).
    Access {
        /// Its name.
        name: String,
        #[command(flatten)]
        /// Who may read, write and administer.
        access: AccessArgs,
    },
    /// Remove a notary and its consumed states on every node (administrators only).
    Rm {
        /// Its name.
        name: String,
    },
}

/// Runs a channel operation; returns the node's answer.
///
/// # Errors
/// The request failed or the node refused it.
pub fn channel(c: &Client, op: ChannelOp) -> Result<String> {
    match op {
        ChannelOp::Create {
            name,
            members,
            max_message_count,
            batch_timeout_ms,
            access,
        } => {
            let mut body = json!({ "name": name, "members": members });
            if let Some(n) = max_message_count {
                body["max_message_count"] = json!(n);
            }
            if let Some(ms) = batch_timeout_ms {
                body["batch_timeout_ms"] = json!(ms);
            }
            if access.given() {
                body["access"] = access.json();
            }
            c.send_json("POST", "/v1/channels", &body)
        }
        ChannelOp::List => c.call("GET", "/v1/channels", None),
        ChannelOp::Show { name } => c.call("GET", &format!("/v1/channels/{name}"), None),
        ChannelOp::Access { name, access } => c.send_json(
            "PUT",
            &format!("/v1/channels/{name}/access"),
            &access.json(),
        ),
        ChannelOp::Rm { name } => c.call("DELETE", &format!("/v1/channels/{name}"), None),
        ChannelOp::Join { name, id } => c.send_json(
            "POST",
            &format!("/v1/channels/{name}/members"),
            &json!({ "id": id }),
        ),
        ChannelOp::Leave { name, id } => {
            c.call("DELETE", &format!("/v1/channels/{name}/members/{id}"), None)
        }
    }
}

/// Runs a notary operation; returns the node's answer.
///
/// # Errors
/// The request failed or the node refused it.
pub fn notary(c: &Client, op: NotaryOp) -> Result<String> {
    match op {
        NotaryOp::Create {
            name,
            members,
            access,
        } => {
            let mut body = json!({ "name": name, "members": members });
            if access.given() {
                body["access"] = access.json();
            }
            c.send_json("POST", "/v1/notaries", &body)
        }
        NotaryOp::List => c.call("GET", "/v1/notaries", None),
        NotaryOp::Access { name, access } => c.send_json(
            "PUT",
            &format!("/v1/notaries/{name}/access"),
            &access.json(),
        ),
        NotaryOp::Rm { name } => c.call("DELETE", &format!("/v1/notaries/{name}"), None),
    }
}
