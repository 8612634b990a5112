//! Clusters of the real binary in network namespaces, faults on a timeline, a recorded
//! workload, the history checkers, and a report per scenario.
//!
//! Each node runs in its own namespace (veth to a bridge in a switch namespace, where the
//! clients run); faults are nftables rules inside a node's namespace (partitions, loss) or
//! signals to its process (SIGKILL with power-cut storage, SIGSTOP/SIGCONT). Where `ip netns`
//! is refused, nodes run on their own loopback addresses (127.0.1.x) and rules go into
//! tables of this test's own in the root namespace; the output says so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use synod_check::kv::{KvCall, KvRet};
use synod_check::{Op, Outcome};

use super::BIN;

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

fn sh(cmd: &str) -> std::io::Result<std::process::Output> {
    Command::new("sh").arg("-c").arg(cmd).output()
}

fn must(cmd: &str) {
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
        println!("faults: each node in its own network namespace ({prefix}*)");
        net
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
                        "ip netns pids {prefix}n{i} | xargs -r kill -9; ip netns del {prefix}n{i}"
                    ));
                }
                let _ = sh(&format!(
                    "ip netns pids {prefix}sw | xargs -r kill -9; ip netns del {prefix}sw"
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

/// One node's process.
pub(crate) struct NodeProc {
    id: usize,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl NodeProc {
    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn start(&mut self, net: &Net) {
        let command = net.command(Some(self.id), BIN);
        self.child = Some(super::spawn_node(command, &self.config, &self.log));
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
                "node {} did not come up",
                self.id
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: &str) {
        must(&format!("kill -{sig} {}", self.pid()));
    }
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

fn write_config(dir: &Path, net: &Net, id: usize, nodes: usize) -> PathBuf {
    let certs = dir.join("certs");
    let members: Vec<String> = (0..nodes).map(|i| i.to_string()).collect();
    let mut peers = String::new();
    for j in (0..nodes).filter(|j| *j != id) {
        peers.push_str(&format!("\"{j}\" = \"{}:7000\"\n", net.ip(j)));
    }
    let config = format!(
        "node = {id}\ndata_dir = {data:?}\nlisten_peer = \"{ip}:7000\"\nlisten_api = \"{ip}:8000\"\n\
         members = [{members}]\npower_cut_test_mode = true\nrequest_timeout_ms = 1000\n\
         {plaintext}\n[peers]\n{peers}[tls]\nca = {ca:?}\ncert = {cert:?}\nkey = {key:?}\n",
        ip = net.ip(id),
        data = dir.join(format!("node-{id}")),
        members = members.join(", "),
        plaintext = super::PLAINTEXT,
        ca = certs.join("ca.pem"),
        cert = certs.join(format!("node-{id}.pem")),
        key = certs.join(format!("node-{id}.key")),
    );
    let path = dir.join(format!("node-{id}.toml"));
    std::fs::write(&path, config).unwrap();
    path
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
}

/// What a scenario does.
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) what: &'static str,
    pub(crate) nodes: usize,
    pub(crate) clients: usize,
    pub(crate) secs: f64,
    pub(crate) faults: Vec<(f64, Fault)>,
    /// When the fault window (shaded in the plot) starts and ends, seconds.
    pub(crate) window: (f64, f64),
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
    /// starts a few ms after the scenario's clock).
    pub(crate) applied: Vec<(u64, Fault)>,
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
        clients: s.clients,
        secs: s.secs * scale,
        faults: s.faults.iter().map(|(t, f)| (t * scale, *f)).collect(),
        window: (s.window.0 * scale, s.window.1 * scale),
    };
    run_scaled(&scaled)
}

fn run_scaled(s: &Scenario) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::create(s.nodes);
    let ids: Vec<u16> = (0..s.nodes as u16).collect();
    super::certs(dir.path(), &ids);
    let mut nodes: Vec<NodeProc> = (0..s.nodes)
        .map(|id| NodeProc {
            id,
            config: write_config(dir.path(), &net, id, s.nodes),
            log: dir.path().join(format!("node-{id}.log")),
            child: None,
        })
        .collect();
    for n in &mut nodes {
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
    for (at, fault) in &s.faults {
        let wait = Duration::from_secs_f64(*at).saturating_sub(started.elapsed());
        std::thread::sleep(wait);
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
    let run = Run { record, applied };
    report(s, &run, &net, &out);
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

fn report(s: &Scenario, run: &Run, net: &Net, history: &Path) {
    let record = &run.record;
    let count =
        |f: &dyn Fn(&Outcome<KvRet>) -> bool| record.ops.iter().filter(|o| f(&o.outcome)).count();
    let mut acks: Vec<u64> = record
        .ops
        .iter()
        .filter(|o| matches!(o.call, KvCall::Put { .. }) && matches!(o.outcome, Outcome::Ok(_)))
        .map(|o| o.complete)
        .collect();
    acks.sort_unstable();
    let longest_stall_ms = acks.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0) as f64 / 1e3;
    let window = ((s.window.0 * 1e6) as u64, (s.window.1 * 1e6) as u64);
    // Recovery: from the end of the fault window to the first second in which acknowledged
    // writes reach half the rate of the seconds before the window.
    let rate_before = acks.iter().filter(|t| **t < window.0).count() as f64 / s.window.0.max(1.0);
    let recovery_ms = (0..((s.secs - s.window.1) * 10.0) as u64)
        .map(|k| window.1 + k * 100_000)
        .find(|t| {
            let n = acks
                .iter()
                .filter(|a| **a >= *t && **a < t + 1_000_000)
                .count() as f64;
            n >= rate_before / 2.0
        })
        .map_or(f64::NAN, |t| (t - window.1) as f64 / 1e3);
    let backend = match net.backend {
        Backend::Netns { .. } => "network namespaces",
        Backend::Loopback { .. } => "loopback (netns refused)",
    };
    let json = serde_json::json!({
        "scenario": s.name,
        "what": s.what,
        "backend": backend,
        "nodes": s.nodes,
        "clients": s.clients,
        "seconds": s.secs,
        "operations": record.ops.len(),
        "ok": count(&|o| matches!(o, Outcome::Ok(_))),
        "failed": count(&|o| matches!(o, Outcome::Fail)),
        "unknown": count(&|o| matches!(o, Outcome::Unknown)),
        "acknowledged_writes": acks.len(),
        "longest_write_stall_ms": longest_stall_ms,
        "recovery_after_window_ms": recovery_ms,
        "faults": run.applied.iter().map(|(t, f)| format!("{:.2}s {f:?}", *t as f64 / 1e6)).collect::<Vec<_>>(),
        "checks": ["same state on every node", "per-key linearizability", "GSN real-time order"],
    });
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../fault-reports");
    std::fs::create_dir_all(&dir).unwrap();
    let name = s.name;
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{name}.md")),
        format!(
            "# {name}\n\n{}. Backend: {backend}; {} nodes, {} clients, {} s.\n\n\
             | operations | ok | failed | unknown | acknowledged writes | longest write stall | \
             recovery after the fault window |\n|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {} | {} | {longest_stall_ms:.1} ms | {recovery_ms:.0} ms |\n\n\
             Faults: {}.\n\nChecks passed: same state on every node, per-key linearizability, \
             GSN real-time order, and the scenario's own.\n\n![throughput]({name}.svg)\n",
            s.what,
            s.nodes,
            s.clients,
            s.secs,
            record.ops.len(),
            json["ok"],
            json["failed"],
            json["unknown"],
            acks.len(),
            json["faults"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    )
    .unwrap();
    plot(&dir.join(format!("{name}.svg")), &acks, window, s.secs);
    std::fs::copy(history, dir.join(format!("{name}.history.json"))).unwrap();
    println!("{}", serde_json::to_string_pretty(&json).unwrap());
}

/// Acknowledged writes per 250 ms, as an SVG with the fault window shaded.
fn plot(path: &Path, acks: &[u64], window: (u64, u64), secs: f64) {
    let bucket = 250_000u64;
    let n = (secs * 4.0).ceil() as usize + 1;
    let mut counts = vec![0u32; n];
    for t in acks {
        if let Some(c) = counts.get_mut((t / bucket) as usize) {
            *c += 1;
        }
    }
    let max = f64::from(counts.iter().copied().max().unwrap_or(1).max(1));
    let (w, h) = (600.0, 200.0);
    let x = |us: u64| us as f64 / (secs * 1e6) * w;
    let points: Vec<String> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "{:.1},{:.1}",
                (i as f64 + 0.5) / n as f64 * w,
                h - f64::from(*c) / max * (h - 20.0)
            )
        })
        .collect();
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <rect x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"{h}\" fill=\"#fdd\"/>\
         <polyline fill=\"none\" stroke=\"#036\" stroke-width=\"2\" points=\"{}\"/>\
         <text x=\"4\" y=\"14\" font-size=\"12\">acknowledged writes per 250 ms (peak {max}) \
         over {secs} s; shaded: fault window</text></svg>",
        x(window.0),
        x(window.1) - x(window.0),
        points.join(" ")
    );
    std::fs::write(path, svg).unwrap();
}
