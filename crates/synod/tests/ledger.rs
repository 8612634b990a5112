//! A ledger channel on three real `synod` processes, through the HTTP API: clients on
//! different nodes race to spend the same coins and exactly one spend of each wins on every
//! node; a node killed with SIGKILL (power-cut storage) and restarted comes back to the same
//! chain; `synod ledger verify` audits every node's chain and finds them identical.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{BIN, agent, cluster};
use ed25519_dalek::SigningKey;
use synod_ledger::{Transaction, TxBody, Version};

const COINS: u8 = 4;

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post_tx(api: SocketAddr, tx: &Transaction) -> u16 {
    agent()
        .post(&format!("http://{api}/v1/channels/payments/transactions"))
        .header("content-type", "application/octet-stream")
        .send(&tx.encode()[..])
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn get_json(api: SocketAddr, path: &str) -> Option<serde_json::Value> {
    let mut r = agent().get(&format!("http://{api}{path}")).call().ok()?;
    (r.status() == 200)
        .then(|| serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap())
}

fn code(api: SocketAddr, id: &str) -> Option<String> {
    get_json(api, &format!("/v1/channels/payments/transactions/{id}"))
        .map(|v| v["code_name"].as_str().unwrap().to_string())
}

fn tx(
    signer: &SigningKey,
    id: &str,
    reads: Vec<(String, Option<Version>)>,
    key: &str,
    value: &str,
) -> Transaction {
    Transaction::sign(
        TxBody {
            id: id.into(),
            creator: signer.verifying_key().to_bytes(),
            reads,
            ranges: vec![],
            writes: vec![(key.into(), Some(Bytes::from(value.to_string())))],
        },
        signer,
    )
}

#[test]
fn racing_spends_one_winner_each_and_identical_audited_chains_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, apis) = cluster_with_payments(dir.path(), 8, 200);
    // Bad input gets a clear error: a body that is not a transaction, a group that is not a
    // channel.
    let bad = agent()
        .post(&format!(
            "http://{}/v1/channels/payments/transactions",
            apis[1]
        ))
        .send(&b"not a transaction"[..])
        .unwrap();
    assert_eq!(bad.status(), 400);
    let not_channel = agent()
        .get(&format!("http://{}/v1/channels/default", apis[1]))
        .call()
        .unwrap();
    assert_eq!(not_channel.status(), 404);

    // Mint the coins through node 0; the batch timeout cuts their block.
    let mint = SigningKey::from_bytes(&[7; 32]);
    for c in 0..COINS {
        let t = tx(
            &mint,
            &format!("mint{c}"),
            vec![],
            &format!("coin{c}"),
            "minted",
        );
        wait_until("node 0 orders a mint", || post_tx(apis[0], &t) == 202);
    }
    wait_until("the mints are committed everywhere", || {
        apis.iter()
            .all(|a| (0..COINS).all(|c| code(*a, &format!("mint{c}")).as_deref() == Some("VALID")))
    });
    // The chain tree as seen now, to check later that nothing below it was rewritten.
    let seen = get_json(apis[2], "/v1/channels/payments").unwrap();
    let seen_height = seen["height"].as_u64().unwrap();
    let seen_root = get_json(
        apis[2],
        &format!("/v1/channels/payments/roots/{seen_height}"),
    )
    .unwrap()["root"]
        .as_str()
        .unwrap()
        .to_string();
    let versions: Vec<Version> = (0..COINS)
        .map(|c| {
            let v = get_json(apis[0], &format!("/v1/channels/payments/keys/coin{c}")).unwrap();
            Version {
                block: v["version"]["block"].as_u64().unwrap(),
                tx: v["version"]["tx"].as_u64().unwrap() as u32,
            }
        })
        .collect();

    // Three clients, one per node, race to spend every coin.
    std::thread::scope(|s| {
        for (client, api) in apis.iter().enumerate() {
            let versions = versions.clone();
            s.spawn(move || {
                let signer = SigningKey::from_bytes(&[client as u8 + 1; 32]);
                for c in 0..COINS {
                    let coin = format!("coin{c}");
                    let t = tx(
                        &signer,
                        &format!("spend-{client}-{c}"),
                        vec![(coin.clone(), Some(versions[c as usize]))],
                        &coin,
                        &format!("client {client}"),
                    );
                    wait_until("a spend is ordered", || post_tx(*api, &t) == 202);
                }
            });
        }
    });
    let spends: Vec<String> = (0..3)
        .flat_map(|client| (0..COINS).map(move |c| format!("spend-{client}-{c}")))
        .collect();
    wait_until("every spend is judged on every node", || {
        apis.iter()
            .all(|a| spends.iter().all(|id| code(*a, id).is_some()))
    });
    for api in &apis {
        for c in 0..COINS {
            let codes: Vec<String> = (0..3)
                .map(|client| code(*api, &format!("spend-{client}-{c}")).unwrap())
                .collect();
            assert_eq!(
                codes.iter().filter(|c| *c == "VALID").count(),
                1,
                "coin {c} on {api}: {codes:?}"
            );
            assert!(
                codes
                    .iter()
                    .all(|c| c == "VALID" || c == "MVCC_READ_CONFLICT"),
                "{codes:?}"
            );
        }
    }

    // Node 1 is killed (what it had not fsynced is lost) and restarted.
    nodes[1].kill9();
    nodes[1].start();
    wait_until("node 1 is back at the others' height", || {
        let heights: Vec<Option<u64>> = apis
            .iter()
            .map(|a| get_json(*a, "/v1/channels/payments").and_then(|v| v["height"].as_u64()))
            .collect();
        heights.iter().all(|h| h.is_some() && *h == heights[0])
    });
    let urls: Vec<String> = apis.iter().map(|a| format!("http://{a}")).collect();
    let out = Command::new(BIN)
        .args([
            "ledger",
            "verify",
            "--channel",
            "payments",
            "--nodes",
            &urls.join(","),
        ])
        .env_remove("SYNOD_API")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("all 3 nodes hold the same chain"), "{text}");

    // A winning spend's inclusion proof holds, and every node has the same chain root there.
    let winner = spends
        .iter()
        .find(|id| code(apis[0], id).as_deref() == Some("VALID"))
        .unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--api")
            .arg(&urls[0])
            .args(args)
            .env_remove("SYNOD_API")
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, text) = cli(&[
        "ledger",
        "prove",
        "--channel",
        "payments",
        "--tx",
        winner,
        "--nodes",
        &urls.join(","),
    ]);
    assert!(ok && text.contains("same root"), "{text}");
    // The chain now extends the one seen before the spends; a made-up root is caught.
    let height = seen_height.to_string();
    let (ok, text) = cli(&[
        "ledger",
        "consistency",
        "--channel",
        "payments",
        "--height",
        &height,
        "--root",
        &seen_root,
    ]);
    assert!(ok && text.contains("extends"), "{text}");
    let forged = format!(
        "{}{}",
        if seen_root.starts_with('0') { "1" } else { "0" },
        &seen_root[1..]
    );
    let (ok, text) = cli(&[
        "ledger",
        "consistency",
        "--channel",
        "payments",
        "--height",
        &height,
        "--root",
        &forged,
    ]);
    assert!(!ok, "a forged root passed: {text}");
}

