//! `synod dev`: a local cluster of separate processes on loopback, and `synod certs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use synod_transport::certs;

use crate::config::{FileConfig, TlsFiles};

/// Writes `node-{id}.pem`/`.key` into `out`, signed by the CA in `out` (`ca.pem`, `ca.key`),
/// which is created first if it is not there; returns the CA path. Reusing the CA is how a
/// node added later gets a certificate the cluster trusts.
pub(crate) fn write_certs(
    out: &Path,
    nodes: &[u16],
    hosts: &[String],
    clients: &[String],
) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let (ca_cert, ca_key) = (out.join("ca.pem"), out.join("ca.key"));
    let ca = if ca_cert.exists() && ca_key.exists() {
        println!("using the existing CA in {}", out.display());
        certs::Pem {
            cert: std::fs::read_to_string(&ca_cert)?,
            key: std::fs::read_to_string(&ca_key)?,
        }
    } else {
        let ca = certs::generate_ca("synod-dev")?;
        std::fs::write(&ca_cert, &ca.cert)?;
        write_private(&ca_key, &ca.key)?;
        ca
    };
    for n in nodes {
        let c = certs::issue_node_for_hosts(&ca, *n, &hosts_of(hosts, *n))?;
        std::fs::write(out.join(format!("node-{n}.pem")), &c.cert)?;
        write_private(&out.join(format!("node-{n}.key")), &c.key)?;
    }
    for name in clients {
        let c = certs::issue_client(&ca, name)?;
        std::fs::write(out.join(format!("client-{name}.pem")), &c.cert)?;
        write_private(&out.join(format!("client-{name}.key")), &c.key)?;
    }
    println!(
        "wrote {} node and {} client certificates to {}",
        nodes.len(),
        clients.len(),
        out.display()
    );
    Ok(out.join("ca.pem"))
}

/// The names node `id`'s certificate carries: `hosts` with `{id}` replaced by the node's id
/// (`synod-{id}.synod` gives each pod of a StatefulSet its own stable name).
pub(crate) fn hosts_of(hosts: &[String], id: u16) -> Vec<String> {
    hosts
        .iter()
        .map(|h| h.replace("{id}", &id.to_string()))
        .collect()
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, pem: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(pem.as_bytes())?;
    Ok(())
}

fn free_port() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

