//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers' `#[utoipa::path]`
//! annotations and served at `GET /api/v1/openapi.json`. Every auth and management path is
//! annotated once, under `/api/v1/...`; [`document`] adds the `/t/{tenant}/api/v1/...` copy of
//! each. Request and response shapes are documentation types ([`schemas`]): the handlers parse
//! bodies by hand and answer with domain types.

pub(crate) mod responses;
pub(crate) mod schemas;

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Required};

use super::routes;
use responses as r;
use schemas as s;

/// A tenant's name in a path (`TenantId::parse`): 1-63 of a-z, 0-9 and '-', not starting or
/// ending with '-'.
pub(crate) const TENANT_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookauth",
        description = "A self-hosted authentication server whose flows are customised by \
            sandboxed WebAssembly hooks. `/api/v1/auth/...` and `/api/v1/...` serve the default \
            tenant; every one of those paths is also served as `/t/{tenant}/api/v1/...` for a \
            named tenant (404 `unknown_tenant` when it does not exist).\n\nEvery error is JSON \
            `{\"detail\": <message or list of problems>, \"code\": <stable code>}`. Besides the \
            answers listed per operation, any request may get 405 `method_not_allowed` for a \
            method the path does not serve, and a peer over its connection cap gets 429 \
            `too_many_connections` before its request is read."
    ),
    paths(
        routes::account::register,
        routes::account::login,
        routes::account::refresh,
        routes::account::logout,
        routes::sessions::list,
        routes::sessions::revoke_others,
        routes::sessions::revoke,
        routes::me::show,
        routes::me::update,
        routes::me::delete_account,
        routes::me::show_verified,
        routes::me::change_password,
        routes::mfa::status,
        routes::mfa::enroll,
        routes::mfa::confirm,
        routes::mfa::disable,
        routes::mfa::verify,
        routes::email::request_verification,
        routes::email::confirm_verification,
        routes::email::request_reset,
        routes::email::confirm_reset,
        routes::admin::assign_role,
        routes::admin::remove_role,
        routes::admin::assign_permission,
        routes::admin::remove_permission,
        routes::admin::role_permissions,
        routes::oauth::providers,
        routes::oauth::accounts,
        routes::oauth::unlink,
        routes::oauth::authorize,
        routes::oauth::callback,
        routes::oauth::link_authorize,
        routes::oauth::link_callback,
        routes::hooks::list,
        routes::hooks::show,
        routes::hooks::deploy,
        routes::hooks::patch,
        routes::hooks::remove,
        routes::hooks::list_secrets,
        routes::hooks::put_secret,
        routes::hooks::delete_secret,
        routes::hooks::failures,
        routes::hooks::decisions,
        routes::hooks::replay,
        routes::monitor::show,
        routes::oauth_providers::list,
        routes::oauth_providers::put,
        routes::oauth_providers::remove,
        routes::tenants::list,
        routes::tenants::create,
        routes::tenants::remove,
        routes::health::healthz,
        routes::health::readyz,
        super::metrics::scrape,
        serve_document,
    ),
    components(
        schemas(
            s::ErrorBody,
            s::Message,
            s::UserOut,
            s::TokenPair,
            s::LoginResponse,
            s::MfaRequired,
            s::MfaEnrollRequest,
            s::MfaCodeRequest,
            s::MfaVerifyRequest,
            s::RecoveryCodes,
            s::PolicyViolation,
            crate::flows::MfaStatus,
            crate::flows::MfaEnrolment,
            s::RegisterRequest,
            s::LoginRequest,
            s::RefreshTokenRequest,
            s::UpdateMeRequest,
            s::DeleteMeRequest,
            s::ChangePasswordRequest,
            s::TokenRequest,
            s::EmailRequest,
            s::ResetConfirmRequest,
            s::UserRoleRequest,
            s::RolePermissionRequest,
            s::SessionInfo,
            s::OauthProviderNames,
            crate::flows::AuthorizeStart,
            s::OauthCallbackRequest,
            s::OauthAccount,
            s::HookInfo,
            s::DeployedHook,
            s::HookDeployForm,
            s::HookPatch,
            s::SecretName,
            s::SecretValue,
            s::SecretKey,
            s::TenantFailure,
            s::GateDecision,
            s::OauthProviderView,
            s::OauthProviderPut,
            s::TenantInfo,
            s::TenantCreate,
            s::Readiness,
            crate::flows::TenantMonitor,
            crate::metrics::OutboxDepth,
            crate::metrics::HookActivity,
            crate::metrics::RecentInvocation,
        ),
        responses(
            r::BadRequest,
            r::Unauthorized,
            r::Forbidden,
            r::NotFound,
            r::RequestTimeout,
            r::Conflict,
            r::PayloadTooLarge,
            r::Unprocessable,
            r::RateLimited,
            r::NotReady,
        )
    ),
    tags(
        (name = "auth", description = "Registration and the session lifecycle"),
        (name = "sessions", description = "The caller's sign-in sessions"),
        (name = "me", description = "The caller's own account"),
        (name = "mfa", description = "The caller's TOTP second factor"),
        (name = "email", description = "Email verification and password reset"),
        (name = "admin", description = "Roles and permissions (superusers)"),
        (name = "oauth", description = "Sign-in with OAuth providers"),
        (name = "hooks", description = "A tenant's hooks (management API)"),
        (name = "secrets", description = "A tenant's hook secrets (management API)"),
        (name = "failures", description = "Undelivered events and gate decisions (management API)"),
        (name = "oauth-providers", description = "A tenant's OAuth providers (management API)"),
        (name = "tenants", description = "Tenants (operator)"),
        (name = "health", description = "Liveness, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

/// The whole document: the annotated paths, then the tenant-prefixed copy of every auth and
/// management path, the bearer security scheme, and the schemas that admit profile fields.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.title = "hookauth".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT or operator token")
                .description(Some(
                    "A session's access token (JWT), or the operator token (`operator_token`) \
                     on the management API",
                ))
                .build(),
        ),
    );
    // The user and the bodies that carry profile fields: one property per configured field.
    for name in ["User", "RegisterRequest", "UpdateMeRequest"] {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(true)));
        }
    }
    let copies: Vec<(String, PathItem)> = doc
        .paths
        .paths
        .iter()
        .filter(|(path, _)| is_tenant_scoped(path))
        .map(|(path, item)| (format!("/t/{{tenant}}{path}"), tenant_copy(item.clone())))
        .collect();
    doc.paths.paths.extend(copies);
    doc
}

