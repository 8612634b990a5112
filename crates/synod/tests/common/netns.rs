//! Clusters of the real binary in network namespaces, faults on a timeline, a recorded
//! workload, the history checkers, and a report per scenario.
//!
//! Each node runs in its own namespace (veth to a bridge in a switch namespace, where the
//! clients run); faults are nftables rules inside a node's namespace (partitions, loss) or
//! signals to its process (SIGKILL with power-cut storage, SIGSTOP/SIGCONT). Where `ip netns`
//! is refused, nodes run on their own loopback addresses (127.0.1.x) and rules go into
//! tables of this test's own in the root namespace; the output says so. The nodes' processes
//! and configs are in `nodes.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use synod_check::kv::{KvCall, KvRet};
use synod_check::{Op, Outcome};

use super::BIN;
use super::nodes::{ConfigStyle, NodeProc, builds, has_probes, write_config};

/// Where the nodes live.
pub(crate) enum Backend {
    /// Each node in its own namespace; clients in the switch namespace.
    Netns { prefix: String },
    /// Own loopback addresses; rules in tables of our own (named from `prefix`) in the root
    /// namespace.
    Loopback { prefix: String },
}

pub(crate) struct Net {
    pub(crate) backend: Backend,
    nodes: usize,
}

pub(crate) fn sh(cmd: &str) -> std::io::Result<std::process::Output> {
    Command::new("sh").arg("-c").arg(cmd).output()
}