struct Cluster {
    children: Vec<(u16, Child)>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What `synod dev` was asked for.
pub(crate) struct DevOptions {
    pub(crate) nodes: u16,
    pub(crate) data: Option<PathBuf>,
    pub(crate) power_cut_test_mode: bool,
    pub(crate) takeover_ms: u64,
    pub(crate) insecure_plaintext_api: bool,
}

pub(crate) fn run(opts: &DevOptions) -> Result<()> {
    let nodes = opts.nodes;
    if nodes == 0 {
        bail!("a cluster needs at least one node");
    }
    let temp;
    let data = match opts.data.clone() {
        Some(d) => d,
        None => {
            temp = tempfile::Builder::new().prefix("synod-dev-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&data)?;
    let ids: Vec<u16> = (0..nodes).collect();
    let hosts = ["localhost".to_string(), "127.0.0.1".to_string()];
    let certs_dir = data.join("certs");
    write_certs(&certs_dir, &ids, &hosts, &["admin".to_string()])?;
    let peer_addrs: Vec<SocketAddr> = ids.iter().map(|_| free_port()).collect::<Result<_>>()?;
    let api_addrs: Vec<SocketAddr> = ids.iter().map(|_| free_port()).collect::<Result<_>>()?;
    let scheme = if opts.insecure_plaintext_api {
        "http"
    } else {
        "https"
    };
    let exe = std::env::current_exe().context("locating the synod binary")?;
    let mut cluster = Cluster {
        children: Vec::new(),
    };
    let mut listing = Vec::new();
    for &id in &ids {
        let peers: BTreeMap<String, synod_node::PeerAddr> = ids
            .iter()
            .filter(|p| **p != id)
            .map(|p| (p.to_string(), peer_addrs[*p as usize].into()))
            .collect();
        let cfg = FileConfig {
            node: id,
            data_dir: data.join(format!("node-{id}")),
            listen_peer: peer_addrs[id as usize],
            listen_api: api_addrs[id as usize],
            listen_health: None,
            ready_lag_slots: crate::config::default_ready_lag_slots(),
            members: ids.clone(),
            join: false,
            peers,
            tls: TlsFiles {
                ca: data.join("certs/ca.pem"),
                cert: data.join(format!("certs/node-{id}.pem")),
                key: data.join(format!("certs/node-{id}.key")),
            },
            power_cut_test_mode: opts.power_cut_test_mode,
            takeover_ms: opts.takeover_ms,
            insecure_plaintext_api: opts.insecure_plaintext_api,
            heartbeat_ms: 10,
            liveness_ms: 1_000,
            snapshot_every: 10_000,
            log_retention: 50_000,
            executor_capacity: 4096,
            request_timeout_ms: 2_000,
            rejoin: false,
            // The printed client administers the cluster; a plain-HTTP cluster authenticates
            // no one, so there everyone does.
            cluster_admins: (!opts.insecure_plaintext_api)
                .then(|| vec![synod_transport::certs::client_name("admin")]),
            api_connections: crate::config::default_api_connections(),
            api_connections_per_identity: crate::config::default_api_connections_per_identity(),
            api_header_timeout_ms: crate::config::default_api_header_timeout_ms(),
        };
        let path = data.join(format!("node-{id}.toml"));
        std::fs::write(&path, toml::to_string(&cfg)?)?;
        let log = std::fs::File::create(data.join(format!("node-{id}.log")))?;
        let child = Command::new(&exe)
            .arg("start")
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting a node process")?;
        listing.push(json!({
            "id": id, "pid": child.id(), "api": format!("{scheme}://{}", api_addrs[id as usize]),
            "peer": peer_addrs[id as usize].to_string(), "config": path,
        }));
        cluster.children.push((id, child));
    }
    std::fs::write(
        data.join("cluster.json"),
        serde_json::to_string_pretty(&json!({
            "nodes": listing,
            "client": {
                "ca": certs_dir.join("ca.pem"),
                "cert": certs_dir.join("client-admin.pem"),
                "key": certs_dir.join("client-admin.key"),
            },
        }))?,
    )?;
    wait_healthy(&api_addrs)?;
    println!("synod dev: {nodes} nodes up; data in {}", data.display());
    for (id, a) in ids.iter().zip(&api_addrs) {
        println!(
            "  node {id}: {scheme}://{a}   (log: {})",
            data.join(format!("node-{id}.log")).display()
        );
    }
    if opts.insecure_plaintext_api {
        println!(
            "WARNING: the API is plain HTTP with no client authentication (--insecure-plaintext-api)"
        );
        println!(
            "try: synod --api http://{} kv put hello world",
            api_addrs[0]
        );
    } else {
        // The API is mutual TLS: clients present a certificate from the cluster CA.
        let ca = certs_dir.join("ca.pem");
        let cert = certs_dir.join("client-admin.pem");
        let key = certs_dir.join("client-admin.key");
        println!("the API is HTTPS with client certificates; for the CLI:");
        println!(
            "  export SYNOD_API=https://{} SYNOD_CA={} SYNOD_CERT={} SYNOD_KEY={}",
            api_addrs[0],
            ca.display(),
            cert.display(),
            key.display()
        );
        println!("  synod kv put hello world && synod kv get hello");
        println!(
            "or curl --cacert {} --cert {} --key {} https://{}/v1/status",
            ca.display(),
            cert.display(),
            key.display(),
            api_addrs[0]
        );
    }
    println!("Ctrl-C stops the cluster.");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut reported = std::collections::BTreeSet::new();
    rt.block_on(async {
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    // A node that dies (a fault experiment kills one) is reported, and the
                    // others keep running: that is the point of a cluster.
                    for (id, c) in &mut cluster.children {
                        if let Some(status) = c.try_wait()?
                            && reported.insert(*id)
                        {
                            eprintln!(
                                "node {id} exited ({status}); the others keep running. Log: {}",
                                data.join(format!("node-{id}.log")).display()
                            );
                        }
                    }
                    if reported.len() == cluster.children.len() {
                        bail!("every node has exited");
                    }
                }
            }
        }
    })
}

fn wait_healthy(apis: &[SocketAddr]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    for a in apis {
        loop {
            if std::net::TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!("node API {a} did not come up within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}
