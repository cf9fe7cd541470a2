//! OpenID Connect: discovery (cached), the issuer's signing keys (cached, refetched when an
//! unknown key id appears) and the verification of an id_token.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use super::ProviderError;
use super::client::{ClientAuth, ProviderClient};

/// Discovery documents and key sets change rarely; keys rotate with overlap.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// A token signed with a key we do not know triggers a refetch, at most this often.
const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// After a failed discovery, requests fail at once for this long instead of each waiting for
/// the provider again (a flood of authorize calls against a provider that is down costs one
/// outbound call per interval).
const RETRY_DISCOVERY_AFTER: Duration = Duration::from_secs(5);
/// Clock difference tolerated on `exp`, `iat` and `nbf`.
const LEEWAY_SECS: u64 = 60;

/// What discovery says, as used.
#[derive(Clone, Debug)]
pub(super) struct Discovery {
    pub(super) authorization_endpoint: String,
    pub(super) token_endpoint: String,
    pub(super) userinfo_endpoint: Option<String>,
    pub(super) jwks_uri: String,
    pub(super) client_auth: ClientAuth,
}

#[derive(Deserialize)]
struct DiscoveryDoc {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// One issuer's cached discovery and keys.
#[derive(Debug, Default)]
pub(super) struct Issuer {
    discovery: Mutex<Option<(Instant, Discovery)>>,
    discovery_failed: Mutex<Option<Instant>>,
    keys: Mutex<Option<(Instant, JwkSet)>>,
}

/// The claims of an id_token that are used; the rest are ignored.
#[derive(Debug, Deserialize)]
pub(super) struct IdClaims {
    pub(super) sub: String,
    #[serde(default)]
    pub(super) nonce: Option<String>,
    #[serde(default)]
    pub(super) aud: Value,
    #[serde(default)]
    pub(super) azp: Option<String>,
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) email_verified: Option<Value>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) picture: Option<String>,
}

impl Issuer {
    /// Discovery for `issuer`, fetched once an hour. The document must name the issuer exactly
    /// (OpenID Connect Discovery 4.3): a document served for another issuer is refused.
    pub(super) async fn discovery(
        &self,
        client: &ProviderClient,
        issuer: &str,
    ) -> Result<Discovery, ProviderError> {
        let mut cached = self.discovery.lock().await;
        if let Some((at, doc)) = cached.as_ref()
            && at.elapsed() < CACHE_FOR
        {
            return Ok(doc.clone());
        }
        if let Some(at) = *self.discovery_failed.lock().await
            && at.elapsed() < RETRY_DISCOVERY_AFTER
        {
            return Err(ProviderError::Unreachable {
                step: "discovery",
                reason: "failed moments ago; not asked again yet".into(),
            });
        }
        let found = self.fetch_discovery(client, issuer).await;
        *self.discovery_failed.lock().await = found.is_err().then(Instant::now);
        let found = found?;
        *cached = Some((Instant::now(), found.clone()));
        Ok(found)
    }

