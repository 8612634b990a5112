//! Real values, encoded as each fuzz target reads its input (the seed corpus), and the helpers
//! the ledger targets share.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use redb::{Database, ReadableDatabase, TableDefinition};
use sha2::{Digest, Sha256};
use synod_core::config::ConfigHistory;
use synod_core::{
    Ballot, Batch, Config, ConfigChange, CoreState, DeliveredSet, Envelope, GroupId, Lsn, Message,
    Payload, PromiseEntry, Proposal, ProposalId, QuorumPolicy, Record, Rejoined, ReplicaId, Slot,
    Snapshot, Time, Value,
};
use synod_exec::{Hosted, Position};
use synod_kv::{KvApp, KvCommand, KvRequest};
use synod_ledger::{
    BatchConfig, Channel, ChannelApp, ChannelState, NotariseRequest, NotaryApp, StateRef,
    Transaction, TxBody, Version,
};
use synod_transport::frame::{self, Frame};

// ----- Shared by the ledger targets -----------------------------------------------------------

/// The signing key of the fuzzed transactions' creator.
#[must_use]
pub fn signer() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// A small channel's batch rules: blocks of a few transactions, so that few envelopes cut some.
#[must_use]
pub fn batch_config() -> BatchConfig {
    BatchConfig {
        max_message_count: 3,
        absolute_max_bytes: 64 * 1024,
        preferred_max_bytes: 4 * 1024,
        batch_timeout_ns: 2_000_000_000,
    }
}

/// A fresh channel in memory cutting by [`batch_config`].
#[must_use]
pub fn channel() -> Channel {
    Channel::genesis(batch_config(), Bytes::from_static(b"fuzz genesis"), 0)
}

const TABLES: [&str; 8] = [
    "meta", "blocks", "chain", "by_hash", "state", "history", "txs", "hashes",
];
const END: u8 = 0xff;

