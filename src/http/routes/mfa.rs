//! The TOTP second factor (`/mfa...`), as fastapi-fullauth's MFA router.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::client::Client;
use super::super::cookies::SessionCookies;
use super::super::error::ApiError;
use super::super::extract::Tenant;
use super::super::openapi::{responses as r, schemas as s};
use super::super::rate_limit::Bucket;
use crate::flows::{self, MfaEnrolment, MfaStatus};

/// Longest code accepted: a TOTP code or a recovery code with spaces (the model's 64).
const MAX_CODE_CHARS: usize = 64;

#[utoipa::path(
    get,
    path = "/api/v1/auth/mfa",
    operation_id = "mfa_status",
    tag = "mfa",
    description = "Whether the caller's second factor is on, and how many recovery codes remain.",
    responses(
        (status = 200, description = "The factor's state", body = MfaStatus),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
    ),
    security(("bearer" = []))
)]
pub async fn status(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
) -> Result<Json<MfaStatus>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    Ok(Json(flows::mfa_status(&app.flows, &session).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/enroll",
    operation_id = "mfa_enroll",
    tag = "mfa",
    description = "Starts (or restarts) enrolment: a secret and its otpauth:// URI, which do \
        nothing until confirmed. Needs `current_password`, or a session whose credentials were \
        proven within `reauth_max_age_seconds`.",
    request_body(content = Option<s::MfaEnrollRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "The secret to add to an authenticator", body = MfaEnrolment),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 408, response = r::RequestTimeout),
        (status = 409, response = r::Conflict),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
    ),
    security(("bearer" = []))
)]
pub async fn enroll(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Json<MfaEnrolment>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    let mut fields = body.fields(false);
    let current = fields.optional_password("current_password");
    fields.finish()?;
    app.limit(Bucket::Reauth, &client).await?;
    Ok(Json(
        flows::mfa_enroll(&app.flows, &session, current).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/confirm",
    operation_id = "mfa_confirm",
    tag = "mfa",
    description = "Turns the factor on with a first code from the authenticator. Answers ten \
        recovery codes, shown once and stored hashed; fires `after_mfa_enabled`.",
    request_body(content = s::MfaCodeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "On; the recovery codes", body = s::RecoveryCodes),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 408, response = r::RequestTimeout),
        (status = 409, response = r::Conflict),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
    ),
    security(("bearer" = []))
)]
pub async fn confirm(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    let mut fields = body.fields(true);
    let code = fields.bounded_string("code", MAX_CODE_CHARS);
    let code = fields.complete(code)?;
    app.limit(Bucket::Mfa, &client).await?;
    let codes = flows::mfa_confirm(&app.flows, &session, &code, &client.context).await?;
    Ok(Json(json!({ "recovery_codes": codes })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/auth/mfa",
    operation_id = "mfa_disable",
    tag = "mfa",
    description = "Turns the factor off with a current code (or a recovery code); fires \
        `after_mfa_disabled`.",
    request_body(content = s::MfaCodeRequest, content_type = "application/json"),
    responses(
        (status = 204, description = "Off"),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
    ),
    security(("bearer" = []))
)]
pub async fn disable(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let session = app.session(&tenant, &client).await?;
    let mut fields = body.fields(true);
    let code = fields.bounded_string("code", MAX_CODE_CHARS);
    let code = fields.complete(code)?;
    app.limit(Bucket::Mfa, &client).await?;
    flows::mfa_disable(&app.flows, &session, &code, &client.context).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/verify",
    operation_id = "mfa_verify",
    tag = "mfa",
    description = "The second step of a password sign-in: the `mfa_token` that `/login` answered \
        (202) and a code or a recovery code, for the token pair. Every failure is 401.",
    request_body(content = s::MfaVerifyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in", body = s::LoginResponse),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::NotReady),
    )
)]
pub async fn verify(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    cookies: SessionCookies,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let mut fields = body.fields(true);
    let token = fields.string("mfa_token");
    let code = fields.bounded_string("code", MAX_CODE_CHARS);
    let (token, code) = fields.complete((token, code))?;
    app.limit(Bucket::Mfa, &client).await?;
    let (pair, user) =
        flows::mfa_verify(&app.flows, &tenant, &token, &code, &client.context).await?;
    Ok(cookies
        .signed_in(super::account::login_response(pair, &user))
        .into_response())
}
