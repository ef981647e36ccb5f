//! Issue 16, the watcher's side: a file at or above
//! `resumable_threshold_bytes` goes up as a resumable (tus) session that
//! survives kill -9 of the watcher and of the server at random points
//! (seeded, printed), re-sending at most one of the server's parts per kill
//! (the server's count of PATCH bytes received, less the file's length); a
//! file changed mid-session has its session terminated and the new content
//! stored; `status` lists a partial upload with its progress; a try cut
//! after it moved the upload forward is retried as after a first failure,
//! however many cuts came before. The server
//! cuts bodies into 5 MiB parts here so that CI sizes cross many of them.
//!
//! CI sizes by default, soak sizes under `ASSET_CATALOG_SOAK=1`;
//! `ASSET_CATALOG_FAULT_SEED=N` replays a run's kill points. The same kill
//! loops run over a 3-node Garage cluster (`GARAGE_BIN`, as `cluster.rs`).

use std::time::{Duration, Instant};

use rand::Rng;
use testkit::garage::GarageCluster;

use crate::faults::{seeded_rng, sized};
use crate::support::server::metric_in;
use crate::support::{Home, Server, content, http, sha, wait_stored, write};

const MIB: u64 = 1 << 20;
/// The server's `[storage] part_size_bytes` in these tests (S3's minimum).
const PART: u64 = 5 * MIB;
const T: Duration = Duration::from_secs(600);
const RECEIVED: &str = "asset_catalog_upload_session_received_bytes_total";
const CREATED: &str = "asset_catalog_uploads_total{outcome=\"created\"}";

/// Where the server keeps the bytes.
enum Store {
    Files,
    Garage(GarageCluster, tempfile::TempDir),
}

impl Store {
    fn garage() -> Self {
        let garage = GarageCluster::start();
        let keys = tempfile::tempdir().expect("tempdir");
        let secret = keys.path().join("s3-secret");
        std::fs::write(&secret, garage.secret_key()).expect("secret");
        let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
        std::fs::set_permissions(&secret, private).expect("chmod");
        Self::Garage(garage, keys)
    }

    /// A server with 5 MiB parts and short-lived session gauges.
    fn server(&self) -> Server {
        let limits = "max_upload_bytes = 4294967296";
        let parts = format!("part_size_bytes = {PART}\n");
        let uploads = "[uploads]\nexpire_secs = 3600\n";
        match self {
            Self::Files => Server::start_with_sections(limits, &parts, uploads),
            Self::Garage(g, keys) => Server::start_on(limits, |_| {
                format!(
                    "[storage]\nurl = \"s3://{}\"\nendpoint = \"{}\"\nregion = \"{}\"\n\
                     allow_http = true\naccess_key_id = \"{}\"\nsecret_access_key_file = \"{}\"\n\
                     {parts}\n{uploads}",
                    g.bucket(),
                    g.endpoint(0),
                    g.region(),
                    g.access_key(),
                    keys.path().join("s3-secret").display()
                )
            }),
        }
    }
}

/// A watcher that sends files of 1 MiB and more resumably.
fn home_for(server: &Server) -> Home {
    Home::new(
        server,
        &[("ASSET_WATCHER__RESUMABLE_THRESHOLD_BYTES", "1048576")],
    )
}

/// `n` sorted points in `(0, len)`: how many PATCH bytes the server has
/// received when the next kill comes.
fn kill_points(rng: &mut impl Rng, len: u64, n: usize) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).map(|_| rng.random_range(1..len)).collect();
    v.sort_unstable();
    v
}

