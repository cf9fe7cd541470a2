use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::client::Client;
use super::super::error::ApiError;
use super::super::extract::Tenant;
use super::super::openapi::{responses as r, schemas as s};
use super::super::time::rfc3339;
use crate::flows;

#[utoipa::path(
    get,
    path = "/api/v1/auth/sessions",
    operation_id = "list_sessions",
    tag = "sessions",
    description = "The caller's live sessions, most recently used first.",
    responses(
        (status = 200, description = "The sessions", body = Vec<s::SessionInfo>),
        (status = 401, response = r::Unauthorized),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
) -> Result<Json<Value>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    let sessions = flows::list_sessions(&app.flows, &session).await?;
    Ok(Json(Value::Array(
        sessions
            .into_iter()
            .map(|(s, current)| {
                json!({
                    "family_id": s.family_id,
                    "ip_address": s.ip_address,
                    "user_agent": s.user_agent,
                    "created_at": rfc3339(s.created_at),
                    "last_used_at": rfc3339(s.last_used_at),
                    "expires_at": rfc3339(s.expires_at),
                    "current": current,
                })
            })
            .collect(),
    )))
}

#[utoipa::path(
    delete,
    path = "/api/v1/auth/sessions/{family_id}",
    operation_id = "revoke_session",
    tag = "sessions",
    params(("family_id" = String, Path, description = "The session (refresh-token family)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
    ),
    security(("bearer" = []))
)]
pub async fn revoke(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    params: Result<Path<std::collections::HashMap<String, String>>, PathRejection>,
    client: Client,
) -> Result<StatusCode, ApiError> {
    let session = app.session(&tenant, &client).await?;
    // An id that does not even decode names no session.
    let params = params.map(|Path(p)| p).unwrap_or_default();
    let family_id = params.get("family_id").map(String::as_str).unwrap_or("");
    flows::revoke_session(&app.flows, &session, family_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/sessions/revoke-others",
    operation_id = "revoke_other_sessions",
    tag = "sessions",
    responses(
        (status = 200, description = "The other sessions are ended", body = s::Message),
        (status = 401, response = r::Unauthorized),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_others(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
) -> Result<Json<Value>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    let count = flows::revoke_other_sessions(&app.flows, &session).await?;
    Ok(Json(
        json!({ "detail": format!("Signed out {count} other session(s).") }),
    ))
}
