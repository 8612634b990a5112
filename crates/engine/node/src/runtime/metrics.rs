//! `/metrics`: the node's and its groups' counters in Prometheus text format.

use super::{CommitDone, Group, Runtime};

/// Node-level counters for `/metrics`.
#[derive(Debug, Default, Clone)]
pub(super) struct NodeMetrics {
    pub(super) commits: u64,
    pub(super) committed_records: u64,
    /// Commit (fsync) durations: counts per bucket upper bound in seconds, plus sum.
    pub(super) fsync_buckets: [u64; FSYNC_BUCKETS.len()],
    pub(super) fsync_sum: f64,
    pub(super) snapshots: u64,
    pub(super) forged_messages: u64,
    /// Peer connections that ended without this node closing them (`Inbound::Lost`).
    pub(super) peers_lost: u64,
    /// Times the event loop waited for an executor to make room (back-pressure).
    pub(super) executor_stalls: u64,
    /// Groups wiped on this node because their state could not be trusted (they rejoin).
    pub(super) repairs: u64,
}

pub(super) const FSYNC_BUCKETS: [f64; 10] = [
    0.000_25,
    0.000_5,
    0.001,
    0.002,
    0.004,
    0.008,
    0.016,
    0.032,
    0.064,
    f64::INFINITY,
];

impl NodeMetrics {
    pub(super) fn record_commit(&mut self, c: &CommitDone) {
        self.commits += 1;
        self.committed_records += c.records as u64;
        let secs = c.fsync.as_secs_f64();
        self.fsync_sum += secs;
        for (i, le) in FSYNC_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.fsync_buckets[i] += 1;
            }
        }
    }
}

