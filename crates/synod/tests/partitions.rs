//! Real partitions: each node of a 3-node cluster of the real binary runs in its own network
//! namespace (veth pairs to a bridge in a switch namespace, where the clients run), and
//! nftables rules inside a node's namespace cut it off from its peers. Clients record every
//! operation (`synod workload`); after the heal the history must be linearizable key by key,
//! GSNs must follow real time, and every node must hold the same state. The isolated node must
//! refuse writes while cut off, the majority must keep writing, and the isolated node must
//! serve writes again after the heal.
//!
//! Where `ip netns` is refused, the nodes run on loopback addresses of their own
//! (127.0.1.x) and the rules go into a table of this test's own in the root namespace; the
//! test says so in its output. A report (JSON, markdown, an SVG of throughput with the fault
//! window shaded) goes to `target/fault-reports/`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::BIN;
use serde::Deserialize;
use synod_check::kv::{KvCall, KvRet};
use synod_check::{Op, Outcome};

/// Where the nodes live.
enum Backend {
    /// Each node in its own namespace; clients in the switch namespace.
    Netns { prefix: String },
    /// Own loopback addresses, rules in a table of our own in the root namespace.
    Loopback { table: String },
}

struct Net {
    backend: Backend,
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
    fn create(nodes: usize) -> Net {
        let prefix = format!("syn{}", std::process::id() % 100_000);
        let sw = format!("{prefix}sw");
        let probe = sh(&format!("ip netns add {sw} && ip -n {sw} link set lo up"));
        if probe.is_ok_and(|o| o.status.success()) {
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
            println!("partitions: each node in its own network namespace ({prefix}*)");
            net
        } else {
            println!(
                "partitions: `ip netns` refused here; FALLING BACK TO LOOPBACK (own 127.0.1.x \
                 addresses, nftables rules in a table of this test's own)"
            );
            Net {
                backend: Backend::Loopback {
                    table: format!("synod_faults_{prefix}"),
                },
                nodes,
            }
        }
    }

    fn ip(&self, i: usize) -> String {
        match self.backend {
            Backend::Netns { .. } => format!("10.78.0.{}", 10 + i),
            Backend::Loopback { .. } => format!("127.0.1.{}", 10 + i),
        }
    }

    /// The command prefix that runs a program where node `i` (or, with `None`, the clients)
    /// live.
    fn exec(&self, node: Option<usize>) -> Vec<String> {
        match (&self.backend, node) {
            (Backend::Netns { prefix }, Some(i)) => {
                vec![
                    "ip".into(),
                    "netns".into(),
                    "exec".into(),
                    format!("{prefix}n{i}"),
                ]
            }
            (Backend::Netns { prefix }, None) => {
                vec![
                    "ip".into(),
                    "netns".into(),
                    "exec".into(),
                    format!("{prefix}sw"),
                ]
            }
            (Backend::Loopback { .. }, _) => Vec::new(),
        }
    }

    fn command(&self, node: Option<usize>, program: &str) -> Command {
        let prefix = self.exec(node);
        let mut c = if prefix.is_empty() {
            Command::new(program)
        } else {
            let mut c = Command::new(&prefix[0]);
            c.args(&prefix[1..]).arg(program);
            c
        };
        c.stdin(Stdio::null());
        c
    }

    /// Cuts node `i` off from every other node (both directions); clients still reach it.
    fn isolate(&self, i: usize) {
        let others: Vec<String> = (0..self.nodes)
            .filter(|j| *j != i)
            .map(|j| self.ip(j))
            .collect();
        let set = others.join(", ");
        match &self.backend {
            Backend::Netns { prefix } => must(&format!(
                "ip netns exec {prefix}n{i} nft -f - <<'EOF'\n\
                 table inet synod_partition {{\n\
                   chain input {{ type filter hook input priority 0; ip saddr {{ {set} }} drop; }}\n\
                   chain output {{ type filter hook output priority 0; ip daddr {{ {set} }} drop; }}\n\
                 }}\nEOF"
            )),
            Backend::Loopback { table } => {
                let me = self.ip(i);
                must(&format!(
                    "nft -f - <<'EOF'\n\
                     table inet {table} {{\n\
                       chain output {{ type filter hook output priority 0;\n\
                         ip saddr {me} ip daddr {{ {set} }} drop;\n\
                         ip daddr {me} ip saddr {{ {set} }} drop; }}\n\
                     }}\nEOF"
                ));
            }
        }
    }

