//! Applications' states as a node receives them in a peer's snapshot (and reads its own):
//! the key-value store's and the notary's encodings (`Hosted::decode_state`), and a ledger
//! channel's checkpoint stream (`Hosted::read_checkpoint`: its description inline, then every
//! table of its database as records, a count and a SHA-256), which is then used as the node
//! uses an installed channel.
//!
//! The first byte picks the application. For a channel the rest is the stream's records; the
//! target appends the count and digest that make the stream whole (so the fuzzer reaches what
//! lies behind the digest) and describes what they hold in the inline part, as the sending
//! peer does.
//!
//! Nothing may panic; a state that decodes must encode and decode back to itself.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use synod_exec::{Application, GroupSpec, Hosted};
use synod_fuzz::seeds;
use synod_kv::{KvApp, KvCommand, KvRequest};
use synod_ledger::{ChannelApp, ChannelState, NotaryApp};
use synod_node::{GroupId, ReplicaId};

fn spec(name: &str) -> GroupSpec {
    GroupSpec {
        id: GroupId(7),
        name: name.into(),
        created_gsn: 3,
        genesis: vec![ReplicaId(1), ReplicaId(2), ReplicaId(3)],
        params: Bytes::new(),
    }
}

fn kv(data: &[u8]) {
    let app = KvApp::new(&spec("kv"));
    let Ok(state) = app.decode_state(data) else {
        return;
    };
    let again = app
        .decode_state(&KvApp::encode_state(&state))
        .expect("an encoded state decodes");
    assert_eq!(again, state, "key-value state round trip");
    app.restore(state);
    // What a node does with a restored store: reads and writes.
    let _ = app.summary();
    let mut kv = app.snapshot();
    let _ = kv.content_hash();
    for (k, _) in kv.clone().prefix("").take(4) {
        let req = KvRequest {
            token: Some(format!("t{k}")),
            cmd: KvCommand::Delete {
                key: k.clone(),
                cas: None,
            },
        };
        kv.apply_request(u64::MAX, &req);
    }
}

fn notary(data: &[u8]) {
    let app = NotaryApp::new(&spec("notary"));
    let Ok(state) = app.decode_state(data) else {
        return;
    };
    let again = app
        .decode_state(&NotaryApp::encode_state(&state))
        .expect("an encoded state decodes");
    assert_eq!(again, state, "notary state round trip");
    let mut state = state;
    let _ = state.notarise(&seeds::notarise_request(), 5);
    app.restore(state);
    let _ = app.summary();
}

fn channel(data: &[u8]) {
    let stream = seeds::checkpoint_stream(data);
    let db = seeds::checkpoint_database(data);
    // Describe what the stream holds, as the sending peer does (its tip, if it has one).
    let inline = match synod_ledger::Channel::open(db) {
        Ok(c) => match c.view() {
            Ok(view) => ChannelApp::encode_state(&ChannelState::View(view)),
            Err(_) => return,
        },
        Err(_) => Bytes::from_static(&[3]),
    };
    let app = ChannelApp::new(&spec("channel"));
    let Ok(ChannelState::Staged(mut channel, _)) =
        app.read_checkpoint(&inline, &mut stream.as_slice())
    else {
        return;
    };
    // Installed: what the node does with a channel next. (A checkpoint whose tables did not
    // agree with its tip was once installed, and reads over it panicked:
    // fuzz/regressions/app_state/checkpoint-tip-without-chain.)
    seeds::use_channel(&mut channel);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => kv(rest),
        1 => notary(rest),
        _ => channel(rest),
    }
});
