//! Locks: what a command declares ([`Locks`]), the check of each access against it ([`Ctx`]),
//! and the table that grants locks in admission (GSN) order ([`LockTable`]).
//!
//! Per key, requests queue in admission order; a request is granted when it is compatible with
//! every earlier request still in the queue (reads share, a write is alone). Locking everything
//! is not a key: a [`Locks::ReadAll`] command waits for every earlier writer and holds back
//! every later writer; a [`Locks::Exclusive`] command waits for every earlier command and holds
//! back every later one. A command waits only for earlier commands, so there is no deadlock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;

/// The locks a command needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Locks<K> {
    /// Shared locks on `read`, exclusive locks on `write` (a key in both is written).
    Keys {
        /// Keys read.
        read: Vec<K>,
        /// Keys written.
        write: Vec<K>,
    },
    /// Reads any key (a scan); conflicts with every writer.
    ReadAll,
    /// Reads and writes anything; conflicts with every command.
    Exclusive,
}

impl<K: Ord> Locks<K> {
    /// Key locks, normalised: sorted, deduplicated, a key both read and written only written.
    pub fn keys(read: impl IntoIterator<Item = K>, write: impl IntoIterator<Item = K>) -> Self {
        let mut write: Vec<K> = write.into_iter().collect();
        write.sort();
        write.dedup();
        let mut read: Vec<K> = read
            .into_iter()
            .filter(|k| write.binary_search(k).is_err())
            .collect();
        read.sort();
        read.dedup();
        Locks::Keys { read, write }
    }

    /// No locks at all (a command that touches no state).
    #[must_use]
    pub fn none() -> Self {
        Locks::Keys {
            read: Vec::new(),
            write: Vec::new(),
        }
    }

    fn normalised(self) -> Self {
        match self {
            // Already normalised (the usual case: built by `Locks::keys`): no copy.
            Locks::Keys { read, write }
                if strictly_sorted(&read)
                    && strictly_sorted(&write)
                    && read.iter().all(|k| write.binary_search(k).is_err()) =>
            {
                Locks::Keys { read, write }
            }
            Locks::Keys { read, write } => Locks::keys(read, write),
            other => other,
        }
    }

    /// Whether the command may read `key`.
    pub fn allows_read(&self, key: &K) -> bool {
        match self {
            Locks::Keys { read, write } => {
                read.binary_search(key).is_ok() || write.binary_search(key).is_ok()
            }
            Locks::ReadAll | Locks::Exclusive => true,
        }
    }

    /// Whether the command may write `key`.
    pub fn allows_write(&self, key: &K) -> bool {
        match self {
            Locks::Keys { write, .. } => write.binary_search(key).is_ok(),
            Locks::ReadAll => false,
            Locks::Exclusive => true,
        }
    }

    /// Whether the command may read across keys it did not name (scan a range).
    pub fn allows_scan(&self) -> bool {
        matches!(self, Locks::ReadAll | Locks::Exclusive)
    }
}

fn strictly_sorted<K: Ord>(keys: &[K]) -> bool {
    keys.windows(2).all(|w| w[0] < w[1])
}

/// What a command sees while it runs: its GSN, and its declared locks, against which every
/// access is checked. An access outside them is a bug in the application: the check panics
/// with a message naming the command's GSN and the key, and the executor stops (a node then
/// quarantines the group rather than let replicas diverge).
#[derive(Debug)]
pub struct Ctx<'a, K> {
    gsn: u64,
    locks: &'a Locks<K>,
}

impl<'a, K: Ord + Debug> Ctx<'a, K> {
    /// A context for a command at `gsn` holding `locks` (which must be normalised, as the
    /// executor's are; tests build their own).
    pub fn new(gsn: u64, locks: &'a Locks<K>) -> Self {
        Ctx { gsn, locks }
    }

    /// The GSN the command was delivered at.
    pub fn gsn(&self) -> u64 {
        self.gsn
    }

    /// The command's locks.
    pub fn locks(&self) -> &Locks<K> {
        self.locks
    }

