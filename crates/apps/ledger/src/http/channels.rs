//! The ledger channels' HTTP API: create a channel (a group whose application is a
//! `crate::Channel`), submit signed transactions, and read what was committed: a
//! transaction's status, a key's value and version, a block (in the canonical encoding, for
//! `synod ledger verify`), the tip.

use std::sync::Arc;

use crate::ChannelApp;
use crate::TxStatus;
use crate::merkle::Hash;
use crate::store::StoreError;
use crate::view::LedgerView;
use crate::{BatchConfig, Envelope, Transaction, Version};
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use synod_node::access::Role;
use synod_node::catalog::GroupInfo;

use synod_api::access::{self, AccessJson, Who, authorize};
use synod_api::groups;
use synod_api::{Api, error, gsn_header, request_error, timed_out};

use super::CHANNEL;

/// `POST /v1/channels`: Fabric's defaults where a field is left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateChannel {
    name: String,
    members: Vec<u16>,
    max_message_count: Option<usize>,
    preferred_max_bytes: Option<usize>,
    absolute_max_bytes: Option<usize>,
    batch_timeout_ms: Option<u64>,
    /// Who may read, write and administer; every role to the creator if left out.
    access: Option<AccessJson>,
}

/// `POST /v1/channels`.
pub(super) async fn create(
    State(api): State<Arc<Api>>,
    who: Who,
    body: Result<axum::Json<CreateChannel>, JsonRejection>,
) -> Response {
    let axum::Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    let d = BatchConfig::default();
    let batch = BatchConfig {
        max_message_count: req.max_message_count.unwrap_or(d.max_message_count),
        preferred_max_bytes: req.preferred_max_bytes.unwrap_or(d.preferred_max_bytes),
        absolute_max_bytes: req.absolute_max_bytes.unwrap_or(d.absolute_max_bytes),
        batch_timeout_ns: req
            .batch_timeout_ms
            .map_or(d.batch_timeout_ns, |ms| ms.saturating_mul(1_000_000)),
    };
    let sane = (1..=10_000).contains(&batch.max_message_count)
        && batch.preferred_max_bytes >= 1
        && batch.preferred_max_bytes <= batch.absolute_max_bytes
        && batch.absolute_max_bytes <= 64 * 1024 * 1024
        && (1_000_000..=600_000_000_000).contains(&batch.batch_timeout_ns);
    if !sane {
        return error(
            StatusCode::BAD_REQUEST,
            "batch rules: 1 to 10,000 messages, 1 <= preferred <= absolute <= 64 MiB, a timeout \
             of 1 ms to 10 min",
        );
    }
    let params = crate::hosted::channel_params(&batch);
    groups::create_with_access(
        &api,
        &who,
        req.name,
        req.members,
        &CHANNEL,
        params,
        req.access,
    )
    .await
}

/// `PUT /v1/channels/{channel}/access`.
pub(super) async fn set_access(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(channel): Path<String>,
    body: Result<axum::Json<AccessJson>, JsonRejection>,
) -> Response {
    groups::set_access(api, who, channel, &CHANNEL, body).await
}

/// `POST /v1/channels/{channel}/transactions`: the body is a transaction in its canonical
/// encoding (`crate::Transaction::encode`), signed by its creator. Answers once it is
/// ordered (202): it is judged when its block is cut; poll its status.
pub(super) async fn submit(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(channel): Path<String>,
    body: Bytes,
) -> Response {
    let id = match authorize(&api, &who, &channel, &CHANNEL, Role::Write).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let tx = match Transaction::decode(&body) {
        Ok(tx) => tx,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not an encoded transaction: {e}"),
            );
        }
    };
    let encoded = tx.encode();
    let hash = crate::tx_hash(&encoded);
    let catalog = api.node.catalog();
    if let Some(batch) = catalog
        .group_by_id(id)
        .and_then(|g| crate::hosted::decode_channel_params(&g.params))
        && encoded.len() > batch.absolute_max_bytes
    {
        // The cutter would leave it out of every block: refuse it rather than order it.
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the transaction is {} bytes; this channel's blocks hold at most {}",
                encoded.len(),
                batch.absolute_max_bytes
            ),
        );
    }
    let envelope = Envelope::Tx(encoded).encode();
    let submitted = api.node.submit_to::<ChannelApp>(id, envelope);
    match tokio::time::timeout(api.timeout, submitted).await {
        Err(_) => timed_out(),
        Ok(Err(e)) => request_error(&e),
        Ok(Ok((gsn, blocks))) => (
            StatusCode::ACCEPTED,
            gsn_header(gsn.0),
            axum::Json(json!({
                "tx_id": tx.body.id, "creator": hex::encode(tx.body.creator),
                "hash": hex::encode(hash), "gsn": gsn.0, "blocks_cut": blocks,
            })),
        )
            .into_response(),
    }
}

