//! Snapshot transfer between nodes: a node that needs a snapshot pulls the peer's latest one
//! in chunks ([`Frame::SnapshotRequest`] / [`Frame::SnapshotChunk`]), one request per chunk,
//! so a transfer resumes where it stopped and never floods the receiver.
//!
//! What is sent is one stream: the length of the snapshot's encoding (8 bytes, little
//! endian), the encoding (the core state and the application's inline state), then the rest
//! of a disk-backed application's state as its checkpoint writes it. The rest is written to a
//! file the first time a peer asks for it, on a blocking thread, from the consistent view the
//! checkpoint holds; until it is, requests go unanswered and the peer asks again. The
//! receiver writes the stream to a file as it comes and builds the state from that file on a
//! blocking thread (a disk-backed application stages its store there), so neither side ever
//! holds a disk-backed state in memory, and the event loop never waits for one.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use synod_core::{GroupId, ReplicaId, Slot, Snapshot};
use synod_transport::frame::Frame;

use super::{Background, Runtime, now};
use crate::host::{Export, Staged, Stager};

/// A transfer being received: the stream so far, in a file.
pub(super) struct Incoming {
    pub(super) from: ReplicaId,
    pub(super) next_slot: u64,
    pub(super) total: u64,
    file: File,
    /// Removed when the transfer is dropped unfinished (`None` once handed to staging).
    path: Option<PathBuf>,
    received: u64,
    pub(super) last: Instant,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// This node's latest snapshot of a group, as served to peers.
pub(super) struct Latest {
    pub(super) snapshot: Arc<Snapshot>,
    /// The start of the stream: the encoding's length, then the encoding. The snapshot's
    /// inline application state is a slice of it (held once).
    pub(super) head: Bytes,
    /// The rest of the stream.
    pub(super) rest: Rest,
}

/// The part of a snapshot's stream after its encoding.
pub(super) enum Rest {
    /// Nothing: the application keeps its state in memory, all of it inline.
    Nothing,
    /// Written to a file when a peer first asks for it.
    Unwritten(Arc<dyn Export>),
    /// Being written.
    Writing,
    /// Written.
    Written(Written),
    /// Not available from this node (it restarted, or installed this snapshot from a peer)
    /// until its next checkpoint.
    Unavailable,
}

/// The rest of a snapshot's stream in a file, removed when no longer served.
pub(super) struct Written {
    file: File,
    path: PathBuf,
    len: u64,
}

impl Drop for Written {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A snapshot with the start of its stream; the snapshot's inline application state becomes
/// a slice of it (the encoding ends with it: the last field, its bytes as they are).
pub(super) fn with_head(mut snapshot: Snapshot) -> (Arc<Snapshot>, Bytes) {
    let encoded = postcard::to_stdvec(&snapshot).expect("encoding into a Vec cannot fail");
    let mut head = Vec::with_capacity(8 + encoded.len());
    head.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
    head.extend_from_slice(&encoded);
    let head = Bytes::from(head);
    share_app(&mut snapshot, &head);
    (Arc::new(snapshot), head)
}

/// Re-points `snapshot.app` into `bytes`, where `bytes` ends with it.
pub(super) fn share_app(snapshot: &mut Snapshot, bytes: &Bytes) {
    let start = bytes.len().saturating_sub(snapshot.app.len());
    if bytes[start..] == snapshot.app[..] {
        snapshot.app = bytes.slice(start..);
    }
}

/// Bytes of snapshot per chunk.
pub(super) const SNAPSHOT_CHUNK: usize = 256 * 1024;

/// The largest snapshot encoding a node reads into memory (an in-memory application's whole
/// state); the rest of a stream may be larger.
const HEAD_MAX: u64 = 4 << 30;

/// The largest stream a node accepts.
const STREAM_MAX: u64 = 1 << 40;

/// Where a group's transfer files go.
pub(super) fn transfer_path(dir: &Path, group: GroupId, what: &str) -> PathBuf {
    dir.join(format!("{}.{what}", group.0))
}

/// Writes the rest of a snapshot's stream to `path`.
fn write_rest(export: &dyn Export, path: &Path) -> std::io::Result<Written> {
    // Read back in chunks as the peer asks for them.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    export.write(&mut out)?;
    let file = out
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    let len = file.metadata()?.len();
    Ok(Written {
        file,
        path: path.to_path_buf(),
        len,
    })
}

/// [`write_rest`], leaving no file behind when it fails.
fn write_rest_or_remove(export: &dyn Export, path: &Path) -> std::io::Result<Written> {
    let written = write_rest(export, path);
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Reads a received stream from `path` and builds its state (on a blocking thread).
fn stage(
    path: &Path,
    total: u64,
    stager: Stager,
) -> Result<(Arc<Snapshot>, Bytes, Staged), String> {
    let mut input = BufReader::with_capacity(1 << 20, File::open(path).map_err(|e| e.to_string())?);
    let mut len = [0; 8];
    input.read_exact(&mut len).map_err(|e| e.to_string())?;
    let head_len = u64::from_le_bytes(len);
    if head_len > HEAD_MAX || head_len > total.saturating_sub(8) {
        return Err(format!(
            "a snapshot encoding of {head_len} bytes in a stream of {total}"
        ));
    }
    let mut encoded = vec![0; usize::try_from(head_len).map_err(|e| e.to_string())?];
    input.read_exact(&mut encoded).map_err(|e| e.to_string())?;
    let snapshot: Snapshot = postcard::from_bytes(&encoded).map_err(|e| e.to_string())?;
    let mut rest = input.take(total - 8 - head_len);
    let staged = stager(&snapshot.app, &mut rest).map_err(|e| e.to_string())?;
    if rest.limit() != 0 {
        return Err(format!(
            "{} bytes of the stream were not read",
            rest.limit()
        ));
    }
    let (snapshot, head) = with_head(snapshot);
    Ok((snapshot, head, staged))
}

impl Runtime {
    /// Sends one chunk of our latest snapshot of `group` (if it covers what is asked).
    pub(super) fn serve_snapshot(
        &mut self,
        to: ReplicaId,
        group: GroupId,
        min_next_slot: u64,
        offset: u64,
    ) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        let Some(latest) = &mut g.snapshot else {
            return;
        };
        let next_slot = latest.snapshot.next_slot;
        if next_slot.0 < min_next_slot {
            return;
        }
        let rest_len = match &latest.rest {
            Rest::Nothing => 0,
            Rest::Written(w) => w.len,
            Rest::Writing | Rest::Unavailable => return,
            Rest::Unwritten(export) => {
                let export = export.clone();
                latest.rest = Rest::Writing;
                let path =
                    transfer_path(&self.transfer_dir, group, &format!("{}.out", next_slot.0));
                let background = self.background.clone();
                tokio::task::spawn_blocking(move || {
                    let started = Instant::now();
                    let result = write_rest_or_remove(&*export, &path);
                    tracing::info!(group = %group, ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "checkpoint written for a peer");
                    let _ = background.send(Background::Exported {
                        group,
                        next_slot,
                        result,
                    });
                });
                return;
            }
        };
        let head = &latest.head;
        let total = head.len() as u64 + rest_len;
        let start = offset.min(total);
        let end = (start + SNAPSHOT_CHUNK as u64).min(total);
        let data = if end <= head.len() as u64 {
            head.slice(start as usize..end as usize)
        } else {
            let mut data = Vec::with_capacity((end - start) as usize);
            if start < head.len() as u64 {
                data.extend_from_slice(&head[start as usize..]);
            }
            let Rest::Written(w) = &latest.rest else {
                unreachable!("a stream longer than its head has a written rest");
            };
            let from = start.max(head.len() as u64) - head.len() as u64;
            let mut buf = vec![0; (end - start) as usize - data.len()];
            if let Err(e) = w.file.read_exact_at(&mut buf, from) {
                return tracing::warn!(group = %group, error = %e, "cannot read a checkpoint file");
            }
            data.extend_from_slice(&buf);
            Bytes::from(data)
        };
        let chunk = Frame::SnapshotChunk {
            group,
            next_slot: next_slot.0,
            total,
            offset: start,
            data,
        };
        let _ = self.transport.send(to, &chunk);
    }

    /// The rest of a snapshot's stream was written for a peer (which asks again).
    pub(super) fn exported(
        &mut self,
        group: GroupId,
        next_slot: Slot,
        result: std::io::Result<Written>,
    ) {
        let Some(latest) = self
            .groups
            .get_mut(&group)
            .and_then(|g| g.snapshot.as_mut())
        else {
            return;
        };
        if latest.snapshot.next_slot != next_slot || !matches!(latest.rest, Rest::Writing) {
            return; // a newer checkpoint replaced it; the file goes with `result`
        }
        latest.rest = match result {
            Ok(written) => Rest::Written(written),
            Err(e) => {
                tracing::error!(group = %group, error = %e, "cannot write a checkpoint for a peer");
                Rest::Unavailable
            }
        };
    }

    /// Appends a chunk to the transfer's file; asks for the next one, or builds the state
    /// off the event loop once the stream is complete.
    pub(super) fn receive_snapshot(
        &mut self,
        from: ReplicaId,
        group: GroupId,
        next_slot: u64,
        total: u64,
        offset: u64,
        data: &[u8],
    ) {
        let path = transfer_path(&self.transfer_dir, group, "in");
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        if g.staging {
            return;
        }
        if total > STREAM_MAX {
            tracing::warn!(group = %group, from = %from, total, "refused a snapshot larger than 1 TiB");
            return;
        }
        let same = g
            .receiving
            .as_ref()
            .is_some_and(|r| r.from == from && r.next_slot == next_slot && r.total == total);
        if !same {
            if offset != 0 || g.asked != Some(from) {
                // The middle of a transfer this node is not receiving, or a snapshot it did
                // not ask this peer for: nothing is written for it.
                return;
            }
            // A different snapshot: start over with this one (the old one's file is removed
            // first, as it goes: it has the same name).
            g.receiving = None;
            let file = match File::create(&path) {
                Ok(f) => f,
                Err(e) => {
                    return tracing::error!(group = %group, error = %e, "cannot receive a snapshot");
                }
            };
            g.receiving = Some(Incoming {
                from,
                next_slot,
                total,
                file,
                path: Some(path.clone()),
                received: 0,
                last: Instant::now(),
            });
        }
        let Some(incoming) = g.receiving.as_mut() else {
            return;
        };
        if offset != incoming.received || data.len() as u64 > total - incoming.received {
            return; // a duplicate or out-of-order chunk: the next request asks again
        }
        if let Err(e) = incoming.file.write_all(data) {
            g.receiving = None;
            return tracing::error!(group = %group, error = %e, "cannot receive a snapshot");
        }
        incoming.received += data.len() as u64;
        incoming.last = Instant::now();
        if incoming.received < total {
            let ask = Frame::SnapshotRequest {
                group,
                min_next_slot: next_slot,
                offset: incoming.received,
            };
            let _ = self.transport.send(from, &ask);
            return;
        }
        let Some(mut incoming) = g.receiving.take() else {
            return;
        };
        let Some(path) = incoming.path.take() else {
            return;
        };
        drop(incoming);
        g.staging = true;
        g.asked = None;
        let stager = g.host.stager();
        let background = self.background.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            // A panic while staging (a bug) must not leave the group waiting for ever.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                stage(&path, total, stager)
            }))
            .unwrap_or_else(|_| Err("staging the snapshot panicked".to_string()));
            let _ = std::fs::remove_file(&path);
            tracing::info!(group = %group, bytes = total, ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "received a snapshot");
            let _ = background.send(Background::Staged {
                group,
                from,
                result,
            });
        });
    }

    /// A received snapshot's state is built: installs it, if it is still ahead of what this
    /// node has delivered.
    pub(super) fn staged(
        &mut self,
        group: GroupId,
        from: ReplicaId,
        result: Result<(Arc<Snapshot>, Bytes, Staged), String>,
    ) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        g.staging = false;
        let (snapshot, head, staged) = match result {
            Ok(s) => s,
            Err(e) => {
                return tracing::warn!(group = %group, from = %from, error = %e, "an unusable snapshot; will ask again");
            }
        };
        // A snapshot whose engine state no replica could have made (a bug or a corrupt
        // transfer on the peer's side) is refused before the application's state is touched.
        if let Err(e) = g.replica.check_snapshot(&snapshot) {
            return tracing::error!(group = %group, from = %from, error = %e, "refused a peer's snapshot; will ask again");
        }
        // The replica installs a snapshot only past what it has delivered (`applied`).
        if snapshot.next_slot > g.replica.applied() {
            // The state is replaced at this place in the order: commands handed over before
            // run first (their effects are overwritten), later ones run after it.
            g.host.install(staged, snapshot.next_slot);
            let installed = g.replica.install_snapshot(now(), snapshot.clone());
            debug_assert!(
                installed,
                "a snapshot past the delivered prefix is installed"
            );
            tracing::info!(group = %group, from = %from, next_slot = snapshot.next_slot.0, "installed a snapshot");
            g.handed_to = snapshot.next_slot;
            g.applied_floor = snapshot.next_slot;
            let rest = if g.host.on_disk() {
                // This node serves the state once it has checkpointed it itself.
                g.since_snapshot = self.snapshot_every;
                Rest::Unavailable
            } else {
                Rest::Nothing
            };
            g.snapshot = Some(Latest {
                snapshot,
                head,
                rest,
            });
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
    fn a_snapshot_and_its_stream_hold_the_application_state_once() {
        let app: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (shared, head) = with_head(snapshot(app.clone()));
        assert_eq!(shared.app, Bytes::from(app.clone()));
        assert!(within(&shared.app, &head), "the state is not shared");
        let len = u64::from_le_bytes(head[..8].try_into().unwrap());
        assert_eq!(len, head.len() as u64 - 8);
        let decoded: Snapshot = postcard::from_bytes(&head[8..]).unwrap();
        assert_eq!(decoded, *shared);
    }

    struct Fixed(Vec<u8>);

    impl Export for Fixed {
        fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
            out.write_all(&self.0)
        }
    }

    #[test]
    fn a_received_stream_is_staged_from_its_file_with_the_rest_read_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (_, head) = with_head(snapshot(b"inline".to_vec()));
        let rest = Fixed((0..1_000_000u32).map(|i| (i % 13) as u8).collect());
        let written = write_rest(&rest, &dir.join("out")).unwrap();
        assert_eq!(written.len, 1_000_000);
        let mut stream = head.to_vec();
        let mut file_bytes = Vec::new();
        File::open(&written.path)
            .unwrap()
            .read_to_end(&mut file_bytes)
            .unwrap();
        stream.extend_from_slice(&file_bytes);
        std::fs::write(dir.join("in"), &stream).unwrap();
        let total = stream.len() as u64;

        let reads_all: Stager = Box::new(|inline: &[u8], rest: &mut dyn Read| {
            assert_eq!(inline, b"inline");
            let mut all = Vec::new();
            rest.read_to_end(&mut all)
                .map_err(|e| synod_exec::StateError::Store(e.to_string()))?;
            assert_eq!(all.len(), 1_000_000);
            Ok(Staged::for_test())
        });
        let (s, _, _) = stage(&dir.join("in"), total, reads_all).unwrap();
        assert_eq!(s.next_slot, Slot(42));

        let reads_nothing: Stager = Box::new(|_: &[u8], _: &mut dyn Read| Ok(Staged::for_test()));
        let err = stage(&dir.join("in"), total, reads_nothing).err().unwrap();
        assert!(err.contains("not read"), "{err}");

        // A stream cut short of its head is refused, not read past its end.
        std::fs::write(dir.join("short"), &stream[..20]).unwrap();
        let any: Stager = Box::new(|_: &[u8], _: &mut dyn Read| Ok(Staged::for_test()));
        assert!(stage(&dir.join("short"), 20, any).is_err());
        drop(written);
        assert!(
            !dir.join("out").exists(),
            "a checkpoint file outlived its snapshot"
        );
    }
}
