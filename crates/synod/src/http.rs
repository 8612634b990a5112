//! The server's HTTP API: the routes every group has (`synod_api::groups`: `/v1/groups`,
//! members, `/v1/status`, `/v1/whoami`) and each application's (the key-value store's
//! `/v1/kv`, the ledger's `/v1/channels` and `/v1/notaries`), merged into one router with
//! what belongs to the server alone: `/health`, `/metrics` (Prometheus text), `/openapi.json`
//! (the applications' paths merged into one document) and Swagger UI at `/docs`. Every
//! request carries its caller (the TLS acceptor in [`crate::access`]); one without is refused
//! before any handler runs.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use synod_api::Api;

use crate::access;

/// Largest request body any route takes unless its own router says otherwise.
const BODY_MAX: usize = 512 * 1024;

/// The server's own OpenAPI paths (health, metrics, the docs).
const OPENAPI_SERVER: &str = include_str!("openapi.json");

/// The whole API of a node serving `api`; `notary_key` signs its notarisations.
pub(crate) fn router(api: Arc<Api>, notary_key: ed25519_dalek::SigningKey) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(synod_api::groups::router())
        .merge(synod_kv::http::router())
        .merge(synod_ledger::http::router(notary_key))
        // Swagger UI (vendored in the binary: no CDN) over the same OpenAPI document.
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs")
                .config(utoipa_swagger_ui::Config::new(["/openapi.json"])),
        )
        .layer(DefaultBodyLimit::max(BODY_MAX))
        .layer(axum::middleware::from_fn(access::require_identity))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(api)
}

/// Every error answer in the documented form, `{"error": "..."}` as JSON: the extractors'
/// own refusals (a path or query that does not parse, a body over its limit, a method not
/// allowed) are plain text, so they are rewritten here, their other headers kept.
async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut answer = synod_api::error(status, message);
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// The OpenAPI 3 document of every route: the shared document with each application's paths
/// and components merged in.
pub(crate) fn openapi_document() -> serde_json::Value {
    let parse = |text: &str| -> serde_json::Value {
        serde_json::from_str(text).expect("the OpenAPI fragments are valid JSON (tested)")
    };
    let mut doc = parse(synod_api::OPENAPI);
    for fragment in [
        OPENAPI_SERVER,
        synod_kv::http::OPENAPI,
        synod_ledger::http::OPENAPI,
    ] {
        let fragment = parse(fragment);
        merge_objects(&mut doc["paths"], &fragment["paths"]);
        if let Some(components) = fragment["components"].as_object() {
            for (section, entries) in components {
                merge_objects(&mut doc["components"][section], entries);
            }
        }
    }
    doc
}

/// Adds the members of `from` to the object `into` (made an object if it is not one).
fn merge_objects(into: &mut serde_json::Value, from: &serde_json::Value) {
    if !into.is_object() {
        *into = serde_json::Value::Object(serde_json::Map::new());
    }
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
    }
}

async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| openapi_document().to_string());
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    (headers, body.as_str()).into_response()
}

async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    (headers, api.node.metrics().await).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_document_describes_the_routes() {
        let doc = super::openapi_document();
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
            "/v1/channels/{channel}/hashes/{hash}",
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
