//! The nodes of a fault scenario: one process each (started through `ip netns exec` where its
//! namespace is), stopped with SIGTERM or SIGKILL, paused, upgraded to another build; their
//! configs (peers by address or by name, the probes' listener where the build knows it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::BIN;
use super::netns::{Net, must, sh};

/// One node's process.
pub(crate) struct NodeProc {
    pub(crate) id: usize,
    /// The binary it runs (another build after `Fault::Upgrade`).
    pub(crate) bin: String,
    pub(crate) config: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) child: Option<Child>,
}

impl NodeProc {
    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub(crate) fn start(&mut self, net: &Net) {
        self.start_with(net, &[]);
    }

    pub(crate) fn start_with(&mut self, net: &Net, extra: &[&str]) {
        let command = net.command(Some(self.id), &self.bin);
        self.child = Some(super::spawn_node_with(
            command,
            &self.config,
            &self.log,
            extra,
        ));
        // Up when it answers `synod status` from where the clients are.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = net
                .command(None, BIN)
                .args([
                    "status",
                    "--api",
                    &format!("http://{}:8000", net.ip(self.id)),
                ])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not come up; the end of its log:\n{}",
                self.id,
                log_tail(&self.log)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        must(&format!("kill -{sig} {}", self.pid()));
    }

    /// SIGTERM, as a container runtime stops a process, and waits for it to exit (SIGKILL
    /// after 10 s, which fails the scenario).
    pub(crate) fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        must(&format!("kill -TERM {}", c.id()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("node {} did not stop within 10 s of SIGTERM", self.id);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (up to 30 s) until the node's readiness probe answers 200, asked with
    /// `synod probe ready` from where the clients are.
    pub(crate) fn await_ready(&self, net: &Net) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = net
                .command(None, &self.bin)
                .args([
                    "probe",
                    "ready",
                    "--addr",
                    &format!("{}:8080", net.ip(self.id)),
                ])
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} not ready after 30 s: {}",
                self.id,
                String::from_utf8_lossy(&out.stdout)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The two builds of a rolling upgrade: the cluster starts on `from`
/// (`SYNOD_UPGRADE_FROM`, by default this build) and `Fault::Upgrade` restarts a node on
/// `to` (`SYNOD_UPGRADE_TO`, by default this build; `scripts/test.sh` sets it to the binary
/// taken out of the container image, `scripts/rolling-upgrade.sh` sets `from` to an older
/// commit's build).
pub(crate) fn builds() -> (String, String) {
    let build = |var: &str| std::env::var(var).unwrap_or_else(|_| BIN.to_string());
    (build("SYNOD_UPGRADE_FROM"), build("SYNOD_UPGRADE_TO"))
}

/// Whether `bin` knows the probes' listener (`listen_health`; builds before it refuse the
/// key, their configs being strict).
pub(crate) fn has_probes(bin: &str) -> bool {
    Command::new(bin)
        .args(["probe", "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A paused process must be woken to die promptly.
            let _ = sh(&format!("kill -CONT {}", c.id()));
        }
        self.kill9();
    }
}

/// How a node's config is written.
#[derive(Clone, Copy)]
pub(crate) struct ConfigStyle {
    /// Peers by DNS name rather than IP address.
    pub(crate) by_name: bool,
    /// With the probes' listener on port 8080 (builds that know it).
    pub(crate) probes: bool,
}

/// Node `id`'s config: nodes `0..genesis` found the cluster, the others (up to `total`)
/// join it later (`synod member add`). Written to `node-{id}{suffix}.toml`.
pub(crate) fn write_config(
    dir: &Path,
    net: &Net,
    (id, genesis, total): (usize, usize, usize),
    style: ConfigStyle,
    suffix: &str,
) -> PathBuf {
    let certs = dir.join("certs");
    let members: Vec<String> = (0..genesis).map(|i| i.to_string()).collect();
    let mut peers = String::new();
    for j in (0..total).filter(|j| *j != id) {
        peers.push_str(&format!(
            "\"{j}\" = \"{}:7000\"\n",
            net.peer_host(j, style.by_name)
        ));
    }
    let probes = if style.probes {
        format!("listen_health = \"{}:8080\"\n", net.ip(id))
    } else {
        String::new()
    };
    let config = format!(
        "node = {id}\ndata_dir = {data:?}\nlisten_peer = \"{ip}:7000\"\nlisten_api = \"{ip}:8000\"\n\
         {probes}members = [{members}]\njoin = {join}\npower_cut_test_mode = true\n\
         request_timeout_ms = 1000\n{plaintext}\n[peers]\n{peers}[tls]\nca = {ca:?}\n\
         cert = {cert:?}\nkey = {key:?}\n",
        join = id >= genesis,
        ip = net.ip(id),
        data = dir.join(format!("node-{id}")),
        members = members.join(", "),
        plaintext = super::PLAINTEXT,
        ca = certs.join("ca.pem"),
        cert = certs.join(format!("node-{id}.pem")),
        key = certs.join(format!("node-{id}.key")),
    );
    let path = dir.join(format!("node-{id}{suffix}.toml"));
    std::fs::write(&path, config).unwrap();
    path
}

/// The last lines of a node's log, for a failure message.
pub(crate) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
