//! Transactions validated and committed per second by one channel: the serial
//! [`synod_ledger::Channel`] against [`synod_ledger::ChannelApp`] as a node hosts it
//! (signature checks run ahead in parallel on a 2-worker pool),
//! blocks of 500 signed transactions (one read and one write each; an Ed25519 check each),
//! with every transaction on its own key (no conflicts) or every one on the same key (all
//! conflict: after the first, each is an MVCC read conflict, still checked in order).
//! Also notarisations per second: requests consuming 1 or 4 fresh inputs, each success signed
//! with the node's Ed25519 key, as a notary node answers them (one thread; no agreement).
//! Figures are in docs/BENCHMARKS.md.

#![allow(missing_docs, clippy::unwrap_used)]

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use synod_exec::{Agreed, Executor, Hosted, Job, WorkerPool};
use synod_ledger::notary::{NotaryIdentity, sign_notarisation};
use synod_ledger::{
    BatchConfig, Channel, ChannelApp, Envelope, NotariseRequest, Notary, NotaryOutcome, StateRef,
    Transaction, TxBody,
};

const TXS: usize = 2_000;

fn workload(conflicting: bool) -> Vec<Bytes> {
    let signer = SigningKey::from_bytes(&[5; 32]);
    (0..TXS)
        .map(|i| {
            let k = if conflicting {
                "hot".to_string()
            } else {
                format!("k{i}")
            };
            let body = TxBody {
                id: format!("tx{i}"),
                creator: signer.verifying_key().to_bytes(),
                reads: vec![(k.clone(), None)],
                ranges: vec![],
                writes: vec![(k, Some(Bytes::from(vec![7u8; 64])))],
            };
            Envelope::Tx(Transaction::sign(body, &signer).encode()).encode()
        })
        .collect()
}

fn config() -> BatchConfig {
    BatchConfig::default()
}

fn validate(c: &mut Criterion) {
    let pool = WorkerPool::new(2);
    let mut group = c.benchmark_group("validate_and_commit");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10);
    for (name, conflicting) in [("no_conflicts", false), ("all_conflict", true)] {
        let envelopes = workload(conflicting);
        group.bench_with_input(BenchmarkId::new("serial", name), &envelopes, |b, es| {
            b.iter(|| {
                let mut ch = Channel::genesis(config(), Bytes::new(), 0);
                for e in es {
                    ch.deliver(e, 0);
                }
                assert_eq!(ch.height(), 1 + (TXS / 500) as u64);
            });
        });
        group.bench_with_input(BenchmarkId::new("hosted_2", name), &envelopes, |b, es| {
            b.iter(|| {
                // As a node runs it: signatures checked ahead on the pool, envelopes in order.
                let app = ChannelApp::from_channel(Channel::genesis(config(), Bytes::new(), 0));
                let exec = Executor::new(app, &pool, 4096);
                for (gsn, e) in es.iter().enumerate() {
                    let at = Agreed {
                        gsn: gsn as u64,
                        index: 0,
                        time_ns: 0,
                    };
                    let mut cmd = exec.app().decode(e, at).unwrap();
                    let ahead = exec.app().ahead(&mut cmd).unwrap();
                    exec.submit_many([ahead, cmd].map(|cmd| Job::Command {
                        gsn: gsn as u64,
                        cmd,
                        reply: None,
                    }))
                    .unwrap();
                }
                exec.wait_idle();
                assert_eq!(exec.app().tip().0.0, 1 + (TXS / 500) as u64);
            });
        });
    }
    group.finish();
}

fn notarise(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[9; 32]);
    let notary_identity = NotaryIdentity {
        name: "notary".into(),
        id: 1,
        created_gsn: 1,
    };
    let mut group = c.benchmark_group("notarise");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10);
    for inputs in [1u32, 4] {
        let requests: Vec<NotariseRequest> = (0..TXS as u32)
            .map(|i| NotariseRequest {
                tx_id: format!("tx{i}"),
                inputs: (0..inputs)
                    .map(|k| StateRef {
                        tx: "issue".into(),
                        index: i * inputs + k,
                    })
                    .collect(),
                references: vec![],
                time_window: None,
            })
            .collect();
        group.bench_with_input(BenchmarkId::new("inputs", inputs), &requests, |b, reqs| {
            b.iter(|| {
                let mut notary = Notary::default();
                for r in reqs {
                    assert_eq!(notary.notarise(r, 0), NotaryOutcome::Notarised);
                    std::hint::black_box(sign_notarisation(&key, &notary_identity, r));
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, validate, notarise);
criterion_main!(benches);
