//! Real TCP on loopback, real TLS: who may talk to a node, and what happens when peers fail.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use synod_core::{Envelope, Message, ReplicaId, Slot};
use synod_transport::certs::{self, Pem};
use synod_transport::frame::Frame;
use synod_transport::tls::TlsIdentity;
use synod_transport::{Inbound, SendError, Transport, TransportConfig, TransportStats};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

fn identity(ca: &Pem, node: u16) -> TlsIdentity {
    let cert = certs::issue_node(ca, node).unwrap();
    TlsIdentity::from_pem(&ca.cert, &cert.cert, &cert.key).unwrap()
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn heartbeat(from: u16, to: u16, n: u64) -> Frame {
    Frame::Group {
        group: synod_core::GroupId(0),
        envelope: Envelope {
            from: ReplicaId(from),
            to: ReplicaId(to),
            message: Message::Heartbeat {
                applied: Slot(n),
                highest_seen: Slot(n),
                quiet: false,
            },
        },
    }
}

async fn start(
    node: u16,
    id: TlsIdentity,
    addr: SocketAddr,
) -> (Transport, mpsc::Receiver<Inbound>) {
    let mut cfg = TransportConfig::new(ReplicaId(node), addr, id);
    cfg.backoff_min = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(200);
    cfg.handshake_timeout = Duration::from_secs(2);
    Transport::start(cfg).await.unwrap()
}

/// A frame received, with the sender the transport proved.
#[derive(Debug)]
struct Got {
    from: ReplicaId,
    frame: Frame,
}

/// The next frame within `within`, passing over connection-lost hints.
async fn recv(rx: &mut mpsc::Receiver<Inbound>, within: Duration) -> Option<Got> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv())
            .await
            .ok()
            .flatten()?
        {
            Inbound::Frame { from, frame } => return Some(Got { from, frame }),
            Inbound::Lost { .. } => {}
        }
    }
}

async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    false
}

#[tokio::test]
async fn two_nodes_exchange_frames_over_mutual_tls() {
    let ca = certs::generate_ca("test").unwrap();
    let (a, mut a_rx) = start(1, identity(&ca, 1), any_port()).await;
    let (b, mut b_rx) = start(2, identity(&ca, 2), any_port()).await;
    a.add_peer(ReplicaId(2), b.local_addr());
    b.add_peer(ReplicaId(1), a.local_addr());
    for n in 0..10 {
        a.send(ReplicaId(2), &heartbeat(1, 2, n)).unwrap();
        b.send(ReplicaId(1), &heartbeat(2, 1, n)).unwrap();
    }
    for n in 0..10 {
        let got = recv(&mut b_rx, Duration::from_secs(5))
            .await
            .expect("b receives");
        assert_eq!(
            got.from,
            ReplicaId(1),
            "the sender is the node its certificate names"
        );
        assert_eq!(got.frame, heartbeat(1, 2, n), "in order");
        let got = recv(&mut a_rx, Duration::from_secs(5))
            .await
            .expect("a receives");
        assert_eq!(got.frame, heartbeat(2, 1, n));
    }
    assert_eq!(TransportStats::get(&b.stats().refused), 0);
}

#[tokio::test]
async fn a_stopped_peer_is_reported_lost_after_the_frames_it_sent() {
    let ca = certs::generate_ca("test").unwrap();
    let (a, _a_rx) = start(1, identity(&ca, 1), any_port()).await;
    let (b, mut b_rx) = start(2, identity(&ca, 2), any_port()).await;
    a.add_peer(ReplicaId(2), b.local_addr());
    for n in 0..5 {
        a.send(ReplicaId(2), &heartbeat(1, 2, n)).unwrap();
    }
    for n in 0..5 {
        let got = recv(&mut b_rx, Duration::from_secs(5))
            .await
            .expect("frame");
        assert_eq!(got.frame, heartbeat(1, 2, n));
    }
    // Node 1 stops (its connections close, as a killed process's do): node 2 hears of it at
    // once, not after a timeout, and nothing else arrives.
    drop(a);
    let lost = tokio::time::timeout(Duration::from_secs(2), b_rx.recv())
        .await
        .expect("the loss is reported within a moment")
        .expect("the transport is running");
    assert!(
        matches!(lost, Inbound::Lost { from } if from == ReplicaId(1)),
        "got {lost:?}"
    );
    // Closing an idle connection ourselves is not a loss: node 3 dials, goes silent, and
    // node 2 closes it after `idle_after` without reporting anything.
    let mut cfg = TransportConfig::new(ReplicaId(2), any_port(), identity(&ca, 2));
    cfg.idle_after = Duration::from_millis(200);
    let (c, mut c_rx) = Transport::start(cfg).await.unwrap();
    let (d, _d_rx) = start(3, identity(&ca, 3), any_port()).await;
    d.add_peer(ReplicaId(2), c.local_addr());
    d.send(ReplicaId(2), &heartbeat(3, 2, 0)).unwrap();
    assert!(recv(&mut c_rx, Duration::from_secs(5)).await.is_some());
    let after_idle = tokio::time::timeout(Duration::from_millis(800), c_rx.recv()).await;
    assert!(
        after_idle.is_err(),
        "an idle close was reported: {after_idle:?}"
    );
    drop((b, d));
}

