//! Who is calling the API, and whether they may.
//!
//! The API is served over mutual TLS: the server's acceptor attaches the identity the client's
//! certificate names (its common name, `client-alice`) to every request on the connection as
//! an `Option<Who>` extension; [`Who`]'s extractor refuses (401) a request without one. A node
//! serving plain HTTP (`insecure_plaintext_api`) authenticates no one: every request is
//! [`Caller::Unauthenticated`], which holds only what is granted to anyone (`*`): all of a
//! group created unauthenticated, nothing of one an identity owns.
//!
//! [`authorize`] checks a role in a group with an access list against this node's catalog;
//! catalog changes that need a role carry the caller and are checked again when applied
//! (`synod_node::access`).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use synod_core::GroupId;
use synod_node::access::{Access, Caller, Role};
use synod_node::catalog::GroupInfo;

use crate::{Api, barrier, error, group_id};

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Who(pub Caller);

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

/// A kind of group, as its routes name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// Its kind in the catalog (`ledger`).
    pub name: &'static str,
    /// What one is called in a sentence (`a ledger channel`).
    pub noun: &'static str,
}

/// The id of `name`, a group of `kind` in which `who` holds `role`; or the answer: 404 if
/// there is no such group or `who` holds no role in it (the same answer either way), 403
/// naming the identity and the role if `who` holds another role but not this one.
///
/// # Errors
/// The 404 or 403 answer.
pub async fn authorize(
    api: &Api,
    who: &Who,
    name: &str,
    kind: &Kind,
    role: Role,
) -> Result<GroupId, Response> {
    if role == Role::Admin {
        // A revocation acknowledged through another node counts before an administrator acts.
        barrier(api).await?;
    }
    // One answer for a group that does not exist, is of another kind, or where the caller
    // holds no role at all: a caller with no role learns nothing of what exists.
    let hidden = || {
        error(
            StatusCode::NOT_FOUND,
            format!("{name:?} is not {} that {} may use", kind.noun, who.0),
        )
    };
    let id = group_id(api, name).await.map_err(|_| hidden())?;
    let catalog = api.node.catalog();
    let Some(group) = catalog.group_by_id(id).filter(|g| g.kind == kind.name) else {
        return Err(hidden());
    };
    let access = group.access.as_ref();
    if !access.is_none_or(|a| holds_any(who, a)) {
        return Err(hidden());
    }
    match refusal(&who.0, access, name, role) {
        Some(refused) => Err(refused),
        None => Ok(id),
    }
}

/// Whether `who` holds any role under `access` (a caller who holds none is answered as if the
/// group did not exist).
#[must_use]
pub fn holds_any(who: &Who, access: &Access) -> bool {
    [Role::Read, Role::Write, Role::Admin]
        .into_iter()
        .any(|r| who.0.holds(access, r))
}

/// The 403 answer if `caller` does not hold `role` under `access` (`None`: a group open to
/// every identity, such as the default group until it is given a list).
pub fn refusal(
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
                 /v1/groups/{name}/access)"
            ),
        )),
        _ => None,
    }
}

/// The 403 answer if `who` may not administer the cluster (create groups, change the members
/// of groups without access lists, register node addresses): the `cluster_admins` of this
/// node's configuration, everyone if it has none.
pub fn not_cluster_admin(api: &Api, who: &Who) -> Option<Response> {
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
pub fn visible_to<'a>(
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
pub async fn whoami(
    axum::extract::State(api): axum::extract::State<std::sync::Arc<Api>>,
    who: Who,
) -> Response {
    let identity = match &who.0 {
        Caller::Identity(name) => serde_json::Value::from(name.as_str()),
        Caller::Unauthenticated => serde_json::Value::Null,
    };
    // Like every answer, the GSN it reflects: the default group's, whose catalog holds the
    // access lists this identity is judged by.
    let applied = api
        .node
        .app(synod_node::DEFAULT_GROUP)
        .await
        .map_or(0, |(_, applied)| applied.0);
    (
        crate::gsn_header(applied),
        axum::Json(serde_json::json!({
            "identity": identity,
            "authenticated": identity.is_string(),
        })),
    )
        .into_response()
}

/// Shared by the create handlers: the access list named in a request body, or the default
/// for `who` (every role to the creator; to everyone on a plain-HTTP API).
pub fn access_or_default(who: &Who, named: Option<AccessJson>) -> Access {
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
pub struct AccessJson {
    /// Who administers (the caller if left out).
    pub admins: Option<std::collections::BTreeSet<String>>,
    /// Who writes.
    #[serde(default)]
    pub writers: Vec<String>,
    /// Who reads.
    #[serde(default)]
    pub readers: Vec<String>,
}

/// The JSON form of an access list.
pub fn access_json(access: &Access) -> serde_json::Value {
    serde_json::json!({
        "admins": access.admins, "writers": access.writers, "readers": access.readers,
    })
}