/// The records at the start of `records` in a channel checkpoint stream's format (a table tag,
/// then key and value, each after its length as 4 bytes little endian), up to the first that
/// is cut short or the end tag: `(table, key, value)` and the bytes they take.
#[must_use]
pub fn checkpoint_records(records: &[u8]) -> (Vec<(u8, &[u8], &[u8])>, usize) {
    fn part(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let (len, rest) = b.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let mut out = Vec::new();
    let mut rest = records;
    while out.len() < 256 {
        let Some((&tag, after_tag)) = rest.split_first() else {
            break;
        };
        if tag == END {
            break;
        }
        let Some((k, after_k)) = part(after_tag) else {
            break;
        };
        let Some((v, after_v)) = part(after_k) else {
            break;
        };
        out.push((tag, k, v));
        rest = after_v;
    }
    (out, records.len() - rest.len())
}

/// A whole checkpoint stream from the records at the start of `records`: them, the end tag,
/// their count and the SHA-256 of everything before it (what the sending peer appends).
#[must_use]
pub fn checkpoint_stream(records: &[u8]) -> Vec<u8> {
    let (parsed, used) = checkpoint_records(records);
    let mut stream = records[..used].to_vec();
    stream.push(END);
    stream.extend_from_slice(&(parsed.len() as u64).to_le_bytes());
    let digest: [u8; 32] = Sha256::digest(&stream).into();
    stream.extend_from_slice(&digest);
    stream
}

/// A database in memory holding what those records hold (records of an unknown table are
/// skipped), as the receiving node fills its staging database from the stream.
///
/// # Panics
/// If the database in memory fails.
#[must_use]
pub fn checkpoint_database(records: &[u8]) -> Database {
    let db = synod_ledger::store::memory_database();
    let txn = db.begin_write().expect("memory");
    {
        for (tag, k, v) in checkpoint_records(records).0 {
            let Some(name) = TABLES.get(usize::from(tag)) else {
                continue;
            };
            let def: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new(name);
            let mut table = txn.open_table(def).expect("memory");
            table.insert(k, v).expect("memory");
        }
        for name in TABLES {
            let def: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new(name);
            txn.open_table(def).expect("memory");
        }
    }
    txn.commit().expect("memory");
    let _ = db.begin_read();
    db
}

/// What a node does with a channel: deliver envelopes (a transaction, a tick), checkpoint, and
/// serve reads and proofs from a view. Errors are answers; only a panic is a failure.
pub fn use_channel(channel: &mut Channel) {
    let at = channel.tip_position();
    let mut time = channel.due_at().unwrap_or(0);
    for envelope in [
        synod_ledger::Envelope::Tx(transaction(1, "k1").encode()).encode(),
        Bytes::from_static(b"\x07garbage"),
        synod_ledger::Envelope::Tick.encode(),
    ] {
        time = time.saturating_add(3_000_000_000);
        if channel
            .deliver_checked(&envelope, time, at, &mut |_| None)
            .is_err()
        {
            return;
        }
    }
    let _ = channel.checkpoint(at);
    let Ok(view) = channel.view() else {
        return;
    };
    read_everything(&view);
}

/// Every read a node serves over a view, on what the view holds.
pub fn read_everything(view: &synod_ledger::LedgerView) {
    let height = view.height();
    let _ = view.tip();
    let _ = view.content_digest();
    let _ = view.chain_root(height);
    let _ = view.chain_root(height.saturating_add(1));
    let _ = view.prove_consistency(height / 2, height);
    let _ = view.prove_consistency(height, height / 2);
    let Ok(blocks) = view.blocks(0, height.min(16)) else {
        return;
    };
    for block in &blocks {
        let _ = view.block_by_hash(&block.header.hash());
        for tx in block.data.iter().take(8) {
            let _ = view.tx_by_hash(&synod_ledger::tx_hash(tx));
            let Ok(tx) = Transaction::decode(tx) else {
                continue;
            };
            let _ = view.tx_statuses(&tx.body.id);
            if let Ok(Some(status)) = view.tx_status(&tx.body.creator, &tx.body.id)
                && let Ok(Some(proof)) = view.prove_tx(status)
            {
                let _ = proof.verify();
            }
            for (key, _) in tx.body.writes.iter().take(4) {
                let _ = view.get(key);
                let _ = view.history(key, 8);
            }
        }
    }
}

/// Where a channel stands in the agreed order (the position its tip records).
pub trait TipPosition {
    /// The position.
    fn tip_position(&self) -> Position;
}

impl TipPosition for Channel {
    fn tip_position(&self) -> Position {
        self.durable().unwrap_or_default()
    }
}

/// A signed transaction by [`signer`] writing `key`.
#[must_use]
pub fn transaction(n: u64, key: &str) -> Transaction {
    let body = TxBody {
        id: format!("tx-{n}"),
        creator: signer().verifying_key().to_bytes(),
        reads: vec![(key.to_string(), None)],
        ranges: vec![synod_ledger::RangeRead {
            start: "a".into(),
            end: "b".into(),
            seen: vec![],
        }],
        writes: vec![
            (key.to_string(), Some(Bytes::from(format!("v{n}")))),
            (format!("{key}-gone"), None),
        ],
    };
    Transaction::sign(body, &signer())
}

/// A notarisation request.
#[must_use]
pub fn notarise_request() -> NotariseRequest {
    NotariseRequest {
        tx_id: "tx-1".into(),
        inputs: vec![
            StateRef {
                tx: "tx-0".into(),
                index: 0,
            },
            StateRef {
                tx: "tx-0".into(),
                index: 1,
            },
        ],
        references: vec![StateRef {
            tx: "ref".into(),
            index: 9,
        }],
        time_window: Some((Some(1), None)),
    }
}

// ----- The seed corpus --------------------------------------------------------------------------

fn ballot(counter: u32, proposer: u16) -> Ballot {
    Ballot {
        counter,
        random: 77,
        proposer: ReplicaId(proposer),
    }
}

fn batch(proposer: u16, lsn: u64) -> Value {
    Value::Batch(Arc::new(Batch {
        time: Time(1_700_000_000_000_000_000),
        proposals: vec![
            Proposal {
                id: ProposalId {
                    proposer: ReplicaId(proposer),
                    lsn: Lsn(lsn),
                },
                payload: Payload::Command(KvApp::encode(&kv_request())),
            },
            Proposal {
                id: ProposalId {
                    proposer: ReplicaId(proposer),
                    lsn: Lsn(lsn + 1),
                },
                payload: Payload::Config(ConfigChange::AddMember(ReplicaId(4))),
            },
        ],
    }))
}

fn kv_request() -> KvRequest {
    KvRequest {
        token: Some("token-1".into()),
        cmd: KvCommand::Put {
            key: "config/a".into(),
            value: Bytes::from_static(b"hello"),
            cas: Some(0),
        },
    }
}

/// Protocol messages of every kind, from replica 2 to replica 1.
#[must_use]
pub fn messages() -> Vec<Envelope> {
    let b = ballot(3, 2);
    let m = |message| Envelope {
        from: ReplicaId(2),
        to: ReplicaId(1),
        message,
    };
    vec![
        m(Message::Prepare {
            ballot: b,
            slots: vec![Slot(0), Slot(1)],
        }),
        m(Message::Promise {
            ballot: b,
            entries: vec![
                PromiseEntry {
                    slot: Slot(0),
                    accepted: Some((ballot(1, 3), batch(3, 1))),
                },
                PromiseEntry {
                    slot: Slot(1),
                    accepted: None,
                },
            ],
        }),
        m(Message::Accept {
            ballot: b,
            entries: vec![(Slot(0), batch(2, 1)), (Slot(1), Value::Noop)],
        }),
        m(Message::Accept {
            ballot: Ballot::reserved(ReplicaId(2)),
            entries: vec![(Slot(1), batch(2, 1))],
        }),
        m(Message::Accepted {
            ballot: b,
            slots: vec![Slot(0)],
        }),
        m(Message::Rejected {
            ballot: b,
            entries: vec![(Slot(0), ballot(9, 3))],
        }),
        m(Message::Decided {
            entries: vec![(Slot(0), batch(2, 1)), (Slot(1), Value::Noop)],
        }),
        m(Message::CatchUp {
            from: Slot(0),
            to: Slot(4),
        }),
        m(Message::SnapshotNeeded {
            log_start: Slot(100),
        }),
        m(Message::RejoinRequest { nonce: 42 }),
    ]
    .into_iter()
    .chain(sent_by_replica_2())
    .collect()
}

/// What a real replica (2, of the same three) sends to replica 1: heartbeats, and the
/// messages of a proposal.
fn sent_by_replica_2() -> Vec<Envelope> {
    let config = Config::majority([1, 2, 3].map(ReplicaId));
    let mut r = synod_core::Replica::new(synod_core::Options::new(ReplicaId(2), config), Time(1));
    let mut out = Vec::new();
    let mut now = Time(1);
    for step in 0..4 {
        now = now.add_nanos(100_000_000);
        if step == 1 {
            let _ = r.propose(now, Payload::Command(KvApp::encode(&kv_request())));
        }
        r.handle_timeout(now);
        while let Some(ready) = r.poll_ready() {
            out.extend(ready.messages.into_iter().filter(|e| e.to == ReplicaId(1)));
            r.handle_persisted(now, ready.seq);
        }
    }
    let mut kinds = BTreeSet::new();
    out.retain(|e| kinds.insert(e.message.kind()));
    out
}

fn stream(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        let body = frame::encode(f).expect("fits");
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
    }
    out
}

