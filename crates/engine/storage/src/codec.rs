//! Record framing: every stored record is `crc32c (4 bytes, little endian) ‖ postcard(Record)`.
//!
//! The checksum covers the encoded record and is verified before a record is decoded, so a
//! flipped bit is reported as corruption instead of being trusted (or decoded into something
//! else).

use synod_core::Record;

/// Why a stored record could not be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than a checksum.
    #[error("record of {0} bytes is too short to hold a checksum")]
    Truncated(usize),
    /// The checksum does not match the bytes.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// What the record carries.
        stored: u32,
        /// What its bytes hash to.
        computed: u32,
    },
    /// The checksum matched but the bytes are not a record (a bug, or a format change).
    #[error("undecodable record: {0}")]
    Format(String),
}

/// Encodes `record` with its checksum.
///
/// # Panics
/// Never in practice: postcard only fails to encode into a fixed buffer, and this encodes into
/// a growable one.
#[must_use]
pub fn encode(record: &Record) -> Vec<u8> {
    let body = postcard::to_stdvec(record).expect("encoding into a Vec cannot fail");
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Verifies the checksum and decodes.
///
/// # Errors
/// [`DecodeError`] when the bytes are short, corrupt or not a record.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    if bytes.len() < 4 {
        return Err(DecodeError::Truncated(bytes.len()));
    }
    let (sum, body) = bytes.split_at(4);
    let stored = u32::from_le_bytes(sum.try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    postcard::from_bytes(body).map_err(|e| DecodeError::Format(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use synod_core::{
        Ballot, Batch, Lsn, Payload, Proposal, ProposalId, ReplicaId, Slot, Time, Value,
    };

    use super::*;

    fn samples() -> Vec<Record> {
        let batch = Value::Batch(Arc::new(Batch {
            time: Time(7),
            proposals: vec![Proposal {
                id: ProposalId {
                    proposer: ReplicaId(2),
                    lsn: Lsn(9),
                },
                payload: Payload::Command(Bytes::from_static(b"put k v")),
            }],
        }));
        let ballot = Ballot {
            counter: 3,
            random: 99,
            proposer: ReplicaId(1),
        };
        vec![
            Record::Proposal {
                lsn: Lsn(1),
                payload: Payload::Command(Bytes::from_static(b"x")),
            },
            Record::Retired { lsn: Lsn(1) },
            Record::Promised {
                slot: Slot(4),
                ballot,
            },
            Record::Accepted {
                slot: Slot(4),
                ballot,
                value: batch.clone(),
            },
            Record::Decided {
                entries: vec![(Slot(4), batch), (Slot(5), Value::Noop)],
            },
            Record::OwnNext { slot: Slot(6) },
        ]
    }

    #[test]
    fn records_round_trip() {
        for r in samples() {
            assert_eq!(decode(&encode(&r)).unwrap(), r);
        }
    }

    #[test]
    fn any_single_flipped_bit_is_detected() {
        for r in samples() {
            let good = encode(&r);
            for i in 0..good.len() * 8 {
                let mut bad = good.clone();
                bad[i / 8] ^= 1 << (i % 8);
                assert!(
                    matches!(decode(&bad), Err(DecodeError::Checksum { .. })),
                    "bit {i} of {r:?} went unnoticed"
                );
            }
        }
        assert_eq!(decode(&[1, 2]), Err(DecodeError::Truncated(2)));
    }
}
