//! The channel as a node hosts it ([`ChannelApp`] on the scheduler, signatures checked ahead in
//! parallel) gives exactly the serial channel's blocks, statuses and state, on random
//! workloads: conflicting reads and writes, stale reads, duplicate ids, forged signatures,
//! garbage, range reads, deletions, any block size, worker count and executor capacity.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use synod_exec::{Agreed, Executor, Hosted, Job, WorkerPool};
use synod_ledger::{
    BatchConfig, Channel, ChannelApp, Envelope, RangeRead, Transaction, TxBody, Version,
};

#[derive(Clone, Debug)]
enum Step {
    /// Read `reads` at the versions the submitter last saw (maybe stale), write `writes`.
    Tx {
        id: u8,
        reads: Vec<u8>,
        writes: Vec<(u8, bool)>,
        range: Option<(u8, u8)>,
        forged: bool,
    },
    Garbage,
    Tick,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (
            0u8..40,
            proptest::collection::vec(0u8..8, 0..3),
            proptest::collection::vec((0u8..8, any::<bool>()), 0..3),
            proptest::option::weighted(0.15, (0u8..8, 0u8..8)),
            proptest::bool::weighted(0.05),
        )
            .prop_map(|(id, reads, writes, range, forged)| Step::Tx { id, reads, writes, range, forged }),
        1 => Just(Step::Garbage),
        1 => Just(Step::Tick),
    ]
}

fn key(k: u8) -> String {
    format!("k{k}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn parallel_validation_equals_serial(
        steps in proptest::collection::vec(step(), 1..120),
        block_size in 1usize..12,
        workers in 1usize..4,
        capacity in 1usize..64,
    ) {
        let config = BatchConfig { max_message_count: block_size, batch_timeout_ns: 5, ..BatchConfig::default() };
        let signer = SigningKey::from_bytes(&[3; 32]);
        let genesis = Bytes::from_static(b"genesis");
        // The submitter reads from the serial channel as it goes (so some reads are current
        // and some stale, depending on what is still pending in the cutter).
        let mut serial = Channel::genesis(config, genesis.clone(), 0);
        let pool = WorkerPool::new(workers);
        let exec = Executor::new(
            ChannelApp::from_channel(Channel::genesis(config, genesis, 0)),
            &pool,
            capacity,
        );
        let (cut_tx, cut_rx) = std::sync::mpsc::channel();
        let mut cuts = Vec::new();
        for (time, s) in steps.iter().enumerate() {
            let time = time as u64;
            let envelope = match s {
                Step::Tick => Envelope::Tick.encode(),
                Step::Garbage => Envelope::Tx(Bytes::from_static(b"\xffnot a tx")).encode(),
                Step::Tx { id, reads, writes, range, forged } => {
                    let view = serial.view().unwrap();
                    let get = |k: &str| view.get(k).unwrap().map(|(_, v)| v);
                    let seen = |k: u8| get(&key(k));
                    let ranges = range
                        .map(|(a, b)| {
                            let (start, end) = (key(a.min(b)), key(a.max(b)));
                            let seen: Vec<(String, Version)> = (0..8u8)
                                .map(key)
                                .filter(|k| *k >= start && *k < end)
                                .filter_map(|k| get(&k).map(|v| (k, v)))
                                .collect();
                            vec![RangeRead { start, end, seen }]
                        })
                        .unwrap_or_default();
                    let mut body = TxBody {
                        id: format!("tx{id}"),
                        creator: signer.verifying_key().to_bytes(),
                        reads: reads.iter().map(|k| (key(*k), seen(*k))).collect(),
                        ranges,
                        writes: writes
                            .iter()
                            .map(|(k, delete)| {
                                (key(*k), (!delete).then(|| Bytes::from(format!("v{time}"))))
                            })
                            .collect(),
                    };
                    let mut tx = Transaction::sign(body.clone(), &signer);
                    if *forged {
                        body.writes.push(("stolen".into(), Some(Bytes::from("x"))));
                        tx.body = body;
                    }
                    Envelope::Tx(tx.encode()).encode()
                }
            };
            let expected = serial.deliver(&envelope, time);
            // As the node hands it over: decoded, its signature check ahead, then the envelope.
            let app = exec.app();
            let at = Agreed { gsn: time, index: 0, time_ns: time };
            let mut cmd = app.decode(&envelope, at).unwrap();
            let ahead = app.ahead(&mut cmd).unwrap();
            let cut = cut_tx.clone();
            exec.submit_many([
                Job::Command { gsn: time, cmd: ahead, reply: None },
                Job::Command {
                    gsn: time,
                    cmd,
                    reply: Some(Box::new(move |blocks| cut.send((time, blocks)).unwrap())),
                },
            ])
            .unwrap();
            exec.mark_applied(time + 1);
            cuts.push((time, expected));
        }
        exec.wait_idle();
        let got: Vec<(u64, Vec<u64>)> = cut_rx.try_iter().collect();
        prop_assert_eq!(got, cuts, "the same blocks are cut, in order");
        let app = exec.app().view().unwrap();
        let serial = serial.view().unwrap();
        // Compared by summary first (a readable failure), then whole.
        let summary = |blocks: &[synod_ledger::Block]| -> Vec<(u64, Vec<synod_ledger::ValidationCode>, [u8; 32])> {
            blocks.iter().map(|b| (b.header.number, b.metadata.flags.clone(), b.metadata.commit_hash)).collect()
        };
        let (app_blocks, serial_blocks) = (app.blocks(0, u64::MAX).unwrap(), serial.blocks(0, u64::MAX).unwrap());
        prop_assert_eq!(summary(&app_blocks), summary(&serial_blocks));
        prop_assert!(app_blocks == serial_blocks);
        prop_assert_eq!(app.commit_hash(), serial.commit_hash());
        for id in 0..40u8 {
            let id = format!("tx{id}");
            prop_assert_eq!(app.tx_statuses(&id).unwrap(), serial.tx_statuses(&id).unwrap());
        }
        prop_assert_eq!(
            app.content_digest().unwrap(),
            serial.content_digest().unwrap(),
            "the whole state is the serial one"
        );
    }
}
