//! Every field of every route's JSON body, sent as `null`, as the wrong type and left out, and
//! the body itself sent as `null`, an array and broken JSON: each answer is a JSON 4xx with a
//! stable `code` (a handler that panicked used to drop the connection instead). Required fields
//! are named in the 422's `loc`. Authorised callers are used throughout (superuser for the
//! admin routes, the operator for the management API), so the body is really read.

use hookauth::domain::{Email, Password, TenantId};
use hookauth::flows;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::helpers::{Backend, Options, PASSWORD, TestApp};

use crate::shared::OPERATOR;

#[derive(Clone, Copy, PartialEq)]
enum Caller {
    Anonymous,
    /// A freshly registered user, new for every request (some requests delete or change it).
    User,
    Superuser,
    Operator,
}

#[derive(Clone, Copy, PartialEq)]
enum Field {
    Required,
    /// Absent or `null` is a valid request: any non-5xx answer is right; a wrong type is a 422.
    Optional,
}

struct Route {
    method: Method,
    /// Under the default tenant's auth prefix unless it starts with `/api/`.
    path: &'static str,
    caller: Caller,
    /// A valid body; each of its fields is spoiled in turn.
    body: Value,
    fields: &'static [(&'static str, Field)],
}

fn routes(user_id: &str) -> Vec<Route> {
    use Caller::*;
    use Field::*;
    let role_fields: &'static [(&'static str, Field)] =
        &[("user_id", Required), ("role", Required)];
    let permission_fields: &'static [(&'static str, Field)] =
        &[("role", Required), ("permission", Required)];
    vec![
        Route {
            method: Method::POST,
            path: "/register",
            caller: Anonymous,
            body: json!({"email": "new@example.com", "password": PASSWORD, "display_name": "N"}),
            fields: &[
                ("email", Required),
                ("password", Required),
                ("display_name", Optional),
            ],
        },
        Route {
            method: Method::POST,
            path: "/login",
            caller: Anonymous,
            body: json!({"email": "root@example.com", "password": PASSWORD}),
            fields: &[("email", Required), ("password", Required)],
        },
        Route {
            method: Method::POST,
            path: "/refresh",
            caller: Anonymous,
            body: json!({"refresh_token": "not-a-token"}),
            fields: &[("refresh_token", Optional)],
        },
        Route {
            method: Method::POST,
            path: "/logout",
            caller: User,
            body: json!({"refresh_token": "not-a-token"}),
            fields: &[("refresh_token", Optional)],
        },
        Route {
            method: Method::PATCH,
            path: "/me",
            caller: User,
            body: json!({"display_name": "Someone"}),
            fields: &[("display_name", Optional)],
        },
        Route {
            method: Method::DELETE,
            path: "/me",
            caller: User,
            body: json!({"current_password": PASSWORD}),
            fields: &[("current_password", Optional)],
        },
        Route {
            method: Method::POST,
            path: "/change-password",
            caller: User,
            body: json!({"current_password": PASSWORD, "new_password": "another-long-passphrase"}),
            fields: &[("new_password", Required), ("current_password", Optional)],
        },
        Route {
            method: Method::POST,
            path: "/verify-email/confirm",
            caller: Anonymous,
            body: json!({"token": "not-a-token"}),
            fields: &[("token", Required)],
        },
        Route {
            method: Method::POST,
            path: "/password-reset/request",
            caller: Anonymous,
            body: json!({"email": "root@example.com"}),
            fields: &[("email", Required)],
        },
        Route {
            method: Method::POST,
            path: "/password-reset/confirm",
            caller: Anonymous,
            body: json!({"token": "not-a-token", "new_password": "another-long-passphrase"}),
            fields: &[("token", Required), ("new_password", Required)],
        },
        Route {
            method: Method::POST,
            path: "/admin/assign-role",
            caller: Superuser,
            body: json!({"user_id": user_id, "role": "editor"}),
            fields: role_fields,
        },
        Route {
            method: Method::POST,
            path: "/admin/remove-role",
            caller: Superuser,
            body: json!({"user_id": user_id, "role": "editor"}),
            fields: role_fields,
        },
        Route {
            method: Method::POST,
            path: "/admin/assign-permission",
            caller: Superuser,
            body: json!({"role": "editor", "permission": "posts:write"}),
            fields: permission_fields,
        },
        Route {
            method: Method::POST,
            path: "/admin/remove-permission",
            caller: Superuser,
            body: json!({"role": "editor", "permission": "posts:write"}),
            fields: permission_fields,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/tenants",
            caller: Operator,
            body: json!({"id": "bodies-tenant"}),
            fields: &[("id", Required)],
        },
        Route {
            method: Method::PUT,
            path: "/api/v1/hook-secrets/API_KEY",
            caller: Operator,
            body: json!({"value": "s3cret"}),
            fields: &[("value", Required)],
        },
        Route {
            method: Method::PATCH,
            path: "/api/v1/hooks/no-such-hook",
            caller: Operator,
            body: json!({"enabled": true, "order": 1, "config": {"k": "v"},
                         "limits": {"fuel": 1000000, "memory_mib": 16, "timeout_ms": 500}}),
            fields: &[
                ("enabled", Optional),
                ("order", Optional),
                ("config", Optional),
                ("limits", Optional),
            ],
        },
    ]
}