#[tokio::test]
async fn a_node_with_a_certificate_from_another_ca_is_refused() {
    let ca = certs::generate_ca("test").unwrap();
    let rogue_ca = certs::generate_ca("rogue").unwrap();
    let (b, mut b_rx) = start(2, identity(&ca, 2), any_port()).await;
    // The rogue trusts the real CA (so it would accept b's certificate) but has its own cert.
    let rogue_cert = certs::issue_node(&rogue_ca, 1).unwrap();
    let rogue_id = TlsIdentity::from_pem(&ca.cert, &rogue_cert.cert, &rogue_cert.key).unwrap();
    let (rogue, _rx) = start(1, rogue_id, any_port()).await;
    rogue.add_peer(ReplicaId(2), b.local_addr());
    rogue.send(ReplicaId(2), &heartbeat(1, 2, 0)).unwrap();
    assert!(
        eventually(|| TransportStats::get(&b.stats().refused) > 0).await,
        "refused"
    );
    assert!(
        recv(&mut b_rx, Duration::from_millis(300)).await.is_none(),
        "nothing got through"
    );
}

#[tokio::test]
async fn a_node_claiming_another_nodes_identity_is_refused() {
    let ca = certs::generate_ca("test").unwrap();
    let (b, mut b_rx) = start(2, identity(&ca, 2), any_port()).await;
    // A valid certificate for node 3, used by a process that says it is node 1.
    let (liar, _rx) = start(1, identity(&ca, 3), any_port()).await;
    liar.add_peer(ReplicaId(2), b.local_addr());
    liar.send(ReplicaId(2), &heartbeat(1, 2, 0)).unwrap();
    assert!(
        eventually(|| TransportStats::get(&b.stats().refused) > 0).await,
        "refused"
    );
    assert!(recv(&mut b_rx, Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn plaintext_is_refused() {
    let ca = certs::generate_ca("test").unwrap();
    let (b, mut b_rx) = start(2, identity(&ca, 2), any_port()).await;
    let mut tcp = tokio::net::TcpStream::connect(b.local_addr())
        .await
        .unwrap();
    let body = synod_transport::frame::encode(&Frame::Hello { node: ReplicaId(1) }).unwrap();
    let mut wire = (body.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&body);
    let _ = tcp.write_all(&wire).await;
    assert!(
        eventually(|| TransportStats::get(&b.stats().refused) > 0).await,
        "refused"
    );
    assert!(recv(&mut b_rx, Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn a_restarted_peer_is_reconnected_and_queued_frames_flow() {
    let ca = certs::generate_ca("test").unwrap();
    let (a, _a_rx) = start(1, identity(&ca, 1), any_port()).await;
    let (b, mut b_rx) = start(2, identity(&ca, 2), any_port()).await;
    let b_addr = b.local_addr();
    a.add_peer(ReplicaId(2), b_addr);
    a.send(ReplicaId(2), &heartbeat(1, 2, 1)).unwrap();
    assert!(recv(&mut b_rx, Duration::from_secs(5)).await.is_some());
    drop(b);
    drop(b_rx);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Frames written into the broken connection before the dialer notices are lost (the
    // protocol above retransmits); after the peer is back, frames flow again.
    let (_b2, mut b2_rx) = start(2, identity(&ca, 2), b_addr).await;
    let mut delivered = false;
    for n in 2..100 {
        let _ = a.send(ReplicaId(2), &heartbeat(1, 2, n));
        if recv(&mut b2_rx, Duration::from_millis(50)).await.is_some() {
            delivered = true;
            break;
        }
    }
    assert!(delivered, "frames reach the restarted peer");
    assert!(TransportStats::get(&a.stats().connects) >= 2);
}

#[tokio::test]
async fn a_full_queue_drops_frames_and_counts_them() {
    let ca = certs::generate_ca("test").unwrap();
    let mut cfg = TransportConfig::new(ReplicaId(1), any_port(), identity(&ca, 1));
    cfg.queue_max = 8;
    let (a, _rx) = Transport::start(cfg).await.unwrap();
    // A peer that never answers: nothing drains its queue.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    a.add_peer(ReplicaId(9), silent.local_addr().unwrap());
    let mut full = 0;
    for n in 0..100 {
        if a.send(ReplicaId(9), &heartbeat(1, 9, n)) == Err(SendError::QueueFull(ReplicaId(9))) {
            full += 1;
        }
    }
    assert!(full >= 90, "{full} dropped");
    assert_eq!(TransportStats::get(&a.stats().dropped_queue_full), full);
    assert_eq!(
        a.send(ReplicaId(7), &heartbeat(1, 7, 0)),
        Err(SendError::UnknownPeer(ReplicaId(7)))
    );
}

#[test]
fn a_certificate_names_its_identity_by_common_name() {
    let ca = certs::generate_ca("test").unwrap();
    let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let alice = certs::issue_client(&ca, "alice").unwrap();
    let node = certs::issue_node(&ca, 1).unwrap();
    assert_eq!(
        synod_transport::tls::certificate_identity(&der(&alice.cert)).as_deref(),
        Some("client-alice")
    );
    assert_eq!(
        synod_transport::tls::certificate_identity(&der(&node.cert)).as_deref(),
        Some("node-1.synod")
    );
    let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x01, 0xff]);
    assert_eq!(synod_transport::tls::certificate_identity(&garbage), None);
}

#[test]
fn bad_pem_is_a_clear_error() {
    let err = TlsIdentity::from_pem("not a cert", "also not", "nope").unwrap_err();
    assert!(
        err.to_string().contains("node key") || err.to_string().contains("certificate"),
        "{err}"
    );
}

/// A peer with a valid certificate that has said Hello, over a raw TLS stream (to send what a
/// well-behaved transport never would).
async fn raw_peer(
    ca: &Pem,
    node: u16,
    to: u16,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(identity(ca, node).client_config().unwrap());
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(certs::node_name(to)).unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let body = synod_transport::frame::encode(&Frame::Hello {
        node: ReplicaId(node),
    })
    .unwrap();
    let mut wire = (body.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&body);
    tls.write_all(&wire).await.unwrap();
    tls
}

#[tokio::test]
async fn a_malformed_frame_closes_the_connection_and_is_counted_but_a_reset_is_not() {
    let ca = certs::generate_ca("test").unwrap();
    let (b, mut b_rx) = start(2, identity(&ca, 2), any_port()).await;

    // A peer that simply goes away (as when it restarts) is not a bad frame.
    let quitter = raw_peer(&ca, 1, 2, b.local_addr()).await;
    drop(quitter);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(TransportStats::get(&b.stats().bad_frames), 0);

    // Garbage in a well-delimited frame, then a frame claiming more than the limit.
    for wire in [
        [&8u32.to_be_bytes()[..], b"garbage!"].concat(),
        u32::MAX.to_be_bytes().to_vec(),
    ] {
        let mut liar = raw_peer(&ca, 1, 2, b.local_addr()).await;
        liar.write_all(&wire).await.unwrap();
        liar.flush().await.unwrap();
        let before = TransportStats::get(&b.stats().bad_frames);
        assert!(
            eventually(|| TransportStats::get(&b.stats().bad_frames) > before).await,
            "counted as a bad frame"
        );
    }
    assert!(recv(&mut b_rx, Duration::from_millis(200)).await.is_none());

    // The node is unharmed: a well-behaved peer still gets through.
    let (a, _a_rx) = start(1, identity(&ca, 1), any_port()).await;
    a.add_peer(ReplicaId(2), b.local_addr());
    a.send(ReplicaId(2), &heartbeat(1, 2, 7)).unwrap();
    let got = recv(&mut b_rx, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.from, ReplicaId(1));
}

/// A TLS connection to `addr` presenting `cert` (a node's or a client's), handshake done.
async fn raw_tls(
    ca: &Pem,
    cert: &Pem,
    to: u16,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let id = TlsIdentity::from_pem(&ca.cert, &cert.cert, &cert.key).unwrap();
    let connector = tokio_rustls::TlsConnector::from(id.client_config().unwrap());
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(certs::node_name(to)).unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// True once the server has closed `tls` (read gives end of stream or an error).
async fn closed(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    within: Duration,
) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0; 16];
    matches!(
        tokio::time::timeout(within, tls.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn only_node_certificates_get_past_the_handshake_and_nothing_large_is_read_before_hello() {
    let ca = certs::generate_ca("test").unwrap();
    let (b, mut b_rx) = start(2, identity(&ca, 2), any_port()).await;

    // A client's certificate from the same CA: closed right after the handshake, before any
    // frame is read (well within the 2 s the node would wait for a Hello).
    let client = certs::issue_client(&ca, "alice").unwrap();
    let mut c = raw_tls(&ca, &client, 2, b.local_addr()).await;
    assert!(
        closed(&mut c, Duration::from_secs(1)).await,
        "a client certificate was kept"
    );
    assert_eq!(TransportStats::get(&b.stats().refused), 1);

    // A node's certificate whose first frame claims 1 MiB: refused at the length, without
    // reading (or buffering) the body.
    let node1 = certs::issue_node(&ca, 1).unwrap();
    let mut big = raw_tls(&ca, &node1, 2, b.local_addr()).await;
    big.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
    big.write_all(&[0; 64 << 10]).await.unwrap();
    big.flush().await.unwrap();
    assert!(
        closed(&mut big, Duration::from_secs(1)).await,
        "a large first frame was read"
    );
    assert_eq!(TransportStats::get(&b.stats().refused), 2);
    assert!(recv(&mut b_rx, Duration::from_millis(100)).await.is_none());

    // Connections that never identify themselves: at most UNIDENTIFIED_MAX are held; the
    // others are closed at once. Each held one goes after the handshake timeout.
    let mut silent = Vec::new();
    for _ in 0..synod_transport::UNIDENTIFIED_MAX + 4 {
        silent.push(
            tokio::net::TcpStream::connect(b.local_addr())
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        TransportStats::get(&b.stats().refused) >= 2 + 4,
        "the connections over the cap were not refused"
    );
    // Meanwhile a real node is refused too (no place left), then gets in once they time out.
    let (a, _a_rx) = start(1, identity(&ca, 1), any_port()).await;
    a.add_peer(ReplicaId(2), b.local_addr());
    a.send(ReplicaId(2), &heartbeat(1, 2, 1)).unwrap();
    let mut got = None;
    for n in 2..200 {
        got = recv(&mut b_rx, Duration::from_millis(100)).await;
        if got.is_some() {
            break;
        }
        let _ = a.send(ReplicaId(2), &heartbeat(1, 2, n));
    }
    assert_eq!(
        got.map(|g| g.from),
        Some(ReplicaId(1)),
        "a node never got in"
    );
    drop(silent);
}

#[tokio::test]
async fn a_peer_named_by_dns_name_is_dialled_at_what_the_name_resolves_to() {
    let ca = certs::generate_ca("test").unwrap();
    let (a, _a_rx) = start(1, identity(&ca, 1), any_port()).await;
    let (b, mut b_rx) = start(2, identity(&ca, 2), any_port()).await;
    // `localhost` is in every hosts file; the resolver reads it, not libc.
    let named: synod_transport::PeerAddr = format!("localhost:{}", b.local_addr().port())
        .parse()
        .unwrap();
    assert_eq!(named.name(), Some("localhost"));
    a.add_peer(ReplicaId(2), named);
    a.send(ReplicaId(2), &heartbeat(1, 2, 7)).unwrap();
    let got = recv(&mut b_rx, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.from, ReplicaId(1));
    assert_eq!(got.frame, heartbeat(1, 2, 7));
}

#[tokio::test]
async fn during_a_ca_rotation_nodes_trusting_both_cas_talk_across_them() {
    // Step 2 of a rotation (docs/DEPLOY.md): every node trusts both CAs (a bundle in ca.pem);
    // node 1 already has a certificate from the new CA, node 2 still one from the old.
    let old = certs::generate_ca("old").unwrap();
    let new = certs::generate_ca("new").unwrap();
    let bundle = format!("{}{}", old.cert, new.cert);
    let with_bundle = |ca: &Pem, node: u16| {
        let cert = certs::issue_node(ca, node).unwrap();
        TlsIdentity::from_pem(&bundle, &cert.cert, &cert.key).unwrap()
    };
    let (a, mut a_rx) = start(1, with_bundle(&new, 1), any_port()).await;
    let (b, mut b_rx) = start(2, with_bundle(&old, 2), any_port()).await;
    a.add_peer(ReplicaId(2), b.local_addr());
    b.add_peer(ReplicaId(1), a.local_addr());
    a.send(ReplicaId(2), &heartbeat(1, 2, 1)).unwrap();
    b.send(ReplicaId(1), &heartbeat(2, 1, 1)).unwrap();
    assert!(recv(&mut b_rx, Duration::from_secs(5)).await.is_some());
    assert!(recv(&mut a_rx, Duration::from_secs(5)).await.is_some());
    // Step 3: a node that trusts only the new CA refuses node 2's old certificate.
    let (c, _c_rx) = start(3, identity(&new, 3), any_port()).await;
    b.add_peer(ReplicaId(3), c.local_addr());
    b.send(ReplicaId(3), &heartbeat(2, 3, 1)).unwrap();
    assert!(eventually(|| TransportStats::get(&c.stats().refused) > 0).await);
}
