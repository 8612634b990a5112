//! [`Transport`]: connections to the other nodes of a cluster.
//!
//! Every node listens for mutual-TLS connections and dials every peer. A dialed connection
//! carries frames one way (dialer to acceptor); its first frame is `Hello { node }`, which the
//! acceptor checks against the certificate the dialer presented. Each peer has a bounded
//! outbound queue: when it is full, new frames are dropped and counted (the protocol above
//! retransmits), so a dead peer never grows memory. A broken connection is re-dialled with a
//! randomized, growing backoff; queued frames wait for it.
//!
//! A partition must not leave a connection silently dead: TCP would keep retransmitting into
//! it with ever longer intervals, and after the heal the peer would stay unreachable for
//! seconds. So data unacknowledged for `dead_after` aborts a dialed connection
//! (`TCP_USER_TIMEOUT`, plus a timeout on each write), and an accepted connection that brings
//! no frame for `idle_after` is closed (peers send heartbeats far more often): the dialer then
//! re-dials, and the first attempt after the heal gets through.
//!
//! When a peer's connection ends without our closing it (end of stream, or a reset: what a
//! stopped or killed process's sockets do at once), the node above is told
//! ([`Inbound::Lost`]), after every frame that connection brought: a hint that the peer's
//! process is gone, faster than any timeout, for the protocol to act on.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use synod_core::ReplicaId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::addr::{PeerAddr, Resolver};
use crate::certs::node_name;
use crate::frame::{self, FRAME_MAX, Frame};
use crate::tls::{TlsError, TlsIdentity, certificate_node};

/// How a node reaches its peers.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// This node.
    pub node: ReplicaId,
    /// Where to listen for peers.
    pub listen: SocketAddr,
    /// Every other node and where it listens (an IP address or a DNS name, resolved at each
    /// dial).
    pub peers: BTreeMap<ReplicaId, PeerAddr>,
    /// TLS material.
    pub identity: TlsIdentity,
    /// Frames queued per peer before new ones are dropped.
    pub queue_max: usize,
    /// Frames received but not yet taken by the node before readers wait.
    pub inbound_max: usize,
    /// Limit on connecting (TCP and TLS handshake) and on the first frame.
    pub handshake_timeout: Duration,
    /// First reconnection delay; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Reconnection delay cap.
    pub backoff_max: Duration,
    /// A dialed connection whose data stays unacknowledged this long is dropped and re-dialled.
    pub dead_after: Duration,
    /// An accepted connection that brings no frame for this long is closed.
    pub idle_after: Duration,
}

impl TransportConfig {
    /// Defaults for a LAN.
    #[must_use]
    pub fn new(node: ReplicaId, listen: SocketAddr, identity: TlsIdentity) -> TransportConfig {
        TransportConfig {
            node,
            listen,
            peers: BTreeMap::new(),
            identity,
            queue_max: 4096,
            inbound_max: 16_384,
            handshake_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            dead_after: Duration::from_secs(2),
            idle_after: Duration::from_secs(5),
        }
    }
}

/// Counters.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Frames written to a connection.
    pub sent: AtomicU64,
    /// Frames dropped because a peer's queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Frames received and handed to the node.
    pub received: AtomicU64,
    /// Connections closed because a frame did not decode.
    pub bad_frames: AtomicU64,
    /// Inbound connections refused: TLS failed, no valid certificate, or a Hello that does not
    /// match the certificate.
    pub refused: AtomicU64,
    /// Successful outbound connections (the first and every reconnection).
    pub connects: AtomicU64,
}

