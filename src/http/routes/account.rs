//! Registration and the session lifecycle: register, login, refresh, logout.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::client::Client;
use super::super::error::{ApiError, FieldProblem};
use super::super::extract::Tenant;
use super::super::rate_limit::Bucket;
use crate::flows::{self, LoginInput, LogoutInput, RegisterInput, RegisterOutcome};

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

pub async fn login(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut fields = body.fields(true);
    let email = fields.string("email");
    let password = fields.password("password");
    let (email, password) = fields.complete((email, password))?;
    app.limit(Bucket::Login, &client).await?;
    let (pair, user) = flows::login(
        &app.flows,
        &tenant,
        LoginInput { email, password },
        &client.context,
    )
    .await?;
    Ok(Json(login_response(pair, &user)))
}

/// What a sign-in answers, password or OAuth (the model's `LoginResponse`): the token pair and
/// the user.
pub(super) fn login_response(pair: flows::TokenPair, user: &crate::domain::User) -> Value {
    let mut body = serde_json::to_value(pair).expect("token pair serialises");
    body["user"] = serde_json::to_value(user.snapshot()).expect("user serialises");
    body
}

pub async fn refresh(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let mut fields = body.fields(false);
    let token = fields.optional_string("refresh_token");
    fields.finish()?;
    app.limit(Bucket::Refresh, &client).await?;
    let pair = flows::refresh(&app.flows, &tenant, token.as_deref(), &client.context).await?;
    Ok(Json(pair).into_response())
}

pub async fn logout(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
    body: JsonBody,
) -> Result<StatusCode, ApiError> {
    let mut fields = body.fields(false);
    let refresh_token = fields.optional_string("refresh_token");
    fields.finish()?;
    let input = LogoutInput {
        bearer: client.bearer.as_deref(),
        refresh_token: refresh_token.as_deref(),
    };
    flows::logout(&app.flows, &tenant, input, &client.context).await?;
    Ok(StatusCode::NO_CONTENT)
}