fn frames() -> Vec<(String, Vec<u8>)> {
    let hello = Frame::Hello { node: ReplicaId(2) };
    let mut out = vec![
        ("hello".to_string(), stream(&[hello.clone()])),
        (
            "body-hello".into(),
            frame::encode(&hello).expect("fits").to_vec(),
        ),
        (
            "snapshot-request".into(),
            stream(&[
                hello.clone(),
                Frame::SnapshotRequest {
                    group: GroupId(0),
                    min_next_slot: 10,
                    offset: 0,
                },
            ]),
        ),
        (
            "snapshot-chunk".into(),
            stream(&[
                hello.clone(),
                Frame::SnapshotChunk {
                    group: GroupId(1),
                    next_slot: 10,
                    total: 100,
                    offset: 0,
                    data: Bytes::from_static(b"\x10\0\0\0\0\0\0\0chunk"),
                },
            ]),
        ),
        (
            "all-messages".into(),
            stream(
                &std::iter::once(hello.clone())
                    .chain(messages().into_iter().map(|envelope| Frame::Group {
                        group: GroupId(0),
                        envelope,
                    }))
                    .collect::<Vec<_>>(),
            ),
        ),
        ("not-hello-first".into(), {
            let mut s = stream(&[Frame::Group {
                group: GroupId(0),
                envelope: messages().remove(7),
            }]);
            s.extend(stream(&[hello.clone()]));
            s
        }),
        ("oversized-hello".into(), {
            let mut s = 65u32.to_be_bytes().to_vec();
            s.extend([frame::VERSION; 65]);
            s
        }),
        ("other-version".into(), vec![0, 0, 0, 2, 9, 0]),
        ("empty-frame".into(), vec![0, 0, 0, 0]),
    ];
    for (i, m) in messages().into_iter().enumerate() {
        out.push((
            format!("message-{i}-{}", m.message.kind()),
            stream(&[
                hello.clone(),
                Frame::Group {
                    group: GroupId(3),
                    envelope: m,
                },
            ]),
        ));
    }
    out
}