/// A per-group metric: name, help, kind, and how to read it.
type GroupMetric = (&'static str, &'static str, &'static str, fn(&Group) -> f64);

const GROUP_METRICS: [GroupMetric; 17] = [
    (
        "synod_group_rejoining",
        "1 while this node's copy of the group rejoins after its state was lost or wiped: no \
         votes below its fence, writes refused until it is past it.",
        "gauge",
        |g| f64::from(u8::from(g.replica.rejoin_status().is_some())),
    ),
    (
        "synod_applied_gsn",
        "Slots whose commands have all finished executing (the next GSN).",
        "gauge",
        |g| g.host.applied().0 as f64,
    ),
    (
        "synod_delivered_gsn",
        "Slots agreed and delivered here (the next GSN); ahead of applied while commands run.",
        "gauge",
        |g| g.replica.applied().0 as f64,
    ),
    (
        "synod_executor_backlog",
        "Commands admitted by the group's executor and not finished.",
        "gauge",
        |g| g.host.backlog() as f64,
    ),
    (
        "synod_pending_proposals",
        "Proposals accepted here, not yet applied.",
        "gauge",
        |g| g.replica.pending_proposals() as f64,
    ),
    (
        "synod_has_quorum",
        "1 if a quorum is reachable.",
        "gauge",
        |g| f64::from(u8::from(g.replica.has_quorum())),
    ),
    (
        "synod_proposals_total",
        "Proposals accepted.",
        "counter",
        |g| g.replica.metrics().proposals as f64,
    ),
    (
        "synod_proposals_refused_total",
        "Proposals refused.",
        "counter",
        |g| g.replica.metrics().proposals_refused as f64,
    ),
    (
        "synod_preemptions_total",
        "Attempts pre-empted by a higher ballot.",
        "counter",
        |g| g.replica.metrics().preemptions as f64,
    ),
    (
        "synod_backoffs_total",
        "Backoffs after pre-emption.",
        "counter",
        |g| g.replica.metrics().backoffs as f64,
    ),
    (
        "synod_takeovers_total",
        "Slots taken over from a silent owner or a stalled frontier.",
        "counter",
        |g| g.replica.metrics().takeovers as f64,
    ),
    (
        "synod_takeover_backoff",
        "Doublings of the take-over delay now: a silent owner is taken over after about \
         takeover_ms x 2^this.",
        "gauge",
        |g| f64::from(g.replica.takeover_backoff()),
    ),
    ("synod_skips_total", "Own slots skipped.", "counter", |g| {
        g.replica.metrics().skipped as f64
    }),
    (
        "synod_dropped_messages_total",
        "Malformed or out-of-configuration peer messages.",
        "counter",
        |g| g.replica.metrics().dropped_messages as f64,
    ),
    (
        "synod_catchup_requests_total",
        "Catch-up requests sent.",
        "counter",
        |g| g.replica.metrics().catchup_requests as f64,
    ),
    (
        "synod_snapshots_installed_total",
        "Snapshots installed from a peer.",
        "counter",
        |g| g.replica.metrics().snapshots_installed as f64,
    ),
    (
        "synod_snapshots_refused_total",
        "Snapshots from a peer refused: their engine state no replica could have made.",
        "counter",
        |g| g.replica.metrics().snapshots_refused as f64,
    ),
];

impl Runtime {
    pub(super) fn render_metrics(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut family = |name: &str, help: &str, kind: &str, samples: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let one = |v: f64| [(String::new(), v)];
        let m = &self.metrics;
        family(
            "synod_commits_total",
            "Durable storage commits (one fsync each).",
            "counter",
            &one(m.commits as f64),
        );
        family(
            "synod_committed_records_total",
            "Records made durable.",
            "counter",
            &one(m.committed_records as f64),
        );
        let buckets: Vec<(String, f64)> = FSYNC_BUCKETS
            .iter()
            .zip(m.fsync_buckets)
            .map(|(le, n)| {
                let le = if le.is_infinite() {
                    "+Inf".to_string()
                } else {
                    le.to_string()
                };
                (format!("{{le=\"{le}\"}}"), n as f64)
            })
            .collect();
        family(
            "synod_fsync_seconds_bucket",
            "Storage commit latency.",
            "histogram",
            &buckets,
        );
        family(
            "synod_fsync_seconds_sum",
            "Storage commit latency, sum.",
            "counter",
            &one(m.fsync_sum),
        );
        family(
            "synod_fsync_seconds_count",
            "Storage commits timed.",
            "counter",
            &one(m.commits as f64),
        );
        family(
            "synod_snapshots_total",
            "Snapshots taken.",
            "counter",
            &one(m.snapshots as f64),
        );
        family(
            "synod_forged_messages_total",
            "Peer messages dropped for claiming another sender.",
            "counter",
            &one(m.forged_messages as f64),
        );
        family(
            "synod_peer_connections_lost_total",
            "Peer connections that ended without this node closing them (the peer's groups \
             suspect it at once).",
            "counter",
            &one(m.peers_lost as f64),
        );
        family(
            "synod_executor_stalls_total",
            "Times the event loop waited for an executor to make room (back-pressure).",
            "counter",
            &one(m.executor_stalls as f64),
        );
        family(
            "synod_group_repairs_total",
            "Groups wiped on this node because their state could not be trusted (corrupt log, \
             unreadable snapshot); each rejoins from its peers behind a fence.",
            "counter",
            &one(m.repairs as f64),
        );
        family(
            "synod_collecting_readies",
            "Readies waiting for the next commit.",
            "gauge",
            &one(self.collecting.len() as f64),
        );
        let corrupt: Vec<(String, f64)> = self
            .corrupt
            .keys()
            .map(|id| (format!("{{group=\"{id}\"}}"), 1.0))
            .collect();
        family(
            "synod_group_corrupt",
            "1 for a group whose log on this node is corrupt (quarantined: no votes, no reads).",
            "gauge",
            &corrupt,
        );
        for (name, help, kind, read) in GROUP_METRICS {
            let samples: Vec<(String, f64)> = self
                .groups
                .values()
                .map(|g| (format!("{{group=\"{}\"}}", g.id), read(g)))
                .collect();
            family(name, help, kind, &samples);
        }
        let t = self.transport.stats();
        let get = synod_transport::TransportStats::get;
        let transport = [
            (
                "synod_transport_frames_sent_total",
                "Frames written to peers.",
                get(&t.sent),
            ),
            (
                "synod_transport_frames_received_total",
                "Frames received from peers.",
                get(&t.received),
            ),
            (
                "synod_transport_dropped_queue_full_total",
                "Frames dropped: a peer queue was full.",
                get(&t.dropped_queue_full),
            ),
            (
                "synod_transport_refused_total",
                "Peer connections refused (TLS or identity).",
                get(&t.refused),
            ),
            (
                "synod_transport_bad_frames_total",
                "Connections closed after a bad frame.",
                get(&t.bad_frames),
            ),
        ];
        for (name, help, v) in transport {
            family(name, help, "counter", &one(v as f64));
        }
        out
    }
}
