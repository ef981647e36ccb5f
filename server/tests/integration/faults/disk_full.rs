//! A full state directory (a small tmpfs): uploads are refused with a clear
//! error, nothing half-written stays, and everything works once there is room.

use super::*;

/// Write `path` until the file system says ENOSPC.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("filler");
    let block = vec![0x5au8; 4096];
    loop {
        match file.write_all(&block).and_then(|()| file.sync_all()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

/// A multipart/form-data upload (spooled to the state directory first).
async fn post_form(env: &Env, name: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let boundary = "fault-boundary-7";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(body);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = env
        .client()
        .post(env.url("/v1/assets"))
        .insert_header((
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        ))
        .send_body(form)
        .await
        .expect("POST form");
    json_of(res).await
}

/// The state directory (index, spool, file store) on a full 16 MiB tmpfs:
/// 507 `insufficient_storage` for a single PUT, a multipart upload and a
/// form upload, a clear log line, an intact index, a restart while full, and
/// uploads work again once space is freed.
async fn disk_full_state_dir() {
    let env = Env::new();
    let state = env.state();
    let token_index = std::fs::read(state.join("index.sqlite3")).ok();
    let _ = std::fs::remove_dir_all(&state);
    let Some(_mount) = Tmpfs::mount(&state, "16m") else {
        return;
    };
    // The admin token lives in the index Env::new made; bring it along.
    if let Some(index) = token_index {
        std::fs::write(state.join("index.sqlite3"), index).expect("restore index");
    }
    env.use_bucket(&Bucket::File);
    let log_path = env.dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let server = Running::start(&env, Stdio::from(log)).await;
    upload(&env, "before.txt", b"stored before the disk filled").await;
    let filler = state.join("filler");
    fill(&filler);

    let small = body_of(256 * 1024, 1);
    let large = body_of(12 * MIB, 2);
    let form = body_of(64 * 1024, 3);
    for (name, body) in [("small.bin", &small), ("large.bin", &large)] {
        let (status, json) = put(&env, name, body.clone()).await;
        assert_error(status, &json, 507, ErrorCode::InsufficientStorage);
    }
    let (status, json) = post_form(&env, "form.bin", &form).await;
    assert_error(status, &json, 507, ErrorCode::InsufficientStorage);
    let keys = env.keys(&Bucket::File).await;
    assert_eq!(keys.len(), 2, "only the first asset: {keys:?}");
    assert_eq!(integrity(&state.join("index.sqlite3")), "ok");
    server.stop();
    let logged = std::fs::read_to_string(&log_path).expect("read log");
    assert!(logged.contains("out of space"), "{logged}");

    // Restart while still full: the index opens, the server is ready.
    let server = Running::start(&env, Stdio::inherit()).await;
    std::fs::remove_file(&filler).expect("free space");
    for (name, body) in [("small.bin", &small), ("large.bin", &large)] {
        let (status, json) = put(&env, name, body.clone()).await;
        assert_eq!(status, 201, "{name} after freeing space: {json}");
        let sha = sha256_hex(body);
        assert_eq!(content_digest(&env, &sha).await, (sha, body.len()));
    }
    let (status, json) = post_form(&env, "form.bin", &form).await;
    assert_eq!(status, 201, "form after freeing space: {json}");
    assert_eq!(
        env.keys(&Bucket::File).await.len(),
        8,
        "four assets, once each"
    );
    server.stop();
    assert_eq!(integrity(&state.join("index.sqlite3")), "ok");
    env.assert_index_matches_bucket();
    assert!(staging_files(&env.objects()).is_empty());
}

#[actix_web::test]
async fn disk_full_on_the_state_dir() {
    disk_full_state_dir().await;
}