pub(crate) fn must(cmd: &str) {
    let out = sh(cmd).unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    pub(crate) fn create(nodes: usize) -> Net {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "syn{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let sw = format!("{prefix}sw");
        let probe = sh(&format!("ip netns add {sw} && ip -n {sw} link set lo up"));
        if !probe.is_ok_and(|o| o.status.success()) {
            println!(
                "faults: `ip netns` refused here; FALLING BACK TO LOOPBACK (own 127.0.1.x \
                 addresses, nftables rules in tables of this test's own)"
            );
            return Net {
                backend: Backend::Loopback { prefix },
                nodes,
            };
        }
        let net = Net {
            backend: Backend::Netns {
                prefix: prefix.clone(),
            },
            nodes,
        };
        must(&format!(
            "ip -n {sw} link add br0 type bridge && ip -n {sw} link set br0 up && \
             ip -n {sw} addr add 10.78.0.1/24 dev br0"
        ));
        for i in 0..nodes {
            let ns = format!("{prefix}n{i}");
            must(&format!(
                "ip netns add {ns} && ip -n {ns} link set lo up && \
                 ip link add v{prefix}{i} netns {ns} type veth peer name b{i} netns {sw} && \
                 ip -n {ns} link set v{prefix}{i} name eth0 && \
                 ip -n {ns} addr add 10.78.0.{}/24 dev eth0 && ip -n {ns} link set eth0 up && \
                 ip -n {sw} link set b{i} master br0 && ip -n {sw} link set b{i} up",
                10 + i
            ));
        }
        // Each namespace its own hosts file (`ip netns exec` mounts /etc/netns/NS/hosts
        // over /etc/hosts), naming every node: scenarios that address peers by name use it.
        let mut hosts = String::from("127.0.0.1 localhost\n");
        for i in 0..nodes {
            hosts.push_str(&format!("{} {}\n", net.ip(i), Net::name(i)));
        }
        for ns in (0..nodes)
            .map(|i| format!("{prefix}n{i}"))
            .chain([sw.clone()])
        {
            let dir = PathBuf::from(format!("/etc/netns/{ns}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("hosts"), &hosts).unwrap();
        }
        println!("faults: each node in its own network namespace ({prefix}*)");
        net
    }

    /// Node `i`'s DNS name in the namespaces' hosts files.
    pub(crate) fn name(i: usize) -> String {
        format!("synod-{i}.synod.test")
    }

    /// Where node `i`'s peers reach it: by name (netns only: the loopback fallback has no
    /// hosts file of its own) or by address.
    pub(crate) fn peer_host(&self, i: usize, by_name: bool) -> String {
        match self.backend {
            Backend::Netns { .. } if by_name => Net::name(i),
            _ => self.ip(i),
        }
    }

    pub(crate) fn ip(&self, i: usize) -> String {
        match self.backend {
            Backend::Netns { .. } => format!("10.78.0.{}", 10 + i),
            Backend::Loopback { .. } => format!("127.0.1.{}", 10 + i),
        }
    }

    /// A command that runs `program` where node `i` (or, with `None`, the clients) lives.
    pub(crate) fn command(&self, node: Option<usize>, program: &str) -> Command {
        let mut c = match (&self.backend, node) {
            (Backend::Netns { prefix }, Some(i)) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &format!("{prefix}n{i}"), program]);
                c
            }
            (Backend::Netns { prefix }, None) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &format!("{prefix}sw"), program]);
                c
            }
            (Backend::Loopback { .. }, _) => Command::new(program),
        };
        c.stdin(Stdio::null());
        c
    }

    /// Loads an nftables table named `name` with `chains` where node `i`'s traffic passes.
    fn load(&self, i: usize, name: &str, chains: &str) {
        match &self.backend {
            Backend::Netns { prefix } => must(&format!(
                "ip netns exec {prefix}n{i} nft -f - <<'EOF'\ntable inet {name} {{\n{chains}\n}}\nEOF"
            )),
            Backend::Loopback { prefix } => must(&format!(
                "nft -f - <<'EOF'\ntable inet {prefix}_{name}_{i} {{\n{chains}\n}}\nEOF"
            )),
        }
    }

    fn unload(&self, i: usize, name: &str) {
        match &self.backend {
            Backend::Netns { prefix } => {
                must(&format!(
                    "ip netns exec {prefix}n{i} nft delete table inet {name}"
                ));
            }
            Backend::Loopback { prefix } => {
                must(&format!("nft delete table inet {prefix}_{name}_{i}"));
            }
        }
    }

    fn peers_of(&self, i: usize) -> String {
        (0..self.nodes)
            .filter(|j| *j != i)
            .map(|j| self.ip(j))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Drops node `i`'s traffic to and from `to` (both directions); clients still reach it.
    fn cut(&self, i: usize, to: &str, name: &str) {
        let me = self.ip(i);
        let chains = match self.backend {
            Backend::Netns { .. } => format!(
                "chain input {{ type filter hook input priority 0; ip saddr {{ {to} }} drop; }}\n\
                 chain output {{ type filter hook output priority 0; ip daddr {{ {to} }} drop; }}"
            ),
            Backend::Loopback { .. } => format!(
                "chain output {{ type filter hook output priority 0;\n\
                 ip saddr {me} ip daddr {{ {to} }} drop;\n\
                 ip daddr {me} ip saddr {{ {to} }} drop; }}"
            ),
        };
        self.load(i, name, &chains);
    }

    /// Drops `percent` % of the peer traffic node `i` receives (in both TCP directions of
    /// every peer connection), chosen at random per packet.
    fn lose(&self, i: usize, percent: u8) {
        let me = self.ip(i);
        let chains = match self.backend {
            Backend::Netns { .. } => format!(
                "chain input {{ type filter hook input priority 0;\n\
                 tcp dport 7000 numgen random mod 100 < {percent} drop;\n\
                 tcp sport 7000 numgen random mod 100 < {percent} drop; }}"
            ),
            Backend::Loopback { .. } => format!(
                "chain output {{ type filter hook output priority 0;\n\
                 ip daddr {me} tcp dport 7000 numgen random mod 100 < {percent} drop;\n\
                 ip daddr {me} tcp sport 7000 numgen random mod 100 < {percent} drop; }}"
            ),
        };
        self.load(i, "synod_loss", &chains);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        match &self.backend {
            Backend::Netns { prefix } => {
                for i in 0..self.nodes {
                    let _ = sh(&format!(
                        "ip netns pids {prefix}n{i} | xargs -r kill -9; ip netns del {prefix}n{i}; \
                         rm -rf /etc/netns/{prefix}n{i}"
                    ));
                }
                let _ = sh(&format!(
                    "ip netns pids {prefix}sw | xargs -r kill -9; ip netns del {prefix}sw; \
                     rm -rf /etc/netns/{prefix}sw"
                ));
            }
            Backend::Loopback { prefix } => {
                let _ = sh(&format!(
                    "nft list tables | awk '/{prefix}_/ {{print $3}}' | \
                     xargs -r -n1 nft delete table inet"
                ));
            }
        }
    }
}