    /// Panics unless the command locked `key` for reading.
    pub fn check_read(&self, key: &K) {
        if !self.locks.allows_read(key) {
            self.violation("read key", key);
        }
    }

    /// Panics unless the command locked `key` for writing.
    pub fn check_write(&self, key: &K) {
        if !self.locks.allows_write(key) {
            self.violation("wrote key", key);
        }
    }

    /// Panics unless the command locked everything for reading.
    pub fn check_scan(&self) {
        if !self.locks.allows_scan() {
            self.violation("scanned keys", &"(any)");
        }
    }

    #[track_caller]
    fn violation(&self, what: &str, key: &dyn Debug) -> ! {
        panic!(
            "application bug: the command at GSN {} {what} {key:?} outside its declared locks {:?}",
            self.gsn,
            LocksSummary(self.locks),
        )
    }
}

/// Prints a command's locks without requiring the whole `Locks` to be `Debug` twice over.
struct LocksSummary<'a, K>(&'a Locks<K>);

impl<K: Debug> Debug for LocksSummary<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Locks::Keys { read, write } => write!(f, "read {read:?}, write {write:?}"),
            Locks::ReadAll => f.write_str("read all"),
            Locks::Exclusive => f.write_str("exclusive"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Read,
    Write,
}

struct Request {
    seq: u64,
    mode: Mode,
    granted: bool,
}

/// The requests on one key, in admission order.
#[derive(Default)]
struct KeyQueue {
    requests: VecDeque<Request>,
    /// Write requests among them: a read is granted at once only when there are none.
    writes: usize,
}

struct Admitted<K> {
    locks: Locks<K>,
    /// Key requests not granted yet.
    keys_waiting: usize,
    /// Handed out as runnable.
    running: bool,
}

impl<K> Admitted<K> {
    fn writes(&self) -> bool {
        match &self.locks {
            Locks::Keys { write, .. } => !write.is_empty(),
            Locks::ReadAll => false,
            Locks::Exclusive => true,
        }
    }
}

/// Grants locks in admission order. Sequence numbers must be admitted in increasing order
/// (gaps are fine); each admitted command is released exactly once, after it ran.
pub(crate) struct LockTable<K> {
    /// Per key; empty queues are kept (reused by the next command on the key) until there
    /// are many more of them than admitted commands.
    queues: BTreeMap<K, KeyQueue>,
    admitted: BTreeMap<u64, Admitted<K>>,
    read_all: BTreeSet<u64>,
    exclusive: BTreeSet<u64>,
    writers: BTreeSet<u64>,
    /// Commands whose key locks are granted but which wait for an earlier command that locks
    /// everything (or, for a `ReadAll`, for an earlier writer).
    parked: BTreeSet<u64>,
}

impl<K: Ord + Clone> LockTable<K> {
    pub(crate) fn new() -> Self {
        LockTable {
            queues: BTreeMap::new(),
            admitted: BTreeMap::new(),
            read_all: BTreeSet::new(),
            exclusive: BTreeSet::new(),
            writers: BTreeSet::new(),
            parked: BTreeSet::new(),
        }
    }

    /// Commands admitted and not released.
    pub(crate) fn len(&self) -> usize {
        self.admitted.len()
    }

