//! Decisions per second of a 3-replica group in memory: no I/O, a perfect network, storage that
//! is durable at once. Measures the protocol's own cost (batching, message handling, delivery),
//! with batch sizes 1 and 64, weak reservations on and off.
//!
//! `cargo bench -p synod-core --bench decisions`

use std::collections::VecDeque;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use synod_core::{Config, Envelope, GroupParams, Options, Payload, Replica, ReplicaId, Time};

const COMMANDS: u64 = 2_048;

/// Proposes `COMMANDS` commands spread over the replicas and runs until all have delivered them.
fn run(batch: usize, reservations: bool) -> u64 {
    let ids: Vec<ReplicaId> = (0..3).map(ReplicaId).collect();
    let mut now = Time(1_000_000_000);
    let mut replicas: Vec<Replica> = ids
        .iter()
        .map(|id| {
            let mut o = Options::new(*id, Config::majority(ids.clone()));
            o.params = GroupParams {
                reservations,
                preserve_local_order: false,
                config_lag: 1024,
            };
            o.batch_commands_max = batch;
            o.window = 64;
            o.pending_proposals_max = 1 << 20;
            Replica::new(o, now)
        })
        .collect();
    let mut net: VecDeque<Envelope> = VecDeque::new();
    let mut delivered = [0u64; 3];
    let body = Bytes::from_static(&[7u8; 64]);
    let pump = |r: &mut Replica, net: &mut VecDeque<Envelope>, delivered: &mut u64, now: Time| {
        while let Some(ready) = r.poll_ready() {
            net.extend(ready.messages);
            *delivered += ready
                .deliveries
                .iter()
                .map(|d| d.proposals.len() as u64)
                .sum::<u64>();
            r.handle_persisted(now, ready.seq);
        }
    };
    for i in 0..COMMANDS {
        let k = (i % 3) as usize;
        replicas[k]
            .propose(now, Payload::Command(body.clone()))
            .expect("accepted");
    }
    for _ in 0..1_000_000 {
        for k in 0..3 {
            pump(&mut replicas[k], &mut net, &mut delivered[k], now);
        }
        if delivered.iter().all(|d| *d == COMMANDS) {
            return delivered[0];
        }
        if net.is_empty() {
            now = now.add_nanos(1_000_000);
            for r in &mut replicas {
                r.handle_timeout(now);
            }
        }
        while let Some(env) = net.pop_front() {
            let k = env.to.0 as usize;
            replicas[k].handle_message(now, env);
            pump(&mut replicas[k], &mut net, &mut delivered[k], now);
        }
    }
    panic!("did not converge: {delivered:?}");
}

fn decisions(c: &mut Criterion) {
    let mut g = c.benchmark_group("decisions_3_replicas_in_memory");
    g.throughput(Throughput::Elements(COMMANDS));
    g.sample_size(20);
    for batch in [1, 64] {
        for reservations in [true, false] {
            let name = if reservations {
                "reservations"
            } else {
                "contention"
            };
            g.bench_with_input(
                BenchmarkId::new(name, format!("batch{batch}")),
                &batch,
                |b, &batch| {
                    b.iter(|| run(batch, reservations));
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
