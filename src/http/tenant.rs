//! Which tenant a request is for: `/api/v1/auth/...` is the default tenant,
//! `/t/{tenant}/api/v1/auth/...` a named one. Resolved once per request by a middleware.

use std::collections::HashSet;
use std::sync::RwLock;

use axum::extract::{OriginalUri, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::domain::TenantId;
use crate::store::Store;

/// Tenants seen to exist. A miss asks the database (a tenant created by `hookauth tenant
/// create` is found at once); a tenant deleted through this server is forgotten at once (one
/// deleted through another replica is served until restart, with no data left to serve).
#[derive(Default)]
pub struct TenantCache {
    known: RwLock<HashSet<TenantId>>,
}

impl TenantCache {
    pub fn forget(&self, tenant: &TenantId) {
        self.known
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }

    async fn exists(&self, store: &Store, tenant: &TenantId) -> Result<bool, ApiError> {
        if self
            .known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(tenant)
        {
            return Ok(true);
        }
        let exists = store.tenant_exists(tenant).await?;
        if exists {
            self.known
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(tenant.clone());
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
    match app.tenants.exists(&app.flows.store, &tenant).await {
        Ok(true) => {
            req.extensions_mut().insert(tenant);
            next.run(req).await
        }
        Ok(false) => ApiError::UnknownTenant.into_response(),
        Err(e) => e.into_response(),
    }
}