/// Runs `f` on the channel's ledger as this node holds it, or the error answer (no such
/// channel, not hosted here, or `who` may not read it).
async fn read<T: Send + 'static>(
    api: &Api,
    who: &Who,
    channel: &str,
    f: impl FnOnce(&LedgerView) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let id = authorize(api, who, channel, &CHANNEL, Role::Read).await?;
    let (app, _) = api
        .node
        .app_of::<ChannelApp>(id)
        .await
        .map_err(|e| request_error(&e))?;
    // On a blocking thread, a few at a time: some reads (proofs) walk the whole chain. They
    // read a consistent view of the channel's database, so no command waits for a reader.
    let stopped = || request_error(&synod_node::RequestError::Stopped);
    let _permit = api.readers.acquire().await.map_err(|_| stopped())?;
    tokio::task::spawn_blocking(move || app.view().and_then(|view| f(&view)))
        .await
        .map_err(|_| stopped())?
        .map_err(|e| {
            tracing::error!(channel, error = %e, "a channel read failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("this node cannot read the channel: {e}"),
            )
        })
}

/// A canonical encoding as the answer's body, or 404 with `missing`.
fn octets(bytes: Option<Vec<u8>>, missing: &str) -> Response {
    match bytes {
        Some(bytes) => (
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, missing.to_string()),
    }
}

/// `GET /v1/channels/{channel}`: height, tip and commit hash on this node.
pub(super) async fn show(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(channel): Path<String>,
) -> Response {
    let summary = read(&api, &who, &channel, |c| {
        let (height, tip) = c.tip();
        Ok(json!({
            "height": height, "tip": hex::encode(tip), "commit_hash": hex::encode(c.commit_hash()),
            "pending": c.due_at().is_some(),
        }))
    });
    match summary.await {
        Ok(mut v) => {
            v["id"] = json!(api.node.resolve(&channel));
            v["channel"] = json!(channel);
            axum::Json(v).into_response()
        }
        Err(r) => r,
    }
}

#[derive(Deserialize, Default)]
pub(super) struct TxQuery {
    /// The creator's public key (64 hex digits): ids are each creator's own.
    creator: Option<String>,
}

/// Why a status or proof query found no one submission.
enum Missing {
    /// None with this id (and creator).
    None,
    /// Several creators used this id: the caller must name one.
    Several(Vec<[u8; 32]>),
}

/// The answer to a status query for a transaction this node has not committed.
const NOT_COMMITTED: &str =
    "not committed on this node (yet): unknown, or waiting for its block to be cut";

/// The creator a query names, or why it is not a public key.
fn parse_creator(q: &TxQuery) -> Result<Option<[u8; 32]>, &'static str> {
    let Some(text) = &q.creator else {
        return Ok(None);
    };
    let mut creator = [0; 32];
    hex::decode_to_slice(text, &mut creator)
        .map_err(|_| "creator is the creator's Ed25519 public key: 64 hex digits")?;
    Ok(Some(creator))
}

/// The submission a status or proof query means.
fn find(
    c: &LedgerView,
    id: &str,
    creator: Option<[u8; 32]>,
) -> Result<Result<TxStatus, Missing>, StoreError> {
    if let Some(creator) = creator {
        return Ok(c.tx_status(&creator, id)?.ok_or(Missing::None));
    }
    let mut all = c.tx_statuses(id)?;
    Ok(match all.len() {
        0 => Err(Missing::None),
        1 => Ok(all.remove(0).1),
        _ => Err(Missing::Several(
            all.into_iter().map(|(creator, _)| creator).collect(),
        )),
    })
}

/// A status as answered: where the transaction is, its code, and which submission it is (its
/// creator and hash, read from its block).
fn status_json(c: &LedgerView, s: TxStatus) -> Result<serde_json::Value, StoreError> {
    let encoded = c
        .block(s.block)?
        .and_then(|b| b.data.get(s.index as usize).cloned());
    let creator = encoded
        .as_deref()
        .and_then(|e| Transaction::decode(e).ok())
        .map(|t| hex::encode(t.body.creator));
    Ok(json!({
        "block": s.block, "index": s.index, "code": s.code as u8, "code_name": s.code.name(),
        "creator": creator, "hash": encoded.map(|e| hex::encode(crate::tx_hash(&e))),
    }))
}

