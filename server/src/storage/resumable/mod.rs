//! Multipart uploads that outlive the process (resumable uploads, tus): begun
//! by one server, continued, completed or aborted by any server that opens
//! the same storage, from nothing but the plain strings the index keeps
//! ([`ResumableUpload`], [`StoredPart`]). Like the rest of the storage layer
//! it promises that nothing is visible at the key before
//! [`Storage::complete_resumable`], and then all of it at once; a stored part
//! is durable, so a crash loses at most the part being sent.
//!
//! Two ways, by whether the store has a multipart API:
//!
//! - **native** (S3, `memory://`): object_store's `MultipartStore`. The
//!   upload id is S3's `UploadId`, a part's id its ETag. The content type and
//!   description go with CreateMultipartUpload, as they go with a single PUT.
//!   An upload neither completed nor aborted stays invisible in the bucket
//!   until the `AbortIncompleteMultipartUpload` lifecycle rule removes it
//!   (see [`cleanup`](super::cleanup)).
//! - **staged** (the file store; `staged.rs`): the upload is a record
//!   `uploads/<id>/target` holding the final key (`id` random) and one
//!   object per part, `uploads/<id>/<n>`; a part's id is its ETag.
//!   Completing streams the parts in order, each only while its ETag is
//!   still the recorded one, through a multipart writer into the key (the
//!   file store renames the object into place only when it is whole), then
//!   deletes the upload's objects; aborting deletes them. Completing thus
//!   writes the upload a second time on the file store's disk. The file
//!   store keeps no attributes, so none are kept here either. `reindex` and `fsck`
//!   count these keys as uploads in progress
//!   ([`KeyKind::Upload`](super::keys::KeyKind::Upload)).
//!
//! The rules are S3's, the same on every backend: part numbers 1..=10,000;
//! a part sent again under its number replaces the earlier one; every part
//! but the last is at least [`MIN_PART_SIZE_BYTES`], which the caller (the
//! tus layer) guarantees: S3 refuses the completion otherwise, the staged
//! store does not check. One restriction is object_store's: it numbers the
//! parts of a completion by their position, so the parts to complete must be
//! numbered 1..=n.
//!
//! [`MIN_PART_SIZE_BYTES`]: crate::config::MIN_PART_SIZE_BYTES
//!
//! Errors: `NotFound` from a part or a completion means the upload is gone
//! (completed, aborted, or removed by the lifecycle rule); aborting what is
//! gone succeeds (object_store's in-memory store, for tests, answers an
//! unknown upload with an error of its own instead). A completion repeated
//! after it succeeded (a retry after a crash) either succeeds or gives
//! `NotFound`, by backend, and leaves the object as it was: the caller then
//! finds it at its key. [`StorageError::InvalidUpload`] is the caller's fault (or its
//! records'), never an outage.

mod staged;

use bytes::Bytes;
use object_store::multipart::PartId;
use object_store::path::Path as ObjectPath;
use object_store::{PutMultipartOptions, PutPayload};

use super::{ObjectAttrs, Storage, StorageError};
use crate::config::MAX_PARTS;

/// S3 error codes that say the request, not storage, is wrong.
const S3_REFUSALS: [&str; 4] = [
    "InvalidPartOrder",
    "InvalidPart",
    "EntityTooSmall",
    "InvalidArgument",
];

/// A multipart upload that outlives the process: what the index keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumableUpload {
    /// The key the object gets when the upload completes.
    pub key: String,
    /// The storage's id of the upload: S3's `UploadId`, or a staged id.
    pub upload_id: String,
}

/// A part stored in a [`ResumableUpload`], as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    /// 1-based, as in S3.
    pub number: u32,
    /// What completing names the part by: its ETag.
    pub id: String,
}

impl Storage {
    /// Begin a resumable upload to `key`. Nothing is visible there until
    /// [`Storage::complete_resumable`].
    pub async fn begin_resumable(
        &self,
        key: &str,
        attrs: ObjectAttrs<'_>,
    ) -> Result<ResumableUpload, StorageError> {
        let Some(multipart) = &self.multipart else {
            let upload_id = self.begin_staged(key).await?;
            return Ok(ResumableUpload {
                key: key.to_string(),
                upload_id,
            });
        };
        let options = PutMultipartOptions {
            attributes: self.attributes(attrs),
            ..PutMultipartOptions::default()
        };
        let path = ObjectPath::from(key);
        let create = multipart.create_multipart_opts(&path, options);
        let upload_id = self
            .calls
            .run(&format!("starting the resumable upload of {key}"), async {
                create
                    .await
                    .map_err(|e| StorageError::classify_write(key, e))
            })
            .await?;
        Ok(ResumableUpload {
            key: key.to_string(),
            upload_id,
        })
    }

    /// Store part `number` (1-based) of `upload`. Sent again under the same
    /// number, a part replaces the earlier one. Completing needs the id
    /// returned.
    pub async fn put_resumable_part(
        &self,
        upload: &ResumableUpload,
        number: u32,
        data: Bytes,
    ) -> Result<StoredPart, StorageError> {
        let index = part_index(upload, number)?;
        let what = format!("part {number} of the resumable upload of {}", upload.key);
        let Some(multipart) = &self.multipart else {
            let id = self.put_staged_part(upload, number, data, &what).await?;
            return Ok(StoredPart { number, id });
        };
        let path = ObjectPath::from(upload.key.as_str());
        let put = multipart.put_part(&path, &upload.upload_id, index, PutPayload::from(data));
        let id = self
            .calls
            .run(&what, async {
                put.await
                    .map(|part| part.content_id)
                    .map_err(|e| classify(upload, e))
            })
            .await?;
        Ok(StoredPart { number, id })
    }

