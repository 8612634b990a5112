//! A ledger channel hosted by three nodes: clients on different nodes race to spend the same
//! coins, exactly one spend of each wins on every node, every node holds the same chain (which
//! passes an audit from genesis), and a restarted node comes back to the same chain. An idle
//! channel's last block is cut by the batch timeout (a tick agreed through the log).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{admin, free_ports};
use ed25519_dalek::SigningKey;
use synod_ledger::{
    BatchConfig, Block, ChannelApp, Envelope, LedgerView, NotaryApp, Transaction, TxBody,
    ValidationCode, Version,
};
use synod_node::access::Access;
use synod_node::catalog::{AdminCommand, AdminOutput};
use synod_node::{GroupId, Node, ReplicaId, RequestError};
use synod_transport::certs;

const COINS: u8 = 6;

fn spend(signer: &SigningKey, id: String, coin: &str, seen: Version, to: &str) -> Bytes {
    let body = TxBody {
        id,
        creator: signer.verifying_key().to_bytes(),
        reads: vec![(coin.to_string(), Some(seen))],
        ranges: vec![],
        writes: vec![(coin.to_string(), Some(Bytes::from(to.to_string())))],
    };
    Envelope::Tx(Transaction::sign(body, signer).encode()).encode()
}

/// The channel as `node` has committed it so far.
async fn ledger(node: &Node, group: GroupId) -> LedgerView {
    node.app_of::<ChannelApp>(group)
        .await
        .unwrap()
        .0
        .view()
        .unwrap()
}

