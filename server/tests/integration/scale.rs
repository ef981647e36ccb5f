//! N servers on one PostgreSQL index (real binaries, see `fleet`):
//! migrations applied once by servers starting together, tokens shared,
//! the same content through every server at once stored once under one key,
//! a DELETE racing an upload on another server, and an index outage
//! answered with 503 `index_unavailable` and recovered without a restart.

use asset_catalog_proto::{ErrorCode, HEADER_CLIENT, HEADER_NAME, HEADER_PATH};
use bytes::Bytes;
use futures_util::future::join_all;

use crate::fleet::{self, Fleet};
use crate::support::{assert_error, json_of, sha256_hex};

/// N hashes per round of the race tests.
const HASHES: usize = 8;

/// K rounds of the race tests: 6, or 100 at soak size (`ASSET_CATALOG_SOAK=1`).
fn rounds() -> usize {
    if std::env::var_os("ASSET_CATALOG_SOAK").is_some_and(|v| v == "1") {
        100
    } else {
        6
    }
}

fn client(token: &str) -> awc::Client {
    awc::Client::builder()
        .disable_timeout()
        .add_default_header(("Authorization", format!("Bearer {token}")))
        .finish()
}

/// PUT `body` as `name` from `host` through server `i`.
async fn put(
    fleet: &Fleet,
    i: usize,
    host: &str,
    name: &str,
    body: Bytes,
) -> (u16, serde_json::Value) {
    let sha = sha256_hex(&body);
    let res = client(&fleet.token)
        .put(fleet.url(i, &format!("/v1/assets/{sha}")))
        .insert_header((HEADER_NAME, name))
        .insert_header((HEADER_PATH, format!("data/{name}")))
        .insert_header((HEADER_CLIENT, host))
        .send_body(body)
        .await
        .expect("PUT");
    json_of(res).await
}

async fn get(fleet: &Fleet, i: usize, path: &str, token: &str) -> (u16, serde_json::Value) {
    let res = client(token)
        .get(fleet.url(i, path))
        .send()
        .await
        .expect("GET");
    json_of(res).await
}

fn body(round: usize, n: usize) -> Bytes {
    Bytes::from(format!("round {round} content {n} ").repeat(50 + n))
}

#[actix_web::test]
async fn servers_starting_together_migrate_once_and_share_tokens() {
    let fleet = fleet::start(3);
    let applied = fleet.pg.psql(
        "catalog",
        "SELECT count(*), count(DISTINCT version) FROM schema_migrations",
    );
    assert_eq!(
        applied.trim(),
        "4|4",
        "three servers applied versions 1 to 4 exactly once each"
    );
    let reader = fleet.create_token("reader", &["read"]);
    for i in 0..3 {
        let (status, _) = get(&fleet, i, "/v1/assets?limit=1", &reader).await;
        assert_eq!(
            status, 200,
            "a token made against the shared index works on server {i}"
        );
    }
    let id = reader.split('_').nth(1).expect("token id");
    let out = fleet.run(&["token", "revoke", id]);
    assert!(out.status.success(), "{out:?}");
    for i in 0..3 {
        let (status, json) = get(&fleet, i, "/v1/assets?limit=1", &reader).await;
        assert_error(status, &json, 401, ErrorCode::Unauthorized);
    }
}

