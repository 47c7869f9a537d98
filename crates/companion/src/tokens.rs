//! Token minting and hashing: the only place random secrets are made and the
//! only place they are turned into what the database keeps.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::sensitive::Sensitive;

/// Prefix of access tokens the companion issues.
pub const ACCESS_PREFIX: &str = "spor_oat_";
/// Prefix of refresh tokens the companion issues.
pub const REFRESH_PREFIX: &str = "spor_ort_";
/// Prefix of Spor personal access tokens.
pub const PAT_PREFIX: &str = "spor_pat_";

/// `n` random bytes, base64url without padding.
pub fn random_b64(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// `n` random bytes as lowercase hex; used for short, typeable ids.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex(&buf)
}

/// A new secret with `prefix` and 32 random bytes.
pub fn mint(prefix: &str) -> Sensitive<String> {
    Sensitive::new(format!("{prefix}{}", random_b64(32)))
}

/// The SHA-256 of a secret as lowercase hex: what the database stores.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

pub use crate::sensitive::constant_time_eq;

/// Lowercase hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// Derives an encryption key from a secret the database does not store;
/// domain-separated so it is never equal to the stored hash.
fn seal_key(secret: &str) -> Key {
    let mut h = Sha256::new();
    h.update(b"spor-companion/seal/v1\0");
    h.update(secret.as_bytes());
    h.finalize()
}

/// Encrypts `plaintext` so only a holder of `secret` can read it back.
pub fn seal(secret: &str, plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(&seal_key(secret));
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut out = nonce.to_vec();
    // Encryption with a fresh key and nonce cannot fail for in-memory input.
    out.extend(
        cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .unwrap_or_default(),
    );
    out
}

/// Decrypts what [`seal`] produced with the same `secret`.
pub fn open(secret: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 12 {
        return None;
    }
    let (nonce, body) = sealed.split_at(12);
    ChaCha20Poly1305::new(&seal_key(secret))
        .decrypt(Nonce::from_slice(nonce), body)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_the_same_secret() {
        let sealed = seal("spor_ort_one", b"pair");
        assert_eq!(open("spor_ort_one", &sealed).as_deref(), Some(&b"pair"[..]));
        assert_eq!(open("spor_ort_two", &sealed), None);
        assert_eq!(open("spor_ort_one", &sealed[..5]), None);
    }

    #[test]
    fn minted_tokens_have_prefix_and_43_chars_of_entropy() {
        let t = mint(ACCESS_PREFIX);
        let t = t.expose();
        assert!(t.starts_with("spor_oat_"));
        assert_eq!(t.len(), "spor_oat_".len() + 43);
        assert_ne!(mint(ACCESS_PREFIX).expose(), t);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