    /// Complete `upload` from `parts` (numbered 1..=n, each once, in any
    /// order): the object appears at its key, whole. Call it only once the
    /// content is verified, and [`Storage::abort_resumable`] otherwise.
    pub async fn complete_resumable(
        &self,
        upload: &ResumableUpload,
        parts: &[StoredPart],
    ) -> Result<(), StorageError> {
        let parts = in_order(upload, parts)?;
        let Some(multipart) = &self.multipart else {
            return self.complete_staged(upload, &parts).await;
        };
        let path = ObjectPath::from(upload.key.as_str());
        let ids = parts
            .iter()
            .map(|part| PartId {
                content_id: part.id.clone(),
            })
            .collect();
        let complete = multipart.complete_multipart(&path, &upload.upload_id, ids);
        let what = format!("completing the resumable upload of {}", upload.key);
        self.calls
            .run(&what, async {
                complete.await.map(drop).map_err(|e| classify(upload, e))
            })
            .await
    }

    /// Abandon `upload` and remove its stored parts. Aborting an upload that
    /// is already gone succeeds.
    pub async fn abort_resumable(&self, upload: &ResumableUpload) -> Result<(), StorageError> {
        let Some(multipart) = &self.multipart else {
            return self.remove_staged(upload).await;
        };
        let path = ObjectPath::from(upload.key.as_str());
        let abort = multipart.abort_multipart(&path, &upload.upload_id);
        let what = format!("aborting the resumable upload of {}", upload.key);
        self.calls
            .run(&what, async {
                match abort.await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(classify(upload, e)),
                }
            })
            .await
    }
}

/// The 0-based index object_store takes for part `number`, which S3 allows
/// from 1 to 10,000.
fn part_index(upload: &ResumableUpload, number: u32) -> Result<usize, StorageError> {
    match usize::try_from(number) {
        Ok(n) if n >= 1 && u64::from(number) <= MAX_PARTS => Ok(n - 1),
        _ => Err(invalid(
            upload,
            format!("part number {number} is outside 1..={MAX_PARTS}"),
        )),
    }
}

/// `parts` sorted, if they are numbered 1..=n, each once.
fn in_order<'p>(
    upload: &ResumableUpload,
    parts: &'p [StoredPart],
) -> Result<Vec<&'p StoredPart>, StorageError> {
    let mut sorted: Vec<&StoredPart> = parts.iter().collect();
    sorted.sort_by_key(|part| part.number);
    let numbers_ok = sorted
        .iter()
        .zip(1..)
        .all(|(part, want)| part.number == want);
    if !numbers_ok {
        let numbers: Vec<u32> = sorted.iter().map(|part| part.number).collect();
        return Err(invalid(
            upload,
            format!(
                "the parts to complete must be numbered 1 to {}, each once, not {numbers:?}",
                parts.len()
            ),
        ));
    }
    Ok(sorted)
}

fn invalid(upload: &ResumableUpload, reason: String) -> StorageError {
    StorageError::InvalidUpload {
        key: upload.key.clone(),
        reason,
    }
}

/// Classify an error of a part, a completion or an abort: S3's answers that
/// the request is wrong (a part too small, an unknown part id) are the
/// caller's fault, not an outage; a 404 stays `NotFound` (the upload is gone).
fn classify(upload: &ResumableUpload, e: object_store::Error) -> StorageError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    match S3_REFUSALS.iter().find(|code| text.contains(**code)) {
        Some(code) => invalid(upload, format!("storage refused it ({code}): {text}")),
        None => StorageError::classify(&upload.key, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload() -> ResumableUpload {
        ResumableUpload {
            key: "k".into(),
            upload_id: "0123456789abcdef0123456789abcdef".into(),
        }
    }

    fn part(number: u32) -> StoredPart {
        StoredPart {
            number,
            id: format!("etag-{number}"),
        }
    }

    #[test]
    fn part_numbers_are_s3s() {
        assert_eq!(part_index(&upload(), 1).ok(), Some(0));
        assert_eq!(part_index(&upload(), 10_000).ok(), Some(9_999));
        for bad in [0, 10_001, u32::MAX] {
            assert!(
                matches!(
                    part_index(&upload(), bad),
                    Err(StorageError::InvalidUpload { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn parts_complete_in_order_only_when_numbered_one_to_n() {
        let parts = [part(3), part(1), part(2)];
        let sorted = in_order(&upload(), &parts).expect("1..=3");
        assert_eq!(
            sorted.iter().map(|p| p.number).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(in_order(&upload(), &[]).expect("none").is_empty());
        for bad in [
            vec![part(2)],
            vec![part(1), part(3)],
            vec![part(1), part(1)],
            vec![part(0), part(1)],
        ] {
            assert!(
                matches!(
                    in_order(&upload(), &bad),
                    Err(StorageError::InvalidUpload { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refusals_are_not_outages() {
        let refused = object_store::Error::Generic {
            store: "S3",
            source: "Client error with status 400: <Code>EntityTooSmall</Code>".into(),
        };
        let e = classify(&upload(), refused);
        assert!(
            matches!(&e, StorageError::InvalidUpload { reason, .. } if reason.contains("EntityTooSmall")),
            "{e:?}"
        );
        assert!(!e.is_outage());
        let gone = object_store::Error::NotFound {
            path: "k".into(),
            source: "NoSuchUpload".into(),
        };
        assert!(matches!(
            classify(&upload(), gone),
            StorageError::NotFound { .. }
        ));
    }
}
