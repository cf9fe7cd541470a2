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
use super::super::rate_limit::Bucket;
use crate::domain::UserSnapshot;
use crate::flows::{self, FlowError, ProfileUpdateError};

pub async fn show(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    client: Client,
) -> Result<Json<UserSnapshot>, ApiError> {
    let session = app.session(&tenant, &client).await?;
    Ok(Json(session.user.snapshot()))
}

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