    async fn fetch_discovery(
        &self,
        client: &ProviderClient,
        issuer: &str,
    ) -> Result<Discovery, ProviderError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let raw = client.get_json(&url, None, "discovery").await?;
        let doc: DiscoveryDoc = serde_json::from_value(raw)
            .map_err(|_| ProviderError::NotJson { step: "discovery" })?;
        if doc.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(ProviderError::IdToken(format!(
                "discovery names another issuer ({} instead of {issuer})",
                clip(&doc.issuer)
            )));
        }
        for url in [
            Some(&doc.authorization_endpoint),
            Some(&doc.token_endpoint),
            doc.userinfo_endpoint.as_ref(),
            Some(&doc.jwks_uri),
        ]
        .into_iter()
        .flatten()
        {
            super::check_url(url).map_err(|e| ProviderError::Config(format!("discovery: {e}")))?;
        }
        // Basic is the default when the document says nothing (RFC 8414 2).
        let client_auth = match &doc.token_endpoint_auth_methods_supported {
            Some(methods)
                if !methods.iter().any(|m| m == "client_secret_basic")
                    && methods.iter().any(|m| m == "client_secret_post") =>
            {
                ClientAuth::Post
            }
            _ => ClientAuth::Basic,
        };
        Ok(Discovery {
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            userinfo_endpoint: doc.userinfo_endpoint,
            jwks_uri: doc.jwks_uri,
            client_auth,
        })
    }

    /// Verifies an id_token: RS256 or ES256 only, signed by a key the issuer publishes, for
    /// this client (`aud`, and `azp` when there are several audiences), from this issuer, not
    /// expired, and carrying the nonce this sign-in sent.
    pub(super) async fn verify(
        &self,
        client: &ProviderClient,
        jwks_uri: &str,
        token: &str,
        accepted_issuers: &[&str],
        client_id: &str,
        nonce: &str,
    ) -> Result<IdClaims, ProviderError> {
        // `alg: none` and unknown algorithms fail here already: they are not `Algorithm`s.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| ProviderError::IdToken(format!("unreadable header: {e}")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(ProviderError::IdToken(format!(
                "algorithm {:?} is not accepted (RS256 or ES256 only)",
                header.alg
            )));
        }
        let jwk = self
            .key_for(client, jwks_uri, header.kid.as_deref(), header.alg)
            .await?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| ProviderError::IdToken(format!("unusable key: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.set_audience(&[client_id]);
        validation.set_issuer(accepted_issuers);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
            .map_err(|e| ProviderError::IdToken(e.to_string()))?
            .claims;
        if let Value::Array(audiences) = &claims.aud
            && audiences.len() > 1
            && claims.azp.as_deref() != Some(client_id)
        {
            return Err(ProviderError::IdToken(
                "several audiences and azp is not this client".into(),
            ));
        }
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(ProviderError::IdToken("nonce does not match".into()));
        }
        Ok(claims)
    }

    /// The published key `kid` names (or the only one for the algorithm when there is no
    /// `kid`), refetching the set once when it is not there: the issuer may have rotated.
    async fn key_for(
        &self,
        client: &ProviderClient,
        jwks_uri: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Jwk, ProviderError> {
        let mut cached = self.keys.lock().await;
        let stale = cached
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= CACHE_FOR);
        if !stale && let Some(found) = cached.as_ref().and_then(|(_, set)| pick(set, kid, alg)) {
            return Ok(found);
        }
        let may_refetch = cached
            .as_ref()
            .is_none_or(|(at, _)| stale || at.elapsed() >= REFETCH_AFTER);
        if may_refetch {
            let raw = client.get_json(jwks_uri, None, "jwks").await?;
            // Key by key: a set may also hold keys this server cannot use (other algorithms,
            // encryption keys), which must not make the usable ones unreadable.
            let keys = raw
                .get("keys")
                .and_then(Value::as_array)
                .ok_or(ProviderError::NotJson { step: "jwks" })?
                .iter()
                .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
                .collect();
            *cached = Some((Instant::now(), JwkSet { keys }));
        }
        cached
            .as_ref()
            .and_then(|(_, set)| pick(set, kid, alg))
            .ok_or_else(|| {
                ProviderError::IdToken(format!(
                    "no published key {} for {alg:?}",
                    kid.map(clip).unwrap_or_else(|| "(no kid)".into())
                ))
            })
    }
}

/// A key usable for `alg`: its type must fit, and its own `alg`, if it names one, must be it.
fn pick(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    use jsonwebtoken::jwk::{AlgorithmParameters, KeyAlgorithm, PublicKeyUse};
    let fits = |k: &&Jwk| {
        let for_signing = matches!(
            k.common.public_key_use,
            None | Some(PublicKeyUse::Signature)
        );
        let type_fits = match alg {
            Algorithm::RS256 => matches!(k.algorithm, AlgorithmParameters::RSA(_)),
            Algorithm::ES256 => matches!(k.algorithm, AlgorithmParameters::EllipticCurve(_)),
            _ => false,
        };
        let alg_fits = match k.common.key_algorithm {
            None => true,
            Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
            Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
            Some(_) => false,
        };
        for_signing && type_fits && alg_fits
    };
    match kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() == Some(kid))
            .find(fits)
            .cloned(),
        None => {
            let mut candidates = set.keys.iter().filter(fits);
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => Some(only.clone()),
                _ => None,
            }
        }
    }
}

/// At most 80 characters of provider-supplied text, for a log line.
fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}
