//! Storage going away: uploads get 503 `storage_unavailable` (nothing half
//! stored), `/readyz` turns 503, and readiness returns with the storage.

use asset_catalog_proto::ErrorCode;
use bytes::Bytes;

use crate::support::{Kind, TestServer, assert_error, sha256_hex};

pub async fn storage_outage_gives_503_and_not_ready(kind: Kind) {
    let mut s = TestServer::start(kind).await;
    s.upload("before.txt", b"stored before the outage").await;
    let restore = break_storage(&mut s);
    let body = b"sent during the outage";
    let (status, json) = s
        .put(&sha256_hex(body), "during.txt", Bytes::from_static(body))
        .await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    let (status, json) = s.get_json("/readyz").await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    let (status, _) = s.get_json("/healthz").await;
    assert_eq!(status, 200, "alive even when not ready");
    let (status, json) = s
        .get_json(&format!("/v1/assets/{}", sha256_hex(body)))
        .await;
    assert_error(status, &json, 404, ErrorCode::NotFound);
    if let Some(restore) = restore {
        restore();
        let (status, json) = s.get_json("/readyz").await;
        assert_eq!(status, 200, "{json}");
        s.upload("during.txt", body).await;
    }
    s.stop().await;
}

/// Make the storage fail; returns how to bring it back, when possible.
fn break_storage(s: &mut TestServer) -> Option<Box<dyn FnOnce()>> {
    match s.storage.backend().clone() {
        asset_catalog_server::storage::Backend::File(dir) => {
            let aside = dir.with_extension("aside");
            std::fs::rename(&dir, &aside).expect("move objects dir");
            std::fs::write(&dir, b"not a directory").expect("block the path");
            Some(Box::new(move || {
                std::fs::remove_file(&dir).expect("unblock");
                std::fs::rename(&aside, &dir).expect("restore objects dir");
            }))
        }
        _ => {
            s.garage.as_mut().expect("garage").kill();
            None
        }
    }
}

/// A bucket that does not exist: not ready, and uploads are 503, not 404.
pub async fn missing_bucket_is_an_outage(kind: Kind) {
    let s = TestServer::start_unready(kind, |c| {
        c.storage.url = Some("s3://no-such-bucket".into());
    })
    .await;
    let (status, json) = s.get_json("/readyz").await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    let body = b"nowhere to go";
    let (status, json) = s
        .put(&sha256_hex(body), "x.txt", Bytes::from_static(body))
        .await;
    assert_error(status, &json, 503, ErrorCode::StorageUnavailable);
    s.stop().await;
}
