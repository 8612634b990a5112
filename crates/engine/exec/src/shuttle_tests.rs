//! The executor under shuttle: the same workload is run under many thread interleavings
//! (random and PCT schedules), and every run must equal serial execution: outputs, the state
//! an exclusive job sees midway, the final state, and a watermark that never runs ahead of a
//! command still running.

use std::collections::BTreeSet;

use imbl::OrdMap;

use crate::sync::{Arc, Mutex, lock};
use crate::{Application, Ctx, Executor, Job, KeyedState, Locks, WorkerPool};

#[derive(Clone, Debug)]
enum Cmd {
    Touch { read: Vec<u8>, write: Vec<u8> },
    Scan,
}

/// Each command folds the values it locked into a hash, writes a hash of that to each key it
/// writes, and returns it: any missed or reordered conflict changes some output or the state.
#[derive(Default)]
struct App {
    state: KeyedState<u8, u64>,
    /// GSNs whose command finished (outside the checked state: the test's own bookkeeping).
    finished: std::sync::Mutex<BTreeSet<u64>>,
}

fn mix(a: u64, b: u64) -> u64 {
    (a ^ b).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
}

impl Application for App {
    type Key = u8;
    type Command = Cmd;
    type Output = u64;
    type Snapshot = OrdMap<u8, u64>;

    fn locks(&self, cmd: &Cmd) -> Locks<u8> {
        match cmd {
            Cmd::Touch { read, write } => Locks::keys(read.clone(), write.clone()),
            Cmd::Scan => Locks::ReadAll,
        }
    }

    fn apply(&self, ctx: &Ctx<'_, u8>, cmd: Cmd) -> u64 {
        let mut acc = ctx.gsn();
        match cmd {
            Cmd::Touch { read, write } => {
                for k in read.iter().chain(&write) {
                    acc = mix(acc, self.state.get(ctx, k).unwrap_or(0));
                    // A scheduling point inside the command, so interleavings differ here too.
                    crate::sync::thread::yield_now();
                }
                for k in &write {
                    self.state.insert(ctx, *k, mix(acc, u64::from(*k)));
                }
            }
            Cmd::Scan => {
                for (k, v) in self.state.scan(ctx) {
                    acc = mix(acc, mix(u64::from(k), v));
                }
            }
        }
        self.finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(ctx.gsn());
        acc
    }

    fn snapshot(&self) -> OrdMap<u8, u64> {
        self.state.copy()
    }

    fn restore(&self, snapshot: OrdMap<u8, u64>) {
        self.state.replace(snapshot);
    }
}

fn touch(read: &[u8], write: &[u8]) -> Cmd {
    Cmd::Touch {
        read: read.to_vec(),
        write: write.to_vec(),
    }
}

/// Conflicts of every kind: write-write, read-write, write-read, scans, disjoint keys.
fn workload() -> Vec<Cmd> {
    vec![
        touch(&[], &[1]),
        touch(&[1], &[2]),
        touch(&[], &[3]),
        Cmd::Scan,
        touch(&[2], &[1]),
        touch(&[3], &[]),
        touch(&[], &[2, 3]),
        touch(&[1, 2], &[]),
    ]
}

/// Where the exclusive job goes: after this many commands.
const EXCLUSIVE_AT: usize = 5;

fn serial(cmds: &[Cmd]) -> (Vec<u64>, OrdMap<u8, u64>, OrdMap<u8, u64>) {
    let app = App::default();
    let mut outputs = Vec::new();
    let mut midway = OrdMap::new();
    for (gsn, cmd) in cmds.iter().enumerate() {
        if gsn == EXCLUSIVE_AT {
            midway = app.snapshot();
        }
        let locks = app.locks(cmd);
        let locks = match locks {
            Locks::Keys { read, write } => Locks::keys(read, write),
            other => other,
        };
        outputs.push(app.apply(&Ctx::new(gsn as u64, &locks), cmd.clone()));
    }
    (outputs, midway, app.snapshot())
}

