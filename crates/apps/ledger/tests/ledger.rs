//! The ledger as its users see it: validation codes, double spends racing, identical chains on
//! every member, audits that catch tampering, proofs checked without trusting the node, and a
//! notary that never lets a state be consumed twice.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use synod_exec::Position;
use synod_ledger::merkle;
use synod_ledger::{
    AuditError, BatchConfig, Block, Channel, Envelope, LedgerView, NotariseRequest, Notary,
    NotaryOutcome, RangeRead, StateRef, Transaction, TxBody, TxProof, TxStatus, ValidationCode,
    Version, audit, check_signature,
};

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn tx(
    signer: &SigningKey,
    id: &str,
    reads: Vec<(&str, Option<Version>)>,
    writes: Vec<(&str, Option<&str>)>,
) -> Transaction {
    Transaction::sign(
        TxBody {
            id: id.into(),
            creator: signer.verifying_key().to_bytes(),
            reads: reads.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            ranges: Vec::new(),
            writes: writes
                .into_iter()
                .map(|(k, v)| (k.into(), v.map(|v| Bytes::from(v.to_string()))))
                .collect(),
        },
        signer,
    )
}

fn env(t: &Transaction) -> Bytes {
    Envelope::Tx(t.encode()).encode()
}

/// Every transaction in its own block, for tests that look at codes.
fn one_per_block() -> BatchConfig {
    BatchConfig {
        max_message_count: 1,
        ..BatchConfig::default()
    }
}

fn channel(config: BatchConfig) -> Channel {
    Channel::genesis(config, Bytes::from_static(b"genesis: test channel"), 0)
}

/// Reads of a channel as committed, for tests: each through a fresh view, errors as panics.
trait Reads {
    fn read(&self) -> LedgerView;
    fn block(&self, n: u64) -> Option<Block> {
        self.read().block(n).unwrap()
    }
    fn get(&self, key: &str) -> Option<(Bytes, Version)> {
        self.read().get(key).unwrap()
    }
    fn history(&self, key: &str) -> Option<Vec<(Version, Option<Bytes>)>> {
        self.read()
            .history(key, usize::MAX)
            .unwrap()
            .map(|(h, _)| h)
    }
    /// The one submission with this id (these tests give each id to one creator).
    fn tx_status(&self, id: &str) -> Option<TxStatus> {
        let all = self.read().tx_statuses(id).unwrap();
        assert!(all.len() <= 1, "{id} was used by {} creators", all.len());
        all.first().map(|(_, s)| *s)
    }
    fn blocks(&self) -> Vec<Block> {
        self.read().blocks(0, u64::MAX).unwrap()
    }
    fn chain_root(&self, height: u64) -> Option<merkle::Hash> {
        self.read().chain_root(height).unwrap()
    }
    fn prove_tx(&self, id: &str) -> Option<TxProof> {
        self.read().prove_tx(self.tx_status(id)?).unwrap()
    }
    fn prove_consistency(&self, old: u64, new: u64) -> Option<Vec<u8>> {
        self.read().prove_consistency(old, new).unwrap()
    }
    fn digest(&self) -> merkle::Hash {
        self.read().content_digest().unwrap()
    }
}

impl Reads for Channel {
    fn read(&self) -> LedgerView {
        self.view().unwrap()
    }
}

