//! A private PostgreSQL 15 per test, from Debian's package: `initdb` runs once
//! into a cached template (scram-sha-256 only, a fixed superuser password),
//! each [`PgCluster`] copies it into its own temporary directory and starts
//! `postgres` there on a free port of 127.0.0.1. As root the server binaries
//! run as the `postgres` user (PostgreSQL refuses root). Dropping the cluster
//! stops it and removes its directory.

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
const MISSING: &str =
    "PostgreSQL 15 is missing: run `apt-get install -y postgresql` (scripts/test.sh installs it)";
/// The superuser's password in every cluster (the template bakes it in).
const SUPERUSER_PASSWORD: &str = "testkit-pg-superuser-0123456789";
/// The template's name in the cache; bump the suffix when initdb's options change.
const TEMPLATE: &str = "pg15-template-v1";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One running PostgreSQL 15 on 127.0.0.1.
#[derive(Debug)]
pub struct PgCluster {
    dir: TempDir,
    port: u16,
    /// `-o` for pg_ctl: port, socket directory, settings.
    options: String,
}

impl PgCluster {
    /// Start a cluster on a free port and wait until it answers queries.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Like [`PgCluster::start`], with `ssl = on` serving the given
    /// certificate (chain) and private key, both PEM. Clients may still
    /// connect without TLS; `sslmode=verify-full` with the caller's CA works
    /// for the names the certificate carries (e.g. `127.0.0.1`, `localhost`).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Self {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Self {
        assert!(Path::new(BIN_DIR).join("pg_ctl").exists(), "{MISSING}");
        let template = template();
        let dir = tempfile::Builder::new()
            .prefix("testkit-pg-")
            .tempdir()
            .expect("create a temporary directory for PostgreSQL");
        // The postgres user must reach the data directory inside.
        set_mode(dir.path(), 0o755);
        let data = dir.path().join("data");
        let run_dir = dir.path().join("run");
        crate::run(Command::new("cp").arg("-a").arg(&template).arg(&data));
        fs::create_dir(&run_dir).expect("create PostgreSQL's socket directory");
        set_mode(&run_dir, 0o755);
        let password_file = dir.path().join("superuser.password");
        fs::write(&password_file, SUPERUSER_PASSWORD).expect("write the password file");
        set_mode(&password_file, 0o600);

        let port = crate::free_port();
        let mut options = format!(
            "-p {port} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            run_dir.display()
        );
        if let Some((cert, key)) = tls {
            fs::write(data.join("server.crt"), cert).expect("write the server certificate");
            fs::write(data.join("server.key"), key).expect("write the server key");
            set_mode(&data.join("server.key"), 0o600);
            // Relative to the data directory.
            options.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        if is_root() {
            crate::run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data)
                    .arg(&run_dir),
            );
        }
        let cluster = Self { dir, port, options };
        cluster.start_again();
        cluster
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `postgres` superuser's password (scram-sha-256; no trust auth).
    pub fn superuser_password(&self) -> &'static str {
        SUPERUSER_PASSWORD
    }

    /// A file (mode 0600, in the cluster's directory) holding the superuser's
    /// password, without a newline.
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("superuser.password")
    }

    /// Create database `name` (letters, digits, `_`, `-`) and return its URL
    /// for the superuser, without the password:
    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "database name {name:?}: use letters, digits, '_' and '-'"
        );
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Run `sql` in database `db` as the superuser with psql (`-At`, stop on
    /// the first error) and return its stdout; panic with stderr on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql -d {db} -c {sql:?} failed: {e}"))
    }

    /// Like [`PgCluster::psql`], returning psql's stderr as the error (for
    /// checking that the server is down).
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(Path::new(BIN_DIR).join("psql"))
            .args([
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
            ])
            .arg("postgres")
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-d", db, "-c", sql])
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .env("PGCONNECT_TIMEOUT", "5")
            .env("PGSSLMODE", "prefer")
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// `pg_ctl restart -m fast`: connections are closed, the server comes back
    /// on the same port; returns when it answers queries again.
    pub fn restart(&self) {
        self.pg_ctl(&["restart", "-m", "fast", "-w", "-t", "30"], true);
        self.wait_ready();
    }

    /// `pg_ctl stop -m immediate`: the crash. The data stays for
    /// [`PgCluster::start_again`].
    pub fn stop_immediate(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "30"], false);
    }

    /// Start the stopped server again on the same port and data; returns when
    /// it answers queries.
    pub fn start_again(&self) {
        self.pg_ctl(&["start", "-w", "-t", "30"], true);
        self.wait_ready();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        crate::read_log(&self.log_path())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("run").join("postgresql.log")
    }

    /// Run pg_ctl on this cluster's data directory; panic with its output and
    /// the server's log when it fails.
    fn pg_ctl(&self, args: &[&str], with_options: bool) {
        let mut command = as_postgres(&Path::new(BIN_DIR).join("pg_ctl"));
        command
            .args(args)
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .current_dir(self.dir.path());
        if with_options {
            command.arg("-o").arg(&self.options);
        }
        crate::run_or_explain(&mut command, || {
            format!("\nthe server's log:\n{}", self.log())
        });
    }

    /// Poll until the port accepts TCP and `select 1` works (30 s at most).
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let problem = match TcpStream::connect(("127.0.0.1", self.port)) {
                Ok(_) => match self.try_psql("postgres", "select 1") {
                    Ok(_) => return,
                    Err(e) => e,
                },
                Err(e) => format!("TCP connect: {e}"),
            };
            assert!(
                Instant::now() < deadline,
                "PostgreSQL on 127.0.0.1:{} was not ready within {READY_TIMEOUT:?} ({}); its log:\n{}",
                self.port,
                problem.trim(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let _ = as_postgres(&Path::new(BIN_DIR).join("pg_ctl"))
                .args(["stop", "-m", "immediate", "-w", "-D"])
                .arg(self.data_dir())
                .current_dir(self.dir.path())
                .output();
        }
    }
}

