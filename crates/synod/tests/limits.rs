//! What one certificate holder can hold of a node's API, on a real `synod` process over
//! mutual TLS: connections that say nothing are closed after the header timeout (after the
//! handshake, before it, and between requests on a kept-alive connection); an answer given
//! before a large body was read reaches the client (no reset); an identity
//! holds at most its cap of connections while another identity still gets in; the node as a
//! whole holds at most its cap; HTTP/2 is not served; a client that stops reading a listing
//! holds its place among the costly reads only until the idle timeout closes its connection.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BIN, free_port, node};
use rustls::pki_types::ServerName;

const HEADER_TIMEOUT_MS: u64 = 800;
const PER_IDENTITY: usize = 3;
const PER_NODE: usize = 8;

fn certs(dir: &Path) {
    let status = Command::new(BIN)
        .args(["certs", "--out"])
        .arg(dir.join("certs"))
        .args(["--nodes", "0", "--clients", "alice,bob,carol"])
        .status()
        .unwrap();
    assert!(status.success());
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to the API as `name`, handshake done.
fn connect(dir: &Path, api: SocketAddr, name: &str, alpn: &[&[u8]]) -> Tls {
    try_connect(dir, api, name, alpn).expect("the TLS handshake failed")
}

/// A TLS connection to the API as `name`, or `None` if the server closed it during the
/// handshake.
fn try_connect(dir: &Path, api: SocketAddr, name: &str, alpn: &[&[u8]]) -> Option<Tls> {
    handshake(dir, TcpStream::connect(api).unwrap(), api, name, alpn)
}

/// The TLS handshake as `name` (offering `alpn`) over `tcp`, connected to `api`; `None` if
/// the server closed it meanwhile.
fn handshake(
    dir: &Path,
    tcp: TcpStream,
    api: SocketAddr,
    name: &str,
    alpn: &[&[u8]],
) -> Option<Tls> {
    let read = |f: &str| std::fs::read_to_string(dir.join("certs").join(f)).unwrap();
    let identity = synod_transport::tls::TlsIdentity::from_pem(
        &read("ca.pem"),
        &read(&format!("{name}.pem")),
        &read(&format!("{name}.key")),
    )
    .unwrap();
    let mut config = (*identity.client_config().unwrap()).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let server = ServerName::try_from(api.ip().to_string()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).ok()?;
    }
    Some(tls)
}

/// Sends one request on `tls` and reads the whole answer (the server closes after it).
fn whoami(
    tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    close: bool,
) -> String {
    let connection = if close { "close" } else { "keep-alive" };
    let request = format!("GET /v1/whoami HTTP/1.1\r\nhost: x\r\nconnection: {connection}\r\n\r\n");
    if tls.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&answer);
                if !close && text.contains("\r\n\r\n") && text.contains('}') {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// How long until the server closes `tls` (it sends nothing more), or `None` within `limit`.
fn closed_within(
    tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    tls.sock.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0; 64];
    match tls.read(&mut buf) {
        Ok(0) => Some(start.elapsed()),
        Ok(_) => panic!("the server sent something to a client that asked nothing"),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(_) => Some(start.elapsed()),
    }
}

