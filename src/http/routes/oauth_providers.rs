//! A tenant's OAuth providers through the management API (`{T}` = `/t/{tenant}/api/v1`, the
//! default tenant also at `/api/v1`): `GET {T}/oauth-providers`, `PUT|DELETE
//! {T}/oauth-providers/{name}`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::error::ApiError;
use super::super::extract::OauthAdmin;

fn name(params: &HashMap<String, String>) -> String {
    params.get("name").cloned().unwrap_or_default()
}

pub async fn list(State(app): State<AppState>, admin: OauthAdmin) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(
        app.hooks_admin()?.oauth_providers(&admin.tenant).await?
    )))
}

pub async fn put(
    State(app): State<AppState>,
    admin: OauthAdmin,
    Path(params): Path<HashMap<String, String>>,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let body = body.0.ok_or_else(|| ApiError::Unprocessable {
        code: "invalid_provider",
        detail: "expected a JSON object with the keys of [oauth.providers.NAME]".into(),
    })?;
    let created = app
        .hooks_admin()?
        .put_oauth_provider(&admin.actor, &admin.tenant, &name(&params), body)
        .await?;
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    })
}

pub async fn remove(
    State(app): State<AppState>,
    admin: OauthAdmin,
    Path(params): Path<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    app.hooks_admin()?
        .delete_oauth_provider(&admin.actor, &admin.tenant, &name(&params))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