    fn heal(&self, i: usize) {
        match &self.backend {
            Backend::Netns { prefix } => {
                must(&format!(
                    "ip netns exec {prefix}n{i} nft delete table inet synod_partition"
                ));
            }
            Backend::Loopback { table } => must(&format!("nft delete table inet {table}")),
        }
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
            Backend::Loopback { table } => {
                let _ = sh(&format!("nft delete table inet {table} 2>/dev/null"));
            }
        }
    }
}

struct NodeProc {
    child: Option<Child>,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn write_config(dir: &Path, net: &Net, id: usize) -> PathBuf {
    let certs = dir.join("certs");
    let members: Vec<String> = (0..net.nodes).map(|i| i.to_string()).collect();
    let mut peers = String::new();
    for j in (0..net.nodes).filter(|j| *j != id) {
        peers.push_str(&format!("\"{j}\" = \"{}:7000\"\n", net.ip(j)));
    }
    let config = format!(
        "node = {id}\ndata_dir = {data:?}\nlisten_peer = \"{ip}:7000\"\nlisten_api = \"{ip}:8000\"\n\
         members = [{members}]\npower_cut_test_mode = true\nrequest_timeout_ms = 1000\n\
         {plaintext}\n[peers]\n{peers}[tls]\nca = {ca:?}\ncert = {cert:?}\nkey = {key:?}\n",
        ip = net.ip(id),
        data = dir.join(format!("node-{id}")),
        members = members.join(", "),
        plaintext = common::PLAINTEXT,
        ca = certs.join("ca.pem"),
        cert = certs.join(format!("node-{id}.pem")),
        key = certs.join(format!("node-{id}.key")),
    );
    let path = dir.join(format!("node-{id}.toml"));
    std::fs::write(&path, config).unwrap();
    path
}

fn start_node(dir: &Path, net: &Net, id: usize) -> NodeProc {
    let config = write_config(dir, net, id);
    let log = std::fs::File::create(dir.join(format!("node-{id}.log"))).unwrap();
    let child = net
        .command(Some(id), BIN)
        .args(["start", "--config"])
        .arg(&config)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    // Up when it answers `synod status` from where the clients are.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = net
            .command(None, BIN)
            .args(["status", "--api", &format!("http://{}:8000", net.ip(id))])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "node {id} did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    NodeProc { child: Some(child) }
}

#[derive(Deserialize)]
struct Record {
    ops: Vec<Op<KvCall, KvRet>>,
    writes: Vec<(u64, u64, u64, u64)>,
    clients: Vec<(u64, usize, usize)>,
    final_status: Vec<Option<(u64, String)>>,
    converged: bool,
}

/// Acknowledged writes per 250 ms bucket, as an SVG with the fault window shaded.
fn plot(path: &Path, ops: &[Op<KvCall, KvRet>], fault: (u64, u64), secs: f64) {
    let bucket = 250_000u64;
    let n = (secs * 4.0).ceil() as usize + 1;
    let mut counts = vec![0u32; n];
    for o in ops {
        if matches!(o.call, KvCall::Put { .. }) && matches!(o.outcome, Outcome::Ok(_)) {
            let b = (o.complete / bucket) as usize;
            if b < n {
                counts[b] += 1;
            }
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
                h - f64::from(*c) / max * (h - 10.0)
            )
        })
        .collect();
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\">\
         <rect x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"{h}\" fill=\"#fdd\"/>\
         <polyline fill=\"none\" stroke=\"#036\" stroke-width=\"2\" points=\"{}\"/>\
         <text x=\"4\" y=\"14\" font-size=\"12\">acknowledged writes per 250 ms (max {max}); \
         shaded: node 0 isolated</text></svg>",
        x(fault.0),
        x(fault.1) - x(fault.0),
        points.join(" ")
    );
    std::fs::write(path, svg).unwrap();
}

