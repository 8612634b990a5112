//! Who is calling the API.
//!
//! The API is served over mutual TLS: rustls accepts only clients with a certificate from the
//! cluster CA, and [`IdentifyingAcceptor`] attaches the identity that certificate names (its
//! common name, `client-alice`) to every request on the connection. A request without one (a
//! certificate with no common name) is refused with 401 before any handler runs
//! ([`require_identity`]). A node serving plain HTTP (`insecure_plaintext_api`) authenticates
//! no one: every request is [`Caller::Unauthenticated`], which holds only what is granted to
//! anyone (`*`). What each caller may do is checked where the data is served
//! (`synod_api::access`).
//!
//! Connections are bounded ([`ConnectionLimits`]): at most so many per node and per identity
//! (a connection over either cap is closed at once), a TLS handshake must finish within the
//! header timeout, and the HTTP server closes a connection that sends no complete request head
//! within it, idle keep-alive connections included ([`configure_http`]). Only HTTP/1.1 is
//! served: ALPN offers nothing else, and an HTTP/2 preface is answered as a bad request.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Extension;
use axum::http::StatusCode;
use axum::middleware::AddExtension;
use axum::response::Response;
use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsAcceptor;
use synod_api::access::Who;
use synod_api::error;
use synod_node::access::Caller;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tower_layer::Layer;

/// How many API connections a node holds, and for how long one may say nothing.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    node: Arc<Semaphore>,
    per_identity: usize,
    identities: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// A TLS handshake, and each request head, must arrive within this.
    pub(crate) header_timeout: Duration,
}

impl ConnectionLimits {
    pub(crate) fn new(
        node: usize,
        per_identity: usize,
        header_timeout: Duration,
    ) -> ConnectionLimits {
        ConnectionLimits {
            node: Arc::new(Semaphore::new(node.max(1))),
            per_identity: per_identity.max(1),
            identities: Mutex::new(HashMap::new()),
            header_timeout,
        }
    }

    /// A place for one more connection on this node, if there is one.
    fn connection(&self) -> io::Result<OwnedSemaphorePermit> {
        self.node.clone().try_acquire_owned().map_err(|_| {
            tracing::warn!("API connection refused: the node holds its maximum");
            io::Error::other("the node holds its maximum of API connections")
        })
    }

    /// A place for one more connection of `identity`, if it has one left.
    fn of(&self, identity: &str) -> io::Result<OwnedSemaphorePermit> {
        let mut identities = self
            .identities
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget identities holding nothing, so the map is as large as what is held.
        if identities.len() > 1_024 {
            let all = self.per_identity;
            identities.retain(|_, s| s.available_permits() < all);
        }
        let semaphore = identities
            .entry(identity.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_identity)))
            .clone();
        drop(identities);
        semaphore.try_acquire_owned().map_err(|_| {
            tracing::warn!(
                identity,
                "API connection refused: the identity holds its maximum"
            );
            io::Error::other("this identity holds its maximum of API connections")
        })
    }
}

/// Closes a connection whose request head, once begun, does not arrive whole within
/// `header_timeout` (a slow-loris client). Connections that send nothing at all are closed by
/// [`Held`]. The server is made HTTP/1.1-only apart (`axum_server::Server::http1_only`).
pub(crate) fn configure_http(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
}

/// A connection's stream, holding its places under the limits until it closes, and closing
/// it once nothing has passed in either direction for the idle timeout: hyper's header
/// timeout only starts at a request's first byte, so a client that connects and says nothing
/// (or stops between requests) would otherwise hold its place for ever.
///
/// When the server is done with a connection, it lingers ([`linger`]): the server may have
/// answered before reading a request's body (404, 413), and closing a socket with unread
/// bytes makes the kernel reset it, which throws away the answer the client has not read yet.
pub(crate) struct Held<S: Lingering> {
    /// `None` only once dropped.
    inner: Option<S>,
    places: Vec<OwnedSemaphorePermit>,
    idle: Duration,
    last: tokio::time::Instant,
    timer: Pin<Box<tokio::time::Sleep>>,
}

/// A stream a closed connection can linger on.
pub(crate) trait Lingering: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Lingering for S {}

/// How much of a closed connection's unread request a node reads and throws away, and for
/// how long, so that the client reads the answer first (nginx's lingering close): enough for
/// any body under the API's limits that a client sends before looking at the answer.
const LINGER_BYTES: usize = 8 << 20;
const LINGER_TIME: Duration = Duration::from_secs(2);

impl<S: Lingering> Held<S> {
    fn new(inner: S, places: Vec<OwnedSemaphorePermit>, idle: Duration) -> Held<S> {
        let last = tokio::time::Instant::now();
        Held {
            inner: Some(inner),
            places,
            idle,
            last,
            timer: Box::pin(tokio::time::sleep_until(last + idle)),
        }
    }

