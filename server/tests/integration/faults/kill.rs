//! `kill -9` of the server in the middle of an upload, single PUT and
//! multipart, on the file store and on Garage.

use super::*;

/// `kill -9` of the server while it receives `total` bytes (of which
/// `sent` arrived): nothing partial is visible, the index agrees with
/// `reindex`, leftovers are cleaned or named, and the upload succeeds once
/// after a restart.
async fn kill_9_mid_upload(garage: bool, total: usize, sent: usize) {
    let env = Env::new();
    let bucket = if garage {
        Bucket::Garage(Garage::start().await)
    } else {
        Bucket::File
    };
    env.use_bucket(&bucket);
    let server = Running::start(&env, Stdio::inherit()).await;
    upload(&env, "before-1.txt", b"stored before the crash").await;
    upload(&env, "before-2.jpg", b"also stored before the crash").await;
    let before = env.keys(&bucket).await;
    assert_eq!(data_keys(&before).len(), 2, "{before:?}");

    let body = body_of(total, total as u64);
    let sha = sha256_hex(&body);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", env.port))
        .await
        .expect("connect");
    let head = format!(
        "PUT /v1/assets/{sha} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nx-asset-name: crash.bin\r\nContent-Length: {total}\r\n\r\n",
        env.token
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body[..sent]).await.expect("first part");
    stream.flush().await.expect("flush");
    // Crash while the server holds the body (single PUT) or has parts of a
    // multipart upload in the bucket.
    let multipart = sent > asset_catalog_server::service::SMALL_BODY_MAX;
    match (&bucket, multipart) {
        (Bucket::Garage(g), true) => g.wait_unfinished_multipart_uploads(1).await,
        (Bucket::File, true) => {
            eventually("a staging file", || {
                !staging_files(&env.objects()).is_empty()
            })
            .await
        }
        (_, false) => tokio::time::sleep(Duration::from_millis(500)).await,
    }
    server.kill_9();
    drop(stream);

    assert_eq!(
        env.keys(&bucket).await,
        before,
        "nothing partial is visible"
    );
    env.assert_index_matches_bucket();
    let leftovers = staging_files(&env.objects());
    if let Bucket::File = bucket {
        assert_eq!(!leftovers.is_empty(), multipart, "{leftovers:?}");
        // Make them old enough for the startup cleanup; a fresh one must stay.
        let old = SystemTime::now() - Duration::from_secs(3600);
        for file in &leftovers {
            let f = std::fs::File::options()
                .write(true)
                .open(file)
                .expect("open");
            f.set_modified(old).expect("age staging file");
        }
    }
    let fresh = env.objects().join(format!("{}.bin#999", "f".repeat(64)));
    if let Bucket::File = bucket {
        std::fs::write(&fresh, b"an upload in progress").expect("fresh staging");
    }

    let server = Running::start(&env, Stdio::inherit()).await;
    if let Bucket::File = bucket {
        eventually("the startup cleanup", || {
            staging_files(&env.objects()) == [fresh.clone()]
        })
        .await;
        std::fs::remove_file(&fresh).expect("remove fresh staging file");
    }
    if let Bucket::Garage(g) = &bucket {
        // The server cannot list multipart uploads (object_store has no
        // ListMultipartUploads): the crash's parts stay until the bucket's
        // lifecycle rule or the operator removes them, as the README says.
        // (Garage would also drop them once the same key is completed.)
        g.wait_unfinished_multipart_uploads(i64::from(multipart))
            .await;
        g.cleanup_incomplete_uploads("0s");
        g.wait_unfinished_multipart_uploads(0).await;
    }
    let (status, json) = put(&env, "crash.bin", body.clone()).await;
    assert_eq!(status, 201, "{json}");
    let (status, json) = put(&env, "crash.bin", body.clone()).await;
    assert_eq!(status, 200, "the second upload is a duplicate: {json}");
    assert_stored_once(&before, &env.keys(&bucket).await, &sha);
    assert_eq!(content_digest(&env, &sha).await, (sha.clone(), total));
    server.stop();
    env.assert_index_matches_bucket();
    assert_eq!(index_rows(&env.state().join("index.sqlite3")).len(), 3);
}

#[actix_web::test]
async fn kill_9_mid_single_put_file() {
    kill_9_mid_upload(false, 6 * MIB, 3 * MIB).await;
}

#[actix_web::test]
async fn kill_9_mid_multipart_file() {
    kill_9_mid_upload(false, 24 * MIB, 16 * MIB).await;
}

#[actix_web::test]
async fn kill_9_mid_single_put_garage() {
    kill_9_mid_upload(true, 6 * MIB, 3 * MIB).await;
}

#[actix_web::test]
async fn kill_9_mid_multipart_garage() {
    kill_9_mid_upload(true, 24 * MIB, 16 * MIB).await;
}