async fn submit(node: &Node, group: GroupId, envelope: Bytes) {
    for _ in 0..200 {
        match node.submit_to::<ChannelApp>(group, envelope.clone()).await {
            // Applied, though the node (restarted, or catching up) learned it from a
            // peer's checkpoint and cannot say with what result.
            Ok(_) | Err(RequestError::OutputUnknown) => return,
            Err(RequestError::Refused(_) | RequestError::NoGroup(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("submit failed: {e}"),
        }
    }
    panic!("not accepted after 10 s");
}

/// Waits (up to 20 s) until every node has committed `ids` and holds the same blocks; returns
/// them.
async fn settled(nodes: &[&Node], group: GroupId, ids: &[String]) -> Vec<Block> {
    for _ in 0..800 {
        let mut chains = Vec::new();
        for n in nodes {
            let ids = ids.to_vec();
            let chain = n
                .app_of::<ChannelApp>(group)
                .await
                .ok()
                .and_then(|(app, _)| {
                    let c = app.view().unwrap();
                    ids.iter()
                        .all(|id| !c.tx_statuses(id).unwrap().is_empty())
                        .then(|| c.blocks(0, u64::MAX).unwrap())
                });
            chains.push(chain);
        }
        if chains.iter().all(Option::is_some) && chains.windows(2).all(|w| w[0] == w[1]) {
            return chains[0].clone().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the nodes did not settle on one chain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_double_spends_and_a_restart_leave_one_identical_chain_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| common::config(&ca, n, &addrs, dir.path());
    let n0 = Node::start(cfg(0)).await.unwrap();
    let mut n1 = Node::start(cfg(1)).await.unwrap();
    let n2 = Node::start(cfg(2)).await.unwrap();
    let batch = BatchConfig {
        max_message_count: 8,
        batch_timeout_ns: 100_000_000,
        ..BatchConfig::default()
    };
    let create = AdminCommand::CreateGroup {
        name: "payments".into(),
        members: [0, 1, 2].map(ReplicaId).to_vec(),
        kind: synod_ledger::CHANNEL_KIND.into(),
        params: synod_ledger::hosted::channel_params(&batch),
        access: Some(Access::open()),
    };
    let AdminOutput::Group(info) = admin(&n0, create).await else {
        panic!("not created")
    };
    let ch = info.id;

    // Mint the coins (fewer than a block: the batch timeout cuts them).
    let mint = SigningKey::from_bytes(&[7; 32]);
    let mut minted = Vec::new();
    for c in 0..COINS {
        let body = TxBody {
            id: format!("mint{c}"),
            creator: mint.verifying_key().to_bytes(),
            reads: vec![],
            ranges: vec![],
            writes: vec![(format!("coin{c}"), Some(Bytes::from("minted")))],
        };
        submit(
            &n0,
            ch,
            Envelope::Tx(Transaction::sign(body, &mint).encode()).encode(),
        )
        .await;
        minted.push(format!("mint{c}"));
    }
    settled(&[&n0, &n1, &n2], ch, &minted).await;
    let c = ledger(&n0, ch).await;
    let versions: Vec<Version> = (0..COINS)
        .map(|k| c.get(&format!("coin{k}")).unwrap().unwrap().1)
        .collect();

    // Three clients, one per node, each tries to spend every coin to itself, at once.
    let mut ids = minted.clone();
    tokio::join!(
        client(&n0, ch, 0, &versions),
        client(&n1, ch, 1, &versions),
        client(&n2, ch, 2, &versions),
    );
    for client in 0..3 {
        for c in 0..COINS {
            ids.push(format!("spend-{client}-{c}"));
        }
    }
    let chain = settled(&[&n0, &n1, &n2], ch, &ids).await;

    // Exactly one spend of each coin is valid, the others are MVCC conflicts, on every node
    // (the chains are equal, so checking one checks all).
    for c in 0..COINS {
        let mut codes = Vec::new();
        for client in 0..3 {
            let id = format!("spend-{client}-{c}");
            codes.push(ledger(&n1, ch).await.tx_statuses(&id).unwrap()[0].1.code);
        }
        assert_eq!(
            codes
                .iter()
                .filter(|c| **c == ValidationCode::Valid)
                .count(),
            1,
            "coin {c}: {codes:?}"
        );
        assert!(
            codes
                .iter()
                .all(|c| matches!(c, ValidationCode::Valid | ValidationCode::MvccReadConflict))
        );
    }
    let report = synod_ledger::audit(&chain, batch).unwrap();
    assert_eq!(report.blocks, chain.len() as u64);

    // A restarted node recovers the same chain from its own log.
    n1.stop().await;
    n1 = Node::start(cfg(1)).await.unwrap();
    let again = settled(&[&n0, &n1, &n2], ch, &ids).await;
    assert_eq!(again, chain);
}

/// One client: spends every coin to itself through `node`.
async fn client(node: &Node, ch: GroupId, client: u8, versions: &[Version]) {
    let signer = SigningKey::from_bytes(&[client + 1; 32]);
    for c in 0..COINS {
        let coin = format!("coin{c}");
        let id = format!("spend-{client}-{c}");
        let e = spend(
            &signer,
            id,
            &coin,
            versions[c as usize],
            &format!("client{client}"),
        );
        submit(node, ch, e).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notary_on_three_nodes_lets_each_state_be_consumed_once() {
    use synod_ledger::{NotariseRequest, NotaryOutcome, StateRef};
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let cfg = |n| common::config(&ca, n, &addrs, dir.path());
    let nodes = [
        Node::start(cfg(0)).await.unwrap(),
        Node::start(cfg(1)).await.unwrap(),
        Node::start(cfg(2)).await.unwrap(),
    ];
    let create = AdminCommand::CreateGroup {
        name: "notary".into(),
        members: [0, 1, 2].map(ReplicaId).to_vec(),
        kind: synod_ledger::NOTARY_KIND.into(),
        params: Bytes::new(),
        access: Some(Access::open()),
    };
    let AdminOutput::Group(info) = admin(&nodes[0], create).await else {
        panic!("not created")
    };
    let state = |i: u32| StateRef {
        tx: "issue".into(),
        index: i,
    };
    // Three clients, one per node, each wants to consume two of four states: every pair
    // overlaps another client's.
    let request = |client: u32| NotariseRequest {
        tx_id: format!("t{client}"),
        inputs: vec![state(client), state((client + 1) % 4)],
        references: vec![],
        time_window: None,
    };
    let ask = |client: usize| {
        let node = &nodes[client];
        let req = request(client as u32);
        async move {
            for _ in 0..200 {
                match node
                    .submit_to::<NotaryApp>(info.id, NotaryApp::encode(&req))
                    .await
                {
                    Ok(answer) => return answer,
                    Err(RequestError::Refused(_) | RequestError::NoGroup(_)) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("notarise failed: {e}"),
                }
            }
            panic!("not answered after 10 s");
        }
    };
    let (a, b, c) = tokio::join!(ask(0), ask(1), ask(2));
    let answers = [a, b, c];
    let mut consumed = std::collections::BTreeMap::new();
    for (client, (_, outcome)) in answers.iter().enumerate() {
        match outcome {
            NotaryOutcome::Notarised => {
                for s in request(client as u32).inputs {
                    assert!(
                        consumed.insert(s, client).is_none(),
                        "a state consumed twice"
                    );
                }
            }
            NotaryOutcome::Conflict(conflicts) => {
                assert!(!conflicts.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(!consumed.is_empty(), "somebody won");
    // Every conflict named the real consumer, and a repeat of a success succeeds again.
    for (client, (_, outcome)) in answers.iter().enumerate() {
        if let NotaryOutcome::Conflict(conflicts) = outcome {
            for (s, by) in conflicts {
                assert_eq!(Some(by), consumed.get(s).map(|c| format!("t{c}")).as_ref());
            }
        } else {
            let (_, again) = ask(client).await;
            assert_eq!(again, NotaryOutcome::Notarised);
        }
    }
}

/// A channel keeps its ledger on disk: a node down while the others compact their logs past
/// it is sent a checkpoint streamed from a peer's database (not a state held in memory), and
/// installs it; a node restarted afterwards resumes from its own database, at or past its last
/// checkpoint, and all end with the same chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_member_installs_a_channel_checkpoint_streamed_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::generate_ca("test").unwrap();
    let addrs = free_ports(3);
    let small = |n| synod_node::NodeConfig {
        snapshot_every: 20,
        log_retention: 10,
        ..common::config(&ca, n, &addrs, dir.path())
    };
    let n0 = Node::start(small(0)).await.unwrap();
    let mut n1 = Node::start(small(1)).await.unwrap();
    let n2 = Node::start(small(2)).await.unwrap();
    let batch = BatchConfig {
        max_message_count: 4,
        batch_timeout_ns: 50_000_000,
        ..BatchConfig::default()
    };
    let create = AdminCommand::CreateGroup {
        name: "archive".into(),
        members: [0, 1, 2].map(ReplicaId).to_vec(),
        kind: synod_ledger::CHANNEL_KIND.into(),
        params: synod_ledger::hosted::channel_params(&batch),
        access: Some(Access::open()),
    };
    let AdminOutput::Group(info) = admin(&n0, create).await else {
        panic!("not created")
    };
    let ch = info.id;
    let signer = SigningKey::from_bytes(&[4; 32]);
    let record = |i: u32| {
        let body = TxBody {
            id: format!("r{i}"),
            creator: signer.verifying_key().to_bytes(),
            reads: vec![],
            ranges: vec![],
            writes: vec![(
                format!("doc{}", i % 17),
                Some(Bytes::from(format!("rev {i}"))),
            )],
        };
        Envelope::Tx(Transaction::sign(body, &signer).encode()).encode()
    };
    submit(&n0, ch, record(0)).await;
    settled(&[&n0, &n1, &n2], ch, &["r0".to_string()]).await;

    // Node 2 is down while the others write and compact their logs past it. It usually
    // needs a checkpoint when it comes back; when a peer's compaction lags (it runs after each
    // checkpoint) it may catch up from that peer's log instead, so the round is repeated until
    // it installed one.
    let mut n2 = n2;
    let mut ids = vec!["r0".to_string()];
    let series = format!("synod_snapshots_installed_total{{group=\"{}\"}} ", ch.0);
    // How many checkpoints node 2 installed (it may need more than one to catch up).
    let installed = |metrics: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut chain = Vec::new();
    for round in 0..10u32 {
        n2.stop().await;
        for i in 1..160 {
            let i = round * 1_000 + i;
            let node = if i % 2 == 0 { &n0 } else { &n1 };
            submit(node, ch, record(i)).await;
            ids.push(format!("r{i}"));
        }
        n2 = Node::start(small(2)).await.unwrap();
        chain = settled(&[&n0, &n1, &n2], ch, &ids).await;
        if installed(&n2.metrics().await) > 0 {
            break;
        }
    }
    let metrics = n2.metrics().await;
    assert!(
        installed(&metrics) > 0,
        "node 2 must have installed a checkpoint, not replayed the log:\n{metrics}"
    );
    let digest = |v: LedgerView| v.content_digest().unwrap();
    assert_eq!(digest(ledger(&n2, ch).await), digest(ledger(&n0, ch).await));
    // The checkpoint file a peer wrote for the transfer is gone once superseded or received.
    assert!(
        !dir.path()
            .join("node2/transfer")
            .join(format!("{}.in", ch.0))
            .exists(),
        "the received stream was left behind"
    );

    // A restart resumes from the database: the channel is there before anything replays.
    n1.stop().await;
    n1 = Node::start(small(1)).await.unwrap();
    let app = loop {
        if let Ok((app, _)) = n1.app_of::<ChannelApp>(ch).await {
            break app;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        app.view().unwrap().height() > 10,
        "the restarted node opened its channel from its database"
    );
    submit(&n1, ch, record(99_999)).await;
    ids.push("r99999".into());
    let after = settled(&[&n0, &n1, &n2], ch, &ids).await;
    assert_eq!(after[..chain.len()], chain[..]);
}
