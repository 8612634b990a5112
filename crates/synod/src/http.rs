//! The HTTP API, following Consul's KV conventions where they fit: `PUT/GET/DELETE
//! /v1/kv/{key}` (`?cas=GSN`, `?stale`, `?raw`, `?recurse`), `/v1/status`,
//! `/health`, `/metrics` (Prometheus text), `/openapi.json` and Swagger UI at `/docs`; the same KV
//! routes under `/v1/groups/{group}/kv`; groups and members under `/v1/groups` ([`crate::admin`]).
//! Every answer carries the GSN it reflects in `X-Synod-Gsn`. A write carrying an
//! `Idempotency-Key` header is applied at most once however often it is retried. Errors are JSON
//! `{"error": "..."}` with a 4xx or 5xx status.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, delete, get, post};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use synod_kv::{KvCommand, KvNode, KvOutput, TOKEN_MAX};
use synod_node::{DEFAULT_GROUP, Node, RequestError};

use crate::{access, admin, channels, notaries};

/// Largest value accepted, bytes.
pub(crate) const VALUE_MAX: usize = 512 * 1024;
/// Longest key accepted, bytes.
pub(crate) const KEY_MAX: usize = 512;

pub(crate) struct Api {
    pub(crate) node: Node,
    pub(crate) timeout: Duration,
    /// Who may administer the cluster (`None`: everyone; see `access::not_cluster_admin`).
    pub(crate) cluster_admins: Option<synod_node::access::Access>,
    /// Signs this node's notarisations (`data_dir/notary.key`).
    pub(crate) notary_key: ed25519_dalek::SigningKey,
    /// Bounds the ledger reads running at once (each on a blocking thread; a proof walks the
    /// whole chain): one per core, the rest wait their turn.
    pub(crate) readers: tokio::sync::Semaphore,
}

#[derive(Deserialize, Default)]
struct KvQuery {
    cas: Option<u64>,
    stale: Option<String>,
    raw: Option<String>,
    recurse: Option<String>,
}

