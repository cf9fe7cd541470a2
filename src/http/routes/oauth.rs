//! Sign-in with OAuth providers (API.md "OAuth"), under every tenant's auth prefix.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::client::Client;
use super::super::error::{ApiError, FieldProblem};
use super::super::extract::{PathParams, QueryParams, Tenant};
use super::super::openapi::{responses as r, schemas as s};
use super::super::rate_limit::Bucket;
use crate::flows::{self, CallbackInput};

/// The model's limit on the binding; the code and state are bounded so a client cannot make
/// the server sign, hash or forward megabytes (real ones are well under these).
const MAX_BINDING: usize = 512;
const MAX_CODE: usize = 2048;
const MAX_STATE: usize = 4096;

#[utoipa::path(
    get,
    path = "/api/v1/auth/oauth/providers",
    operation_id = "oauth_providers",
    tag = "oauth",
    responses(
        (status = 200, description = "The tenant's provider names, sorted", body = s::OauthProviderNames),
    )
)]
pub async fn providers(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<Json<Value>, ApiError> {
    let names = flows::oauth_providers(&app.flows, &tenant).await?;
    Ok(Json(json!({ "providers": names })))
}

/// The `{provider}` segment (a tenant-prefixed route also has `{tenant}`).
fn provider(params: &PathParams) -> &str {
    params.get("provider")
}

fn redirect_uri(query: &HashMap<String, String>) -> Result<String, ApiError> {
    query.get("redirect_uri").cloned().ok_or_else(|| {
        ApiError::Validation(vec![FieldProblem {
            kind: "missing",
            loc: vec![json!("query"), json!("redirect_uri")],
            msg: "Field required".into(),
            input: Value::Null,
        }])
    })
}

fn callback_input(body: JsonBody) -> Result<CallbackInput, ApiError> {
    let mut fields = body.fields(true);
    let code = fields.bounded_string("code", MAX_CODE);
    let state = fields.bounded_string("state", MAX_STATE);
    let binding = fields.bounded_string("binding", MAX_BINDING);
    let (code, state, binding) = fields.complete((code, state, binding))?;
    Ok(CallbackInput {
        code,
        state,
        binding,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/oauth/{provider}/authorize",
    operation_id = "oauth_authorize",
    tag = "oauth",
    description = "Starts a sign-in: where to send the user, and the binding the callback needs.",
    params(
        ("provider" = String, Path, description = "A provider name the tenant configured"),
        ("redirect_uri" = String, Query, description = "One of the provider's allowed redirect URIs"),
    ),
    responses(
        (status = 200, description = "The authorization URL and binding", body = flows::AuthorizeStart),
        (status = 400, response = r::BadRequest),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
    )
)]
pub async fn authorize(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    params: PathParams,
    QueryParams(query): QueryParams<HashMap<String, String>>,
) -> Result<Json<flows::AuthorizeStart>, ApiError> {
    let redirect_uri = redirect_uri(&query)?;
    Ok(Json(
        flows::oauth_authorize(&app.flows, &tenant, provider(&params), &redirect_uri).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/oauth/{provider}/callback",
    operation_id = "oauth_callback",
    tag = "oauth",
    description = "Finishes a sign-in (or sign-up) with what the provider sent to the redirect URI.",
    params(("provider" = String, Path, description = "A provider name the tenant configured")),
    request_body(content = s::OauthCallbackRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in", body = s::LoginResponse),
        (status = 400, response = r::BadRequest),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::NotReady),
    )
)]
pub async fn callback(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    params: PathParams,
    client: Client,
    cookies: super::super::cookies::SessionCookies,
    body: JsonBody,
) -> Result<axum::response::Response, ApiError> {
    let input = callback_input(body)?;
    app.limit(Bucket::Login, &client).await?;
    let (pair, user) = flows::oauth_callback(
        &app.flows,
        &tenant,
        provider(&params),
        input,
        &client.context,
    )
    .await?;
    Ok(cookies.signed_in(super::account::login_response(pair, &user)))
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/oauth/{provider}/link/authorize",
    operation_id = "oauth_link_authorize",
    tag = "oauth",
    description = "Starts linking a provider account to the caller.",
    params(
        ("provider" = String, Path, description = "A provider name the tenant configured"),
        ("redirect_uri" = String, Query, description = "One of the provider's allowed redirect URIs"),
    ),
    responses(
        (status = 200, description = "The authorization URL and binding", body = flows::AuthorizeStart),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn link_authorize(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    params: PathParams,
    client: Client,
    QueryParams(query): QueryParams<HashMap<String, String>>,
) -> Result<Json<flows::AuthorizeStart>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    let redirect_uri = redirect_uri(&query)?;
    Ok(Json(
        flows::oauth_link_authorize(&app.flows, &session, provider(&params), &redirect_uri).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/oauth/{provider}/link/callback",
    operation_id = "oauth_link_callback",
    tag = "oauth",
    params(("provider" = String, Path, description = "A provider name the tenant configured")),
    request_body(content = s::OauthCallbackRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Linked", body = s::OauthAccount),
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
pub async fn link_callback(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    params: PathParams,
    client: Client,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    let input = callback_input(body)?;
    // Each attempt costs calls to the provider: bounded like a sign-in.
    app.limit(Bucket::Login, &client).await?;
    let account = flows::oauth_link_callback(
        &app.flows,
        &session,
        provider(&params),
        input,
        &client.context,
    )
    .await?;
    Ok(Json(json!(account)))
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/oauth/accounts",
    operation_id = "oauth_accounts",
    tag = "oauth",
    responses(
        (status = 200, description = "The caller's linked provider accounts", body = Vec<s::OauthAccount>),
        (status = 401, response = r::Unauthorized),
    ),
    security(("bearer" = []))
)]
pub async fn accounts(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
) -> Result<Json<Value>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    Ok(Json(json!(
        flows::oauth_accounts(&app.flows, &session).await?
    )))
}

#[utoipa::path(
    delete,
    path = "/api/v1/auth/oauth/accounts/{provider}",
    operation_id = "oauth_unlink",
    tag = "oauth",
    description = "Unlinks the caller's account of a provider, unless it is their last way to sign in (400).",
    params(("provider" = String, Path, description = "The provider of the linked account")),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
    ),
    security(("bearer" = []))
)]
pub async fn unlink(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    params: PathParams,
    client: Client,
) -> Result<StatusCode, ApiError> {
    let session = app.session(&tenant, &client).await?;
    flows::oauth_unlink(&app.flows, &session, provider(&params), &client.context).await?;
    Ok(StatusCode::NO_CONTENT)
}
