//! The management API of a tenant's hooks, secrets and failures (`{T}` = `/t/{tenant}/api/v1`,
//! the default tenant also at `/api/v1`). Every handler takes a [`HookAdmin`] first, so nothing
//! is read before the caller is authorised.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::body::JsonBody;
use super::super::error::ApiError;
use super::super::extract::{HookAdmin, PathParams, QueryParams};
use super::super::openapi::{responses as r, schemas as s};
use crate::hooks::registry::MAX_MANIFEST_BYTES;
use crate::hooks_admin::HookPatch;

fn unprocessable(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::Unprocessable {
        code,
        detail: detail.into(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/hooks",
    operation_id = "list_hooks",
    tag = "hooks",
    description = "The tenant's hooks: platform, file and API-deployed. The operator token, or a token of a user of the tenant who is a superuser or holds `hooks:manage`.",
    responses(
        (status = 200, description = "The hooks", body = Vec<s::HookInfo>),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<AppState>, admin: HookAdmin) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(app.hooks_admin()?.list_hooks(&admin.tenant))))
}

#[utoipa::path(
    get,
    path = "/api/v1/hooks/{name}",
    operation_id = "get_hook",
    tag = "hooks",
    params(("name" = String, Path, description = "The hook's name")),
    responses(
        (status = 200, description = "The hook", body = s::HookInfo),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(app): State<AppState>,
    admin: HookAdmin,
    params: PathParams,
) -> Result<Json<Value>, ApiError> {
    let hook = app.hooks_admin()?.hook(&admin.tenant, params.get("name"))?;
    Ok(Json(json!(hook)))
}

/// `multipart/form-data`: `component` (the .wasm), optional `manifest` (JSON). Parts are read
/// with caps, so an oversized upload is refused without being buffered whole.
#[utoipa::path(
    put,
    path = "/api/v1/hooks/{name}",
    operation_id = "deploy_hook",
    tag = "hooks",
    description = "Deploys (creates or replaces) an API hook from a compiled component and an optional manifest. An oversized component is 422 `component_too_large`.",
    params(("name" = String, Path, description = "The hook's name")),
    request_body(content = s::HookDeployForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Replaced", body = s::DeployedHook),
        (status = 201, description = "Created", body = s::DeployedHook),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn deploy(
    State(app): State<AppState>,
    admin: HookAdmin,
    params: PathParams,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let name = params.get("name");
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
            name,
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

#[utoipa::path(
    patch,
    path = "/api/v1/hooks/{name}",
    operation_id = "patch_hook",
    tag = "hooks",
    description = "Changes an API hook's settings; each field present replaces the current value.",
    params(("name" = String, Path, description = "The hook's name")),
    request_body(content = s::HookPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed hook", body = s::HookInfo),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn patch(
    State(app): State<AppState>,
    admin: HookAdmin,
    params: PathParams,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let patch = hook_patch(body.0.unwrap_or(Value::Null))?;
    let hook = app
        .hooks_admin()?
        .patch_hook(&admin.actor, &admin.tenant, params.get("name"), patch)
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

#[utoipa::path(
    delete,
    path = "/api/v1/hooks/{name}",
    operation_id = "delete_hook",
    tag = "hooks",
    params(("name" = String, Path, description = "The hook's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn remove(
    State(app): State<AppState>,
    admin: HookAdmin,
    params: PathParams,
) -> Result<StatusCode, ApiError> {
    app.hooks_admin()?
        .delete_hook(&admin.actor, &admin.tenant, params.get("name"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/hook-secrets",
    operation_id = "list_hook_secrets",
    tag = "secrets",
    description = "The names of the tenant's hook secrets (never the values).",
    responses(
        (status = 200, description = "The secrets' names", body = Vec<s::SecretName>),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
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
#[utoipa::path(
    put,
    path = "/api/v1/hook-secrets/{key}",
    operation_id = "put_hook_secret",
    tag = "secrets",
    description = "Creates or replaces a secret; the value is never echoed.",
    params(("key" = String, Path, description = "1-64 letters, digits and '_', not starting with a digit")),
    request_body(content = s::SecretValue, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = s::SecretKey),
        (status = 201, description = "Created", body = s::SecretKey),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 408, response = r::RequestTimeout),
        (status = 413, response = r::PayloadTooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn put_secret(
    State(app): State<AppState>,
    admin: HookAdmin,
    params: PathParams,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let key = params.get("key");
    let value = body
        .0
        .as_ref()
        .and_then(|b| b.get("value"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| unprocessable("invalid_body", "expected {\"value\": \"...\"}"))?;
    let created = app
        .hooks_admin()?
        .put_secret(&admin.actor, &admin.tenant, key, &value)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "key": key }))).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/hook-secrets/{key}",
    operation_id = "delete_hook_secret",
    tag = "secrets",
    params(("key" = String, Path, description = "The secret's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn delete_secret(
    State(app): State<AppState>,
    admin: HookAdmin,
    params: PathParams,
) -> Result<StatusCode, ApiError> {
    app.hooks_admin()?
        .delete_secret(&admin.actor, &admin.tenant, params.get("key"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct FailureQuery {
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/v1/hook-failures",
    operation_id = "list_hook_failures",
    tag = "failures",
    description = "The tenant's undelivered events (failed by its own hooks, or emails no hook was there to send), oldest first.",
    params(("limit" = Option<u64>, Query, minimum = 0, description = "At most this many (default 100, capped at 1000)")),
    responses(
        (status = 200, description = "The failed events", body = Vec<s::TenantFailure>),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn failures(
    State(app): State<AppState>,
    admin: HookAdmin,
    QueryParams(query): QueryParams<FailureQuery>,
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
#[utoipa::path(
    get,
    path = "/api/v1/hook-decisions",
    operation_id = "list_hook_decisions",
    tag = "failures",
    description = "The tenant's gate decisions, newest first.",
    params(("hook" = Option<String>, Query, description = "Only this gate's"), ("decision" = Option<String>, Query, description = "Only these: allow, deny, allow_with_changes, claims, failed_deny, failed_allow"), ("limit" = Option<i64>, Query, description = "At most this many (default 100, clamped to 1-1000)")),
    responses(
        (status = 200, description = "The decisions", body = Vec<s::GateDecision>),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn decisions(
    State(app): State<AppState>,
    admin: HookAdmin,
    QueryParams(query): QueryParams<DecisionQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    Ok(Json(json!(
        app.hooks_admin()?
            .decisions(&admin.tenant, query.hook, query.decision, limit)
            .await?
    )))
}

#[utoipa::path(
    post,
    path = "/api/v1/hook-failures/{id}/replay",
    operation_id = "replay_hook_failure",
    tag = "failures",
    description = "Puts a failed event back in the queue for the tenant's own hooks.",
    params(("id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "Queued for redelivery", body = s::Message),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::NotReady),
    ),
    security(("bearer" = []))
)]
pub async fn replay(
    State(app): State<AppState>,
    admin: HookAdmin,
    params: PathParams,
) -> Result<Json<Value>, ApiError> {
    let id = params.get("id");
    if app.hooks_admin()?.replay_failure(&admin.tenant, id).await? {
        Ok(Json(
            json!({ "detail": format!("Event {id} queued for redelivery.") }),
        ))
    } else {
        Err(crate::hooks_admin::AdminError::NotFound("Failed event not found").into())
    }
}