pub(crate) fn router(
    node: Node,
    timeout: Duration,
    cluster_admins: Option<synod_node::access::Access>,
    notary_key: ed25519_dalek::SigningKey,
) -> Router {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let api = Arc::new(Api {
        node,
        timeout,
        cluster_admins,
        notary_key,
        readers: tokio::sync::Semaphore::new(cores),
    });
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/kv/{*key}", get(kv_get).put(kv_put).delete(kv_delete))
        .route("/v1/groups", get(admin::list).post(admin::create))
        .route("/v1/groups/{group}", get(admin::show).delete(admin::remove))
        .route("/v1/groups/{group}/members", post(admin::add_member))
        .route("/v1/whoami", get(access::whoami))
        .route("/v1/notaries", get(notaries::list).post(notaries::create))
        .route("/v1/notaries/{notary}", delete(notaries::remove))
        .route(
            "/v1/notaries/{notary}/access",
            routing::put(notaries::set_access),
        )
        .route("/v1/notaries/{notary}/notarise", post(notaries::notarise))
        .route("/v1/notaries/{notary}/key", get(notaries::key))
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
        .route("/v1/channels/{channel}/members", post(admin::add_member))
        .route(
            "/v1/channels/{channel}/members/{id}",
            delete(admin::remove_member),
        )
        .route(
            "/v1/channels/{channel}/transactions",
            post(channels::submit),
        )
        .route(
            "/v1/channels/{channel}/transactions/{tx}",
            get(channels::tx_status),
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
        .route(
            "/v1/groups/{group}/members/{id}",
            delete(admin::remove_member),
        )
        .route(
            "/v1/groups/{group}/kv/{*key}",
            get(group_kv_get).put(group_kv_put).delete(group_kv_delete),
        )
        // Swagger UI (vendored in the binary: no CDN) over the same OpenAPI document.
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs")
                .config(utoipa_swagger_ui::Config::new(["/openapi.json"])),
        )
        .layer(DefaultBodyLimit::max(VALUE_MAX))
        .layer(axum::middleware::from_fn(access::require_identity))
        .with_state(api)
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

pub(crate) fn request_error(e: &RequestError) -> Response {
    match e {
        RequestError::NoGroup(_) => error(
            StatusCode::NOT_FOUND,
            "the group is not hosted on this node (GET /v1/groups lists its hosts)",
        ),
        RequestError::Refused(_) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

pub(crate) fn gsn_header(gsn: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-synod-gsn", HeaderValue::from(gsn));
    h
}

/// The id of the group named `name` in the catalog, or the 404 answer.
pub(crate) async fn group_id(api: &Api, name: &str) -> Result<u32, Response> {
    if let Some(id) = api.node.resolve(name) {
        return Ok(id);
    }
    // Not in this node's catalog: it may have been created through another node a moment
    // ago. A barrier on the default group brings the catalog up to date before answering 404.
    let barrier = api.node.barrier(DEFAULT_GROUP);
    if let Ok(Ok(_)) = tokio::time::timeout(api.timeout, barrier).await
        && let Some(id) = api.node.resolve(name)
    {
        return Ok(id);
    }
    Err(error(
        StatusCode::NOT_FOUND,
        format!("no group named {name:?}"),
    ))
}

/// The id of the key-value group named `name`, or the 404 answer: channels and notaries are
/// reached through their own routes, under their access lists.
async fn kv_group_id(api: &Api, name: &str) -> Result<u32, Response> {
    let id = group_id(api, name).await?;
    let catalog = api.node.catalog();
    match catalog.group_by_id(id) {
        Some(g) if g.kind == synod_kv::KIND => Ok(id),
        _ => Err(error(
            StatusCode::NOT_FOUND,
            format!("{name:?} is not a key-value group (see /v1/channels, /v1/notaries)"),
        )),
    }
}

/// The error answer for a key outside the limits, if it is.
fn bad_key(key: &str) -> Option<Response> {
    (key.is_empty() || key.len() > KEY_MAX).then(|| {
        error(
            StatusCode::BAD_REQUEST,
            format!("keys must be 1 to {KEY_MAX} bytes"),
        )
    })
}

/// `GET /v1/status`: the groups hosted here (a channel or notary only to those who may read
/// it).
async fn status(State(api): State<Arc<Api>>, who: access::Who) -> Response {
    let catalog = api.node.catalog();
    let visible = access::visible_to(&api, &who, |_| true);
    let groups: Vec<_> = api
        .node
        .status()
        .await
        .into_iter()
        .filter(|g| catalog.group_by_id(g.group).is_none_or(&visible))
        .map(|g| {
            json!({
                "group": g.name, "id": g.group, "applied_gsn": g.applied.0, "members": g.members,
                "has_quorum": g.has_quorum, "kind": g.kind, "items": g.items,
                "content_hash": format!("{:016x}", g.content_hash), "pending": g.pending,
                "corrupt": g.corrupt, "rejoining": g.rejoining,
            })
        })
        .collect();
    axum::Json(json!({ "groups": groups })).into_response()
}

/// The OpenAPI 3 description of this API (kept by hand next to the handlers; a test checks
/// that every route is described).
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    (headers, OPENAPI).into_response()
}

async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    (headers, api.node.metrics().await).into_response()
}

/// The `Idempotency-Key` header: retries carrying the same key apply at most once. A bad
/// header is an error message, for a 400.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, String> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(s) if !s.is_empty() && s.len() <= TOKEN_MAX => Ok(Some(s.to_string())),
        _ => Err(format!(
            "Idempotency-Key must be 1 to {TOKEN_MAX} visible ASCII characters"
        )),
    }
}

async fn write(api: &Api, group: u32, cmd: KvCommand, headers: &HeaderMap) -> Response {
    let token = match idempotency_key(headers) {
        Ok(t) => t,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match tokio::time::timeout(api.timeout, api.node.write_once(group, cmd, token)).await {
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "timed out waiting for agreement (is a quorum reachable?)",
        ),
        Ok(Err(e)) => request_error(&e),
        Ok(Ok(r)) => {
            let ok = matches!(r.output, KvOutput::Done);
            (gsn_header(r.gsn.0), axum::Json(json!(ok))).into_response()
        }
    }
}

async fn kv_put(
    State(api): State<Arc<Api>>,
    Path(key): Path<String>,
    Query(q): Query<KvQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    put(&api, DEFAULT_GROUP, key, q, &headers, body).await
}

async fn group_kv_put(
    State(api): State<Arc<Api>>,
    Path((group, key)): Path<(String, String)>,
    Query(q): Query<KvQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match kv_group_id(&api, &group).await {
        Ok(group) => put(&api, group, key, q, &headers, body).await,
        Err(r) => r,
    }
}

async fn put(
    api: &Api,
    group: u32,
    key: String,
    q: KvQuery,
    headers: &HeaderMap,
    value: Bytes,
) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    write(
        api,
        group,
        KvCommand::Put {
            key,
            value,
            cas: q.cas,
        },
        headers,
    )
    .await
}