#[test]
fn validation_codes_follow_fabric() {
    let alice = key(1);
    let mut ch = channel(one_per_block());
    let v = |block, tx| Some(Version { block, tx });
    let cases = [
        (
            tx(&alice, "t1", vec![("a", None)], vec![("a", Some("1"))]),
            ValidationCode::Valid,
        ),
        // Read `a` as absent, but t1 wrote it: stale.
        (
            tx(&alice, "t2", vec![("a", None)], vec![("a", Some("2"))]),
            ValidationCode::MvccReadConflict,
        ),
        (
            tx(&alice, "t3", vec![("a", v(1, 0))], vec![("a", Some("3"))]),
            ValidationCode::Valid,
        ),
        // The same id again, whatever it says.
        (
            tx(&alice, "t1", vec![], vec![("b", Some("x"))]),
            ValidationCode::DuplicateTxid,
        ),
        (
            tx(
                &alice,
                "t5",
                vec![],
                vec![("b", Some("1")), ("b", Some("2"))],
            ),
            ValidationCode::BadRwset,
        ),
    ];
    for (t, expected) in &cases {
        let blocks = ch.deliver(&env(t), 1);
        let block = ch.block(blocks[0]).unwrap();
        assert_eq!(block.metadata.flags, vec![*expected], "{}", t.body.id);
    }
    // A signature by someone else than the creator.
    let mut forged = tx(&alice, "t6", vec![], vec![("a", Some("stolen"))]);
    forged.body.creator = key(2).verifying_key().to_bytes();
    let n = ch.deliver(&env(&forged), 1)[0];
    assert_eq!(
        ch.block(n).unwrap().metadata.flags,
        vec![ValidationCode::BadCreatorSignature]
    );
    // Garbage in a transaction envelope.
    let n = ch.deliver(&Envelope::Tx(Bytes::from_static(b"junk")).encode(), 1)[0];
    assert_eq!(
        ch.block(n).unwrap().metadata.flags,
        vec![ValidationCode::BadPayload]
    );

    assert_eq!(ch.get("a").unwrap().0, Bytes::from("3"));
    assert_eq!(ch.get("a").unwrap().1, Version { block: 3, tx: 0 });
    assert_eq!(ch.history("a").map(|h| h.len()), Some(2));
    // A resubmitted id is answered with its recorded outcome, not the duplicate's.
    assert_eq!(ch.tx_status("t1").unwrap().code, ValidationCode::Valid);
    assert_eq!(
        ch.tx_status("t2").unwrap().code,
        ValidationCode::MvccReadConflict
    );
    // A forgery does not claim the id it used.
    assert_eq!(ch.tx_status("t6"), None);
}

#[test]
fn signatures_checked_ahead_of_time_are_used_and_give_the_same_chain() {
    let alice = key(1);
    let mut forged = tx(&alice, "f", vec![], vec![("a", Some("stolen"))]);
    forged.body.creator = key(2).verifying_key().to_bytes();
    let envelopes = [
        env(&tx(&alice, "t1", vec![], vec![("a", Some("1"))])),
        env(&forged),
        Envelope::Tx(Bytes::from_static(b"junk")).encode(),
        Envelope::Tick.encode(),
        env(&tx(&alice, "t2", vec![], vec![("b", Some("2"))])),
    ];
    let verdicts: Vec<Option<(Bytes, bool)>> =
        envelopes.iter().map(|e| check_signature(e)).collect();
    // Junk and ticks carry no transaction to check; the forgery's verdict is false.
    let found: Vec<Option<bool>> = verdicts.iter().map(|v| v.as_ref().map(|v| v.1)).collect();
    assert_eq!(found, [Some(true), Some(false), None, None, Some(true)]);

    let config = BatchConfig {
        max_message_count: 2,
        ..BatchConfig::default()
    };
    let (mut serial, mut checked) = (channel(config), channel(config));
    let mut consulted = 0;
    for (i, e) in envelopes.iter().enumerate() {
        serial.deliver(e, i as u64);
        let _ = checked.deliver_checked(e, i as u64, Position::default(), &mut |bytes| {
            consulted += 1;
            verdicts
                .iter()
                .flatten()
                .find(|(b, _)| b == bytes)
                .map(|(_, ok)| *ok)
        });
    }
    assert_eq!(checked.digest(), serial.digest());
    assert_eq!(
        consulted, 3,
        "every transaction that decodes is looked up once"
    );
    // The verdict given is the one used: a (wrong) verdict of true passes the forgery.
    let mut fooled = channel(one_per_block());
    let n = fooled
        .deliver_checked(&env(&forged), 1, Position::default(), &mut |_| Some(true))
        .unwrap()[0];
    assert_eq!(
        fooled.block(n).unwrap().metadata.flags,
        vec![ValidationCode::Valid]
    );
}