/// Poll `/metrics` every 2 ms until the server has received `target` PATCH
/// bytes counting `before` from its earlier lives (true), or has stored
/// the content (false).
fn reach(server: &Server, before: u64, target: u64) -> bool {
    let deadline = Instant::now() + T;
    loop {
        let text = server.metrics_text();
        if before + metric_in(&text, RECEIVED) >= target {
            return true;
        }
        if metric_in(&text, CREATED) > 0 {
            return false;
        }
        assert!(Instant::now() < deadline, "no progress towards {target}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A file of `len` bytes at `rel` under the watched tree; its hash.
fn big_file(home: &Home, rel: &str, seed: &str, len: u64) -> String {
    let data = content(seed, usize::try_from(len).expect("size"));
    write(&home.watched.join(rel), &data);
    sha(&data)
}

/// The content as the server serves it hashes to `want`.
fn assert_served(server: &Server, want: &str, len: u64) {
    let res = http::get(
        server.port,
        &format!("/v1/assets/{want}/content"),
        server.admin_token(),
    )
    .expect("GET content");
    assert_eq!(res.status, 200);
    assert_eq!(res.body.len() as u64, len);
    assert_eq!(sha(&res.body), want, "the stored bytes are the file's");
}

/// Stored once, verified, nothing partial left, and at most `per_kill`
/// bytes re-sent per kill.
fn assert_resumed(
    server: &Server,
    home: &Home,
    want: &str,
    len: u64,
    kills: u64,
    received: u64,
    per_kill: u64,
) {
    let resent = received.saturating_sub(len);
    eprintln!(
        "{kills} kills: {received} PATCH bytes received for {len}, {resent} re-sent \
         ({:.2} parts per kill; at most {:.2} allowed)",
        resent as f64 / PART as f64 / kills.max(1) as f64,
        per_kill as f64 / PART as f64
    );
    assert!(received >= len, "{received} bytes received for {len}");
    assert!(
        resent <= kills * per_kill,
        "{resent} bytes re-sent after {kills} kills: more than {per_kill} per kill"
    );
    assert_eq!(server.metric(CREATED), 1);
    assert_eq!(server.stored_bytes(), len);
    assert_eq!(server.redundant_uploads(), 0);
    assert_served(server, want, len);
    let status = home.status();
    assert_eq!(status["queued"].as_u64(), Some(0), "{status}");
    assert_eq!(
        status["partial"].as_array().map(Vec::len),
        Some(0),
        "{status}"
    );
}

fn watcher_kills(store: &Store) {
    let len = sized(48 * MIB, 400 * MIB);
    let mut rng = seeded_rng("resumable, watcher kill -9", None);
    let server = store.server();
    let home = home_for(&server);
    let want = big_file(&home, "big/film.bin", "resume-watcher", len);
    let mut kills = 0;
    for target in kill_points(&mut rng, len, sized(6, 30)) {
        let run = home.spawn(&[], &[]);
        let mid_upload = reach(&server, 0, target);
        run.kill9();
        if !mid_upload {
            break;
        }
        kills += 1;
        let at = server.metric(RECEIVED);
        eprintln!("kill {kills}: at {target} PATCH bytes received ({at} now)");
    }
    // A run killed before it sent a byte (its target was passed by bytes
    // the previous run had in flight) costs nothing: count the runs that
    // sent, i.e. the first and those that resumed.
    let resumed = home.watcher_log().matches("resuming the upload of").count() as u64;
    let sending = (resumed + 1).min(kills);
    eprintln!("{kills} kills, {sending} of them while the run was sending");
    let run = home.start();
    wait_stored(&server, &home, std::slice::from_ref(&want), T);
    assert_eq!(run.stop().code(), Some(0));
    assert!(
        home.watcher_log().matches("resuming the upload of").count() as u64 > resumed,
        "the last run resumed"
    );
    // A watcher's cut connection ends the PATCH after the part being
    // stored is committed: at most the part being received is lost.
    let received = server.metric(RECEIVED);
    assert_resumed(&server, &home, &want, len, sending, received, PART);
}

fn server_kills(store: &Store) {
    let len = sized(48 * MIB, 400 * MIB);
    let mut rng = seeded_rng("resumable, server kill -9", None);
    let mut server = store.server();
    let home = home_for(&server);
    let want = big_file(&home, "big/server.bin", "resume-server", len);
    let run = home.start();
    // The counter starts again with each server process: what earlier ones
    // received, read just before each kill.
    let mut before = 0;
    let mut kills = 0;
    for target in kill_points(&mut rng, len, sized(4, 8)) {
        if before + server.metric(RECEIVED) >= target {
            continue; // passed before this server's first byte
        }
        if !reach(&server, before, target) {
            break;
        }
        before += server.metric(RECEIVED);
        server.kill9();
        server.spawn();
        kills += 1;
        eprintln!("server kill {kills}: {before} PATCH bytes received so far");
    }
    wait_stored(&server, &home, std::slice::from_ref(&want), T);
    assert_eq!(run.stop().code(), Some(0));
    let received = before + server.metric(RECEIVED);
    eprintln!(
        "the watcher sent {} body bytes in all",
        home.status()["bytes_sent"]
    );
    // A server killed while it stores a part loses that part (received
    // whole, not yet committed) and the start of the next one it holds.
    assert_resumed(&server, &home, &want, len, kills, received, PART + MIB);
}

#[test]
fn resumable_upload_resumes_after_kill_9_of_the_watcher() {
    watcher_kills(&Store::Files);
}

#[test]
fn resumable_upload_resumes_after_kill_9_of_the_server() {
    server_kills(&Store::Files);
}

#[test]
fn resumable_upload_on_garage_resumes_after_kills_of_either_side() {
    let store = Store::garage();
    watcher_kills(&store);
    server_kills(&store);
}

#[test]
fn resumable_upload_of_a_changed_file_ends_its_session_and_sends_the_new_content() {
    let server = Store::Files.server();
    let home = home_for(&server);
    let rel = "big/changing.bin";
    let old = big_file(&home, rel, "before", 24 * MIB);
    let run = home.spawn(&[], &[]);
    assert!(reach(&server, 0, 8 * MIB), "stored before the kill");
    run.kill9();
    let status = home.status();
    let session = status["partial"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no partial upload listed: {status}"))
        .to_owned();
    let new = big_file(&home, rel, "after", 20 * MIB);
    let run = home.start();
    wait_stored(&server, &home, std::slice::from_ref(&new), T);
    let log = run.log();
    assert_eq!(run.stop().code(), Some(0));
    assert!(
        log.contains("changed since its upload session began"),
        "{log}"
    );
    let head = http::send(
        server.port,
        "HEAD",
        &session,
        &server.upload_token,
        "Tus-Resumable: 1.0.0\r\n",
    )
    .expect("HEAD the old session");
    assert_eq!(head.status, 404, "the old session was terminated");
    assert!(
        !server.hashes().contains(&old),
        "the old content is not stored"
    );
    assert_served(&server, &new, 20 * MIB);
    crate::support::wait_until("no session open", T, || {
        (server.metric("asset_catalog_upload_sessions") == 0).then_some(())
    });
    assert_eq!(home.status()["partial"].as_array().map(Vec::len), Some(0));
}

#[test]
fn resumable_upload_status_shows_a_partial_upload_with_its_progress() {
    let mut server = Store::Files.server();
    let home = home_for(&server);
    let len = 64 * MIB;
    let want = big_file(&home, "big/status.bin", "status", len);
    // Killed once, the watcher resumes (its HEAD records the committed
    // offset); then the server goes away mid-upload.
    let run = home.spawn(&[], &[]);
    assert!(reach(&server, 0, 16 * MIB), "stored before the kill");
    run.kill9();
    let run = home.spawn(&[], &[]);
    assert!(
        reach(&server, 0, 44 * MIB),
        "stored before the server was killed: make the file larger"
    );
    server.kill9();
    let status = home.status();
    let partial = &status["partial"][0];
    assert_eq!(
        partial["path"].as_str(),
        home.watched.join("big/status.bin").to_str(),
        "{status}"
    );
    assert_eq!(partial["length"].as_u64(), Some(len), "{status}");
    let offset = partial["offset"].as_u64().unwrap_or(0);
    assert!(offset > 0 && offset < len, "{status}");
    let out = home.run(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let percent = format!("of 64.0 MiB ({}%)", offset * 100 / len);
    assert!(
        text.contains("Partial uploads")
            && text.contains("big/status.bin")
            && text.contains(&percent),
        "{text}"
    );
    server.spawn();
    wait_stored(&server, &home, std::slice::from_ref(&want), T);
    assert_eq!(run.stop().code(), Some(0));
    assert_eq!(home.status()["partial"].as_array().map(Vec::len), Some(0));
}

/// A field's value in a log line (`name=value`).
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
}

#[test]
fn resumable_upload_retries_a_cut_that_moved_it_forward_as_a_first_failure() {
    let mut server = Store::Files.server();
    let home = home_for(&server);
    let len = 96 * MIB;
    let want = big_file(&home, "big/flaky.bin", "flaky", len);
    let run = home.start();
    // Each server life receives 3 parts, so commits at least the first
    // (a kill loses at most the part being stored and the start of the
    // next): every cut moves the upload forward. The try cut by the first
    // kill began the session and cannot see that (the server is gone when
    // it asks); each later cut try found the session further on than the
    // try before it had left it.
    let kills = 4;
    let mut before = 0;
    for kill in 1..=kills {
        assert!(
            reach(&server, 0, 3 * PART),
            "stored before kill {kill}: make the file larger"
        );
        before += server.metric(RECEIVED);
        server.kill9();
        server.spawn();
    }
    wait_stored(&server, &home, std::slice::from_ref(&want), T);
    let log = run.log();
    assert_eq!(run.stop().code(), Some(0));
    let first_failure = asset_watcher::backoff::Backoff::default().delay(1, 1.0);
    let cuts: Vec<(u64, u64)> = log
        .lines()
        .filter(|l| l.contains("as after a first failure"))
        .map(|l| {
            let num = |name| field(l, name).and_then(|v| v.parse().ok());
            num("upload.offset")
                .zip(num("retry_in_ms"))
                .unwrap_or_else(|| panic!("no offset and delay in {l}"))
        })
        .collect();
    eprintln!("{kills} server kills; tries cut after progress (offset, retry in ms): {cuts:?}");
    assert!(cuts.len() as u64 >= kills - 1, "{cuts:?}\n{log}");
    for (i, (offset, retry_in_ms)) in cuts.iter().enumerate() {
        assert!(*offset > 0 && *offset < len, "{cuts:?}");
        assert!(
            i == 0 || *offset > cuts[i - 1].0,
            "each counted cut is further on: {cuts:?}"
        );
        assert!(
            u128::from(*retry_in_ms) <= first_failure.as_millis(),
            "retried as after a first failure ({first_failure:?}): {cuts:?}"
        );
    }
    let received = before + server.metric(RECEIVED);
    assert_resumed(&server, &home, &want, len, kills, received, PART + MIB);
}