    /// Admits command `seq` with `locks`; returns the (normalised) locks and whether it may
    /// run now.
    pub(crate) fn admit(&mut self, seq: u64, locks: Locks<K>) -> (Locks<K>, bool) {
        debug_assert!(self.admitted.last_key_value().is_none_or(|(s, _)| *s < seq));
        let locks = locks.normalised();
        let mut keys_waiting = 0;
        if let Locks::Keys { read, write } = &locks {
            let requests = read
                .iter()
                .map(|k| (k, Mode::Read))
                .chain(write.iter().map(|k| (k, Mode::Write)));
            for (key, mode) in requests {
                let queue = match self.queues.get_mut(key) {
                    Some(q) => q,
                    None => self.queues.entry(key.clone()).or_default(),
                };
                let granted = match mode {
                    Mode::Read => {
                        cfg!(feature = "mutation-reads-ignore-writers") || queue.writes == 0
                    }
                    Mode::Write => queue.requests.is_empty(),
                };
                keys_waiting += usize::from(!granted);
                queue.writes += usize::from(mode == Mode::Write);
                queue.requests.push_back(Request { seq, mode, granted });
            }
        }
        let cmd = Admitted {
            locks: locks.clone(),
            keys_waiting,
            running: false,
        };
        match &cmd.locks {
            Locks::ReadAll => drop(self.read_all.insert(seq)),
            Locks::Exclusive => drop(self.exclusive.insert(seq)),
            Locks::Keys { .. } if cmd.writes() => drop(self.writers.insert(seq)),
            Locks::Keys { .. } => {}
        }
        self.admitted.insert(seq, cmd);
        let runnable = self.try_start(seq);
        (locks, runnable)
    }

    /// Releases command `seq` (it finished); returns the commands that may run now, in order.
    pub(crate) fn release(&mut self, seq: u64) -> Vec<u64> {
        let Some(cmd) = self.admitted.remove(&seq) else {
            debug_assert!(false, "released {seq}, which is not admitted");
            return Vec::new();
        };
        debug_assert!(cmd.running, "released {seq} before it ran");
        self.read_all.remove(&seq);
        self.exclusive.remove(&seq);
        self.writers.remove(&seq);
        let mut candidates = Vec::new();
        if let Locks::Keys { read, write } = &cmd.locks {
            for key in read.iter().chain(write) {
                self.release_key(key, seq, &mut candidates);
            }
        }
        // Commands waiting on the whole state that this release may free: everything parked
        // (up to the next exclusive) only if this command was itself a scan or exclusive;
        // else at most the first exclusive (all before it may now be done) and, if this
        // command wrote, the first scan.
        if matches!(cmd.locks, Locks::ReadAll | Locks::Exclusive) {
            let horizon = self.exclusive.first().copied().unwrap_or(u64::MAX);
            candidates.extend(self.parked.range(..=horizon).copied());
        }
        candidates.extend(self.exclusive.first().copied());
        if cmd.writes() {
            candidates.extend(self.read_all.first().copied());
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|s| self.try_start(*s));
        candidates
    }

    fn release_key(&mut self, key: &K, seq: u64, candidates: &mut Vec<u64>) {
        let Some(queue) = self.queues.get_mut(key) else {
            return;
        };
        if let Some(i) = queue.requests.iter().position(|r| r.seq == seq)
            && let Some(r) = queue.requests.remove(i)
        {
            queue.writes -= usize::from(r.mode == Mode::Write);
        }
        if queue.requests.is_empty() {
            if self.queues.len() > 4 * self.admitted.len() + 1024 {
                self.queues.remove(key);
            }
            return;
        }
        // The granted requests are always a prefix: a run of reads, or one write.
        for (i, r) in queue.requests.iter_mut().enumerate() {
            let grantable = match r.mode {
                Mode::Write => i == 0,
                Mode::Read => true,
            };
            if !grantable {
                break;
            }
            if !r.granted {
                r.granted = true;
                if let Some(c) = self.admitted.get_mut(&r.seq) {
                    c.keys_waiting -= 1;
                    if c.keys_waiting == 0 {
                        candidates.push(r.seq);
                    }
                }
            }
            if r.mode == Mode::Write && !cfg!(feature = "mutation-reads-ignore-writers") {
                break;
            }
        }
    }

