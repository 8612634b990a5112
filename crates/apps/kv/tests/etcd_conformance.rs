//! The revisioned keyspace (`synod_kv::mvcc`) answers as etcd does: random sequences of
//! reads, writes, transactions (nested, with comparisons on every field) and compactions are
//! sent to a real etcd (Debian's `etcd-server`, started here on free ports; the README's test
//! command installs it) through the etcd-client crate, and applied to the keyspace; every
//! response, error and revision must match.
//!
//! Revisions differ by an offset: each sequence starts on an empty etcd keyspace at some
//! revision `base`, and on a fresh keyspace at revision 1. Leases are left out (the keyspace
//! does not manage them yet).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use etcd_client as etcd;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use synod_kv::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRequest, KeyRange, KeyValue, Mvcc, MvccError, Op,
    OpResponse, PutRequest, RangeRequest, RangeResponse, Revision, SortOrder, SortTarget,
};

/// Sequences, each from an empty keyspace (`SYNOD_CONFORMANCE_SEQUENCES=N` for a longer
/// run), and operations per sequence.
const SEQUENCES: u64 = 100;
const STEPS: usize = 50;

fn sequences() -> u64 {
    std::env::var("SYNOD_CONFORMANCE_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SEQUENCES)
}

struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    endpoint: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_etcd() -> Etcd {
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new("etcd")
        .args([
            "--name",
            "conformance",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
            "--initial-cluster",
            &format!("conformance={peer_url}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd (Debian's etcd-server; scripts/test.sh installs it) must be on the PATH");
    Etcd {
        child,
        _dir: dir,
        endpoint: client_url,
    }
}

/// Random operations over a few keys that prefix each other, in the keyspace's numbering, and
/// the sequence's lease ids (unique to it: etcd's leases outlive a sequence).
struct Gen(ChaCha8Rng, i64);

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn key(&mut self) -> Bytes {
        const KEYS: &[&str] = &["a", "ab", "b", "c", "d"];
        Bytes::from_static(KEYS[self.below(KEYS.len() as u64) as usize].as_bytes())
    }

    fn range(&mut self) -> KeyRange {
        match self.below(4) {
            0 => KeyRange::key(self.key()),
            1 => KeyRange::prefix(self.key()),
            2 => KeyRange {
                key: self.key(),
                end: self.key(),
            },
            _ => KeyRange::prefix(""),
        }
    }

    /// One of the sequence's three lease ids, or one never granted.
    fn lease(&mut self) -> i64 {
        self.1 * 10 + [1, 2, 3, 9][self.below(4) as usize]
    }

    /// A lease id for a put, mostly none.
    fn lease_or_none(&mut self) -> i64 {
        if self.chance(60) { 0 } else { self.lease() }
    }

    /// A revision around the current one (0: unset).
    fn revision(&mut self, now: i64) -> i64 {
        if self.chance(40) {
            0
        } else {
            (now - self.below(4) as i64).max(1)
        }
    }

    fn range_request(&mut self, now: i64) -> RangeRequest {
        let sort_target = [
            SortTarget::Key,
            SortTarget::Version,
            SortTarget::Create,
            SortTarget::Mod,
            SortTarget::Value,
        ][self.below(5) as usize];
        let sort_order =
            [SortOrder::None, SortOrder::Ascend, SortOrder::Descend][self.below(3) as usize];
        let limit = self.below(3) as i64;
        RangeRequest {
            range: self.range(),
            revision: if self.chance(30) {
                self.revision(now)
            } else {
                0
            },
            limit,
            sort_order,
            sort_target,
            keys_only: self.chance(20),
            count_only: limit == 0 && self.chance(15),
            min_mod_revision: if self.chance(20) {
                self.revision(now)
            } else {
                0
            },
            max_mod_revision: if self.chance(10) {
                self.revision(now)
            } else {
                0
            },
            min_create_revision: if self.chance(10) {
                self.revision(now)
            } else {
                0
            },
            max_create_revision: if self.chance(10) {
                self.revision(now)
            } else {
                0
            },
        }
    }

    fn op(&mut self, now: i64, depth: u32) -> Op {
        match self.below(if depth < 2 { 10 } else { 8 }) {
            0..=3 => Op::Put(PutRequest {
                key: self.key(),
                value: Bytes::from(vec![b'v', self.below(3) as u8]),
                lease: self.lease_or_none(),
                prev_kv: self.chance(50),
                ignore_value: self.chance(8),
                ignore_lease: self.chance(8),
            }),
            4 | 5 => Op::Delete(DeleteRequest {
                range: self.range(),
                prev_kv: self.chance(50),
            }),
            6 | 7 => Op::Range(self.range_request(now)),
            _ => {
                let compare = (0..self.below(3))
                    .map(|_| Compare {
                        range: self.range(),
                        target: match self.below(5) {
                            0 => CompareTarget::Version(self.below(3) as i64),
                            1 => CompareTarget::Create(self.revision(now)),
                            2 => CompareTarget::Mod(self.revision(now)),
                            3 => CompareTarget::Value(Bytes::from(vec![b'v', self.below(3) as u8])),
                            _ => CompareTarget::Lease(self.lease_or_none()),
                        },
                        result: [
                            CompareResult::Equal,
                            CompareResult::NotEqual,
                            CompareResult::Greater,
                            CompareResult::Less,
                        ][self.below(4) as usize],
                    })
                    .collect();
                let branch = |g: &mut Gen| (0..g.below(4)).map(|_| g.op(now, depth + 1)).collect();
                let success = branch(self);
                let failure = branch(self);
                Op::Txn {
                    compare,
                    success,
                    failure,
                }
            }
        }
    }
}

/// Whether a transaction deletes anything, anywhere in it.
fn deletes(op: &Op) -> bool {
    match op {
        Op::Delete(_) => true,
        Op::Txn {
            success, failure, ..
        } => success.iter().chain(failure).any(deletes),
        _ => false,
    }
}

/// Clears `ignore_value` and `ignore_lease` in a transaction's puts. etcd 3.4 crashes on a put
/// that keeps the value or lease of a key the same transaction deleted before it (the key
/// existed when it was checked); the keyspace refuses the transaction instead. Transactions
/// that delete nothing keep the flags, so the check against the keyspace before the
/// transaction is still compared.
fn keep_nothing(op: &mut Op) {
    if let Op::Txn {
        success, failure, ..
    } = op
    {
        for op in success.iter_mut().chain(failure.iter_mut()) {
            match op {
                Op::Put(p) => {
                    p.ignore_value = false;
                    p.ignore_lease = false;
                }
                Op::Txn { .. } => keep_nothing(op),
                _ => {}
            }
        }
    }
}

/// Translates revisions between the keyspace's numbering and etcd's.
#[derive(Clone, Copy)]
struct Offset(i64);

impl Offset {
    fn etcd_rev(self, r: i64) -> i64 {
        if r > 0 { r + self.0 } else { r }
    }

    fn our_rev(self, r: i64) -> i64 {
        if r > 0 { r - self.0 } else { r }
    }

    fn kv(self, kv: &etcd::KeyValue) -> KeyValue {
        KeyValue {
            key: Bytes::copy_from_slice(kv.key()),
            create_revision: self.our_rev(kv.create_revision()),
            mod_revision: self.our_rev(kv.mod_revision()),
            version: kv.version(),
            value: Bytes::copy_from_slice(kv.value()),
            lease: kv.lease(),
        }
    }
}

fn with_range<T>(range: &KeyRange, options: T, set: impl FnOnce(T, Vec<u8>) -> T) -> T {
    if range.end.is_empty() {
        options
    } else {
        set(options, range.end.to_vec())
    }
}

fn get_options(r: &RangeRequest, o: Offset) -> etcd::GetOptions {
    let mut opts = with_range(
        &r.range,
        etcd::GetOptions::new(),
        etcd::GetOptions::with_range,
    )
    .with_limit(r.limit)
    .with_revision(o.etcd_rev(r.revision))
    .with_min_mod_revision(o.etcd_rev(r.min_mod_revision))
    .with_max_mod_revision(o.etcd_rev(r.max_mod_revision))
    .with_min_create_revision(o.etcd_rev(r.min_create_revision))
    .with_max_create_revision(o.etcd_rev(r.max_create_revision));
    let target = match r.sort_target {
        SortTarget::Key => etcd::SortTarget::Key,
        SortTarget::Version => etcd::SortTarget::Version,
        SortTarget::Create => etcd::SortTarget::Create,
        SortTarget::Mod => etcd::SortTarget::Mod,
        SortTarget::Value => etcd::SortTarget::Value,
    };
    let order = match r.sort_order {
        SortOrder::None => etcd::SortOrder::None,
        SortOrder::Ascend => etcd::SortOrder::Ascend,
        SortOrder::Descend => etcd::SortOrder::Descend,
    };
    opts = opts.with_sort(target, order);
    if r.keys_only {
        opts = opts.with_keys_only();
    }
    if r.count_only {
        opts = opts.with_count_only();
    }
    opts
}

fn put_options(p: &PutRequest) -> etcd::PutOptions {
    let mut opts = etcd::PutOptions::new().with_lease(p.lease);
    if p.prev_kv {
        opts = opts.with_prev_key();
    }
    if p.ignore_value {
        opts = opts.with_ignore_value();
    }
    if p.ignore_lease {
        opts = opts.with_ignore_lease();
    }
    opts
}

fn delete_options(d: &DeleteRequest) -> etcd::DeleteOptions {
    let opts = with_range(
        &d.range,
        etcd::DeleteOptions::new(),
        etcd::DeleteOptions::with_range,
    );
    if d.prev_kv {
        opts.with_prev_key()
    } else {
        opts
    }
}

fn txn(compare: &[Compare], success: &[Op], failure: &[Op], o: Offset) -> etcd::Txn {
    let compares: Vec<etcd::Compare> = compare
        .iter()
        .map(|c| {
            let key = c.range.key.to_vec();
            let op = match c.result {
                CompareResult::Equal => etcd::CompareOp::Equal,
                CompareResult::NotEqual => etcd::CompareOp::NotEqual,
                CompareResult::Greater => etcd::CompareOp::Greater,
                CompareResult::Less => etcd::CompareOp::Less,
            };
            let cmp = match &c.target {
                CompareTarget::Version(v) => etcd::Compare::version(key, op, *v),
                CompareTarget::Create(r) => etcd::Compare::create_revision(key, op, o.etcd_rev(*r)),
                CompareTarget::Mod(r) => etcd::Compare::mod_revision(key, op, o.etcd_rev(*r)),
                CompareTarget::Value(v) => etcd::Compare::value(key, op, v.to_vec()),
                CompareTarget::Lease(l) => etcd::Compare::lease(key, op, *l),
            };
            with_range(&c.range, cmp, etcd::Compare::with_range)
        })
        .collect();
    let ops = |branch: &[Op]| -> Vec<etcd::TxnOp> {
        branch
            .iter()
            .map(|op| match op {
                Op::Range(r) => etcd::TxnOp::get(r.range.key.to_vec(), Some(get_options(r, o))),
                Op::Put(p) => {
                    etcd::TxnOp::put(p.key.to_vec(), p.value.to_vec(), Some(put_options(p)))
                }
                Op::Delete(d) => etcd::TxnOp::delete(d.range.key.to_vec(), Some(delete_options(d))),
                Op::Txn {
                    compare,
                    success,
                    failure,
                } => etcd::TxnOp::txn(txn(compare, success, failure, o)),
            })
            .collect()
    };
    etcd::Txn::new()
        .when(compares)
        .and_then(ops(success))
        .or_else(ops(failure))
}

fn range_response(r: &etcd::GetResponse, o: Offset) -> RangeResponse {
    RangeResponse {
        kvs: r.kvs().iter().map(|kv| o.kv(kv)).collect(),
        more: r.more(),
        count: r.count(),
    }
}

fn txn_response(r: &etcd::TxnResponse, o: Offset) -> OpResponse {
    OpResponse::Txn {
        succeeded: r.succeeded(),
        responses: r
            .op_responses()
            .iter()
            .map(|op| match op {
                etcd::TxnOpResponse::Get(g) => OpResponse::Range(range_response(g, o)),
                etcd::TxnOpResponse::Put(p) => OpResponse::Put {
                    prev_kv: p.prev_key().map(|kv| o.kv(kv)),
                },
                etcd::TxnOpResponse::Delete(d) => OpResponse::Delete {
                    deleted: d.deleted(),
                    prev_kvs: d.prev_kvs().iter().map(|kv| o.kv(kv)).collect(),
                },
                etcd::TxnOpResponse::Txn(t) => txn_response(t, o),
            })
            .collect(),
    }
}

/// What etcd says for each refusal (its error strings, which clients match on).
fn etcd_message(e: &MvccError) -> &'static str {
    match e {
        MvccError::Compacted(_) => "required revision has been compacted",
        MvccError::FutureRevision => "required revision is a future revision",
        MvccError::KeyNotFound => "key not found",
        MvccError::EmptyKey => "key is not provided",
        MvccError::ValueProvided => "value is provided",
        MvccError::LeaseProvided => "lease is provided",
        MvccError::DuplicateKey => "duplicate key given in txn request",
        MvccError::TooManyOps => "too many operations in txn request",
        MvccError::TooDeep => "nested too deep",
        MvccError::LeaseNotFound => "requested lease not found",
        MvccError::LeaseExists => "lease already exists",
    }
}

/// Sends `op` to etcd; its response in the keyspace's numbering, and the header's revision.
async fn send(client: &mut etcd::Client, op: &Op, o: Offset) -> Result<(OpResponse, i64), String> {
    let status = |e: etcd::Error| match e {
        etcd::Error::GRpcStatus(s) => s.message().to_string(),
        other => panic!("etcd failed: {other}"),
    };
    let header = |h: Option<&etcd::ResponseHeader>| o.our_rev(h.unwrap().revision());
    Ok(match op {
        Op::Range(r) => {
            let g = client
                .get(r.range.key.to_vec(), Some(get_options(r, o)))
                .await
                .map_err(status)?;
            (OpResponse::Range(range_response(&g, o)), header(g.header()))
        }
        Op::Put(p) => {
            let r = client
                .put(p.key.to_vec(), p.value.to_vec(), Some(put_options(p)))
                .await
                .map_err(status)?;
            let prev_kv = r.prev_key().map(|kv| o.kv(kv));
            (OpResponse::Put { prev_kv }, header(r.header()))
        }
        Op::Delete(d) => {
            let r = client
                .delete(d.range.key.to_vec(), Some(delete_options(d)))
                .await
                .map_err(status)?;
            let response = OpResponse::Delete {
                deleted: r.deleted(),
                prev_kvs: r.prev_kvs().iter().map(|kv| o.kv(kv)).collect(),
            };
            (response, header(r.header()))
        }
        Op::Txn {
            compare,
            success,
            failure,
        } => {
            let r = client
                .txn(txn(compare, success, failure, o))
                .await
                .map_err(status)?;
            (txn_response(&r, o), header(r.header()))
        }
    })
}

/// A lease operation on both sides: grant, revoke (its keys deleted at one revision), or a
/// look at a lease's granted TTL and keys. (Renewals and expiry are timing, not compared.)
async fn lease_step(
    g: &mut Gen,
    store: &mut Mvcc,
    client: &mut etcd::Client,
    o: Offset,
    seed: u64,
    step: usize,
) {
    let id = g.lease();
    let message = |e: etcd::Error| match e {
        etcd::Error::GRpcStatus(s) => s.message().to_string(),
        other => panic!("etcd failed: {other}"),
    };
    let same = |ours: &Result<i64, MvccError>, theirs: &Result<i64, String>| match (ours, theirs) {
        (Ok(a), Ok(b)) => a == b,
        (Err(e), Err(m)) => m.contains(etcd_message(e)),
        _ => false,
    };
    match g.below(3) {
        0 => {
            // A long TTL: nothing expires during the test.
            let ours = store.grant(id, 600).map(|()| 600);
            let theirs = client
                .lease_grant(600, Some(etcd::LeaseGrantOptions::new().with_id(id)))
                .await
                .map(|r| r.ttl())
                .map_err(message);
            assert!(
                same(&ours, &theirs),
                "seed {seed} step {step}: grant {id}: ours {ours:?}, etcd {theirs:?}"
            );
        }
        1 => {
            let ours = store.revoke(id).map(|r| r.0);
            let theirs = client
                .lease_revoke(id)
                .await
                .map(|r| o.our_rev(r.header().unwrap().revision()))
                .map_err(message);
            assert!(
                same(&ours, &theirs),
                "seed {seed} step {step}: revoke {id}: ours {ours:?}, etcd {theirs:?}"
            );
        }
        _ => {
            let ours = store
                .lease(id)
                .map(|l| (l.ttl, l.keys.iter().map(|k| k.to_vec()).collect::<Vec<_>>()));
            let r = client
                .lease_time_to_live(id, Some(etcd::LeaseTimeToLiveOptions::new().with_keys()))
                .await
                .unwrap();
            // etcd answers a lease it does not have with a TTL of -1.
            let mut keys = r.keys().to_vec();
            keys.sort();
            let theirs = (r.ttl() != -1).then(|| (r.granted_ttl(), keys));
            assert_eq!(
                ours, theirs,
                "seed {seed} step {step}: time to live of {id}"
            );
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_keyspace_answers_every_request_as_etcd_does() {
    let server = start_etcd();
    let mut client = None;
    for _ in 0..100 {
        if let Ok(mut c) = etcd::Client::connect([server.endpoint.as_str()], None).await
            && c.get("probe", None).await.is_ok()
        {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut client = client.expect("etcd did not come up within 10 s");
    let mut compared = 0;
    let sequences = sequences();
    for seed in 0..sequences {
        let mut g = Gen(ChaCha8Rng::seed_from_u64(seed), seed as i64 + 1);
        // Both start empty: etcd at `base`, the keyspace at 1. (A key is written first so
        // that the delete makes a revision, above anything the last sequence compacted.)
        client.put("sentinel", "", None).await.unwrap();
        let all = Op::Delete(DeleteRequest {
            range: KeyRange::prefix(""),
            prev_kv: false,
        });
        let (_, base) = send(&mut client, &all, Offset(0)).await.unwrap();
        let o = Offset(base - 1);
        let mut store = Mvcc::new(1_000);
        for step in 0..STEPS {
            let now = store.revision().0;
            if g.chance(5) {
                let at = (now - g.below(3) as i64).max(1);
                let ours = store.compact(Revision(at));
                let theirs = client
                    .compact(o.etcd_rev(at), None)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                match (&ours, &theirs) {
                    (Ok(()), Ok(())) => {}
                    (Err(e), Err(m)) if m.contains(etcd_message(e)) => {}
                    _ => panic!(
                        "seed {seed} step {step}: compact {at}: ours {ours:?}, etcd {theirs:?}"
                    ),
                }
                continue;
            }
            if g.chance(15) {
                lease_step(&mut g, &mut store, &mut client, o, seed, step).await;
                compared += 1;
                continue;
            }
            let mut op = g.op(now, 0);
            if deletes(&op) {
                keep_nothing(&mut op);
            }
            let ours = store.apply(&op).map(|(r, rev)| (r, rev.0));
            let theirs = send(&mut client, &op, o).await;
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "seed {seed} step {step}: {op:?}"),
                (Err(e), Err(m)) if m.contains(etcd_message(e)) => {}
                _ => panic!("seed {seed} step {step}: {op:?}\n ours {ours:?}\n etcd {theirs:?}"),
            }
            compared += 1;
        }
    }
    // Compactions are the other steps (about one in twenty).
    assert!(compared > (sequences as usize * STEPS) * 9 / 10);
}
