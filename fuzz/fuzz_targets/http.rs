//! The HTTP API: every route's request (path, query, headers and body: the JSON bodies of
//! groups, members, access lists, channels, notaries and notarisations, a key-value value, an
//! encoded ledger transaction), served in process by the routers the server merges
//! (`synod_api::groups`, `synod_kv::http`, `synod_ledger::http`) over a real one-node cluster
//! (its data in a temporary directory, its peer listener on loopback), through
//! `tower::ServiceExt::oneshot`. Requests that pass validation really are agreed and applied.
//!
//! Input: an HTTP request as text: `METHOD /path?query`, header lines `name: value`, a blank
//! line, the body (bytes, to the end). The header `x-fuzz-caller: NAME` makes the caller the
//! identity `NAME` (the TLS acceptor's job in the server); `x-fuzz-anonymous` leaves the
//! caller out (refused, 401); otherwise the caller is unauthenticated (a plain-HTTP node).
//!
//! Nothing may panic and no answer may be a 500. What the target leaves out, to keep the
//! one node alive, open and on loopback: changes to the default group's members (the node
//! would lose its own quorum) and access list (every later request would be refused), member
//! addresses that are not loopback IPs, and group creations past 64 per process.

#![no_main]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use synod_api::Api;
use synod_api::access::Who;
use synod_node::access::Caller;
use synod_node::{Node, NodeConfig, ReplicaId};
use synod_transport::certs;
use synod_transport::tls::TlsIdentity;
use tower::ServiceExt;

/// The server's limit on a body (its router's `BODY_MAX`).
const BODY_MAX: usize = 512 * 1024;
/// Group creations a process lets through (each group holds a replica, and a channel a
/// database file).
const CREATIONS_MAX: usize = 64;

struct Server {
    rt: tokio::runtime::Runtime,
    router: Router,
    creations: AtomicUsize,
    // Kept for the life of the process: the node's data.
    _dir: tempfile::TempDir,
}

fn data_dir() -> tempfile::TempDir {
    // In memory where there is a tmpfs: the node syncs every commit. libFuzzer ends the
    // process without dropping it: scripts/fuzz.sh removes `synod-fuzz-http*` after a run.
    let mut builder = tempfile::Builder::new();
    builder.prefix("synod-fuzz-http");
    builder
        .tempdir_in("/dev/shm")
        .or_else(|_| builder.tempdir())
        .expect("a temporary directory")
}

