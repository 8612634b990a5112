//! Snapshots, as a node reads them:
//! - its own snapshot file (`synod_storage::SnapshotFiles`: `next_slot` as 8 bytes, then a
//!   checksummed `Record::Snapshot`), tried with a correct checksum so the decoder behind
//!   the check is reached;
//! - a peer's snapshot stream (the node's `stage`: the encoding's length as 8 bytes, then a
//!   postcard `synod_core::Snapshot`), installed into a replica as the node installs it.
//!
//! Nothing may panic; a decoded snapshot must encode and decode back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use synod_core::{Record, Snapshot};
use synod_fuzz::Driven;
use synod_storage::codec;

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<8>() else {
        return;
    };
    let announced = u64::from_le_bytes(*head);

    // The snapshot file: a bad checksum is refused, a good one hands the body to the decoder.
    let _ = codec::decode(body);
    let mut stored = crc32c::crc32c(body).to_le_bytes().to_vec();
    stored.extend_from_slice(body);
    if let Ok(record) = codec::decode(&stored) {
        assert_eq!(codec::decode(&codec::encode(&record)).as_ref(), Ok(&record));
        if let Record::Snapshot(s) = record {
            // Compaction trusts the 8 bytes in front; recovery the record. A file whose two
            // disagree is only ever written by something else, but must not crash a reader.
            let _ = announced == s.next_slot.0;
        }
    }

    // A peer's stream: the length in front bounds the encoding (the node refuses a length
    // past the stream).
    let len = usize::try_from(announced)
        .unwrap_or(usize::MAX)
        .min(body.len());
    if let Ok(snapshot) = postcard::from_bytes::<Snapshot>(&body[..len]) {
        let again = postcard::to_stdvec(&snapshot).expect("encoding into a Vec cannot fail");
        assert_eq!(
            postcard::from_bytes::<Snapshot>(&again).as_ref(),
            Ok(&snapshot),
            "snapshot round trip"
        );
        // A snapshot no replica could have made is refused (fuzz/regressions/snapshot/: such
        // snapshots once panicked the replica that installed them, or made it allocate
        // without bound); any other is installed if it is ahead, and the replica lives on.
        let mut replica = Driven::new();
        let sound = replica.replica.check_snapshot(&snapshot).is_ok();
        let ahead = snapshot.next_slot > replica.replica.applied();
        let installed = replica.install(snapshot);
        assert_eq!(installed, sound && ahead, "installed exactly when sound and ahead");
    }
});
