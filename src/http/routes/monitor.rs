//! `GET {T}/monitor`: a tenant's outbox lag and its hooks' recent runs (the admin console's
//! live view), for the operator or the tenant's hook admins.

use axum::Json;
use axum::extract::State;

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::HookAdmin;
use crate::flows::{self, TenantMonitor};

pub async fn show(
    State(app): State<AppState>,
    admin: HookAdmin,
) -> Result<Json<TenantMonitor>, ApiError> {
    Ok(Json(
        flows::tenant_monitor(&app.flows, &admin.tenant).await?,
    ))
}
