//! `synod`: run a node (`start`), a local three-node cluster (`dev`), make development
//! certificates (`certs`), and talk to a node's key-value API (`kv`, `status`).

mod config;
mod dev;
mod http;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "synod",
    version,
    about = "Leaderless Paxos coordination engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node.
    Start {
        /// The node's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a local cluster on loopback, each node its own process; Ctrl-C stops it.
    Dev {
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u16,
        /// Data directory (a temporary one, removed at exit, if omitted).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Lose unsynced writes on SIGKILL (for fault tests).
        #[arg(long)]
        power_cut_test_mode: bool,
        /// Stall before a silent node's slots are taken over, milliseconds.
        #[arg(long, default_value_t = 50)]
        takeover_ms: u64,
    },
    /// Write a development CA and node certificates into a directory.
    Certs {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Node ids to issue certificates for.
        #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
        nodes: Vec<u16>,
    },
    /// Show a node's groups.
    Status {
        /// The node's API URL.
        #[arg(long, default_value = "http://127.0.0.1:8500")]
        api: String,
    },
    /// Key-value operations.
    Kv {
        /// The node's API URL.
        #[arg(long, default_value = "http://127.0.0.1:8500")]
        api: String,
        #[command(subcommand)]
        op: KvOp,
    },
}

#[derive(Subcommand)]
enum KvOp {
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Start { config } => start(&config),
        Command::Dev {
            nodes,
            data,
            power_cut_test_mode,
            takeover_ms,
        } => dev::run(nodes, data, power_cut_test_mode, takeover_ms),
        Command::Certs { out, nodes } => dev::write_certs(&out, &nodes).map(|_| ()),
        Command::Status { api } => {
            println!("{}", http_call("GET", &format!("{api}/v1/status"), None)?);
            Ok(())
        }
        Command::Kv { api, op } => {
            let out = match op {
                KvOp::Put { key, value } => {
                    http_call("PUT", &format!("{api}/v1/kv/{key}"), Some(value))?
                }
                KvOp::Get { key, stale } => {
                    let q = if stale { "?raw&stale" } else { "?raw" };
                    http_call("GET", &format!("{api}/v1/kv/{key}{q}"), None)?
                }
                KvOp::Del { key } => http_call("DELETE", &format!("{api}/v1/kv/{key}"), None)?,
            };
            println!("{out}");
            Ok(())
        }
    }
}

fn http_call(method: &str, url: &str, body: Option<String>) -> Result<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = match (method, body) {
        ("PUT", Some(b)) => agent.put(url).send(b),
        ("DELETE", _) => agent.delete(url).call(),
        _ => agent.get(url).call(),
    }
    .with_context(|| format!("{method} {url}"))?;
    let status = resp.status();
    let text = resp
        .body_mut()
        .read_to_string()
        .context("reading the answer")?;
    if !status.is_success() {
        bail!("{status}: {text}");
    }
    Ok(text)
}

fn start(path: &std::path::Path) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let file = config::FileConfig::load(path)?;
    let node_config = file.node_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let node = synod_node::Node::start(node_config).await.context("starting the node")?;
        tracing::info!(node = file.node, peer = %node.peer_addr(), api = %file.listen_api, "node started");
        let listener = tokio::net::TcpListener::bind(file.listen_api)
            .await
            .with_context(|| format!("binding the API on {}", file.listen_api))?;
        let app = http::router(node, Duration::from_millis(file.request_timeout_ms));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving the API")
    })
}
