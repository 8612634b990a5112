//! Who is calling the API, and whether they may.
//!
//! The API is served over mutual TLS: rustls accepts only clients with a certificate from the
//! cluster CA, and [`IdentifyingAcceptor`] attaches the identity that certificate names (its
//! common name, `client-alice`) to every request on the connection. A request without one (a
//! certificate with no common name) is refused with 401 before any handler runs
//! ([`require_identity`]). A node serving plain HTTP (`insecure_plaintext_api`) authenticates
//! no one: every request is [`Caller::Unauthenticated`], which holds only what is granted to
//! anyone (`*`): all of a group created unauthenticated, nothing of one an identity owns.
//!
//! [`authorize`] checks a role in a channel or notary against this node's catalog; catalog
//! changes that need a role carry the caller and are checked again when applied
//! (`synod_node::access`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;

use axum::Extension;
use axum::extract::FromRequestParts;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::AddExtension;
use axum::response::{IntoResponse, Response};
use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsAcceptor;
use synod_node::access::{Access, Caller, Role};
use synod_node::catalog::{AdminCommand, AdminOutput, GroupInfo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tower_layer::Layer;

use crate::admin;
use crate::http::{Api, error, group_id, gsn_header};

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub(crate) struct Who(pub(crate) Caller);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Who, Response> {
        let who = parts.extensions.get::<Option<Who>>().cloned().flatten();
        who.ok_or_else(|| {
            error(
                StatusCode::UNAUTHORIZED,
                "the client certificate names no identity (it has no common name); use one \
                 issued by `synod certs --clients NAME`",
            )
        })
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

/// What kind of group a request is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Channel,
    Notary,
}

impl Kind {
    fn matches(self, kind: &str) -> bool {
        match self {
            Kind::Channel => kind == synod_ledger::CHANNEL_KIND,
            Kind::Notary => kind == synod_ledger::NOTARY_KIND,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Channel => "a ledger channel",
            Kind::Notary => "a notary",
        }
    }
}

/// The id of `name`, a group of `kind` in which `who` holds `role`; or the answer: 404 if
/// there is no such group, 403 naming the identity and the role if `who` does not hold it.
pub(crate) async fn authorize(
    api: &Api,
    who: &Who,
    name: &str,
    kind: Kind,
    role: Role,
) -> Result<u32, Response> {
    if role == Role::Admin {
        // A revocation acknowledged through another node counts before an administrator acts.
        admin::barrier(api).await?;
    }
    let id = group_id(api, name).await?;
    let catalog = api.node.catalog();
    let Some(group) = catalog.group_by_id(id).filter(|g| kind.matches(&g.kind)) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("{name:?} is not {}", kind.noun()),
        ));
    };
    match refusal(&who.0, group.access.as_ref(), name, role) {
        Some(refused) => Err(refused),
        None => Ok(id),
    }
}

/// The 403 answer if `caller` does not hold `role` under `access` (`None`: a key-value group,
/// open to every identity).
pub(crate) fn refusal(
    caller: &Caller,
    access: Option<&Access>,
    name: &str,
    role: Role,
) -> Option<Response> {
    match access {
        Some(access) if !caller.holds(access, role) => Some(error(
            StatusCode::FORBIDDEN,
            format!(
                "{caller} may not {role} {name:?} (its administrators can grant it: PUT \
                 /v1/channels/{name}/access or /v1/notaries/{name}/access)"
            ),
        )),
        _ => None,
    }
}

/// The 403 answer if `who` may not administer the cluster (create groups, change the members
/// of groups without access lists, register node addresses): the `cluster_admins` of this
/// node's configuration, everyone if it has none.
pub(crate) fn not_cluster_admin(api: &Api, who: &Who) -> Option<Response> {
    let admins = api.cluster_admins.as_ref()?;
    (!who.0.holds(admins, Role::Admin)).then(|| {
        error(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not administer the cluster (this node's cluster_admins do not list it)",
                who.0
            ),
        )
    })
}

/// A filter for listings: the groups `wanted` picks that `who` may read, or all of them if
/// `who` administers the cluster.
pub(crate) fn visible_to<'a>(
    api: &Api,
    who: &'a Who,
    wanted: impl Fn(&GroupInfo) -> bool + 'a,
) -> impl Fn(&GroupInfo) -> bool + 'a {
    let everything = not_cluster_admin(api, who).is_none();
    move |g: &GroupInfo| {
        wanted(g)
            && (everything
                || g.access
                    .as_ref()
                    .is_none_or(|access| who.0.holds(access, Role::Read)))
    }
}

/// `GET /v1/whoami`: the identity this node sees for the caller.
pub(crate) async fn whoami(who: Who) -> Response {
    let identity = match &who.0 {
        Caller::Identity(name) => serde_json::Value::from(name.as_str()),
        Caller::Unauthenticated => serde_json::Value::Null,
    };
    axum::Json(serde_json::json!({
        "identity": identity,
        "authenticated": identity.is_string(),
    }))
    .into_response()
}

/// Shared by the create handlers: the access list named in a request body, or the default
/// for `who` (every role to the creator; to everyone on a plain-HTTP API).
pub(crate) fn access_or_default(who: &Who, named: Option<AccessJson>) -> Access {
    match named {
        None => who.0.default_access(),
        Some(named) => Access {
            admins: named
                .admins
                .unwrap_or_else(|| who.0.default_access().admins),
            writers: named.writers.into_iter().collect(),
            readers: named.readers.into_iter().collect(),
        },
    }
}

/// An access list as a request names it; administrators default to the caller.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessJson {
    admins: Option<std::collections::BTreeSet<String>>,
    #[serde(default)]
    writers: Vec<String>,
    #[serde(default)]
    readers: Vec<String>,
}

/// The JSON form of an access list.
pub(crate) fn access_json(access: &Access) -> serde_json::Value {
    serde_json::json!({
        "admins": access.admins, "writers": access.writers, "readers": access.readers,
    })
}

/// `PUT /v1/channels/{channel}/access` and `PUT /v1/notaries/{notary}/access`: replaces the
/// access list (administrators only, checked again where the change is agreed). Answers with
/// the group as the catalog now holds it.
pub(crate) async fn set_access(
    api: Arc<Api>,
    who: Who,
    name: String,
    kind: Kind,
    body: Result<axum::Json<AccessJson>, JsonRejection>,
) -> Response {
    let axum::Json(named) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    if let Err(r) = authorize(&api, &who, &name, kind, Role::Admin).await {
        return r;
    }
    // A list without administrators keeps the current ones (not the caller alone).
    let admins_left_out = named.admins.is_none();
    let current = api
        .node
        .catalog()
        .group(&name)
        .and_then(|g| g.access.clone());
    let mut access = access_or_default(&who, Some(named));
    if let (Some(current), true) = (current, admins_left_out) {
        access.admins = current.admins;
    }
    if let Err(why) = access.check() {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let cmd = AdminCommand::SetAccess {
        name,
        access,
        by: who.0,
    };
    match admin::agree(&api, cmd).await {
        Err(r) => r,
        Ok((gsn, AdminOutput::Group(g))) => {
            (gsn_header(gsn), axum::Json(admin::group_json(&g, false))).into_response()
        }
        // Revoked, or removed, between the check above and agreement.
        Ok((_, AdminOutput::Refused(why))) => error(StatusCode::CONFLICT, why),
        Ok((_, other)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected outcome {other:?}"),
        ),
    }
}
