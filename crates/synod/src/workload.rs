//! `synod workload`: a recorded key-value workload for fault tests. Client threads, each bound
//! to one node, put unique values and read keys (linearizable reads) until the time is up;
//! every operation is recorded with monotonic invoke and completion times and its outcome
//! (ok, failed for certain, or unknown). Then the workload waits for the nodes to agree,
//! reads every key from every node, and writes it all as JSON for the `synod-check` checkers.
//!
//! An operation counts as failed only when the node answered 4xx (it was refused before being
//! proposed); anything else without a success (503, a timeout, a refused connection) is
//! unknown: it may have been applied.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use synod_check::kv::{KvCall, KvRet};
use synod_check::{Op, Outcome};

/// How to run the workload.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct WorkloadArgs {
    /// The nodes' API URLs (plain HTTP), comma-separated; client `i` talks to node `i mod n`.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 6)]
    clients: usize,
    /// Keys written and read (few keys: many operations per key to check).
    #[arg(long, default_value_t = 4)]
    keys: usize,
    /// How long to run, seconds.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Per-request timeout, milliseconds (then the outcome is unknown).
    #[arg(long, default_value_t = 1_000)]
    timeout_ms: u64,
    /// Where to write the JSON record.
    #[arg(long)]
    out: PathBuf,
}

/// What the workload records.
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Every operation, in no particular order (times in µs since the start).
    pub(crate) ops: Vec<Op<KvCall, KvRet>>,
    /// Acknowledged writes as `(op id, invoke, complete, gsn)`.
    pub(crate) writes: Vec<(u64, u64, u64, u64)>,
    /// The client each operation came from and the node it talked to, by op id.
    pub(crate) clients: Vec<(u64, usize, usize)>,
    /// Each node's `(applied GSN, content hash)` at the end, or `None` if it did not answer.
    pub(crate) final_status: Vec<Option<(u64, String)>>,
    /// Whether every node reached the same applied GSN and content hash before the deadline.
    pub(crate) converged: bool,
    /// Each node's `/metrics` text at the end (empty if it did not answer), for diagnosis.
    pub(crate) metrics: Vec<String>,
}

struct Shared {
    start: Instant,
    next_id: Mutex<u64>,
    record: Mutex<Record>,
}

impl Shared {
    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn id(&self) -> u64 {
        let mut n = self
            .next_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *n += 1;
        *n
    }

    fn push(&self, op: Op<KvCall, KvRet>, client: usize, node: usize, gsn: Option<u64>) {
        let mut r = self
            .record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(gsn) = gsn {
            r.writes.push((op.id, op.invoke, op.complete, gsn));
        }
        r.clients.push((op.id, client, node));
        r.ops.push(op);
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// A put: the outcome and, if acknowledged, its GSN.
fn put(agent: &ureq::Agent, base: &str, key: &str, value: &str) -> (Outcome<KvRet>, Option<u64>) {
    match agent.put(&format!("{base}/v1/kv/{key}")).send(value) {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let gsn = r
                .headers()
                .get("x-synod-gsn")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let body = r.body_mut().read_to_string().unwrap_or_default();
            match status {
                200 if body == "true" => (Outcome::Ok(KvRet::Done), gsn),
                400..=499 => (Outcome::Fail, None),
                _ => (Outcome::Unknown, None),
            }
        }
        Err(_) => (Outcome::Unknown, None),
    }
}

/// A linearizable read (or, with `stale`, a local one).
fn get(agent: &ureq::Agent, base: &str, key: &str, stale: bool) -> Outcome<KvRet> {
    let q = if stale { "?raw&stale" } else { "?raw" };
    match agent.get(&format!("{base}/v1/kv/{key}{q}")).call() {
        Ok(mut r) => match r.status().as_u16() {
            200 => Outcome::Ok(KvRet::Value(Some(
                r.body_mut().read_to_string().unwrap_or_default(),
            ))),
            404 => Outcome::Ok(KvRet::Value(None)),
            _ => Outcome::Unknown,
        },
        Err(_) => Outcome::Unknown,
    }
}

fn status(agent: &ureq::Agent, base: &str) -> Option<(u64, String)> {
    let mut r = agent.get(&format!("{base}/v1/status")).call().ok()?;
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().ok()?).ok()?;
    let g = v["groups"].as_array()?.iter().find(|g| g["id"] == 0)?;
    Some((
        g["applied_gsn"].as_u64()?,
        g["content_hash"].as_str()?.to_string(),
    ))
}