/// A fault, applied at a time on the scenario's timeline.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    /// Cut node `i` off from every other node.
    Isolate(usize),
    /// Undo `Isolate(i)`.
    Heal(usize),
    /// Node `i` stops hearing node `j` (one way: `j` still hears `i`).
    DeafTo(usize, usize),
    /// Undo `DeafTo(i, j)`.
    HearAgain(usize, usize),
    /// SIGKILL node `i` (power-cut storage: unsynced writes are lost).
    Kill(usize),
    /// Start node `i` again from its data directory.
    Restart(usize),
    /// SIGSTOP node `i`.
    Pause(usize),
    /// SIGCONT node `i`.
    Resume(usize),
    /// Node `i` loses this percentage of its incoming peer packets.
    Loss(usize, u8),
    /// Undo `Loss(i, _)`.
    NoLoss(usize),
    /// Cut the nodes in `minority` off from all the others (both directions).
    Split(&'static [usize]),
    /// Undo `Split`.
    Join(&'static [usize]),
    /// Majorities ring: each node hears only its two ring neighbours (with five nodes, every
    /// node still has a majority, but no two majorities are the same).
    Ring,
    /// Undo `Ring`.
    Unring,
    /// Overwrite the last record of the default group's log of node `i` (stopped) with
    /// garbage, as a bad sector would: the node must find it and repair from its peers.
    CorruptTail(usize),
    /// Cut node `i`'s database file (stopped) to half its length: redb finds pages missing;
    /// the node must set the file aside and rejoin from its peers. (Cutting only free space
    /// at the end, which redb reclaims after a crash, loses nothing and is not detected.)
    TruncateDb(usize),
    /// Delete node `i`'s data directory (stopped): a replaced disk.
    WipeData(usize),
    /// Start node `i` with `--rejoin` (its disk was replaced).
    RestartRejoin(usize),
    /// Wait (up to 30 s) until node `i` reports no group rejoining; fails the test if not.
    AwaitRejoined(usize),
    /// Start spare node `i` (not a founding member; `join = true`).
    StartSpare(usize),
    /// Add node `i` to the default group's voters, through node 0's API.
    AddMember(usize),
    /// Remove node `i` from the default group's voters, through node 0's API.
    RemoveMember(usize),
    /// Wait (up to 30 s) until node `i` has applied as far as node 0 had when asked.
    AwaitCaughtUp(usize),
    /// Stop node `i` with SIGTERM, start it on the other build (see `builds`), and wait until
    /// its readiness probe says it is caught up and serving.
    Upgrade(usize),
}

/// What a scenario does.
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) what: &'static str,
    pub(crate) nodes: usize,
    /// Nodes beyond `nodes`, started later by `StartSpare` to join (no clients).
    pub(crate) spares: usize,
    pub(crate) clients: usize,
    pub(crate) secs: f64,
    pub(crate) faults: Vec<(f64, Fault)>,
    /// When the fault window (shaded in the plot) starts and ends, seconds.
    pub(crate) window: (f64, f64),
    /// Nodes name their peers by DNS name (each namespace has its own hosts file), not by
    /// address.
    pub(crate) by_name: bool,
}