#[test]
fn connections_are_bounded_per_identity_and_per_node_and_silent_ones_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    certs(dir);
    let extra = format!(
        "api_header_timeout_ms = {HEADER_TIMEOUT_MS}\napi_connections_per_identity = {PER_IDENTITY}\n\
         api_connections = {PER_NODE}"
    );
    let mut n = node(dir, 0, &[0], free_port(), &[], &extra);
    n.start();
    let api = n.api;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !whoami(&mut connect(dir, api, "client-alice", &[]), true).contains("200 OK") {
        assert!(Instant::now() < deadline, "the node did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let timeout = Duration::from_millis(HEADER_TIMEOUT_MS);

    // Silent after the handshake: closed after the header timeout, not before.
    let mut silent = connect(dir, api, "client-alice", &[]);
    let closed = closed_within(&mut silent, timeout * 10).expect("a silent connection stayed open");
    assert!(
        closed >= timeout / 2,
        "closed after {closed:?}, before the header timeout"
    );
    // Idle between requests on a kept-alive connection: the same.
    let mut kept = connect(dir, api, "client-alice", &[]);
    assert!(whoami(&mut kept, false).contains("client-alice"));
    assert!(
        closed_within(&mut kept, timeout * 10).is_some(),
        "an idle kept-alive connection stayed open"
    );
    // A request head that trickles in (a byte at a time, never finished) is cut off too.
    let mut slow = connect(dir, api, "client-alice", &[]);
    slow.write_all(b"GET /v1/whoami HTTP/1.1\r\n").unwrap();
    let start = Instant::now();
    while slow.write_all(b"x").is_ok() && start.elapsed() < timeout * 10 {
        std::thread::sleep(timeout / 4);
    }
    assert!(
        start.elapsed() < timeout * 10,
        "a trickling request head was never cut off"
    );
    // Silent before the handshake: a TCP connection that sends nothing is closed too.
    let mut raw = TcpStream::connect(api).unwrap();
    raw.set_read_timeout(Some(timeout * 10)).unwrap();
    let start = Instant::now();
    assert!(matches!(raw.read(&mut [0; 16]), Ok(0) | Err(_)));
    assert!(
        start.elapsed() < timeout * 10,
        "a connection without a handshake stayed open"
    );

    // One identity holds at most its cap; the next is closed at once, another identity's works.
    let held: Vec<_> = (0..PER_IDENTITY)
        .map(|_| connect(dir, api, "client-bob", &[]))
        .collect();
    let answer = try_connect(dir, api, "client-bob", &[])
        .map(|mut over| whoami(&mut over, true))
        .unwrap_or_default();
    assert!(
        !answer.contains("200 OK"),
        "a connection over the identity's cap was served: {answer}"
    );
    assert!(whoami(&mut connect(dir, api, "client-carol", &[]), true).contains("client-carol"));
    // Closing one gives the identity its place back.
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert!(whoami(&mut connect(dir, api, "client-bob", &[]), true).contains("client-bob"));

    // The node holds at most its cap, whoever asks (once the connections above are gone:
    // a place is given back when the server has seen its connection end).
    std::thread::sleep(Duration::from_millis(500));
    let mut all = Vec::new();
    for name in ["client-alice", "client-bob", "client-carol"] {
        for _ in 0..PER_IDENTITY {
            all.push(try_connect(dir, api, name, &[]));
        }
    }
    let served = all
        .iter_mut()
        .flatten()
        .map(|c| whoami(c, false))
        .filter(|answer| answer.contains("200 OK"))
        .count();
    assert_eq!(
        served,
        PER_NODE,
        "{} connections held, {served} served",
        all.len()
    );
    drop(all);

    // HTTP/2 is not served: ALPN settles on HTTP/1.1, and a preface sent anyway is refused.
    std::thread::sleep(Duration::from_millis(200));
    let mut h2 = connect(dir, api, "client-carol", &[b"h2", b"http/1.1"]);
    assert_eq!(h2.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let mut answer = Vec::new();
    let _ = h2.read_to_end(&mut answer);
    // An HTTP/2 server answers with a SETTINGS frame (type 4 in the frame's fourth byte).
    let refused = answer.starts_with(b"HTTP/1.1 4") || answer.starts_with(b"HTTP/1.1 5");
    assert!(
        answer.is_empty() || refused,
        "answered an HTTP/2 preface with {:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(64)])
    );
    n.kill9();
}

/// Sends `head` and then `body_len` bytes of body on `tls` (stopping quietly if the server
/// stops taking them), then reads the answer: what a client such as curl sees.
fn answer_to_large_body(tls: &mut Tls, head: &str, body_len: usize) -> std::io::Result<String> {
    tls.write_all(head.as_bytes())?;
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < body_len {
        let n = chunk.len().min(body_len - sent);
        if tls.write_all(&chunk[..n]).is_err() {
            break;
        }
        sent += n;
    }
    let mut answer = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            // A close without TLS close_notify after the answer is whole is still an answer.
            Err(e) if !answer.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[test]
fn an_answer_given_before_a_large_body_is_read_reaches_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    certs(dir);
    let mut n = node(dir, 0, &[0], free_port(), &[], "");
    n.start();
    let api = n.api;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !whoami(&mut connect(dir, api, "client-alice", &[]), true).contains("200 OK") {
        assert!(Instant::now() < deadline, "the node did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let body = 2 << 20;
    // Over the value limit (413), and a route that does not exist (404): both are answered
    // before the body is read, and the answer must not be lost to a connection reset.
    for (head, status) in [
        (
            format!("PUT /v1/kv/big HTTP/1.1\r\nhost: x\r\ncontent-length: {body}\r\n\r\n"),
            "HTTP/1.1 413",
        ),
        (
            format!("POST /v1/nowhere HTTP/1.1\r\nhost: x\r\ncontent-length: {body}\r\n\r\n"),
            "HTTP/1.1 404",
        ),
    ] {
        for attempt in 0..3 {
            let mut tls = connect(dir, api, "client-alice", &[]);
            let answer = answer_to_large_body(&mut tls, &head, body);
            assert!(
                matches!(&answer, Ok(a) if a.starts_with(status) && a.contains("\"error\"")),
                "attempt {attempt}: {head:?} was answered {answer:?}, not {status}"
            );
        }
    }
    n.kill9();
}

/// A TLS connection as `name` over a socket with a receive buffer of a few kilobytes: once
/// the client stops reading, the server's writes stall within a few kilobytes.
fn connect_small_window(dir: &Path, api: SocketAddr, name: &str) -> Tls {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&api.into()).unwrap();
    handshake(dir, socket.into(), api, name, &[]).expect("the TLS handshake failed")
}

/// Sends a request with `body` on `tls` and reads the whole answer (`connection: close`).
fn request(tls: &mut Tls, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(body).unwrap();
    let mut answer = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if !answer.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }
    answer
}

#[test]
fn a_stalled_listing_gives_up_its_place_when_its_connection_goes_idle() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    certs(dir);
    let config = format!("api_header_timeout_ms = {HEADER_TIMEOUT_MS}\n");
    let mut n = node(dir, 0, &[0], free_port(), &[], &config);
    n.start();
    let api = n.api;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !whoami(&mut connect(dir, api, "client-alice", &[]), true).contains("200 OK") {
        assert!(Instant::now() < deadline, "the node did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Eight values of 512 KiB: a listing's page is megabytes of JSON.
    let value = vec![b'v'; 512 * 1024];
    for i in 0..8 {
        let mut tls = connect(dir, api, "client-alice", &[]);
        let answer = request(&mut tls, "PUT", &format!("/v1/kv/big/{i}"), &value);
        assert!(answer.starts_with(b"HTTP/1.1 200"), "put {i}");
    }
    // As many readers as the node lets list at once (one per two cores) ask for the listing
    // and read nothing: each holds its place while its answer cannot be sent.
    let places = (std::thread::available_parallelism().map_or(2, |n| n.get()) / 2).max(1);
    let stalled: Vec<Tls> = (0..places)
        .map(|i| {
            let name = ["client-alice", "client-bob"][i % 2];
            let mut tls = connect_small_window(dir, api, name);
            let head = "GET /v1/kv/big/?recurse HTTP/1.1\r\nhost: x\r\n\r\n";
            tls.write_all(head.as_bytes()).unwrap();
            tls
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // Another reader's listing waits for a place, and gets one once the stalled connections
    // have been idle for the timeout and were closed; it is whole.
    let started = Instant::now();
    let mut tls = connect(dir, api, "client-carol", &[]);
    tls.sock
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let answer = request(&mut tls, "GET", "/v1/kv/big/?recurse", b"");
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(300)]
    );
    // Its first page (the page's 4 MiB cap holds seven of the values), whole: the chunked
    // body ends, and the continuation is named.
    assert!(
        text.matches("\"Key\"").count() >= 1,
        "a page of the listing"
    );
    assert!(text.ends_with("]\r\n0\r\n\r\n"), "the page is whole");
    assert!(
        text.to_lowercase().contains("x-synod-next"),
        "a continuation"
    );
    assert!(
        waited >= Duration::from_millis(HEADER_TIMEOUT_MS / 2),
        "the listing did not wait for the stalled ones ({waited:?}): their place was free"
    );
    assert!(
        waited < Duration::from_millis(HEADER_TIMEOUT_MS * 10),
        "the stalled listings held their places for {waited:?}"
    );
    drop(stalled);
    n.kill9();
}