/// The cached template data directory, made on first use: once per process,
/// under a file lock across processes, moved into place by an atomic rename.
fn template() -> PathBuf {
    static TEMPLATE_DIR: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE_DIR.get_or_init(make_template).clone()
}

fn make_template() -> PathBuf {
    let cache = crate::cache_dir();
    let template = cache.join(TEMPLATE);
    if template.join("PG_VERSION").exists() {
        return template;
    }
    let started = Instant::now();
    fs::create_dir_all(&cache).expect("create the test cache directory");
    // One initdb at a time across processes (the rename below alone would be
    // safe, but N parallel initdbs on a cold cache are slow).
    let lock = fs::File::create(cache.join(format!("{TEMPLATE}.lock")))
        .expect("create the template's lock file");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .expect("lock the template's lock file");
    if template.join("PG_VERSION").exists() {
        return template;
    }
    // initdb runs as postgres, which cannot enter root's home: build under
    // the temporary directory, then copy next to the template and rename.
    let build = tempfile::Builder::new()
        .prefix("testkit-initdb-")
        .tempdir()
        .expect("create a temporary directory for initdb");
    let pwfile = build.path().join("pwfile");
    fs::write(&pwfile, SUPERUSER_PASSWORD).expect("write initdb's password file");
    if is_root() {
        crate::run(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(build.path()),
        );
    }
    let data = build.path().join("data");
    crate::run(
        as_postgres(&Path::new(BIN_DIR).join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["--locale=C.UTF-8", "-E", "UTF8", "-A", "scram-sha-256"])
            .args(["-U", "postgres", "--no-sync", "--pwfile"])
            .arg(&pwfile)
            .current_dir(build.path()),
    );
    let staging = tempfile::Builder::new()
        .prefix(".pg15-template-")
        .tempdir_in(&cache)
        .expect("create a staging directory in the test cache");
    let staged = staging.path().join("data");
    crate::run(Command::new("cp").arg("-a").arg(&data).arg(&staged));
    if let Err(e) = fs::rename(&staged, &template) {
        // Another process made it first (rename never replaces a full directory).
        assert!(
            template.join("PG_VERSION").exists(),
            "cannot move the PostgreSQL template into {}: {e}",
            template.display()
        );
    }
    eprintln!(
        "testkit: made the PostgreSQL template {} in {:?}",
        template.display(),
        started.elapsed()
    );
    template
}

/// `program`, run as the `postgres` user when we are root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}
