//! Identities and roles on three real `synod` processes serving the API over mutual TLS: each
//! client is the common name of its certificate from the cluster CA, and each ledger channel
//! and notary lists who may read, write and administer it. Requests without the role are
//! refused with 403 naming the identity and the role; administrators change the lists at run
//! time and every node enforces the change.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{BIN, Proc, free_port, node};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use synod_ledger::{Transaction, TxBody};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

/// An HTTPS client presenting one identity's certificate.
struct Client {
    agent: ureq::Agent,
}

/// An answer: status and body (JSON when it parses).
struct Answer {
    status: u16,
    body: Value,
}

impl Client {
    fn new(certs: &Path, name: &str) -> Client {
        let read = |file: &str| std::fs::read(certs.join(file)).unwrap();
        let ca = Certificate::from_pem(&read("ca.pem")).unwrap().to_owned();
        let cert = Certificate::from_pem(&read(&format!("{name}.pem")))
            .unwrap()
            .to_owned();
        let key = PrivateKey::from_pem(&read(&format!("{name}.key")))
            .unwrap()
            .to_owned();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
            .client_cert(Some(ClientCert::new_with_certs(&[cert], key)))
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .tls_config(tls)
            .build()
            .into();
        Client { agent }
    }

    fn call(&self, method: &str, api: SocketAddr, path: &str, body: Option<Value>) -> Answer {
        let url = format!("https://{api}{path}");
        let answer = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            ("PUT", Some(b)) => self
                .agent
                .put(&url)
                .header("content-type", "application/json")
                .send(b.to_string()),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(b.to_string()),
            (m, b) => panic!("{m} with {b:?}"),
        };
        Self::answer(answer)
    }

    fn submit(&self, api: SocketAddr, channel: &str, tx: &Transaction) -> Answer {
        let answer = self
            .agent
            .post(&format!("https://{api}/v1/channels/{channel}/transactions"))
            .header("content-type", "application/octet-stream")
            .send(&tx.encode()[..]);
        Self::answer(answer)
    }

    fn answer(answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        match answer {
            Ok(mut r) => {
                let text = r.body_mut().read_to_string().unwrap_or_default();
                Answer {
                    status: r.status().as_u16(),
                    body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
                }
            }
            Err(e) => Answer {
                status: 0,
                body: Value::String(e.to_string()),
            },
        }
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tx(signer: &SigningKey, id: &str, key: &str) -> Transaction {
    Transaction::sign(
        TxBody {
            id: id.into(),
            creator: signer.verifying_key().to_bytes(),
            reads: vec![],
            ranges: vec![],
            writes: vec![(key.into(), Some(Bytes::from_static(b"v")))],
        },
        signer,
    )
}

/// Certificates for nodes 0-2 and clients admin, alice, bob and eve, plus `nameless.pem`, a
/// certificate from the same CA whose subject has no common name.
fn certs(dir: &Path) -> PathBuf {
    let out = dir.join("certs");
    let status = Command::new(BIN)
        .args(["certs", "--out"])
        .arg(&out)
        .args(["--nodes", "0,1,2", "--clients", "admin,alice,bob,eve"])
        .status()
        .unwrap();
    assert!(status.success());
    let ca = synod_transport::certs::Pem {
        cert: std::fs::read_to_string(out.join("ca.pem")).unwrap(),
        key: std::fs::read_to_string(out.join("ca.key")).unwrap(),
    };
    let nameless = synod_transport::certs::issue(&ca, "", vec![]).unwrap();
    std::fs::write(out.join("nameless.pem"), nameless.cert).unwrap();
    std::fs::write(out.join("nameless.key"), nameless.key).unwrap();
    out
}

/// Runs the `synod` CLI against `api` as identity `name`.
fn cli(certs: &Path, api: &str, name: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["--api", api, "--ca"])
        .arg(certs.join("ca.pem"))
        .arg("--cert")
        .arg(certs.join(format!("{name}.pem")))
        .arg("--key")
        .arg(certs.join(format!("{name}.key")))
        .args(args)
        .output()
        .unwrap()
}