/// What the workload recorded (see `synod workload`).
#[derive(Deserialize)]
pub(crate) struct Record {
    pub(crate) ops: Vec<Op<KvCall, KvRet>>,
    pub(crate) writes: Vec<(u64, u64, u64, u64)>,
    pub(crate) clients: Vec<(u64, usize, usize)>,
    pub(crate) final_status: Vec<Option<(u64, String)>>,
    pub(crate) converged: bool,
}

/// A scenario's result, after the common checks passed.
pub(crate) struct Run {
    pub(crate) record: Record,
    /// When each fault was applied, µs on the workload's clock (approximately: the workload
    /// starts a few ms after the scenario's clock): when it began and when it was done (a
    /// restart or an upgrade takes a while).
    pub(crate) applied: Vec<(u64, Fault)>,
    /// When each fault began, µs, in the order of `applied`.
    pub(crate) begun: Vec<u64>,
    /// Whether the nodes knew each other by name only (false where the loopback fallback
    /// had to use addresses).
    pub(crate) by_name: bool,
    /// Each node's log (its own and every later incarnation's).
    pub(crate) logs: Vec<String>,
}

impl Run {
    /// The node whose client issued operation `id`.
    pub(crate) fn node_of(&self, id: u64) -> Option<usize> {
        self.record.clients.iter().find(|c| c.0 == id).map(|c| c.2)
    }

    /// Acknowledged puts through `node` invoked at or after `from` and completed by `to` (µs).
    pub(crate) fn acked_puts(&self, node: usize, from: u64, to: u64) -> usize {
        self.record
            .ops
            .iter()
            .filter(|o| matches!(o.call, KvCall::Put { .. }))
            .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
            .filter(|o| self.node_of(o.id) == Some(node) && o.invoke >= from && o.complete <= to)
            .count()
    }

    /// When fault number `k` of the timeline was applied, µs.
    pub(crate) fn at(&self, k: usize) -> u64 {
        self.applied[k].0
    }
}

/// Runs `s`: starts the cluster, runs the workload while applying the faults, then checks
/// that every node holds the same state, that the history is linearizable key by key and that
/// GSNs follow real time; writes the report. Scenario-specific checks are the caller's.
pub(crate) fn run(s: &Scenario) -> Run {
    // `SYNOD_FAULTS_SCALE=k` stretches the whole timeline k times (scripts/faults-full.sh).
    let scale: f64 = std::env::var("SYNOD_FAULTS_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let scaled = Scenario {
        name: s.name,
        what: s.what,
        nodes: s.nodes,
        spares: s.spares,
        clients: s.clients,
        secs: s.secs * scale,
        faults: s.faults.iter().map(|(t, f)| (t * scale, *f)).collect(),
        window: (s.window.0 * scale, s.window.1 * scale),
        by_name: s.by_name,
    };
    run_scaled(&scaled)
}

