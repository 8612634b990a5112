//! The executor: admits jobs in GSN order, runs them on a [`WorkerPool`] as their locks are
//! granted, and tracks the applied watermark.
//!
//! One mutex guards the lock table and the bookkeeping; it is held only to admit a job and to
//! release one, never while a command runs (only `Application::locks`, pure and cheap by
//! contract, is called under it). Capacity is the number of admitted jobs not
//! yet finished: a full executor hands jobs back ([`Executor::try_submit_many`]) or blocks
//! ([`Executor::submit`]) the submitter, which is how a slow application pushes back on the
//! agreement layer instead of growing a queue.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::Application;
use crate::locks::{Ctx, LockTable, Locks};
use crate::sync::{Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering, lock, thread};

/// Where a command's output goes (typically the client waiting for it).
pub type Reply<O> = Box<dyn FnOnce(O) + Send>;

/// Something to run in GSN order.
pub enum Job<A: Application> {
    /// An agreed command, delivered at `gsn`, and where its output goes (`None` on nodes where
    /// no client waits for it).
    Command {
        /// The GSN it was delivered at.
        gsn: u64,
        /// The command.
        cmd: A::Command,
        /// Receives the output.
        reply: Option<Reply<A::Output>>,
    },
    /// Runs with everything locked: every earlier job has finished and no later one has
    /// started (snapshots, restores).
    Exclusive(Box<dyn FnOnce(&A) + Send>),
}

/// A unit of work for the pool; it may hand back a follow-up to run on the same thread (a job
/// its completion made runnable), which saves a queue round trip and a wake-up.
struct Task(Box<dyn FnOnce() -> Option<Task> + Send>);

struct PoolQueue {
    tasks: VecDeque<Task>,
    /// Workers asleep on `ready`: only they need a wake-up (a futex call each).
    idle: usize,
    stopping: bool,
}

struct PoolShared {
    queue: Mutex<PoolQueue>,
    ready: Condvar,
}

impl PoolShared {
    fn spawn(&self, tasks: Vec<Task>) {
        if tasks.is_empty() {
            return;
        }
        let n = tasks.len();
        let idle = {
            let mut q = lock(&self.queue);
            q.tasks.extend(tasks);
            q.idle
        };
        for _ in 0..n.min(idle) {
            self.ready.notify_one();
        }
    }
}

