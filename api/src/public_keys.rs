//! The public keys bearer tokens may be signed with: those of `auth.public_keys` and
//! `auth.jwks_file`, read once at start, and what a JWKS document holds (the file's, or the one
//! of `auth.jwks_url`). Each is named by its `kid` and pinned to one algorithm, so a token
//! never chooses how its key is used.

use crate::settings::{AuthSettings, PublicKeyAlgorithm, PublicKeySettings};
use anyhow::{anyhow, bail};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::path::Path;

/// One trusted public key.
#[derive(Clone)]
pub struct PublicKey {
    /// The one algorithm a token signed with it may name.
    pub algorithm: Algorithm,
    /// The key.
    pub key: DecodingKey,
}

/// The trusted public keys by `kid`.
pub type PublicKeys = HashMap<String, PublicKey>;

impl PublicKeyAlgorithm {
    /// The `alg` of the tokens a key of this kind signs.
    pub fn algorithm(self) -> Algorithm {
        match self {
            PublicKeyAlgorithm::RS256 => Algorithm::RS256,
            PublicKeyAlgorithm::ES256 => Algorithm::ES256,
            PublicKeyAlgorithm::EdDSA => Algorithm::EdDSA,
        }
    }
}

/// Reads every key the settings name. A file that cannot be read, a PEM key that is not a
/// public key of its algorithm, a JWKS document without one usable key, or a `kid` named twice
/// is an error that says which.
pub fn load(settings: &AuthSettings) -> anyhow::Result<PublicKeys> {
    let mut keys = PublicKeys::new();
    for (kid, configured) in &settings.public_keys {
        let key = from_pem(configured).map_err(|e| anyhow!("auth.public_keys.{kid}: {e}"))?;
        keys.insert(kid.clone(), key);
    }
    if let Some(path) = &settings.jwks_file {
        let at = |e| anyhow!("auth.jwks_file {}: {e}", path.display());
        for (kid, key) in from_jwks_file(path).map_err(at)? {
            if keys.insert(kid.clone(), key).is_some() {
                return Err(at(anyhow!("the kid {kid:?} is also in auth.public_keys")));
            }
        }
    }
    Ok(keys)
}

/// The public key of one PEM file (`-----BEGIN PUBLIC KEY-----`).
fn from_pem(configured: &PublicKeySettings) -> anyhow::Result<PublicKey> {
    let path = &configured.pem_file;
    let pem = std::fs::read(path).map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    if String::from_utf8_lossy(&pem).contains("PRIVATE KEY") {
        bail!("{} holds a private key: configure its public half only", path.display());
    }
    let algorithm = configured.algorithm;
    let key = match algorithm {
        PublicKeyAlgorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
        PublicKeyAlgorithm::ES256 => DecodingKey::from_ec_pem(&pem),
        PublicKeyAlgorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
    }
    .map_err(|_| anyhow!("{} is not a PEM public key for {algorithm:?}", path.display()))?;
    Ok(PublicKey { algorithm: algorithm.algorithm(), key })
}

/// The usable keys of a JWKS file.
fn from_jwks_file(path: &Path) -> anyhow::Result<Vec<(String, PublicKey)>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("cannot read it: {e}"))?;
    from_jwks(&text, &path.display().to_string())
}

/// The usable keys of a JWKS document (`{"keys": [...]}`) read from `source`. A key that is not
/// for signatures with RS256, ES256 or EdDSA (an encryption key, another algorithm, a symmetric
/// key) or has no `kid` is skipped with a warning; a document left without any key is an error.
pub fn from_jwks(text: &str, source: &str) -> anyhow::Result<Vec<(String, PublicKey)>> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_str(text).map_err(|e| anyhow!("not a JWKS document: {e}"))?;
    let mut keys = Vec::new();
    for (index, value) in document.keys.into_iter().enumerate() {
        match usable(value) {
            Ok(key) => keys.push(key),
            Err(why) => tracing::warn!(source, index, "JWKS key skipped: {why}"),
        }
    }
    if keys.is_empty() {
        bail!("it holds no RS256, ES256 or EdDSA signature key with a kid");
    }
    Ok(keys)
}

