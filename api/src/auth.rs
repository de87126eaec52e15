//! Bearer tokens (JWT) and what each role may see and do (API.md, "Who is calling").

use crate::error::ApiError;
use crate::public_keys::{self, PublicKey, PublicKeys};
use crate::remote_keys::RemoteKeys;
use crate::settings::AuthSettings;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use livesessions_domain::text::check_characters;
use livesessions_domain::{ClientId, ProviderId, Role, SessionSnapshot};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The claims of a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The person's or service's id (not empty).
    pub sub: String,
    /// Their role.
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// When it was issued, seconds since the epoch (optional; the lifetime counts from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Verifies bearer tokens: HS256 ones with the shared secret, RS256, ES256 and EdDSA ones with
/// the public key their `kid` names (configured, or of the JWKS URL), in the one algorithm of
/// that key; with a leeway for clock skew, the configured `iss` and `aud`, and a maximum
/// lifetime. Mints HS256 tokens.
#[derive(Clone)]
pub struct JwtKeys {
    shared: Option<SharedSecret>,
    public: Arc<PublicKeys>,
    remote: Option<Arc<RemoteKeys>>,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
    max_lifetime: u64,
}

/// The HS256 secret, for development and for services that share it.
#[derive(Clone)]
struct SharedSecret {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// What [`JwtKeys::mint`] signs: the claims, and the configured `iss` and `aud`.
#[derive(Serialize)]
struct MintedClaims<'a> {
    #[serde(flatten)]
    claims: &'a Claims,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// What a person is told about a token that does not verify: never the parser's own words.
fn refusal(error: &jsonwebtoken::errors::Error) -> ApiError {
    use jsonwebtoken::errors::ErrorKind;
    let message = match error.kind() {
        ErrorKind::ExpiredSignature => "the bearer token has expired".to_string(),
        ErrorKind::ImmatureSignature => "the bearer token is not valid yet (nbf)".to_string(),
        ErrorKind::InvalidSignature => "the bearer token's signature does not verify".to_string(),
        ErrorKind::InvalidIssuer => "the bearer token's iss is not auth.issuer".to_string(),
        ErrorKind::InvalidAudience => {
            "the bearer token's aud does not name auth.audience".to_string()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("the bearer token has no {claim} claim"),
        _ => "the bearer token is not a well-formed JWT with the expected claims".to_string(),
    };
    ApiError::Unauthorized(message)
}

impl JwtKeys {
    /// Keys from the `auth.*` settings, reading the public keys they name; an empty secret or a
    /// key that cannot be used is an error that says which.
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        if settings.jwt_secret.as_deref() == Some("") {
            anyhow::bail!("auth.jwt_secret is empty: set a secret, or leave the key out");
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = settings.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if let Some(audience) = &settings.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        let shared = settings.secret().map(|secret| SharedSecret {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        });
        Ok(Self {
            shared,
            public: Arc::new(public_keys::load(settings)?),
            remote: None,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            max_lifetime: settings.max_token_lifetime.as_secs(),
        })
    }

    /// These keys with those of `auth.jwks_url`, when set: fetched now (an error when that
    /// fails) and kept fresh from then on by a task of the current runtime.
    pub async fn with_jwks_url(mut self, settings: &AuthSettings) -> anyhow::Result<Self> {
        if let Some(url) = &settings.jwks_url {
            self.remote = Some(RemoteKeys::start(url, settings).await?);
        }
        Ok(self)
    }

    /// Keys for `secret`, with the default leeway and maximum lifetime.
    pub fn from_secret(secret: &str) -> Self {
        Self::from_settings(&AuthSettings {
            jwt_secret: Some(secret.to_string()),
            ..AuthSettings::default()
        })
        .expect("a secret alone is a complete configuration")
    }

    /// An HS256 token for `sub` in `role`, valid for `ttl` from now, with the configured `iss`
    /// and `aud`; `None` when HS256 tokens are not accepted (public keys and no secret).
    pub fn mint(&self, sub: &str, role: Role, ttl: Duration) -> Option<String> {
        let shared = self.shared.as_ref()?;
        let now = unix_now();
        let claims =
            Claims { sub: sub.to_string(), role, exp: now + ttl.as_secs(), iat: Some(now) };
        let minted = MintedClaims {
            claims: &claims,
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &minted, &shared.encoding)
            .expect("HS256 signing of plain claims cannot fail");
        Some(token)
    }

    /// The public key named `kid`: configured, or of the JWKS URL.
    fn public_key(&self, kid: &str) -> Option<PublicKey> {
        let remote = || self.remote.as_ref().and_then(|remote| remote.get(kid));
        self.public.get(kid).cloned().or_else(remote)
    }

    /// The key a token is verified with: the shared secret for HS256, else the public key its
    /// `kid` names, when the token's `alg` is that key's.
    fn key_for(&self, header: &Header) -> Result<PublicKey, ApiError> {
        if header.alg == Algorithm::HS256 {
            let shared = self.shared.as_ref().ok_or_else(|| {
                ApiError::Unauthorized("HS256 bearer tokens are not accepted here".into())
            })?;
            return Ok(PublicKey { algorithm: Algorithm::HS256, key: shared.decoding.clone() });
        }
        let key = header.kid.as_deref().and_then(|kid| self.public_key(kid)).ok_or_else(|| {
            ApiError::Unauthorized("the bearer token's kid names no key this service trusts".into())
        })?;
        if key.algorithm != header.alg {
            return Err(ApiError::Unauthorized(format!(
                "the bearer token's key signs {:?} tokens only",
                key.algorithm
            )));
        }
        Ok(key)
    }

    /// Like [`JwtKeys::verify`]; a token naming a `kid` no key has first has the JWKS URL
    /// fetched again (at most once every `auth.jwks_min_interval`).
    pub async fn verify_fresh(&self, token: &str) -> Result<Claims, ApiError> {
        if let Some(remote) = &self.remote {
            let header = jsonwebtoken::decode_header(token).ok();
            let kid = header.filter(|h| h.alg != Algorithm::HS256).and_then(|h| h.kid);
            if kid.is_some_and(|kid| self.public_key(&kid).is_none()) {
                remote.refresh_for_unknown_kid().await;
            }
        }
        self.verify(token)
    }

    /// The claims of a valid token: signed with the key for its `alg` and `kid`, not expired
    /// (nor before `nbf`) by more than the leeway, with a subject, the configured `iss` and
    /// `aud`, and valid no longer than the maximum lifetime, counted from `iat` or from now,
    /// whichever is earlier.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| refusal(&e))?;
        let key = self.key_for(&header)?;
        let mut validation = self.validation.clone();
        validation.algorithms = vec![key.algorithm];
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| refusal(&e))?
            .claims;
        if claims.sub.is_empty() || check_characters("sub", &claims.sub, false).is_err() {
            return Err(ApiError::Unauthorized(
                "the bearer token's sub is empty or not text".into(),
            ));
        }
        let now = unix_now();
        let from = claims.iat.map_or(now, |iat| iat.min(now));
        if claims.exp.saturating_sub(from) > self.max_lifetime + self.validation.leeway {
            return Err(ApiError::Unauthorized(
                "the bearer token is valid for longer than auth.max_token_lifetime allows".into(),
            ));
        }
        Ok(claims)
    }
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let header = headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized("an Authorization: Bearer <token> header is required".into())
    })?;
    header
        .to_str()
        .ok()
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be Bearer <token>".into())
        })
}

