//! The storage layer's resumable uploads (`storage::resumable`) over every
//! backend: in-memory and Garage S3 through object_store's multipart API,
//! the file store through staged parts. Each case opens the storage twice,
//! as two servers sharing one bucket would; the `suite!` macro in `main.rs`
//! instantiates them for memory, file and Garage S3.

use std::sync::Arc;

use asset_catalog_server::fsck::{self, FsckOptions};
use asset_catalog_server::index::Index;
use asset_catalog_server::storage::{
    Backend, ObjectAttrs, ResumableUpload, Storage, StorageError, StoredPart,
};
use asset_catalog_server::{Config, admin};
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, GetOptions};

use crate::garage::{self, Garage};
use crate::support::Kind;

const MIB: usize = 1024 * 1024;
const KEY: &str = "resumed/object.bin";
const CONTENT_TYPE: &str = "application/x-resumed";

/// Two handles on one bucket, and what keeps the bucket alive.
struct Bucket {
    kind: Kind,
    first: Storage,
    /// Opened from the same configuration, as another server would.
    second: Storage,
    config: Config,
    state: tempfile::TempDir,
    garage: Option<Garage>,
}

impl Bucket {
    async fn open(kind: Kind) -> Self {
        let state = tempfile::tempdir().expect("state dir");
        let mut config = Config::for_state_dir(state.path());
        let mut garage = None;
        let (first, second) = match kind {
            Kind::Memory => {
                // A memory store lives in one process: share it.
                let memory = Arc::new(InMemory::new());
                let open = || {
                    Storage::from_store(memory.clone(), Backend::Memory, 5 * MIB as u64)
                        .with_multipart(memory.clone())
                };
                (open(), open())
            }
            Kind::File => {
                let dir = state.path().join("objects");
                config.storage.url = Some(format!("file://{}", dir.display()));
                let open = || Storage::open(&config).expect("open the file store");
                (open(), open())
            }
            Kind::S3 => {
                let started = Garage::start().await;
                let secret = state.path().join("s3-secret");
                std::fs::write(&secret, garage::SECRET_KEY).expect("secret");
                let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o600);
                std::fs::set_permissions(&secret, owner_only).expect("chmod");
                config.storage.url = Some(format!("s3://{}", garage::BUCKET));
                config.storage.endpoint = Some(started.endpoint());
                config.storage.region = Some(garage::REGION.into());
                config.storage.allow_http = true;
                config.storage.access_key_id = Some(garage::ACCESS_KEY.into());
                config.storage.secret_access_key_file = Some(secret);
                garage = Some(started);
                let open = || Storage::open(&config).expect("open S3");
                (open(), open())
            }
        };
        Self {
            kind,
            first,
            second,
            config,
            state,
            garage,
        }
    }

    /// Every key in the bucket, sorted.
    async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .first
            .list()
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .expect("list the bucket");
        keys.sort();
        keys
    }

    /// Nothing of any upload is left: no staging object or directory (file
    /// store), no unfinished multipart upload (Garage).
    async fn assert_no_upload_left(&self) {
        if self.kind == Kind::File {
            let uploads = self.state.path().join("objects/uploads");
            let left: Vec<_> = std::fs::read_dir(&uploads)
                .map(|dir| dir.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "staging left behind: {left:?}");
        }
        if let Some(garage) = &self.garage {
            garage.wait_unfinished_multipart_uploads(0).await;
        }
    }
}

fn attrs() -> ObjectAttrs<'static> {
    ObjectAttrs {
        content_type: CONTENT_TYPE,
        description: None,
    }
}

