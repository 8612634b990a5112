//! Bounded queues: a full executor hands jobs back instead of queueing them, tells the
//! submitter when it has drained, and its watermark waits for the slowest earlier command.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use synod_exec::{Application, Ctx, Executor, Job, Locks, WorkerPool};

/// Each command blocks until the test releases it, so the test controls when jobs finish.
struct Gate {
    release: Mutex<mpsc::Receiver<()>>,
}

impl Application for Gate {
    type Key = u64;
    type Command = u64;
    type Output = u64;
    type Snapshot = ();

    fn locks(&self, key: &u64) -> Locks<u64> {
        Locks::keys([], [*key])
    }

    fn apply(&self, ctx: &Ctx<'_, u64>, _: u64) -> u64 {
        self.release.lock().unwrap().recv().unwrap();
        ctx.gsn()
    }

    fn snapshot(&self) {}

    fn restore(&self, (): ()) {}
}

#[test]
fn a_full_executor_hands_jobs_back_and_says_when_it_has_drained() {
    let (release, gate) = mpsc::channel();
    let pool = WorkerPool::new(2);
    let progress = Arc::new(AtomicUsize::new(0));
    let seen = progress.clone();
    let exec = Executor::with_progress(
        Gate {
            release: Mutex::new(gate),
        },
        &pool,
        4,
        move || {
            seen.fetch_add(1, Ordering::SeqCst);
        },
    );
    let jobs = (0..10u64).map(|gsn| Job::Command {
        gsn,
        cmd: gsn,
        reply: None,
    });
    let rest = exec.try_submit_many(jobs).unwrap();
    assert_eq!(
        rest.len(),
        6,
        "capacity 4: six jobs handed back, none queued"
    );
    assert_eq!(exec.backlog(), 4);
    // Two jobs finish: the backlog is at half the capacity, and the submitter hears of it.
    release.send(()).unwrap();
    release.send(()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while progress.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "no progress signal");
        std::thread::sleep(Duration::from_millis(1));
    }
    let rest = exec.try_submit_many(rest).unwrap();
    assert_eq!(rest.len(), 4, "room for two more");
    for _ in 0..6 {
        release.send(()).unwrap();
    }
    exec.wait_idle();
    assert_eq!(exec.backlog(), 0);
}

#[test]
fn the_watermark_waits_for_the_slowest_earlier_command() {
    let (release, gate) = mpsc::channel();
    let pool = WorkerPool::new(2);
    let exec = Executor::new(
        Gate {
            release: Mutex::new(gate),
        },
        &pool,
        16,
    );
    let (tx, rx) = mpsc::channel();
    for gsn in 0..3u64 {
        let tx = tx.clone();
        exec.submit(Job::Command {
            gsn,
            cmd: gsn,
            reply: Some(Box::new(move |g| tx.send(g).unwrap())),
        })
        .unwrap();
        exec.mark_applied(gsn + 1);
    }
    // One command finishes (whichever the pool ran first): the watermark covers at most the
    // prefix that has finished, which here is nothing if it was not GSN 0.
    release.send(()).unwrap();
    let first = rx.recv().unwrap();
    let applied = exec.applied();
    assert!(
        applied <= first + 1 && (applied == 0 || first == 0),
        "applied {applied} after only GSN {first} finished"
    );
    release.send(()).unwrap();
    release.send(()).unwrap();
    exec.wait_idle();
    assert_eq!(exec.applied(), 3);
}
