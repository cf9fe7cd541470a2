//! The management API of a tenant's hooks, secrets and failures (`{T}` = `/t/{tenant}/api/v1`,
//! the default tenant also at `/api/v1`). Every handler takes a [`HookAdmin`] first, so nothing
//! is read before the caller is authorised.

use std::collections::HashMap;

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::error::ApiError;
use super::super::extract::HookAdmin;
use crate::hooks::registry::MAX_MANIFEST_BYTES;
use crate::hooks_admin::HookPatch;

fn param(params: &HashMap<String, String>, key: &str) -> String {
    params.get(key).cloned().unwrap_or_default()
}

fn unprocessable(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::Unprocessable {
        code,
        detail: detail.into(),
    }
}

pub async fn list(State(app): State<AppState>, admin: HookAdmin) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(app.hooks_admin()?.list_hooks(&admin.tenant))))
}

pub async fn show(
    State(app): State<AppState>,
    admin: HookAdmin,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let hook = app
        .hooks_admin()?
        .hook(&admin.tenant, &param(&params, "name"))?;
    Ok(Json(json!(hook)))
}

/// `multipart/form-data`: `component` (the .wasm), optional `manifest` (JSON). Parts are read
/// with caps, so an oversized upload is refused without being buffered whole.
pub async fn deploy(
    State(app): State<AppState>,
    admin: HookAdmin,
    Path(params): Path<HashMap<String, String>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let name = param(&params, "name");
    let max_component = app.max_component_bytes;
    let mut multipart = multipart.map_err(|e| {
        unprocessable(
            "invalid_multipart",
            format!("expected multipart/form-data with a `component` part: {e}"),
        )
    })?;
    let mut component: Option<Vec<u8>> = None;
    let mut manifest: Option<Vec<u8>> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(too_large(max_component));
            }
            Err(e) => return Err(unprocessable("invalid_multipart", e.body_text())),
        };
        let part = field.name().unwrap_or_default().to_owned();
        let (slot, cap) = match part.as_str() {
            "component" => (&mut component, max_component),
            "manifest" => (&mut manifest, MAX_MANIFEST_BYTES),
            other => {
                return Err(unprocessable(
                    "unknown_part",
                    format!("unknown part {other:?}: expected `component` and `manifest`"),
                ));
            }
        };
        if slot.is_some() {
            return Err(unprocessable(
                "invalid_multipart",
                format!("part `{part}` given twice"),
            ));
        }
        let mut field = field;
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > cap {
                        return Err(if part == "component" {
                            too_large(max_component)
                        } else {
                            unprocessable(
                                "manifest_too_large",
                                format!("the manifest is over {MAX_MANIFEST_BYTES} bytes"),
                            )
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(too_large(max_component));
                }
                Err(e) => return Err(unprocessable("invalid_multipart", e.body_text())),
            }
        }
        *slot = Some(bytes);
    }
    let component = component.ok_or_else(|| {
        unprocessable(
            "missing_component",
            "the `component` part (the .wasm file) is required",
        )
    })?;
    let deployed = app
        .hooks_admin()?
        .deploy(
            &admin.actor,
            &admin.tenant,
            &name,
            component,
            manifest.as_deref(),
        )
        .await?;
    let mut body = json!(deployed.hook);
    body["warnings"] = json!(deployed.warnings);
    let status = if deployed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)).into_response())
}

fn too_large(max: usize) -> ApiError {
    let e = crate::hooks::registry::too_large(max);
    unprocessable(e.code, e.detail)
}

pub async fn patch(
    State(app): State<AppState>,
    admin: HookAdmin,
    Path(params): Path<HashMap<String, String>>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let patch = hook_patch(body.0.unwrap_or(Value::Null))?;
    let hook = app
        .hooks_admin()?
        .patch_hook(&admin.actor, &admin.tenant, &param(&params, "name"), patch)
        .await?;
    Ok(Json(json!(hook)))
}

/// The PATCH body, or a 422 naming the field at fault: serde's own message for a field of the
/// wrong type does not say which field it was.
fn hook_patch(raw: Value) -> Result<HookPatch, ApiError> {
    let error = match serde_json::from_value::<HookPatch>(raw.clone()) {
        Ok(patch) => return Ok(patch),
        Err(e) => e.to_string(),
    };
    if error.starts_with("unknown field") {
        return Err(unprocessable("unknown_field", error));
    }
    let culprit = raw.as_object().and_then(|fields| {
        fields.iter().find_map(|(name, value)| {
            let alone = Value::Object([(name.clone(), value.clone())].into_iter().collect());
            serde_json::from_value::<HookPatch>(alone)
                .err()
                .map(|e| format!("{name}: {e}"))
        })
    });
    Err(unprocessable("invalid_body", culprit.unwrap_or(error)))
}

pub async fn remove(
    State(app): State<AppState>,
    admin: HookAdmin,
    Path(params): Path<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    app.hooks_admin()?
        .delete_hook(&admin.actor, &admin.tenant, &param(&params, "name"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_secrets(
    State(app): State<AppState>,
    admin: HookAdmin,
) -> Result<Json<Value>, ApiError> {
    let names = app.hooks_admin()?.secret_names(&admin.tenant).await?;
    Ok(Json(Value::Array(
        names
            .into_iter()
            .map(|(key, updated_at)| json!({ "key": key, "updated_at": updated_at }))
            .collect(),
    )))
}

/// `{"value": "..."}` → 201 created / 204 replaced; the value is never echoed.
pub async fn put_secret(
    State(app): State<AppState>,
    admin: HookAdmin,
    Path(params): Path<HashMap<String, String>>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let key = param(&params, "key");
    let value = body
        .0
        .as_ref()
        .and_then(|b| b.get("value"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| unprocessable("invalid_body", "expected {\"value\": \"...\"}"))?;
    let created = app
        .hooks_admin()?
        .put_secret(&admin.actor, &admin.tenant, &key, &value)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "key": key }))).into_response())
}

pub async fn delete_secret(
    State(app): State<AppState>,
    admin: HookAdmin,
    Path(params): Path<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    app.hooks_admin()?
        .delete_secret(&admin.actor, &admin.tenant, &param(&params, "key"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct FailureQuery {
    limit: Option<usize>,
}

pub async fn failures(
    State(app): State<AppState>,
    admin: HookAdmin,
    Query(query): Query<FailureQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100).min(1000);
    Ok(Json(json!(
        app.hooks_admin()?.failures(&admin.tenant, limit).await?
    )))
}

#[derive(Deserialize)]
pub struct DecisionQuery {
    hook: Option<String>,
    decision: Option<String>,
    limit: Option<i64>,
}

/// The tenant's gate decisions, newest first.
pub async fn decisions(
    State(app): State<AppState>,
    admin: HookAdmin,
    Query(query): Query<DecisionQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    Ok(Json(json!(
        app.hooks_admin()?
            .decisions(&admin.tenant, query.hook, query.decision, limit)
            .await?
    )))
}

pub async fn replay(
    State(app): State<AppState>,
    admin: HookAdmin,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = param(&params, "id");
    if app
        .hooks_admin()?
        .replay_failure(&admin.tenant, &id)
        .await?
    {
        Ok(Json(
            json!({ "detail": format!("Event {id} queued for redelivery.") }),
        ))
    } else {
        Err(crate::hooks_admin::AdminError::NotFound("Failed event not found").into())
    }
}