#[test]
fn an_isolated_node_refuses_writes_the_majority_goes_on_and_the_history_is_linearizable() {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os("SYNOD_FAULTS_KEEP").is_some() {
        println!("keeping {}", dir.path().display());
    }
    let net = Net::create(3);
    let ids: Vec<u16> = (0..3).collect();
    common::certs(dir.path(), &ids);
    let _nodes: Vec<NodeProc> = (0..3).map(|i| start_node(dir.path(), &net, i)).collect();

    let secs = 14.0;
    let (isolate_at, heal_at) = (4.0, 9.0);
    let out = dir.path().join("history.json");
    let urls: Vec<String> = (0..3)
        .map(|i| format!("http://{}:8000", net.ip(i)))
        .collect();
    let started = Instant::now();
    let mut workload = net
        .command(None, BIN)
        .args([
            "workload",
            "--clients",
            "6",
            "--keys",
            "4",
            "--timeout-ms",
            "1000",
        ])
        .args(["--secs", &secs.to_string(), "--nodes", &urls.join(",")])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs_f64(isolate_at));
    net.isolate(0);
    let isolated = started.elapsed();
    std::thread::sleep(Duration::from_secs_f64(heal_at - isolate_at));
    net.heal(0);
    let healed = started.elapsed();
    let status = workload.wait().unwrap();
    assert!(status.success(), "the workload failed");
    let record: Record = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();

    // Correctness: one state everywhere, linearizable per key, GSNs in real-time order.
    assert!(
        record.converged,
        "nodes did not converge: {:?}",
        record.final_status
    );
    synod_check::kv::check(&record.ops).unwrap();
    synod_check::gsn_order(&record.writes).unwrap();

    // Behaviour under the fault (times in µs on the workload's clock, which started a little
    // after `started`: margins of a second and more cover that and failure detection).
    let us = |d: Duration| d.as_micros() as u64;
    let (cut, heal) = (us(isolated), us(healed));
    let node_of = |id: u64| record.clients.iter().find(|c| c.0 == id).map(|c| c.2);
    let acked_puts = |node: usize, from: u64, to: u64| {
        record
            .ops
            .iter()
            .filter(|o| matches!(o.call, KvCall::Put { .. }))
            .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
            .filter(|o| node_of(o.id) == Some(node) && o.invoke >= from && o.complete <= to)
            .count()
    };
    let margin = 2_000_000;
    assert_eq!(
        acked_puts(0, cut + margin, heal),
        0,
        "the isolated node acknowledged a write while cut off"
    );
    assert!(
        acked_puts(1, cut, heal) + acked_puts(2, cut, heal) > 0,
        "the majority stopped writing"
    );
    assert!(
        acked_puts(0, heal + margin, u64::MAX) > 0,
        "the isolated node did not serve writes again after the heal"
    );

    // Report.
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
    let recovery_ms = record
        .ops
        .iter()
        .filter(|o| node_of(o.id) == Some(0) && o.invoke >= heal)
        .filter(|o| matches!(o.call, KvCall::Put { .. }) && matches!(o.outcome, Outcome::Ok(_)))
        .map(|o| o.complete.saturating_sub(heal))
        .min()
        .map_or(f64::NAN, |d| d as f64 / 1e3);
    let backend = match net.backend {
        Backend::Netns { .. } => "network namespaces",
        Backend::Loopback { .. } => "loopback (netns refused)",
    };
    let report = serde_json::json!({
        "scenario": "isolate one node of three (nftables), heal",
        "backend": backend,
        "operations": record.ops.len(),
        "ok": count(&|o| matches!(o, Outcome::Ok(_))),
        "failed": count(&|o| matches!(o, Outcome::Fail)),
        "unknown": count(&|o| matches!(o, Outcome::Unknown)),
        "acknowledged_writes": acks.len(),
        "longest_write_stall_ms": longest_stall_ms,
        "isolated_node_first_write_after_heal_ms": recovery_ms,
        "fault_window_s": [cut as f64 / 1e6, heal as f64 / 1e6],
        "checks": ["per-key linearizability", "GSN real-time order", "same state on every node",
                   "isolated node refused writes", "majority kept writing", "isolated node recovered"],
    });
    let reports = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../fault-reports");
    std::fs::create_dir_all(&reports).unwrap();
    let name = "partition-isolate-one";
    std::fs::write(
        reports.join(format!("{name}.json")),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    std::fs::write(
        reports.join(format!("{name}.md")),
        format!(
            "# {name}\n\nBackend: {backend}. Node 0 isolated from {:.1} s to {:.1} s.\n\n\
             | operations | ok | failed | unknown | acknowledged writes | longest write stall | \
             node 0's first write after heal |\n|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {} | {} | {longest_stall_ms:.1} ms | {recovery_ms:.1} ms |\n\n\
             Checks passed: per-key linearizability, GSN real-time order, same state on every \
             node, isolated node refused writes, majority kept writing, isolated node \
             recovered.\n\n![throughput]({name}.svg)\n",
            cut as f64 / 1e6,
            heal as f64 / 1e6,
            record.ops.len(),
            report["ok"],
            report["failed"],
            report["unknown"],
            acks.len(),
        ),
    )
    .unwrap();
    plot(
        &reports.join(format!("{name}.svg")),
        &record.ops,
        (cut, heal),
        secs,
    );
    std::fs::copy(&out, reports.join(format!("{name}.history.json"))).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    if std::env::var_os("SYNOD_FAULTS_KEEP").is_some() {
        drop(_nodes);
        let _ = dir.keep();
    }
}
