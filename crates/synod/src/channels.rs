//! The ledger channels' HTTP API: create a channel (a group whose application is a
//! `synod_ledger::Channel`), submit signed transactions, and read what was committed: a
//! transaction's status, a key's value and version, a block (in the canonical encoding, for
//! `synod ledger verify`), the tip.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use synod_ledger::{BatchConfig, Envelope, Transaction};
use synod_node::catalog::{AdminCommand, GroupKind};

use crate::admin::{bad_new_group, create_answer};
use crate::http::{Api, error, group_id, gsn_header, request_error};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /v1/channels`: Fabric's defaults where a field is left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateChannel {
    name: String,
    members: Vec<u16>,
    max_message_count: Option<usize>,
    preferred_max_bytes: Option<usize>,
    absolute_max_bytes: Option<usize>,
    batch_timeout_ms: Option<u64>,
}

pub(crate) async fn create(
    State(api): State<Arc<Api>>,
    body: Result<axum::Json<CreateChannel>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let axum::Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    if let Some(bad) = bad_new_group(&req.name, &req.members) {
        return bad;
    }
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
    let cmd = AdminCommand::CreateChannel {
        name: req.name,
        members: req.members,
        batch,
    };
    create_answer(&api, cmd).await
}

/// The channel's group id, or the error answer (not a group, or not a ledger channel).
async fn channel_id(api: &Api, name: &str) -> Result<u32, Response> {
    let id = group_id(api, name).await?;
    let is_channel = api
        .node
        .catalog()
        .group_by_id(id)
        .is_some_and(|g| matches!(g.kind, GroupKind::Ledger(_)));
    if is_channel {
        Ok(id)
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            format!("{name:?} is not a ledger channel"),
        ))
    }
}

/// `POST /v1/channels/{channel}/transactions`: the body is a transaction in its canonical
/// encoding (`synod_ledger::Transaction::encode`), signed by its creator. Answers once it is
/// ordered (202): it is judged when its block is cut; poll its status.
pub(crate) async fn submit(
    State(api): State<Arc<Api>>,
    Path(channel): Path<String>,
    body: Bytes,
) -> Response {
    let id = match channel_id(&api, &channel).await {
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
    let envelope = Envelope::Tx(tx.encode()).encode();
    match tokio::time::timeout(api.timeout, api.node.ledger_submit(id, envelope)).await {
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "timed out waiting for agreement (is a quorum reachable?)",
        ),
        Ok(Err(e)) => request_error(&e),
        Ok(Ok((gsn, blocks))) => (
            StatusCode::ACCEPTED,
            gsn_header(gsn.0),
            axum::Json(json!({ "tx_id": tx.body.id, "gsn": gsn.0, "blocks_cut": blocks })),
        )
            .into_response(),
    }
}

/// Runs `f` on the channel's ledger as this node holds it, or the error answer (no such
/// channel, or not hosted here).
async fn read<T: Send + 'static>(
    api: &Api,
    channel: &str,
    f: impl FnOnce(&synod_ledger::Channel) -> T + Send + 'static,
) -> Result<T, Response> {
    let id = channel_id(api, channel).await?;
    api.node
        .ledger_read(id, f)
        .await
        .map_err(|e| request_error(&e))
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
pub(crate) async fn show(State(api): State<Arc<Api>>, Path(channel): Path<String>) -> Response {
    let summary = read(&api, &channel, |c| {
        let (height, tip) = c.tip();
        json!({
            "height": height, "tip": hex(&tip), "commit_hash": hex(&c.commit_hash()),
            "pending": c.due_at().is_some(),
        })
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

/// `GET /v1/channels/{channel}/transactions/{id}`.
pub(crate) async fn tx_status(
    State(api): State<Arc<Api>>,
    Path((channel, tx)): Path<(String, String)>,
) -> Response {
    match read(&api, &channel, move |c| c.tx_status(&tx)).await {
        Ok(Some(s)) => axum::Json(json!({
            "block": s.block, "index": s.index, "code": s.code as u8, "code_name": s.code.name(),
        }))
        .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not committed on this node (yet): unknown, or waiting for its block to be cut",
        ),
        Err(r) => r,
    }
}

/// `GET /v1/channels/{channel}/keys/{key}`: the committed value and its version.
pub(crate) async fn key(
    State(api): State<Arc<Api>>,
    Path((channel, key)): Path<(String, String)>,
) -> Response {
    let value = read(&api, &channel, move |c| {
        c.get(&key).map(|(v, ver)| (v.clone(), ver))
    });
    match value.await {
        Ok(Some((value, version))) => axum::Json(json!({
            "value": base64::engine::general_purpose::STANDARD.encode(&value),
            "version": { "block": version.block, "tx": version.tx },
        }))
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such key"),
        Err(r) => r,
    }
}

/// `GET /v1/channels/{channel}/blocks/{number}`: the block in its canonical encoding
/// (postcard), for auditing (`synod ledger verify`).
pub(crate) async fn block(
    State(api): State<Arc<Api>>,
    Path((channel, number)): Path<(String, u64)>,
) -> Response {
    let bytes = read(&api, &channel, move |c| {
        c.block(number)
            .map(|b| postcard::to_stdvec(b).unwrap_or_default())
    });
    match bytes.await {
        Ok(b) => octets(b, "no such block on this node (yet)"),
        Err(r) => r,
    }
}

/// `GET /v1/channels/{channel}/transactions/{id}/proof`: a [`synod_ledger::TxProof`] in its
/// canonical encoding (postcard): the transaction under its header, the header under the chain
/// root at this node's height. `synod ledger prove` checks it and compares the root with the
/// other nodes'.
pub(crate) async fn tx_proof(
    State(api): State<Arc<Api>>,
    Path((channel, tx)): Path<(String, String)>,
) -> Response {
    let bytes = read(&api, &channel, move |c| {
        c.prove_tx(&tx)
            .map(|p| postcard::to_stdvec(&p).unwrap_or_default())
    });
    match bytes.await {
        Ok(b) => octets(b, "not committed on this node (yet)"),
        Err(r) => r,
    }
}

/// `GET /v1/channels/{channel}/roots/{height}`: the RFC 6962 root of the first `height` block
/// header hashes (the chain tree), as this node holds them.
pub(crate) async fn root(
    State(api): State<Arc<Api>>,
    Path((channel, height)): Path<(String, u64)>,
) -> Response {
    match read(&api, &channel, move |c| c.chain_root(height)).await {
        Ok(Some(root)) => {
            axum::Json(json!({ "height": height, "root": hex(&root) })).into_response()
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
pub(crate) async fn consistency(
    State(api): State<Arc<Api>>,
    Path((channel, from, to)): Path<(String, u64, u64)>,
) -> Response {
    let proof = read(&api, &channel, move |c| {
        Some((
            c.prove_consistency(from, to)?,
            c.chain_root(from)?,
            c.chain_root(to)?,
        ))
    });
    match proof.await {
        Ok(Some((proof, from_root, to_root))) => axum::Json(json!({
            "from": from, "to": to, "from_root": hex(&from_root), "to_root": hex(&to_root),
            "proof": hex(&proof),
        }))
        .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "needs 0 < from < to <= this node's height",
        ),
        Err(r) => r,
    }
}