/// Records of every kind.
#[must_use]
pub fn records() -> Vec<Record> {
    vec![
        Record::Proposal {
            lsn: Lsn(1),
            payload: Payload::Command(Bytes::from_static(b"put k v")),
        },
        Record::Proposal {
            lsn: Lsn(2),
            payload: Payload::Config(ConfigChange::SetPolicy(QuorumPolicy::Majority)),
        },
        Record::Retired { lsn: Lsn(1) },
        Record::Promised {
            slot: Slot(4),
            ballot: ballot(2, 1),
        },
        Record::Accepted {
            slot: Slot(4),
            ballot: ballot(3, 1),
            value: batch(1, 1),
        },
        Record::Decided {
            entries: vec![(Slot(4), batch(1, 1)), (Slot(5), Value::Noop)],
        },
        Record::OwnNext { slot: Slot(6) },
        Record::Fence { nonce: 99 },
        Record::Snapshot(Arc::new(snapshot())),
    ]
}

fn config() -> Config {
    Config::majority([1, 2, 3].map(ReplicaId))
}

/// A snapshot with something in every part of its core state.
#[must_use]
pub fn snapshot() -> Snapshot {
    let mut configs = ConfigHistory::new(config());
    let mut bigger = config();
    bigger.members.insert(ReplicaId(4));
    configs.push(Slot(290), bigger);
    let mut delivered = std::collections::BTreeMap::new();
    delivered.insert(
        ReplicaId(2),
        DeliveredSet {
            contiguous: Lsn(5),
            sparse: BTreeSet::from([Lsn(7), Lsn(9)]),
        },
    );
    let mut rejoined = std::collections::BTreeMap::new();
    rejoined.insert(
        ReplicaId(3),
        Rejoined {
            nonce: 5,
            at: Slot(20),
            fence: Slot(1044),
        },
    );
    Snapshot {
        next_slot: Slot(42),
        core: CoreState {
            configs,
            delivered,
            agreed_time: Time(1_700_000_000_000_000_000),
            held: std::collections::BTreeMap::new(),
            rejoined,
        },
        app: KvApp::encode_state(&{
            let mut kv = synod_kv::Kv::default();
            kv.apply_request(3, &kv_request());
            kv
        }),
    }
}

