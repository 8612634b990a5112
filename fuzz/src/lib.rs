//! Shared by the fuzz targets (`fuzz_targets/`) and the seed corpus writer
//! (`src/bin/seed_corpus.rs`): a replica to hand decoded inputs to, and the real values the
//! seed corpus encodes.

pub mod seeds;

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use synod_core::{Config, Envelope, Options, Payload, Replica, ReplicaId, Snapshot, Time};

/// Whether the targets steer around the open findings (`SYNOD_FUZZ_SKIP_KNOWN=1`, set by
/// `scripts/fuzz.sh` for its fuzzing runs, never for replaying `fuzz/regressions/`), so that a
/// run goes on finding new things instead of the same crash. Each place that does so names the
/// finding's reproducer in `fuzz/regressions/`; remove it once that is fixed.
#[must_use]
pub fn skip_known() -> bool {
    static SKIP: OnceLock<bool> = OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("SYNOD_FUZZ_SKIP_KNOWN").is_some_and(|v| v == "1"))
}

/// Runs `f`; when [`skip_known`], a panic in it is an open finding's (named by `finding`) and
/// is let pass (`None`), otherwise it is a crash as anywhere else.
pub fn tolerating_known<R>(finding: &str, f: impl FnOnce() -> R) -> Option<R> {
    if !skip_known() {
        return Some(f());
    }
    let _ = finding;
    // libFuzzer's panic hook aborts the process: silence it around this call.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.ok()
}

/// The members of the group the fuzzed replica belongs to; it is the first.
pub const MEMBERS: [u16; 3] = [1, 2, 3];

/// A replica of a fresh three-member group, as `MEMBERS[0]`, driven like a node drives it
/// (every ready's records made durable at once).
pub struct Driven {
    /// The replica.
    pub replica: Replica,
    /// Its clock, nanoseconds.
    pub now: Time,
}

impl Default for Driven {
    fn default() -> Self {
        Self::new()
    }
}

impl Driven {
    /// A fresh replica at time 1 s.
    #[must_use]
    pub fn new() -> Driven {
        let config = Config::majority(MEMBERS.map(ReplicaId));
        let opts = Options::new(ReplicaId(MEMBERS[0]), config);
        let now = Time(1_000_000_000);
        Driven {
            replica: Replica::new(opts, now),
            now,
        }
    }

    /// Moves the clock on by `ms` milliseconds.
    pub fn tick(&mut self, ms: u64) {
        self.now = self.now.add_nanos(ms * 1_000_000);
    }

    /// Takes every ready out and reports its records durable, as the node's storage task does.
    pub fn drain(&mut self) {
        for _ in 0..64 {
            let Some(ready) = self.replica.poll_ready() else {
                return;
            };
            self.replica.handle_persisted(self.now, ready.seq);
        }
    }

    /// A message from a peer, then whatever it makes ready.
    pub fn message(&mut self, envelope: Envelope) {
        self.replica.handle_message(self.now, envelope);
        self.drain();
    }

    /// A snapshot fetched from a peer, as the node installs it; then a little life after it
    /// (timers, a proposal), where a snapshot that broke an invariant would show.
    pub fn install(&mut self, snapshot: Snapshot) -> bool {
        let installed = self.replica.install_snapshot(self.now, Arc::new(snapshot));
        self.drain();
        self.live();
        installed
    }

    /// Timers firing and a client's proposal.
    pub fn live(&mut self) {
        self.tick(50);
        self.replica.handle_timeout(self.now);
        self.drain();
        let _ = self
            .replica
            .propose(self.now, Payload::Command(bytes::Bytes::from_static(b"x")));
        self.drain();
        self.tick(1_000);
        self.replica.handle_timeout(self.now);
        self.drain();
    }
}