#[test]
fn a_channel_reopened_from_its_database_is_the_same_channel() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let open = || {
        let db = synod_ledger::store::open_database(&path, false).unwrap();
        Channel::open_or_create(db, one_per_block(), || Bytes::from_static(b"genesis")).unwrap()
    };
    let alice = key(1);
    let mut ch = open();
    for i in 0..9u64 {
        let t = tx(&alice, &format!("t{i}"), vec![], vec![("k", Some("v"))]);
        ch.deliver_checked(&env(&t), i, Position::slot(i + 1), &mut |_| None)
            .unwrap();
    }
    let (digest, tip, roots) = (
        ch.digest(),
        ch.tip(),
        (0..=ch.height())
            .map(|h| ch.chain_root(h))
            .collect::<Vec<_>>(),
    );
    drop(ch);
    let reopened = open();
    assert_eq!(reopened.digest(), digest);
    assert_eq!(reopened.tip(), tip);
    assert_eq!(reopened.durable().unwrap(), Position::slot(9));
    for h in 0..=reopened.height() {
        assert_eq!(reopened.chain_root(h), roots[h as usize]);
    }
}

#[test]
fn a_phantom_in_a_range_read_is_caught() {
    let alice = key(1);
    let mut ch = channel(one_per_block());
    ch.deliver(&env(&tx(&alice, "w1", vec![], vec![("k1", Some("x"))])), 1);
    let seen = vec![("k1".to_string(), Version { block: 1, tx: 0 })];
    let range = |id: &str| {
        let mut t = TxBody {
            id: id.into(),
            creator: alice.verifying_key().to_bytes(),
            reads: vec![],
            ranges: vec![RangeRead {
                start: "k".into(),
                end: "l".into(),
                seen: seen.clone(),
            }],
            writes: vec![("sum".into(), Some(Bytes::from("1")))],
        };
        t.id = id.into();
        Transaction::sign(t, &alice)
    };
    let n = ch.deliver(&env(&range("r1")), 2)[0];
    assert_eq!(
        ch.block(n).unwrap().metadata.flags,
        vec![ValidationCode::Valid]
    );
    // A key appears in the range: the same read now sees a phantom.
    ch.deliver(&env(&tx(&alice, "w2", vec![], vec![("k2", Some("y"))])), 3);
    let n = ch.deliver(&env(&range("r2")), 4)[0];
    assert_eq!(
        ch.block(n).unwrap().metadata.flags,
        vec![ValidationCode::PhantomReadConflict]
    );
}

#[test]
fn blocks_are_cut_by_count_and_by_agreed_time_the_same_everywhere() {
    let config = BatchConfig {
        max_message_count: 3,
        batch_timeout_ns: 1_000,
        ..BatchConfig::default()
    };
    let alice = key(1);
    let mut ch = channel(config);
    let mut cut = Vec::new();
    for i in 0..4 {
        let t = tx(&alice, &format!("t{i}"), vec![], vec![("k", Some("v"))]);
        cut.extend(ch.deliver(&env(&t), 10 + i));
    }
    assert_eq!(cut, vec![1], "three transactions make a block");
    assert_eq!(ch.due_at(), Some(1_013));
    assert!(ch.deliver(&Envelope::Tick.encode(), 1_012).is_empty());
    assert_eq!(ch.deliver(&Envelope::Tick.encode(), 1_013), vec![2]);
    assert_eq!(ch.block(2).unwrap().data.len(), 1);
}

#[test]
fn an_audit_replays_the_chain_and_catches_tampering() {
    let alice = key(1);
    let mut ch = channel(BatchConfig {
        max_message_count: 4,
        ..BatchConfig::default()
    });
    for i in 0..40u8 {
        let k = format!("k{}", i % 5);
        let seen = ch.get(&k).map(|(_, v)| v);
        let t = tx(
            &alice,
            &format!("t{i}"),
            vec![(&k, seen)],
            vec![(&k, Some("v"))],
        );
        ch.deliver(&env(&t), u64::from(i));
    }
    let report = audit(&ch.blocks(), ch_config()).unwrap();
    assert_eq!(report.blocks, ch.height());
    assert_eq!(report.tip, ch.tip().1);
    assert_eq!(report.commit_hash, ch.commit_hash());

    let mut blocks = ch.blocks();
    blocks[3].data[1] = tx(&alice, "evil", vec![], vec![("k0", Some("mine"))]).encode();
    assert_eq!(audit(&blocks, ch_config()), Err(AuditError::DataHash(3)));

    let mut blocks = ch.blocks();
    blocks[4].metadata.flags[0] = ValidationCode::MvccReadConflict;
    assert_eq!(audit(&blocks, ch_config()), Err(AuditError::Flags(4)));

    let mut blocks = ch.blocks();
    blocks.remove(2);
    assert!(audit(&blocks, ch_config()).is_err(), "a block dropped");

    let mut blocks = ch.blocks();
    blocks[5].metadata.commit_hash[0] ^= 1;
    assert_eq!(audit(&blocks, ch_config()), Err(AuditError::CommitHash(5)));
}