fn client(shared: &Shared, args: &WorkloadArgs, me: usize, deadline: Instant) {
    let node = me % args.nodes.len();
    let base = args.nodes[node].trim_end_matches('/');
    let agent = agent(Duration::from_millis(args.timeout_ms));
    let mut seq = 0u64;
    // A small deterministic generator per client: the workload need not be random, only mixed.
    let mut x = (me as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    while Instant::now() < deadline {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("k{}", x % args.keys as u64);
        let id = shared.id();
        let invoke = shared.now();
        let (call, (outcome, gsn)) = if x.is_multiple_of(2) {
            seq += 1;
            let value = format!("c{me}-{seq}");
            let outcome = put(&agent, base, &key, &value);
            (KvCall::Put { key, value }, outcome)
        } else {
            let outcome = get(&agent, base, &key, false);
            (KvCall::Get { key }, (outcome, None))
        };
        let failed = !matches!(outcome, Outcome::Ok(_));
        let op = Op {
            id,
            call,
            outcome,
            invoke,
            complete: shared.now(),
        };
        shared.push(op, me, node, gsn);
        if failed {
            // A node cut off answers at once; do not spin on it.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs the workload and writes the record.
pub(crate) fn run(args: &WorkloadArgs) -> Result<()> {
    let shared = Arc::new(Shared {
        start: Instant::now(),
        next_id: Mutex::new(0),
        record: Mutex::new(Record::default()),
    });
    let deadline = Instant::now() + Duration::from_secs_f64(args.secs);
    let threads: Vec<_> = (0..args.clients)
        .map(|me| {
            let shared = shared.clone();
            let args = args.clone();
            std::thread::spawn(move || client(&shared, &args, me, deadline))
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    // Let the nodes agree, then read every key from every node (linearizable reads, recorded
    // like the others) and record each node's final state.
    let agent = agent(Duration::from_secs(2));
    let bases: Vec<&str> = args.nodes.iter().map(|n| n.trim_end_matches('/')).collect();
    let settle = Instant::now() + Duration::from_secs(30);
    let mut last: Vec<Option<(u64, String)>> = Vec::new();
    let mut converged = false;
    while Instant::now() < settle {
        last = bases.iter().map(|b| status(&agent, b)).collect();
        let first = last.first().cloned().flatten();
        if first.is_some() && last.iter().all(|s| *s == first) {
            converged = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for (node, base) in bases.iter().enumerate() {
        for k in 0..args.keys {
            let key = format!("k{k}");
            let id = shared.id();
            let invoke = shared.now();
            let outcome = get(&agent, base, &key, false);
            let op = Op {
                id,
                call: KvCall::Get { key },
                outcome,
                invoke,
                complete: shared.now(),
            };
            shared.push(op, usize::MAX, node, None);
        }
    }
    let mut record = std::mem::take(
        &mut *shared
            .record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    record.metrics = bases
        .iter()
        .map(|b| {
            agent
                .get(&format!("{b}/metrics"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .unwrap_or_default()
        })
        .collect();
    record.final_status = last;
    record.converged = converged;
    let json = serde_json::to_string(&record).context("encoding the record")?;
    std::fs::write(&args.out, json).with_context(|| format!("writing {}", args.out.display()))?;
    let ok = record
        .ops
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .count();
    println!(
        "{} operations, {ok} ok, converged: {converged}; record in {}",
        record.ops.len(),
        args.out.display()
    );
    Ok(())
}
