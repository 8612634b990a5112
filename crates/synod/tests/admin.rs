//! The real binary's admin surface: the API is mutual TLS unless plaintext is asked for,
//! groups are created and removed with `synod group`, and `synod member add` brings an empty
//! node (a new process with its own certificate) into a running cluster, which then votes.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, PLAINTEXT, certs, cluster, free_port, node, put, status};

/// Runs the CLI against `api` (plain HTTP) and returns its stdout, or panics with its stderr.
fn cli(api: SocketAddr, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--api")
        .arg(format!("http://{api}"))
        .args(args)
        .env_remove("SYNOD_API")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "synod {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_api_requires_a_client_certificate_from_the_cluster_ca() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path(), &[0]);
    let mut n0 = node(dir.path(), 0, &[0], free_port(), &[], "");
    n0.start();
    let api = n0.api;
    let certs_dir = dir.path().join("certs");
    let with = |cert: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["--api", &format!("https://{api}"), "kv", "put", "k", "v"])
            .arg("--ca")
            .arg(certs_dir.join("ca.pem"));
        if let Some(name) = cert {
            cmd.arg("--cert")
                .arg(certs_dir.join(format!("{name}.pem")))
                .arg("--key")
                .arg(certs_dir.join(format!("{name}.key")));
        }
        cmd.env_remove("SYNOD_CERT").env_remove("SYNOD_KEY");
        cmd.output().unwrap()
    };
    let ok = with(Some("client-admin"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "true");
    // No client certificate: refused by the CLI before it even connects...
    assert!(!with(None).status.success());
    // ...and by the server when a client connects without one (plain HTTP here, which the
    // TLS listener cannot even parse): nothing is served in the clear.
    let plain = ureq::get(&format!("http://{api}/v1/kv/k")).call();
    assert!(plain.is_err(), "plaintext must not be served: {plain:?}");
    // A certificate from another CA is refused in the handshake.
    let other = tempfile::tempdir().unwrap();
    certs(other.path(), &[0]);
    let mut cmd = Command::new(BIN);
    let foreign = cmd
        .args(["--api", &format!("https://{api}"), "kv", "get", "k"])
        .arg("--ca")
        .arg(certs_dir.join("ca.pem"))
        .arg("--cert")
        .arg(other.path().join("certs/client-admin.pem"))
        .arg("--key")
        .arg(other.path().join("certs/client-admin.key"))
        .output()
        .unwrap();
    assert!(!foreign.status.success(), "a foreign client certificate");
}

#[test]
fn groups_and_members_are_managed_through_the_cli_and_an_empty_node_joins() {
    let dir = tempfile::tempdir().unwrap();
    let mut procs = cluster(dir.path(), 3);
    for p in &mut procs {
        p.start();
    }
    let apis: Vec<SocketAddr> = procs.iter().map(|p| p.api).collect();

    // A group on nodes 0 and 1, created through node 2.
    let created: serde_json::Value = serde_json::from_str(&cli(
        apis[2],
        &["group", "create", "orders", "--members", "0,1"],
    ))
    .unwrap();
    assert_eq!(created["id"], 1);
    let r = common::agent()
        .put(&format!("http://{}/v1/groups/orders/kv/o1", apis[1]))
        .send("book")
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_until("node 0 serves the group", || {
        common::agent()
            .get(&format!("http://{}/v1/groups/orders/kv/o1?raw", apis[0]))
            .call()
            .is_ok_and(|mut r| r.body_mut().read_to_string().unwrap_or_default() == "book")
    });
    let mut r = common::agent()
        .get(&format!("http://{}/v1/groups/orders/kv/o1", apis[2]))
        .call()
        .unwrap();
    assert_eq!(r.status(), 404, "node 2 does not host the group");
    assert!(
        r.body_mut()
            .read_to_string()
            .unwrap()
            .contains("not hosted")
    );
    let list: serde_json::Value = serde_json::from_str(&cli(apis[0], &["group", "list"])).unwrap();
    let names: Vec<&str> = list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "orders"]);

    // An empty node 3: its own certificate from the same CA, `join = true`.
    for i in 0..50 {
        assert!(put(apis[i % 3], &format!("k{i}"), "v"));
    }
    certs(dir.path(), &[3]);
    let peer3 = free_port();
    let peers: Vec<(u16, SocketAddr)> = (0..3u16).map(|i| (i, peer_of(dir.path(), i))).collect();
    let mut n3 = node(
        dir.path(),
        3,
        &[0, 1, 2],
        peer3,
        &peers,
        &format!("{PLAINTEXT}\njoin = true"),
    );
    n3.start();
    let added: serde_json::Value = serde_json::from_str(&cli(
        apis[0],
        &["member", "add", "--id", "3", "--addr", &peer3.to_string()],
    ))
    .unwrap();
    assert!(added["effective_gsn"].as_u64().is_some(), "{added}");
    wait_until("node 3 has caught up", || {
        let (a, b) = (status(apis[0]), status(n3.api));
        a.is_some() && a == b
    });
    // With 4 members a quorum is 3: with node 0 stopped, a write needs node 3's vote.
    procs[0].kill9();
    assert!(put(n3.api, "through-node-3", "yes"));
    // Remove node 0 while writes continue.
    let removed = cli(apis[1], &["member", "remove", "--id", "0"]);
    assert!(removed.contains("effective_gsn"), "{removed}");
    for i in 0..10 {
        assert!(put(
            [apis[1], apis[2], n3.api][i % 3],
            &format!("after-{i}"),
            "v"
        ));
    }
    let group: serde_json::Value =
        serde_json::from_str(&cli(n3.api, &["group", "show", "default"])).unwrap();
    assert_eq!(group["members"], serde_json::json!([1, 2, 3]));
    // Removing a group drops it on its hosts.
    cli(apis[2], &["group", "rm", "orders"]);
    wait_until("node 1 drops the group", || {
        common::agent()
            .get(&format!("http://{}/v1/groups/orders/kv/o1?stale", apis[1]))
            .call()
            .is_ok_and(|r| r.status() == 404)
    });
}

/// Node `id`'s peer address, read back from its `node.toml`.
fn peer_of(dir: &Path, id: u16) -> SocketAddr {
    let text = std::fs::read_to_string(dir.join(format!("node-{id}.toml"))).unwrap();
    let line = text.lines().find(|l| l.starts_with("listen_peer")).unwrap();
    line.split('"').nth(1).unwrap().parse().unwrap()
}
