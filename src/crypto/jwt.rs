use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Claims of an access token (API.md "Token pair", plus `tid`, the tenant).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub tid: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(rename = "type")]
    pub token_type: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub family_id: String,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub aud: Option<String>,
}

pub const ACCESS_TYPE: &str = "access";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JwtError {
    #[error("token is invalid: {0}")]
    Invalid(String),
    #[error("token is not an access token")]
    WrongType,
}

#[derive(Clone, Debug)]
pub struct JwtSettings {
    pub algorithm: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_seconds: u64,
}

/// Signing and verification with one pinned HMAC algorithm: a token whose header names any other
/// algorithm (including `none`) is rejected before its signature is looked at.
#[derive(Clone)]
pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// For the server's own short-lived tokens (OAuth states): no issuer or audience, which
    /// are for tokens other services read.
    internal: Validation,
    issuer: Option<String>,
    audience: Option<String>,
    /// Keys values derived from the secret ([`JwtKeys::mac`]).
    mac: Hmac<sha2::Sha256>,
}

impl JwtKeys {
    pub fn new(secret: &[u8], settings: &JwtSettings) -> Self {
        let algorithm = match settings.algorithm.as_str() {
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            _ => Algorithm::HS256,
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = settings.leeway_seconds;
        // jsonwebtoken checks `iss`/`aud` only when present unless they are required.
        let mut required = vec!["exp", "iat", "sub"];
        required.extend(settings.issuer.as_ref().map(|_| "iss"));
        required.extend(settings.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        validation.validate_exp = true;
        match &settings.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &settings.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let mut internal = Validation::new(algorithm);
        internal.leeway = settings.leeway_seconds;
        internal.set_required_spec_claims(&["exp", "iat", "sub"]);
        internal.validate_aud = false;
        // The caller checks `exp` against the server's clock (the one every expiry uses).
        internal.validate_exp = false;
        Self {
            algorithm,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            internal,
            mac: Hmac::new_from_slice(secret).expect("HMAC takes keys of any length"),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        }
    }

    pub fn encode(&self, mut claims: AccessClaims) -> String {
        claims.iss = self.issuer.clone();
        claims.aud = self.audience.clone();
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .expect("HMAC signing of serialisable claims cannot fail")
    }

    /// Signs the server's own short-lived token (an OAuth state): the caller's claims must
    /// carry `exp`, `iat`, `sub` and a `type` no access token has.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.encoding)
            .expect("HMAC signing of serialisable claims cannot fail")
    }

    /// Checks a token [`JwtKeys::sign`] made: signature and algorithm, and that `exp` is
    /// there; the caller compares it with its clock.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<T, JwtError> {
        jsonwebtoken::decode::<T>(token, &self.decoding, &self.internal)
            .map(|data| data.claims)
            .map_err(|e| JwtError::Invalid(e.to_string()))
    }

    /// A value only the holder of the secret can compute from `input` (base64url of
    /// HMAC-SHA256 over `label:input`): the OAuth PKCE verifier, recomputed at the callback
    /// from the state's nonce so no replica has to store it.
    pub fn mac(&self, label: &str, input: &str) -> String {
        use base64::Engine as _;
        let mut mac = self.mac.clone();
        mac.update(label.as_bytes());
        mac.update(b":");
        mac.update(input.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Checks signature, algorithm, `exp` (with leeway), `iat`, issuer and audience, then the
    /// token type. Revocation is the caller's job: it needs the database.
    pub fn decode_access(&self, token: &str) -> Result<AccessClaims, JwtError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| JwtError::Invalid(e.to_string()))?;
        let claims = data.claims;
        if claims.token_type != ACCESS_TYPE || claims.extra.contains_key("purpose") {
            return Err(JwtError::WrongType);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> JwtSettings {
        JwtSettings {
            algorithm: "HS256".into(),
            issuer: Some("hookauth".into()),
            audience: None,
            leeway_seconds: 0,
        }
    }

    fn claims(exp_offset: i64) -> AccessClaims {
        let now = unix_now();
        AccessClaims {
            sub: "u".into(),
            tid: "default".into(),
            exp: now + exp_offset,
            iat: now,
            jti: "j".into(),
            token_type: ACCESS_TYPE.into(),
            roles: vec![],
            extra: Default::default(),
            family_id: "f".into(),
            auth_time: now,
            iss: None,
            aud: None,
        }
    }

    fn unix_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let keys = JwtKeys::new(&[7; 32], &settings());
        let token = keys.encode(claims(60));
        assert_eq!(keys.decode_access(&token).unwrap().sub, "u");

        let other = JwtKeys::new(&[8; 32], &settings());
        assert!(other.decode_access(&token).is_err());
        assert!(keys.decode_access(&format!("{token}x")).is_err());
        assert!(keys.decode_access(&keys.encode(claims(-120))).is_err());
    }

    #[test]
    fn pinned_algorithm_rejects_other_algorithms() {
        let keys = JwtKeys::new(&[7; 32], &settings());
        let hs512 = JwtKeys::new(
            &[7; 32],
            &JwtSettings {
                algorithm: "HS512".into(),
                ..settings()
            },
        );
        assert!(keys.decode_access(&hs512.encode(claims(60))).is_err());
    }

    #[test]
    fn wrong_issuer_and_purpose_tokens_are_rejected() {
        let keys = JwtKeys::new(&[7; 32], &settings());
        let no_iss = JwtKeys::new(
            &[7; 32],
            &JwtSettings {
                issuer: None,
                ..settings()
            },
        );
        assert!(keys.decode_access(&no_iss.encode(claims(60))).is_err());

        let mut purposeful = claims(60);
        purposeful
            .extra
            .insert("purpose".into(), "password_reset".into());
        assert_eq!(
            keys.decode_access(&keys.encode(purposeful)).unwrap_err(),
            JwtError::WrongType
        );
    }
}
