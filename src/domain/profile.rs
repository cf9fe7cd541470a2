//! Operator-declared custom profile fields (`[profile_fields]` in the config), e.g.
//! `display_name = "string"`. They are set at register and through `PATCH /me`, returned in the
//! user object and carried in hook payloads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The stored values of a user's custom fields, by name.
pub type Profile = Map<String, Value>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
}

impl FieldType {
    /// The value a user gets when the field was never set (pydantic-style zero values).
    fn zero(self) -> Value {
        match self {
            FieldType::String => Value::String(String::new()),
            FieldType::Integer => Value::from(0),
            FieldType::Number => Value::from(0.0),
            FieldType::Boolean => Value::Bool(false),
        }
    }

    pub fn accepts(self, value: &Value) -> bool {
        match self {
            FieldType::String => value.is_string(),
            FieldType::Integer => value.is_i64() || value.is_u64(),
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
        }
    }

    /// The pydantic error `type` for a value of the wrong type.
    pub fn error_type(self) -> &'static str {
        match self {
            FieldType::String => "string_type",
            FieldType::Integer => "int_type",
            FieldType::Number => "float_type",
            FieldType::Boolean => "bool_type",
        }
    }

    pub fn error_message(self) -> &'static str {
        match self {
            FieldType::String => "Input should be a valid string",
            FieldType::Integer => "Input should be a valid integer",
            FieldType::Number => "Input should be a valid number",
            FieldType::Boolean => "Input should be a valid boolean",
        }
    }
}

#[derive(Debug, PartialEq)]
pub struct ProfileError {
    pub field: String,
    pub expected: FieldType,
    pub input: Value,
}

/// The declared fields, in name order.
#[derive(Clone, Debug, Default)]
pub struct ProfileSchema {
    fields: BTreeMap<String, FieldType>,
}

impl ProfileSchema {
    pub fn new(fields: BTreeMap<String, FieldType>) -> Self {
        Self { fields }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    pub fn field_type(&self, name: &str) -> Option<FieldType> {
        self.fields.get(name).copied()
    }

    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// Picks the declared fields out of a request body, type-checking each one present.
    /// Keys that are not declared are left for the caller to ignore or reject.
    pub fn extract(&self, body: &Map<String, Value>) -> Result<Profile, Vec<ProfileError>> {
        let mut profile = Profile::new();
        let mut errors = Vec::new();
        for (name, ty) in &self.fields {
            if let Some(value) = body.get(name) {
                if ty.accepts(value) {
                    profile.insert(name.clone(), value.clone());
                } else {
                    errors.push(ProfileError {
                        field: name.clone(),
                        expected: *ty,
                        input: value.clone(),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(profile)
        } else {
            Err(errors)
        }
    }

    /// What a user object shows: stored values, zero values for fields never set, and nothing
    /// for fields the operator has since removed from the config.
    pub fn complete(&self, stored: &Profile) -> Profile {
        self.fields
            .iter()
            .map(|(name, ty)| {
                let value = stored
                    .get(name)
                    .filter(|v| ty.accepts(v))
                    .cloned()
                    .unwrap_or_else(|| ty.zero());
                (name.clone(), value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> ProfileSchema {
        ProfileSchema::new(BTreeMap::from([
            ("display_name".to_owned(), FieldType::String),
            ("age".to_owned(), FieldType::Integer),
        ]))
    }

    #[test]
    fn extract_keeps_declared_fields_and_type_checks_them() {
        let body = json!({"display_name": "Al", "other": 1});
        let profile = schema().extract(body.as_object().unwrap()).unwrap();
        assert_eq!(Value::Object(profile), json!({"display_name": "Al"}));

        let bad = json!({"display_name": null, "age": "x"});
        let errors = schema().extract(bad.as_object().unwrap()).unwrap_err();
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn complete_fills_zero_values() {
        let stored = json!({"age": 3}).as_object().unwrap().clone();
        assert_eq!(
            Value::Object(schema().complete(&stored)),
            json!({"age": 3, "display_name": ""})
        );
    }
}