    fn stream(&mut self) -> Pin<&mut S> {
        Pin::new(
            self.inner
                .as_mut()
                .expect("invariant: a held stream is only taken when dropped"),
        )
    }
}

impl<S: Lingering> Drop for Held<S> {
    fn drop(&mut self) {
        let (Some(stream), Ok(runtime)) =
            (self.inner.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        // The places stay held while the connection lingers: it is still open.
        let places = std::mem::take(&mut self.places);
        runtime.spawn(async move {
            linger(stream).await;
            drop(places);
        });
    }
}

/// Finishes sending, then reads and discards what the client still sends until it closes,
/// [`LINGER_BYTES`] have come, or [`LINGER_TIME`] has passed.
async fn linger<S: Lingering>(mut stream: S) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let drained = async {
        // Sends what is buffered (a TLS close_notify) and the end of the stream.
        if stream.shutdown().await.is_err() {
            return;
        }
        let mut buf = vec![0; 64 * 1024];
        let mut read = 0;
        while read < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drained).await;
}

impl<S: Lingering> AsyncRead for Held<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match self.stream().poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.last = tokio::time::Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let deadline = self.last + self.idle;
                if self.timer.deadline() != deadline {
                    self.timer.as_mut().reset(deadline);
                }
                match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "an API connection was idle for the header timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: Lingering> AsyncWrite for Held<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = self.stream().poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.last = tokio::time::Instant::now();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}

/// Accepts plain-HTTP connections (`insecure_plaintext_api`) under the node's cap.
#[derive(Clone)]
pub(crate) struct PlainAcceptor {
    limits: Arc<ConnectionLimits>,
}

impl PlainAcceptor {
    pub(crate) fn new(limits: Arc<ConnectionLimits>) -> PlainAcceptor {
        PlainAcceptor { limits }
    }
}

impl<I, S> Accept<I, S> for PlainAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream = Held<I>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Held<I>, S)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let idle = self.limits.header_timeout;
        std::future::ready(
            self.limits
                .connection()
                .map(|place| (Held::new(stream, vec![place], idle), service)),
        )
    }
}

/// Refuses (401) a request that carries no caller, before any handler runs: a TLS client
/// whose certificate names no identity. `/health` answers anyone.
pub(crate) async fn require_identity(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let known = matches!(request.extensions().get::<Option<Who>>(), Some(Some(_)));
    if known || request.uri().path() == "/health" {
        next.run(request).await
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            "the client certificate names no identity (it has no common name); use one issued \
             by `synod certs --clients NAME`",
        )
    }
}

/// The layer a plain-HTTP API runs under: every caller is [`Caller::Unauthenticated`].
pub(crate) fn unauthenticated() -> Extension<Option<Who>> {
    Extension(Some(Who(Caller::Unauthenticated)))
}

/// Accepts TLS connections (client certificate required by the rustls configuration) and
/// attaches the client's identity to every request served on the connection.
#[derive(Clone)]
pub(crate) struct IdentifyingAcceptor {
    tls: RustlsAcceptor,
    limits: Arc<ConnectionLimits>,
}

impl IdentifyingAcceptor {
    pub(crate) fn new(
        config: axum_server::tls_rustls::RustlsConfig,
        limits: Arc<ConnectionLimits>,
    ) -> IdentifyingAcceptor {
        IdentifyingAcceptor {
            tls: RustlsAcceptor::new(config).handshake_timeout(limits.header_timeout),
            limits,
        }
    }
}

type Accepted<I, S> = io::Result<(Held<TlsStream<I>>, AddExtension<S, Option<Who>>)>;

impl<I, S> Accept<I, S> for IdentifyingAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream = Held<TlsStream<I>>;
    // An `Option` extension: a connection whose certificate names no one carries `None`, and
    // `Who`'s extractor finds no `Who`, so its requests are refused.
    type Service = AddExtension<S, Option<Who>>;
    type Future = Pin<Box<dyn Future<Output = Accepted<I, S>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let (tls, limits) = (self.tls.clone(), self.limits.clone());
        Box::pin(async move {
            // Counted from the first byte: a connection that never finishes its handshake
            // holds a place only until the handshake timeout.
            let mut places = vec![limits.connection()?];
            let (stream, service) = tls.accept(stream, service).await?;
            let identity = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(synod_transport::tls::certificate_identity);
            if let Some(name) = &identity {
                places.push(limits.of(name)?);
            }
            let who = identity.map(|name| Who(Caller::Identity(name)));
            let stream = Held::new(stream, places, limits.header_timeout);
            Ok((stream, Extension(who).layer(service)))
        })
    }
}
