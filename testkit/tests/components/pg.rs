use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use testkit::pg::PgCluster;

#[test]
fn creates_databases_and_answers_queries_with_password_auth() {
    let started = Instant::now();
    let pg = PgCluster::start();
    eprintln!("PgCluster::start took {:?}", started.elapsed());

    let url = pg.create_database("catalog_test");
    assert_eq!(
        url,
        format!("postgres://postgres@127.0.0.1:{}/catalog_test", pg.port())
    );
    pg.psql(
        "catalog_test",
        "create table t (n int); insert into t values (41), (1)",
    );
    assert_eq!(pg.psql("catalog_test", "select sum(n) from t"), "42\n");
    assert_eq!(
        pg.psql("postgres", "show server_version_num").trim()[..2],
        *"15"
    );
    assert_eq!(
        pg.psql("postgres", "show password_encryption"),
        "scram-sha-256\n"
    );

    let file = pg.password_file();
    assert_eq!(
        std::fs::read_to_string(&file).expect("read the password file"),
        pg.superuser_password()
    );
    let mode = std::fs::metadata(&file)
        .expect("stat the password file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Only scram: a wrong password is refused.
    let hba = pg.psql(
        "postgres",
        "select distinct auth_method from pg_hba_file_rules",
    );
    assert_eq!(hba, "scram-sha-256\n");
}

#[test]
fn survives_a_restart_and_a_crash() {
    let pg = PgCluster::start();
    pg.create_database("outage");
    pg.psql("outage", "create table t (n int); insert into t values (7)");

    pg.restart();
    assert_eq!(pg.psql("outage", "select n from t"), "7\n");

    pg.stop_immediate();
    let err = pg
        .try_psql("outage", "select 1")
        .expect_err("the server is down");
    assert!(
        err.contains("Connection refused") || err.contains("connection"),
        "{err}"
    );
    pg.start_again();
    assert_eq!(pg.psql("outage", "select n from t"), "7\n");
}

#[test]
fn dropping_stops_the_server_and_removes_its_directory() {
    let pg = PgCluster::start();
    let port = pg.port();
    let dir = pg
        .password_file()
        .parent()
        .expect("the cluster's directory")
        .to_owned();
    drop(pg);
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn serves_tls_that_verify_full_accepts() {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // libpq (OpenSSL) takes a leaf whose subject equals its issuer for
    // self-signed: rcgen's default name must not be left on both.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "testkit CA");
    let ca = ca_params.self_signed(&ca_key).expect("self-sign the CA");
    let server_key = rcgen::KeyPair::generate().expect("server key");
    let mut server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
    server_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let server = server_params
        .signed_by(&server_key, &ca, &ca_key)
        .expect("sign the server certificate");

    let pg = PgCluster::start_tls(&server.pem(), &server_key.serialize_pem());
    let dir = tempfile::tempdir().expect("a directory for the CA file");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write the CA file");

    let verified = |root: &std::path::Path| {
        std::process::Command::new("/usr/lib/postgresql/15/bin/psql")
            .args(["-X", "-At", "-c", "select ssl from pg_stat_ssl where pid = pg_backend_pid()"])
            .arg(format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
                pg.port(),
                root.display()
            ))
            .env("PGPASSWORD", pg.superuser_password())
            .output()
            .expect("run psql")
    };
    let output = verified(&ca_file);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "t\n");

    // Another CA's certificate is refused.
    let other_key = rcgen::KeyPair::generate().expect("other key");
    let other = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("other params")
        .self_signed(&other_key)
        .expect("self-sign");
    std::fs::write(&ca_file, other.pem()).expect("write the wrong CA file");
    let output = verified(&ca_file);
    assert!(
        !output.status.success(),
        "verify-full accepted a stranger's CA"
    );
    // The server survives restarts with TLS on.
    pg.restart();
    assert_eq!(pg.psql("postgres", "show ssl"), "on\n");
}
