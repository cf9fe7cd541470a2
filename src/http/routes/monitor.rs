//! `GET {T}/monitor`: a tenant's outbox lag and its hooks' recent runs (the admin console's
//! live view), for the operator or the tenant's hook admins.

use axum::Json;
use axum::extract::State;

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::HookAdmin;
use crate::flows::{self, TenantMonitor};
use crate::http::openapi::responses as r;

#[utoipa::path(
    get,
    path = "/api/v1/monitor",
    operation_id = "monitor",
    tag = "hooks",
    description = "The tenant's live delivery state: its outbox and its hooks' recent \
        invocations. The operator token, or a token of a user of the tenant who is a superuser \
        or holds `hooks:manage`.",
    responses(
        (status = 200, description = "The delivery state", body = TenantMonitor),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(app): State<AppState>,
    admin: HookAdmin,
) -> Result<Json<TenantMonitor>, ApiError> {
    Ok(Json(
        flows::tenant_monitor(&app.flows, &admin.tenant).await?,
    ))
}
