//! The schema's tests: a fresh file, damage, and each migration from the
//! version before it keeping (and backfilling) existing data.

use super::*;

#[test]
fn creates_migrates_and_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/index.sqlite3");
    drop(open_writer(&path).expect("create"));
    let conn = open_writer(&path).expect("reopen");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    let reader = open_reader(&path).expect("reader");
    let n: i64 = reader
        .query_row("SELECT count(*) FROM assets", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 0);
}

#[test]
fn garbage_file_is_reported_as_corrupt_with_recovery_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index.sqlite3");
    std::fs::write(&path, vec![0x5a; 8192]).expect("write garbage");
    let err = open_writer(&path).expect_err("corrupt");
    assert!(
        matches!(err, IndexError::Corrupt { .. } | IndexError::Damaged { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("reindex"), "{err}");
}

#[test]
fn version_4_fills_names_and_their_index_from_a_version_3_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index.sqlite3");
    let v3 = Connection::open(&path).expect("create");
    v3.execute_batch(&format!(
        "{SCHEMA_V1}{SCHEMA_V2}{SCHEMA_V3}PRAGMA user_version = 3;"
    ))
    .expect("v3");
    v3.execute_batch(
        "INSERT INTO assets (sha256, key, size, content_type, name, first_seen, last_seen)
             VALUES ('aa', 'aa.jpg', 1, 'image/jpeg', 'IMG_1.jpg', 1, 1);
         INSERT INTO sightings (sha256, client, path, name, seen_at) VALUES
             ('aa', 'laptop', '/p/IMG_1.jpg', 'IMG_1.jpg', 1),
             ('aa', 'desk', '/q/Kestrel.jpg', 'Kestrel.jpg', 2);",
    )
    .expect("rows");
    drop(v3);
    let conn = open_writer(&path).expect("migrate");
    let names: String = conn
        .query_row("SELECT names FROM assets", [], |r| r.get(0))
        .expect("names");
    let mut names: Vec<&str> = names.split('\n').collect();
    names.sort_unstable();
    assert_eq!(names, ["IMG_1.jpg", "Kestrel.jpg"], "each name once");
    let found = |pattern: &str| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM assets_names WHERE assets_names.names LIKE ?",
            [pattern],
            |r| r.get(0),
        )
        .expect("search")
    };
    assert_eq!(
        found("%kestrel%"),
        1,
        "the trigram index was built from the old rows"
    );
    conn.execute(
        "INSERT INTO sightings (sha256, client, path, name, seen_at) \
         VALUES ('aa', 'nas', '/n/osprey.jpg', 'osprey.jpg', 3)",
        [],
    )
    .expect("new sighting");
    assert_eq!(
        found("%OSPREY%"),
        1,
        "a new sighting's name reaches the index"
    );
}

#[test]
fn version_5_queues_a_metadata_job_for_every_existing_asset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index.sqlite3");
    let v4 = Connection::open(&path).expect("create");
    v4.execute_batch(&format!(
        "{SCHEMA_V1}{SCHEMA_V2}{SCHEMA_V3}{SCHEMA_V4}PRAGMA user_version = 4;"
    ))
    .expect("v4");
    v4.execute_batch(
        "INSERT INTO assets (sha256, key, size, content_type, name, first_seen, last_seen)
             VALUES ('aa', 'aa.jpg', 1, 'image/jpeg', 'a.jpg', 1, 1),
                    ('bb', 'bb.txt', 1, 'text/plain', 'b.txt', 2, 2);",
    )
    .expect("rows");
    drop(v4);
    let conn = open_writer(&path).expect("migrate");
    let jobs: Vec<(String, String, String)> = conn
        .prepare("SELECT kind, sha256, state FROM jobs ORDER BY sha256")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    let queued = |sha: &str| ("metadata".to_owned(), sha.to_owned(), "queued".to_owned());
    assert_eq!(jobs, [queued("aa"), queued("bb")]);
    let (integrity, verified): (String, i64) = conn
        .query_row(
            "SELECT integrity, verified_at FROM assets WHERE sha256 = 'aa'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("columns");
    assert_eq!(
        (integrity.as_str(), verified),
        ("unverified", 0),
        "due for scrub"
    );
}