fn start() -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = data_dir();
    let ca = certs::generate_ca("fuzz").expect("a CA");
    let cert = certs::issue_node(&ca, 0).expect("a node certificate");
    let config = NodeConfig {
        node: ReplicaId(0),
        data_dir: dir.path().join("node0"),
        listen: "127.0.0.1:0".parse().expect("an address"),
        peers: BTreeMap::new(),
        members: vec![ReplicaId(0)],
        identity: TlsIdentity::from_pem(&ca.cert, &cert.cert, &cert.key).expect("TLS identity"),
        power_cut_test_mode: false,
        takeover_ms: 50,
        heartbeat_ms: 10,
        liveness_ms: 500,
        snapshot_every: 500,
        log_retention: 1_000,
        executor_capacity: 4096,
        rejoin: false,
        apps: Arc::new(
            synod_node::Apps::new(synod_kv::KIND, synod_kv::KvApp::new)
                .with_dir(synod_ledger::CHANNEL_KIND, synod_ledger::ChannelApp::open)
                .with(synod_ledger::NOTARY_KIND, synod_ledger::NotaryApp::new),
        ),
    };
    let node = rt.block_on(Node::start(config)).expect("the node starts");
    let api = Api::new(node, Duration::from_millis(300), None, synod_kv::KIND);
    // As the server merges them (its own /health, /metrics and /docs aside).
    let router = Router::new()
        .merge(synod_api::groups::router())
        .merge(synod_kv::http::router())
        .merge(synod_ledger::http::router(
            ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
        ))
        .layer(DefaultBodyLimit::max(BODY_MAX))
        .with_state(Arc::new(api));
    let server = Server {
        rt,
        router,
        creations: AtomicUsize::new(0),
        _dir: dir,
    };
    // Something for the requests to find: a key-value group, a channel with a transaction,
    // a notary (each hosted here).
    let tx = synod_fuzz::seeds::transaction(1, "coin").encode();
    let prelude: [(&str, &str, &[u8]); 5] = [
        ("POST", "/v1/groups", br#"{"name":"fz-kv","members":[0]}"#),
        (
            "POST",
            "/v1/channels",
            br#"{"name":"fz-ch","members":[0],"batch_timeout_ms":5}"#,
        ),
        ("POST", "/v1/notaries", br#"{"name":"fz-no","members":[0]}"#),
        ("PUT", "/v1/kv/config/a", b"hello"),
        ("POST", "/v1/channels/fz-ch/transactions", &tx),
    ];
    for (method, path, body) in prelude {
        // The groups take a moment to open here after they are created.
        for _ in 0..100 {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", "application/json")
                .extension(Some(Who(Caller::Unauthenticated)))
                .body(Body::from(body.to_vec()))
                .expect("a request");
            let status = server.rt.block_on(async {
                let response = server
                    .router
                    .clone()
                    .oneshot(request)
                    .await
                    .expect("infallible");
                response.status()
            });
            if status.is_success() {
                eprintln!("http target: prelude {method} {path}: {status}");
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    server
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// `%XX` decoded (as the router decodes path parameters), for the target's own filters.
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the target lets this request through (see the module's documentation).
fn allowed(server: &Server, method: &Method, path: &str, body: &[u8]) -> bool {
    let path = percent_decoded(path);
    let segments: Vec<&str> = path.split('/').collect();
    if *method != Method::GET
        && segments.len() >= 5
        && segments[2] == "groups"
        && segments[3].trim() == synod_node::catalog::DEFAULT_GROUP_NAME
        && (segments[4] == "members" || segments[4] == "access")
    {
        return false;
    }
    if path.contains("members")
        && let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body)
        && let Some(addr) = fields.get("addr")
        && !addr.is_null()
    {
        let loopback = addr
            .as_str()
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .is_some_and(|a| a.ip().is_loopback());
        if !loopback {
            return false;
        }
    }
    let creates = *method == Method::POST
        && matches!(
            path.trim_end_matches('/'),
            "/v1/groups" | "/v1/channels" | "/v1/notaries"
        );
    !creates || server.creations.fetch_add(1, Ordering::Relaxed) < CREATIONS_MAX
}

fn request(data: &[u8]) -> Option<(Request<Body>, Method, String)> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n');
    let (method, target) = lines.next()?.split_once(' ')?;
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let mut builder = Request::builder().method(method.clone()).uri(target);
    let mut who = Some(Who(Caller::Unauthenticated));
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.trim_start();
        match name.to_ascii_lowercase().as_str() {
            "x-fuzz-caller" => who = Some(Who(Caller::Identity(value.to_string()))),
            "x-fuzz-anonymous" => who = None,
            _ => builder = builder.header(name, value),
        }
    }
    let request = builder
        .extension(who)
        .body(Body::from(body.to_vec()))
        .ok()?;
    let path = request.uri().path().to_string();
    Some((request, method, path))
}

fuzz_target!(|data: &[u8]| {
    let server = server();
    let Some((request, method, path)) = request(data) else {
        return;
    };
    let body: Vec<u8> = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or_else(Vec::new, |at| data[at + 2..].to_vec());
    if !allowed(server, &method, &path, &body) {
        return;
    }
    let (status, answer) = server.rt.block_on(async {
        let response = server
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let answer = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("an answer's body");
        (status, answer)
    });
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "500 for {method} {path}: {}",
        String::from_utf8_lossy(&answer)
    );
});
