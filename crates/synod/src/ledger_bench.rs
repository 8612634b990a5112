//! `synod ledger-bench`: transactions per second ordered, validated and committed by a ledger
//! channel, or notarisations per second by a notary, on a running cluster (plain-HTTP API),
//! with latency percentiles. Clients are spread over the nodes; transactions are signed before
//! the clock starts (the clients share the machine with the nodes), each on its own key.
//! `scripts/bench-ledger.sh` runs it against `synod dev`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use synod_ledger::{Transaction, TxBody};

/// What to measure.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct LedgerBenchArgs {
    /// The nodes' API URLs (plain HTTP), comma-separated; client `i` talks to node `i mod n`.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    /// `tx` (a ledger channel) or `notary`.
    #[arg(long, default_value = "tx")]
    mode: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// How long to submit, seconds.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Inputs per notarisation.
    #[arg(long, default_value_t = 1)]
    inputs: u32,
    /// Transactions signed in advance (the most that can be submitted).
    #[arg(long, default_value_t = 100_000)]
    max_txs: usize,
    /// The channel's batch timeout, milliseconds.
    #[arg(long, default_value_t = 200)]
    batch_timeout_ms: u64,
    /// Submit to this channel, creating it if it does not exist (by default a new channel per
    /// run), so that runs can grow one channel (`scripts/bench-ledger-memory.sh`).
    #[arg(long)]
    channel: Option<String>,
    /// The first transaction id's number (ids are `t<n>`): runs on one channel must not
    /// reuse ids.
    #[arg(long, default_value_t = 0)]
    first_id: usize,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

fn create(
    agent: &ureq::Agent,
    base: &str,
    path: &str,
    body: &serde_json::Value,
    may_exist: bool,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = agent
            .post(&format!("{base}{path}"))
            .header("content-type", "application/json")
            .send(body.to_string())
            .map(|r| r.status().as_u16());
        if matches!(status, Ok(200 | 201)) || (may_exist && matches!(status, Ok(409))) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("could not create {path}: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs the benchmark; returns a one-paragraph report.
pub(crate) fn run(args: &LedgerBenchArgs) -> Result<String> {
    let bases: Vec<String> = args
        .nodes
        .iter()
        .map(|n| n.trim_end_matches('/').to_string())
        .collect();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = args
        .channel
        .clone()
        .unwrap_or_else(|| format!("bench-{}-{stamp}", args.mode));
    let may_exist = args.channel.is_some();
    let members: Vec<u16> = (0..bases.len() as u16).collect();
    let a = agent();
    let notary = match args.mode.as_str() {
        "tx" => {
            let body = serde_json::json!({
                "name": name, "members": members, "batch_timeout_ms": args.batch_timeout_ms
            });
            create(&a, &bases[0], "/v1/channels", &body, may_exist)?;
            false
        }
        "notary" => {
            let body = serde_json::json!({ "name": name, "members": members });
            create(&a, &bases[0], "/v1/notaries", &body, may_exist)?;
            true
        }
        other => bail!("--mode is tx or notary, not {other:?}"),
    };
    // Signed in advance: the clients must not take the nodes' CPU while the clock runs.
    let signer = SigningKey::from_bytes(&[42; 32]);
    let bodies: Vec<Vec<u8>> = (args.first_id..args.first_id + args.max_txs)
        .map(|i| {
            if notary {
                let inputs: Vec<serde_json::Value> = (0..args.inputs)
                    .map(|k| serde_json::json!({ "tx": "issue", "index": i as u32 * args.inputs + k }))
                    .collect();
                serde_json::json!({ "tx_id": format!("t{i}"), "inputs": inputs })
                    .to_string()
                    .into_bytes()
            } else {
                let body = TxBody {
                    id: format!("t{i}"),
                    creator: signer.verifying_key().to_bytes(),
                    reads: vec![],
                    ranges: vec![],
                    writes: vec![(format!("k{i}"), Some(Bytes::from_static(&[7; 64])))],
                };
                Transaction::sign(body, &signer).encode().to_vec()
            }
        })
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.secs);
    let threads: Vec<_> = (0..args.clients)
        .map(|c| {
            let base = bases[c % bases.len()].clone();
            let (bodies, next, name) = (bodies.clone(), next.clone(), name.clone());
            let first_id = args.first_id;
            std::thread::spawn(move || {
                let agent = agent();
                let mut latencies = Vec::new();
                let mut last = None;
                let path = if notary {
                    format!("{base}/v1/notaries/{name}/notarise")
                } else {
                    format!("{base}/v1/channels/{name}/transactions")
                };
                let content = if notary {
                    "application/json"
                } else {
                    "application/octet-stream"
                };
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(n) else { break };
                    let i = first_id + n;
                    let t = Instant::now();
                    let ok = agent
                        .post(&path)
                        .header("content-type", content)
                        .send(&body[..])
                        .is_ok_and(|r| r.status() == 200 || r.status() == 202);
                    if ok {
                        latencies.push(t.elapsed());
                        last = Some(i);
                    }
                }
                (latencies, last, base)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut lasts = Vec::new();
    for t in threads {
        let (l, last, base) = t.join().map_err(|_| anyhow::anyhow!("a client panicked"))?;
        latencies.extend(l);
        lasts.extend(last.map(|i| (i, base)));
    }
    let submitted = latencies.len();
    // Committed: every client's last transaction judged (the batch timeout cuts the rest).
    let committed_at = if notary {
        started.elapsed()
    } else {
        let wait = Instant::now() + Duration::from_secs(30);
        for (i, base) in &lasts {
            loop {
                let url = format!("{base}/v1/channels/{name}/transactions/t{i}");
                if a.get(&url).call().is_ok_and(|r| r.status() == 200) {
                    break;
                }
                if Instant::now() > wait {
                    bail!("transaction t{i} was not committed within 30 s");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        started.elapsed()
    };
    latencies.sort_unstable();
    let what = if notary {
        format!("notarisations ({} input(s) each)", args.inputs)
    } else {
        "transactions".to_string()
    };
    let latency = if notary {
        "notarisation latency"
    } else {
        "ordering latency (submit to 202)"
    };
    let report = serde_json::json!({
        "mode": args.mode, "clients": args.clients, "nodes": bases.len(), "inputs": args.inputs,
        "done": submitted, "seconds": committed_at.as_secs_f64(),
        "per_second": submitted as f64 / committed_at.as_secs_f64(),
        "p50_ms": percentile(&latencies, 0.50), "p99_ms": percentile(&latencies, 0.99),
        "p999_ms": percentile(&latencies, 0.999),
    });
    let summary = format!(
        "{submitted} {what} by {} clients over {} nodes in {:.2} s (until the last was {}): \
         {:.0}/s; {latency} p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms",
        args.clients,
        bases.len(),
        committed_at.as_secs_f64(),
        if notary { "answered" } else { "committed" },
        submitted as f64 / committed_at.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
    );
    Ok(format!("{summary}\n{report}"))
}