/// One JWK as a trusted key, or why it is not one.
fn usable(value: serde_json::Value) -> Result<(String, PublicKey), String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("not a known JWK: {e}"))?;
    let kid = jwk.common.key_id.clone().ok_or("it has no kid")?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err(format!("{kid}: it is for encryption"));
    }
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
            if p.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        (AlgorithmParameters::OctetKeyPair(p), None | Some(KeyAlgorithm::EdDSA))
            if p.curve == EllipticCurve::Ed25519 =>
        {
            Algorithm::EdDSA
        }
        _ => return Err(format!("{kid}: not an RS256, ES256 (P-256) or EdDSA (Ed25519) key")),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| format!("{kid}: malformed key"))?;
    Ok((kid, PublicKey { algorithm, key }))
}

/// The path of a test-only key of `tests/keys/`.
#[cfg(test)]
pub(crate) fn test_key_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    Path::new(&dir).join("../tests/keys").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::PublicKeyAlgorithm::{ES256, EdDSA, RS256};
    use serde_json::{Value, json};

    /// Settings with one PEM key, `k`.
    fn pem(algorithm: PublicKeyAlgorithm, file: &str) -> AuthSettings {
        let key = PublicKeySettings { algorithm, pem_file: test_key_file(file) };
        AuthSettings { public_keys: [("k".to_string(), key)].into(), ..AuthSettings::default() }
    }

    /// Settings with a JWKS file holding `document`.
    fn jwks(document: &str) -> AuthSettings {
        let file = std::env::temp_dir().join(format!("ls-jwks-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&file, document).unwrap();
        AuthSettings { jwks_file: Some(file), ..AuthSettings::default() }
    }

    /// The JWKS document of the test keys.
    fn test_jwks() -> Value {
        serde_json::from_str(&std::fs::read_to_string(test_key_file("jwks.json")).unwrap()).unwrap()
    }

    #[test]
    fn a_jwks_document_gives_its_signature_keys_and_skips_the_rest() {
        let mut document = test_jwks();
        let rsa = document["keys"][0].clone();
        let mut extra = vec![
            json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
            json!({"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"}),
        ];
        for (kid, change) in [
            ("encryption", json!({"use": "enc"})),
            ("ps256", json!({"alg": "PS256"})),
            ("claims-es256", json!({"alg": "ES256"})),
        ] {
            let mut key = rsa.clone();
            key.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
            key["kid"] = json!(kid);
            extra.push(key);
        }
        let mut unnamed = rsa.clone();
        unnamed.as_object_mut().unwrap().remove("kid");
        extra.push(unnamed);
        document["keys"].as_array_mut().unwrap().extend(extra);

        let keys = load(&jwks(&document.to_string())).unwrap();
        let mut found: Vec<_> =
            keys.iter().map(|(kid, key)| (kid.as_str(), key.algorithm)).collect();
        found.sort_by_key(|&(kid, _)| kid);
        assert_eq!(
            found,
            [("ec-1", Algorithm::ES256), ("ed-1", Algorithm::EdDSA), ("rsa-2", Algorithm::RS256)]
        );
    }

    #[test]
    fn an_unusable_key_is_refused_by_name() {
        let mut twice = pem(RS256, "rsa-1.pub.pem");
        twice.public_keys.insert("ec-1".into(), twice.public_keys["k"].clone());
        twice.jwks_file = Some(test_key_file("jwks.json"));
        let cases = [
            (pem(RS256, "missing.pub.pem"), "auth.public_keys.k: cannot read "),
            (pem(RS256, "rsa-1.pem"), "holds a private key: configure its public half only"),
            (pem(ES256, "rsa-1.pub.pem"), "rsa-1.pub.pem is not a PEM public key for ES256"),
            (pem(EdDSA, "ec-1.pub.pem"), "ec-1.pub.pem is not a PEM public key for EdDSA"),
            (jwks("{}"), "auth.jwks_file "),
            (jwks("{}"), ": not a JWKS document"),
            (jwks(r#"{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}"#), "no RS256, ES256"),
            (twice, r#"the kid "ec-1" is also in auth.public_keys"#),
        ];
        for (settings, expected) in cases {
            let error = load(&settings).err().expect("refused").to_string();
            assert!(error.contains(expected), "{error:?} does not say {expected:?}");
        }
    }
}
