//! `fsck` against real damage done behind a running server's back (on the
//! file store, with the index in SQLite or a private PostgreSQL): an object
//! deleted, content stored without a row (with and without a sidecar), a row
//! pointed at a wrong extension, an extra copy under another extension, a
//! size that changed. Each is reported exactly once and nothing changes;
//! `--repair` fixes all but the size and leaves a clean bucket; the real
//! binary says the same and exits 0, 1 or 2.

use std::process::{Command, Output};
use std::time::Duration;

use asset_catalog_proto::{Asset, AssetPage, Sha256Hex};
use asset_catalog_server::fsck::{self, FsckOptions, FsckReport, Outcome, Problem};
use asset_catalog_server::index::{Index, KeyRow};
use asset_catalog_server::storage::{Description, Sidecar, SidecarSighting};
use bytes::Bytes;
use object_store::ObjectStoreExt as _;
use time::OffsetDateTime;

use crate::support::{Kind, TestServer, sha256_hex};

const BIN: &str = env!("CARGO_BIN_EXE_asset-catalog-server");

/// Where the server under test keeps its index.
#[derive(Debug, Clone, Copy)]
pub enum On {
    Sqlite,
    Postgres,
}

/// A server on the file store, its index opened a second time (as the
/// tools open it), and the PostgreSQL it may use. Fields drop in order.
struct Setup {
    s: TestServer,
    index: Index,
    _pg: Option<testkit::pg::PgCluster>,
}

async fn start(on: On) -> Setup {
    let pg = match on {
        On::Sqlite => None,
        On::Postgres => Some(
            tokio::task::spawn_blocking(testkit::pg::PgCluster::start)
                .await
                .expect("start PostgreSQL"),
        ),
    };
    let url = pg.as_ref().map(|pg| pg.create_database("catalog"));
    let password = pg.as_ref().map(|pg| pg.password_file());
    let s = TestServer::start_with(Kind::File, |c| {
        c.index.url = url;
        c.index.password_file = password;
    })
    .await;
    let index = Index::open(s.config()).await.expect("open the index");
    assert_eq!(index.is_shared(), pg.is_some(), "{}", index.describe());
    Setup { s, index, _pg: pg }
}

/// The hashes of the damage test, by what was done to each.
struct Damage {
    /// Uploaded, then its object deleted: a row without an object.
    gone: String,
    /// Stored with a sidecar but no row.
    sidecar: String,
    /// Stored bare: no sidecar, no row.
    bare: String,
    /// Uploaded as `.jpg`, its row then pointed at `.png`.
    wrong: String,
    /// Uploaded as `.txt`, then copied to `.bin`.
    copied: String,
    /// Left alone.
    good: String,
}

/// The name the sidecar of `Damage::sidecar` gives its content.
const SIDECAR_NAME: &str = "named by its sidecar.jpg";

async fn put(s: &TestServer, key: &str, body: &[u8]) {
    s.store
        .put(&key.into(), Bytes::copy_from_slice(body).into())
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
}

async fn damage(s: &TestServer, index: &Index) -> Damage {
    let d = Damage {
        gone: sha256_hex(b"gone"),
        sidecar: sha256_hex(b"with a sidecar"),
        bare: sha256_hex(b"bare"),
        wrong: sha256_hex(b"wrong key"),
        copied: sha256_hex(b"copied"),
        good: sha256_hex(b"good"),
    };
    for (name, body) in [
        ("gone.txt", &b"gone"[..]),
        ("wrong.jpg", b"wrong key"),
        ("copied.txt", b"copied"),
        ("good.txt", b"good"),
    ] {
        s.upload(name, body).await;
    }
    let gone = format!("{}.txt", d.gone);
    s.store.delete(&gone.as_str().into()).await.expect("delete");
    let key = format!("{}.jpg", d.sidecar);
    put(s, &key, b"with a sidecar").await;
    let sidecar = serde_json::to_vec(&sidecar(&d.sidecar, &key, 14)).expect("json");
    put(s, &format!("meta/{}.json", d.sidecar), &sidecar).await;
    put(s, &format!("{}.dat", d.bare), b"bare").await;
    let wrong: Sha256Hex = d.wrong.parse().expect("sha");
    let moved = index.set_key(&wrong, &format!("{wrong}.png")).await;
    assert!(moved.expect("set_key"));
    put(s, &format!("{}.bin", d.copied), b"copied").await;
    d
}

fn sidecar(sha: &str, key: &str, size: u64) -> Sidecar {
    let first_seen = OffsetDateTime::from_unix_timestamp(1_600_000_000).expect("time");
    Sidecar {
        version: 1,
        sha256: sha.parse().expect("sha"),
        key: key.into(),
        size,
        description: Description {
            content_type: "image/jpeg".into(),
            name: SIDECAR_NAME.into(),
            first_seen,
            first_sighting: Some(SidecarSighting {
                client: "old-host".into(),
                path: format!("photos/{SIDECAR_NAME}"),
                name: SIDECAR_NAME.into(),
                mtime: None,
            }),
        },
    }
}

