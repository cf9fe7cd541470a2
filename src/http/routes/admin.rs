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
