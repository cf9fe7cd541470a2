//! `GET /healthz` (the process is alive) and `GET /readyz` (it can do its work: the database
//! answers, migrations are applied, hooks are loaded). At the root, for every tenant.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::super::AppState;
use super::super::openapi::schemas as s;
use crate::domain::TenantId;
use crate::flows;

/// A database answer is reused this long, so a flood of probes cannot take the pool's
/// connections from requests.
const DATABASE_CHECK_TTL: Duration = Duration::from_secs(1);
/// A database slower than this to answer a trivial query counts as unreachable.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` reports; set as start-up progresses.
#[derive(Default)]
pub struct Readiness {
    migrated: AtomicBool,
    hooks_loaded: AtomicBool,
    database: Mutex<Option<(Instant, bool)>>,
}

impl Readiness {
    pub fn set_migrated(&self) {
        self.migrated.store(true, Ordering::Release);
    }

    pub fn set_hooks_loaded(&self) {
        self.hooks_loaded.store(true, Ordering::Release);
    }

    pub fn hooks_loaded(&self) -> bool {
        self.hooks_loaded.load(Ordering::Acquire)
    }

    async fn database_reachable(&self, app: &AppState) -> bool {
        let mut cached = self.database.lock().await;
        if let Some((at, ok)) = *cached
            && at.elapsed() < DATABASE_CHECK_TTL
        {
            return ok;
        }
        let default = TenantId::default_tenant();
        let probe = flows::tenant_exists(&app.flows, &default);
        let ok = matches!(
            tokio::time::timeout(DATABASE_CHECK_TIMEOUT, probe).await,
            Ok(Ok(_))
        );
        *cached = Some((Instant::now(), ok));
        ok
    }
}

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "health",
    description = "The process is alive.",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain; charset=utf-8", example = "ok"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "health",
    description = "The server can do its work: the database answers, migrations are applied, hooks are loaded.",
    responses(
        (status = 200, description = "Ready", body = s::Readiness),
        (status = 503, description = "Not ready: `not_ready` names the failing checks", body = s::Readiness),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Response {
    let readiness: &Arc<Readiness> = &app.readiness;
    let checks = [
        ("database", readiness.database_reachable(&app).await),
        ("migrations", readiness.migrated.load(Ordering::Acquire)),
        ("hooks", readiness.hooks_loaded()),
    ];
    let not_ready: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| *name)
        .collect();
    let body = json!({
        "ready": not_ready.is_empty(),
        "not_ready": not_ready,
        "checks": checks.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
    });
    if not_ready.is_empty() {
        (StatusCode::OK, Json(body)).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}
