//! Which tenant a request is for: `/api/v1/auth/...` is the default tenant,
//! `/t/{tenant}/api/v1/auth/...` a named one. Resolved once per request by a middleware.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::{OriginalUri, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::domain::TenantId;
use crate::flows::{self, Flows};

/// How long a tenant seen to exist is believed without asking the database again: a tenant
/// deleted through another replica stops being served here within this time.
const CONFIRM_AFTER: Duration = Duration::from_secs(5);

/// Tenants seen to exist, and when. A miss asks the database (a tenant created by `hookauth
/// tenant create` is found at once); a tenant deleted through this server is forgotten at once,
/// one deleted through another replica within [`CONFIRM_AFTER`].
#[derive(Default)]
pub struct TenantCache {
    known: RwLock<HashMap<TenantId, Instant>>,
}

impl TenantCache {
    pub fn forget(&self, tenant: &TenantId) {
        self.known
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }

    async fn exists(&self, flows: &Flows, tenant: &TenantId) -> Result<bool, ApiError> {
        let seen = self
            .known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .copied();
        if seen.is_some_and(|at| at.elapsed() < CONFIRM_AFTER) {
            return Ok(true);
        }
        let exists = flows::tenant_exists(flows, tenant).await?;
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        if exists {
            known.insert(tenant.clone(), Instant::now());
        } else {
            known.remove(tenant);
        }
        Ok(exists)
    }
}

pub async fn resolve_tenant(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.0.path().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let tenant = match path.strip_prefix("/t/") {
        Some(rest) => {
            let slug = rest.split('/').next().unwrap_or_default();
            match TenantId::parse(slug) {
                Ok(t) => t,
                Err(_) => return ApiError::UnknownTenant.into_response(),
            }
        }
        None => TenantId::default_tenant(),
    };
    match app.tenants.exists(&app.flows, &tenant).await {
        Ok(true) => {
            req.extensions_mut().insert(tenant);
            next.run(req).await
        }
        Ok(false) => ApiError::UnknownTenant.into_response(),
        Err(e) => e.into_response(),
    }
}
