//! The notaries' HTTP API: create a notary (a group whose application is the set of consumed
//! states), notarise a transaction, and fetch the node's notary key to check signatures.

use std::sync::Arc;

use crate::NotaryApp;
use crate::{NotariseRequest, NotaryOutcome, StateRef};
use axum::Extension;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use synod_core::GroupId;
use synod_node::access::Role;
use synod_node::catalog::GroupInfo;

use synod_api::access::{self, AccessJson, Who, authorize};
use synod_api::groups;
use synod_api::{Api, error, gsn_header, request_error, timed_out};

use super::{NOTARY, NotaryKey};

/// Why a request whose states overlap is refused.
const INVALID_STATES: &str =
    "an input is listed twice, or a state is both an input and a reference";

/// Most inputs plus references one request may name.
const STATES_MAX: usize = 1_024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateNotary {
    name: String,
    members: Vec<u16>,
    /// Who may notarise (writers) and administer; every role to the creator if left out.
    access: Option<AccessJson>,
}

/// `POST /v1/notaries`.
pub(super) async fn create(
    State(api): State<Arc<Api>>,
    who: Who,
    body: Result<axum::Json<CreateNotary>, JsonRejection>,
) -> Response {
    let axum::Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    let params = bytes::Bytes::new();
    groups::create_with_access(
        &api,
        &who,
        req.name,
        req.members,
        &NOTARY,
        params,
        req.access,
    )
    .await
}

/// `PUT /v1/notaries/{notary}/access`.
pub(super) async fn set_access(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(notary): Path<String>,
    body: Result<axum::Json<AccessJson>, JsonRejection>,
) -> Response {
    groups::set_access(api, who, notary, &NOTARY, body).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateJson {
    tx: String,
    index: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Window {
    from_ms: Option<u64>,
    until_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Notarise {
    tx_id: String,
    inputs: Vec<StateJson>,
    #[serde(default)]
    references: Vec<StateJson>,
    time_window: Option<Window>,
}

fn refs(states: Vec<StateJson>) -> Vec<StateRef> {
    states
        .into_iter()
        .map(|s| StateRef {
            tx: s.tx,
            index: s.index,
        })
        .collect()
}

/// `POST /v1/notaries/{notary}/notarise`: 200 with this node's signature if the inputs are
/// now consumed by this transaction (or already were, by it); 409 naming each conflicting
/// state and its consumer; 422 outside the time window (judged on agreed time).
pub(super) async fn notarise(
    State(api): State<Arc<Api>>,
    Extension(key): Extension<NotaryKey>,
    who: Who,
    Path(notary): Path<String>,
    body: Result<axum::Json<Notarise>, JsonRejection>,
) -> Response {
    let id = match authorize(&api, &who, &notary, &NOTARY, Role::Write).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let axum::Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    if req.tx_id.is_empty()
        || req.tx_id.len() > 256
        || req.inputs.is_empty()
        || req.inputs.len() + req.references.len() > STATES_MAX
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "a request has a transaction id (1 to 256 bytes), at least one input and at most {STATES_MAX} states"
            ),
        );
    }
    let ms = |t: Option<u64>| t.map(|ms| ms.saturating_mul(1_000_000));
    let mut inputs: Vec<(&str, u32)> = req.inputs.iter().map(|s| (&*s.tx, s.index)).collect();
    inputs.sort_unstable();
    if inputs.windows(2).any(|w| w[0] == w[1])
        || req
            .references
            .iter()
            .any(|r| inputs.binary_search(&(&*r.tx, r.index)).is_ok())
    {
        return error(StatusCode::BAD_REQUEST, INVALID_STATES);
    }
    let request = NotariseRequest {
        tx_id: req.tx_id,
        inputs: refs(req.inputs),
        references: refs(req.references),
        time_window: req.time_window.map(|w| (ms(w.from_ms), ms(w.until_ms))),
    };
    // Who signs is fixed before the request is agreed: the notary as the catalog names it now
    // (authorize just found it there), so a success is always answered with a signature.
    let Some(identity) = notary_identity(&api, id) else {
        return error(StatusCode::NOT_FOUND, format!("no notary named {notary:?}"));
    };
    let signed = request.clone();
    let command = NotaryApp::encode(&request);
    let notarised = api.node.submit_to::<NotaryApp>(id, command);
    match tokio::time::timeout(api.timeout, notarised).await {
        Err(_) => timed_out(),
        Ok(Err(e)) => request_error(&e),
        Ok(Ok((gsn, outcome))) => {
            let headers = gsn_header(gsn.0);
            match outcome {
                NotaryOutcome::Notarised => {
                    // What the signature covers, so that anyone can check it with
                    // `crate::notary::verify_notarisation`: this notary, and the request
                    // as judged (times in nanoseconds).
                    let signature = crate::notary::sign_notarisation(&key.0, &identity, &signed);
                    (
                        headers,
                        axum::Json(json!({
                            "notarised": true, "tx_id": signed.tx_id,
                            "signature": hex::encode(signature.to_bytes()),
                            "notary_key": hex::encode(key.0.verifying_key().to_bytes()),
                            "signed": { "notary": identity, "request": signed },
                        })),
                    )
                        .into_response()
                }
                NotaryOutcome::Conflict(conflicts) => (
                    StatusCode::CONFLICT,
                    headers,
                    axum::Json(json!({
                        "notarised": false,
                        "conflicts": conflicts.iter().map(|(s, by)| json!({
                            "state": { "tx": s.tx, "index": s.index }, "consumed_by": by,
                        })).collect::<Vec<_>>(),
                    })),
                )
                    .into_response(),
                NotaryOutcome::OutsideTimeWindow { now } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    headers,
                    axum::Json(json!({
                        "notarised": false,
                        "error": "outside the time window (agreed time)",
                        "agreed_time_ms": now / 1_000_000,
                    })),
                )
                    .into_response(),
                NotaryOutcome::Invalid => error(StatusCode::BAD_REQUEST, INVALID_STATES),
            }
        }
    }
}