/// What `fsck` should report for `d`, sorted as [`found`] sorts.
fn expected(d: &Damage) -> Vec<(String, Problem)> {
    let mut want = vec![
        (
            d.gone.clone(),
            Problem::MissingObject {
                key: format!("{}.txt", d.gone),
            },
        ),
        (
            d.sidecar.clone(),
            Problem::Unindexed {
                keys: vec![format!("{}.jpg", d.sidecar)],
            },
        ),
        (
            d.bare.clone(),
            Problem::Unindexed {
                keys: vec![format!("{}.dat", d.bare)],
            },
        ),
        (
            d.wrong.clone(),
            Problem::WrongKey {
                key: format!("{}.png", d.wrong),
                target: format!("{}.jpg", d.wrong),
                extras: vec![],
            },
        ),
        (
            d.copied.clone(),
            Problem::ExtraCopies {
                key: format!("{}.txt", d.copied),
                extras: vec![format!("{}.bin", d.copied)],
            },
        ),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    want
}

/// The report's findings as (hash, problem), sorted by hash.
fn found(report: &FsckReport) -> Vec<(String, Problem)> {
    let mut found: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.sha256.to_string(), f.problem.clone()))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Every index row's key and size.
async fn rows(index: &Index) -> Vec<KeyRow> {
    index.key_page(None, 10_000).await.expect("key_page")
}

fn options(repair: bool) -> FsckOptions {
    FsckOptions {
        repair,
        grace: Duration::ZERO,
    }
}

/// Damage of every kind is reported once and left as it is; `--repair`
/// fixes it all, and a second run finds nothing.
pub async fn reports_then_repairs_each_damage(on: On) {
    let Setup { s, index, _pg } = start(on).await;
    let d = damage(&s, &index).await;
    let (keys, before) = (s.keys().await, rows(&index).await);
    let report = fsck::fsck(s.config(), options(false)).await.expect("fsck");
    assert_eq!(found(&report), expected(&d), "{report:#?}");
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.outcome == Outcome::Reported)
    );
    assert!(!report.clean());
    assert_eq!((s.keys().await, rows(&index).await), (keys, before));
    let good = asset(&index, &d.good).await.expect("good asset");

    let repaired = fsck::fsck(s.config(), options(true)).await.expect("repair");
    assert_eq!(found(&repaired), expected(&d), "{repaired:#?}");
    assert!(repaired.clean(), "{repaired:#?}");
    let again = fsck::fsck(s.config(), options(false)).await.expect("fsck");
    assert_eq!(
        (again.findings.len(), again.clean()),
        (0, true),
        "{again:#?}"
    );
    assert!(
        again
            .summary()
            .starts_with("clean: 5 index rows, 5 objects;"),
        "{}",
        again.summary()
    );

    assert_repaired(&s, &index, &d).await;
    // What the background jobs learned meanwhile is not fsck's doing.
    let untouched = |a: Option<Asset>| {
        a.map(|a| Asset {
            media: None,
            thumbnail: None,
            ..a
        })
    };
    assert_eq!(
        untouched(asset(&index, &d.good).await),
        untouched(Some(good))
    );
    s.stop().await;
}

async fn asset(index: &Index, sha: &str) -> Option<Asset> {
    index.get(&sha.parse().expect("sha")).await.expect("get")
}

/// After `--repair`: what each damage became.
async fn assert_repaired(s: &TestServer, index: &Index, d: &Damage) {
    let (_, json) = s.get_json("/v1/assets").await;
    let page: AssetPage = serde_json::from_value(json).expect("page");
    let listed = |sha: &str| {
        page.items
            .iter()
            .find(|a| a.sha256.as_str() == sha)
            .cloned()
    };
    let adopted = listed(&d.sidecar).expect("the content with a sidecar is listed");
    assert_eq!((adopted.name.as_str(), adopted.size), (SIDECAR_NAME, 14));
    assert_eq!(adopted.key, format!("{}.jpg", d.sidecar));
    let bare = listed(&d.bare).expect("the bare content is listed");
    assert_eq!((bare.key.as_str(), bare.size), (bare.name.as_str(), 4));
    assert!(listed(&d.gone).is_none());
    let gone: Sha256Hex = d.gone.parse().expect("sha");
    let audit = index.deletions(&gone).await.expect("deletions");
    assert!(matches!(&audit[..], [(None, _)]), "{audit:?}");
    let wrong = asset(index, &d.wrong).await.expect("wrong-key asset");
    assert_eq!(wrong.key, format!("{}.jpg", d.wrong));
    let url = s.url(&format!("/v1/assets/{}/content", d.wrong));
    let mut res = s.client().get(url).send().await.expect("GET content");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.body().await.expect("body"), &b"wrong key"[..]);
    let keys = s.keys().await;
    assert!(!keys.contains(&format!("{}.bin", d.copied)), "{keys:?}");
    assert!(keys.contains(&format!("{}.txt", d.copied)), "{keys:?}");
    assert!(keys.contains(&format!("{}.txt", d.good)), "{keys:?}");
}