/// Three started nodes (plain-HTTP API) and a channel "payments" on all of them, cutting
/// blocks at `max_message_count` transactions or after `batch_timeout_ms`.
fn cluster_with_payments(
    dir: &std::path::Path,
    max_message_count: usize,
    batch_timeout_ms: u64,
) -> (Vec<common::Proc>, Vec<SocketAddr>) {
    let mut nodes = cluster(dir, 3);
    for n in &mut nodes {
        n.start();
    }
    let apis: Vec<SocketAddr> = nodes.iter().map(|n| n.api).collect();
    let create = serde_json::json!({
        "name": "payments", "members": [0, 1, 2], "max_message_count": max_message_count,
        "batch_timeout_ms": batch_timeout_ms,
    });
    wait_until("the channel is created", || {
        matches!(post_json(apis[0], "/v1/channels", &create).0, 200 | 201)
    });
    (nodes, apis)
}

fn post_json(api: SocketAddr, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let mut r = agent()
        .post(&format!("http://{api}{path}"))
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

#[test]
fn a_notary_through_the_api_refuses_a_double_spend_and_signs_the_winner() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), 3);
    for n in &mut nodes {
        n.start();
    }
    let apis: Vec<SocketAddr> = nodes.iter().map(|n| n.api).collect();
    let create = serde_json::json!({ "name": "notary", "members": [0, 1, 2] });
    wait_until("the notary is created", || {
        matches!(post_json(apis[0], "/v1/notaries", &create).0, 200 | 201)
    });
    let spend = |tx: &str| {
        serde_json::json!({
            "tx_id": tx, "inputs": [{ "tx": "issue", "index": 0 }],
            "time_window": { "until_ms": 4_000_000_000_000u64 }
        })
    };
    let (first, a) = post_json(apis[1], "/v1/notaries/notary/notarise", &spend("alice"));
    let (second, b) = post_json(apis[2], "/v1/notaries/notary/notarise", &spend("bob"));
    assert_eq!((first, second), (200, 409), "{a} {b}");
    assert_eq!(b["conflicts"][0]["consumed_by"], "alice");
    // The winner's signature is node 1's, over the transaction id.
    let key_hex = get_json(apis[1], "/v1/notaries/notary/key").unwrap()["notary_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a["notary_key"], key_hex.as_str());
    let unhex = |s: &str| hex::decode(s).unwrap();
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(&unhex(&key_hex).try_into().unwrap()).unwrap();
    let sig =
        ed25519_dalek::Signature::from_slice(&unhex(a["signature"].as_str().unwrap())).unwrap();
    // The signature covers this notary and the request as judged, both in the answer.
    let notary: synod_ledger::notary::NotaryIdentity =
        serde_json::from_value(a["signed"]["notary"].clone()).unwrap();
    let signed: synod_ledger::NotariseRequest =
        serde_json::from_value(a["signed"]["request"].clone()).unwrap();
    assert_eq!(
        (notary.name.as_str(), signed.tx_id.as_str()),
        ("notary", "alice")
    );
    assert!(synod_ledger::notary::verify_notarisation(
        &key, &notary, &signed, &sig
    ));
    let mut other = signed.clone();
    other.inputs[0].index = 1;
    assert!(!synod_ledger::notary::verify_notarisation(
        &key, &notary, &other, &sig
    ));
    // The same request again is the same success, through any node; a window already
    // closed in agreed time is refused.
    assert_eq!(
        post_json(apis[0], "/v1/notaries/notary/notarise", &spend("alice")).0,
        200
    );
    let late = serde_json::json!({
        "tx_id": "carol", "inputs": [{ "tx": "issue", "index": 1 }],
        "time_window": { "until_ms": 1 }
    });
    assert_eq!(
        post_json(apis[0], "/v1/notaries/notary/notarise", &late).0,
        422
    );
    let bad = serde_json::json!({ "tx_id": "", "inputs": [] });
    assert_eq!(
        post_json(apis[0], "/v1/notaries/notary/notarise", &bad).0,
        400
    );
    // A state both consumed and referred to is refused with a reason, and consumes nothing
    // (found by fuzzing: such a request was notarised, and its own retry then conflicted).
    let both = serde_json::json!({
        "tx_id": "dave", "inputs": [{ "tx": "issue", "index": 2 }],
        "references": [{ "tx": "issue", "index": 2 }]
    });
    let (status, answer) = post_json(apis[0], "/v1/notaries/notary/notarise", &both);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("both an input and a reference"),
        "{answer}"
    );
    let only = serde_json::json!({ "tx_id": "erin", "inputs": [{ "tx": "issue", "index": 2 }] });
    assert_eq!(
        post_json(apis[0], "/v1/notaries/notary/notarise", &only).0,
        200
    );
}

