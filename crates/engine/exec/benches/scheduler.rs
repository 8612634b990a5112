//! Applied commands per second: the locking scheduler on a 2-worker pool against a serial
//! executor (a plain loop in GSN order), for CPU-heavy commands (hashing 4, 16 and 64 KiB:
//! about 3, 11 and 43 µs each here; an Ed25519 signature check is about 40 µs) at 0 %, 10 %
//! and 100 % conflicts. Commands are handed over in batches of 16, as the node delivers an
//! agreed slot's commands together. Both sides use mimalloc, as the `synod` binary does.
//! Figures are in docs/BENCHMARKS.md.

#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Cmd, HashApp};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use synod_exec::{Application, Ctx, Executor, Job, WorkerPool};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const COMMANDS: usize = 1_000;
/// Commands handed over at once.
const BATCH: usize = 16;

fn run_serial(cmds: &[Cmd]) {
    let app = HashApp::default();
    for (gsn, cmd) in cmds.iter().enumerate() {
        let locks = app.locks(cmd);
        std::hint::black_box(app.apply(&Ctx::new(gsn as u64, &locks), cmd.clone()));
    }
}

fn run_parallel(pool: &WorkerPool, cmds: &[Cmd]) {
    let exec = Executor::new(HashApp::default(), pool, 1024);
    // Delivered in batches, as the node hands over one agreed slot's commands at a time.
    for (i, batch) in cmds.chunks(BATCH).enumerate() {
        let jobs: Vec<Job<HashApp>> = batch
            .iter()
            .enumerate()
            .map(|(j, cmd)| Job::Command {
                gsn: (i * BATCH + j) as u64,
                cmd: cmd.clone(),
                reply: Some(Box::new(|h| {
                    std::hint::black_box(h);
                })),
            })
            .collect();
        exec.submit_many(jobs).unwrap();
        exec.mark_applied(((i + 1) * BATCH) as u64);
    }
    exec.wait_idle();
}

fn scheduler(c: &mut Criterion) {
    let pool = WorkerPool::new(2);
    for kib in [0, 4, 16, 64] {
        let mut group = c.benchmark_group(format!("apply_{kib}KiB_hash"));
        group.throughput(Throughput::Elements(COMMANDS as u64));
        group.sample_size(10);
        for permille in [0, 100, 1000] {
            let cmds = common::workload(COMMANDS, 1024, permille, kib, 42);
            let label = format!("{}%_conflicts", permille / 10);
            group.bench_with_input(BenchmarkId::new("serial", &label), &cmds, |b, cmds| {
                b.iter(|| run_serial(cmds));
            });
            group.bench_with_input(
                BenchmarkId::new("scheduler_2_workers", &label),
                &cmds,
                |b, cmds| b.iter(|| run_parallel(&pool, cmds)),
            );
        }
        group.finish();
    }
}

criterion_group!(benches, scheduler);
criterion_main!(benches);