/// Worker threads shared by every executor of a process (one per core is the usual size).
/// Dropping the pool lets the workers finish the queued tasks, then joins them.
pub struct WorkerPool {
    shared: Arc<PoolShared>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl WorkerPool {
    /// A pool of `threads` workers (at least one).
    pub fn new(threads: usize) -> WorkerPool {
        let shared = Arc::new(PoolShared {
            queue: Mutex::new(PoolQueue {
                tasks: VecDeque::new(),
                idle: 0,
                stopping: false,
            }),
            ready: Condvar::new(),
        });
        let threads = (0..threads.max(1))
            .map(|_| {
                let shared = shared.clone();
                spawn_worker(move || worker(&shared))
            })
            .collect();
        WorkerPool { shared, threads }
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }
}

#[cfg(not(test))]
fn spawn_worker(f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name("synod-exec".into())
        .spawn(f)
        .expect("spawning an executor worker thread")
}

#[cfg(test)]
fn spawn_worker(f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::spawn(f)
}

/// Polls of an empty queue before a worker sleeps: with short commands, a job usually arrives
/// within microseconds, and a sleep/wake pair (two futex calls and a context switch) costs
/// more than the command.
const SPINS_BEFORE_SLEEP: u32 = 64;

fn worker(pool: &PoolShared) {
    loop {
        let task = {
            let mut q = lock(&pool.queue);
            let mut spins = 0;
            loop {
                if let Some(t) = q.tasks.pop_front() {
                    break t;
                }
                if q.stopping {
                    return;
                }
                if spins < SPINS_BEFORE_SLEEP {
                    spins += 1;
                    drop(q);
                    thread::yield_now();
                    q = lock(&pool.queue);
                    continue;
                }
                q.idle += 1;
                q = pool
                    .ready
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                q.idle -= 1;
            }
        };
        let mut next = Some(task);
        while let Some(t) = next {
            next = (t.0)();
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        lock(&self.shared.queue).stopping = true;
        self.shared.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

enum Body<A: Application> {
    Command {
        gsn: u64,
        cmd: A::Command,
        locks: Locks<A::Key>,
        reply: Option<Reply<A::Output>>,
    },
    Exclusive(Box<dyn FnOnce(&A) + Send>),
}

/// A position in the submission order: a job, or a mark saying "everything submitted before
/// this belongs to GSNs below `n`".
enum Item {
    Job { done: bool },
    Mark(u64),
}

struct State<A: Application> {
    table: LockTable<A::Key>,
    /// Admitted jobs waiting for their locks.
    waiting: BTreeMap<u64, Body<A>>,
    /// Submission order from `first_pos`, for the watermark.
    order: VecDeque<Item>,
    first_pos: u64,
    next_pos: u64,
    applied: u64,
    failure: Option<String>,
    /// A submission was cut short for lack of capacity: `on_progress` fires once the backlog
    /// is down to half the capacity (not on every job: that would be a wake-up per job).
    refused: bool,
    /// Threads waiting in `submit` for capacity or in `wait_idle`: wake-ups are only paid
    /// when someone waits.
    waiting_for_space: usize,
    waiting_for_idle: usize,
}

struct Shared<A: Application> {
    app: A,
    pool: Arc<PoolShared>,
    state: Mutex<State<A>>,
    /// Signalled whenever a job finishes.
    finished: Condvar,
    applied: AtomicU64,
    failed: AtomicBool,
    capacity: usize,
    on_progress: Box<dyn Fn() + Send + Sync>,
}

/// Runs an [`Application`]'s commands in parallel with the result of serial execution in
/// submission (GSN) order. See the crate documentation.
pub struct Executor<A: Application> {
    shared: Arc<Shared<A>>,
}

impl<A: Application> Executor<A> {
    /// An executor for `app` running on `pool`, holding at most `capacity` unfinished jobs.
    pub fn new(app: A, pool: &WorkerPool, capacity: usize) -> Self {
        Self::with_progress(app, pool, capacity, || {})
    }

    /// As [`Executor::new`], calling `on_progress` (from a worker thread) when a submission
    /// was refused for lack of capacity and the backlog has drained to half the capacity: the
    /// submitter then retries.
    pub fn with_progress(
        app: A,
        pool: &WorkerPool,
        capacity: usize,
        on_progress: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        Executor {
            shared: Arc::new(Shared {
                app,
                pool: pool.shared.clone(),
                state: Mutex::new(State {
                    table: LockTable::new(),
                    waiting: BTreeMap::new(),
                    order: VecDeque::new(),
                    first_pos: 0,
                    next_pos: 0,
                    applied: 0,
                    failure: None,
                    refused: false,
                    waiting_for_space: 0,
                    waiting_for_idle: 0,
                }),
                finished: Condvar::new(),
                applied: AtomicU64::new(0),
                failed: AtomicBool::new(false),
                capacity: capacity.max(1),
                on_progress: Box::new(on_progress),
            }),
        }
    }

    /// The application, for reads outside the GSN order (stale reads, status). Its state may
    /// reflect commands past [`Executor::applied`] that happened to finish early.
    pub fn app(&self) -> &A {
        &self.shared.app
    }

    /// Admits `jobs` in order, after everything submitted before, as many as capacity allows;
    /// returns the ones not admitted (submit them again, in the same order, after
    /// `on_progress` fires). Fails only if the executor failed.
    pub fn try_submit_many(
        &self,
        jobs: impl IntoIterator<Item = Job<A>>,
    ) -> Result<Vec<Job<A>>, String> {
        let shared = &self.shared;
        let mut jobs = jobs.into_iter();
        let mut tasks = Vec::new();
        let mut st = lock(&shared.state);
        if let Some(e) = &st.failure {
            return Err(e.clone());
        }
        // Locks are computed only for jobs admitted now (a job handed back is not paid for
        // twice); `locks` is pure and cheap by contract, so it runs under the lock.
        while st.table.len() < shared.capacity {
            let Some(job) = jobs.next() else {
                break;
            };
            let locks = match &job {
                Job::Command { cmd, .. } => shared.app.locks(cmd),
                Job::Exclusive(_) => Locks::Exclusive,
            };
            tasks.extend(shared.admit(&mut st, job, locks));
        }
        let rest: Vec<Job<A>> = jobs.collect();
        st.refused |= !rest.is_empty();
        drop(st);
        shared.pool.spawn(tasks);
        Ok(rest)
    }

    /// Admits `jobs` in order, waiting for capacity as needed; fails only if the executor
    /// failed.
    pub fn submit_many(&self, jobs: impl IntoIterator<Item = Job<A>>) -> Result<(), String> {
        let mut jobs = self.try_submit_many(jobs)?;
        while !jobs.is_empty() {
            {
                let mut st = lock(&self.shared.state);
                if st.table.len() >= self.shared.capacity && st.failure.is_none() {
                    st.waiting_for_space += 1;
                    st = self
                        .shared
                        .finished
                        .wait(st)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    st.waiting_for_space -= 1;
                }
            }
            jobs = self.try_submit_many(jobs)?;
        }
        Ok(())
    }

    /// Admits `job`, waiting for capacity; fails only if the executor failed.
    pub fn submit(&self, job: Job<A>) -> Result<(), String> {
        self.submit_many([job])
    }

    /// Records that everything submitted so far belongs to GSNs below `next_gsn`: once it has
    /// all finished, [`Executor::applied`] reaches `next_gsn`.
    pub fn mark_applied(&self, next_gsn: u64) {
        let mut st = lock(&self.shared.state);
        match st.order.back_mut() {
            Some(Item::Mark(n)) => *n = (*n).max(next_gsn),
            _ => {
                st.order.push_back(Item::Mark(next_gsn));
                st.next_pos += 1;
            }
        }
        self.shared.advance(&mut st);
    }

    /// Every command of a GSN below this has finished (the watermark given by
    /// [`Executor::mark_applied`]).
    pub fn applied(&self) -> u64 {
        self.shared.applied.load(Ordering::Acquire)
    }

    /// Jobs admitted and not finished.
    pub fn backlog(&self) -> usize {
        lock(&self.shared.state).table.len()
    }

    /// Whether the application failed (cheap: no lock). The executor then runs nothing more
    /// and its watermark stays put; [`Executor::failure`] says why.
    pub fn has_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Why the executor stopped, if it did.
    pub fn failure(&self) -> Option<String> {
        lock(&self.shared.state).failure.clone()
    }

    /// Blocks until every admitted job has finished.
    pub fn wait_idle(&self) {
        let mut st = lock(&self.shared.state);
        while st.table.len() > 0 {
            st.waiting_for_idle += 1;
            st = self
                .shared
                .finished
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            st.waiting_for_idle -= 1;
        }
    }
}

impl<A: Application> Shared<A> {
    /// Admits a job at the next position; returns its task if it may run now.
    fn admit(
        self: &Arc<Self>,
        st: &mut State<A>,
        job: Job<A>,
        locks: Locks<A::Key>,
    ) -> Option<Task> {
        let pos = st.next_pos;
        st.next_pos += 1;
        st.order.push_back(Item::Job { done: false });
        let (locks, runnable) = st.table.admit(pos, locks);
        let body = match job {
            Job::Command { gsn, cmd, reply } => Body::Command {
                gsn,
                cmd,
                locks,
                reply,
            },
            Job::Exclusive(f) => Body::Exclusive(f),
        };
        if runnable {
            Some(self.task(pos, body))
        } else {
            st.waiting.insert(pos, body);
            None
        }
    }

    fn task(self: &Arc<Self>, pos: u64, body: Body<A>) -> Task {
        let shared = self.clone();
        Task(Box::new(move || shared.execute(pos, body)))
    }

    /// Runs one job; returns a job it made runnable, for this thread to run next.
    fn execute(self: &Arc<Self>, pos: u64, body: Body<A>) -> Option<Task> {
        // After a failure nothing more is applied (the state is no longer trustworthy), but
        // jobs still drain so waiting clients learn the outcome is unknown.
        let outcome = if self.failed.load(Ordering::Acquire) {
            Ok(None)
        } else {
            catch_unwind(AssertUnwindSafe(|| match body {
                Body::Command {
                    gsn,
                    cmd,
                    locks,
                    reply,
                } => {
                    let output = self.app.apply(&Ctx::new(gsn, &locks), cmd);
                    reply.map(|r| (r, output))
                }
                Body::Exclusive(f) => {
                    f(&self.app);
                    None
                }
            }))
        };
        let (reply, panic) = match outcome {
            Ok(reply) => (reply, None),
            Err(payload) => (None, Some(panic_message(payload.as_ref()))),
        };
        // Answered before the job counts as finished, so a caller that saw the executor idle
        // (or the watermark past the command) has its answer too.
        if let Some((reply, output)) = reply {
            reply(output);
        }
        self.finish(pos, panic)
    }

    /// Releases a finished job's locks; queues the jobs that made runnable but the first,
    /// which is returned for the caller to run.
    fn finish(self: &Arc<Self>, pos: u64, panic: Option<String>) -> Option<Task> {
        let mut st = lock(&self.state);
        if let Some(e) = panic
            && st.failure.is_none()
        {
            st.failure = Some(e);
            self.failed.store(true, Ordering::Release);
        }
        let runnable = st.table.release(pos);
        let i = usize::try_from(pos - st.first_pos).unwrap_or(usize::MAX);
        if let Some(item) = st.order.get_mut(i) {
            *item = Item::Job { done: true };
        }
        // After a failure the watermark stays where the state was last trustworthy.
        if st.failure.is_none() {
            self.advance(&mut st);
        }
        let mut tasks: Vec<Task> = runnable
            .into_iter()
            .filter_map(|p| st.waiting.remove(&p).map(|body| self.task(p, body)))
            .collect();
        let low = st.table.len() <= self.capacity / 2;
        let wake = (st.waiting_for_space > 0 && low)
            || (st.waiting_for_idle > 0 && st.table.len() == 0)
            || st.failure.is_some();
        let progress = st.refused && (low || st.failure.is_some());
        st.refused &= !progress;
        drop(st);
        if wake {
            self.finished.notify_all();
        }
        if progress {
            (self.on_progress)();
        }
        if tasks.is_empty() {
            return None;
        }
        let first = tasks.remove(0);
        self.pool.spawn(tasks);
        Some(first)
    }

    /// Moves the watermark past every finished prefix of the submission order.
    fn advance(&self, st: &mut State<A>) {
        while let Some(item) = st.order.front() {
            match item {
                Item::Job { done: false } => break,
                Item::Job { done: true } => {}
                Item::Mark(n) => st.applied = st.applied.max(*n),
            }
            st.order.pop_front();
            st.first_pos += 1;
        }
        self.applied.store(st.applied, Ordering::Release);
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "the application panicked".to_string())
}
