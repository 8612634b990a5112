//! A fault scenario's report: a JSON summary, a markdown table and an SVG of acknowledged
//! writes over time with the fault window shaded, in `target/fault-reports/`.

use std::path::Path;

use synod_check::Outcome;
use synod_check::kv::{KvCall, KvRet};

use super::netns::{Backend, Net, Run, Scenario};

pub(crate) fn report(s: &Scenario, run: &Run, net: &Net, history: &Path) {
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
