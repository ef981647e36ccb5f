//! A damaged index (garbage, truncated, empty, a garbage WAL): `serve`
//! refuses to start, naming the file and `reindex`; `reindex` recovers every
//! asset.

use super::*;

/// Run `serve`, which must exit on its own within 30 s (killed otherwise).
fn serve_expecting_failure(env: &Env) -> std::process::Output {
    let mut child = env
        .command()
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("serve started on a damaged index: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// How an index gets damaged.
#[derive(Debug, Clone, Copy)]
enum Damage {
    Garbage,
    Truncated,
    Empty,
    WalGarbage,
}

/// A damaged index: `serve` refuses to start, naming the file and
/// `asset-catalog-server reindex`; `reindex` recovers every asset.
async fn damaged_index_is_refused_and_reindex_recovers(damage: Damage) {
    let env = Env::new();
    env.use_bucket(&Bucket::File);
    let server = Running::start(&env, Stdio::inherit()).await;
    for i in 0..40u64 {
        let (status, json) = put(&env, &format!("asset-{i}.bin"), body_of(2048, 100 + i)).await;
        assert_eq!(status, 201, "{json}");
    }
    let index = env.state().join("index.sqlite3");
    let wal = env.state().join("index.sqlite3-wal");
    let assets = index_rows(&index);
    assert_eq!(assets.len(), 40);
    // For the WAL case the server must die with transactions in its WAL.
    if let Damage::WalGarbage = damage {
        server.kill_9();
    } else {
        server.stop();
    }
    let damaged = match damage {
        Damage::Garbage => {
            std::fs::write(&index, vec![0x42u8; 64 * 1024]).expect("garbage");
            &index
        }
        Damage::Truncated => {
            let len = std::fs::metadata(&index).expect("index").len();
            let file = std::fs::File::options()
                .write(true)
                .open(&index)
                .expect("open");
            file.set_len(len / 2).expect("truncate");
            &index
        }
        Damage::Empty => {
            std::fs::write(&index, b"").expect("empty");
            &index
        }
        Damage::WalGarbage => {
            let len = std::fs::metadata(&wal).map_or(0, |m| m.len());
            assert!(len > 0, "the killed server left a WAL");
            std::fs::write(&wal, body_of(len as usize, 9)).expect("garbage WAL");
            &wal
        }
    };
    let out = serve_expecting_failure(&env);
    assert_eq!(out.status.code(), Some(1), "{damage:?}: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&damaged.display().to_string())
            && stderr.contains("asset-catalog-server reindex"),
        "{damage:?}: {stderr}"
    );
    let out = env.run(&["reindex"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("moved the unreadable index to"), "{stdout}");
    assert!(stdout.contains("reindexed 40 assets"), "{stdout}");
    assert_eq!(index_rows(&index), assets, "{damage:?}: the same assets");
    let reader = env.create_token("after-reindex", &["read"]);
    let server = Running::start(&env, Stdio::inherit()).await;
    let (status, json) = json_of(
        env.client_with(&reader)
            .get(env.url("/v1/assets?limit=1000"))
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json["items"].as_array().map(Vec::len), Some(40), "{json}");
    server.stop();
}

#[actix_web::test]
async fn garbage_index_is_refused_and_reindexed() {
    damaged_index_is_refused_and_reindex_recovers(Damage::Garbage).await;
}

#[actix_web::test]
async fn truncated_index_is_refused_and_reindexed() {
    damaged_index_is_refused_and_reindex_recovers(Damage::Truncated).await;
}

#[actix_web::test]
async fn empty_index_is_refused_and_reindexed() {
    damaged_index_is_refused_and_reindex_recovers(Damage::Empty).await;
}

#[actix_web::test]
async fn garbage_wal_is_refused_and_reindexed() {
    damaged_index_is_refused_and_reindex_recovers(Damage::WalGarbage).await;
}
