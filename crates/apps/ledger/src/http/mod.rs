//! The ledger's HTTP routes, built on `synod-api`: ledger channels under `/v1/channels`
//! (`channels.rs`: create, submit signed transactions, read statuses, keys, blocks, proofs) and
//! notaries under `/v1/notaries` (`notaries.rs`: notarise, signed with the node's key). Both
//! kinds carry an access list: reads need read, submitting and notarising need write, the
//! access list, members and removal need admin.

use std::sync::Arc;

use axum::routing::{self, delete, get, post};
use axum::{Extension, Router};
use synod_api::Api;
use synod_api::access::Kind;
use synod_api::groups::{add_member, remove_member};

mod channels;
mod notaries;

/// Ledger channels, as routes and messages name them.
const CHANNEL: Kind = Kind {
    name: crate::CHANNEL_KIND,
    noun: "a ledger channel",
};

/// Notaries, as routes and messages name them.
const NOTARY: Kind = Kind {
    name: crate::NOTARY_KIND,
    noun: "a notary",
};

/// The key this node signs notarisations with (kept by the server, outside the replicated
/// state: each node signs with its own).
#[derive(Clone)]
struct NotaryKey(Arc<ed25519_dalek::SigningKey>);

/// The OpenAPI paths of these routes, merged by the server into one document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The channels' and notaries' routes, served with the [`Api`] as state; `notary_key` signs
/// this node's notarisations.
pub fn router(notary_key: ed25519_dalek::SigningKey) -> Router<Arc<Api>> {
    Router::new()
        .route("/v1/channels", get(channels::list).post(channels::create))
        .route(
            "/v1/channels/{channel}",
            get(channels::show).delete(channels::remove),
        )
        .route(
            "/v1/channels/{channel}/access",
            routing::put(channels::set_access),
        )
        // A channel's members, as for any group (Fabric's "join" is adding a member here).
        .route("/v1/channels/{channel}/members", post(add_member))
        .route("/v1/channels/{channel}/members/{id}", delete(remove_member))
        .route(
            "/v1/channels/{channel}/transactions",
            post(channels::submit),
        )
        .route(
            "/v1/channels/{channel}/transactions/{tx}",
            get(channels::tx_status),
        )
        .route(
            "/v1/channels/{channel}/hashes/{hash}",
            get(channels::tx_by_hash),
        )
        .route("/v1/channels/{channel}/keys/{key}", get(channels::key))
        .route(
            "/v1/channels/{channel}/transactions/{tx}/proof",
            get(channels::tx_proof),
        )
        .route("/v1/channels/{channel}/roots/{height}", get(channels::root))
        .route(
            "/v1/channels/{channel}/consistency/{from}/{to}",
            get(channels::consistency),
        )
        .route(
            "/v1/channels/{channel}/blocks/{block}",
            get(channels::block),
        )
        .route("/v1/notaries", get(notaries::list).post(notaries::create))
        .route("/v1/notaries/{notary}", delete(notaries::remove))
        .route(
            "/v1/notaries/{notary}/access",
            routing::put(notaries::set_access),
        )
        .route("/v1/notaries/{notary}/notarise", post(notaries::notarise))
        .route("/v1/notaries/{notary}/key", get(notaries::key))
        .layer(Extension(NotaryKey(Arc::new(notary_key))))
}
