//! `synod`: run a node (`start`), a local three-node cluster (`dev`), make development
//! certificates (`certs`), talk to a node's API (`kv`, `status`, `group`, `member`, `channel`,
//! `notary`, `ledger`), run a recorded workload for fault tests (`workload`), and emulate WAN
//! links (`delay-proxy`).
//!
//! The server half: the HTTPS API with client certificates (`access.rs`: the identity each
//! request carries), whose routes are the applications' own merged with those every group
//! has (`http.rs`), over a node hosting the applications this binary ships (`apps.rs`:
//! key-value, ledger channels, notaries). What is not here: the engine, the applications and
//! their routes (crates `synod-node`, `synod-api`, `synod-kv`, `synod-ledger`).

mod access;
mod apps;

mod config;
mod delay_proxy;
mod dev;
mod health;
mod http;
mod ledger_bench;
mod notary_key;
mod workload;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
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
    #[command(flatten)]
    api: synod_client::ApiArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node.
    Start {
        /// The node's configuration file.
        #[arg(long)]
        config: PathBuf,
        /// This node's disk was lost or replaced and its data directory is empty: every group
        /// it hosts rejoins behind a fence (never a fresh acceptor under an id that voted).
        #[arg(long)]
        rejoin: bool,
    },
    /// Check a node's configuration file without starting the node: print it as JSON, every
    /// default filled in, or say what is wrong (the files it names are not read).
    CheckConfig {
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
        /// Serve the API as plain HTTP with no client authentication (benchmarks with
        /// HTTP-only load generators). Peer traffic stays mutual TLS.
        #[arg(long)]
        insecure_plaintext_api: bool,
    },
    /// Write a development CA and node certificates into a directory.
    Certs {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Node ids to issue certificates for.
        #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
        nodes: Vec<u16>,
        /// Names (DNS or IP) under which clients reach the nodes, put in node certificates;
        /// `{id}` stands for each node's id (`synod-{id}.synod,synod,localhost,127.0.0.1`
        /// for a StatefulSet named `synod` behind a headless service `synod`).
        #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
        hosts: Vec<String>,
        /// API client identities to issue certificates for (`client-{name}.pem`).
        #[arg(long, value_delimiter = ',', default_value = "admin")]
        clients: Vec<String>,
    },
    /// Ask a node's probes' listener (`listen_health`): exit 0 if it is live, or ready
    /// (caught up and serving); the answer is printed. For container health checks.
    Probe {
        /// Which probe.
        #[arg(value_enum)]
        which: health::Probe,
        /// The probes' listener (ip:port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
    },
    /// Show a node's groups.
    Status,
    /// Key-value operations.
    Kv {
        #[command(subcommand)]
        op: synod_kv::cli::KvOp,
    },
    /// Agreement groups: create, list, show, remove.
    Group {
        #[command(subcommand)]
        op: GroupOp,
    },
    /// Voting members of a group: add a node (it catches up, then votes) or remove one.
    Member {
        #[command(subcommand)]
        op: MemberOp,
    },
    /// Ledger channels: create, list, show, remove, and who may read, write, administer.
    Channel {
        #[command(subcommand)]
        op: synod_ledger::cli::ChannelOp,
    },
    /// Notaries: create, list, remove, and who may notarise and administer.
    Notary {
        #[command(subcommand)]
        op: synod_ledger::cli::NotaryOp,
    },
    /// The identity the node sees for this client (its certificate's common name).
    Whoami,
    /// Ledger channels: audit a channel's chain on every node.
    Ledger {
        #[command(subcommand)]
        op: synod_ledger::cli::LedgerOp,
    },
    /// Run a recorded key-value workload against plain-HTTP nodes (fault tests): every
    /// operation and its outcome is written as JSON for the history checkers (synod-check).
    Workload(workload::WorkloadArgs),
    /// Measure a ledger channel's transactions per second (ordered, validated, committed) or a
    /// notary's notarisations per second on a running plain-HTTP cluster.
    LedgerBench(ledger_bench::LedgerBenchArgs),
    /// Forward TCP connections with an added one-way delay in both directions, to emulate WAN
    /// links on one machine (no netem needed).
    DelayProxy(delay_proxy::DelayArgs),
}