#[test]
fn every_node_killed_in_turn_under_load_leaves_byte_identical_chains() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, apis) = cluster_with_payments(dir.path(), 16, 100);
    // Writers on every node, each transaction on its own key, until told to stop; a node that
    // is down refuses, and its writer moves on to the next transaction.
    let stop = Arc::new(AtomicBool::new(false));
    let ordered = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = apis
        .iter()
        .enumerate()
        .map(|(w, api)| {
            let (api, stop, ordered) = (*api, stop.clone(), ordered.clone());
            std::thread::spawn(move || {
                let signer = SigningKey::from_bytes(&[w as u8 + 10; 32]);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = tx(
                        &signer,
                        &format!("w{w}-{n}"),
                        vec![],
                        &format!("k{w}-{n}"),
                        "v",
                    );
                    if post_tx(api, &t) == 202 {
                        ordered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    n += 1;
                }
            })
        })
        .collect();
    for victim in &mut nodes {
        std::thread::sleep(Duration::from_millis(700));
        victim.kill9();
        std::thread::sleep(Duration::from_millis(500));
        victim.start();
    }
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(
        ordered.load(Ordering::Relaxed) > 50,
        "the writers got little through"
    );
    // Once the last batch is cut everywhere, all three chains are the same, byte for byte.
    let blocks = |api: SocketAddr, height: u64| -> Vec<Vec<u8>> {
        (0..height)
            .map(|n| {
                let mut r = agent()
                    .get(&format!("http://{api}/v1/channels/payments/blocks/{n}"))
                    .call()
                    .unwrap();
                r.body_mut().read_to_vec().unwrap()
            })
            .collect()
    };
    let mut height = 0;
    wait_until("the nodes settle at one height", || {
        let hs: Vec<Option<u64>> = apis
            .iter()
            .map(|a| get_json(*a, "/v1/channels/payments").and_then(|v| v["height"].as_u64()))
            .collect();
        let pending = apis
            .iter()
            .any(|a| get_json(*a, "/v1/channels/payments").is_none_or(|v| v["pending"] != false));
        height = hs[0].unwrap_or(0);
        !pending && hs.iter().all(|h| *h == hs[0])
    });
    let first = blocks(apis[0], height);
    for api in &apis[1..] {
        assert!(blocks(*api, height) == first, "{api} holds another chain");
    }
    let urls: Vec<String> = apis.iter().map(|a| format!("http://{a}")).collect();
    let out = Command::new(BIN)
        .args([
            "ledger",
            "verify",
            "--channel",
            "payments",
            "--nodes",
            &urls.join(","),
        ])
        .env_remove("SYNOD_API")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
