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

/// Writes `ca.pem`, `ca.key` and `node-{id}.pem`/`.key` into `out`; returns the CA path.
pub(crate) fn write_certs(out: &Path, nodes: &[u16]) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let ca = certs::generate_ca("synod-dev")?;
    std::fs::write(out.join("ca.pem"), &ca.cert)?;
    std::fs::write(out.join("ca.key"), &ca.key)?;
    for n in nodes {
        let c = certs::issue_node(&ca, *n)?;
        std::fs::write(out.join(format!("node-{n}.pem")), &c.cert)?;
        std::fs::write(out.join(format!("node-{n}.key")), &c.key)?;
    }
    println!(
        "wrote a development CA and {} node certificates to {}",
        nodes.len(),
        out.display()
    );
    Ok(out.join("ca.pem"))
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

pub(crate) fn run(
    nodes: u16,
    data: Option<PathBuf>,
    power_cut_test_mode: bool,
    takeover_ms: u64,
) -> Result<()> {
    if nodes == 0 {
        bail!("a cluster needs at least one node");
    }
    let temp;
    let data = match data {
        Some(d) => d,
        None => {
            temp = tempfile::Builder::new().prefix("synod-dev-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&data)?;
    let ids: Vec<u16> = (0..nodes).collect();
    write_certs(&data.join("certs"), &ids)?;
    let peer_addrs: Vec<SocketAddr> = ids.iter().map(|_| free_port()).collect::<Result<_>>()?;
    let api_addrs: Vec<SocketAddr> = ids.iter().map(|_| free_port()).collect::<Result<_>>()?;
    let exe = std::env::current_exe().context("locating the synod binary")?;
    let mut cluster = Cluster {
        children: Vec::new(),
    };
    let mut listing = Vec::new();
    for &id in &ids {
        let peers: BTreeMap<String, SocketAddr> = ids
            .iter()
            .filter(|p| **p != id)
            .map(|p| (p.to_string(), peer_addrs[*p as usize]))
            .collect();
        let cfg = FileConfig {
            node: id,
            data_dir: data.join(format!("node-{id}")),
            listen_peer: peer_addrs[id as usize],
            listen_api: api_addrs[id as usize],
            members: ids.clone(),
            peers,
            tls: TlsFiles {
                ca: data.join("certs/ca.pem"),
                cert: data.join(format!("certs/node-{id}.pem")),
                key: data.join(format!("certs/node-{id}.key")),
            },
            power_cut_test_mode,
            takeover_ms,
            heartbeat_ms: 10,
            liveness_ms: 1_000,
            snapshot_every: 10_000,
            log_retention: 50_000,
            request_timeout_ms: 2_000,
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
            "id": id, "pid": child.id(), "api": format!("http://{}", api_addrs[id as usize]),
            "peer": peer_addrs[id as usize].to_string(), "config": path,
        }));
        cluster.children.push((id, child));
    }
    std::fs::write(
        data.join("cluster.json"),
        serde_json::to_string_pretty(&json!({ "nodes": listing }))?,
    )?;
    wait_healthy(&api_addrs)?;
    println!("synod dev: {nodes} nodes up; data in {}", data.display());
    for (id, a) in ids.iter().zip(&api_addrs) {
        println!(
            "  node {id}: http://{a}   (log: {})",
            data.join(format!("node-{id}.log")).display()
        );
    }
    println!(
        "try: synod kv --api http://{} put hello world",
        api_addrs[0]
    );
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
