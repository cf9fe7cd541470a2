//! Sealing tenant hook secrets at rest: XChaCha20-Poly1305 (random 192-bit nonces, so no nonce
//! bookkeeping across replicas) with a key derived by HKDF-SHA256 from the server's
//! `secret_key`. The tenant and the secret's name are the associated data, so a sealed value
//! copied to another tenant's or another key's row does not open.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

const NONCE_LEN: usize = 24;
/// Domain separation: the same `secret_key` also signs tokens; this key is only for sealing.
const HKDF_INFO: &[u8] = b"hookauth tenant hook secrets v1";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Wrong key (the server's `secret_key` changed), or a tampered or moved value.
    #[error("a sealed secret could not be opened (secret_key changed or the value was altered)")]
    Open,
    #[error("sealing failed")]
    Seal,
}

/// The AEAD key. Never printed.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<key>)")
    }
}

impl SecretBox {
    pub fn new(server_secret: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(None, server_secret);
        let mut key = [0u8; 32];
        hk.expand(HKDF_INFO, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// `nonce || ciphertext+tag`.
    pub fn seal(&self, tenant: &str, key: &str, value: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(tenant, key);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, tenant: &str, key: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let aad = associated_data(tenant, key);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Open)
    }
}

/// Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
fn associated_data(tenant: &str, key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(tenant.len() + key.len() + 8);
    aad.extend_from_slice(&(tenant.len() as u32).to_be_bytes());
    aad.extend_from_slice(tenant.as_bytes());
    aad.extend_from_slice(&(key.len() as u32).to_be_bytes());
    aad.extend_from_slice(key.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_tenant_key_and_server_secret() {
        let b = SecretBox::new(b"0123456789abcdef0123456789abcdef");
        let sealed = b.seal("acme", "api_key", b"sk_live_1").unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"sk_live_1"));
        assert_eq!(b.open("acme", "api_key", &sealed).unwrap(), b"sk_live_1");
        assert!(b.open("other", "api_key", &sealed).is_err());
        assert!(b.open("acme", "other_key", &sealed).is_err());
        let other = SecretBox::new(b"another server secret, 32 bytes!");
        assert!(other.open("acme", "api_key", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(b.open("acme", "api_key", &tampered).is_err());
    }
}
