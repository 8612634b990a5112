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

/// Whether a snapshot's configuration history is one a replica can run on, as a replica's own
/// snapshot's always is: not empty, in increasing slot order, the first entry governing the
/// snapshot's first slot, none further ahead of it than a configuration change can be
/// (`config_lag`), and every configuration valid (`Config::validate`). The open findings
/// `fuzz/regressions/snapshot/` are snapshots for which this is false: nothing checks it when
/// a snapshot is decoded or installed.
#[must_use]
pub fn configs_valid(snapshot: &Snapshot) -> bool {
    // The history's entries are private; its encoding is theirs (a list of slot and config).
    let encoded = postcard::to_stdvec(&snapshot.core.configs).expect("encoding into a Vec");
    let Ok(entries) = postcard::from_bytes::<Vec<(synod_core::Slot, Config)>>(&encoded) else {
        return false;
    };
    let next = snapshot.next_slot.0;
    let lag = synod_core::GroupParams::default().config_lag;
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return false;
    };
    first.0.0 <= next
        && last.0.0 < next.saturating_add(lag)
        && entries.windows(2).all(|w| w[0].0 < w[1].0)
        && entries.iter().all(|(_, c)| c.validate().is_ok())
}

/// Whether a decoded snapshot's core state is one a replica could have made: its configuration
/// history as [`configs_valid`] says, and every member's rejoin delivered before the snapshot
/// with its fence where a delivered rejoin puts it (`4 × config_lag` above), and what it holds
/// back and has delivered consistent (a proposal held back under its own proposer and LSN, and
/// not delivered). The open findings
/// of `fuzz/regressions/snapshot/` are snapshots for which this is false (one whose fence lies
/// 1.4 × 10^12 slots ahead makes the replica that installs it allocate without bound).
#[must_use]
pub fn snapshot_sane(snapshot: &Snapshot) -> bool {
    let reach = 4 * synod_core::GroupParams::default().config_lag;
    let core = &snapshot.core;
    let delivered = |p: &synod_core::ProposalId| {
        core.delivered
            .get(&p.proposer)
            .is_some_and(|d| d.contains(p.lsn))
    };
    configs_valid(snapshot)
        && core
            .rejoined
            .values()
            .all(|r| r.at < snapshot.next_slot && r.fence.0 <= r.at.0.saturating_add(reach))
        && core
            .delivered
            .values()
            .all(|d| d.sparse.iter().all(|l| *l > d.contiguous))
        // Held back: proposals of that proposer, under their own LSN, not delivered yet.
        && core.held.iter().all(|(r, held)| {
            held.iter()
                .all(|(lsn, p)| p.id.proposer == *r && p.id.lsn == *lsn && !delivered(&p.id))
        })
}

/// The key-value store's state with the standard library's collections, which decode lengths
/// cautiously (the store's persistent maps allocate whatever length the bytes announce).
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct KvLengths {
    entries: std::collections::BTreeMap<String, synod_kv::Entry>,
    tokens: std::collections::BTreeMap<String, (u64, synod_kv::KvOutput)>,
    token_order: Vec<String>,
}

/// Whether the key-value store can decode `state` (its snapshot encoding) without the open
/// finding `fuzz/regressions/app_state/kv-huge-map-length`: a length that the bytes do not
/// hold makes the store's decoding allocate that many entries at once, and abort.
#[must_use]
pub fn kv_lengths_held(state: &[u8]) -> bool {
    match state.split_first() {
        Some((_, body)) => postcard::from_bytes::<KvLengths>(body).is_ok(),
        None => true,
    }
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
