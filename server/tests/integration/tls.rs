//! Native TLS with the real awc client: an rcgen CA and a server certificate
//! for localhost/127.0.0.1, the real server in-process with
//! `tls_cert_file`/`tls_key_file`, a client that trusts only that CA
//! (handshake, token, upload, read back), a client without the CA (refused),
//! plain HTTP to the TLS port (no answer), and a certificate reload.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use asset_catalog_server::Config;
use asset_catalog_server::auth::{Scope, Scopes};
use asset_catalog_server::tls::CertStore;
use asset_catalog_server::token_admin;
use rustls::pki_types::CertificateDer;

use crate::support::{json_of, sha256_hex};

struct Pki {
    ca_der: Vec<u8>,
}

/// Write a fresh CA-signed certificate and key into `dir`; return the CA.
fn issue(dir: &Path) -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("params");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("sign");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert");
    let key_path = dir.join("key.pem");
    std::fs::write(&key_path, key.serialize_pem()).expect("key");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    Pki {
        ca_der: ca.der().to_vec(),
    }
}

fn client_trusting(ca: Option<&[u8]>) -> awc::Client {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(der) = ca {
        roots
            .add(CertificateDer::from(der.to_vec()))
            .expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(config)))
        .disable_timeout()
        .finish()
}

#[actix_web::test]
async fn tls_handshake_with_the_real_client_and_a_custom_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = issue(dir.path());
    let mut config = Config::for_state_dir(dir.path().join("state"));
    config.storage.url = Some("memory://".into());
    config.server.tls_cert_file = Some(dir.path().join("cert.pem"));
    config.server.tls_key_file = Some(dir.path().join("key.pem"));
    let token = token_admin::create(
        &config,
        "tls",
        &Scopes::new(vec![Scope::Admin]),
        &asset_catalog_server::index::TokenLimits::default(),
    )
    .await
    .expect("token")
    .text;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = actix_web::rt::spawn(asset_catalog_server::run(config, listener, async move {
        let _ = stopped.await;
    }));
    let trusted = client_trusting(Some(&pki.ca_der));
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{port}");
        let mut up = false;
        for _ in 0..400 {
            if let Ok(res) = trusted.get(format!("{url}/healthz")).send().await {
                assert_eq!(res.status().as_u16(), 200);
                up = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert!(up, "no TLS answer on {url}");
    }
    let base = format!("https://localhost:{port}");
    let body: &[u8] = b"sent over TLS";
    let res = trusted
        .put(format!("{base}/v1/assets/{}", sha256_hex(body)))
        .bearer_auth(&token)
        .insert_header((asset_catalog_proto::HEADER_NAME, "tls.txt"))
        .send_body(body)
        .await
        .expect("PUT over TLS");
    let (status, json) = json_of(res).await;
    assert_eq!(status, 201, "{json}");
    let res = trusted
        .get(format!("{base}/v1/assets"))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status().as_u16(), 401, "TLS does not replace the token");

    let untrusted = client_trusting(None);
    let err = untrusted
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect_err("a client without the CA must not connect");
    assert!(
        err.to_string().to_lowercase().contains("certificate")
            || err.to_string().contains("Connect"),
        "{err}"
    );
    let plain = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .finish();
    let res = plain
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(
        res.map(|r| r.status().as_u16() != 200).unwrap_or(true),
        "plain HTTP must not be served on the TLS port"
    );
    let _ = stop.send(());
    task.await.expect("task").expect("server");
}

#[test]
fn certificate_reload_swaps_and_keeps_the_old_one_on_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    issue(dir.path());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let store = CertStore::open(&cert, &key).expect("open");
    let first = store.current().cert[0].to_vec();
    issue(dir.path());
    store.reload().expect("reload");
    let second = store.current().cert[0].to_vec();
    assert_ne!(first, second, "the renewed certificate is served");
    std::fs::write(&cert, "not a certificate").expect("break");
    let err = store.reload().expect_err("broken file");
    assert!(err.to_string().contains("tls_cert_file"), "{err}");
    assert_eq!(store.current().cert[0].to_vec(), second, "old one kept");
}
