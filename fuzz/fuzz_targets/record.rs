//! Stored log records (`synod_storage::codec`: crc32c, then a postcard `synod_core::Record`),
//! and what recovery does with them: folding a log into a `DurableState`.
//!
//! The input is tried as a stored record as it is (almost always a checksum mismatch), then
//! with a correct checksum in front, so the fuzzer reaches the record decoder behind the
//! check; then as a log: records one after another, each stored and read back, and folded.
//! Nothing may panic; every record read must encode back to the same record; and a folded
//! state must survive compaction (`to_records`, folded again, gives the same state).

#![no_main]

use libfuzzer_sys::fuzz_target;
use synod_core::{DurableState, Record};
use synod_storage::codec::{self, DecodeError};

fn with_checksum(body: &[u8]) -> Vec<u8> {
    let mut stored = crc32c::crc32c(body).to_le_bytes().to_vec();
    stored.extend_from_slice(body);
    stored
}

fn round_trip(record: &Record) {
    let stored = codec::encode(record);
    assert_eq!(
        &codec::decode(&stored).expect("an encoded record decodes"),
        record
    );
}

fuzz_target!(|data: &[u8]| {
    // As stored (a damaged record must be refused, never trusted).
    match codec::decode(data) {
        Ok(r) => round_trip(&r),
        Err(DecodeError::Truncated(n)) => assert!(n < 4),
        Err(_) => {}
    }

    // As a record with a good checksum: only the decoder stands between the bytes and recovery.
    if let Ok(r) = codec::decode(&with_checksum(data)) {
        round_trip(&r);
    }

    // As a log: the records it holds, in order, each read back as recovery reads it.
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && records.len() < 64 {
        let Ok((record, tail)) = postcard::take_from_bytes::<Record>(rest) else {
            break;
        };
        let used = &rest[..rest.len() - tail.len()];
        let read = codec::decode(&with_checksum(used)).expect("a record's own bytes decode");
        assert_eq!(read, record);
        round_trip(&record);
        records.push(record);
        rest = tail;
    }
    let state = DurableState::from_records(&records);
    let compacted = state.to_records();
    let again = DurableState::from_records(&compacted);
    assert_eq!(again, state, "compaction changed the recovered state");
});
