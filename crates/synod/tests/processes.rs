//! The real binary: three `synod start` processes on loopback, killed with SIGKILL in turn
//! (power-cut test mode: whatever was not fsynced is lost) under a write load. No
//! acknowledged write may be lost, and all nodes must end with the same content.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{agent, cluster, get_stale, put, status};

#[test]
fn kill_9_each_node_in_turn_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut procs = cluster(dir.path(), 3);
    for p in &mut procs {
        p.start();
    }
    let apis: Vec<SocketAddr> = procs.iter().map(|p| p.api).collect();
    let mut acked = Vec::new();
    let mut next = 0u32;
    let mut write_round = |live: &[usize], acked: &mut Vec<String>, count: usize| {
        let mut ok = 0;
        let started = Instant::now();
        while ok < count {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "writes stalled"
            );
            let key = format!("key-{next}");
            next += 1;
            let api = apis[live[next as usize % live.len()]];
            if put(api, &key, &format!("value-{key}")) {
                acked.push(key);
                ok += 1;
            }
        }
    };
    write_round(&[0, 1, 2], &mut acked, 30);
    for (victim, proc) in procs.iter_mut().enumerate() {
        proc.kill9();
        let live: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
        write_round(&live, &mut acked, 30);
        proc.start();
        write_round(&[0, 1, 2], &mut acked, 10);
    }
    // Converge: same applied GSN and content hash everywhere.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s: Vec<_> = apis.iter().map(|a| status(*a)).collect();
        if s.iter().all(Option::is_some) && s.windows(2).all(|w| w[0] == w[1]) {
            break;
        }
        assert!(Instant::now() < deadline, "nodes did not converge: {s:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for api in &apis {
        for key in &acked {
            assert_eq!(
                get_stale(*api, key).as_deref(),
                Some(format!("value-{key}").as_str()),
                "{key} lost on {api}"
            );
        }
    }
}

#[test]
fn a_node_without_a_quorum_refuses_writes_with_503_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut procs = cluster(dir.path(), 3);
    for p in &mut procs {
        p.start();
    }
    let api = procs[0].api;
    assert!(put(api, "before", "1"));
    procs[1].kill9();
    procs[2].kill9();
    let started = Instant::now();
    let r = agent()
        .put(&format!("http://{api}/v1/kv/during"))
        .send("2")
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(r.status(), 503, "a minority refuses writes");
    assert!(elapsed < Duration::from_secs(3), "promptly: {elapsed:?}");
    // Stale reads are still served.
    assert_eq!(get_stale(api, "before").as_deref(), Some("1"));
    procs[1].start();
    procs[2].start();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !put(api, "after", "3") {
        assert!(
            Instant::now() < deadline,
            "writes did not resume after the heal"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_http_api_follows_its_conventions_and_rejects_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut procs = cluster(dir.path(), 3);
    for p in &mut procs {
        p.start();
    }
    let api = procs[0].api;
    let base = format!("http://{api}");
    assert!(put(api, "dir/a", "1") && put(api, "dir/b", "2") && put(api, "other", "3"));
    // Every answer says which GSN it reflects.
    let r = agent().get(&format!("{base}/v1/kv/dir/a")).call().unwrap();
    assert!(r.headers().get("x-synod-gsn").is_some());
    // ?recurse lists a prefix in key order, Consul-style.
    let mut r = agent()
        .get(&format!("{base}/v1/kv/dir/?recurse"))
        .call()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let keys: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["dir/a", "dir/b"]);
    // Compare-and-set: a stale index fails without writing.
    let modify = v[0]["ModifyIndex"].as_u64().unwrap();
    let mut r = agent()
        .put(&format!("{base}/v1/kv/dir/a?cas={}", modify + 1000))
        .send("x")
        .unwrap();
    assert_eq!(r.body_mut().read_to_string().unwrap(), "false");
    let mut r = agent()
        .put(&format!("{base}/v1/kv/dir/a?cas={modify}"))
        .send("x")
        .unwrap();
    assert_eq!(r.body_mut().read_to_string().unwrap(), "true");
    // The same under /v1/groups/{group}; an unknown group is a 404 with a JSON error.
    assert_eq!(get_stale(api, "dir/a").as_deref(), Some("x"));
    let mut r = agent()
        .get(&format!("{base}/v1/groups/default/kv/dir/a?raw"))
        .call()
        .unwrap();
    assert_eq!(r.body_mut().read_to_string().unwrap(), "x");
    let mut r = agent()
        .get(&format!("{base}/v1/groups/nine/kv/dir/a"))
        .call()
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.body_mut()
            .read_to_string()
            .unwrap()
            .contains(r#"\"nine\" is not a key-value group"#)
    );
    // Missing key, oversized key and oversized value are clear 4xx errors.
    assert_eq!(
        agent()
            .get(&format!("{base}/v1/kv/missing"))
            .call()
            .unwrap()
            .status(),
        404
    );
    let long_key = "k".repeat(600);
    let mut r = agent()
        .put(&format!("{base}/v1/kv/{long_key}"))
        .send("v")
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.body_mut()
            .read_to_string()
            .unwrap()
            .contains("keys must be")
    );
    let big = vec![b'v'; 600 * 1024];
    assert_eq!(
        agent()
            .put(&format!("{base}/v1/kv/big"))
            .send(&big[..])
            .unwrap()
            .status(),
        413
    );
    // A retried write with the same Idempotency-Key applies once: a create-if-absent (cas=0)
    // succeeds twice with the same GSN instead of failing the second time.
    let once = || {
        let mut r = agent()
            .put(&format!("{base}/v1/kv/created?cas=0"))
            .header("Idempotency-Key", "request-42")
            .send("v")
            .unwrap();
        let gsn = r
            .headers()
            .get("x-synod-gsn")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        (r.body_mut().read_to_string().unwrap(), gsn)
    };
    let first = once();
    assert_eq!(first.0, "true");
    assert_eq!(once(), first);
    let mut r = agent()
        .put(&format!("{base}/v1/kv/created?cas=0"))
        .send("v")
        .unwrap();
    assert_eq!(
        r.body_mut().read_to_string().unwrap(),
        "false",
        "without the key it is a new write"
    );
    // The OpenAPI document and Swagger UI over it.
    let mut r = agent().get(&format!("{base}/openapi.json")).call().unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert!(doc["paths"]["/v1/groups"]["post"].is_object());
    let mut r = agent().get(&format!("{base}/docs/")).call().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.body_mut().read_to_string().unwrap().contains("swagger"));
    // Metrics in Prometheus text format.
    let mut r = agent().get(&format!("{base}/metrics")).call().unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    assert!(
        text.contains("synod_applied_gsn{group=\"0\"}")
            && text.contains("synod_fsync_seconds_bucket")
    );
}
