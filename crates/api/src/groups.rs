//! What every group has, whatever its kind: `/v1/groups` (create, list, show, remove), its
//! members (`/v1/groups/{group}/members`), `/v1/status` and `/v1/whoami` ([`router`]); and
//! the plumbing applications reuse for their own kinds (agreeing on a catalog change,
//! creating, listing, removing).
//!
//! Catalog changes are agreed in the default group like any write, so any node accepts them
//! and every node ends with the same catalog. Adding a member is three agreed steps, each safe
//! to retry: record the node's peer address (if given), make it host the group, then add it
//! to the group's voting configuration. The node catches up (through a snapshot if the log was
//! truncated) and votes from the GSN the change names.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::json;
use synod_core::{ConfigChange, GroupId, ReplicaId};
use synod_node::access::Role;
use synod_node::catalog::{AdminCommand, AdminOutput, DEFAULT_GROUP_NAME, GroupInfo, Refusal};

use crate::access::{self, Who};
use crate::{Api, barrier, error, group_id, gsn_header, request_error, timed_out};

/// The routes every group has: groups, members, status, whoami. Served with the [`Api`] as
/// state, merged with the applications' routers.
pub fn router() -> Router<Arc<Api>> {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/whoami", get(access::whoami))
        .route("/v1/groups", get(list).post(create))
        .route("/v1/groups/{group}", get(show).delete(remove))
        .route("/v1/groups/{group}/access", put(put_group_access))
        .route("/v1/groups/{group}/members", post(add_member))
        .route("/v1/groups/{group}/members/{id}", delete(remove_member))
}

/// `GET /v1/status`: the groups hosted here (one with an access list only to those who may
/// read it).
async fn status(State(api): State<Arc<Api>>, who: Who) -> Response {
    let catalog = api.node.catalog();
    let visible = access::visible_to(&api, &who, |_| true);
    let groups: Vec<_> = api
        .node
        .status()
        .await
        .into_iter()
        .filter(|g| catalog.group_by_id(g.group).is_none_or(&visible))
        .map(|g| {
            json!({
                "group": g.name, "id": g.group, "applied_gsn": g.applied.0,
                "behind": g.peers_applied.0.saturating_sub(g.applied.0), "members": g.members,
                "has_quorum": g.has_quorum, "kind": g.kind, "items": g.items,
                "content_hash": format!("{:016x}", g.content_hash), "pending": g.pending,
                "corrupt": g.corrupt, "rejoining": g.rejoining, "quiet": g.quiet,
            })
        })
        .collect();
    axum::Json(json!({ "groups": groups })).into_response()
}

/// The answer for a change the catalog refused where it was applied: 404 for a group that is
/// not there, 403 for a caller who is not (or no longer) its administrator, 409 otherwise.
pub fn refused(why: &Refusal) -> Response {
    let status = match why {
        Refusal::NoSuchGroup(_) => StatusCode::NOT_FOUND,
        Refusal::NotAdministrator { .. } => StatusCode::FORBIDDEN,
        _ => StatusCode::CONFLICT,
    };
    error(status, why.to_string())
}

/// Most members a group may be created with.
const MEMBERS_MAX: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
    members: Vec<u16>,
    /// Who may read, write and administer it: every role to the creator if left out (to
    /// anyone on a plain-HTTP API), as for channels.
    access: Option<access::AccessJson>,
}

/// `POST .../members`: the body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The node to add.
    pub id: u16,
    /// The node's peer address, if the cluster does not know it yet.
    pub addr: Option<String>,
}

#[derive(Deserialize, Default)]
struct StaleQuery {
    stale: Option<String>,
}

/// A group as the API shows it.
pub fn group_json(g: &GroupInfo, hosted_here: bool) -> serde_json::Value {
    let mut v = json!({
        "name": g.name, "id": g.id, "genesis_members": g.genesis, "hosts": g.hosts,
        "created_gsn": g.created_gsn, "hosted_here": hosted_here,
        "kind": g.kind,
    });
    if let Some(access) = &g.access {
        v["access"] = access::access_json(access);
    }
    v
}

/// Proposes `cmd` in the default group within the request timeout.
pub async fn agree(api: &Api, cmd: AdminCommand) -> Result<(u64, AdminOutput), Response> {
    match tokio::time::timeout(api.timeout, api.node.admin(cmd)).await {
        Err(_) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "timed out waiting for agreement (is a quorum reachable?)",
        )),
        Ok(Err(e)) => Err(request_error(&e)),
        Ok(Ok((gsn, out))) => Ok((gsn.0, out)),
    }
}

