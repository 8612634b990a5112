//! One-copy equivalence on real threads: random workloads (key counts, conflict mixes, command
//! costs, scans, snapshot points, worker counts, capacities) executed in parallel give exactly
//! the outputs and states of serial execution in GSN order, compared byte for byte.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{Cmd, HashApp, Outcome, encode, serial};
use proptest::prelude::*;
use synod_exec::{Application, Executor, Job, WorkerPool};

fn parallel(cmds: &[Cmd], snapshot_before: &[usize], threads: usize, capacity: usize) -> Outcome {
    let pool = WorkerPool::new(threads);
    let exec = Executor::new(HashApp::default(), &pool, capacity);
    let outputs = Arc::new(Mutex::new(vec![None; cmds.len()]));
    let snapshots = Arc::new(Mutex::new(Vec::new()));
    for (gsn, cmd) in cmds.iter().enumerate() {
        for _ in snapshot_before.iter().filter(|s| **s == gsn) {
            let snapshots = snapshots.clone();
            let job = Job::Exclusive(Box::new(move |app: &HashApp| {
                snapshots.lock().unwrap().push(encode(&app.snapshot()));
            }));
            exec.submit(job).unwrap();
        }
        let outputs = outputs.clone();
        exec.submit(Job::Command {
            gsn: gsn as u64,
            cmd: cmd.clone(),
            reply: Some(Box::new(move |h| outputs.lock().unwrap()[gsn] = Some(h))),
        })
        .unwrap();
        exec.mark_applied(gsn as u64 + 1);
    }
    exec.wait_idle();
    assert_eq!(
        exec.applied(),
        cmds.len() as u64,
        "watermark covers everything"
    );
    assert_eq!(exec.failure(), None);
    let outputs = outputs.lock().unwrap().iter().map(|o| o.unwrap()).collect();
    let snapshots = std::mem::take(&mut *snapshots.lock().unwrap());
    Outcome {
        outputs,
        snapshots,
        last: encode(&exec.app().snapshot()),
    }
}

fn arb_cmd(keys: u32) -> impl Strategy<Value = Cmd> {
    let key = 0..keys;
    prop_oneof![
        20 => (
            proptest::collection::vec(key.clone(), 0..3),
            proptest::collection::vec(key, 0..3),
            0u32..3,
        )
            .prop_map(|(read, write, work)| Cmd::Touch { read, write, work }),
        1 => Just(Cmd::Scan),
    ]
}

fn arb_workload() -> impl Strategy<Value = (Vec<Cmd>, Vec<usize>)> {
    (1u32..40).prop_flat_map(|keys| {
        (
            proptest::collection::vec(arb_cmd(keys), 1..120),
            proptest::collection::vec(0usize..120, 0..4),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn parallel_execution_equals_serial_execution(
        (cmds, snapshot_before) in arb_workload(),
        threads in 1usize..5,
        capacity in 1usize..64,
    ) {
        let want = serial(&cmds, &snapshot_before);
        let got = parallel(&cmds, &snapshot_before, threads, capacity);
        prop_assert_eq!(got, want);
    }
}

#[test]
fn fixed_conflict_rates_equal_serial_execution() {
    for permille in [0, 100, 500, 1000] {
        let cmds = common::workload(400, 64, permille, 1, u64::from(permille) + 7);
        let snaps = [0, 133, 266, 399];
        assert_eq!(
            parallel(&cmds, &snaps, 2, 32),
            serial(&cmds, &snaps),
            "conflict rate {permille}‰"
        );
    }
}

#[test]
fn restore_replaces_the_state_at_its_place_in_the_order() {
    let cmds = common::workload(50, 8, 300, 0, 3);
    let pool = WorkerPool::new(2);
    let exec = Executor::new(HashApp::default(), &pool, 8);
    for (gsn, cmd) in cmds.iter().enumerate() {
        exec.submit(Job::Command {
            gsn: gsn as u64,
            cmd: cmd.clone(),
            reply: None,
        })
        .unwrap();
    }
    let reference = serial(&cmds[..10], &[]);
    let fresh = HashApp::default();
    for (gsn, cmd) in cmds[..10].iter().enumerate() {
        let locks = fresh.locks(cmd);
        fresh.apply(&synod_exec::Ctx::new(gsn as u64, &locks), cmd.clone());
    }
    let state = fresh.snapshot();
    exec.submit(Job::Exclusive(Box::new(move |app: &HashApp| {
        app.restore(state)
    })))
    .unwrap();
    exec.wait_idle();
    assert_eq!(encode(&exec.app().snapshot()), reference.last);
}