fn missing(why: Missing) -> Response {
    match why {
        Missing::None => error(StatusCode::NOT_FOUND, NOT_COMMITTED),
        Missing::Several(creators) => (
            StatusCode::CONFLICT,
            axum::Json(json!({
                "error": "several creators used this id: name yours with ?creator=<public key hex>",
                "creators": creators.iter().map(hex::encode).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
    }
}

/// `GET /v1/channels/{channel}/transactions/{id}`: the outcome of a correctly signed
/// transaction (`?creator=` names whose, when several creators used the id), with its creator
/// and hash, so the caller knows which submission it describes.
pub(super) async fn tx_status(
    State(api): State<Arc<Api>>,
    who: Who,
    Path((channel, tx)): Path<(String, String)>,
    Query(q): Query<TxQuery>,
) -> Response {
    let creator = match parse_creator(&q) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let answer = read(&api, &who, &channel, move |c| {
        Ok(match find(c, &tx, creator)? {
            Ok(s) => Ok(status_json(c, s)?),
            Err(why) => Err(why),
        })
    });
    match answer.await {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(why)) => missing(why),
        Err(r) => r,
    }
}

/// `GET /v1/channels/{channel}/hashes/{hash}`: the outcome of the transaction whose encoding
/// hashes to `hash` (the `hash` its submission was answered with), whatever it was: also a
/// transaction with a bad signature or a duplicate id, which claims no id.
pub(super) async fn tx_by_hash(
    State(api): State<Arc<Api>>,
    who: Who,
    Path((channel, hash)): Path<(String, String)>,
) -> Response {
    let mut h = [0; 32];
    if hex::decode_to_slice(&hash, &mut h).is_err() {
        return error(StatusCode::BAD_REQUEST, "a hash is 64 hex digits");
    }
    let answer = read(&api, &who, &channel, move |c| {
        c.tx_by_hash(&h)?.map(|s| status_json(c, s)).transpose()
    });
    match answer.await {
        Ok(Some(v)) => axum::Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, NOT_COMMITTED),
        Err(r) => r,
    }
}

#[derive(Deserialize, Default)]
pub(super) struct KeyQuery {
    history: Option<String>,
}

fn version_json(v: Version) -> serde_json::Value {
    json!({ "block": v.block, "tx": v.tx })
}

fn value_json(value: &[u8]) -> serde_json::Value {
    json!(base64::engine::general_purpose::STANDARD.encode(value))
}

/// Most versions one history answer lists (the newest).
const HISTORY_MAX: usize = 1_000;

/// `GET /v1/channels/{channel}/keys/{key}`: the committed value (base64) and its version;
/// with `?history`, every version written (newest last, at most the last 1,000), a deletion
/// as a `null` value.
pub(super) async fn key(
    State(api): State<Arc<Api>>,
    who: Who,
    Path((channel, key)): Path<(String, String)>,
    Query(q): Query<KeyQuery>,
) -> Response {
    let history = q.history.is_some();
    let answer = read(&api, &who, &channel, move |c| {
        Ok(if history {
            c.history(&key, HISTORY_MAX)?.map(|(newest, total)| {
                json!({
                    "versions": newest.iter().map(|(version, value)| json!({
                        "version": version_json(*version),
                        "value": value.as_deref().map(value_json),
                    })).collect::<Vec<_>>(),
                    "total": total,
                })
            })
        } else {
            c.get(&key)?.map(|(value, version)| {
                json!({ "value": value_json(&value), "version": version_json(version) })
            })
        })
    });
    match answer.await {
        Ok(Some(v)) => axum::Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such key"),
        Err(r) => r,
    }
}

#[derive(Deserialize, Default)]
pub(super) struct BlockQuery {
    json: Option<String>,
}

/// `GET /v1/channels/{channel}/blocks/{number or header hash}`: the block in its canonical
/// encoding (postcard), for auditing (`synod ledger verify`); with `?json`, its header,
/// metadata and transaction count as JSON.
pub(super) async fn block(
    State(api): State<Arc<Api>>,
    who: Who,
    Path((channel, which)): Path<(String, String)>,
    Query(q): Query<BlockQuery>,
) -> Response {
    let mut hash = Hash::default();
    let number = match which.parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) if hex::decode_to_slice(&which, &mut hash).is_ok() => None,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "name a block by its number or its header hash (64 hex digits)",
            );
        }
    };
    let as_json = q.json.is_some();
    let answer = read(&api, &who, &channel, move |c| {
        let block = match number {
            Some(n) => c.block(n)?,
            None => c.block_by_hash(&hash)?,
        };
        Ok(block.map(|block| {
            if as_json {
                serde_json::to_vec(&json!({
                    "number": block.header.number,
                    "hash": hex::encode(block.header.hash()),
                    "previous_hash": hex::encode(block.header.previous_hash),
                    "data_hash": hex::encode(block.header.data_hash),
                    "transactions": block.data.len(),
                    "flags": block.metadata.flags.iter().map(|f| f.name()).collect::<Vec<_>>(),
                    "time_ms": block.metadata.time / 1_000_000,
                    "commit_hash": hex::encode(block.metadata.commit_hash),
                }))
                .unwrap_or_default()
            } else {
                postcard::to_stdvec(&block).unwrap_or_default()
            }
        }))
    });
    match answer.await {
        Ok(Some(bytes)) if as_json => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Ok(b) => octets(b, "no such block on this node (yet)"),
        Err(r) => r,
    }
}

