//! Applications' commands, as every node decodes them from the agreed log (`Hosted::decode`):
//! the key-value store's requests and the notary's, and a channel's parameters from the
//! catalog. The first byte picks which. A command that decodes is applied, as every node
//! applies it.
//!
//! Nothing may panic; a command that decodes must encode and decode back to itself.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use synod_exec::{Agreed, GroupSpec, Hosted};
use synod_kv::{KvApp, KvOp};
use synod_ledger::{NotaryApp, hosted};
use synod_node::{GroupId, ReplicaId};

fn spec() -> GroupSpec {
    GroupSpec {
        id: GroupId(7),
        name: "g".into(),
        created_gsn: 3,
        genesis: vec![ReplicaId(1)],
        params: Bytes::new(),
    }
}

const AT: Agreed = Agreed {
    gsn: 9,
    index: 0,
    time_ns: 1_700_000_000_000_000_000,
};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let bytes = Bytes::copy_from_slice(rest);
    match which % 3 {
        0 => {
            let app = KvApp::new(&spec());
            let Some(KvOp::Write(req)) = app.decode(&bytes, AT) else {
                return;
            };
            let again = app.decode(&KvApp::encode(&req), AT);
            assert!(
                matches!(&again, Some(KvOp::Write(r)) if *r == req),
                "key-value request round trip"
            );
            let mut kv = synod_kv::Kv::default();
            let (gsn, first) = kv.apply_request(5, &req);
            assert_eq!(gsn, 5);
            // The same request again: with a token, the first outcome, not applied twice.
            let (gsn, second) = kv.apply_request(6, &req);
            if req.token.is_some() {
                assert_eq!(
                    (gsn, &second),
                    (5, &first),
                    "a repeated token applied again"
                );
            }
            let _ = kv.content_hash();
        }
        1 => {
            let app = NotaryApp::new(&spec());
            let Some(op) = app.decode(&bytes, AT) else {
                return;
            };
            let again = app.decode(&NotaryApp::encode(&op.req), AT);
            assert_eq!(
                again.map(|o| o.req).as_ref(),
                Some(&op.req),
                "notarisation request round trip"
            );
            let mut notary = synod_ledger::Notary::default();
            let first = notary.notarise(&op.req, op.time);
            // Notarising the same request again (a client's retry) must give the same answer.
            // (A state named both as an input and as a reference once conflicted with itself
            // on the retry; such a request is now invalid.)
            let second = notary.notarise(&op.req, op.time);
            assert_eq!(first, second, "notarisation is not idempotent");
        }
        _ => {
            if let Some(batch) = hosted::decode_channel_params(rest) {
                assert_eq!(
                    hosted::decode_channel_params(&hosted::channel_params(&batch)),
                    Some(batch)
                );
                // Only rules the API accepts reach the catalog (`POST /v1/channels`).
                let sane = (1..=10_000).contains(&batch.max_message_count)
                    && batch.preferred_max_bytes >= 1
                    && batch.preferred_max_bytes <= batch.absolute_max_bytes
                    && batch.absolute_max_bytes <= 64 * 1024 * 1024
                    && (1_000_000..=600_000_000_000).contains(&batch.batch_timeout_ns);
                if !sane {
                    return;
                }
                // A channel created with these rules, fed a transaction and a tick.
                let mut channel = synod_ledger::Channel::genesis(batch, Bytes::new(), 0);
                let tx = synod_fuzz::seeds::transaction(1, "k");
                let _ = channel.deliver(&synod_ledger::Envelope::Tx(tx.encode()).encode(), 1);
                let _ = channel.deliver(&synod_ledger::Envelope::Tick.encode(), u64::MAX);
            }
        }
    }
});