/// `GET /v1/notaries/{notary}/key`: the key this node signs notarisations with.
pub(super) async fn key(
    State(api): State<Arc<Api>>,
    Extension(key): Extension<NotaryKey>,
    who: Who,
    Path(notary): Path<String>,
) -> Response {
    if let Err(r) = authorize(&api, &who, &notary, &NOTARY, Role::Read).await {
        return r;
    }
    let key = key.0.verifying_key().to_bytes();
    axum::Json(json!({ "notary_key": hex::encode(key) })).into_response()
}

/// `GET /v1/notaries`: the notaries the caller may read (all of them for a cluster
/// administrator), with their access lists.
pub(super) async fn list(State(api): State<Arc<Api>>, who: Who) -> Response {
    let wanted = |g: &GroupInfo| g.kind == crate::NOTARY_KIND;
    groups::list_kind(&api, access::visible_to(&api, &who, wanted), "notaries").await
}

/// `DELETE /v1/notaries/{notary}`: removes it and its consumed states on every node
/// (administrators).
pub(super) async fn remove(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(notary): Path<String>,
) -> Response {
    if let Err(r) = authorize(&api, &who, &notary, &NOTARY, Role::Admin).await {
        return r;
    }
    groups::remove_group(&api, who, notary).await
}

/// Notary `group` as a signature names it (name, id, creation GSN), from this node's catalog.
fn notary_identity(api: &Api, group: GroupId) -> Option<crate::notary::NotaryIdentity> {
    let catalog = api.node.catalog();
    let info = catalog.group_by_id(group)?;
    Some(crate::notary::NotaryIdentity {
        name: info.name.clone(),
        id: info.id.0,
        created_gsn: info.created_gsn,
    })
}
