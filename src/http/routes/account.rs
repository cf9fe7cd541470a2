//! Registration and the session lifecycle: register, login, refresh, logout.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::client::Client;
use super::super::cookies::SessionCookies;
use super::super::error::{ApiError, FieldProblem};
use super::super::extract::Tenant;
use super::super::openapi::{responses as r, schemas as s};
use super::super::rate_limit::Bucket;
use crate::flows::{self, LoginInput, LoginOutcome, LogoutInput, RegisterInput, RegisterOutcome};

#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    operation_id = "register",
    tag = "auth",
    description = "Creates an account. With registration enumeration prevented (the default) the \
        answer is 202 whether or not the address was taken; otherwise 201 with the user, or 409.",
    request_body(content = s::RegisterRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created (enumeration prevention off)", body = s::UserOut),
        (status = 202, description = "Accepted (enumeration prevention on)", body = s::Message),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 409, response = r::Conflict),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::NotReady),
    )
)]
pub async fn register(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let mut fields = body.fields(true);
    let email = fields.email("email");
    let password = fields.password("password");
    let profile = match app.flows.settings.profile_schema.extract(fields.map()) {
        Ok(profile) => profile,
        Err(errors) => {
            for e in errors {
                fields.push(FieldProblem {
                    kind: e.expected.error_type(),
                    loc: vec![json!("body"), json!(e.field)],
                    msg: e.expected.error_message().into(),
                    input: e.input,
                });
            }
            Default::default()
        }
    };
    let (email, password) = fields.complete((email, password))?;
    app.limit(Bucket::Register, &client).await?;
    let input = RegisterInput {
        email,
        password,
        profile,
    };
    match flows::register(&app.flows, &tenant, input, &client.context).await? {
        RegisterOutcome::Created(user) => {
            Ok((StatusCode::CREATED, Json(user.snapshot())).into_response())
        }
        RegisterOutcome::Accepted => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "detail": "If this email isn't already registered, the account has been created."
            })),
        )
            .into_response()),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    operation_id = "login",
    tag = "auth",
    description = "Signs in with a password. An account with a second factor gets 202 and an \
        `mfa_token` instead, to exchange at `/mfa/verify` with a code. With the cookie transport \
        on for the tenant, the tokens also arrive as HttpOnly cookies.",
    request_body(content = s::LoginRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in", body = s::LoginResponse),
        (status = 202, description = "Password correct; a second factor is needed", body = s::MfaRequired),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::NotReady),
    )
)]
pub async fn login(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    cookies: SessionCookies,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let mut fields = body.fields(true);
    let email = fields.string("email");
    let password = fields.password("password");
    let (email, password) = fields.complete((email, password))?;
    app.limit(Bucket::Login, &client).await?;
    match flows::login(
        &app.flows,
        &tenant,
        LoginInput { email, password },
        &client.context,
    )
    .await?
    {
        LoginOutcome::SignedIn(pair, user) => Ok(cookies.signed_in(login_response(pair, &user))),
        LoginOutcome::MfaRequired { mfa_token } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "mfa_required": true, "mfa_token": mfa_token })),
        )
            .into_response()),
    }
}

/// What a sign-in answers, password or OAuth (the model's `LoginResponse`): the token pair and
/// the user.
pub(super) fn login_response(pair: flows::TokenPair, user: &crate::domain::User) -> Value {
    let mut body = serde_json::to_value(pair).expect("token pair serialises");
    body["user"] = serde_json::to_value(user.snapshot()).expect("user serialises");
    body
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    operation_id = "refresh",
    tag = "auth",
    description = "Rotates a refresh token. The body is optional; without a usable token the \
        answer is 401.",
    request_body(content = Option<s::RefreshTokenRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "A new token pair", body = s::TokenPair),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::NotReady),
    )
)]
pub async fn refresh(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    cookies: SessionCookies,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let mut fields = body.fields(false);
    let token = fields.optional_string("refresh_token");
    fields.finish()?;
    // The body's token first (as the model), else the refresh cookie.
    let token = token.or(client.refresh_cookie.clone());
    if token.is_none() && client.csrf_failed {
        return Err(ApiError::CsrfFailed);
    }
    app.limit(Bucket::Refresh, &client).await?;
    let pair = flows::refresh(&app.flows, &tenant, token.as_deref(), &client.context).await?;
    let body = serde_json::to_value(pair).expect("token pair serialises");
    Ok(cookies.signed_in(body))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "logout",
    tag = "auth",
    description = "Ends the session of the bearer access token, or of the refresh token in the \
        (optional) body.",
    request_body(content = Option<s::RefreshTokenRequest>, content_type = "application/json"),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, response = r::Unauthorized),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
    ),
    security((), ("bearer" = []))
)]
pub async fn logout(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    cookies: SessionCookies,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let mut fields = body.fields(false);
    let refresh_token = fields.optional_string("refresh_token");
    fields.finish()?;
    let refresh_token = refresh_token.or(client.refresh_cookie.clone());
    if client.bearer.is_none() && refresh_token.is_none() && client.csrf_failed {
        return Err(ApiError::CsrfFailed);
    }
    let input = LogoutInput {
        bearer: client.bearer.as_deref(),
        refresh_token: refresh_token.as_deref(),
    };
    flows::logout(&app.flows, &tenant, input, &client.context).await?;
    Ok(cookies.signed_out(StatusCode::NO_CONTENT))
}