fn ch_config() -> BatchConfig {
    BatchConfig {
        max_message_count: 4,
        ..BatchConfig::default()
    }
}

#[test]
fn proofs_check_out_without_trusting_the_node() {
    let alice = key(1);
    let mut ch = channel(ch_config());
    for i in 0..30u8 {
        let t = tx(
            &alice,
            &format!("t{i}"),
            vec![],
            vec![(&format!("k{i}"), Some("v"))],
        );
        ch.deliver(&env(&t), u64::from(i));
    }
    let proof = ch.prove_tx("t17").unwrap();
    assert_eq!(proof.verify(), Ok(()));
    // The header it names is the chain's own.
    assert_eq!(ch.block(proof.header.number).unwrap().header, proof.header);
    assert_eq!(proof.chain_root, ch.chain_root(ch.height()).unwrap());
    let mut lie = proof.clone();
    lie.tx = tx(&alice, "t17", vec![], vec![("k17", Some("other"))]).encode();
    assert!(lie.verify().is_err());
    // A header the chain does not hold (the right data, another history) fails too.
    let mut forged_header = proof.clone();
    forged_header.header.previous_hash[0] ^= 1;
    assert!(forged_header.verify().is_err());

    let (old, new) = (3, ch.height());
    let p = ch.prove_consistency(old, new).unwrap();
    let (old_root, new_root) = (ch.chain_root(old).unwrap(), ch.chain_root(new).unwrap());
    assert_eq!(
        merkle::verify_consistency(old_root, old, new_root, new, &p),
        Ok(())
    );
    let mut forked = old_root;
    forked[0] ^= 1;
    assert!(merkle::verify_consistency(forked, old, new_root, new, &p).is_err());
}

/// One client's attempt to spend a coin: it read the coin at the version it saw.
#[derive(Clone, Debug)]
struct Spend {
    client: u8,
    coin: u8,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Clients on different nodes race to spend the same coins; whatever the order the
    /// agreement picks, exactly one spend of each coin is valid, and every member holds the
    /// same chain and state.
    #[test]
    fn double_spends_race_and_exactly_one_wins_each_coin(
        spends in proptest::collection::vec((0u8..8, 0u8..4), 1..60),
        block_size in 1usize..10,
    ) {
        let config = BatchConfig { max_message_count: block_size, ..BatchConfig::default() };
        let mint = key(200);
        const S: u64 = 1_000_000_000;
        // The agreed order: the mints, a tick that cuts them, then the racing spends (in the
        // order the agreement happened to pick), then a tick that cuts the rest.
        let mut ordered: Vec<(Bytes, u64)> = (0..4u8)
            .map(|c| tx(&mint, &format!("mint{c}"), vec![], vec![(&format!("coin{c}"), Some("minted"))]))
            .enumerate()
            .map(|(i, t)| (env(&t), i as u64))
            .collect();
        ordered.push((Envelope::Tick.encode(), 10 * S));
        // Every client read the minted coin at its version.
        let mut minted_state = channel(config);
        for (e, time) in &ordered {
            minted_state.deliver(e, *time);
        }
        let minted: BTreeMap<u8, Version> = (0..4u8)
            .map(|c| (c, minted_state.get(&format!("coin{c}")).unwrap().1))
            .collect();
        let spends: Vec<Spend> = spends.into_iter().map(|(client, coin)| Spend { client, coin }).collect();
        for (n, s) in spends.iter().enumerate() {
            let coin = format!("coin{}", s.coin);
            let t = tx(
                &key(s.client + 1),
                &format!("spend-{n}"),
                vec![(&coin, Some(minted[&s.coin]))],
                vec![(&coin, Some(&format!("owned by {}", s.client)))],
            );
            ordered.push((env(&t), 20 * S + n as u64));
        }
        ordered.push((Envelope::Tick.encode(), 100 * S));
        // Three members apply the same agreed order; the third had checked the signatures of
        // every other envelope ahead of time, as a node does in parallel.
        let members: Vec<Channel> = (0..3)
            .map(|m| {
                let mut ch = channel(config);
                let mut checked: std::collections::HashMap<Bytes, bool> = ordered
                    .iter()
                    .step_by(2)
                    .filter(|_| m == 2)
                    .filter_map(|(e, _)| check_signature(e))
                    .collect();
                for (e, time) in &ordered {
                    ch.deliver_checked(e, *time, Position::default(), &mut |bytes| checked.remove(bytes))
                        .unwrap();
                }
                ch
            })
            .collect();
        for m in &members[1..] {
            prop_assert_eq!(m.tip(), members[0].tip());
            prop_assert_eq!(m.commit_hash(), members[0].commit_hash());
            prop_assert_eq!(m.digest(), members[0].digest());
        }
        let ch = &members[0];
        for coin in 0..4u8 {
            let attempts: Vec<usize> = spends.iter().enumerate().filter(|(_, s)| s.coin == coin).map(|(n, _)| n).collect();
            let winners = attempts
                .iter()
                .filter(|n| ch.tx_status(&format!("spend-{n}")).unwrap().code == ValidationCode::Valid)
                .count();
            prop_assert_eq!(winners, usize::from(!attempts.is_empty()), "coin {}", coin);
            for n in &attempts {
                let code = ch.tx_status(&format!("spend-{n}")).unwrap().code;
                prop_assert!(matches!(code, ValidationCode::Valid | ValidationCode::MvccReadConflict));
            }
        }
        prop_assert!(audit(&ch.blocks(), config).is_ok());
    }

