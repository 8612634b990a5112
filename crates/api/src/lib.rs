//! # synod-api: what applications build their HTTP routes on
//!
//! An application contributes a router of its own (the key-value store's `/v1/kv`, a ledger's
//! `/v1/channels`); the server merges them with [`groups::router`] and serves them over mutual
//! TLS. What every router shares is here:
//!
//! - [`Api`]: the node and the request timeout, passed to every handler;
//! - [`ApiError`]: the one error type, and the one place where an engine error
//!   ([`RequestError`]) becomes an HTTP status;
//! - [`access`]: the caller's identity ([`access::Who`], attached to each request by the
//!   server's TLS acceptor) and the roles a group's access list grants;
//! - [`groups`]: what every group has whatever its kind: creation, listing, showing, removal,
//!   access lists, members, status.
//!
//! Every answer carries the GSN it reflects in `X-Synod-Gsn`; errors are JSON
//! `{"error": "..."}`. What is not here: TLS and the identity acceptor, assembling the
//! routers, the OpenAPI document (the server's).

#![forbid(unsafe_code)]

pub mod access;
pub mod groups;

/// The OpenAPI 3 document of the routes every group has (and the components every router
/// shares: errors, headers, groups, access lists); the server merges each application's
/// paths into it. Kept by hand next to the handlers; the server's test checks that every
/// route is described.
pub const OPENAPI: &str = include_str!("openapi.json");

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use synod_core::GroupId;
use synod_node::{DEFAULT_GROUP, Node, RequestError};

/// What every handler is given: the node it serves and how long it waits for agreement.
#[derive(Debug)]
pub struct Api {
    /// The node.
    pub node: Node,
    /// How long a request waits for agreement before answering 503.
    pub timeout: Duration,
    /// Who may administer the cluster (`None`: everyone; see [`access::not_cluster_admin`]).
    pub cluster_admins: Option<synod_node::access::Access>,
    /// The kind of group `POST /v1/groups` creates (the default group's).
    pub default_kind: String,
    /// Bounds the costly reads that run at once (a proof walks a whole chain; a key-value
    /// listing encodes megabytes as it is sent, and holds its place until it is): one per two
    /// cores, at least one, so that the other cores stay free for writes. The rest wait their
    /// turn.
    pub readers: Arc<tokio::sync::Semaphore>,
}

impl Api {
    /// The API of `node`.
    #[must_use]
    pub fn new(
        node: Node,
        timeout: Duration,
        cluster_admins: Option<synod_node::access::Access>,
        default_kind: &str,
    ) -> Api {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Api {
            node,
            timeout,
            cluster_admins,
            default_kind: default_kind.to_string(),
            readers: Arc::new(tokio::sync::Semaphore::new((cores / 2).max(1))),
        }
    }
}

/// An error answer: a status and a message, as `{"error": message}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the client.
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

/// The one mapping from the engine's errors to HTTP.
impl From<&RequestError> for ApiError {
    fn from(e: &RequestError) -> ApiError {
        match e {
            RequestError::NoGroup(_) => ApiError::new(
                StatusCode::NOT_FOUND,
                "the group is not hosted on this node (GET /v1/groups lists its hosts)",
            ),
            // A configuration change the group's configuration refuses: retrying will not help.
            RequestError::Config(_)
            | RequestError::Refused(synod_core::ProposeError::Config(_)) => {
                ApiError::new(StatusCode::CONFLICT, e.to_string())
            }
            RequestError::WrongKind => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
            // No quorum, overloaded, stopped, corrupt here: another node or a retry may serve.
            _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }
}

/// The answer for `status` and `message`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError::new(status, message).into_response()
}

/// The answer for an engine error.
pub fn request_error(e: &RequestError) -> Response {
    ApiError::from(e).into_response()
}

/// The answer when agreement did not come within the request timeout.
pub fn timed_out() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "timed out waiting for agreement (is a quorum reachable?)",
    )
}

/// The `X-Synod-Gsn` header: everything below this GSN is reflected in the answer.
pub fn gsn_header(gsn: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-synod-gsn", HeaderValue::from(gsn));
    h
}

/// The id of the group named `name` in the catalog, or the 404 answer.
///
/// # Errors
/// The 404 answer.
pub async fn group_id(api: &Api, name: &str) -> Result<GroupId, Response> {
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

/// The id of the group named `name` if it is of kind `kind`, or the 404 answer.
///
/// # Errors
/// The 404 answer (no such group, or one of another kind).
pub async fn group_of_kind(
    api: &Api,
    name: &str,
    kind: &access::Kind,
) -> Result<GroupId, Response> {
    let id = group_id(api, name).await?;
    match api.node.catalog().group_by_id(id) {
        Some(g) if g.kind == kind.name => Ok(id),
        _ => Err(error(
            StatusCode::NOT_FOUND,
            format!("{name:?} is not {}", kind.noun),
        )),
    }
}

/// Waits until everything acknowledged before now is applied to this node's catalog (before
/// an administrator's rights are checked, so a revocation acknowledged elsewhere counts).
///
/// # Errors
/// The 503 answer if the barrier is not agreed in time.
pub async fn barrier(api: &Api) -> Result<u64, Response> {
    match tokio::time::timeout(api.timeout, api.node.barrier(DEFAULT_GROUP)).await {
        Err(_) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "timed out waiting for a read barrier",
        )),
        Ok(Err(e)) => Err(request_error(&e)),
        Ok(Ok(gsn)) => Ok(gsn.0 + 1),
    }
}