async fn kv_delete(
    State(api): State<Arc<Api>>,
    Path(key): Path<String>,
    Query(q): Query<KvQuery>,
    headers: HeaderMap,
) -> Response {
    delete_key(&api, DEFAULT_GROUP, key, q, &headers).await
}

async fn group_kv_delete(
    State(api): State<Arc<Api>>,
    Path((group, key)): Path<(String, String)>,
    Query(q): Query<KvQuery>,
    headers: HeaderMap,
) -> Response {
    match kv_group_id(&api, &group).await {
        Ok(group) => delete_key(&api, group, key, q, &headers).await,
        Err(r) => r,
    }
}

async fn delete_key(
    api: &Api,
    group: u32,
    key: String,
    q: KvQuery,
    headers: &HeaderMap,
) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    write(api, group, KvCommand::Delete { key, cas: q.cas }, headers).await
}

async fn kv_get(
    State(api): State<Arc<Api>>,
    Path(key): Path<String>,
    Query(q): Query<KvQuery>,
) -> Response {
    read(&api, DEFAULT_GROUP, key, q).await
}

async fn group_kv_get(
    State(api): State<Arc<Api>>,
    Path((group, key)): Path<(String, String)>,
    Query(q): Query<KvQuery>,
) -> Response {
    match kv_group_id(&api, &group).await {
        Ok(group) => read(&api, group, key, q).await,
        Err(r) => r,
    }
}

fn entry_json(key: &str, e: &synod_kv::Entry) -> serde_json::Value {
    let value = base64::engine::general_purpose::STANDARD.encode(&e.value);
    json!({ "Key": key, "Value": value, "CreateIndex": e.create_gsn, "ModifyIndex": e.modify_gsn })
}

async fn read(api: &Api, group: u32, key: String, q: KvQuery) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    let linearizable = q.stale.is_none();
    let recurse = q.recurse.is_some();
    let fut = async {
        if recurse {
            api.node.list(group, &key, linearizable).await
        } else {
            api.node.read(group, &key, linearizable).await
        }
    };
    let read = match tokio::time::timeout(api.timeout, fut).await {
        Err(_) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "timed out waiting for a read barrier",
            );
        }
        Ok(Err(e)) => return request_error(&e),
        Ok(Ok(r)) => r,
    };
    let headers = gsn_header(read.gsn.0);
    if recurse {
        if read.entries.is_empty() {
            return (
                StatusCode::NOT_FOUND,
                headers,
                axum::Json(json!({ "error": "no keys under this prefix" })),
            )
                .into_response();
        }
        let body: Vec<_> = read.entries.iter().map(|(k, e)| entry_json(k, e)).collect();
        return (headers, axum::Json(body)).into_response();
    }
    let Some(entry) = read.entry else {
        return (
            StatusCode::NOT_FOUND,
            headers,
            axum::Json(json!({ "error": "no such key" })),
        )
            .into_response();
    };
    if q.raw.is_some() {
        return (headers, entry.value).into_response();
    }
    (headers, axum::Json(json!([entry_json(&key, &entry)]))).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_document_describes_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.0.3");
        for path in [
            "/health",
            "/metrics",
            "/v1/status",
            "/v1/kv/{key}",
            "/v1/groups",
            "/v1/groups/{group}",
            "/v1/groups/{group}/kv/{key}",
            "/v1/groups/{group}/members",
            "/v1/groups/{group}/members/{id}",
            "/v1/channels",
            "/v1/channels/{channel}",
            "/v1/channels/{channel}/transactions",
            "/v1/channels/{channel}/transactions/{tx}",
            "/v1/channels/{channel}/keys/{key}",
            "/v1/channels/{channel}/blocks/{block}",
            "/v1/channels/{channel}/transactions/{tx}/proof",
            "/v1/channels/{channel}/roots/{height}",
            "/v1/channels/{channel}/consistency/{from}/{to}",
            "/v1/channels/{channel}/access",
            "/v1/channels/{channel}/members",
            "/v1/channels/{channel}/members/{id}",
            "/v1/notaries",
            "/v1/notaries/{notary}",
            "/v1/notaries/{notary}/access",
            "/v1/notaries/{notary}/notarise",
            "/v1/notaries/{notary}/key",
            "/v1/whoami",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is not described");
        }
        for method in ["get", "put", "delete"] {
            assert!(
                doc["paths"]["/v1/kv/{key}"][method].is_object(),
                "{method} is not described"
            );
        }
    }
}