/// The binary prints one line per finding and a summary, and exits 1 while
/// problems remain, 0 once repaired, 2 when it cannot check.
pub async fn the_binary_reports_repairs_and_exits_by_outcome() {
    let Setup { s, index, _pg } = start(On::Sqlite).await;
    let d = damage(&s, &index).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("server.toml");
    let url = s.config().storage.url.clone().expect("storage url");
    std::fs::write(&config, config_toml(&s, &url)).expect("config");
    let out = run(&config, &["fsck", "--grace-secs", "0"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout.lines().count(), 6, "{stdout}");
    for (sha, problem) in expected(&d) {
        let line = format!("{:<14} {sha} {problem}", problem.kind());
        assert!(stdout.lines().any(|l| l == line), "{line:?} in\n{stdout}");
    }
    let summary = stdout.lines().last().unwrap_or_default();
    let counts = "2 unindexed, 1 missing-object, 1 wrong-key, 1 extra-copies, 0 size-mismatch";
    let want = format!("problems remain: 4 index rows, 6 objects; 5 problems ({counts})");
    assert!(summary.starts_with(&want), "{summary}");

    let out = run(&config, &["fsck", "--repair", "--grace-secs", "0"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout.matches(" => repaired: ").count(), 5, "{stdout}");
    let out = run(&config, &["fsck"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("clean: 5 index rows, 5 objects;"));

    assert_cannot_check(&s, &index, &config).await;
    s.stop().await;
}

/// Exit status 2 and no report: storage that cannot be opened, a bad
/// configuration, and `--repair` on an empty bucket (a wrong storage URL),
/// which would otherwise remove every row.
async fn assert_cannot_check(s: &TestServer, index: &Index, config: &std::path::Path) {
    let not_a_dir = format!("file://{}", config.display());
    let elsewhere = format!("file://{}", config.with_file_name("elsewhere").display());
    for (toml, args) in [
        (config_toml(s, &not_a_dir), &["fsck"][..]),
        ("[storage]\nno_such_key = 1\n".to_owned(), &["fsck"]),
        (
            config_toml(s, &elsewhere),
            &["fsck", "--repair", "--grace-secs", "0"],
        ),
    ] {
        std::fs::write(config, &toml).expect("config");
        let out = run(config, args).await;
        assert_eq!(
            (out.status.code(), out.stdout.len()),
            (Some(2), 0),
            "{toml}: {out:?}"
        );
    }
    let stderr =
        String::from_utf8_lossy(&run(config, &["fsck", "--repair"]).await.stderr).into_owned();
    assert!(
        stderr.contains("holds no content while the index lists assets"),
        "{stderr}"
    );
    assert_eq!(rows(index).await.len(), 5);
}

/// A configuration file for the binary: `s`'s state directory (its SQLite
/// index) and the file store at `url`.
fn config_toml(s: &TestServer, url: &str) -> String {
    let state = s.config().state_dir();
    format!(
        "[server]\nstate_dir = \"{}\"\n\n[storage]\nurl = \"{url}\"\n",
        state.display()
    )
}

/// `asset-catalog-server --config CONFIG ARGS…`, off the server's thread.
async fn run(config: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().arg("--config").arg(config).args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run the binary"))
        .await
        .expect("join")
}

/// With the default grace period a fresh object without a row may be an
/// upload about to insert it: counted, neither adopted nor deleted.
pub async fn a_fresh_object_without_a_row_is_left_alone() {
    let Setup { s, index, _pg } = start(On::Sqlite).await;
    let sha = sha256_hex(b"arriving");
    let key = format!("{sha}.txt");
    put(&s, &key, b"arriving").await;
    let options = FsckOptions {
        repair: true,
        ..FsckOptions::default()
    };
    let report = fsck::fsck(s.config(), options).await.expect("fsck");
    assert_eq!(
        (report.findings.len(), report.recent),
        (0, 1),
        "{report:#?}"
    );
    assert!(report.clean());
    assert!(s.keys().await.contains(&key));
    assert_eq!(asset(&index, &sha).await, None);
    s.stop().await;
}

/// A row whose object has another size is reported, and `--repair` leaves
/// both as they are.
pub async fn size_mismatches_are_reported_never_repaired() {
    let Setup { s, index, _pg } = start(On::Sqlite).await;
    s.upload("sized.txt", b"sized").await;
    let sha = sha256_hex(b"sized");
    let key = format!("{sha}.txt");
    put(&s, &key, b"sized, then grown").await;
    let before = asset(&index, &sha).await;
    let report = fsck::fsck(s.config(), options(true)).await.expect("fsck");
    let want = Problem::SizeMismatch {
        key: key.clone(),
        row: 5,
        object: 17,
    };
    assert_eq!(found(&report), vec![(sha.clone(), want)]);
    assert_eq!(report.findings[0].outcome, Outcome::Reported);
    assert!(!report.clean());
    assert_eq!(asset(&index, &sha).await, before);
    let head = s.store.head(&key.as_str().into()).await.expect("head");
    assert_eq!(head.size, 17);
    s.stop().await;
}
