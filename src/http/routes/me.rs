//! The caller's own account: profile, deletion, password change.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::client::Client;
use super::super::error::{ApiError, FieldProblem};
use super::super::extract::Tenant;
use super::super::openapi::{responses as r, schemas as s};
use super::super::rate_limit::Bucket;
use crate::domain::UserSnapshot;
use crate::flows::{self, FlowError, ProfileUpdateError};

#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    operation_id = "get_me",
    tag = "me",
    responses(
        (status = 200, description = "The caller", body = s::UserOut),
        (status = 401, response = r::Unauthorized),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
) -> Result<Json<UserSnapshot>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    Ok(Json(session.user.snapshot()))
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/me/verified",
    operation_id = "get_me_verified",
    tag = "me",
    description = "The caller, if their address is verified (else 403).",
    responses(
        (status = 200, description = "The caller", body = s::UserOut),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
    ),
    security(("bearer" = []))
)]
pub async fn show_verified(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
) -> Result<Json<UserSnapshot>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    if !session.user.is_verified {
        return Err(FlowError::Forbidden.into());
    }
    Ok(Json(session.user.snapshot()))
}

#[utoipa::path(
    patch,
    path = "/api/v1/auth/me",
    operation_id = "update_me",
    tag = "me",
    description = "Changes configured profile fields. Nothing left after dropping protected \
        fields is 400; a key that is not a profile field is 422 `unknown_fields`.",
    request_body(content = s::UpdateMeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated user", body = s::UserOut),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Json<UserSnapshot>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    let mut fields = body.fields(true);
    fields.finish()?;
    match flows::update_profile(&app.flows, &session, fields.into_map()).await {
        Ok(user) => Ok(Json(user.snapshot())),
        Err(ProfileUpdateError::Flow(e)) => Err(e.into()),
        // The merged user is re-validated as a whole, so `loc` names the field alone.
        Err(ProfileUpdateError::Invalid(errors)) => Err(ApiError::Validation(
            errors
                .into_iter()
                .map(|e| FieldProblem {
                    kind: e.expected.error_type(),
                    loc: vec![json!(e.field)],
                    msg: e.expected.error_message().into(),
                    input: e.input,
                })
                .collect(),
        )),
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/auth/me",
    operation_id = "delete_me",
    tag = "me",
    description = "Deletes the caller's account: needs the current password, or a recent sign-in.",
    request_body(content = Option<s::DeleteMeRequest>, content_type = "application/json"),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
    ),
    security(("bearer" = []))
)]
pub async fn delete_account(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let session = app.session(&tenant, &client).await?;
    let mut fields = body.fields(false);
    let current = fields.optional_password("current_password");
    fields.finish()?;
    app.limit(Bucket::Reauth, &client).await?;
    flows::delete_account(&app.flows, &session, current).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/change-password",
    operation_id = "change_password",
    tag = "me",
    description = "Sets a new password and ends every session of the user.",
    request_body(content = s::ChangePasswordRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed", body = s::Message),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn change_password(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    let mut fields = body.fields(true);
    let new = fields.password("new_password");
    let current = fields.optional_password("current_password");
    let new = fields.complete(new)?;
    app.limit(Bucket::Reauth, &client).await?;
    flows::change_password(&app.flows, &session, current, new, &client.context).await?;
    Ok(Json(json!({ "detail": "Password changed successfully." })))
}