impl TransportStats {
    /// Reads a counter.
    #[must_use]
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What arrives from peers, in the order each connection brought it.
#[derive(Debug)]
pub enum Inbound {
    /// A frame, with the node id its certificate proved.
    Frame {
        /// The sender.
        from: ReplicaId,
        /// What it sent.
        frame: Frame,
    },
    /// A connection `from` had dialled ended without this node closing it: its process
    /// stopped or died, or the network failed. A hint only (a new connection may already be
    /// up), delivered after every frame that connection brought.
    Lost {
        /// The peer.
        from: ReplicaId,
    },
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Not a configured peer.
    #[error("node {0} is not a peer")]
    UnknownPeer(ReplicaId),
    /// Its queue is full; the frame was dropped.
    #[error("the queue to node {0} is full; frame dropped")]
    QueueFull(ReplicaId),
    /// The frame cannot be encoded within the limit.
    #[error(transparent)]
    Frame(#[from] frame::FrameError),
}

/// Why the transport could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// The TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The running transport. Dropping it stops every task.
pub struct Transport {
    node: ReplicaId,
    local_addr: SocketAddr,
    queues: Mutex<BTreeMap<ReplicaId, mpsc::Sender<Bytes>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    connector: TlsConnector,
    resolver: Resolver,
    config: TransportConfig,
    stats: Arc<TransportStats>,
}

fn codec() -> LengthDelimitedCodec {
    codec_with_max(FRAME_MAX)
}

fn codec_with_max(max: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(max)
        .new_codec()
}

impl Transport {
    /// Binds the listener and starts dialing every peer. Returns the handle and the stream of
    /// frames received.
    ///
    /// # Errors
    /// [`StartError`] if the address cannot be bound or the TLS material is unusable.
    pub async fn start(
        config: TransportConfig,
    ) -> Result<(Transport, mpsc::Receiver<Inbound>), StartError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let acceptor = TlsAcceptor::from(config.identity.server_config()?);
        let connector = TlsConnector::from(config.identity.client_config()?);
        let stats = Arc::new(TransportStats::default());
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_max);
        let accept = tokio::spawn(accept_loop(
            listener,
            acceptor,
            inbound_tx,
            stats.clone(),
            config.handshake_timeout,
            config.idle_after,
        ));
        let transport = Transport {
            node: config.node,
            local_addr,
            queues: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(vec![accept]),
            connector,
            // Made here, inside the runtime its queries will run on.
            resolver: Resolver::system(),
            stats,
            config: config.clone(),
        };
        for (peer, addr) in &config.peers {
            transport.add_peer(*peer, addr.clone());
        }
        Ok((transport, inbound_rx))
    }