/// Served for the default tenant and for every named one (everything under `/api/v1` but the
/// operator's tenants and this document).
fn is_tenant_scoped(path: &str) -> bool {
    path.starts_with("/api/v1/")
        && !path.starts_with("/api/v1/tenants")
        && path != "/api/v1/openapi.json"
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn tenant_parameter() -> Parameter {
    ParameterBuilder::new()
        .name("tenant")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("The tenant's name"))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(63))
                .pattern(Some(TENANT_PATTERN)),
        ))
        .build()
}

/// The same operations for a named tenant: a `tenant` path parameter, `_tenant` operation
/// ids, and 404 for a tenant that does not exist.
fn tenant_copy(mut item: PathItem) -> PathItem {
    for operation in operations_mut(&mut item) {
        if let Some(id) = &mut operation.operation_id {
            id.push_str("_tenant");
        }
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .insert(0, tenant_parameter());
        operation
            .responses
            .responses
            .entry("404".into())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name("NotFound")));
    }
    item
}

/// `GET /api/v1/openapi.json`: this document, serialised once.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "health",
    description = "This document (OpenAPI 3.1).",
    responses((status = 200, description = "The OpenAPI document", body = Object, content_type = "application/json"))
)]
pub(crate) async fn serve_document() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        serde_json::to_string(&document()).expect("the OpenAPI document serialises")
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str()).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use serde_json::Value;

    /// Every route the auth router serves (`routes::auth_routes`), relative to its prefix.
    const AUTH_ROUTES: &[(&str, &str)] = &[
        ("post", "/register"),
        ("post", "/login"),
        ("post", "/refresh"),
        ("post", "/logout"),
        ("get", "/sessions"),
        ("post", "/sessions/revoke-others"),
        ("delete", "/sessions/{family_id}"),
        ("get", "/me"),
        ("patch", "/me"),
        ("delete", "/me"),
        ("get", "/me/verified"),
        ("get", "/mfa"),
        ("delete", "/mfa"),
        ("post", "/mfa/enroll"),
        ("post", "/mfa/confirm"),
        ("post", "/mfa/verify"),
        ("post", "/change-password"),
        ("post", "/verify-email/request"),
        ("post", "/verify-email/confirm"),
        ("post", "/password-reset/request"),
        ("post", "/password-reset/confirm"),
        ("post", "/admin/assign-role"),
        ("post", "/admin/remove-role"),
        ("post", "/admin/assign-permission"),
        ("post", "/admin/remove-permission"),
        ("get", "/admin/role-permissions/{role_name}"),
        ("get", "/oauth/providers"),
        ("get", "/oauth/accounts"),
        ("delete", "/oauth/accounts/{provider}"),
        ("get", "/oauth/{provider}/authorize"),
        ("post", "/oauth/{provider}/callback"),
        ("get", "/oauth/{provider}/link/authorize"),
        ("post", "/oauth/{provider}/link/callback"),
    ];

    /// Every management route (`routes::management_routes`, and `/monitor`), relative to
    /// `/api/v1` and `/t/{tenant}/api/v1`.
    const MANAGEMENT_ROUTES: &[(&str, &str)] = &[
        ("get", "/hooks"),
        ("get", "/hooks/{name}"),
        ("put", "/hooks/{name}"),
        ("patch", "/hooks/{name}"),
        ("delete", "/hooks/{name}"),
        ("get", "/hook-secrets"),
        ("put", "/hook-secrets/{key}"),
        ("delete", "/hook-secrets/{key}"),
        ("get", "/hook-failures"),
        ("get", "/hook-decisions"),
        ("get", "/oauth-providers"),
        ("put", "/oauth-providers/{name}"),
        ("delete", "/oauth-providers/{name}"),
        ("post", "/hook-failures/{id}/replay"),
        ("get", "/monitor"),
    ];

    /// Served once, at the root or for the operator only.
    const ROOT_ROUTES: &[(&str, &str)] = &[
        ("get", "/api/v1/tenants"),
        ("post", "/api/v1/tenants"),
        ("delete", "/api/v1/tenants/{id}"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/api/v1/openapi.json"),
    ];

    /// Operations that cannot answer any 4xx of their own (no input, no credentials).
    const NO_CLIENT_ERROR: &[&str] = &["healthz", "readyz", "openapi_document", "oauth_providers"];

    const METHODS: &[&str] = &[
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn document() -> Value {
        let json = serde_json::to_string(&super::document()).expect("serialises");
        serde_json::from_str(&json).expect("parses")
    }

    fn expected_routes() -> Vec<(String, String)> {
        let mut all = Vec::new();
        for prefix in ["/api/v1/auth", "/t/{tenant}/api/v1/auth"] {
            for (method, path) in AUTH_ROUTES {
                all.push((method.to_string(), format!("{prefix}{path}")));
            }
        }
        for prefix in ["/api/v1", "/t/{tenant}/api/v1"] {
            for (method, path) in MANAGEMENT_ROUTES {
                all.push((method.to_string(), format!("{prefix}{path}")));
            }
        }
        for (method, path) in ROOT_ROUTES {
            all.push((method.to_string(), path.to_string()));
        }
        all
    }

    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if let Some(op) = item.get(*method) {
                    out.push((method.to_string(), path.clone(), op));
                }
            }
        }
        out
    }

    #[test]
    fn serialises_as_openapi_3_1() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "hookauth");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let bearer = &doc["components"]["securitySchemes"]["bearer"];
        assert_eq!(bearer["type"], "http");
        assert_eq!(bearer["scheme"], "bearer");
    }

    #[test]
    fn documents_exactly_the_routes_served() {
        let doc = document();
        let expected: BTreeSet<(String, String)> = expected_routes().into_iter().collect();
        let documented: BTreeSet<(String, String)> = operations(&doc)
            .into_iter()
            .map(|(method, path, _)| (method, path))
            .collect();
        let missing: Vec<_> = expected.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&expected).collect();
        assert!(missing.is_empty(), "not documented: {missing:?}");
        assert!(extra.is_empty(), "documented but not served: {extra:?}");
    }

    #[test]
    fn operation_ids_are_unique_and_tenant_copies_distinct() {
        let doc = document();
        let mut seen = HashSet::new();
        for (method, path, op) in operations(&doc) {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operation id"));
            assert!(seen.insert(id.to_owned()), "duplicate operation id {id}");
            if let Some(default) = path.strip_prefix("/t/{tenant}") {
                let original = &doc["paths"][default][method.as_str()]["operationId"];
                assert_eq!(
                    Some(format!("{}_tenant", original.as_str().unwrap_or_default())).as_deref(),
                    Some(id),
                    "{method} {path}"
                );
            }
            assert!(
                op["tags"].as_array().is_some_and(|t| t.len() == 1),
                "{method} {path} has one tag"
            );
        }
    }

    #[test]
    fn every_path_parameter_is_declared() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            let declared: HashSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(p["required"], true, "{method} {path}");
                    p["name"].as_str().expect("a name")
                })
                .collect();
            let in_path: HashSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            assert_eq!(declared, in_path, "{method} {path}");
        }
    }

    #[test]
    fn tenant_copies_take_a_tenant_name_and_can_be_not_found() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            if !path.starts_with("/t/{tenant}/") {
                continue;
            }
            let tenant = &op["parameters"][0];
            assert_eq!(tenant["name"], "tenant", "{method} {path}");
            assert_eq!(tenant["schema"]["pattern"], super::TENANT_PATTERN);
            assert!(op["responses"].get("404").is_some(), "{method} {path}");
        }
    }

    fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').expect("a local reference");
                doc.pointer(pointer).expect("resolves")
            }
            None => value,
        }
    }

    #[test]
    fn every_operation_documents_a_json_error() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap_or_default();
            let responses = op["responses"].as_object().expect("responses");
            let errors: Vec<&Value> = responses
                .iter()
                .filter(|(status, _)| status.starts_with('4'))
                .map(|(_, r)| resolve(&doc, r))
                .collect();
            if NO_CLIENT_ERROR.contains(&id) {
                assert!(errors.is_empty(), "{method} {path}");
                continue;
            }
            assert!(!errors.is_empty(), "{method} {path} documents no 4xx");
            for (status, response) in responses {
                let response = resolve(&doc, response);
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_content_answers_have_no_body() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            if let Some(response) = op["responses"].get("204") {
                assert!(response.get("content").is_none(), "{method} {path}");
            }
        }
    }

    fn references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => references(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| references(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_to_a_component() {
        let doc = document();
        let mut found = Vec::new();
        references(&doc, &mut found);
        assert!(!found.is_empty());
        for reference in found {
            let pointer = reference
                .strip_prefix("#/components/")
                .unwrap_or_else(|| panic!("{reference} is not a component"));
            let (kind, name) = pointer.split_once('/').expect("kind/name");
            assert!(
                matches!(kind, "schemas" | "responses"),
                "{reference}: unexpected kind"
            );
            assert!(
                doc["components"][kind].get(name).is_some(),
                "{reference} does not resolve"
            );
        }
    }

    #[test]
    fn response_objects_are_closed_except_the_user() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        assert_eq!(schemas["User"]["additionalProperties"], true);
        for name in [
            "Error",
            "TokenPair",
            "LoginResponse",
            "SessionInfo",
            "HookInfo",
            "TenantMonitor",
            "OutboxDepth",
            "HookActivity",
            "RecentInvocation",
            "AuthorizeStart",
            "MfaRequired",
            "MfaStatus",
            "MfaEnrolment",
            "RecoveryCodes",
            "PolicyViolation",
        ] {
            assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
        }
        let error = &schemas["Error"];
        let required: Vec<&str> = error["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(required, ["detail", "code"]);
    }

    #[test]
    fn optional_bodies_are_not_required() {
        let doc = document();
        for (method, path) in [
            ("post", "/api/v1/auth/refresh"),
            ("post", "/api/v1/auth/logout"),
            ("delete", "/api/v1/auth/me"),
        ] {
            let body = &doc["paths"][path][method]["requestBody"];
            assert_ne!(body["required"], true, "{method} {path}");
        }
        let body = &doc["paths"]["/api/v1/auth/login"]["post"]["requestBody"];
        assert_eq!(body["required"], true);
    }
}