/// The answer to a caller who holds no role in a group: 404, as if it did not exist.
fn unseen(answer: &Answer) {
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert!(answer.body["error"].is_string(), "{}", answer.body);
}

fn forbidden(answer: &Answer, identity: &str, role: &str) {
    assert_eq!(answer.status, 403, "{}", answer.body);
    let why = answer.body["error"].as_str().unwrap_or_default();
    assert!(
        why.contains(identity) && why.contains(role),
        "the refusal names {identity} and {role}: {why}"
    );
}

#[test]
fn channels_and_notaries_admit_only_the_identities_their_lists_name() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let ids = [0u16, 1, 2];
    let peers: Vec<(u16, SocketAddr)> = ids.iter().map(|i| (*i, free_port())).collect();
    // The API is served over mutual TLS (no `insecure_plaintext_api`); admin and alice may
    // administer the cluster.
    let admins = r#"cluster_admins = ["client-admin", "client-alice"]"#;
    let mut nodes: Vec<Proc> = ids
        .iter()
        .map(|id| node(dir.path(), *id, &ids, peers[*id as usize].1, &peers, admins))
        .collect();
    for n in &mut nodes {
        n.start();
    }
    let api: Vec<SocketAddr> = nodes.iter().map(|n| n.api).collect();
    let [admin, alice, bob, eve] = ["client-admin", "client-alice", "client-bob", "client-eve"]
        .map(|n| Client::new(&certs, n));

    // Each caller is the common name of its certificate; one with none is refused.
    let me = alice.call("GET", api[1], "/v1/whoami", None);
    assert_eq!(me.body["identity"], "client-alice", "{}", me.body);
    let nameless = Client::new(&certs, "nameless").call("GET", api[0], "/v1/whoami", None);
    assert_eq!(nameless.status, 401, "{}", nameless.body);

    // The administrator creates a channel: alice writes, bob reads.
    let create = json!({
        "name": "trade", "members": [0, 1, 2], "max_message_count": 1,
        "access": { "writers": ["client-alice"], "readers": ["client-bob"] },
    });
    let mut created = None;
    wait_until("the channel is created", || {
        let a = admin.call("POST", api[0], "/v1/channels", Some(create.clone()));
        let ok = a.status == 201;
        created = Some(a);
        ok
    });
    let created = created.unwrap();
    assert_eq!(
        created.body["access"],
        json!({ "admins": ["client-admin"], "writers": ["client-alice"], "readers": ["client-bob"] })
    );

    let signer = SigningKey::from_bytes(&[9; 32]);
    wait_until("alice's transaction is ordered", || {
        alice
            .submit(api[1], "trade", &tx(&signer, "t1", "k"))
            .status
            == 202
    });
    forbidden(
        &bob.submit(api[1], "trade", &tx(&signer, "t2", "k")),
        "client-bob",
        "write",
    );
    // Eve holds no role in "trade": she is told what she would be told of a channel that
    // does not exist, so she learns nothing of what exists.
    let hidden = eve.call("GET", api[2], "/v1/channels/trade", None);
    let missing = eve.call("GET", api[2], "/v1/channels/nosuch", None);
    assert_eq!(
        (hidden.status, missing.status),
        (404, 404),
        "{}",
        hidden.body
    );
    assert_eq!(
        hidden.body["error"].as_str().unwrap().replace("trade", "X"),
        missing.body["error"]
            .as_str()
            .unwrap()
            .replace("nosuch", "X"),
    );
    // A transaction with a bad signature is ordered (202) and judged in its block; its
    // submitter learns the outcome by the hash the 202 named, though it claims no id.
    let mut forged = tx(&signer, "t-forged", "k");
    forged
        .body
        .writes
        .push(("stolen".into(), Some(Bytes::from_static(b"x"))));
    let ordered = alice.submit(api[1], "trade", &forged);
    assert_eq!(ordered.status, 202, "{}", ordered.body);
    let hash = ordered.body["hash"].as_str().unwrap().to_string();
    wait_until("the forgery's outcome is found by its hash", || {
        let a = alice.call(
            "GET",
            api[1],
            &format!("/v1/channels/trade/hashes/{hash}"),
            None,
        );
        a.status == 200 && a.body["code_name"] == "BAD_CREATOR_SIGNATURE"
    });
    let by_id = alice.call(
        "GET",
        api[1],
        "/v1/channels/trade/transactions/t-forged",
        None,
    );
    assert_eq!(
        by_id.status, 404,
        "a forgery claimed its id: {}",
        by_id.body
    );
    // Reading is granted to readers and, as roles nest, to writers and administrators.
    for (who, node) in [(&bob, 2), (&alice, 0), (&admin, 1)] {
        wait_until("t1 is committed and readable", || {
            let a = who.call("GET", api[node], "/v1/channels/trade/transactions/t1", None);
            a.status == 200 && a.body["code_name"] == "VALID"
        });
    }
    // The CLI's audit reads as the identity it is given: a reader's passes, eve's is refused.
    let urls: Vec<String> = api.iter().map(|a| format!("https://{a}")).collect();
    let verify = |name: &str| {
        let nodes = urls.join(",");
        cli(
            &certs,
            &urls[0],
            name,
            &["ledger", "verify", "--channel", "trade", "--nodes", &nodes],
        )
    };
    let audited = verify("client-bob");
    assert!(
        audited.status.success(),
        "{}",
        String::from_utf8_lossy(&audited.stderr)
    );
    let refused = verify("client-eve");
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("404") && why.contains("client-eve"), "{why}");

    // Only the administrator changes the lists: bob now writes, anyone reads, alice is out.
    let change = json!({ "writers": ["client-bob"], "readers": ["*"] });
    forbidden(
        &alice.call(
            "PUT",
            api[0],
            "/v1/channels/trade/access",
            Some(change.clone()),
        ),
        "client-alice",
        "administer",
    );
    let changed = admin.call("PUT", api[0], "/v1/channels/trade/access", Some(change));
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["access"]["readers"], json!(["*"]));
    // Every node enforces the change once it has applied it.
    for node in &api {
        wait_until("the revocation reaches every node", || {
            alice.submit(*node, "trade", &tx(&signer, "t3", "k")).status == 403
        });
        wait_until("the grants reach every node", || {
            eve.call("GET", *node, "/v1/channels/trade", None).status == 200
        });
    }
    assert_eq!(
        bob.submit(api[2], "trade", &tx(&signer, "t4", "k")).status,
        202
    );

    // Administration is the administrator's: removing the channel or changing its members,
    // through either route. Its group is not a key-value store for anyone.
    forbidden(
        &eve.call("DELETE", api[1], "/v1/channels/trade", None),
        "client-eve",
        "administer",
    );
    forbidden(
        &bob.call("DELETE", api[1], "/v1/groups/trade", None),
        "client-bob",
        "administer",
    );
    forbidden(
        &bob.call(
            "POST",
            api[1],
            "/v1/groups/trade/members",
            Some(json!({ "id": 2 })),
        ),
        "client-bob",
        "administer",
    );
    forbidden(
        &bob.call("DELETE", api[1], "/v1/groups/trade/members/2", None),
        "client-bob",
        "administer",
    );
    let kv = admin.call("PUT", api[0], "/v1/groups/trade/kv/x", Some(json!("v")));
    assert_eq!(kv.status, 404, "{}", kv.body);

    // Every error answer is the documented JSON error, the extractors' refusals included:
    // a GSN past int64, a path that does not parse, a method not allowed, a body over its
    // limit.
    for (method, path, body, status) in [
        (
            "PUT",
            "/v1/kv/k?cas=9223372036854775808",
            Some(json!("v")),
            400,
        ),
        ("PUT", "/v1/kv/k?cas=-1", Some(json!("v")), 400),
        ("GET", "/v1/channels/trade/roots/x", None, 400),
        ("DELETE", "/v1/whoami", None, 405),
        ("PUT", "/v1/kv/big", Some(json!("x".repeat(520 << 10))), 413),
    ] {
        let answer = admin.call(method, api[0], path, body);
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
        assert!(
            answer.body["error"].is_string(),
            "{method} {path}: {}",
            answer.body
        );
    }
    // A listing comes in pages, continued after the key X-Synod-Next names.
    for k in ["page/a", "page/b", "page/c"] {
        assert_eq!(
            admin
                .call("PUT", api[0], &format!("/v1/kv/{k}"), Some(json!("v")))
                .status,
            200
        );
    }
    let list = |after: &str| {
        let mut r = admin
            .agent
            .get(&format!(
                "https://{}/v1/kv/page/?recurse&limit=2{after}",
                api[0]
            ))
            .call()
            .unwrap();
        let next = r
            .headers()
            .get("x-synod-next")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        (body.as_array().unwrap().len(), next)
    };
    assert_eq!(list(""), (2, Some("page/b".to_string())));
    assert_eq!(list("&after=page/b"), (1, None));
    // And /v1/whoami carries the GSN it reflects, as every answer does.
    let whoami = admin
        .agent
        .get(&format!("https://{}/v1/whoami", api[0]))
        .call()
        .unwrap();
    assert!(whoami.headers().get("x-synod-gsn").is_some());

    // The cluster is its administrators': bob may create nothing, eve may not point a node
    // at another address (which would cut it off) nor change the default group's members.
    let group = json!({ "name": "bobs", "members": [0, 1, 2] });
    let refused = bob.call("POST", api[0], "/v1/groups", Some(group));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body["error"].as_str().unwrap().contains("cluster"));
    let channel = json!({ "name": "bobs", "members": [0, 1, 2] });
    assert_eq!(
        bob.call("POST", api[0], "/v1/channels", Some(channel))
            .status,
        403
    );
    let hijack = json!({ "id": 1, "addr": "203.0.113.9:1" });
    let refused = eve.call(
        "POST",
        api[0],
        "/v1/groups/default/members",
        Some(hijack.clone()),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        eve.call("DELETE", api[0], "/v1/groups/default/members/1", None)
            .status,
        403
    );
    // Nor may a channel's administrator (bob, of "bobs") who does not administer the
    // cluster, through the channel.
    let bobs =
        json!({ "name": "bobs", "members": [0, 1, 2], "access": { "admins": ["client-bob"] } });
    assert_eq!(
        admin
            .call("POST", api[0], "/v1/channels", Some(bobs))
            .status,
        201
    );
    let refused = bob.call("POST", api[0], "/v1/groups/bobs/members", Some(hijack));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body["error"].as_str().unwrap().contains("cluster"));

    // A channel created without a list (here through the CLI) belongs to its creator alone.
    let out = cli(
        &certs,
        &urls[2],
        "client-alice",
        &["channel", "create", "alices", "--members", "0,1,2"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["access"]["admins"], json!(["client-alice"]));
    let out = cli(&certs, &urls[2], "client-alice", &["whoami"]);
    let me: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(me["identity"], "client-alice");
    unseen(&bob.call("GET", api[2], "/v1/channels/alices", None));
    let listed = bob.call("GET", api[0], "/v1/channels", None);
    let names: Vec<&str> = listed.body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // Listings show bob what he may read: not alice's private channel, here or among all
    // groups, nor its details.
    assert_eq!(names, ["bobs", "trade"], "{}", listed.body);
    let all = bob.call("GET", api[0], "/v1/groups", None);
    assert!(!all.body.to_string().contains("alices"), "{}", all.body);
    assert!(all.body.to_string().contains("\"default\""), "{}", all.body);
    unseen(&bob.call("GET", api[0], "/v1/groups/alices", None));
    let status = bob.call("GET", api[2], "/v1/status", None);
    assert_eq!(status.status, 200);
    assert!(
        !status.body.to_string().contains("alices"),
        "{}",
        status.body
    );
    let status = alice.call("GET", api[2], "/v1/status", None);
    assert!(
        status.body.to_string().contains("alices"),
        "{}",
        status.body
    );

    // A notary: alice may notarise, bob may not even read its key.
    let notary = json!({
        "name": "notary", "members": [0, 1, 2], "access": { "writers": ["client-alice"] },
    });
    let n = admin.call("POST", api[1], "/v1/notaries", Some(notary));
    assert_eq!(n.status, 201, "{}", n.body);
    let request = json!({ "tx_id": "spend-1", "inputs": [{ "tx": "issue", "index": 0 }] });
    unseen(&bob.call(
        "POST",
        api[1],
        "/v1/notaries/notary/notarise",
        Some(request.clone()),
    ));
    unseen(&bob.call("GET", api[1], "/v1/notaries/notary/key", None));
    wait_until("alice's notarisation is signed", || {
        let a = alice.call(
            "POST",
            api[1],
            "/v1/notaries/notary/notarise",
            Some(request.clone()),
        );
        a.status == 200 && a.body["signature"].is_string()
    });
    assert_eq!(
        admin
            .call("GET", api[1], "/v1/notaries/notary/key", None)
            .status,
        200
    );

    // Joining a channel (Fabric's word) is adding a member: node 2 joins a channel of nodes
    // 0 and 1, catches up, and holds the same chain. Only its administrator may.
    let pair = json!({ "name": "pair", "members": [0, 1], "max_message_count": 1 });
    assert_eq!(
        admin
            .call("POST", api[0], "/v1/channels", Some(pair))
            .status,
        201
    );
    wait_until("a transaction in the pair channel", || {
        admin.submit(api[0], "pair", &tx(&signer, "p1", "k")).status == 202
    });
    let refused = cli(
        &certs,
        &urls[0],
        "client-bob",
        &["channel", "join", "pair", "--id", "2"],
    );
    assert!(!refused.status.success());
    let joined = cli(
        &certs,
        &urls[0],
        "client-admin",
        &["channel", "join", "pair", "--id", "2"],
    );
    assert!(
        joined.status.success(),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );
    let tip = |node: SocketAddr| {
        let a = admin.call("GET", node, "/v1/channels/pair", None);
        (a.status == 200).then(|| (a.body["height"].clone(), a.body["tip"].clone()))
    };
    wait_until("node 2 holds the pair channel's chain", || {
        tip(api[2]).is_some() && tip(api[2]) == tip(api[0])
    });
    // Joining again conflicts with the configuration (409), it is not worth a retry (503).
    let again = cli(
        &certs,
        &urls[0],
        "client-admin",
        &["channel", "join", "pair", "--id", "2"],
    );
    let why = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && why.contains("409"), "{why}");

    // The administrator removes the channel; it is gone everywhere.
    let removed = admin.call("DELETE", api[0], "/v1/channels/trade", None);
    assert_eq!(removed.status, 200, "{}", removed.body);
    wait_until("the channel is gone from every node", || {
        (0..3).all(|n| admin.call("GET", api[n], "/v1/channels/trade", None).status == 404)
    });
}

