//! Operator-only tenant management at `/api/v1/tenants`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::error::ApiError;
use super::super::extract::Operator;
use crate::domain::TenantId;

fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|e| ApiError::Unprocessable {
        code: "invalid_tenant",
        detail: e.to_owned(),
    })
}

pub async fn create(
    State(app): State<AppState>,
    _: Operator,
    body: JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let raw = body
        .0
        .as_ref()
        .and_then(|b| b.get("id"))
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::Unprocessable {
            code: "invalid_body",
            detail: "expected {\"id\": \"<tenant name>\"}".into(),
        })?;
    let tenant = tenant_id(raw)?;
    let info = app.hooks_admin()?.create_tenant(&tenant).await?;
    Ok((StatusCode::CREATED, Json(json!(info))))
}

pub async fn list(State(app): State<AppState>, _: Operator) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(app.hooks_admin()?.list_tenants().await?)))
}

pub async fn remove(
    State(app): State<AppState>,
    _: Operator,
    Path(params): Path<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let tenant = tenant_id(params.get("id").map(String::as_str).unwrap_or_default())?;
    app.hooks_admin()?.delete_tenant(&tenant).await?;
    app.tenants.forget(&tenant);
    Ok(StatusCode::NO_CONTENT)
}
