//! Operator-only tenant management at `/api/v1/tenants`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::error::ApiError;
use super::super::extract::{Operator, PathParams};
use super::super::openapi::{responses as r, schemas as s};
use crate::domain::TenantId;

fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|e| ApiError::Unprocessable {
        code: "invalid_tenant",
        detail: e.to_owned(),
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    operation_id = "create_tenant",
    tag = "tenants",
    description = "Operator only.",
    request_body(content = s::TenantCreate, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = s::TenantInfo),
        (status = 401, response = r::Unauthorized),
        (status = 408, response = r::RequestTimeout),
        (status = 409, response = r::Conflict),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    operation_id = "list_tenants",
    tag = "tenants",
    description = "Operator only.",
    responses(
        (status = 200, description = "Every tenant", body = Vec<s::TenantInfo>),
        (status = 401, response = r::Unauthorized),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<AppState>, _: Operator) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(app.hooks_admin()?.list_tenants().await?)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{id}",
    operation_id = "delete_tenant",
    tag = "tenants",
    description = "Operator only. Deletes the tenant and everything it holds; the default tenant \
        cannot be deleted (422 `default_tenant`).",
    params(("id" = String, Path, description = "The tenant's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn remove(
    State(app): State<AppState>,
    _: Operator,
    params: PathParams,
) -> Result<StatusCode, ApiError> {
    let tenant = tenant_id(params.get("id"))?;
    app.hooks_admin()?.delete_tenant(&tenant).await?;
    app.tenants.forget(&tenant);
    Ok(StatusCode::NO_CONTENT)
}