    /// Where the listener is bound (useful with port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &TransportStats {
        &self.stats
    }

    /// Starts dialing `peer` at `addr` (replacing an earlier address).
    pub fn add_peer(&self, peer: ReplicaId, addr: impl Into<PeerAddr>) {
        let addr = addr.into();
        let (tx, rx) = mpsc::channel(self.config.queue_max);
        let dialer = Dialer {
            me: self.node,
            peer,
            addr,
            resolver: self.resolver.clone(),
            connector: self.connector.clone(),
            stats: self.stats.clone(),
            timeout: self.config.handshake_timeout,
            backoff_min: self.config.backoff_min,
            backoff_max: self.config.backoff_max,
            dead_after: self.config.dead_after,
        };
        let task = tokio::spawn(dialer.run(rx));
        lock(&self.queues).insert(peer, tx);
        lock(&self.tasks).push(task);
    }

    /// Stops talking to `peer`.
    pub fn remove_peer(&self, peer: ReplicaId) {
        lock(&self.queues).remove(&peer);
    }

    /// Queues `frame` for `to` without waiting.
    ///
    /// # Errors
    /// [`SendError`]: unknown peer, full queue (frame dropped and counted) or oversized frame.
    pub fn send(&self, to: ReplicaId, frame: &Frame) -> Result<(), SendError> {
        let bytes = frame::encode(frame)?;
        let queues = lock(&self.queues);
        let tx = queues.get(&to).ok_or(SendError::UnknownPeer(to))?;
        tx.try_send(bytes).map_err(|_| {
            self.stats
                .dropped_queue_full
                .fetch_add(1, Ordering::Relaxed);
            SendError::QueueFull(to)
        })
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("node", &self.node)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Dialer {
    me: ReplicaId,
    peer: ReplicaId,
    addr: PeerAddr,
    resolver: Resolver,
    connector: TlsConnector,
    stats: Arc<TransportStats>,
    timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    dead_after: Duration,
}

impl Dialer {
    async fn run(self, mut rx: mpsc::Receiver<Bytes>) {
        let mut backoff = self.backoff_min;
        let mut pending: Option<Bytes> = None;
        loop {
            match tokio::time::timeout(self.timeout, self.connect()).await {
                Ok(Ok(mut framed)) => {
                    self.stats.connects.fetch_add(1, Ordering::Relaxed);
                    backoff = self.backoff_min;
                    loop {
                        let next = match pending.take() {
                            Some(b) => b,
                            None => match rx.recv().await {
                                Some(b) => b,
                                None => return, // the transport is gone
                            },
                        };
                        let sent = tokio::time::timeout(self.dead_after, framed.send(next.clone()));
                        if !matches!(sent.await, Ok(Ok(()))) {
                            // Keep the frame for the next connection.
                            tracing::debug!(peer = %self.peer, "connection lost; re-dialling");
                            pending = Some(next);
                            break;
                        }
                        self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(Err(e)) => tracing::debug!(peer = %self.peer, error = %e, "connect failed"),
                Err(_) => tracing::debug!(peer = %self.peer, "connect timed out"),
            }
            // Randomized so that nodes restarting together do not reconnect in lockstep.
            let jitter = u64::from(std::process::id() ^ u32::from(self.peer.0)) % 97;
            let wait = backoff + backoff * u32::try_from(jitter).unwrap_or(0) / 97;
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(self.backoff_max);
        }
    }

    async fn connect(
        &self,
    ) -> io::Result<FramedWrite<tokio_rustls::client::TlsStream<TcpStream>, LengthDelimitedCodec>>
    {
        // Resolved at every attempt: a peer back under a new address is found again.
        let addrs = self.resolver.resolve(&self.addr).await?;
        let tcp = TcpStream::connect(addrs.as_slice()).await?;
        tcp.set_nodelay(true)?;
        // Abort rather than retransmit into a partition for minutes (see the module docs).
        socket2::SockRef::from(&tcp).set_tcp_user_timeout(Some(self.dead_after))?;
        let name = ServerName::try_from(node_name(self.peer.0)).map_err(io::Error::other)?;
        let tls = self.connector.connect(name, tcp).await?;
        let mut framed = FramedWrite::new(tls, codec());
        let hello = frame::encode(&Frame::Hello { node: self.me }).map_err(io::Error::other)?;
        framed.send(hello).await?;
        Ok(framed)
    }
}

/// Connections accepted and not yet identified (TLS handshake and Hello) at once: more are
/// closed as they come, so that nobody without a node's certificate holds more than this.
pub const UNIDENTIFIED_MAX: usize = 32;

/// Connections one node may hold open to this one at once (it dials one; a few more linger
/// while it reconnects).
pub const PER_NODE_MAX: usize = 8;

/// The largest first frame (a Hello is a few bytes): nothing large is read from a connection
/// before it is known to come from a node.
const HELLO_MAX: usize = 64;

/// What the acceptor shares between connections.
struct Accepting {
    acceptor: TlsAcceptor,
    inbound: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    timeout: Duration,
    idle_after: Duration,
    unidentified: Arc<tokio::sync::Semaphore>,
    per_node: Mutex<BTreeMap<ReplicaId, Arc<tokio::sync::Semaphore>>>,
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    inbound: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
    timeout: Duration,
    idle_after: Duration,
) {
    let shared = Arc::new(Accepting {
        acceptor,
        inbound,
        stats,
        timeout,
        idle_after,
        unidentified: Arc::new(tokio::sync::Semaphore::new(UNIDENTIFIED_MAX)),
        per_node: Mutex::new(BTreeMap::new()),
    });
    loop {
        let Ok((tcp, addr)) = listener.accept().await else {
            continue;
        };
        let Ok(place) = shared.unidentified.clone().try_acquire_owned() else {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%addr, "refused a peer connection: too many are not identified yet");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve_connection(tcp, addr, shared.clone(), place));
    }
}

async fn serve_connection(
    tcp: TcpStream,
    addr: SocketAddr,
    shared: Arc<Accepting>,
    unidentified: tokio::sync::OwnedSemaphorePermit,
) {
    let Accepting {
        acceptor,
        inbound,
        stats,
        timeout,
        idle_after,
        ..
    } = &*shared;
    let refuse = |why: &str| {
        stats.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%addr, reason = why, "refused a peer connection");
    };
    let tls = match tokio::time::timeout(*timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return refuse(&format!("TLS handshake failed: {e}")),
        Err(_) => return refuse("TLS handshake timed out"),
    };
    let Some(cert) = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned()
    else {
        return refuse("no client certificate");
    };
    // Only a node's certificate may go on: a client's (from the same CA) is refused before
    // anything is read from it.
    let Some(named) = certificate_node(&cert) else {
        return refuse("the certificate is not a node's");
    };
    let mut framed = FramedRead::with_capacity(tls, codec_with_max(HELLO_MAX), HELLO_MAX + 4);
    let node = match tokio::time::timeout(*timeout, framed.next()).await {
        Ok(Some(Ok(bytes))) => match frame::decode(&bytes) {
            Ok(Frame::Hello { node }) => node,
            Ok(_) => return refuse("first frame is not Hello"),
            Err(e) => return refuse(&format!("bad first frame: {e}")),
        },
        Ok(Some(Err(e))) => return refuse(&format!("bad first frame: {e}")),
        _ => return refuse("no Hello"),
    };
    if node.0 != named {
        return refuse(&format!(
            "claims to be node {node} but its certificate names node {named}"
        ));
    }
    let node_places = lock(&shared.per_node)
        .entry(node)
        .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(PER_NODE_MAX)))
        .clone();
    let Ok(_node_place) = node_places.try_acquire_owned() else {
        return refuse(&format!(
            "node {node} holds {PER_NODE_MAX} connections already"
        ));
    };
    drop(unidentified);
    framed.decoder_mut().set_max_frame_length(FRAME_MAX);
    let (inbound, stats, idle_after) = (inbound.clone(), stats.clone(), *idle_after);
    loop {
        let next = match tokio::time::timeout(idle_after, framed.next()).await {
            Ok(Some(next)) => next,
            Ok(None) => {
                tracing::debug!(node = %node, "peer closed its connection");
                let _ = inbound.send(Inbound::Lost { from: node }).await;
                return;
            }
            Err(_) => {
                tracing::debug!(
                    node = %node,
                    "closing a connection that brought nothing for a while"
                );
                return;
            }
        };
        let bytes = match next {
            Ok(b) => b,
            // The codec reports an oversized frame as invalid data; anything else is the
            // connection itself failing (a reset when the peer restarts), not a bad frame.
            Err(e) if e.kind() != std::io::ErrorKind::InvalidData => {
                tracing::debug!(node = %node, error = %e, "peer connection closed");
                let _ = inbound.send(Inbound::Lost { from: node }).await;
                return;
            }
            Err(e) => {
                stats.bad_frames.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(node = %node, error = %e, "closing a connection after a bad frame");
                return;
            }
        };
        let frame = match frame::decode(&bytes) {
            Ok(f) => f,
            Err(e) => {
                stats.bad_frames.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(node = %node, error = %e, "closing a connection after a bad frame");
                return;
            }
        };
        stats.received.fetch_add(1, Ordering::Relaxed);
        if inbound
            .send(Inbound::Frame { from: node, frame })
            .await
            .is_err()
        {
            return;
        }
    }
}
