//! The store's HTTP routes, following Consul's KV conventions: `PUT/GET/DELETE
//! /v1/kv/{key}` in the default group (`?cas=GSN`, `?stale`, `?raw`, `?recurse`) and the same
//! under `/v1/groups/{group}/kv` for any key-value group. A recursive read answers a page
//! (`?limit=`, default 1,000 entries, and at most 4 MiB of keys and values); `X-Synod-Next`
//! names the key to continue after (`?after=`). Every answer carries the GSN it
//! reflects in `X-Synod-Gsn`. A write carrying an `Idempotency-Key` header is applied at most
//! once however often it is retried.
//!
//! A key-value group has an access list like a channel's (readers, writers, administrators;
//! every role to its creator unless the creation names one), set with `PUT
//! /v1/groups/{group}/access`. A caller with no role in a group is answered 404, as if it did
//! not exist. The default group is open to every identity of the cluster CA until a cluster
//! administrator gives it a list; the group is the unit of access (no per-prefix roles: keep
//! what different people may touch in different groups).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use synod_api::access::Who;
use synod_api::{Api, error, gsn_header, request_error, timed_out};
use synod_core::GroupId;
use synod_node::access::Role;
use synod_node::catalog::DEFAULT_GROUP_NAME;

use crate::{KvCommand, KvNode, KvOutput, TOKEN_MAX};

/// Largest value accepted, bytes.
pub const VALUE_MAX: usize = 512 * 1024;
/// Longest key accepted, bytes.
pub const KEY_MAX: usize = 512;

/// The OpenAPI paths of these routes (and the components only they use), merged by the
/// server into one document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The store's routes, served with the [`Api`] as state.
pub fn router() -> Router<Arc<Api>> {
    Router::new()
        .route("/v1/kv/{*key}", get(kv_get).put(kv_put).delete(kv_delete))
        .route(
            "/v1/groups/{group}/kv/{*key}",
            get(group_kv_get).put(group_kv_put).delete(group_kv_delete),
        )
        .layer(DefaultBodyLimit::max(VALUE_MAX))
}

#[derive(Deserialize, Default)]
struct KvQuery {
    /// A GSN, as the OpenAPI document says: an int64 (larger values are refused at parsing).
    cas: Option<i64>,
    stale: Option<String>,
    raw: Option<String>,
    recurse: Option<String>,
    /// A recursive read starts after this key (the `X-Synod-Next` of the page before).
    after: Option<String>,
    /// Most entries in a recursive read's page (default 1,000; at most 10,000).
    limit: Option<usize>,
}

/// Entries in a page of a recursive read when the caller names no limit.
const PAGE_DEFAULT: usize = 1_000;