fn snapshot_inputs() -> Vec<(String, Vec<u8>)> {
    let s = snapshot();
    let encoded = postcard::to_stdvec(&s).expect("encodes");
    // The file: next_slot, then the checksummed record.
    let mut file = s.next_slot.0.to_le_bytes().to_vec();
    let stored = synod_storage::codec::encode(&Record::Snapshot(Arc::new(s.clone())));
    file.extend_from_slice(&stored[4..]);
    // The stream's head: the encoding's length, then the encoding.
    let mut head = (encoded.len() as u64).to_le_bytes().to_vec();
    head.extend_from_slice(&encoded);
    let mut minimal = Snapshot {
        next_slot: Slot(1),
        core: CoreState {
            configs: ConfigHistory::new(config()),
            delivered: Default::default(),
            agreed_time: Time(0),
            held: Default::default(),
            rejoined: Default::default(),
        },
        app: Bytes::new(),
    };
    let minimal_head = {
        let e = postcard::to_stdvec(&minimal).expect("encodes");
        let mut h = (e.len() as u64).to_le_bytes().to_vec();
        h.extend_from_slice(&e);
        h
    };
    minimal.core.configs = ConfigHistory::new(Config {
        members: [1].map(ReplicaId).into(),
        policy: QuorumPolicy::Singleton {
            replica: ReplicaId(1),
        },
        sun: None,
    });
    let singleton = {
        let e = postcard::to_stdvec(&minimal).expect("encodes");
        let mut h = (e.len() as u64).to_le_bytes().to_vec();
        h.extend_from_slice(&e);
        h
    };
    vec![
        ("file-and-stream".into(), head.clone()),
        ("file-record".into(), file),
        ("minimal".into(), minimal_head),
        ("singleton".into(), singleton),
        ("cut-short".into(), head[..head.len() / 2].to_vec()),
    ]
}

/// A channel with a few blocks: transactions, a conflicting one, a tick.
#[must_use]
pub fn busy_channel() -> Channel {
    let mut c = channel();
    let mut time = 1_000;
    for n in 0..5 {
        let key = if n == 3 { "k1" } else { "k" };
        let tx = transaction(n, &format!("{key}{n}"));
        c.deliver(&synod_ledger::Envelope::Tx(tx.encode()).encode(), time);
        time += 1_000;
    }
    c.deliver(&synod_ledger::Envelope::Tick.encode(), time + 5_000_000_000);
    c
}

fn app_states() -> Vec<(String, Vec<u8>)> {
    let mut kv = synod_kv::Kv::default();
    kv.apply_request(3, &kv_request());
    kv.apply(
        4,
        &KvCommand::Put {
            key: "b".into(),
            value: Bytes::from_static(&[0, 1, 2]),
            cas: None,
        },
    );
    let mut notary = synod_ledger::Notary::default();
    notary.notarise(&notarise_request(), 5);
    let mut checkpoint = Vec::new();
    let busy = busy_channel();
    let view = busy.view().expect("memory");
    ChannelApp::write_checkpoint(&ChannelState::View(view), &mut checkpoint).expect("memory");
    // The records only: the target appends the count and digest.
    let (_, used) = checkpoint_records(&checkpoint);
    let pick = |which: u8, bytes: &[u8]| {
        let mut v = vec![which];
        v.extend_from_slice(bytes);
        v
    };
    let genesis = {
        let mut cp = Vec::new();
        let fresh = channel();
        let view = fresh.view().expect("memory");
        ChannelApp::write_checkpoint(&ChannelState::View(view), &mut cp).expect("memory");
        let (_, used) = checkpoint_records(&cp);
        cp.truncate(used);
        cp
    };
    vec![
        ("kv".into(), pick(0, &KvApp::encode_state(&kv))),
        (
            "kv-empty".into(),
            pick(0, &KvApp::encode_state(&synod_kv::Kv::default())),
        ),
        ("notary".into(), pick(1, &NotaryApp::encode_state(&notary))),
        ("channel-checkpoint".into(), pick(2, &checkpoint[..used])),
        ("channel-genesis".into(), pick(2, &genesis)),
    ]
}

fn app_commands() -> Vec<(String, Vec<u8>)> {
    let pick = |which: u8, bytes: &[u8]| {
        let mut v = vec![which];
        v.extend_from_slice(bytes);
        v
    };
    let delete = KvRequest {
        token: None,
        cmd: KvCommand::Delete {
            key: "config/a".into(),
            cas: Some(3),
        },
    };
    vec![
        ("kv-put".into(), pick(0, &KvApp::encode(&kv_request()))),
        ("kv-delete".into(), pick(0, &KvApp::encode(&delete))),
        (
            "notarise".into(),
            pick(1, &NotaryApp::encode(&notarise_request())),
        ),
        (
            "channel-params".into(),
            pick(
                2,
                &synod_ledger::hosted::channel_params(&BatchConfig::default()),
            ),
        ),
    ]
}

