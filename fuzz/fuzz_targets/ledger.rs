//! Ledger envelopes and transactions, as a channel's members read them from the agreed log:
//! decoding (`Envelope::decode`, `Transaction::decode`), the signature check run ahead
//! (`check_signature`), and validation and block cutting (`Channel::deliver_checked`).
//!
//! Input: a byte of flags, then envelopes, each after its length (2 bytes, little endian; the
//! last one may run to the end). Flags: bit 0, the signature verdicts are taken as valid (as
//! for a transaction its creator did sign: so the fuzzer reaches the checks after the
//! signature without forging one); bit 1, each transaction is re-signed by a fixed key first
//! (real signatures, really checked).
//!
//! Nothing may panic; envelopes and transactions that decode must encode and decode back to
//! themselves; the chain must pass an audit from genesis (when the verdicts are the real
//! ones) and every committed transaction's proof must verify.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use synod_exec::Position;
use synod_fuzz::seeds;
use synod_ledger::{Envelope, Transaction};

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && out.len() < 32 {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            out.push(rest);
            break;
        };
        let len = usize::from(u16::from_le_bytes(*len)).min(tail.len());
        let (one, tail) = tail.split_at(len);
        out.push(one);
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let trust_verdicts = flags & 1 != 0;
    let resign = flags & 2 != 0;
    let mut channel = seeds::channel();
    let mut time = 1_000_000_000u64;
    let mut position = Position::slot(1);
    for raw in split(rest) {
        let mut envelope = Bytes::copy_from_slice(raw);
        match Envelope::decode(raw) {
            Ok(e) => {
                assert_eq!(
                    Envelope::decode(&e.encode()).as_ref(),
                    Ok(&e),
                    "envelope round trip"
                );
                if let Envelope::Tx(bytes) = &e {
                    let checked = synod_ledger::check_signature(raw);
                    match Transaction::decode(bytes) {
                        Ok(tx) => {
                            assert_eq!(
                                Transaction::decode(&tx.encode()).as_ref(),
                                Ok(&tx),
                                "transaction round trip"
                            );
                            assert_eq!(checked, Some((bytes.clone(), tx.signature_valid())));
                            if resign {
                                let mut body = tx.body;
                                body.creator = seeds::signer().verifying_key().to_bytes();
                                let signed = Transaction::sign(body, &seeds::signer());
                                assert!(signed.signature_valid());
                                envelope = Envelope::Tx(signed.encode()).encode();
                            }
                        }
                        Err(_) => assert_eq!(checked, None),
                    }
                }
            }
            Err(_) => assert_eq!(synod_ledger::check_signature(raw), None),
        }
        time = time.saturating_add(u64::from(raw.first().copied().unwrap_or(0)) * 100_000_000);
        position.index += 1;
        let cut = channel
            .deliver_checked(&envelope, time, position, &mut |_| {
                trust_verdicts.then_some(true)
            })
            .expect("a channel in memory does not fail");
        for n in cut {
            assert!(
                n >= 1 && n < channel.height(),
                "block {n} cut at height {}",
                channel.height()
            );
        }
    }
    // The batch timeout cuts whatever is pending.
    let _ = channel.deliver(
        &Envelope::Tick.encode(),
        time.saturating_add(10_000_000_000),
    );
    let view = channel.view().expect("memory");
    let blocks = view.blocks(0, view.height()).expect("memory");
    assert_eq!(blocks.len() as u64, view.height());
    if !trust_verdicts {
        let report = synod_ledger::audit(&blocks, *channel.config())
            .expect("a channel's own chain passes an audit from genesis");
        assert_eq!(report.tip, view.tip().1);
        assert_eq!(report.commit_hash, view.commit_hash());
    }
    for block in blocks.iter().skip(1) {
        for (i, tx) in block.data.iter().enumerate() {
            let status = view.tx_by_hash(&synod_ledger::tx_hash(tx)).expect("memory");
            let Some(status) = status else {
                continue;
            };
            if status.block != block.header.number || status.index as usize != i {
                // The same bytes submitted twice: the hash names the first.
                continue;
            }
            let proof = view
                .prove_tx(status)
                .expect("memory")
                .expect("a committed transaction has a proof");
            proof.verify().expect("a proof the channel made verifies");
        }
    }
    seeds::read_everything(&view);
});
