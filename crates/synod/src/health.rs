//! The probes' listener: plain HTTP, no client certificate, two paths and nothing else.
//!
//! `GET /livez` answers 200 while the process answers at all (a liveness probe restarts a
//! process that does not). `GET /readyz` answers 200 only when this node is caught up and
//! serving, 503 with the reasons otherwise (a readiness probe keeps client traffic away, and a
//! rolling upgrade waits for it before stopping the next node). The API port needs a client
//! certificate from the cluster CA, which a kubelet does not have; these two answers reveal
//! nothing but group names in the reasons.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use synod_api::Api;
use synod_node::GroupStatus;

/// The paths the probes use (the Kubernetes manifests and compose file name them; a test
/// checks that they agree).
pub(crate) const LIVE_PATH: &str = "/livez";
pub(crate) const READY_PATH: &str = "/readyz";

/// What readiness is judged on.
pub(crate) struct Health {
    pub(crate) api: Arc<Api>,
    /// Slots a group may be behind the furthest peer and still count as caught up.
    pub(crate) ready_lag: u64,
    /// Set when the node begins to stop: it is no longer ready, so traffic moves away first.
    pub(crate) stopping: AtomicBool,
}

/// The probe routes.
pub(crate) fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route(LIVE_PATH, get(|| async { "ok\n" }))
        .route(READY_PATH, get(ready))
        .with_state(health)
}

async fn ready(State(health): State<Arc<Health>>) -> Response {
    let mut reasons = Vec::new();
    if health.stopping.load(Ordering::Relaxed) {
        reasons.push("the node is stopping".to_string());
    } else {
        reasons = not_ready(&health.api.node.status().await, health.ready_lag);
    }
    if reasons.is_empty() {
        (StatusCode::OK, axum::Json(json!({ "ready": true }))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "ready": false, "reasons": reasons })),
        )
            .into_response()
    }
}

/// Why a node with these groups is not ready (empty: it is). A group must not be quarantined
/// or rejoining, must hear a quorum of its members, and must be within `lag` slots of the
/// furthest peer. A quiet group was all of that when it went quiet.
pub(crate) fn not_ready(groups: &[GroupStatus], lag: u64) -> Vec<String> {
    let name = |g: &GroupStatus| {
        if g.name.is_empty() {
            format!("group {}", g.group.0)
        } else {
            format!("group {:?}", g.name)
        }
    };
    let mut reasons = Vec::new();
    if groups.is_empty() {
        reasons.push("no group is open yet".to_string());
    }
    for g in groups {
        if let Some(e) = &g.corrupt {
            reasons.push(format!("{}: quarantined ({e})", name(g)));
        } else if let Some(r) = &g.rejoining {
            reasons.push(format!("{}: rejoining ({r})", name(g)));
        } else if g.quiet {
            continue;
        } else if !g.has_quorum {
            reasons.push(format!(
                "{}: does not hear a quorum of its members",
                name(g)
            ));
        } else {
            let behind = g.peers_applied.0.saturating_sub(g.applied.0);
            if behind > lag {
                reasons.push(format!(
                    "{}: {behind} slots behind its furthest peer (at most {lag})",
                    name(g)
                ));
            }
        }
    }
    reasons
}

/// Which probe `synod probe` asks.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Probe {
    /// `/livez`: the process answers.
    Live,
    /// `/readyz`: caught up and serving.
    Ready,
}

/// `synod probe`: asks a node's probes' listener (plain HTTP at `addr`, an IP address: no
/// resolver is needed in an empty image) and succeeds only on 200. For health checks that
/// run a command inside the container (compose), where there is no curl.
pub(crate) fn probe(which: Probe, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let path = match which {
        Probe::Live => LIVE_PATH,
        Probe::Ready => READY_PATH,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(3)))
        .build()
        .into();
    let mut answer = agent
        .get(&format!("http://{addr}{path}"))
        .call()
        .map_err(|e| anyhow::anyhow!("{addr}{path}: {e}"))?;
    let status = answer.status();
    let body = answer
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_string()
        .unwrap_or_default();
    print!("{body}");
    if status != 200 {
        anyhow::bail!("{addr}{path}: {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use synod_node::{GroupId, ReplicaId, Slot};

    fn group(applied: u64, peers: u64) -> GroupStatus {
        GroupStatus {
            group: GroupId(0),
            name: "default".into(),
            kind: "kv".into(),
            applied: Slot(applied),
            peers_applied: Slot(peers),
            members: vec![ReplicaId(0), ReplicaId(1), ReplicaId(2)],
            has_quorum: true,
            items: 0,
            content_hash: 0,
            pending: 0,
            corrupt: None,
            rejoining: None,
            quiet: false,
        }
    }

    #[test]
    fn a_caught_up_group_that_hears_a_quorum_is_ready_and_anything_else_says_why_not() {
        assert!(not_ready(&[group(100, 100)], 10).is_empty());
        assert!(not_ready(&[group(100, 110)], 10).is_empty());
        // Ahead of the peers' last heartbeats is fine too.
        assert!(not_ready(&[group(120, 100)], 10).is_empty());
        let behind = not_ready(&[group(100, 111)], 10);
        assert_eq!(
            behind,
            ["group \"default\": 11 slots behind its furthest peer (at most 10)"]
        );
        let mut alone = group(100, 100);
        alone.has_quorum = false;
        assert_eq!(
            not_ready(&[alone.clone()], 10),
            ["group \"default\": does not hear a quorum of its members"]
        );
        alone.quiet = true;
        assert!(not_ready(&[alone], 10).is_empty(), "a quiet group is ready");
        let mut rejoining = group(0, 100);
        rejoining.rejoining = Some("fence at 90".into());
        assert_eq!(
            not_ready(&[rejoining], 1_000),
            ["group \"default\": rejoining (fence at 90)"]
        );
        let mut corrupt = group(0, 0);
        corrupt.corrupt = Some("checksum".into());
        corrupt.quiet = true;
        assert_eq!(
            not_ready(&[group(5, 5), corrupt], 10),
            ["group \"default\": quarantined (checksum)"]
        );
        assert_eq!(not_ready(&[], 10), ["no group is open yet"]);
    }
}