/// The id of the key-value group named `name` if `who` holds `role` in it, or the answer: 404
/// for no such group, a group of another kind (channels and notaries are reached through
/// their own routes) or one where `who` holds no role at all, 403 for another role.
async fn kv_group(api: &Api, who: &Who, name: &str, role: Role) -> Result<GroupId, Response> {
    let kind = synod_api::access::Kind {
        name: crate::KIND,
        noun: "a key-value group (see /v1/channels, /v1/notaries)",
    };
    synod_api::access::authorize(api, who, name, &kind, role).await
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

async fn write(api: &Api, group: GroupId, cmd: KvCommand, headers: &HeaderMap) -> Response {
    let token = match idempotency_key(headers) {
        Ok(t) => t,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match tokio::time::timeout(api.timeout, api.node.write_once(group, cmd, token)).await {
        Err(_) => timed_out(),
        Ok(Err(e)) => request_error(&e),
        Ok(Ok(r)) => {
            let ok = matches!(r.output, KvOutput::Done);
            (gsn_header(r.gsn.0), axum::Json(json!(ok))).into_response()
        }
    }
}

async fn kv_put(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(key): Path<String>,
    Query(q): Query<KvQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match kv_group(&api, &who, DEFAULT_GROUP_NAME, Role::Write).await {
        Ok(group) => put(&api, group, key, q, &headers, body).await,
        Err(r) => r,
    }
}

async fn group_kv_put(
    State(api): State<Arc<Api>>,
    who: Who,
    Path((group, key)): Path<(String, String)>,
    Query(q): Query<KvQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match kv_group(&api, &who, &group, Role::Write).await {
        Ok(group) => put(&api, group, key, q, &headers, body).await,
        Err(r) => r,
    }
}

async fn put(
    api: &Api,
    group: GroupId,
    key: String,
    q: KvQuery,
    headers: &HeaderMap,
    value: Bytes,
) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    let cas = match cas(&q) {
        Ok(cas) => cas,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    write(api, group, KvCommand::Put { key, value, cas }, headers).await
}

/// The `cas` GSN of a write, or why it is not one (a negative number).
fn cas(q: &KvQuery) -> Result<Option<u64>, &'static str> {
    q.cas
        .map(|c| {
            u64::try_from(c).map_err(|_| "cas is a GSN: an integer from 0 to 9223372036854775807")
        })
        .transpose()
}

async fn kv_delete(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(key): Path<String>,
    Query(q): Query<KvQuery>,
    headers: HeaderMap,
) -> Response {
    match kv_group(&api, &who, DEFAULT_GROUP_NAME, Role::Write).await {
        Ok(group) => delete_key(&api, group, key, q, &headers).await,
        Err(r) => r,
    }
}

async fn group_kv_delete(
    State(api): State<Arc<Api>>,
    who: Who,
    Path((group, key)): Path<(String, String)>,
    Query(q): Query<KvQuery>,
    headers: HeaderMap,
) -> Response {
    match kv_group(&api, &who, &group, Role::Write).await {
        Ok(group) => delete_key(&api, group, key, q, &headers).await,
        Err(r) => r,
    }
}

async fn delete_key(
    api: &Api,
    group: GroupId,
    key: String,
    q: KvQuery,
    headers: &HeaderMap,
) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    let cas = match cas(&q) {
        Ok(cas) => cas,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    write(api, group, KvCommand::Delete { key, cas }, headers).await
}

async fn kv_get(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(key): Path<String>,
    Query(q): Query<KvQuery>,
) -> Response {
    match kv_group(&api, &who, DEFAULT_GROUP_NAME, Role::Read).await {
        Ok(group) => read(&api, group, key, q).await,
        Err(r) => r,
    }
}

async fn group_kv_get(
    State(api): State<Arc<Api>>,
    who: Who,
    Path((group, key)): Path<(String, String)>,
    Query(q): Query<KvQuery>,
) -> Response {
    match kv_group(&api, &who, &group, Role::Read).await {
        Ok(group) => read(&api, group, key, q).await,
        Err(r) => r,
    }
}

/// How long a listing's page keeps its place among the costly reads while it is sent: a
/// client that reads slowly (a few bytes now and then, never idle long enough for its
/// connection to be closed) must not keep the other listings and proofs waiting.
const PLACE_HELD_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps `place` until the returned sender is dropped (the page is sent, or its connection
/// closed) or [`PLACE_HELD_MAX`] has passed, whichever comes first.
fn hold_while_sent(place: tokio::sync::OwnedSemaphorePermit) -> tokio::sync::oneshot::Sender<()> {
    let (sending, sent) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _place = place;
        let _ = tokio::time::timeout(PLACE_HELD_MAX, sent).await;
    });
    sending
}

/// A page of a recursive read as a JSON array, encoded as the body is sent, some 64 KiB at a
/// time: the encoded page (a third larger than its values, in base64) is never held whole.
/// While it is sent it keeps the listing's place among the costly reads (`Api::readers`),
/// since the encoding is most of a listing's cost: until it is sent, its connection closes
/// (a client that stops reading is closed by the idle timeout), or [`PLACE_HELD_MAX`].
struct PageChunks {
    entries: std::vec::IntoIter<(String, crate::Entry)>,
    started: bool,
    done: bool,
    _sending: Option<tokio::sync::oneshot::Sender<()>>,
}

impl PageChunks {
    const CHUNK: usize = 64 * 1024;

    fn new(
        entries: Vec<(String, crate::Entry)>,
        place: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> PageChunks {
        PageChunks {
            entries: entries.into_iter(),
            started: false,
            done: false,
            _sending: place.map(hold_while_sent),
        }
    }
}

impl Iterator for PageChunks {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut chunk = Vec::with_capacity(Self::CHUNK);
        while chunk.len() < Self::CHUNK {
            let Some((key, entry)) = self.entries.next() else {
                if !self.started {
                    chunk.push(b'[');
                }
                chunk.push(b']');
                self.done = true;
                break;
            };
            chunk.push(if self.started { b',' } else { b'[' });
            self.started = true;
            serde_json::to_writer(&mut chunk, &entry_json(&key, &entry))
                .expect("invariant: a JSON value encodes into memory");
        }
        Some(Ok(Bytes::from(chunk)))
    }
}

