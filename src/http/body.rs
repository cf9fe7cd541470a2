//! Our own JSON body handling, so that every malformed body gets our error shape: syntax errors,
//! oversized bodies, missing fields and wrong types, all reported together like pydantic does.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value, json};

use super::error::{ApiError, FieldProblem};
use crate::domain::{Email, Password};

/// A request body parsed as JSON (or absent). Field validation happens later, in the handler,
/// after authentication, matching the library's evaluation order.
pub struct JsonBody(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::Validation(vec![FieldProblem {
                    kind: "body_unreadable",
                    loc: vec![json!("body")],
                    msg: "Request body could not be read".into(),
                    input: Value::Null,
                }])
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => Ok(Self(Some(value))),
            Err(e) => Err(ApiError::Validation(vec![FieldProblem {
                kind: "json_invalid",
                loc: vec![json!("body"), json!(byte_offset(&bytes, &e))],
                msg: "JSON decode error".into(),
                input: json!({}),
            }])),
        }
    }
}

fn byte_offset(bytes: &[u8], e: &serde_json::Error) -> usize {
    let mut offset = 0;
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if i + 1 == e.line() {
            return offset + e.column().saturating_sub(1);
        }
        offset += line.len() + 1;
    }
    offset
}

impl JsonBody {
    /// The body as an object of fields; `required` says whether an absent body is a problem.
    pub fn fields(self, required: bool) -> Fields {
        match self.0 {
            Some(Value::Object(map)) => Fields::new(map),
            None | Some(Value::Null) if !required => Fields::new(Map::new()),
            None => Fields::failed(FieldProblem {
                kind: "missing",
                loc: vec![json!("body")],
                msg: "Field required".into(),
                input: Value::Null,
            }),
            Some(other) => Fields::failed(FieldProblem {
                kind: "model_attributes_type",
                loc: vec![json!("body")],
                msg: "Input should be a valid dictionary or object to extract fields from".into(),
                input: other,
            }),
        }
    }
}

/// Reads typed fields out of a body, collecting every problem instead of stopping at the first.
pub struct Fields {
    map: Map<String, Value>,
    problems: Vec<FieldProblem>,
}

impl Fields {
    fn new(map: Map<String, Value>) -> Self {
        Self {
            map,
            problems: Vec::new(),
        }
    }

    fn failed(problem: FieldProblem) -> Self {
        Self {
            map: Map::new(),
            problems: vec![problem],
        }
    }

    fn problem(&mut self, kind: &'static str, name: &str, msg: String, input: Value) {
        self.problems.push(FieldProblem {
            kind,
            loc: vec![json!("body"), json!(name)],
            msg,
            input,
        });
    }

    /// A required string field. `null` is reported like an absent field: a client that sends
    /// `{"email": null}` means "no email", and must hear which field is missing.
    pub fn string(&mut self, name: &str) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => {
                let input = Value::Object(self.map.clone());
                self.problem("missing", name, "Field required".into(), input);
                None
            }
            Some(_) => self.optional_string(name),
        }
    }

    /// An optional string field; `null` counts as absent.
    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                let input = other.clone();
                self.problem(
                    "string_type",
                    name,
                    "Input should be a valid string".into(),
                    input,
                );
                None
            }
        }
    }

    /// A required string of 1 to `max` characters (pydantic's `min_length`/`max_length`).
    pub fn bounded_string(&mut self, name: &str, max: usize) -> Option<String> {
        let raw = self.string(name)?;
        let chars = raw.chars().count();
        if chars == 0 {
            self.problem(
                "string_too_short",
                name,
                "String should have at least 1 character".into(),
                Value::String(raw),
            );
            return None;
        }
        if chars > max {
            self.problem(
                "string_too_long",
                name,
                format!("String should have at most {max} characters"),
                Value::String(raw.chars().take(64).collect()),
            );
            return None;
        }
        Some(raw)
    }

    pub fn password(&mut self, name: &str) -> Option<Password> {
        self.string(name).map(Password::new)
    }

    pub fn optional_password(&mut self, name: &str) -> Option<Password> {
        self.optional_string(name).map(Password::new)
    }

    /// A required, syntactically valid email address.
    pub fn email(&mut self, name: &str) -> Option<Email> {
        let raw = self.string(name)?;
        match Email::parse(&raw) {
            Ok(email) => Some(email),
            Err(reason) => {
                self.problem(
                    "value_error",
                    name,
                    format!("value is not a valid email address: {reason}"),
                    Value::String(raw),
                );
                None
            }
        }
    }

    /// A required field parsed by `parse`; its error message becomes the problem's `msg`.
    pub fn parsed<T>(
        &mut self,
        name: &str,
        kind: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.string(name)?;
        match parse(&raw) {
            Ok(v) => Some(v),
            Err(msg) => {
                self.problem(kind, name, msg, Value::String(raw));
                None
            }
        }
    }

    /// Record a problem found by someone else (e.g. the profile schema).
    pub fn push(&mut self, problem: FieldProblem) {
        self.problems.push(problem);
    }

    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }

    /// Every problem found, or nothing.
    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(std::mem::take(&mut self.problems)))
        }
    }

    /// Every problem found, or the required values read earlier, unwrapped. The getters
    /// record a problem whenever they return `None`, so the fallback below is never expected;
    /// it exists so that no input can reach a panic if a getter ever forgets to.
    pub fn complete<T: Required>(&mut self, values: T) -> Result<T::Value, ApiError> {
        self.finish()?;
        values.present().ok_or_else(|| {
            ApiError::Validation(vec![FieldProblem {
                kind: "missing",
                loc: vec![json!("body")],
                msg: "Field required".into(),
                input: Value::Object(self.map.clone()),
            }])
        })
    }
}

/// Required fields read from a body: one `Option` or a tuple of them, all present or not.
pub trait Required {
    type Value;
    fn present(self) -> Option<Self::Value>;
}

impl<A> Required for Option<A> {
    type Value = A;
    fn present(self) -> Option<A> {
        self
    }
}

impl<A, B> Required for (Option<A>, Option<B>) {
    type Value = (A, B);
    fn present(self) -> Option<(A, B)> {
        Some((self.0?, self.1?))
    }
}

impl<A, B, C> Required for (Option<A>, Option<B>, Option<C>) {
    type Value = (A, B, C);
    fn present(self) -> Option<(A, B, C)> {
        Some((self.0?, self.1?, self.2?))
    }
}
