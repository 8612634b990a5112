//! Snapshot transfer between nodes: a node that needs a snapshot pulls the peer's latest one
//! in chunks ([`Frame::SnapshotRequest`] / [`Frame::SnapshotChunk`]), one request per chunk,
//! so a transfer resumes where it stopped and never floods the receiver.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use synod_core::{GroupId, ReplicaId, Snapshot};
use synod_transport::frame::Frame;

use super::{Runtime, now};

pub(super) struct Incoming {
    pub(super) from: ReplicaId,
    pub(super) next_slot: u64,
    pub(super) total: u64,
    pub(super) bytes: Vec<u8>,
    pub(super) last: Instant,
}

pub(super) fn encode_snapshot(s: &Snapshot) -> Bytes {
    Bytes::from(postcard::to_stdvec(s).expect("encoding into a Vec cannot fail"))
}

/// A snapshot and its encoding (served to peers in chunks), sharing one copy of the
/// application state, which is most of both: the encoding ends with it (the last field, its
/// bytes as they are), so the snapshot's `app` becomes a slice of the encoding.
pub(super) fn with_encoding(mut snapshot: Snapshot) -> (Arc<Snapshot>, Bytes) {
    let bytes = encode_snapshot(&snapshot);
    let start = bytes.len().saturating_sub(snapshot.app.len());
    if bytes[start..] == snapshot.app[..] {
        snapshot.app = bytes.slice(start..);
    }
    (Arc::new(snapshot), bytes)
}

/// Like [`with_encoding`], for a snapshot that has its encoding already (read from disk or
/// received): `app` is re-pointed into `bytes` where it matches.
pub(super) fn share_app(snapshot: &mut Snapshot, bytes: &Bytes) {
    let start = bytes.len().saturating_sub(snapshot.app.len());
    if bytes[start..] == snapshot.app[..] {
        snapshot.app = bytes.slice(start..);
    }
}

/// Bytes of snapshot per chunk.
pub(super) const SNAPSHOT_CHUNK: usize = 256 * 1024;

impl Runtime {
    /// Sends one chunk of our latest snapshot of `group` (if it covers what is asked).
    pub(super) fn serve_snapshot(
        &mut self,
        to: ReplicaId,
        group: GroupId,
        min_next_slot: u64,
        offset: u64,
    ) {
        let Some(g) = self.groups.get(&group) else {
            return;
        };
        let Some((snap, bytes)) = &g.snapshot else {
            return;
        };
        if snap.next_slot.0 < min_next_slot {
            return;
        }
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = (start + SNAPSHOT_CHUNK).min(bytes.len());
        let chunk = Frame::SnapshotChunk {
            group,
            next_slot: snap.next_slot.0,
            total: bytes.len() as u64,
            offset: start as u64,
            data: bytes.slice(start..end),
        };
        let _ = self.transport.send(to, &chunk);
    }

    /// Appends a chunk; asks for the next one, or installs the snapshot once complete.
    pub(super) fn receive_snapshot(
        &mut self,
        from: ReplicaId,
        group: GroupId,
        next_slot: u64,
        total: u64,
        offset: u64,
        data: &[u8],
    ) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        if total > 4 << 30 {
            tracing::warn!(group = %group, from = %from, total, "refused a snapshot larger than 4 GiB");
            return;
        }
        let fresh = || Incoming {
            from,
            next_slot,
            total,
            bytes: Vec::new(),
            last: Instant::now(),
        };
        let incoming = g.receiving.get_or_insert_with(fresh);
        if incoming.from != from || incoming.next_slot != next_slot || incoming.total != total {
            // A different snapshot: start over with this one.
            *incoming = fresh();
        }
        if offset != incoming.bytes.len() as u64 {
            return; // a duplicate or out-of-order chunk: the next request asks again
        }
        incoming.bytes.extend_from_slice(data);
        incoming.last = Instant::now();
        if (incoming.bytes.len() as u64) < total {
            let ask = Frame::SnapshotRequest {
                group,
                min_next_slot: next_slot,
                offset: incoming.bytes.len() as u64,
            };
            let _ = self.transport.send(from, &ask);
            return;
        }
        let bytes = std::mem::take(&mut incoming.bytes);
        g.receiving = None;
        let bytes = Bytes::from(bytes);
        let mut snapshot: Snapshot = match postcard::from_bytes(&bytes) {
            Ok(s) => s,
            Err(e) => {
                return tracing::warn!(group = %group, from = %from, error = %e, "an undecodable snapshot; will ask again");
            }
        };
        share_app(&mut snapshot, &bytes);
        let snapshot = Arc::new(snapshot);
        // The replica installs a snapshot only past what it has delivered (`applied`).
        if snapshot.next_slot > g.replica.applied() {
            // The state is replaced at this place in the order: commands handed over before
            // run first (their effects are overwritten), later ones run after it. It is
            // decoded before the replica moves past the slots it covers.
            if let Err(e) = g.host.install(&snapshot.app, snapshot.next_slot) {
                return tracing::warn!(group = %group, from = %from, error = %e, "a snapshot with undecodable state");
            }
            let installed = g.replica.install_snapshot(now(), snapshot.clone());
            debug_assert!(
                installed,
                "a snapshot past the delivered prefix is installed"
            );
            tracing::info!(group = %group, from = %from, next_slot, "installed a snapshot");
            g.handed_to = snapshot.next_slot;
            g.applied_floor = snapshot.next_slot;
            g.snapshot = Some((snapshot, bytes));
        }
        self.collect(group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_core::config::ConfigHistory;
    use synod_core::{Config, CoreState, ReplicaId, Slot, Time};

    fn snapshot(app: Vec<u8>) -> Snapshot {
        Snapshot {
            next_slot: Slot(42),
            core: CoreState {
                configs: ConfigHistory::new(Config::majority([0, 1, 2].map(ReplicaId))),
                delivered: Default::default(),
                agreed_time: Time(7),
                held: Default::default(),
                rejoined: Default::default(),
            },
            app: Bytes::from(app),
        }
    }

    fn within(part: &Bytes, whole: &Bytes) -> bool {
        let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
        p >= w && p + part.len() <= w + whole.len()
    }

    #[test]
    fn a_snapshot_and_its_encoding_hold_the_application_state_once() {
        let app: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (shared, bytes) = with_encoding(snapshot(app.clone()));
        assert_eq!(shared.app, Bytes::from(app.clone()));
        assert!(within(&shared.app, &bytes), "the state is not shared");
        let decoded: Snapshot = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, *shared);

        // The same for a snapshot decoded from its encoding (received, or read from disk).
        let mut received: Snapshot = postcard::from_bytes(&bytes).unwrap();
        assert!(!within(&received.app, &bytes));
        share_app(&mut received, &bytes);
        assert!(within(&received.app, &bytes));
        assert_eq!(received, *shared);
    }
}
