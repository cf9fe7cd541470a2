//! Sign-in with OAuth providers (API.md "OAuth"), under every tenant's auth prefix.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::client::Client;
use super::super::error::{ApiError, FieldProblem};
use super::super::extract::Tenant;
use super::super::rate_limit::Bucket;
use crate::flows::{self, CallbackInput};

/// The model's limit on the binding; the code and state are bounded so a client cannot make
/// the server sign, hash or forward megabytes (real ones are well under these).
const MAX_BINDING: usize = 512;
const MAX_CODE: usize = 2048;
const MAX_STATE: usize = 4096;

pub async fn providers(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<Json<Value>, ApiError> {
    let names = flows::oauth_providers(&app.flows, &tenant).await?;
    Ok(Json(json!({ "providers": names })))
}

/// The `{provider}` segment (a tenant-prefixed route also has `{tenant}`).
fn provider(params: &HashMap<String, String>) -> &str {
    params.get("provider").map_or("", String::as_str)
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

pub async fn authorize(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<flows::AuthorizeStart>, ApiError> {
    let redirect_uri = redirect_uri(&query)?;
    Ok(Json(
        flows::oauth_authorize(&app.flows, &tenant, provider(&params), &redirect_uri).await?,
    ))
}

pub async fn callback(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(params): Path<HashMap<String, String>>,
    client: Client,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(super::account::login_response(pair, &user)))
}

pub async fn link_authorize(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(params): Path<HashMap<String, String>>,
    client: Client,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<flows::AuthorizeStart>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    let redirect_uri = redirect_uri(&query)?;
    Ok(Json(
        flows::oauth_link_authorize(&app.flows, &session, provider(&params), &redirect_uri).await?,
    ))
}

pub async fn link_callback(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(params): Path<HashMap<String, String>>,
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

pub async fn unlink(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(params): Path<HashMap<String, String>>,
    client: Client,
) -> Result<StatusCode, ApiError> {
    let session = app.session(&tenant, &client).await?;
    flows::oauth_unlink(&app.flows, &session, provider(&params), &client.context).await?;
    Ok(StatusCode::NO_CONTENT)
}
