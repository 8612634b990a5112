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

use std::io;
use std::pin::Pin;

use axum::Extension;
use axum::http::StatusCode;
use axum::middleware::AddExtension;
use axum::response::Response;
use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsAcceptor;
use synod_api::access::Who;
use synod_api::error;
use synod_node::access::Caller;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tower_layer::Layer;

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
}

impl IdentifyingAcceptor {
    pub(crate) fn new(config: axum_server::tls_rustls::RustlsConfig) -> IdentifyingAcceptor {
        IdentifyingAcceptor {
            tls: RustlsAcceptor::new(config),
        }
    }
}

type Accepted<I, S> = io::Result<(TlsStream<I>, AddExtension<S, Option<Who>>)>;

impl<I, S> Accept<I, S> for IdentifyingAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream = TlsStream<I>;
    // An `Option` extension: a connection whose certificate names no one carries `None`, and
    // `Who`'s extractor finds no `Who`, so its requests are refused.
    type Service = AddExtension<S, Option<Who>>;
    type Future = Pin<Box<dyn Future<Output = Accepted<I, S>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let (stream, service) = tls.accept(stream, service).await?;
            let identity = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(synod_transport::tls::certificate_identity);
            let who = identity.map(|name| Who(Caller::Identity(name)));
            Ok((stream, Extension(who).layer(service)))
        })
    }
}
