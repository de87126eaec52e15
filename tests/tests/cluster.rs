//! The connection to a real cluster: TLS with the server's CA and name, and mTLS with a client
//! certificate (`temporal.tls.*`). `temporal server start-dev` has no TLS flags, so the test puts
//! a TLS-terminating proxy with a self-signed CA in front of the dev server, requiring a client
//! certificate signed by that CA; the worker, the API and the test's own client all go through
//! it, and a session runs from booking to completion. A client without a certificate, and one
//! that does not trust the CA, are refused.

use chrono::{TimeDelta, Utc};
use livesessions_domain::SessionState;
use livesessions_tests::{Backend, TestApp, TestOptions, temporal_address, test_policy};
use livesessions_worker::{TemporalSettings, TemporalTls};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// The name in the server's certificate (not the address's host: `temporal.tls.server_name`).
const SERVER_NAME: &str = "temporal.test";

/// A CA, and a certificate it signed with its key.
struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn certificate_authority() -> Issued {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    Issued { cert: params.self_signed(&key).unwrap(), key }
}

fn issue(ca: &Issued, names: &[&str]) -> Issued {
    let key = KeyPair::generate().unwrap();
    let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let params = CertificateParams::new(names).unwrap();
    Issued { cert: params.signed_by(&key, &ca.cert, &ca.key).unwrap(), key }
}

fn write(dir: &Path, name: &str, pem: String) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// Terminates TLS (HTTP/2, client certificates signed by `ca` required) and forwards each
/// connection to `backend` in plaintext.
async fn tls_proxy(ca: &Issued, server: &Issued, backend: SocketAddr) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![CertificateDer::from(server.cert.der().to_vec())], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let Ok(mut plain) = TcpStream::connect(backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    address
}

/// Connects with `tls` through the proxy at `address` and asks for the namespace, as a worker
/// does before it starts.
async fn reach(address: &str, tls: &TemporalTls) -> anyhow::Result<()> {
    let settings = TemporalSettings {
        address: address.to_string(),
        tls: tls.clone(),
        ..TemporalSettings::default()
    };
    let client = livesessions_worker::connect(&settings).await?;
    livesessions_worker::setup::check(&client, &settings.namespace).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_over_mtls_to_temporal() {
    livesessions_activities::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("ls-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = certificate_authority();
    let server = issue(&ca, &[SERVER_NAME]);
    let client = issue(&ca, &["livesessions-worker"]);
    let tls = TemporalTls {
        enabled: true,
        server_ca_file: Some(write(&dir, "ca.pem", ca.cert.pem())),
        server_name: Some(SERVER_NAME.into()),
        client_cert_file: Some(write(&dir, "client.pem", client.cert.pem())),
        client_key_file: Some(write(&dir, "client.key", client.key.serialize_pem())),
    };
    let plaintext = tokio::task::spawn_blocking(temporal_address).await.unwrap();
    let backend: SocketAddr = plaintext.trim_start_matches("http://").parse().unwrap();
    let proxy = format!("https://{}", tls_proxy(&ca, &server, backend).await);

    let options =
        TestOptions { temporal_tls: Some((proxy.clone(), tls.clone())), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let (client_id, provider) = app.subscriber_and_therapist().await;
    let session = app.book_confirmed(client_id, provider, Utc::now() + TimeDelta::minutes(1)).await;
    app.take_place(&session).await;
    let done = app.wait_for_state(session.id, SessionState::Completed).await;
    assert_eq!(done.outcome.map(|o| o.to_string()).as_deref(), Some("room_ended"));

    reach(&proxy, &tls).await.expect("the configured client is let in");
    let no_certificate =
        TemporalTls { client_cert_file: None, client_key_file: None, ..tls.clone() };
    let refused = reach(&proxy, &no_certificate).await;
    assert!(refused.is_err(), "a client without a certificate must be refused");
    let untrusting = TemporalTls { server_ca_file: None, ..tls.clone() };
    let refused = reach(&proxy, &untrusting).await;
    assert!(refused.is_err(), "a server signed by an unknown CA must be refused");
    let half = TemporalTls { client_key_file: None, ..tls.clone() };
    let error = reach(&proxy, &half).await.expect_err("a certificate without its key");
    assert!(error.to_string().contains("go together"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