#[test]
fn version_6_backfills_the_overview_tables_and_triggers_keep_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index.sqlite3");
    let v5 = Connection::open(&path).expect("create");
    v5.execute_batch(&format!(
        "{SCHEMA_V1}{SCHEMA_V2}{SCHEMA_V3}{SCHEMA_V4}{SCHEMA_V5}PRAGMA user_version = 5;"
    ))
    .expect("v5");
    // Days 0 and 1 (1970-01-01 and -02) and day -1 (1969-12-31).
    v5.execute_batch(
        "INSERT INTO assets (sha256, key, size, content_type, name, first_seen, last_seen) VALUES
             ('aa', 'aa', 10, 't', 'a', 5, 5), ('bb', 'bb', 20, 't', 'b', 86399999999999, 7),
             ('cc', 'cc', 40, 't', 'c', 86400000000000, 9), ('dd', 'dd', 80, 't', 'd', -1, 1);
         INSERT INTO sightings (sha256, client, path, name, seen_at) VALUES
             ('aa', 'laptop', '/a', 'a', 5), ('bb', 'laptop', '/b', 'b', 7),
             ('cc', 'nas', '/c', 'c', 9);",
    )
    .expect("rows");
    drop(v5);
    let conn = open_writer(&path).expect("migrate");
    let table = |sql: &str| -> Vec<(String, i64, i64)> {
        conn.prepare(sql)
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    };
    let days = "SELECT CAST(day AS TEXT), assets, bytes FROM days ORDER BY day";
    let clients = "SELECT client, sightings, last_seen FROM clients ORDER BY client";
    let row = |k: &str, a, b| (k.to_owned(), a, b);
    assert_eq!(
        table(days),
        [row("-1", 1, 80), row("0", 2, 30), row("1", 1, 40)]
    );
    assert_eq!(table(clients), [row("laptop", 2, 7), row("nas", 1, 9)]);
    conn.execute_batch(
        "INSERT INTO sightings (sha256, client, path, name, seen_at) VALUES ('dd', 'phone', '/d', 'd', 3);
         UPDATE sightings SET seen_at = 11 WHERE path = '/a';
         DELETE FROM assets WHERE sha256 IN ('bb', 'cc');",
    )
    .expect("changes");
    assert_eq!(
        table(days),
        [row("-1", 1, 80), row("0", 1, 10), row("1", 0, 0)]
    );
    let expected = [row("laptop", 1, 11), row("nas", 0, 9), row("phone", 1, 3)];
    assert_eq!(table(clients), expected);
}

#[test]
fn version_7_adds_uploads_and_keeps_what_was_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index.sqlite3");
    let v6 = Connection::open(&path).expect("create");
    v6.execute_batch(&format!(
        "{SCHEMA_V1}{SCHEMA_V2}{SCHEMA_V3}{SCHEMA_V4}{SCHEMA_V5}{SCHEMA_V6}PRAGMA user_version = 6;"
    ))
    .expect("v6");
    v6.execute_batch(
        "INSERT INTO tokens (id, name, scopes, secret_hash, created) VALUES ('t1', 'ci', 'upload', x'00', 1);
         INSERT INTO assets (sha256, key, size, content_type, name, first_seen, last_seen, uploaded_by)
             VALUES ('aa', 'aa.jpg', 10, 'image/jpeg', 'a.jpg', 5, 5, 't1');
         INSERT INTO sightings (sha256, client, path, name, seen_at) VALUES ('aa', 'laptop', '/a', 'a.jpg', 5);
         INSERT INTO sessions (id_hash, kind, token_id, scopes, csrf, created, expires)
             VALUES (x'01', 'session', 't1', '', 'c', 1, 9);",
    )
    .expect("rows");
    drop(v6);
    let conn = open_writer(&path).expect("migrate");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, 7);
    let kept: (i64, i64, i64, i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM tokens), (SELECT count(*) FROM assets),
                    (SELECT count(*) FROM sightings), (SELECT count(*) FROM sessions),
                    (SELECT count(*) FROM jobs), (SELECT sum(assets) FROM days)",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .expect("counts");
    assert_eq!(kept, (1, 1, 1, 1, 1, 1), "every row and figure is kept");
    conn.execute_batch(
        r#"INSERT INTO uploads (id, sha256, length, name, client, key, multipart_id, hash_state,
                                created, updated, expires)
               VALUES ('u1', 'bb', 10, 'b.bin', 'laptop', 'bb.bin', 'mp', x'00', 1, 1, 2);
           INSERT INTO upload_parts (upload_id, number, id) VALUES ('u1', 1, 'etag-1');
           UPDATE uploads SET "offset" = 10 WHERE id = 'u1';"#,
    )
    .expect("an upload with a part");
    assert!(
        conn.execute(r#"UPDATE uploads SET "offset" = 11 WHERE id = 'u1'"#, [])
            .is_err(),
        "the offset never passes the length"
    );
    conn.execute("DELETE FROM uploads", []).expect("end");
    let parts: i64 = conn
        .query_row("SELECT count(*) FROM upload_parts", [], |r| r.get(0))
        .expect("parts");
    assert_eq!(parts, 0, "parts go with their upload");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index.sqlite3");
    let conn = open_writer(&path).expect("create");
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .expect("bump");
    drop(conn);
    assert!(matches!(open_writer(&path), Err(IndexError::TooNew { .. })));
}