async fn hosted(api: &Api) -> Vec<GroupId> {
    api.node.status().await.iter().map(|s| s.group).collect()
}

/// `GET /v1/groups`: every key-value group, and the channels and notaries the caller may read
/// (all of them for a cluster administrator).
async fn list(State(api): State<Arc<Api>>, who: Who, Query(q): Query<StaleQuery>) -> Response {
    let visible = access::visible_to(&api, &who, |_| true);
    if q.stale.is_some() {
        return list_at(&api, 0, visible, "groups").await;
    }
    list_kind(&api, visible, "groups").await
}

/// The groups `wanted` picks, as `{ what: [...] }`, after a barrier (everything acknowledged
/// before the request is listed).
pub async fn list_kind(api: &Api, wanted: impl Fn(&GroupInfo) -> bool, what: &str) -> Response {
    match barrier(api).await {
        Ok(gsn) => list_at(api, gsn, wanted, what).await,
        Err(r) => r,
    }
}

async fn list_at(api: &Api, gsn: u64, wanted: impl Fn(&GroupInfo) -> bool, what: &str) -> Response {
    let here = hosted(api).await;
    let catalog = api.node.catalog();
    let groups: Vec<_> = catalog
        .groups()
        .filter(|g| wanted(g))
        .map(|g| group_json(g, here.contains(&g.id)))
        .collect();
    (gsn_header(gsn), axum::Json(json!({ what: groups }))).into_response()
}

/// `GET /v1/groups/{group}`: one group (a channel or notary only to those who may read it).
async fn show(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(name): Path<String>,
    Query(q): Query<StaleQuery>,
) -> Response {
    let gsn = if q.stale.is_some() {
        0
    } else {
        match barrier(&api).await {
            Ok(gsn) => gsn,
            Err(r) => return r,
        }
    };
    let catalog = api.node.catalog();
    let Some(g) = catalog.group(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no group named {name:?}"));
    };
    if !access::visible_to(&api, &who, |_| true)(g) {
        // The answer for a group that does not exist: a caller with no role learns nothing.
        return error(StatusCode::NOT_FOUND, format!("no group named {name:?}"));
    }
    let status = api.node.status().await;
    let mut body = group_json(g, false);
    if let Some(s) = status.iter().find(|s| s.group == g.id) {
        body["hosted_here"] = json!(true);
        body["members"] = json!(s.members);
        body["applied_gsn"] = json!(s.applied.0);
        body["has_quorum"] = json!(s.has_quorum);
        body["items"] = json!(s.items);
    }
    (gsn_header(gsn), axum::Json(body)).into_response()
}