/// `GET /v1/channels`: the channels the caller may read (all of them for a cluster
/// administrator), with their access lists.
pub(super) async fn list(State(api): State<Arc<Api>>, who: Who) -> Response {
    let wanted = |g: &GroupInfo| g.kind == crate::CHANNEL_KIND;
    groups::list_kind(&api, access::visible_to(&api, &who, wanted), "channels").await
}

/// `DELETE /v1/channels/{channel}`: removes it and its data on every node (administrators).
pub(super) async fn remove(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(channel): Path<String>,
) -> Response {
    if let Err(r) = authorize(&api, &who, &channel, &CHANNEL, Role::Admin).await {
        return r;
    }
    groups::remove_group(&api, who, channel).await
}

/// `GET /v1/channels/{channel}/transactions/{id}/proof`: a [`crate::TxProof`] in its
/// canonical encoding (postcard): the transaction under its header, the header under the chain
/// root at this node's height. `synod ledger prove` checks it and compares the root with the
/// other nodes'.
pub(super) async fn tx_proof(
    State(api): State<Arc<Api>>,
    who: Who,
    Path((channel, tx)): Path<(String, String)>,
    Query(q): Query<TxQuery>,
) -> Response {
    let creator = match parse_creator(&q) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let bytes = read(&api, &who, &channel, move |c| {
        Ok(match find(c, &tx, creator)? {
            Ok(s) => Ok(c
                .prove_tx(s)?
                .map(|p| postcard::to_stdvec(&p).unwrap_or_default())),
            Err(why) => Err(why),
        })
    });
    match bytes.await {
        Ok(Ok(b)) => octets(b, "not committed on this node (yet)"),
        Ok(Err(why)) => missing(why),
        Err(r) => r,
    }
}

/// `GET /v1/channels/{channel}/roots/{height}`: the RFC 6962 root of the first `height` block
/// header hashes (the chain tree), as this node holds them.
pub(super) async fn root(
    State(api): State<Arc<Api>>,
    who: Who,
    Path((channel, height)): Path<(String, u64)>,
) -> Response {
    match read(&api, &who, &channel, move |c| c.chain_root(height)).await {
        Ok(Some(root)) => {
            axum::Json(json!({ "height": height, "root": hex::encode(root) })).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "this node's chain is not that high (yet)",
        ),
        Err(r) => r,
    }
}

/// `GET /v1/channels/{channel}/consistency/{from}/{to}`: the RFC 6962 proof that the chain
/// tree of `from` blocks is a prefix of the tree of `to` blocks, with both roots.
pub(super) async fn consistency(
    State(api): State<Arc<Api>>,
    who: Who,
    Path((channel, from, to)): Path<(String, u64, u64)>,
) -> Response {
    let proof = read(&api, &who, &channel, move |c| {
        let (Some(proof), Some(from_root), Some(to_root)) = (
            c.prove_consistency(from, to)?,
            c.chain_root(from)?,
            c.chain_root(to)?,
        ) else {
            return Ok(None);
        };
        Ok(Some((proof, from_root, to_root)))
    });
    match proof.await {
        Ok(Some((proof, from_root, to_root))) => axum::Json(json!({
            "from": from, "to": to, "from_root": hex::encode(from_root), "to_root": hex::encode(to_root),
            "proof": hex::encode(proof),
        }))
        .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "needs 0 < from < to <= this node's height",
        ),
        Err(r) => r,
    }
}
