//! A CPU-heavy test application shared by the equivalence tests and the benchmark: each
//! command hashes the values of the keys it locked, then hashes `work` KiB more, writes a hash
//! to each key it writes and returns the final hash. Any missed or reordered conflict changes
//! an output or the state.

#![allow(dead_code, unreachable_pub)]

use imbl::OrdMap;
use sha2::{Digest, Sha256};
use synod_exec::{Application, Ctx, KeyedState, Locks};

pub type Hash = [u8; 32];

#[derive(Clone, Debug)]
pub enum Cmd {
    /// Reads `read`, writes `write`, hashes `work` KiB.
    Touch {
        read: Vec<u32>,
        write: Vec<u32>,
        work: u32,
    },
    /// Hashes the whole state (a scan: locks everything for reading).
    Scan,
}

#[derive(Default)]
pub struct HashApp {
    pub state: KeyedState<u32, Hash>,
}

const PAD: [u8; 1024] = [0x5a; 1024];

impl Application for HashApp {
    type Key = u32;
    type Command = Cmd;
    type Output = Hash;
    type Snapshot = OrdMap<u32, Hash>;

    fn locks(&self, cmd: &Cmd) -> Locks<u32> {
        match cmd {
            Cmd::Touch { read, write, .. } => Locks::keys(read.clone(), write.clone()),
            Cmd::Scan => Locks::ReadAll,
        }
    }

    fn apply(&self, ctx: &Ctx<'_, u32>, cmd: Cmd) -> Hash {
        let mut h = Sha256::new();
        h.update(ctx.gsn().to_le_bytes());
        match cmd {
            Cmd::Touch { read, write, work } => {
                let mut keys: Vec<u32> = read.iter().chain(&write).copied().collect();
                keys.sort_unstable();
                keys.dedup();
                for k in &keys {
                    h.update(k.to_le_bytes());
                    h.update(self.state.get(ctx, k).unwrap_or([0; 32]));
                }
                let mut out: Hash = h.finalize().into();
                for _ in 0..work {
                    out = Sha256::new()
                        .chain_update(out)
                        .chain_update(PAD)
                        .finalize()
                        .into();
                }
                for k in &write {
                    let v: Hash = Sha256::new()
                        .chain_update(out)
                        .chain_update(k.to_le_bytes())
                        .finalize()
                        .into();
                    self.state.insert(ctx, *k, v);
                }
                out
            }
            Cmd::Scan => {
                for (k, v) in self.state.scan(ctx) {
                    h.update(k.to_le_bytes());
                    h.update(v);
                }
                h.finalize().into()
            }
        }
    }

    fn snapshot(&self) -> OrdMap<u32, Hash> {
        self.state.copy()
    }

    fn restore(&self, snapshot: OrdMap<u32, Hash>) {
        self.state.replace(snapshot);
    }
}

/// The state as bytes, so equality is checked byte for byte.
pub fn encode(state: &OrdMap<u32, Hash>) -> Vec<u8> {
    let mut out = Vec::with_capacity(state.len() * 36);
    for (k, v) in state {
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// What a run produced: every output in GSN order and the state at each snapshot point and
/// at the end, encoded.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub outputs: Vec<Hash>,
    pub snapshots: Vec<Vec<u8>>,
    pub last: Vec<u8>,
}

/// The reference: apply in GSN order on one thread.
pub fn serial(cmds: &[Cmd], snapshot_before: &[usize]) -> Outcome {
    let app = HashApp::default();
    let mut outputs = Vec::new();
    let mut snapshots = Vec::new();
    for (gsn, cmd) in cmds.iter().enumerate() {
        for _ in snapshot_before.iter().filter(|s| **s == gsn) {
            snapshots.push(encode(&app.snapshot()));
        }
        let locks = app.locks(cmd);
        outputs.push(app.apply(&Ctx::new(gsn as u64, &locks), cmd.clone()));
    }
    Outcome {
        outputs,
        snapshots,
        last: encode(&app.snapshot()),
    }
}

/// Workload: `n` commands over `keys` keys; each writes one key and reads another, and with
/// probability `conflict` (per mille) both are key 0, so conflicts happen at that rate.
pub fn workload(n: usize, keys: u32, conflict_permille: u32, work: u32, seed: u64) -> Vec<Cmd> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            if (next() % 1000) < u64::from(conflict_permille) {
                Cmd::Touch {
                    read: vec![0],
                    write: vec![0],
                    work,
                }
            } else {
                // Disjoint from every other non-conflicting command: key i+1 (mod keys, 0 kept
                // for conflicts).
                let k = 1 + (i as u32 % keys.max(2).saturating_sub(1));
                Cmd::Touch {
                    read: vec![],
                    write: vec![k],
                    work,
                }
            }
        })
        .collect()
}