async fn create(
    State(api): State<Arc<Api>>,
    who: Who,
    body: Result<axum::Json<CreateGroup>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let axum::Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    if let Some(bad) = bad_new_group(&req.name, &req.members) {
        return bad;
    }
    let access = access::access_or_default(&who, req.access);
    if let Err(why) = access.check() {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let cmd = AdminCommand::CreateGroup {
        name: req.name,
        members: req.members.into_iter().map(ReplicaId).collect(),
        kind: api.default_kind.clone(),
        params: Default::default(),
        access: Some(access),
    };
    create_answer(&api, &who, cmd).await
}

/// Creates a group of `kind` with an access list (the one named, or every role to `who`):
/// checks the name, members and list (400), then agrees on it as [`create_answer`] does. What
/// every kind with an access list shares; `params` are the kind's own, checked by its route.
pub async fn create_with_access(
    api: &Api,
    who: &Who,
    name: String,
    members: Vec<u16>,
    kind: &access::Kind,
    params: bytes::Bytes,
    named: Option<access::AccessJson>,
) -> Response {
    if let Some(bad) = bad_new_group(&name, &members) {
        return bad;
    }
    let access = access::access_or_default(who, named);
    if let Err(why) = access.check() {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let cmd = AdminCommand::CreateGroup {
        name,
        members: members.into_iter().map(ReplicaId).collect(),
        kind: kind.name.into(),
        params,
        access: Some(access),
    };
    create_answer(api, who, cmd).await
}

/// The 400 answer for a new group's (any kind's) name or members, if they are not acceptable.
pub fn bad_new_group(name: &str, members: &[u16]) -> Option<Response> {
    if members.is_empty() || members.len() > MEMBERS_MAX {
        return Some(error(
            StatusCode::BAD_REQUEST,
            format!("a group has 1 to {MEMBERS_MAX} members"),
        ));
    }
    synod_node::catalog::check_group_name(name)
        .err()
        .map(|e| error(StatusCode::BAD_REQUEST, e))
}

/// Agrees on a group's creation (any kind), which only the cluster's administrators may ask
/// for, and answers: 201 with the group, 200 if it existed with these settings already, 409
/// if it exists otherwise.
pub async fn create_answer(api: &Api, who: &Who, cmd: AdminCommand) -> Response {
    if let Some(refused) = access::not_cluster_admin(api, who) {
        return refused;
    }
    match agree(api, cmd).await {
        Err(r) => r,
        Ok((gsn, AdminOutput::Group(g))) => {
            let status = if g.created_gsn == gsn {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, gsn_header(gsn), axum::Json(group_json(&g, false))).into_response()
        }
        Ok((_, AdminOutput::Refused(why))) => refused(&why),
        Ok((_, other)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected outcome {other:?}"),
        ),
    }
}

/// `DELETE /v1/groups/{group}`: any group; a channel or notary only by its administrators.
async fn remove(State(api): State<Arc<Api>>, who: Who, Path(name): Path<String>) -> Response {
    if name == DEFAULT_GROUP_NAME {
        return error(
            StatusCode::BAD_REQUEST,
            "the default group cannot be removed",
        );
    }
    if let Err(r) = barrier(&api).await {
        return r;
    }
    if let Some(r) = not_administrator(&api, &who, &name) {
        return r;
    }
    remove_group(&api, who, name).await
}

/// The 403 answer if `who` may not administer group `name`: a group with an access list by its
/// administrators, a group open to everyone and the default group (whose members hold the
/// catalog, whatever its key-value access list says) as part of the cluster.
fn not_administrator(api: &Api, who: &Who, name: &str) -> Option<Response> {
    if name == DEFAULT_GROUP_NAME {
        return access::not_cluster_admin(api, who);
    }
    let catalog = api.node.catalog();
    match catalog.group(name).and_then(|g| g.access.as_ref()) {
        Some(access) if !access::holds_any(who, access) => Some(error(
            StatusCode::NOT_FOUND,
            format!("no group named {name:?}"),
        )),
        Some(access) => access::refusal(&who.0, Some(access), name, Role::Admin),
        None => access::not_cluster_admin(api, who),
    }
}

/// The id of group `name` if `who` administers it, after a barrier (so the check sees every
/// change acknowledged before the request); the change then goes to that id, not to whatever
/// the name means later.
async fn admin_of(api: &Api, who: &Who, name: &str) -> Result<GroupId, Response> {
    barrier(api).await?;
    let group = group_id(api, name).await?;
    match not_administrator(api, who, name) {
        Some(refused) => Err(refused),
        None => Ok(group),
    }
}

/// Agrees on removing group `name`, asked by `who` (checked again when applied).
pub async fn remove_group(api: &Api, who: Who, name: String) -> Response {
    match agree(api, AdminCommand::RemoveGroup { name, by: who.0 }).await {
        Err(r) => r,
        Ok((gsn, AdminOutput::Removed(g))) => {
            (gsn_header(gsn), axum::Json(group_json(&g, false))).into_response()
        }
        Ok((_, AdminOutput::Refused(why))) => refused(&why),
        Ok((_, other)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected outcome {other:?}"),
        ),
    }
}

/// Proposes a configuration change in group `group` (named `name`), hosted here.
async fn reconfigure(api: &Api, group: GroupId, name: &str, change: ConfigChange) -> Response {
    match tokio::time::timeout(api.timeout, api.node.change_config(group, change)).await {
        Err(_) => timed_out(),
        // Refused when proposed (already a member, the last member) or when applied: a
        // conflict with the group's configuration (409), not a reason to retry.
        Ok(Err(e)) => request_error(&e),
        Ok(Ok(from)) => (
            gsn_header(from.0),
            axum::Json(json!({ "group": name, "effective_gsn": from.0 })),
        )
            .into_response(),
    }
}

/// `POST /v1/groups/{group}/members` (and a kind's own members route): adds a voting member.
pub async fn add_member(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(name): Path<String>,
    body: Result<axum::Json<AddMember>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let axum::Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    let group = match admin_of(&api, &who, &name).await {
        Ok(group) => group,
        Err(r) => return r,
    };
    if let Some(addr) = req.addr {
        // Where a node listens is the cluster's business: a wrong address cuts it off.
        if let Some(r) = access::not_cluster_admin(&api, &who) {
            return r;
        }
        if let Err(e) = addr.parse::<synod_node::PeerAddr>() {
            return error(StatusCode::BAD_REQUEST, format!("addr: {e}"));
        }
        let cmd = AdminCommand::RegisterNode {
            node: ReplicaId(req.id),
            addr,
        };
        match agree(&api, cmd).await {
            Err(r) => return r,
            Ok((_, AdminOutput::Refused(why))) => return refused(&why),
            Ok(_) => {}
        }
    }
    if name != DEFAULT_GROUP_NAME {
        let cmd = AdminCommand::HostGroup {
            name: name.clone(),
            node: ReplicaId(req.id),
            by: who.0.clone(),
        };
        match agree(&api, cmd).await {
            Err(r) => return r,
            Ok((_, AdminOutput::Refused(why))) => return refused(&why),
            Ok(_) => {}
        }
    }
    reconfigure(
        &api,
        group,
        &name,
        ConfigChange::AddMember(ReplicaId(req.id)),
    )
    .await
}

/// `DELETE /v1/groups/{group}/members/{id}` (and a kind's own): removes a voting member.
pub async fn remove_member(
    State(api): State<Arc<Api>>,
    who: Who,
    Path((name, id)): Path<(String, u16)>,
) -> Response {
    let group = match admin_of(&api, &who, &name).await {
        Ok(group) => group,
        Err(r) => return r,
    };
    let answer = reconfigure(
        &api,
        group,
        &name,
        ConfigChange::RemoveMember(ReplicaId(id)),
    )
    .await;
    if answer.status().is_success() && name != DEFAULT_GROUP_NAME {
        // No longer a member, no longer a host (the catalog lists who hosts what).
        let cmd = AdminCommand::UnhostGroup {
            name: name.clone(),
            node: ReplicaId(id),
            by: who.0.clone(),
        };
        match agree(&api, cmd).await {
            Err(r) => return r,
            Ok((_, AdminOutput::Refused(why))) => return refused(&why),
            Ok(_) => {}
        }
    }
    answer
}

/// `PUT /v1/channels/{channel}/access` and `PUT /v1/notaries/{notary}/access`: replaces the
/// access list (administrators only, checked again where the change is agreed). Answers with
/// the group as the catalog now holds it.
pub async fn set_access(
    api: Arc<Api>,
    who: Who,
    name: String,
    kind: &access::Kind,
    body: Result<axum::Json<access::AccessJson>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let axum::Json(named) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    if let Err(r) = access::authorize(&api, &who, &name, kind, Role::Admin).await {
        return r;
    }
    agree_access(&api, who, name, named).await
}

/// `PUT /v1/groups/{group}/access`: any group's access list, key-value groups' included. A
/// group with a list is changed by its administrators; a group open to every identity (and
/// the default group, whose list covers only its keys) by the cluster's administrators.
async fn put_group_access(
    State(api): State<Arc<Api>>,
    who: Who,
    Path(name): Path<String>,
    body: Result<axum::Json<access::AccessJson>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let axum::Json(named) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    if let Err(r) = barrier(&api).await {
        return r;
    }
    if let Err(r) = group_id(&api, &name).await {
        return r;
    }
    let catalog = api.node.catalog();
    let open = catalog.group(&name).is_some_and(|g| g.access.is_none());
    let refused = if open {
        access::not_cluster_admin(&api, &who)
    } else {
        not_administrator(&api, &who, &name)
    };
    if let Some(r) = refused {
        return r;
    }
    agree_access(&api, who, name, named).await
}

/// Agrees on `named` as group `name`'s access list (checked again where it is agreed) and
/// answers with the group as the catalog then holds it.
async fn agree_access(api: &Api, who: Who, name: String, named: access::AccessJson) -> Response {
    // A list without administrators keeps the current ones (not the caller alone).
    let admins_left_out = named.admins.is_none();
    let current = api
        .node
        .catalog()
        .group(&name)
        .and_then(|g| g.access.clone());
    let mut access = access::access_or_default(&who, Some(named));
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
    match agree(api, cmd).await {
        Err(r) => r,
        Ok((gsn, AdminOutput::Group(g))) => {
            (gsn_header(gsn), axum::Json(group_json(&g, false))).into_response()
        }
        // Revoked, or removed, between the check above and agreement.
        Ok((_, AdminOutput::Refused(why))) => refused(&why),
        Ok((_, other)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected outcome {other:?}"),
        ),
    }
}