    /// Random notarisations in a random order: no state is ever consumed by two
    /// transactions, every conflict names the real consumer, and a repeat gets the same
    /// success.
    #[test]
    fn the_notary_never_consumes_a_state_twice(
        requests in proptest::collection::vec(
            (0u8..12, proptest::collection::vec(0u32..10, 1..4), proptest::collection::vec(0u32..10, 0..2)),
            1..80,
        ),
    ) {
        let mut notary = Notary::default();
        let mut winners: BTreeMap<StateRef, String> = BTreeMap::new();
        let state = |i: u32| StateRef { tx: "issue".into(), index: i };
        for (tx_no, inputs, references) in requests {
            let mut inputs: Vec<StateRef> = inputs.into_iter().map(state).collect();
            inputs.sort();
            inputs.dedup();
            let req = NotariseRequest {
                tx_id: format!("tx{tx_no}"),
                inputs: inputs.clone(),
                references: references.into_iter().map(state).collect(),
                time_window: None,
            };
            match notary.notarise(&req, 0) {
                NotaryOutcome::Notarised => {
                    for i in &inputs {
                        let prior = winners.insert(i.clone(), req.tx_id.clone());
                        prop_assert!(prior.is_none() || prior.as_deref() == Some(req.tx_id.as_str()));
                    }
                    for r in &req.references {
                        prop_assert!(!winners.contains_key(r) || inputs.contains(r));
                    }
                }
                NotaryOutcome::Conflict(conflicts) => {
                    prop_assert!(!conflicts.is_empty());
                    for (s, by) in conflicts {
                        prop_assert_eq!(winners.get(&s), Some(&by));
                    }
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        for (s, by) in &winners {
            prop_assert_eq!(notary.consumed_by(s), Some(by.as_str()));
        }
    }
}

#[test]
fn a_time_window_is_judged_on_agreed_time_and_the_success_is_signed() {
    let mut notary = Notary::default();
    let req = NotariseRequest {
        tx_id: "t".into(),
        inputs: vec![StateRef {
            tx: "issue".into(),
            index: 0,
        }],
        references: vec![],
        time_window: Some((Some(100), Some(200))),
    };
    assert_eq!(
        notary.notarise(&req, 99),
        NotaryOutcome::OutsideTimeWindow { now: 99 }
    );
    assert_eq!(
        notary.notarise(&req, 200),
        NotaryOutcome::OutsideTimeWindow { now: 200 }
    );
    assert!(notary.is_empty(), "nothing consumed outside the window");
    assert_eq!(notary.notarise(&req, 150), NotaryOutcome::Notarised);
    assert_eq!(
        notary.notarise(&req, 150),
        NotaryOutcome::Notarised,
        "idempotent"
    );
    // The node's signature names the notary and covers the whole request: it cannot be
    // passed off as another notary's (the node signs for every notary it hosts with one
    // key), nor for other inputs, references or window.
    use synod_ledger::notary::{NotaryIdentity, sign_notarisation, verify_notarisation};
    let node = key(9);
    let prod = NotaryIdentity {
        name: "prod".into(),
        id: 4,
        created_gsn: 17,
    };
    let sig = sign_notarisation(&node, &prod, &req);
    let check = |notary: &NotaryIdentity, req: &NotariseRequest| {
        verify_notarisation(&node.verifying_key(), notary, req, &sig)
    };
    assert!(check(&prod, &req));
    let other_notaries = [
        NotaryIdentity {
            name: "mine".into(),
            ..prod.clone()
        },
        NotaryIdentity {
            id: 5,
            ..prod.clone()
        },
        NotaryIdentity {
            created_gsn: 18,
            ..prod.clone()
        },
    ];
    for other in &other_notaries {
        assert!(!check(other, &req), "{other:?}");
    }
    let mut other_tx = req.clone();
    other_tx.tx_id = "u".into();
    let mut more_inputs = req.clone();
    more_inputs.inputs.push(StateRef {
        tx: "issue".into(),
        index: 99,
    });
    let mut no_window = req.clone();
    no_window.time_window = None;
    for other in [other_tx, more_inputs, no_window] {
        assert!(!check(&prod, &other), "{other:?}");
    }
    assert!(!verify_notarisation(
        &key(8).verifying_key(),
        &prod,
        &req,
        &sig
    ));
}

/// Transaction ids are each creator's own: one signer cannot take another's id (squatting),
/// a status names which submission it describes, and every transaction, one with a bad
/// signature included, is found by its hash.
#[test]
fn ids_belong_to_their_creator_and_every_outcome_is_found_by_hash() {
    let (alice, mallory) = (key(1), key(2));
    let mut ch = channel(one_per_block());
    let squat = tx(&mallory, "invoice-42", vec![], vec![("m", Some("1"))]);
    let genuine = tx(&alice, "invoice-42", vec![], vec![("a", Some("1"))]);
    let again = tx(&alice, "invoice-42", vec![], vec![("a", Some("2"))]);
    let mut forged = tx(&alice, "invoice-43", vec![], vec![("a", Some("3"))]);
    forged
        .body
        .writes
        .push(("stolen".into(), Some(Bytes::from("x"))));
    for t in [&squat, &genuine, &again, &forged] {
        ch.deliver(&env(t), 1);
    }
    let v = ch.view().unwrap();
    let creator = |k: &SigningKey| k.verifying_key().to_bytes();
    let code = |k: &SigningKey| {
        v.tx_status(&creator(k), "invoice-42")
            .unwrap()
            .unwrap()
            .code
    };
    assert_eq!(code(&mallory), ValidationCode::Valid);
    assert_eq!(
        code(&alice),
        ValidationCode::Valid,
        "alice's id was squatted"
    );
    let by_hash = |t: &Transaction| {
        v.tx_by_hash(&synod_ledger::tx_hash(&t.encode()))
            .unwrap()
            .unwrap()
    };
    assert_eq!(by_hash(&again).code, ValidationCode::DuplicateTxid);
    assert_eq!(
        v.tx_status(&creator(&alice), "invoice-42")
            .unwrap()
            .unwrap(),
        by_hash(&genuine),
        "the status of alice's id describes her first submission"
    );
    assert_eq!(v.tx_statuses("invoice-42").unwrap().len(), 2);
    // The forgery claims no id, but its outcome is found by its hash.
    assert_eq!(by_hash(&forged).code, ValidationCode::BadCreatorSignature);
    assert!(v.tx_statuses("invoice-43").unwrap().is_empty());
}