/// The ledger target's input: envelopes, each after its length as 2 bytes little endian, with
/// a first byte of flags.
#[must_use]
pub fn ledger_input(flags: u8, envelopes: &[Bytes]) -> Vec<u8> {
    let mut out = vec![flags];
    for e in envelopes {
        out.extend_from_slice(&(e.len() as u16).to_le_bytes());
        out.extend_from_slice(e);
    }
    out
}

fn ledger_inputs() -> Vec<(String, Vec<u8>)> {
    let tx = |n, key: &str| synod_ledger::Envelope::Tx(transaction(n, key).encode()).encode();
    let tick = synod_ledger::Envelope::Tick.encode();
    let mut conflicting = transaction(9, "k1");
    conflicting.body.reads = vec![("k1".into(), Some(Version { block: 1, tx: 0 }))];
    let conflicting = Transaction::sign(conflicting.body, &signer());
    let mut bad_rwset = transaction(10, "k2").body;
    bad_rwset.writes.push(("k2".into(), None));
    let bad_rwset = Transaction::sign(bad_rwset, &signer());
    let mut forged = transaction(11, "k3");
    forged.body.id = "forged".into();
    vec![
        (
            "three-txs".into(),
            ledger_input(0, &[tx(1, "a"), tx(2, "b"), tx(3, "c")]),
        ),
        (
            "conflicts".into(),
            ledger_input(
                0,
                &[
                    tx(1, "k1"),
                    tick.clone(),
                    synod_ledger::Envelope::Tx(conflicting.encode()).encode(),
                    synod_ledger::Envelope::Tx(bad_rwset.encode()).encode(),
                    tx(1, "k1"),
                    tick.clone(),
                ],
            ),
        ),
        (
            "forged-signature".into(),
            ledger_input(
                0,
                &[
                    synod_ledger::Envelope::Tx(forged.encode()).encode(),
                    tick.clone(),
                ],
            ),
        ),
        (
            "trusted-verdicts".into(),
            ledger_input(
                1,
                &[
                    synod_ledger::Envelope::Tx(forged.encode()).encode(),
                    tx(4, "z"),
                    tick.clone(),
                ],
            ),
        ),
        (
            "resigned".into(),
            ledger_input(2, &[synod_ledger::Envelope::Tx(forged.encode()).encode()]),
        ),
        (
            "garbage".into(),
            ledger_input(0, &[Bytes::from_static(b"\x00\x05hello"), tick]),
        ),
    ]
}