/// The verified caller of a `/v1` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Their id (a UUID for clients and providers).
    pub sub: String,
    /// Their role.
    pub role: Role,
}

impl Caller {
    /// Answers `403` unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) { Ok(()) } else { Err(ApiError::Forbidden) }
    }

    /// Whether the caller is this client.
    pub fn is_client(&self, id: ClientId) -> bool {
        self.role == Role::Client && self.sub == id.to_string()
    }

    /// Whether the caller is this provider.
    pub fn is_provider(&self, id: ProviderId) -> bool {
        self.role == Role::Provider && self.sub == id.to_string()
    }

    /// Whether the caller may see this session: its client, its provider, services, operators.
    pub fn may_see(&self, session: &SessionSnapshot) -> bool {
        match self.role {
            Role::Service | Role::Operator => true,
            Role::Client => self.is_client(session.client_id),
            Role::Provider => self.is_provider(session.provider_id),
            Role::Finance => false,
        }
    }
}

impl Caller {
    /// The caller the bearer token of `headers` names, once it verifies.
    pub async fn of(state: &AppState, headers: &HeaderMap) -> Result<Self, ApiError> {
        let claims = state.keys.verify_fresh(bearer_token(headers)?).await?;
        Ok(Caller { sub: claims.sub, role: claims.role })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Caller::of(state, &parts.headers).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::public_keys::test_key_file;
    use crate::settings::{DEVELOPMENT_JWT_SECRET, PublicKeyAlgorithm, PublicKeySettings};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    const MINUTE: Duration = Duration::from_secs(60);

    /// Claims of a service valid for a minute, with `extra` added or replacing.
    fn claims(extra: Value) -> Value {
        let now = unix_now();
        let mut claims = json!({"sub": "svc", "role": "service", "iat": now, "exp": now + 60});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        claims
    }

    /// A token over `claims` naming `kid`, signed in `algorithm` with the private half of the
    /// test key `name` (for HS256, `name` is the secret).
    fn signed(algorithm: Algorithm, name: &str, kid: Option<&str>, claims: &Value) -> String {
        let pem = || std::fs::read(test_key_file(&format!("{name}.pem"))).unwrap();
        let key = match algorithm {
            Algorithm::HS256 => EncodingKey::from_secret(name.as_bytes()),
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem()).unwrap(),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem()).unwrap(),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem()).unwrap(),
            other => unreachable!("no test key for {other:?}"),
        };
        let mut header = Header::new(algorithm);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    /// Settings trusting the public halves of test keys: `(kid, algorithm, key name)`.
    fn trusting(keys: &[(&str, PublicKeyAlgorithm, &str)]) -> AuthSettings {
        let public_keys = keys.iter().map(|&(kid, algorithm, name)| {
            let pem_file = test_key_file(&format!("{name}.pub.pem"));
            (kid.to_string(), PublicKeySettings { algorithm, pem_file })
        });
        AuthSettings { public_keys: public_keys.collect(), ..AuthSettings::default() }
    }

    /// Why `keys` refuse `token`.
    fn refusal_of(keys: &JwtKeys, token: &str) -> String {
        match keys.verify(token) {
            Err(ApiError::Unauthorized(message)) => message,
            other => panic!("not refused with 401: {other:?}"),
        }
    }

    const UNKNOWN_KID: &str = "the bearer token's kid names no key this service trusts";

    #[test]
    fn a_minted_token_verifies_and_a_foreign_one_does_not() {
        let keys = JwtKeys::from_secret("one secret");
        let token = keys.mint("svc", Role::Service, MINUTE).unwrap();
        assert_eq!(keys.verify(&token).unwrap().role, Role::Service);
        let other = JwtKeys::from_secret("another secret");
        assert!(matches!(other.verify(&token), Err(ApiError::Unauthorized(_))));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = JwtKeys::from_secret("s");
        let token = signed(Algorithm::HS256, "s", None, &claims(json!({"exp": 1})));
        assert_eq!(refusal_of(&keys, &token), "the bearer token has expired");
    }

    #[test]
    fn tokens_of_each_algorithm_verify_with_the_key_their_kid_names() {
        use PublicKeyAlgorithm::{ES256, EdDSA, RS256};
        let pem = [("r", RS256, "rsa-1"), ("e", ES256, "ec-1"), ("d", EdDSA, "ed-1")];
        let jwks =
            AuthSettings { jwks_file: Some(test_key_file("jwks.json")), ..AuthSettings::default() };
        let cases = [
            (trusting(&pem), [("r", "rsa-1"), ("e", "ec-1"), ("d", "ed-1")]),
            (jwks, [("rsa-2", "rsa-2"), ("ec-1", "ec-1"), ("ed-1", "ed-1")]),
        ];
        for (settings, tokens) in cases {
            let keys = JwtKeys::from_settings(&settings).unwrap();
            for ((kid, name), algorithm) in tokens.into_iter().zip([RS256, ES256, EdDSA]) {
                let token = signed(algorithm.algorithm(), name, Some(kid), &claims(json!({})));
                let verified = keys.verify(&token);
                assert_eq!(verified.map(|c| c.sub).ok().as_deref(), Some("svc"), "{kid}");
            }
        }
    }

    #[test]
    fn keys_rotate_by_kid() {
        use PublicKeyAlgorithm::RS256;
        let old = signed(Algorithm::RS256, "rsa-1", Some("2026-01"), &claims(json!({})));
        let new = signed(Algorithm::RS256, "rsa-2", Some("2026-02"), &claims(json!({})));
        let both = trusting(&[("2026-01", RS256, "rsa-1"), ("2026-02", RS256, "rsa-2")]);
        let both = JwtKeys::from_settings(&both).unwrap();
        assert!(both.verify(&old).is_ok() && both.verify(&new).is_ok());

        let after = JwtKeys::from_settings(&trusting(&[("2026-02", RS256, "rsa-2")])).unwrap();
        assert!(after.verify(&new).is_ok());
        assert_eq!(refusal_of(&after, &old), UNKNOWN_KID);
        let unnamed = signed(Algorithm::RS256, "rsa-2", None, &claims(json!({})));
        assert_eq!(refusal_of(&after, &unnamed), UNKNOWN_KID);
        let misnamed = signed(Algorithm::RS256, "rsa-1", Some("2026-02"), &claims(json!({})));
        assert_eq!(refusal_of(&after, &misnamed), "the bearer token's signature does not verify");
    }

    #[test]
    fn iss_and_aud_are_required_when_configured() {
        let settings = AuthSettings {
            jwt_secret: Some("s".into()),
            issuer: Some("https://idp.example".into()),
            audience: Some("livesessions".into()),
            ..trusting(&[("k", PublicKeyAlgorithm::ES256, "ec-1")])
        };
        let keys = JwtKeys::from_settings(&settings).unwrap();
        let es256 = |extra| signed(Algorithm::ES256, "ec-1", Some("k"), &claims(extra));
        let iss = "https://idp.example";
        assert!(keys.verify(&es256(json!({"iss": iss, "aud": "livesessions"}))).is_ok());
        assert!(keys.verify(&es256(json!({"iss": iss, "aud": ["crm", "livesessions"]}))).is_ok());
        let refused = [
            (
                json!({"iss": "https://other.example", "aud": "livesessions"}),
                "'s iss is not auth.issuer",
            ),
            (json!({"aud": "livesessions"}), " has no iss claim"),
            (json!({"iss": iss, "aud": "crm"}), "'s aud does not name auth.audience"),
            (json!({"iss": iss}), " has no aud claim"),
        ];
        for (extra, why) in refused {
            assert_eq!(refusal_of(&keys, &es256(extra)), format!("the bearer token{why}"));
        }
        // HS256 tokens are held to the same rules; minted ones carry both claims.
        let minted = keys.mint("svc", Role::Service, MINUTE).unwrap();
        assert!(keys.verify(&minted).is_ok());
        let no_iss = signed(Algorithm::HS256, "s", None, &claims(json!({"aud": "livesessions"})));
        assert_eq!(refusal_of(&keys, &no_iss), "the bearer token has no iss claim");
        // Without auth.audience, a token meant for some audience is not for this service.
        let aimed = signed(Algorithm::HS256, "s", None, &claims(json!({"aud": "crm"})));
        let message = refusal_of(&JwtKeys::from_secret("s"), &aimed);
        assert_eq!(message, "the bearer token's aud does not name auth.audience");
    }

    #[test]
    fn algorithm_confusion_is_refused() {
        let settings = trusting(&[
            ("r", PublicKeyAlgorithm::RS256, "rsa-1"),
            ("d", PublicKeyAlgorithm::EdDSA, "ed-1"),
        ]);
        let claims = claims(json!({}));
        // The RSA public key, which anyone may have, used as an HS256 secret with its kid.
        let public_pem = std::fs::read_to_string(test_key_file("rsa-1.pub.pem")).unwrap();
        let forged = signed(Algorithm::HS256, &public_pem, Some("r"), &claims);
        let public_only = JwtKeys::from_settings(&settings).unwrap();
        assert_eq!(refusal_of(&public_only, &forged), "HS256 bearer tokens are not accepted here");
        let with_secret = AuthSettings { jwt_secret: Some("s".into()), ..settings.clone() };
        let with_secret = JwtKeys::from_settings(&with_secret).unwrap();
        assert_eq!(
            refusal_of(&with_secret, &forged),
            "the bearer token's signature does not verify"
        );
        // A kid of an EdDSA key on an RS256 token: refused whatever the signature.
        let crossed = signed(Algorithm::RS256, "rsa-1", Some("d"), &claims);
        assert_eq!(
            refusal_of(&public_only, &crossed),
            "the bearer token's key signs EdDSA tokens only"
        );
        // No algorithm at all.
        let part = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let unsigned = format!("{}.{}.", part(json!({"alg": "none", "kid": "r"})), part(claims));
        assert_eq!(
            refusal_of(&with_secret, &unsigned),
            "the bearer token is not a well-formed JWT with the expected claims"
        );
    }

    #[test]
    fn hs256_is_accepted_beside_public_keys_only_with_a_configured_secret() {
        let settings = trusting(&[("r", PublicKeyAlgorithm::RS256, "rsa-1")]);
        let rs256 = signed(Algorithm::RS256, "rsa-1", Some("r"), &claims(json!({})));
        let development =
            signed(Algorithm::HS256, DEVELOPMENT_JWT_SECRET, None, &claims(json!({})));

        let public_only = JwtKeys::from_settings(&settings).unwrap();
        assert!(public_only.verify(&rs256).is_ok());
        assert!(public_only.mint("svc", Role::Service, MINUTE).is_none());
        assert_eq!(
            refusal_of(&public_only, &development),
            "HS256 bearer tokens are not accepted here"
        );

        let with_secret = AuthSettings { jwt_secret: Some("s".into()), ..settings };
        let with_secret = JwtKeys::from_settings(&with_secret).unwrap();
        assert!(with_secret.verify(&rs256).is_ok());
        assert!(
            with_secret.verify(&with_secret.mint("svc", Role::Service, MINUTE).unwrap()).is_ok()
        );

        let neither = JwtKeys::from_settings(&AuthSettings::default()).unwrap();
        assert!(neither.verify(&development).is_ok(), "development: the development secret");
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for (value, token) in [("Bearer a.b.c", Some("a.b.c")), ("bEaReR  a.b.c ", Some("a.b.c"))] {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_token(&headers).ok(), token, "{value}");
        }
        for value in ["Basic a.b.c", "Bearer", "Bearer  ", "Bearera.b.c"] {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value.parse().unwrap());
            assert!(bearer_token(&headers).is_err(), "{value}");
        }
    }
}