fn run_scaled(s: &Scenario) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let total = s.nodes + s.spares;
    let net = Net::create(total);
    let ids: Vec<u16> = (0..total as u16).collect();
    super::certs(dir.path(), &ids);
    let (from, to) = builds();
    let upgrading = s.faults.iter().any(|(_, f)| matches!(f, Fault::Upgrade(_)));
    let first = if upgrading { from } else { BIN.to_string() };
    // A build from before peers could be named has no probes either (both came at once).
    let modern = has_probes(&first);
    let by_name = s.by_name && modern && matches!(net.backend, Backend::Netns { .. });
    let style = ConfigStyle {
        by_name,
        probes: modern,
    };
    let layout = |id| (id, s.nodes, total);
    let mut nodes: Vec<NodeProc> = (0..total)
        .map(|id| NodeProc {
            id,
            bin: first.clone(),
            config: write_config(dir.path(), &net, layout(id), style, ""),
            data: dir.path().join(format!("node-{id}")),
            log: dir.path().join(format!("node-{id}.log")),
            child: None,
        })
        .collect();
    for n in &mut nodes[..s.nodes] {
        n.start(&net);
    }
    let out = dir.path().join("history.json");
    let urls: Vec<String> = (0..s.nodes)
        .map(|i| format!("http://{}:8000", net.ip(i)))
        .collect();
    let started = Instant::now();
    let mut workload = net
        .command(None, BIN)
        .args(["workload", "--keys", "4", "--timeout-ms", "1000"])
        .args(["--clients", &s.clients.to_string()])
        .args(["--secs", &s.secs.to_string(), "--nodes", &urls.join(",")])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut applied = Vec::new();
    let mut begun = Vec::new();
    for (at, fault) in &s.faults {
        let wait = Duration::from_secs_f64(*at).saturating_sub(started.elapsed());
        std::thread::sleep(wait);
        begun.push(started.elapsed().as_micros() as u64);
        match *fault {
            Fault::Isolate(i) => net.cut(i, &net.peers_of(i), "synod_isolate"),
            Fault::Heal(i) => net.unload(i, "synod_isolate"),
            Fault::DeafTo(i, j) => {
                // Only node i's input from j: in a namespace, its input chain; on loopback,
                // packets from j to i.
                let chains = match net.backend {
                    Backend::Netns { .. } => format!(
                        "chain input {{ type filter hook input priority 0; ip saddr {} drop; }}",
                        net.ip(j)
                    ),
                    Backend::Loopback { .. } => format!(
                        "chain output {{ type filter hook output priority 0; \
                         ip saddr {} ip daddr {} drop; }}",
                        net.ip(j),
                        net.ip(i)
                    ),
                };
                net.load(i, "synod_deaf", &chains);
            }
            Fault::HearAgain(i, _) => net.unload(i, "synod_deaf"),
            Fault::Kill(i) => nodes[i].kill9(),
            Fault::Restart(i) => nodes[i].start(&net),
            Fault::Pause(i) => nodes[i].signal("STOP"),
            Fault::Resume(i) => nodes[i].signal("CONT"),
            Fault::Loss(i, pct) => net.lose(i, pct),
            Fault::NoLoss(i) => net.unload(i, "synod_loss"),
            Fault::Split(minority) => {
                let side = |inside: bool| {
                    (0..s.nodes)
                        .filter(|n| minority.contains(n) == inside)
                        .map(|n| net.ip(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                for n in 0..s.nodes {
                    let other = side(!minority.contains(&n));
                    net.cut(n, &other, "synod_split");
                }
            }
            Fault::Join(_) => {
                for n in 0..s.nodes {
                    net.unload(n, "synod_split");
                }
            }
            Fault::Ring => {
                for n in 0..s.nodes {
                    let far = (0..s.nodes)
                        .filter(|m| {
                            let d = (m + s.nodes - n) % s.nodes;
                            d > 1 && d < s.nodes - 1
                        })
                        .map(|m| net.ip(m))
                        .collect::<Vec<_>>()
                        .join(", ");
                    net.cut(n, &far, "synod_ring");
                }
            }
            Fault::Unring => {
                for n in 0..s.nodes {
                    net.unload(n, "synod_ring");
                }
            }
            Fault::CorruptTail(i) => corrupt_tail(&nodes[i]),
            Fault::TruncateDb(i) => {
                let db = nodes[i].data.join("synod.redb");
                let len = std::fs::metadata(&db).unwrap().len();
                let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
                file.set_len(len / 2).unwrap();
            }
            Fault::WipeData(i) => std::fs::remove_dir_all(&nodes[i].data).unwrap(),
            Fault::RestartRejoin(i) => nodes[i].start_with(&net, &["--rejoin"]),
            Fault::AwaitRejoined(i) => await_status(&net, i, "no group rejoining", |groups| {
                groups.iter().all(|g| g["rejoining"].is_null())
            }),
            Fault::StartSpare(i) => nodes[i].start(&net),
            Fault::AddMember(i) => {
                let addr = format!("{}:7000", net.ip(i));
                member(&net, &["add", "--id", &i.to_string(), "--addr", &addr]);
            }
            Fault::RemoveMember(i) => member(&net, &["remove", "--id", &i.to_string()]),
            Fault::Upgrade(i) => {
                nodes[i].stop();
                nodes[i].bin = to.clone();
                // The new build's config may use what it knows (the probes' listener).
                let style = ConfigStyle {
                    by_name,
                    probes: true,
                };
                nodes[i].config = write_config(dir.path(), &net, layout(i), style, "-upgraded");
                nodes[i].start(&net);
                nodes[i].await_ready(&net);
            }
            Fault::AwaitCaughtUp(i) => {
                let target = default_group(&status_of(&net, 0))["applied_gsn"]
                    .as_u64()
                    .unwrap_or(0);
                await_status(&net, i, "a caught-up voter", |groups| {
                    groups.iter().any(|g| {
                        g["id"] == 0
                            && g["applied_gsn"].as_u64().unwrap_or(0) >= target
                            && g["members"]
                                .as_array()
                                .is_some_and(|m| m.iter().any(|x| *x == i))
                    })
                });
            }
        }
        applied.push((started.elapsed().as_micros() as u64, *fault));
    }
    let status = workload.wait().unwrap();
    assert!(status.success(), "the workload failed");
    let record: Record = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();

    // The checks every scenario must pass.
    assert!(
        record.converged,
        "{}: nodes did not converge: {:?}",
        s.name, record.final_status
    );
    if let Err(v) = synod_check::kv::check(&record.ops) {
        keep(dir, &out, s.name);
        panic!("{}: not linearizable: {v:?}", s.name);
    }
    if let Err(v) = synod_check::gsn_order(&record.writes) {
        keep(dir, &out, s.name);
        panic!("{}: GSNs out of real-time order: {v:?}", s.name);
    }
    let logs = nodes
        .iter()
        .map(|n| std::fs::read_to_string(&n.log).unwrap_or_default())
        .collect();
    let run = Run {
        record,
        applied,
        begun,
        by_name,
        logs,
    };
    super::report::report(s, &run, &net, &out);
    if std::env::var_os("SYNOD_FAULTS_KEEP").is_some() {
        drop(nodes);
        keep(dir, &out, s.name);
    }
    run
}

fn keep(dir: tempfile::TempDir, _out: &Path, name: &str) {
    let path = dir.keep();
    println!("{name}: data, logs and history kept in {}", path.display());
}

/// Overwrites the last record of the default group in a stopped node's log with bytes that
/// fail their checksum.
fn corrupt_tail(node: &NodeProc) {
    assert!(node.child.is_none(), "corrupt a stopped node's disk only");
    let mut store = synod_storage::Store::open(&node.data.join("synod.redb")).unwrap();
    let group = synod_storage::GroupId(0);
    assert!(store.len(group).unwrap() > 0, "node {} has no log", node.id);
    store
        .dangerous_overwrite_last_raw(group, b"\x00garbage that fails its checksum")
        .unwrap();
}

/// Node `i`'s `/v1/status` groups (empty if it does not answer).
fn status_of(net: &Net, i: usize) -> Vec<serde_json::Value> {
    let out = net
        .command(None, BIN)
        .args(["status", "--api", &format!("http://{}:8000", net.ip(i))])
        .output()
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v["groups"].as_array().cloned())
        .unwrap_or_default()
}

fn default_group(groups: &[serde_json::Value]) -> serde_json::Value {
    groups
        .iter()
        .find(|g| g["id"] == 0)
        .cloned()
        .unwrap_or_default()
}

/// Polls node `i`'s status until `done` holds (up to 30 s).
fn await_status(net: &Net, i: usize, what: &str, done: impl Fn(&[serde_json::Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let groups = status_of(net, i);
        if !groups.is_empty() && done(&groups) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {i} not {what} after 30 s: {groups:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `synod member ARGS` through node 0's API, retried while the cluster refuses (up to 20 s).
fn member(net: &Net, args: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = net
            .command(None, BIN)
            .arg("member")
            .args(args)
            .args(["--api", &format!("http://{}:8000", net.ip(0))])
            .output()
            .unwrap();
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "synod member {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
