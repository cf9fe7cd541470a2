//! Superuser administration of roles and permissions. Authorisation (401, then 403) is checked
//! before the body is validated.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::client::Client;
use super::super::error::ApiError;
use super::super::extract::Tenant;
use super::super::openapi::{responses as r, schemas as s};
use crate::domain::{RoleName, TenantId, UserId};
use crate::flows::{self, Session};

async fn superuser(
    app: &AppState,
    tenant: &TenantId,
    client: &Client,
) -> Result<Session, ApiError> {
    let session = app.session(tenant, client).await?;
    flows::ensure_superuser(&session)?;
    Ok(session)
}

fn role_name(raw: &str) -> Result<RoleName, String> {
    RoleName::parse(raw).map_err(|e| format!("Value error, {e}"))
}

fn user_id(raw: &str) -> Result<UserId, String> {
    UserId::parse(raw).ok_or_else(|| "Input should be a valid UUID".to_owned())
}

/// `{"user_id": <uuid>, "role": str}`, every problem reported.
fn user_and_role(body: JsonBody) -> Result<(UserId, RoleName), ApiError> {
    let mut fields = body.fields(true);
    let user = fields.parsed("user_id", "uuid_parsing", user_id);
    let role = fields.parsed("role", "value_error", role_name);
    fields.complete((user, role))
}

/// `{"role": str, "permission": str}`, every problem reported.
fn role_and_permission(body: JsonBody) -> Result<(RoleName, RoleName), ApiError> {
    let mut fields = body.fields(true);
    let role = fields.parsed("role", "value_error", role_name);
    let permission = fields.parsed("permission", "value_error", role_name);
    fields.complete((role, permission))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/admin/assign-role",
    operation_id = "assign_role",
    tag = "admin",
    request_body(content = s::UserRoleRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Assigned (the role is created if new)", body = s::Message),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn assign_role(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let session = superuser(&app, &tenant, &client).await?;
    let (user, role) = user_and_role(body)?;
    flows::assign_role(&app.flows, &session, &user, &role).await?;
    Ok(Json(
        json!({ "detail": format!("Role '{role}' assigned to user {user}.") }),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/admin/remove-role",
    operation_id = "remove_role",
    tag = "admin",
    request_body(content = s::UserRoleRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Removed", body = s::Message),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn remove_role(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let session = superuser(&app, &tenant, &client).await?;
    let (user, role) = user_and_role(body)?;
    flows::remove_role(&app.flows, &session, &user, &role).await?;
    Ok(Json(
        json!({ "detail": format!("Role '{role}' removed from user {user}.") }),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/admin/assign-permission",
    operation_id = "assign_permission",
    tag = "admin",
    request_body(content = s::RolePermissionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Assigned", body = s::Message),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn assign_permission(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let session = superuser(&app, &tenant, &client).await?;
    let (role, permission) = role_and_permission(body)?;
    flows::assign_permission(&app.flows, &session, &role, &permission).await?;
    Ok(Json(json!({
        "detail": format!("Permission '{permission}' assigned to role '{role}'.")
    })))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/admin/remove-permission",
    operation_id = "remove_permission",
    tag = "admin",
    request_body(content = s::RolePermissionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Removed", body = s::Message),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn remove_permission(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let session = superuser(&app, &tenant, &client).await?;
    let (role, permission) = role_and_permission(body)?;
    flows::remove_permission(&app.flows, &session, &role, &permission).await?;
    Ok(Json(json!({
        "detail": format!("Permission '{permission}' removed from role '{role}'.")
    })))
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/admin/role-permissions/{role_name}",
    operation_id = "role_permissions",
    tag = "admin",
    params(("role_name" = String, Path, description = "A role name; one that cannot exist has none")),
    responses(
        (status = 200, description = "The role's permissions (empty for an unknown role)", body = Vec<String>),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
    ),
    security(("bearer" = []))
)]
pub async fn role_permissions(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    params: Result<Path<std::collections::HashMap<String, String>>, PathRejection>,
    client: Client,
) -> Result<Json<Vec<String>>, ApiError> {
    let session = superuser(&app, &tenant, &client).await?;
    let params = params.map(|Path(p)| p).unwrap_or_default();
    let raw = params.get("role_name").map(String::as_str).unwrap_or("");
    // A name that cannot exist has no permissions.
    let Ok(role) = RoleName::parse(raw) else {
        return Ok(Json(Vec::new()));
    };
    Ok(Json(
        flows::role_permissions(&app.flows, &session, &role).await?,
    ))
}