/// What a request sends, and what a correct answer looks like.
enum Expect {
    /// 422 naming this field in `loc` (auth routes) or in `detail` (management routes).
    Names(&'static str),
    /// Any JSON 4xx with a `code`.
    ClientError,
    /// Anything but a 5xx; a JSON body, if there is one, has a `code` when it is an error.
    NotServerError,
}

struct Case {
    what: String,
    body: Option<String>,
    expect: Expect,
}

fn cases(route: &Route) -> Vec<Case> {
    let Value::Object(valid) = &route.body else {
        unreachable!("every route's valid body is an object")
    };
    let mut cases = Vec::new();
    let with = |name: &str, value: Option<Value>| -> String {
        let mut body: Map<String, Value> = valid.clone();
        match value {
            Some(v) => body.insert(name.to_owned(), v),
            None => body.remove(name),
        };
        Value::Object(body).to_string()
    };
    for &(name, kind) in route.fields {
        let absent = || match kind {
            Field::Required => Expect::Names(name),
            Field::Optional => Expect::NotServerError,
        };
        cases.push(Case {
            what: format!("{name} = null"),
            body: Some(with(name, Some(Value::Null))),
            expect: absent(),
        });
        cases.push(Case {
            what: format!("{name} missing"),
            body: Some(with(name, None)),
            expect: absent(),
        });
        // A number where a string, bool or object is expected, and a string where a number
        // or a bool is.
        let wrong = match &valid[name] {
            Value::String(_) | Value::Bool(_) | Value::Object(_) => json!(12345),
            _ => json!("twelve"),
        };
        cases.push(Case {
            what: format!("{name} = {wrong}"),
            body: Some(with(name, Some(wrong.clone()))),
            expect: Expect::Names(name),
        });
        cases.push(Case {
            what: format!("{name} = []"),
            body: Some(with(name, Some(json!([])))),
            expect: Expect::Names(name),
        });
    }
    let whole_body_required = route.fields.iter().any(|(_, k)| *k == Field::Required);
    for (what, body) in [
        ("body null", "null"),
        ("body array", "[1,2]"),
        ("body 42", "42"),
    ] {
        cases.push(Case {
            what: what.into(),
            body: Some(body.into()),
            expect: if whole_body_required || body != "null" {
                Expect::ClientError
            } else {
                Expect::NotServerError
            },
        });
    }
    cases.push(Case {
        what: "broken JSON".into(),
        body: Some("{\"email\": ".into()),
        expect: Expect::ClientError,
    });
    if whole_body_required {
        cases.push(Case {
            what: "no body".into(),
            body: None,
            expect: Expect::ClientError,
        });
    }
    cases
}

async fn superuser_token(app: &TestApp) -> String {
    flows::create_superuser(
        &app.flows,
        &TenantId::default_tenant(),
        Email::parse("root@example.com").unwrap(),
        Password::new(PASSWORD.into()),
    )
    .await
    .unwrap();
    app.access_token("root@example.com").await
}

/// The problem in `detail` names `field`: in `loc` (validation errors) or in the text.
fn names_field(body: &Value, field: &str, management: bool) -> bool {
    if management {
        return body["detail"].to_string().contains(field);
    }
    body["detail"].as_array().is_some_and(|problems| {
        problems
            .iter()
            .any(|p| p["loc"] == json!(["body", field]) || p["loc"] == json!([field]))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_null_wrong_type_or_missing_gets_a_json_4xx() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().env("HOOKAUTH_OPERATOR_TOKEN", OPERATOR),
    )
    .await;
    let root = superuser_token(&app).await;
    let member = app.login("member@example.com").await;
    let member_id = member["user"]["id"].as_str().unwrap().to_owned();

    let mut failures = Vec::new();
    let mut sent = 0;
    let mut users = 0;
    for route in routes(&member_id) {
        let management = route.path.starts_with("/api/");
        for case in cases(&route) {
            let token = match route.caller {
                Caller::Anonymous => None,
                Caller::Superuser => Some(root.clone()),
                Caller::Operator => Some(OPERATOR.to_owned()),
                Caller::User => {
                    users += 1;
                    Some(app.access_token(&format!("user{users}@example.com")).await)
                }
            };
            let url = if management {
                format!("http://{}{}", app.addr, route.path)
            } else {
                app.url(route.path)
            };
            let mut request = app.http().request(route.method.clone(), url);
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = &case.body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.clone());
            }
            sent += 1;
            let label = format!("{} {} [{}]", route.method, route.path, case.what);
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{label}: no answer ({e})"));
                    continue;
                }
            };
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let json: Option<Value> = serde_json::from_str(&text).ok();
            let has_code = json.as_ref().is_some_and(|j| j["code"].is_string());
            let ok = match case.expect {
                Expect::Names(field) => {
                    status == StatusCode::UNPROCESSABLE_ENTITY
                        && has_code
                        && json
                            .as_ref()
                            .is_some_and(|j| names_field(j, field, management))
                }
                Expect::ClientError => status.is_client_error() && has_code,
                Expect::NotServerError => {
                    !status.is_server_error() && (!status.is_client_error() || has_code)
                }
            };
            if !ok {
                failures.push(format!("{label}: {status} {text}"));
            }
        }
    }
    assert!(sent > 150, "the table covers every route ({sent} requests)");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests were answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
