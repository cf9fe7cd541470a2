//! A tenant's OAuth providers through the management API (`{T}` = `/t/{tenant}/api/v1`, the
//! default tenant also at `/api/v1`): `GET {T}/oauth-providers`, `PUT|DELETE
//! {T}/oauth-providers/{name}`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::error::ApiError;
use super::super::extract::{OauthAdmin, PathParams};
use super::super::openapi::{responses as r, schemas as s};

#[utoipa::path(
    get,
    path = "/api/v1/oauth-providers",
    operation_id = "list_oauth_providers",
    tag = "oauth-providers",
    description = "The tenant's OAuth providers, the server file's first, without secrets. The \
        operator token, or a token of a user of the tenant who is a superuser or holds \
        `oauth:manage`.",
    responses(
        (status = 200, description = "The providers", body = Vec<s::OauthProviderView>),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<AppState>, admin: OauthAdmin) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(
        app.hooks_admin()?.oauth_providers(&admin.tenant).await?
    )))
}

#[utoipa::path(
    put,
    path = "/api/v1/oauth-providers/{name}",
    operation_id = "put_oauth_provider",
    tag = "oauth-providers",
    description = "Creates or replaces an API provider (one of the server's file is refused, 422 \
        `provider_in_config`).",
    params(("name" = String, Path, description = "The provider's name")),
    request_body(content = s::OauthProviderPut, content_type = "application/json"),
    responses(
        (status = 201, description = "Created"),
        (status = 204, description = "Replaced"),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn put(
    State(app): State<AppState>,
    admin: OauthAdmin,
    params: PathParams,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let body = body.0.ok_or_else(|| ApiError::Unprocessable {
        code: "invalid_provider",
        detail: "expected a JSON object with the keys of [oauth.providers.NAME]".into(),
    })?;
    let created = app
        .hooks_admin()?
        .put_oauth_provider(&admin.actor, &admin.tenant, params.get("name"), body)
        .await?;
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    })
}

#[utoipa::path(
    delete,
    path = "/api/v1/oauth-providers/{name}",
    operation_id = "delete_oauth_provider",
    tag = "oauth-providers",
    params(("name" = String, Path, description = "The provider's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn remove(
    State(app): State<AppState>,
    admin: OauthAdmin,
    params: PathParams,
) -> Result<StatusCode, ApiError> {
    app.hooks_admin()?
        .delete_oauth_provider(&admin.actor, &admin.tenant, params.get("name"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
