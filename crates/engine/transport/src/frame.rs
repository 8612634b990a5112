//! Frames between nodes: a 4-byte big-endian length (from `tokio_util`'s length-delimited
//! codec, bounded by [`FRAME_MAX`]), then a version byte, then a postcard-encoded [`Frame`].
//! A frame that is too long, of another version, or undecodable is an error for that
//! connection, never a panic.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use synod_core::{Envelope, GroupId, ReplicaId};

/// Wire format version; bumped on any incompatible change (4: heartbeats say whether their
/// sender went quiet).
pub const VERSION: u8 = 4;
/// Largest frame accepted or sent, in bytes.
pub const FRAME_MAX: usize = 16 << 20;

/// What travels between two nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// First frame on every connection: who the dialer claims to be (checked against its
    /// certificate).
    Hello {
        /// The dialer's node id.
        node: ReplicaId,
    },
    /// A protocol message of one agreement group.
    Group {
        /// The group.
        group: GroupId,
        /// The message.
        envelope: Envelope,
    },
    /// Asks for the bytes of the sender's latest snapshot of `group` from `offset` (pull-based,
    /// so a transfer resumes where it stopped and never floods the receiver).
    SnapshotRequest {
        /// The group.
        group: GroupId,
        /// The snapshot must cover at least the slots below this.
        min_next_slot: u64,
        /// First byte wanted.
        offset: u64,
    },
    /// A piece of an encoded snapshot.
    SnapshotChunk {
        /// The group.
        group: GroupId,
        /// The slot the snapshot ends before (identifies the snapshot).
        next_slot: u64,
        /// Length of the whole encoded snapshot.
        total: u64,
        /// Where this piece starts.
        offset: u64,
        /// The bytes.
        data: bytes::Bytes,
    },
}

/// Why bytes are not a frame.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Empty frame: not even a version byte.
    #[error("empty frame")]
    Empty,
    /// A peer speaking another version of the wire format.
    #[error("wire version {0} is not supported (this node speaks {VERSION})")]
    Version(u8),
    /// The body is not a frame.
    #[error("undecodable frame: {0}")]
    Body(String),
    /// Encoding would exceed the frame limit.
    #[error("frame of {0} bytes exceeds the limit of {FRAME_MAX} bytes")]
    TooLarge(usize),
}

/// Encodes a frame body (the length prefix is added by the codec).
///
/// # Errors
/// [`FrameError::TooLarge`] if it would not fit in a frame.
pub fn encode(frame: &Frame) -> Result<Bytes, FrameError> {
    let body = postcard::to_stdvec(frame).map_err(|e| FrameError::Body(e.to_string()))?;
    if body.len() + 1 > FRAME_MAX {
        return Err(FrameError::TooLarge(body.len() + 1));
    }
    let mut out = BytesMut::with_capacity(body.len() + 1);
    out.put_u8(VERSION);
    out.extend_from_slice(&body);
    Ok(out.freeze())
}

/// Decodes a frame body.
///
/// # Errors
/// [`FrameError`] for an empty, foreign-version or undecodable body.
pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
    let (&version, body) = bytes.split_first().ok_or(FrameError::Empty)?;
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    postcard::from_bytes(body).map_err(|e| FrameError::Body(e.to_string()))
}

#[cfg(test)]
mod tests {
    use synod_core::{Message, ReplicaId, Slot};

    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_errors() {
        let f = Frame::Group {
            group: GroupId(3),
            envelope: Envelope {
                from: ReplicaId(1),
                to: ReplicaId(2),
                message: Message::Heartbeat {
                    applied: Slot(4),
                    highest_seen: Slot(9),
                    quiet: false,
                },
            },
        };
        let bytes = encode(&f).unwrap();
        assert_eq!(decode(&bytes).unwrap(), f);
        assert_eq!(decode(&[]), Err(FrameError::Empty));
        let mut other = bytes.to_vec();
        other[0] = 9;
        assert_eq!(decode(&other), Err(FrameError::Version(9)));
        assert!(matches!(
            decode(&[VERSION, 0xff, 0xff, 0xff]),
            Err(FrameError::Body(_))
        ));
        // Every truncation of a valid frame is an error or a different valid frame, never a panic.
        for n in 0..bytes.len() {
            let _ = decode(&bytes[..n]);
        }
    }
}
