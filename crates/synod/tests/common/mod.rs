//! Helpers shared by the tests that run the real `synod` binary.

// Each test file uses a different subset.
#![allow(dead_code, clippy::unwrap_used)]

pub(crate) mod netns;
pub(crate) mod nodes;
pub(crate) mod report;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_synod");

pub(crate) struct Proc {
    pub(crate) child: Option<Child>,
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) api: SocketAddr,
}

/// Spawns `synod start --config config` through `command` (the binary itself, or a wrapper
/// such as `ip netns exec`), its output appended to `log`.
pub(crate) fn spawn_node(command: Command, config: &Path, log: &Path) -> Child {
    spawn_node_with(command, config, log, &[])
}

/// Like [`spawn_node`], with extra arguments to `synod start` (`--rejoin`).
pub(crate) fn spawn_node_with(
    mut command: Command,
    config: &Path,
    log: &Path,
    extra: &[&str],
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    command
        .args(["start", "--config"])
        .arg(config)
        .args(extra)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap()
}

impl Proc {
    pub(crate) fn start(&mut self) {
        self.child = Some(spawn_node(Command::new(BIN), &self.config, &self.log));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect_timeout(&self.api, Duration::from_millis(100)).is_err() {
            if Instant::now() >= deadline {
                let state = self.process_state();
                panic!(
                    "node did not come up on {} within 20 s ({state}); the end of its log ({}), \
                     which goes with the test's temporary directory:\n{}",
                    self.api,
                    self.log.display(),
                    nodes::log_tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still there and what it is doing (its exit status, or each
    /// thread's name, state and the kernel function it waits in): for the failure message of
    /// a node that does not come up.
    fn process_state(&mut self) -> String {
        let Some(child) = self.child.as_mut() else {
            return "not started".into();
        };
        match child.try_wait() {
            Ok(Some(status)) => return format!("exited: {status}"),
            Err(e) => return format!("unknown: {e}"),
            Ok(None) => {}
        }
        let tasks = format!("/proc/{}/task", child.id());
        let mut threads = Vec::new();
        for entry in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
            let read = |f: &str| std::fs::read_to_string(entry.path().join(f)).unwrap_or_default();
            let state = read("status")
                .lines()
                .find_map(|l| l.strip_prefix("State:"))
                .unwrap_or("?")
                .trim()
                .to_string();
            threads.push(format!(
                "{} {state} in {}",
                read("comm").trim(),
                read("wchan")
            ));
        }
        format!("running; threads: {}", threads.join(", "))
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL on Unix
            c.wait().unwrap();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub(crate) fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Writes development certificates for `ids` into `dir/certs` (reusing its CA if present).
pub(crate) fn certs(dir: &Path, ids: &[u16]) {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let out = Command::new(BIN)
        .args(["certs", "--out"])
        .arg(dir.join("certs"))
        .args(["--nodes", &ids.join(",")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// A node of a cluster whose genesis members are `genesis`, with `peers` as its peers and
/// `extra` lines appended to the top of its `node.toml`.
pub(crate) fn node(
    dir: &Path,
    id: u16,
    genesis: &[u16],
    peer: SocketAddr,
    peers: &[(u16, SocketAddr)],
    extra: &str,
) -> Proc {
    let certs = dir.join("certs");
    let api = free_port();
    let members: Vec<String> = genesis.iter().map(ToString::to_string).collect();
    let mut peer_lines = String::new();
    for (p, addr) in peers.iter().filter(|(p, _)| *p != id) {
        peer_lines.push_str(&format!("\"{p}\" = \"{addr}\"\n"));
    }
    let config = format!(
        "node = {id}\ndata_dir = {data:?}\nlisten_peer = \"{peer}\"\nlisten_api = \"{api}\"\n\
         members = [{members}]\npower_cut_test_mode = true\nrequest_timeout_ms = 1500\n{extra}\n\
         [peers]\n{peer_lines}[tls]\nca = {ca:?}\ncert = {cert:?}\nkey = {key:?}\n",
        data = dir.join(format!("node-{id}")),
        members = members.join(", "),
        ca = certs.join("ca.pem"),
        cert = certs.join(format!("node-{id}.pem")),
        key = certs.join(format!("node-{id}.key")),
    );
    let path = dir.join(format!("node-{id}.toml"));
    std::fs::write(&path, config).unwrap();
    Proc {
        child: None,
        config: path,
        log: dir.join(format!("node-{id}.log")),
        api,
    }
}

/// An `n`-node cluster (not started), its API served in plaintext (as the tests of faults
/// speak plain HTTP; the TLS API has its own test).
pub(crate) fn cluster(dir: &Path, n: u16) -> Vec<Proc> {
    let ids: Vec<u16> = (0..n).collect();
    certs(dir, &ids);
    let peers: Vec<(u16, SocketAddr)> = ids.iter().map(|i| (*i, free_port())).collect();
    ids.iter()
        .map(|id| node(dir, *id, &ids, peers[*id as usize].1, &peers, PLAINTEXT))
        .collect()
}

/// The `node.toml` line that serves the API without TLS or client authentication.
pub(crate) const PLAINTEXT: &str = "insecure_plaintext_api = true";

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

/// PUT; true only if the node acknowledged it (200 and `true`).
pub(crate) fn put(api: SocketAddr, key: &str, value: &str) -> bool {
    match agent()
        .put(&format!("http://{api}/v1/kv/{key}"))
        .send(value)
    {
        Ok(mut r) => {
            r.status() == 200 && r.body_mut().read_to_string().unwrap_or_default() == "true"
        }
        Err(_) => false,
    }
}

pub(crate) fn get_stale(api: SocketAddr, key: &str) -> Option<String> {
    let mut r = agent()
        .get(&format!("http://{api}/v1/kv/{key}?raw&stale"))
        .call()
        .ok()?;
    (r.status() == 200).then(|| r.body_mut().read_to_string().unwrap())
}

pub(crate) fn status(api: SocketAddr) -> Option<(u64, String)> {
    let mut r = agent()
        .get(&format!("http://{api}/v1/status"))
        .call()
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().ok()?).ok()?;
    let g = &v["groups"][0];
    Some((
        g["applied_gsn"].as_u64()?,
        g["content_hash"].as_str()?.to_string(),
    ))
}
