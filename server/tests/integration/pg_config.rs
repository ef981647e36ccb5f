//! `[index]` for PostgreSQL as an operator writes it, against a private
//! PostgreSQL 15: the password from `password_file` or the systemd
//! credential (never the URL), TLS with `sslmode = "verify-full"` accepting
//! the right CA and refusing a stranger's, and clear errors for what is
//! wrong.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use asset_catalog_server::Config;
use asset_catalog_server::index::{Index, IndexError};
use testkit::pg::PgCluster;

/// Load a config whose `[index]` section is `index` (plus `env` overrides).
fn config(dir: &Path, index: &str, env: &[(&str, &str)]) -> Result<Config, String> {
    let file = dir.join("server.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nstate_dir = \"{}\"\n\n[index]\n{index}\n",
            dir.join("state").display()
        ),
    )
    .expect("write config");
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    Config::load(Some(&file), env)
        .map(|(c, _)| c)
        .map_err(|e| e.to_string())
}

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A CA and a certificate for 127.0.0.1 it signed: (CA PEM, cert PEM, key PEM).
fn certificates(name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, name);
    let ca = ca.self_signed(&ca_key).expect("CA");
    let key = rcgen::KeyPair::generate().expect("server key");
    let mut leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let leaf = leaf.signed_by(&key, &ca, &ca_key).expect("sign");
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_from_a_file_or_the_credential_never_the_url() {
    let pg = tokio::task::spawn_blocking(PgCluster::start)
        .await
        .expect("pg");
    let url = pg.create_database("catalog");
    let dir = tempfile::tempdir().expect("tempdir");

    let inline = url.replace("postgres@", "postgres:secret@");
    let err = config(dir.path(), &format!("url = \"{inline}\""), &[]).expect_err("inline password");
    assert!(
        err.contains("password in the URL is refused") && !err.contains("secret"),
        "{err}"
    );

    let open_file = dir.path().join("pw-open");
    std::fs::write(&open_file, pg.superuser_password()).expect("write");
    std::fs::set_permissions(&open_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let c = config(
        dir.path(),
        &format!(
            "url = \"{url}\"\npassword_file = \"{}\"",
            open_file.display()
        ),
        &[],
    )
    .expect("config");
    let err = Index::open(&c)
        .await
        .expect_err("a world-readable password file");
    assert!(err.to_string().contains("chmod 600"), "{err}");

    let file = dir.path().join("pw");
    private(&file, pg.superuser_password());
    let c = config(
        dir.path(),
        &format!("url = \"{url}\"\npassword_file = \"{}\"", file.display()),
        &[],
    )
    .expect("config");
    let index = Index::open(&c).await.expect("open with password_file");
    index.ping().await.expect("ping");
    assert_eq!(
        index.describe(),
        format!("postgres://postgres@127.0.0.1:{}/catalog", pg.port())
    );

    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).expect("creds dir");
    private(&creds.join("pg_password"), pg.superuser_password());
    let creds_dir = creds.display().to_string();
    let c = config(
        dir.path(),
        &format!("url = \"{url}\""),
        &[("CREDENTIALS_DIRECTORY", &creds_dir)],
    )
    .expect("config");
    Index::open(&c)
        .await
        .expect("open with the credential")
        .ping()
        .await
        .expect("ping");

    let c = config(dir.path(), &format!("url = \"{url}\""), &[]).expect("config");
    let err = Index::open(&c).await.expect_err("no password");
    assert!(matches!(err, IndexError::Unavailable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{}", pg.port())),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_accepts_the_right_ca_and_refuses_a_strangers() {
    let (ca, cert, key) = certificates("catalog test CA");
    let pg = tokio::task::spawn_blocking(move || PgCluster::start_tls(&cert, &key))
        .await
        .expect("pg");
    let url = pg.create_database("catalog");
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("pw");
    private(&password, pg.superuser_password());
    let right = dir.path().join("ca.pem");
    std::fs::write(&right, ca).expect("ca");
    let (stranger, ..) = certificates("someone else's CA");
    let wrong = dir.path().join("other-ca.pem");
    std::fs::write(&wrong, stranger).expect("ca");
    let section = |ca: &Path| {
        format!(
            "url = \"{url}\"\npassword_file = \"{}\"\nsslmode = \"verify-full\"\nca_file = \"{}\"",
            password.display(),
            ca.display()
        )
    };

    let index = Index::open(&config(dir.path(), &section(&right), &[]).expect("config"))
        .await
        .expect("TLS with the right CA");
    index.ping().await.expect("ping over TLS");
    let tls = pg.psql("catalog", "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'asset-catalog-server' AND s.ssl");
    assert_ne!(tls.trim(), "0", "the server's connections use TLS");

    let err = Index::open(&config(dir.path(), &section(&wrong), &[]).expect("config"))
        .await
        .expect_err("a stranger's CA");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    let err = config(
        dir.path(),
        &format!("url = \"{url}\"\nsslmode = \"require\""),
        &[],
    )
    .expect_err("require");
    assert!(err.contains("verify-full"), "{err}");
}