#[actix_web::test]
async fn the_same_content_through_every_server_at_once_is_one_object_under_one_key() {
    let fleet = fleet::start(3);
    let names = ["photo.jpg", "photo.jpeg", "photo.JPG"];
    let hosts = ["host0", "host1", "host2"];
    for round in 0..rounds() {
        let mut puts = Vec::new();
        for n in 0..HASHES {
            for (i, name) in names.iter().enumerate() {
                puts.push(put(&fleet, i, hosts[i], name, body(round, n)));
            }
        }
        let answers = join_all(puts).await;
        for (status, json) in &answers {
            assert!(
                *status == 201 || *status == 200,
                "every client is answered success: {status} {json}"
            );
        }
        for n in 0..HASHES {
            let group = &answers[n * 3..n * 3 + 3];
            let created = group
                .iter()
                .filter(|(s, j)| *s == 201 && j["created"] == true)
                .count();
            assert_eq!(
                created, 1,
                "exactly one upload created the content: {group:?}"
            );
            let keys: std::collections::BTreeSet<_> = group
                .iter()
                .map(|(_, j)| j["asset"]["key"].to_string())
                .collect();
            assert_eq!(keys.len(), 1, "one key for every answer: {keys:?}");
            let sha = sha256_hex(&body(round, n));
            let (status, detail) = get(&fleet, 0, &format!("/v1/assets/{sha}"), &fleet.token).await;
            assert_eq!(status, 200);
            assert_eq!(detail["sighting_count"], 3, "every sighting kept: {detail}");
        }
    }
    let objects = fleet.data_objects();
    assert_eq!(
        objects.len(),
        rounds() * HASHES,
        "one object per content: {objects:?}"
    );
    let rows = fleet.pg.psql("catalog", "SELECT count(*) FROM assets");
    assert_eq!(rows.trim(), (rounds() * HASHES).to_string());
    let out = fleet.run(&["fsck"]);
    assert!(
        out.status.success(),
        "fsck finds index = bucket: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[actix_web::test]
async fn a_delete_racing_an_upload_on_another_server_leaves_row_and_object_together() {
    let fleet = fleet::start(3);
    for round in 0..rounds() {
        // Stored first through server 0, then deleted through server 1 while
        // server 2 receives the same content again.
        let mut first = Vec::new();
        for n in 0..HASHES {
            first.push(put(&fleet, 0, "host0", "doc.txt", body(round, n)));
        }
        for (status, json) in join_all(first).await {
            assert_eq!(status, 201, "{json}");
        }
        let races = (0..HASHES).map(|n| {
            let sha = sha256_hex(&body(round, n));
            let fleet = &fleet;
            async move {
                let delete = async {
                    let res = client(&fleet.token)
                        .delete(fleet.url(1, &format!("/v1/assets/{sha}")))
                        .send()
                        .await
                        .expect("DELETE");
                    json_of(res).await
                };
                let again = put(fleet, 2, "host2", "doc.txt", body(round, n));
                futures_util::join!(delete, again)
            }
        });
        for ((del, del_json), (up, up_json)) in join_all(races).await {
            assert_eq!(del, 204, "delete: {del_json}");
            assert!(up == 200 || up == 201, "upload: {up} {up_json}");
        }
    }
    let objects = fleet.data_objects();
    let rows = fleet
        .pg
        .psql("catalog", "SELECT key FROM assets ORDER BY key");
    let rows: Vec<&str> = rows.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        objects, rows,
        "every row has its object and every object its row"
    );
    let out = fleet.run(&["fsck"]);
    assert!(
        out.status.success(),
        "fsck clean: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[actix_web::test]
async fn an_index_outage_is_503_index_unavailable_and_recovers_without_a_restart() {
    let mut fleet = fleet::start(1);
    fleet.pg.stop_immediate();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, json) = get(&fleet, 0, "/readyz", &fleet.token).await;
        if status == 503 {
            assert_eq!(json["code"], "index_unavailable", "{json}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz stayed {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let res = client(&fleet.token)
        .put(fleet.url(0, &format!("/v1/assets/{}", sha256_hex(b"during"))))
        .insert_header((HEADER_NAME, "during.txt"))
        .insert_header((HEADER_CLIENT, "host0"))
        .send_body(Bytes::from_static(b"during"))
        .await
        .expect("PUT");
    let retry_after = res.headers().get("retry-after").cloned();
    let (status, json) = json_of(res).await;
    assert_error(status, &json, 503, ErrorCode::IndexUnavailable);
    assert!(retry_after.is_some(), "503 carries Retry-After");
    fleet.pg.start_again();
    fleet.wait_ready(0);
    let (status, json) = put(
        &fleet,
        0,
        "host0",
        "after.txt",
        Bytes::from_static(b"after"),
    )
    .await;
    assert_eq!(status, 201, "uploads work again without a restart: {json}");
}