/// `len` bytes that differ from part to part and from place to place.
fn bytes(seed: u8, len: usize) -> Bytes {
    let mut x = u32::from(seed).wrapping_mul(0x9E37_79B9) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// The whole object at `key`, or the error reading it.
async fn read(storage: &Storage, key: &str) -> Result<Vec<u8>, StorageError> {
    let body = storage.get(key, None).await?;
    let chunks: Vec<Bytes> = body.stream.try_collect().await?;
    Ok(chunks.concat())
}

fn assert_not_found(result: Result<Vec<u8>, StorageError>) {
    assert!(
        matches!(result, Err(StorageError::NotFound { .. })),
        "expected NotFound, got {:?}",
        result.map(|b| b.len())
    );
}

pub async fn parts_complete_into_the_object(kind: Kind) {
    let bucket = Bucket::open(kind).await;
    let storage = &bucket.first;
    let parts = [bytes(1, 5 * MIB), bytes(2, 5 * MIB), bytes(3, 1024)];
    let upload = storage.begin_resumable(KEY, attrs()).await.expect("begin");
    let mut stored = Vec::new();
    for (number, data) in (1..).zip(&parts) {
        let part = storage
            .put_resumable_part(&upload, number, data.clone())
            .await
            .expect("part");
        assert_eq!(part.number, number);
        stored.push(part);
        assert_not_found(read(storage, KEY).await);
    }
    assert!(!bucket.keys().await.contains(&KEY.to_string()));
    storage
        .complete_resumable(&upload, &stored)
        .await
        .expect("complete");
    assert_eq!(read(storage, KEY).await.expect("read"), parts.concat());
    assert_eq!(bucket.keys().await, [KEY]);
    bucket.assert_no_upload_left().await;
    if kind != Kind::Memory {
        // A retry of the completion (after a crash before the index knew).
        let again = storage.complete_resumable(&upload, &stored).await;
        assert!(
            matches!(again, Ok(()) | Err(StorageError::NotFound { .. })),
            "completing again: {again:?}"
        );
        assert_eq!(read(storage, KEY).await.expect("read"), parts.concat());
    }
    if storage.keeps_attributes() {
        let head = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let got = storage
            .object_store()
            .get_opts(&ObjectPath::from(KEY), head)
            .await
            .expect("HEAD");
        assert_eq!(
            got.attributes
                .get(&Attribute::ContentType)
                .map(|v| v.as_ref()),
            Some(CONTENT_TYPE),
            "the content type given when the upload began"
        );
    }
}

pub async fn abort_leaves_nothing(kind: Kind) {
    let bucket = Bucket::open(kind).await;
    let storage = &bucket.first;
    let upload = storage.begin_resumable(KEY, attrs()).await.expect("begin");
    for number in 1..=2 {
        storage
            .put_resumable_part(&upload, number, bytes(9, 5 * MIB))
            .await
            .expect("part");
    }
    storage.abort_resumable(&upload).await.expect("abort");
    assert_not_found(read(storage, KEY).await);
    assert_eq!(bucket.keys().await, Vec::<String>::new());
    bucket.assert_no_upload_left().await;
    if kind != Kind::Memory {
        // (object_store's in-memory store refuses an unknown upload id.)
        storage
            .abort_resumable(&upload)
            .await
            .expect("aborting again succeeds");
        let late = storage.put_resumable_part(&upload, 3, bytes(9, 10)).await;
        assert!(
            matches!(late, Err(StorageError::NotFound { .. })),
            "a part after the abort: {late:?}"
        );
    }
}

pub async fn a_part_sent_again_replaces_the_first(kind: Kind) {
    let bucket = Bucket::open(kind).await;
    let storage = &bucket.first;
    let upload = storage.begin_resumable(KEY, attrs()).await.expect("begin");
    let (old, new, tail) = (bytes(4, 5 * MIB), bytes(5, 5 * MIB), bytes(6, 100));
    let replaced = storage
        .put_resumable_part(&upload, 1, old)
        .await
        .expect("part 1");
    let first = storage
        .put_resumable_part(&upload, 1, new.clone())
        .await
        .expect("part 1 again");
    let last = storage
        .put_resumable_part(&upload, 2, tail.clone())
        .await
        .expect("part 2");
    if kind != Kind::Memory {
        // The id of the replaced part no longer names a stored part (the
        // in-memory store ignores part ids).
        let stale = storage
            .complete_resumable(&upload, &[replaced, last.clone()])
            .await;
        assert!(
            matches!(&stale, Err(StorageError::InvalidUpload { .. })),
            "completing with the replaced part's id: {stale:?}"
        );
        assert!(!storage.health().is_down(), "a refusal is not an outage");
        assert_not_found(read(storage, KEY).await);
    }
    storage
        .complete_resumable(&upload, &[last, first])
        .await
        .expect("complete");
    assert_eq!(
        read(storage, KEY).await.expect("read"),
        [new, tail].concat()
    );
    bucket.assert_no_upload_left().await;
}

pub async fn another_server_completes_from_the_stored_ids(kind: Kind) {
    let bucket = Bucket::open(kind).await;
    let parts = [bytes(7, 5 * MIB), bytes(8, 5 * MIB), bytes(9, 1024)];
    let begun = bucket
        .first
        .begin_resumable(KEY, attrs())
        .await
        .expect("begin");
    let one = bucket
        .first
        .put_resumable_part(&begun, 1, parts[0].clone())
        .await
        .expect("part 1");
    // What the index keeps: plain strings and numbers.
    let kept = (
        begun.key.clone(),
        begun.upload_id.clone(),
        one.number,
        one.id.clone(),
    );
    drop((begun, one));

    let upload = ResumableUpload {
        key: kept.0,
        upload_id: kept.1,
    };
    let mut stored = vec![StoredPart {
        number: kept.2,
        id: kept.3,
    }];
    for (number, data) in (2..).zip(&parts[1..]) {
        let part = bucket
            .second
            .put_resumable_part(&upload, number, data.clone())
            .await
            .expect("a part from the second server");
        stored.push(part);
    }
    assert_not_found(read(&bucket.first, KEY).await);
    bucket
        .second
        .complete_resumable(&upload, &stored)
        .await
        .expect("complete on the second server");
    assert_eq!(
        read(&bucket.first, KEY).await.expect("read on the first"),
        parts.concat()
    );
    bucket.assert_no_upload_left().await;
}

pub async fn an_upload_in_progress_is_neither_content_nor_foreign(kind: Kind) {
    let bucket = Bucket::open(kind).await;
    let storage = &bucket.first;
    let index = Index::open(&bucket.config).await.expect("open the index");
    let upload = storage.begin_resumable(KEY, attrs()).await.expect("begin");
    storage
        .put_resumable_part(&upload, 1, bytes(10, 5 * MIB))
        .await
        .expect("part");
    // Staged in the file store's bucket; invisible elsewhere until complete.
    let staged = u64::from(kind == Kind::File);
    let options = FsckOptions {
        repair: true,
        ..FsckOptions::default()
    };
    let checked = fsck::fsck_with(storage, &index, options)
        .await
        .expect("fsck");
    assert_eq!(
        (checked.uploads, checked.foreign, checked.objects),
        (staged, 0, 0),
        "{}",
        checked.summary()
    );
    assert!(checked.findings.is_empty(), "{}", checked.summary());
    let rebuilt = admin::reindex_with(storage, &index).await.expect("reindex");
    assert_eq!(
        (rebuilt.uploads, rebuilt.foreign, rebuilt.assets),
        (staged, 0, 0)
    );
    // fsck --repair left the parts alone: the upload goes on.
    storage
        .put_resumable_part(&upload, 2, bytes(11, 10))
        .await
        .expect("part 2 after fsck and reindex");
    storage.abort_resumable(&upload).await.expect("abort");
    let after = fsck::fsck_with(storage, &index, FsckOptions::default())
        .await
        .expect("fsck");
    assert_eq!(after.uploads, 0, "{}", after.summary());
}