/// The HTTP target's requests (its input format: a request line, headers, a blank line, the
/// body; see `fuzz_targets/http.rs`).
fn http_requests() -> Vec<(String, Vec<u8>)> {
    let tx = transaction(1, "coin").encode();
    let req = |line: &str, body: &[u8]| {
        let mut v = line.as_bytes().to_vec();
        v.extend_from_slice(b"\n\n");
        v.extend_from_slice(body);
        v
    };
    vec![
        ("kv-put".into(), req("PUT /v1/kv/config/a?cas=0", b"hello")),
        (
            "kv-put-token".into(),
            req("PUT /v1/kv/b\nidempotency-key: t1", b"x"),
        ),
        ("kv-get".into(), req("GET /v1/kv/config/a", b"")),
        ("kv-list".into(), req("GET /v1/kv/config?recurse&limit=2&after=c", b"")),
        ("kv-raw-stale".into(), req("GET /v1/kv/config/a?raw&stale", b"")),
        ("kv-delete".into(), req("DELETE /v1/kv/config/a?cas=3", b"")),
        ("kv-group-put".into(), req("PUT /v1/groups/fz-kv/kv/k", b"v")),
        (
            "kv-group-access".into(),
            req(
                "PUT /v1/groups/fz-kv/access\ncontent-type: application/json",
                br#"{"admins":["*"],"writers":["*"],"readers":["client-bob"]}"#,
            ),
        ),
        (
            "group-create".into(),
            req("POST /v1/groups\ncontent-type: application/json", br#"{"name":"g1","members":[0]}"#),
        ),
        ("group-show".into(), req("GET /v1/groups/fz-kv?stale", b"")),
        ("groups-list".into(), req("GET /v1/groups", b"")),
        (
            "group-members".into(),
            req(
                "POST /v1/groups/fz-kv/members\ncontent-type: application/json",
                br#"{"id":0,"addr":"127.0.0.1:1"}"#,
            ),
        ),
        ("group-remove-member".into(), req("DELETE /v1/groups/g1/members/0", b"")),
        ("group-remove".into(), req("DELETE /v1/groups/g1", b"")),
        ("status".into(), req("GET /v1/status\nx-fuzz-caller: alice", b"")),
        ("whoami".into(), req("GET /v1/whoami", b"")),
        (
            "channel-create".into(),
            req(
                "POST /v1/channels\ncontent-type: application/json",
                br#"{"name":"c1","members":[0],"max_message_count":2,"preferred_max_bytes":1000,"absolute_max_bytes":100000,"batch_timeout_ms":5,"access":{"admins":["*"],"writers":["*"],"readers":["*"]}}"#,
            ),
        ),
        ("channel-submit".into(), req("POST /v1/channels/fz-ch/transactions", &tx)),
        ("channel-show".into(), req("GET /v1/channels/fz-ch", b"")),
        ("channel-list".into(), req("GET /v1/channels", b"")),
        (
            "channel-tx".into(),
            req("GET /v1/channels/fz-ch/transactions/tx-1?creator=ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c", b""),
        ),
        ("channel-proof".into(), req("GET /v1/channels/fz-ch/transactions/tx-1/proof", b"")),
        (
            "channel-hash".into(),
            req("GET /v1/channels/fz-ch/hashes/0000000000000000000000000000000000000000000000000000000000000000", b""),
        ),
        ("channel-key".into(), req("GET /v1/channels/fz-ch/keys/coin?history", b"")),
        ("channel-root".into(), req("GET /v1/channels/fz-ch/roots/1", b"")),
        ("channel-consistency".into(), req("GET /v1/channels/fz-ch/consistency/1/2", b"")),
        ("channel-block".into(), req("GET /v1/channels/fz-ch/blocks/0", b"")),
        (
            "channel-access".into(),
            req(
                "PUT /v1/channels/fz-ch/access\ncontent-type: application/json",
                br#"{"admins":["*"],"writers":["client-alice"],"readers":[]}"#,
            ),
        ),
        (
            "notary-create".into(),
            req(
                "POST /v1/notaries\nx-fuzz-caller: alice\ncontent-type: application/json",
                br#"{"name":"n1","members":[0]}"#,
            ),
        ),
        (
            "notarise".into(),
            req(
                "POST /v1/notaries/fz-no/notarise\ncontent-type: application/json",
                br#"{"tx_id":"t1","inputs":[{"tx":"a","index":0}],"references":[{"tx":"b","index":1}],"time_window":{"from_ms":1,"until_ms":null}}"#,
            ),
        ),
        ("notary-key".into(), req("GET /v1/notaries/fz-no/key", b"")),
        ("notaries-list".into(), req("GET /v1/notaries", b"")),
        (
            "notary-access".into(),
            req("PUT /v1/notaries/fz-no/access\ncontent-type: application/json", br#"{"writers":["*"]}"#),
        ),
        ("bad-json".into(), req("POST /v1/groups\ncontent-type: application/json", br#"{"name":"g2","members":[0],"x":1"#)),
    ]
}

/// Every seed: its target, its name, its bytes.
#[must_use]
pub fn all() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |target: &'static str, items: Vec<(String, Vec<u8>)>| {
        for (name, bytes) in items {
            out.push((target, name, bytes));
        }
    };
    add("frame", frames());
    add(
        "record",
        records()
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let stored = synod_storage::codec::encode(r);
                (format!("record-{i}"), stored[4..].to_vec())
            })
            .chain(std::iter::once((
                "log".to_string(),
                records()
                    .iter()
                    .flat_map(|r| postcard::to_stdvec(r).expect("encodes"))
                    .collect(),
            )))
            .chain(std::iter::once((
                "stored-with-checksum".to_string(),
                synod_storage::codec::encode(&records()[0]),
            )))
            .collect(),
    );
    add("snapshot", snapshot_inputs());
    add("app_state", app_states());
    add("app_command", app_commands());
    add("ledger", ledger_inputs());
    add("http", http_requests());
    out
}