    /// Marks `seq` running if all its key locks are granted and no earlier command locking
    /// everything (or, for a scan, writing) is still admitted; else parks it if only the
    /// latter holds it back.
    fn try_start(&mut self, seq: u64) -> bool {
        let earlier = |set: &BTreeSet<u64>| set.first().is_some_and(|s| *s < seq);
        let Some(cmd) = self.admitted.get(&seq) else {
            return false;
        };
        if cmd.running || cmd.keys_waiting > 0 {
            return false;
        }
        let clear = match &cmd.locks {
            Locks::Keys { .. } => {
                let after_scan = cmd.writes() && earlier(&self.read_all);
                !earlier(&self.exclusive) && !after_scan
            }
            Locks::ReadAll => !earlier(&self.exclusive) && !earlier(&self.writers),
            Locks::Exclusive => self
                .admitted
                .first_key_value()
                .is_some_and(|(s, _)| *s == seq),
        };
        if clear {
            self.parked.remove(&seq);
            if let Some(c) = self.admitted.get_mut(&seq) {
                c.running = true;
            }
        } else {
            self.parked.insert(seq);
        }
        clear
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(read: &[u8], write: &[u8]) -> Locks<u8> {
        Locks::keys(read.iter().copied(), write.iter().copied())
    }

    #[test]
    fn conflicting_commands_run_in_admission_order_and_others_at_once() {
        let mut t = LockTable::new();
        assert!(t.admit(1, keys(&[], &[1])).1, "free key");
        assert!(
            t.admit(2, keys(&[], &[2])).1,
            "another key runs in parallel"
        );
        assert!(!t.admit(3, keys(&[1], &[])).1, "reads 1 after a write of 1");
        assert!(!t.admit(4, keys(&[1], &[])).1, "so does this read");
        assert!(
            !t.admit(5, keys(&[], &[1])).1,
            "a write waits for the reads before it"
        );
        assert_eq!(t.release(2), Vec::<u64>::new());
        assert_eq!(t.release(1), vec![3, 4], "both reads share the key");
        assert_eq!(t.release(4), Vec::<u64>::new());
        assert_eq!(t.release(3), vec![5]);
        assert_eq!(t.release(5), Vec::<u64>::new());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn exclusive_waits_for_everything_before_and_holds_back_everything_after() {
        let mut t = LockTable::new();
        assert!(t.admit(1, keys(&[], &[1])).1);
        assert!(t.admit(2, keys(&[2], &[])).1);
        assert!(!t.admit(3, Locks::Exclusive).1);
        assert!(
            !t.admit(4, keys(&[], &[9])).1,
            "a free key still waits for the exclusive"
        );
        assert!(!t.admit(5, keys(&[8], &[])).1);
        assert_eq!(t.release(1), Vec::<u64>::new());
        assert_eq!(t.release(2), vec![3]);
        assert_eq!(t.release(3), vec![4, 5]);
    }

    #[test]
    fn read_all_waits_for_writers_only_and_holds_back_writers_only() {
        let mut t = LockTable::new();
        assert!(t.admit(1, keys(&[1], &[])).1);
        assert!(t.admit(2, keys(&[], &[2])).1);
        assert!(
            !t.admit(3, Locks::ReadAll).1,
            "an earlier writer is running"
        );
        assert!(
            !t.admit(4, keys(&[], &[7])).1,
            "a later writer waits for the scan"
        );
        assert!(
            !t.admit(5, keys(&[7], &[])).1,
            "a read of 7 queues behind the write"
        );
        assert!(
            t.admit(6, keys(&[6], &[])).1,
            "a later reader does not wait"
        );
        assert_eq!(t.release(2), vec![3]);
        assert_eq!(t.release(3), vec![4]);
        assert_eq!(t.release(4), vec![5]);
    }

    #[test]
    fn locks_are_normalised_and_checked() {
        let l = Locks::keys([3, 1, 1, 2], [2]);
        assert_eq!(
            l,
            Locks::Keys {
                read: vec![1, 3],
                write: vec![2]
            }
        );
        let ctx = Ctx::new(7, &l);
        ctx.check_read(&2);
        ctx.check_write(&2);
        let out = std::panic::catch_unwind(|| Ctx::new(7, &l).check_write(&1));
        let msg = *out.unwrap_err().downcast::<String>().unwrap();
        assert!(
            msg.contains("GSN 7 wrote key 1 outside its declared locks"),
            "{msg}"
        );
    }
}