fn run_parallel(cmds: &[Cmd], threads: usize, capacity: usize) {
    let (want_outputs, want_midway, want_final) = serial(cmds);
    let pool = WorkerPool::new(threads);
    let exec = Executor::new(App::default(), &pool, capacity);
    let outputs = Arc::new(Mutex::new(vec![None; cmds.len()]));
    let midway = Arc::new(Mutex::new(None));
    for (gsn, cmd) in cmds.iter().enumerate() {
        if gsn == EXCLUSIVE_AT {
            let midway = midway.clone();
            let job = Job::Exclusive(Box::new(move |app: &App| {
                *lock(&midway) = Some(app.snapshot());
            }));
            exec.submit(job).unwrap();
        }
        let outputs = outputs.clone();
        let reply = Box::new(move |out| lock(&outputs)[gsn] = Some(out));
        exec.submit(Job::Command {
            gsn: gsn as u64,
            cmd: cmd.clone(),
            reply: Some(reply),
        })
        .unwrap();
        exec.mark_applied(gsn as u64 + 1);
        // The watermark never covers a command that has not finished.
        let applied = exec.applied();
        let finished = exec.app().finished.lock().unwrap().clone();
        assert!(
            (0..applied).all(|g| finished.contains(&g)),
            "applied {applied} but finished only {finished:?}"
        );
    }
    exec.wait_idle();
    assert_eq!(exec.applied(), cmds.len() as u64);
    let got: Vec<u64> = lock(&outputs).iter().map(|o| o.unwrap()).collect();
    assert_eq!(got, want_outputs, "outputs differ from serial execution");
    assert_eq!(
        lock(&midway).clone().unwrap(),
        want_midway,
        "exclusive saw another state"
    );
    assert_eq!(exec.app().snapshot(), want_final, "final state differs");
    assert!(exec.failure().is_none());
}

#[test]
fn parallel_execution_equals_serial_under_random_interleavings() {
    shuttle::check_random(|| run_parallel(&workload(), 2, 3), 20_000);
}

#[test]
fn parallel_execution_equals_serial_under_pct_interleavings() {
    shuttle::check_pct(|| run_parallel(&workload(), 3, 8), 10_000, 3);
}

#[test]
fn a_full_executor_blocks_the_submitter_until_a_job_finishes() {
    // Capacity 1: every submit waits for the previous job; still serial-equivalent.
    shuttle::check_random(|| run_parallel(&workload(), 2, 1), 500);
}

#[test]
fn an_access_outside_the_declared_locks_stops_the_executor_with_the_culprit_named() {
    struct Liar(KeyedState<u8, u64>);
    impl Application for Liar {
        type Key = u8;
        type Command = u8;
        type Output = ();
        type Snapshot = ();
        fn locks(&self, _: &u8) -> Locks<u8> {
            Locks::keys([], [1])
        }
        fn apply(&self, ctx: &Ctx<'_, u8>, key: u8) {
            self.0.insert(ctx, key, 7);
        }
        fn snapshot(&self) {}
        fn restore(&self, (): ()) {}
    }
    shuttle::check_random(
        || {
            let pool = WorkerPool::new(2);
            let exec = Executor::new(Liar(KeyedState::default()), &pool, 4);
            let job = |gsn, key| Job::Command {
                gsn,
                cmd: key,
                reply: None,
            };
            exec.submit(job(1, 1)).unwrap();
            exec.submit(job(2, 2)).unwrap();
            exec.wait_idle();
            let failure = exec.failure().expect("the violation is reported");
            assert!(
                failure.contains("GSN 2 wrote key 2 outside its declared locks"),
                "{failure}"
            );
            assert!(
                exec.submit(job(3, 1)).is_err(),
                "nothing runs after a failure"
            );
        },
        100,
    );
}
