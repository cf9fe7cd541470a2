//! The one API error type: every failure leaves as JSON with `detail` (fastapi-fullauth's text)
//! and a stable machine-readable `code`. Internals never reach a 5xx body; they are logged.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::flows::FlowError;
use crate::hooks_admin::AdminError;

/// One problem in a request body, in pydantic's shape.
#[derive(Debug, Clone, Serialize)]
pub struct FieldProblem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
}

#[derive(Debug)]
pub enum ApiError {
    Flow(FlowError),
    Admin(AdminError),
    /// A request to the management API that is malformed before it reaches the service
    /// (a bad multipart body, a missing part): 422 with a stable code.
    Unprocessable {
        code: &'static str,
        detail: String,
    },
    Validation(Vec<FieldProblem>),
    PayloadTooLarge,
    UnknownTenant,
    RateLimited {
        limit: u32,
        retry_after_secs: u64,
    },
    RouteNotFound,
    MethodNotAllowed,
    /// Hooks are still loading (just after start): hook management answers 503 until then.
    NotReady,
    /// Session cookies on a state-changing request without a matching `X-CSRF-Token`.
    CsrfFailed,
}

impl From<FlowError> for ApiError {
    fn from(e: FlowError) -> Self {
        ApiError::Flow(e)
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        ApiError::Admin(e)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Flow(FlowError::Store(e))
    }
}

fn body(status: StatusCode, detail: impl Into<Value>, code: &str) -> Response {
    (
        status,
        axum::Json(json!({ "detail": detail.into(), "code": code })),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use StatusCode as S;
        match self {
            ApiError::Flow(flow) => flow_response(flow),
            ApiError::Admin(admin) => admin_response(admin),
            ApiError::Unprocessable { code, detail } => body(S::UNPROCESSABLE_ENTITY, detail, code),
            ApiError::Validation(problems) => body(
                S::UNPROCESSABLE_ENTITY,
                serde_json::to_value(problems).unwrap_or_default(),
                "validation_error",
            ),
            ApiError::PayloadTooLarge => body(
                S::PAYLOAD_TOO_LARGE,
                "Request body too large",
                "payload_too_large",
            ),
            ApiError::UnknownTenant => body(S::NOT_FOUND, "Tenant not found", "unknown_tenant"),
            ApiError::RateLimited {
                limit,
                retry_after_secs,
            } => {
                let mut response = body(
                    S::TOO_MANY_REQUESTS,
                    "Too many requests. Try again later.",
                    "rate_limited",
                );
                let headers = response.headers_mut();
                headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
                headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
                headers.insert("x-ratelimit-reset", HeaderValue::from(retry_after_secs));
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                response
            }
            ApiError::RouteNotFound => body(S::NOT_FOUND, "Not Found", "not_found"),
            ApiError::CsrfFailed => body(
                S::FORBIDDEN,
                "CSRF token missing or invalid: send the hookauth_csrf cookie's value in X-CSRF-Token",
                "csrf_failed",
            ),
            ApiError::NotReady => {
                let mut response = body(
                    S::SERVICE_UNAVAILABLE,
                    "Hooks are still loading; retry shortly",
                    "not_ready",
                );
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("1"),
                );
                response
            }
            ApiError::MethodNotAllowed => body(
                S::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
                "method_not_allowed",
            ),
        }
    }
}

fn admin_response(error: AdminError) -> Response {
    use StatusCode as S;
    match error {
        AdminError::Unauthenticated => flow_response(FlowError::InvalidCredentials),
        AdminError::Forbidden => flow_response(FlowError::Forbidden),
        AdminError::Invalid(e) => body(S::UNPROCESSABLE_ENTITY, e.detail, e.code),
        AdminError::NotFound(detail) => body(S::NOT_FOUND, detail, "not_found"),
        AdminError::Conflict => body(S::CONFLICT, "Tenant already exists", "tenant_exists"),
        AdminError::Store(_) | AdminError::Internal(_) => {
            tracing::error!(error = %error, "management request failed");
            body(
                S::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                "internal_error",
            )
        }
    }
}

