//! Email verification and password reset. The tokens reach users only through hooks
//! (`send_verification_email`, `send_password_reset_email`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::client::Client;
use super::super::error::ApiError;
use super::super::extract::Tenant;
use super::super::openapi::{responses as r, schemas as s};
use super::super::rate_limit::Bucket;
use crate::flows;

#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email/request",
    operation_id = "request_email_verification",
    tag = "email",
    description = "Sends the caller a verification email (through the tenant's hooks) if \
        their address is not verified yet. No body.",
    responses(
        (status = 202, description = "Accepted", body = s::Message),
        (status = 401, response = r::Unauthorized),
        (status = 429, response = r::RateLimited),
    ),
    security(("bearer" = []))
)]
pub async fn request_verification(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let session = app.session(&tenant, &client).await?;
    app.limit(Bucket::VerifyEmail, &client).await?;
    flows::request_email_verification(&app.flows, &session, &client.context).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "detail": "If eligible, a verification email has been sent." })),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email/confirm",
    operation_id = "confirm_email_verification",
    tag = "email",
    request_body(content = s::TokenRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Verified", body = s::Message),
        (status = 401, response = r::Unauthorized),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
    )
)]
pub async fn confirm_verification(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut fields = body.fields(true);
    let token = fields.string("token");
    let token = fields.complete(token)?;
    app.limit(Bucket::VerifyEmail, &client).await?;
    flows::confirm_email(&app.flows, &tenant, &token, &client.context).await?;
    Ok(Json(json!({ "detail": "Email verified." })))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset/request",
    operation_id = "request_password_reset",
    tag = "email",
    description = "Sends a reset link (through the tenant's hooks) if the account exists; the \
        answer is the same either way.",
    request_body(content = s::EmailRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted", body = s::Message),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
    )
)]
pub async fn request_reset(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut fields = body.fields(true);
    let email = fields.email("email");
    let email = fields.complete(email)?;
    app.limit(Bucket::PasswordReset, &client).await?;
    flows::request_password_reset(&app.flows, &tenant, &email, &client.context).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "detail": "If the email exists, a reset link has been sent." })),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset/confirm",
    operation_id = "confirm_password_reset",
    tag = "email",
    request_body(content = s::ResetConfirmRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The password is reset", body = s::Message),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::NotReady),
    )
)]
pub async fn confirm_reset(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut fields = body.fields(true);
    let token = fields.string("token");
    let password = fields.password("new_password");
    let (token, password) = fields.complete((token, password))?;
    app.limit(Bucket::PasswordReset, &client).await?;
    flows::confirm_password_reset(&app.flows, &tenant, &token, password, &client.context).await?;
    Ok(Json(json!({ "detail": "Password has been reset." })))
}