fn entry_json(key: &str, e: &crate::Entry) -> serde_json::Value {
    let value = base64::engine::general_purpose::STANDARD.encode(&e.value);
    json!({ "Key": key, "Value": value, "CreateIndex": e.create_gsn, "ModifyIndex": e.modify_gsn })
}

async fn read(api: &Api, group: GroupId, key: String, q: KvQuery) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    let linearizable = q.stale.is_none();
    let recurse = q.recurse.is_some();
    // Listings are the expensive reads: a few at a time (one per two cores), from the page's
    // read until its body is sent, so that a flood of them leaves the node's writes their
    // latency.
    let place = if recurse {
        match api.readers.clone().acquire_owned().await {
            Ok(p) => Some(p),
            Err(_) => return request_error(&synod_node::RequestError::Stopped),
        }
    } else {
        None
    };
    let limit = q.limit.unwrap_or(PAGE_DEFAULT).clamp(1, crate::PAGE_MAX);
    let fut = async {
        if recurse {
            api.node
                .list_page(group, &key, q.after.clone(), limit, linearizable)
                .await
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
    let mut headers = gsn_header(read.gsn.0);
    if let Some(next) = read
        .next
        .as_deref()
        .and_then(|n| axum::http::HeaderValue::from_str(n).ok())
    {
        headers.insert("x-synod-next", next);
    }
    if recurse {
        if read.entries.is_empty() {
            return (
                StatusCode::NOT_FOUND,
                headers,
                axum::Json(json!({ "error": "no keys under this prefix" })),
            )
                .into_response();
        }
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        let page = futures_util::stream::iter(PageChunks::new(read.entries, place));
        return (headers, axum::body::Body::from_stream(page)).into_response();
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
    use super::*;

    fn page(n: usize, size: usize) -> Vec<(String, crate::Entry)> {
        (0..n)
            .map(|i| {
                let entry = crate::Entry {
                    value: Bytes::from(vec![b'a' + (i % 26) as u8; size]),
                    create_gsn: i as u64,
                    modify_gsn: i as u64 + 1,
                };
                (format!("k/{i:05}"), entry)
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_keeps_its_place_while_it_is_sent_and_no_longer() {
        let places = Arc::new(tokio::sync::Semaphore::new(1));
        // Sent whole: the place is free again once the body is done.
        let place = places.clone().acquire_owned().await.unwrap();
        let chunks: Vec<_> = PageChunks::new(page(3, 10), Some(place)).collect();
        assert_eq!(chunks.len(), 1);
        tokio::task::yield_now().await;
        assert_eq!(places.available_permits(), 1, "freed once sent");
        // A body still being sent (a slow reader) keeps it, but not past PLACE_HELD_MAX.
        let place = places.clone().acquire_owned().await.unwrap();
        let mut slow = PageChunks::new(page(200, 1024), Some(place));
        assert!(slow.next().is_some());
        tokio::time::sleep(PLACE_HELD_MAX / 2).await;
        assert_eq!(places.available_permits(), 0, "held while the page is sent");
        tokio::time::sleep(PLACE_HELD_MAX).await;
        assert_eq!(
            places.available_permits(),
            1,
            "given up after PLACE_HELD_MAX"
        );
        drop(slow);
    }

    #[test]
    fn a_page_streamed_in_chunks_is_the_json_array_of_its_entries() {
        for (n, size) in [(0, 0), (1, 10), (3_000, 100), (5, 200_000)] {
            let entries = page(n, size);
            let whole: Vec<_> = entries.iter().map(|(k, e)| entry_json(k, e)).collect();
            let chunks: Vec<Bytes> = PageChunks::new(entries, None).map(|c| c.unwrap()).collect();
            assert!(
                chunks
                    .iter()
                    .all(|c| c.len() < PageChunks::CHUNK + 2 * size + 200),
                "a chunk holds about 64 KiB, not the page"
            );
            if n * size > 4 * PageChunks::CHUNK {
                assert!(chunks.len() > 1, "{n} entries of {size} bytes in one chunk");
            }
            let body: Vec<u8> = chunks.concat();
            let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(parsed, serde_json::Value::Array(whole));
        }
    }
}