fn flow_response(error: FlowError) -> Response {
    use StatusCode as S;
    match error {
        FlowError::InvalidCredentials => {
            let mut response = body(
                S::UNAUTHORIZED,
                "Could not validate credentials",
                "invalid_credentials",
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        FlowError::Forbidden => body(S::FORBIDDEN, "Not enough permissions", "forbidden"),
        FlowError::CurrentPasswordIncorrect => body(
            S::BAD_REQUEST,
            "Current password is incorrect",
            "current_password_incorrect",
        ),
        FlowError::CurrentPasswordRejected => body(
            S::FORBIDDEN,
            "Current password is incorrect",
            "current_password_incorrect",
        ),
        FlowError::ReauthenticationRequired => body(
            S::FORBIDDEN,
            "Re-authentication required",
            "reauthentication_required",
        ),
        FlowError::PasswordPolicy(violations) => {
            let rules: Vec<Value> = violations
                .iter()
                .map(|v| json!({ "code": v.code, "message": v.message }))
                .collect();
            let body = json!({
                "detail": crate::domain::describe_violations(&violations),
                "code": "password_policy",
                "violations": rules,
            });
            (S::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
        }
        FlowError::EmailTaken => body(
            S::CONFLICT,
            "A user with this email already exists",
            "email_taken",
        ),
        FlowError::NotFound(detail) => body(S::NOT_FOUND, detail, "not_found"),
        FlowError::NoValidFields => body(
            S::BAD_REQUEST,
            "No valid fields to update",
            "no_valid_fields",
        ),
        FlowError::UnknownFields(names) => body(
            S::UNPROCESSABLE_ENTITY,
            format!("Unknown fields: {names}"),
            "unknown_fields",
        ),
        FlowError::DeniedByHook { message, hook_code } => {
            let mut body = json!({ "detail": message, "code": "denied_by_hook" });
            if let Some(code) = hook_code {
                body["hook_code"] = Value::String(code);
            }
            (S::FORBIDDEN, axum::Json(body)).into_response()
        }
        FlowError::OauthProviderNotFound(name) => body(
            S::NOT_FOUND,
            format!("OAuth provider '{name}' not configured"),
            "oauth_provider_not_found",
        ),
        FlowError::InvalidRedirectUri => body(
            S::BAD_REQUEST,
            "Invalid redirect URI",
            "invalid_redirect_uri",
        ),
        FlowError::OauthFailed => body(
            S::BAD_REQUEST,
            "OAuth authentication failed",
            "oauth_failed",
        ),
        FlowError::OauthAccountTaken(provider) => body(
            S::CONFLICT,
            format!("This {provider} account is already linked to another user."),
            "oauth_account_taken",
        ),
        FlowError::OauthProviderAlreadyLinked(provider) => body(
            S::CONFLICT,
            format!("Your account is already linked to a different {provider} account."),
            "oauth_provider_already_linked",
        ),
        FlowError::LastSignInMethod => body(
            S::BAD_REQUEST,
            "Cannot remove your only sign-in method. Set a password first.",
            "last_sign_in_method",
        ),
        FlowError::MfaAlreadyEnabled => body(
            S::CONFLICT,
            "Two-factor authentication is already enabled",
            "mfa_already_enabled",
        ),
        FlowError::MfaNotEnrolled => body(
            S::BAD_REQUEST,
            "Two-factor authentication is not set up; start enrolment first",
            "mfa_not_enrolled",
        ),
        FlowError::InvalidMfaCode => body(S::BAD_REQUEST, "Invalid code", "invalid_mfa_code"),
        FlowError::NotReady => ApiError::NotReady.into_response(),
        FlowError::Store(_) | FlowError::Internal(_) => {
            tracing::error!(error = %error, "request failed");
            body(
                S::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                "internal_error",
            )
        }
    }
}
