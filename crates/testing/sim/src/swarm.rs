//! Per-seed scenario parameters ("swarm testing": every seed draws its own mix of faults, in
//! the spirit of TigerBeetle's VOPR and FoundationDB's simulator).

use rand::Rng;

/// Everything a run varies. Drawn from the seed by [`Scenario::from_seed`]; tests and the
/// stall benchmark also build one by hand.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Initial members.
    pub replicas: u16,
    /// Weak reservations on (Mencius-style owned slots) or off (contention).
    pub reservations: bool,
    /// Preserve-local-sequence mode.
    pub preserve_local_order: bool,
    /// Slots between a configuration change's delivery and its effect.
    pub config_lag: u64,
    /// Per-proposer window.
    pub window: usize,
    /// Commands per batch.
    pub batch_max: usize,
    /// Client commands to submit.
    pub commands: usize,
    /// Mean gap between client submissions, microseconds.
    pub client_gap_us: u64,
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Minimum one-way delay, microseconds.
    pub delay_min_us: u64,
    /// Extra random delay (uniform up to this), microseconds; also reorders.
    pub delay_jitter_us: u64,
    /// Per fault tick: probability of starting a partition.
    pub partition_p: f64,
    /// Per fault tick: probability of crashing a replica.
    pub crash_p: f64,
    /// Per fault tick: probability of pausing a replica.
    pub pause_p: f64,
    /// Per fault tick: probability of a membership or policy change.
    pub reconfig_p: f64,
    /// Probability a crash keeps a random prefix of unsynced records (torn tail).
    pub torn_p: f64,
    /// Probability a crash loses the replica's whole disk (a corrupt log wiped, a replaced
    /// disk): it restarts with only a fence record and must rejoin. Applied only while no
    /// other member is rejoining and the group's policy can decide without the victim.
    pub amnesia_p: f64,
    /// Compact when this many slots were delivered since the last snapshot.
    pub snapshot_every: u64,
    /// Compact past the GC watermark (forcing laggards onto snapshots).
    pub aggressive_gc: bool,
    /// Length of the fault phase, milliseconds of simulated time.
    pub fault_ms: u64,
    /// Deadline of the liveness phase, milliseconds.
    pub liveness_ms: u64,
    /// Take-over timeout, microseconds.
    pub takeover_us: u64,
    /// Heartbeat (and retransmission) interval, microseconds.
    pub heartbeat_us: u64,
    /// Replicas go quiet when the group is idle (`Options::quiesce`).
    pub quiesce: bool,
    /// The client falls silent this long after every 50 commands (0: never), so that the
    /// group goes quiet and wakes again, under whatever faults run meanwhile.
    pub idle_spell_ms: u64,
    /// Probability that a crash is a process's death its peers hear of at once, through the
    /// connections it had (`Replica::handle_peer_lost`); a tenth of it, per fault tick, that a
    /// live peer is reported lost (a false suspicion).
    pub lost_hint_p: f64,
}

impl Scenario {
    /// A quiet cluster: no faults at all.
    #[must_use]
    pub fn calm(replicas: u16, reservations: bool) -> Scenario {
        Scenario {
            replicas,
            reservations,
            preserve_local_order: false,
            config_lag: 64,
            window: 8,
            batch_max: 64,
            commands: 300,
            client_gap_us: 500,
            loss: 0.0,
            duplicate: 0.0,
            delay_min_us: 1_000,
            delay_jitter_us: 0,
            partition_p: 0.0,
            crash_p: 0.0,
            pause_p: 0.0,
            reconfig_p: 0.0,
            torn_p: 0.0,
            amnesia_p: 0.0,
            snapshot_every: 80,
            aggressive_gc: false,
            fault_ms: 3_000,
            liveness_ms: 20_000,
            takeover_us: 5_000,
            heartbeat_us: 2_000,
            quiesce: true,
            idle_spell_ms: 0,
            lost_hint_p: 0.0,
        }
    }

    /// Draws a scenario from `rng`.
    pub fn from_seed(rng: &mut impl Rng) -> Scenario {
        let replicas = [1, 3, 3, 3, 4, 5, 5, 7][rng.random_range(0..8)];
        let faulty = rng.random_bool(0.9);
        let f = |rng: &mut dyn FnMut() -> f64, max: f64| if faulty { rng() * max } else { 0.0 };
        let mut u = || rng.random::<f64>();
        let loss = f(&mut u, 0.2);
        let duplicate = f(&mut u, 0.3);
        let partition_p = f(&mut u, 0.03);
        let crash_p = f(&mut u, 0.02);
        let pause_p = f(&mut u, 0.02);
        let reconfig_p = f(&mut u, 0.02);
        let torn_p = u();
        Scenario {
            replicas,
            reservations: rng.random_bool(0.5),
            preserve_local_order: rng.random_bool(0.3),
            config_lag: [16, 32, 64, 128][rng.random_range(0..4)],
            window: rng.random_range(1..=8),
            batch_max: [1, 4, 16, 64][rng.random_range(0..4)],
            commands: rng.random_range(200..=1_000),
            client_gap_us: rng.random_range(200..=5_000),
            loss,
            duplicate,
            delay_min_us: rng.random_range(100..=10_000),
            delay_jitter_us: rng.random_range(0..=20_000),
            partition_p,
            crash_p,
            pause_p,
            reconfig_p,
            torn_p,
            snapshot_every: rng.random_range(50..=100),
            aggressive_gc: rng.random_bool(0.3),
            fault_ms: rng.random_range(3_000..=8_000),
            liveness_ms: 60_000,
            takeover_us: rng.random_range(10_000..=60_000),
            heartbeat_us: rng.random_range(5_000..=20_000),
            // Drawn last, so that adding it left every earlier seed's scenario as it was.
            amnesia_p: if faulty && rng.random_bool(0.4) {
                rng.random_range(0.05..=0.5)
            } else {
                0.0
            },
            quiesce: rng.random_bool(0.8),
            idle_spell_ms: if rng.random_bool(0.5) {
                rng.random_range(50..=500)
            } else {
                0
            },
            // Drawn last, like `amnesia_p` (the fields are evaluated in this order).
            lost_hint_p: if faulty && rng.random_bool(0.5) {
                rng.random_range(0.3..=1.0)
            } else {
                0.0
            },
        }
    }
}