#[test]
fn key_value_groups_admit_only_the_identities_their_lists_name() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let ids = [0u16, 1, 2];
    let peers: Vec<(u16, SocketAddr)> = ids.iter().map(|i| (*i, free_port())).collect();
    let admins = r#"cluster_admins = ["client-admin"]"#;
    let mut nodes: Vec<Proc> = ids
        .iter()
        .map(|id| node(dir.path(), *id, &ids, peers[*id as usize].1, &peers, admins))
        .collect();
    for n in &mut nodes {
        n.start();
    }
    let api: Vec<SocketAddr> = nodes.iter().map(|n| n.api).collect();
    let [admin, alice, bob, eve] = ["client-admin", "client-alice", "client-bob", "client-eve"]
        .map(|n| Client::new(&certs, n));
    let put =
        |c: &Client, node: usize, path: &str| c.call("PUT", api[node], path, Some(json!("v")));

    // A key-value group made by the administrator for alice (writer) and bob (reader).
    let create = json!({
        "name": "team", "members": [0, 1, 2],
        "access": { "writers": ["client-alice"], "readers": ["client-bob"] },
    });
    wait_until("the group is created", || {
        admin
            .call("POST", api[0], "/v1/groups", Some(create.clone()))
            .status
            == 201
    });
    wait_until("alice writes on node 1", || {
        put(&alice, 1, "/v1/groups/team/kv/plan").status == 200
    });
    let read = bob.call("GET", api[2], "/v1/groups/team/kv/plan?raw", None);
    assert_eq!(read.status, 200, "{}", read.body);
    forbidden(
        &put(&bob, 2, "/v1/groups/team/kv/plan"),
        "client-bob",
        "write",
    );
    forbidden(
        &bob.call("DELETE", api[0], "/v1/groups/team/kv/plan", None),
        "client-bob",
        "write",
    );
    // Eve holds no role: the group is as absent to her as one that does not exist, on every
    // route and node, listings included.
    for (n, node) in api.iter().enumerate() {
        unseen(&eve.call("GET", *node, "/v1/groups/team/kv/plan", None));
        unseen(&eve.call("GET", *node, "/v1/groups/team/kv/?recurse", None));
        unseen(&put(&eve, n, "/v1/groups/team/kv/plan"));
    }
    let absent = eve.call("GET", api[0], "/v1/groups/nothing/kv/plan", None);
    assert_eq!(absent.status, 404);
    assert!(
        !eve.call("GET", api[0], "/v1/groups", None)
            .body
            .to_string()
            .contains("team")
    );
    // Only its administrators change the list; the change holds on every node.
    forbidden(
        &bob.call(
            "PUT",
            api[0],
            "/v1/groups/team/access",
            Some(json!({ "writers": ["client-bob"] })),
        ),
        "client-bob",
        "admin",
    );
    let granted = admin.call(
        "PUT",
        api[0],
        "/v1/groups/team/access",
        Some(json!({ "writers": ["client-alice", "client-bob"] })),
    );
    assert_eq!(granted.status, 200, "{}", granted.body);
    wait_until("bob writes on node 2", || {
        put(&bob, 2, "/v1/groups/team/kv/plan").status == 200
    });

    // The default group is open to every identity of the CA until a cluster administrator
    // gives it a list; then it is enforced like any other's, and only they change it.
    assert_eq!(put(&eve, 0, "/v1/kv/open").status, 200);
    let list = json!({
        "admins": ["client-admin", "client-alice"], "writers": ["client-alice"], "readers": ["*"],
    });
    forbidden(
        &bob.call(
            "PUT",
            api[0],
            "/v1/groups/default/access",
            Some(list.clone()),
        ),
        "client-bob",
        "administer the cluster",
    );
    let set = admin.call("PUT", api[1], "/v1/groups/default/access", Some(list));
    assert_eq!(set.status, 200, "{}", set.body);
    wait_until(
        "eve may no longer write the default group on node 2",
        || put(&eve, 2, "/v1/kv/open").status == 403,
    );
    forbidden(&put(&eve, 0, "/v1/kv/open"), "client-eve", "write");
    assert_eq!(eve.call("GET", api[0], "/v1/kv/open?raw", None).status, 200);
    assert_eq!(put(&alice, 0, "/v1/kv/open").status, 200);
    // Its list covers its keys only: its members stay the cluster administrators' to change,
    // whoever administers its keys.
    assert_eq!(
        alice
            .call("DELETE", api[0], "/v1/groups/default/members/2", None)
            .status,
        403
    );
}
