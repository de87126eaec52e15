//! Bearer tokens signed by an identity provider, end to end: the API configured with a PEM key
//! and a JWKS file (the test-only keys of `tests/keys/`), an issuer and an audience accepts
//! RS256, ES256 and EdDSA tokens by their `kid` beside its own HS256 ones, and answers a clean
//! `401` to an unknown `kid`, a foreign issuer or audience, and a token signed with a public key
//! as an HS256 secret. With a JWKS URL, keys rotate without a restart.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use livesessions_api::{AuthSettings, PublicKeyAlgorithm, PublicKeySettings};
use livesessions_tests::{Backend, TestApp, TestOptions, test_policy};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "livesessions";

/// A test-only key of `tests/keys/`.
fn key_file(name: &str) -> PathBuf {
    livesessions_tests::crate_dir().join("keys").join(name)
}

/// A token of the service `sub` from the identity provider, with `extra` claims added or
/// replacing, signed in `algorithm` with the private half of the test key `name` (for HS256,
/// `name` is the secret) and naming `kid`.
fn signed(algorithm: Algorithm, name: &str, kid: &str, extra: Value) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"sub": "idp-service", "role": "service", "iat": now,
                            "exp": now + 600, "iss": ISSUER, "aud": AUDIENCE});
    claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let pem = || std::fs::read(key_file(&format!("{name}.pem"))).unwrap();
    let key = match algorithm {
        Algorithm::HS256 => EncodingKey::from_secret(name.as_bytes()),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem()).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem()).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem()).unwrap(),
        other => unreachable!("no test key for {other:?}"),
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_an_identity_provider_are_verified_by_kid() {
    let pem = PublicKeySettings {
        algorithm: PublicKeyAlgorithm::RS256,
        pem_file: key_file("rsa-1.pub.pem"),
    };
    let auth = AuthSettings {
        public_keys: [("rsa-1".to_string(), pem)].into(),
        jwks_file: Some(key_file("jwks.json")),
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        ..AuthSettings::default()
    };
    let app = spawn_trusting(auth).await;
    let accepted = [
        ("RS256, PEM", signed(Algorithm::RS256, "rsa-1", "rsa-1", json!({}))),
        ("RS256, JWKS", signed(Algorithm::RS256, "rsa-2", "rsa-2", json!({}))),
        ("ES256, JWKS", signed(Algorithm::ES256, "ec-1", "ec-1", json!({}))),
        ("EdDSA, JWKS", signed(Algorithm::EdDSA, "ed-1", "ed-1", json!({}))),
        ("the app's own HS256", app.service_token()),
    ];
    for (what, token) in accepted {
        let (status, body) = app.get("/v1/sessions", &token).await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
    }

    let public_pem = std::fs::read_to_string(key_file("rsa-1.pub.pem")).unwrap();
    let refused = [
        (
            "an unknown kid",
            signed(Algorithm::RS256, "rsa-1", "rsa-0", json!({})),
            "the bearer token's kid names no key this service trusts",
        ),
        (
            "another issuer",
            signed(Algorithm::ES256, "ec-1", "ec-1", json!({"iss": "https://other.example"})),
            "the bearer token's iss is not auth.issuer",
        ),
        (
            "another audience",
            signed(Algorithm::EdDSA, "ed-1", "ed-1", json!({"aud": "crm"})),
            "the bearer token's aud does not name auth.audience",
        ),
        (
            "the public key as an HS256 secret",
            signed(Algorithm::HS256, &public_pem, "rsa-1", json!({})),
            "the bearer token's signature does not verify",
        ),
        (
            "an RS256 token naming the EdDSA key",
            signed(Algorithm::RS256, "rsa-1", "ed-1", json!({})),
            "the bearer token's key signs EdDSA tokens only",
        ),
    ];
    for (what, token, message) in refused {
        let (status, body) = app.get("/v1/sessions", &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"], json!({"code": "unauthorized", "message": message}), "{what}");
    }
}

/// Serves, at the URL it answers, the test keys of `jwks.json` that `kids` names at the time.
async fn jwks_endpoint(kids: Arc<Mutex<Vec<&'static str>>>) -> String {
    let text = std::fs::read_to_string(key_file("jwks.json")).unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    let answer = move || {
        let kids = kids.lock().unwrap().clone();
        let mut document = document.clone();
        let keys = document["keys"].as_array_mut().unwrap();
        keys.retain(|key| kids.contains(&key["kid"].as_str().unwrap()));
        async move { axum::Json(document) }
    };
    let router = axum::Router::new().route("/.well-known/jwks.json", axum::routing::get(answer));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_a_jwks_url_rotate_without_a_restart() {
    let kids = Arc::new(Mutex::new(vec!["rsa-2"]));
    let auth = AuthSettings {
        jwks_url: Some(jwks_endpoint(kids.clone()).await),
        jwks_refresh: Duration::from_secs(3600),
        jwks_min_interval: Duration::ZERO,
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        ..AuthSettings::default()
    };
    let app = spawn_trusting(auth).await;
    let old = signed(Algorithm::RS256, "rsa-2", "rsa-2", json!({}));
    let new = signed(Algorithm::ES256, "ec-1", "ec-1", json!({}));
    let status = |token: String| {
        let app = &app;
        async move { app.get("/v1/sessions", &token).await.0 }
    };
    assert_eq!(status(old.clone()).await, StatusCode::OK, "the key fetched at start");

    // The provider publishes its new key and signs with it: its kid is unknown, so the
    // document is fetched again, and both keys are trusted.
    kids.lock().unwrap().push("ec-1");
    assert_eq!(status(new.clone()).await, StatusCode::OK, "the new key");
    assert_eq!(status(old.clone()).await, StatusCode::OK, "the old key, still published");

    // The provider retires the old key; the next unknown kid fetches the document again.
    kids.lock().unwrap().retain(|kid| *kid != "rsa-2");
    let stranger = signed(Algorithm::EdDSA, "ed-1", "ed-1", json!({}));
    assert_eq!(status(stranger).await, StatusCode::UNAUTHORIZED, "a key never published");
    let (code, body) = app.get("/v1/sessions", &old).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "the retired key: {body}");
    assert_eq!(body["error"]["message"], "the bearer token's kid names no key this service trusts");
    assert_eq!(status(new).await, StatusCode::OK);
}

/// The app on SQLite, verifying bearer tokens as `auth` says.
async fn spawn_trusting(auth: AuthSettings) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, test_policy(), TestOptions { auth, ..Default::default() })
        .await
}