#[derive(Subcommand)]
enum GroupOp {
    /// Create a key-value group voted on by the given nodes.
    Create {
        /// Its name (a-z, 0-9, '-', '_').
        name: String,
        /// Node ids of its members.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<u16>,
        #[command(flatten)]
        /// Who may read, write and administer it (default: every role to you).
        access: synod_client::AccessArgs,
    },
    /// Replace a group's access list (its administrators; a group open to everyone, such as
    /// the default group, by the cluster's administrators).
    Access {
        /// Its name.
        name: String,
        #[command(flatten)]
        /// The new list.
        access: synod_client::AccessArgs,
    },
    /// List every group in the cluster.
    List,
    /// Show one group.
    Show {
        /// Its name.
        name: String,
    },
    /// Remove a group and its data on every node.
    Rm {
        /// Its name.
        name: String,
    },
}

#[derive(Subcommand)]
enum MemberOp {
    /// Add node `id` to a group. Start the node first (its config lists the cluster's
    /// genesis members and `join = true`); give its peer address if the cluster does not
    /// know it yet.
    Add {
        /// The node's id.
        #[arg(long)]
        id: u16,
        /// The node's peer address (ip:port).
        #[arg(long)]
        addr: Option<String>,
        /// The group.
        #[arg(long, default_value = "default")]
        group: String,
    },
    /// Remove node `id` from a group's voting members; writes continue meanwhile.
    Remove {
        /// The node's id.
        #[arg(long)]
        id: u16,
        /// The group.
        #[arg(long, default_value = "default")]
        group: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let client = || synod_client::Client::new(&cli.api);
    let out = match cli.command {
        Command::Start { config, rejoin } => return start(&config, rejoin),
        Command::CheckConfig { config } => {
            let file = config::FileConfig::load(&config)?;
            file.check()?;
            serde_json::to_string_pretty(&file)?
        }
        Command::Dev {
            nodes,
            data,
            power_cut_test_mode,
            takeover_ms,
            insecure_plaintext_api,
        } => {
            return dev::run(&dev::DevOptions {
                nodes,
                data,
                power_cut_test_mode,
                takeover_ms,
                insecure_plaintext_api,
            });
        }
        Command::Certs {
            out,
            nodes,
            hosts,
            clients,
        } => return dev::write_certs(&out, &nodes, &hosts, &clients).map(|_| ()),
        Command::Workload(args) => return workload::run(&args),
        Command::Probe { which, addr } => return health::probe(which, addr),
        Command::LedgerBench(args) => ledger_bench::run(&args)?,
        Command::DelayProxy(args) => return delay_proxy::run(&args),
        Command::Status => client()?.call("GET", "/v1/status", None)?,
        Command::Whoami => client()?.call("GET", "/v1/whoami", None)?,
        Command::Channel { op } => synod_ledger::cli::channel(&client()?, op)?,
        Command::Notary { op } => synod_ledger::cli::notary(&client()?, op)?,
        Command::Kv { op } => synod_kv::cli::run(&client()?, op)?,
        Command::Group { op } => {
            let c = client()?;
            match op {
                GroupOp::Create {
                    name,
                    members,
                    access,
                } => {
                    let mut body = serde_json::json!({ "name": name, "members": members });
                    if access.given() {
                        body["access"] = access.json();
                    }
                    c.call("POST", "/v1/groups", Some(body.to_string()))?
                }
                GroupOp::Access { name, access } => c.call(
                    "PUT",
                    &format!("/v1/groups/{name}/access"),
                    Some(access.json().to_string()),
                )?,
                GroupOp::List => c.call("GET", "/v1/groups", None)?,
                GroupOp::Show { name } => c.call("GET", &format!("/v1/groups/{name}"), None)?,
                GroupOp::Rm { name } => c.call("DELETE", &format!("/v1/groups/{name}"), None)?,
            }
        }
        Command::Ledger { op } => synod_ledger::cli::ledger(&cli.api, op)?,
        Command::Member { op } => {
            let c = client()?;
            match op {
                MemberOp::Add { id, addr, group } => c.call(
                    "POST",
                    &format!("/v1/groups/{group}/members"),
                    Some(serde_json::json!({ "id": id, "addr": addr }).to_string()),
                )?,
                MemberOp::Remove { id, group } => {
                    c.call("DELETE", &format!("/v1/groups/{group}/members/{id}"), None)?
                }
            }
        }
    };
    // A reader that stops early (`| head -1`) is not an error.
    match writeln!(std::io::stdout(), "{out}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn start(path: &std::path::Path, rejoin: bool) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let file = config::FileConfig::load(path)?;
    let mut node_config = file.node_config()?;
    node_config.rejoin |= rejoin;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let tls = if file.insecure_plaintext_api {
        None
    } else {
        // The API requires a client certificate from the cluster CA (mutual TLS), like the
        // peer port; only HTTP/1.1 is served.
        let mut server = (*node_config.identity.server_config()?).clone();
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(axum_server::tls_rustls::RustlsConfig::from_config(
            std::sync::Arc::new(server),
        ))
    };
    runtime.block_on(async move {
        let node = synod_node::Node::start(node_config).await.context("starting the node")?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(node = file.node, peer = %node.peer_addr(), api = %format!("{scheme}://{}", file.listen_api), "node started");
        if tls.is_none() {
            tracing::warn!(
                "the API is served as PLAIN HTTP WITHOUT CLIENT AUTHENTICATION \
                 (insecure_plaintext_api = true): anyone who reaches {} can read and write",
                file.listen_api
            );
        }
        let cluster_admins = file.cluster_admins.as_ref().map(|names| synod_node::access::Access {
            admins: names.iter().cloned().collect(),
            ..Default::default()
        });
        if cluster_admins.is_none() && tls.is_some() {
            tracing::warn!(
                "cluster_admins is not set: every client identity from the cluster CA may \
                 create groups, channels and notaries and change the cluster's members"
            );
        }
        let notary_key = notary_key::notary_key(&file.data_dir)
            .with_context(|| format!("the notary key in {}", file.data_dir.display()))?;
        let api = std::sync::Arc::new(synod_api::Api::new(
            node,
            Duration::from_millis(file.request_timeout_ms),
            cluster_admins,
            synod_kv::KIND,
        ));
        let app = http::router(api.clone(), notary_key);
        let health = std::sync::Arc::new(health::Health {
            api,
            ready_lag: file.ready_lag_slots,
            stopping: std::sync::atomic::AtomicBool::new(false),
        });
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        let stopping = health.clone();
        tokio::spawn(async move {
            // Ctrl-C, or SIGTERM from a container runtime or Kubernetes: report not ready at
            // once, finish the requests in flight, then stop. (Everything acknowledged is
            // already durable; SIGKILL loses nothing acknowledged either.)
            stop_signal().await;
            tracing::info!("stopping: not ready, finishing requests in flight (5 s at most)");
            stopping.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
            stopper.graceful_shutdown(Some(Duration::from_secs(5)));
        });
        // SO_REUSEADDR, so a restarted node can bind its port while old connections linger.
        let listener = bind_reusable(file.listen_api)
            .with_context(|| format!("binding the API on {}", file.listen_api))?;
        if let Some(addr) = file.listen_health {
            // Bound after the API, so that a node is never reported ready before it serves.
            let probes = bind_reusable(addr)
                .with_context(|| format!("binding the probes' listener on {addr}"))?;
            probes.set_nonblocking(true)?;
            let probes = tokio::net::TcpListener::from_std(probes)?;
            let routes = health::router(health.clone());
            tracing::info!(%addr, "probes served: GET /livez, GET /readyz (plain HTTP)");
            tokio::spawn(async move {
                if let Err(e) = axum::serve(probes, routes).await {
                    tracing::error!(error = %e, "the probes' listener failed");
                }
            });
        }
        let limits = std::sync::Arc::new(access::ConnectionLimits::new(
            file.api_connections,
            file.api_connections_per_identity,
            Duration::from_millis(file.api_header_timeout_ms),
        ));
        let served = match tls {
            // Each request carries its caller: the identity in the client's certificate, or
            // no one on a plain-HTTP API (see `access`).
            Some(tls) => {
                let mut server = axum_server::from_tcp(listener)?
                    .acceptor(access::IdentifyingAcceptor::new(tls, limits.clone()))
                    .http1_only();
                access::configure_http(server.http_builder(), limits.header_timeout);
                server.handle(handle).serve(app.into_make_service()).await
            }
            None => {
                let mut server = axum_server::from_tcp(listener)?
                    .acceptor(access::PlainAcceptor::new(limits.clone()))
                    .http1_only();
                access::configure_http(server.http_builder(), limits.header_timeout);
                server
                    .handle(handle)
                    .serve(app.layer(access::unauthenticated()).into_make_service())
                    .await
            }
        };
        served.context("serving the API")
    })
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM.
async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch for SIGTERM; Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn bind_reusable(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)?.into_std()
}
