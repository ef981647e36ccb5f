//! [`MultipartWriter`]: a multipart upload that becomes visible only through
//! [`MultipartWriter::finish`]. Parts are exactly `part_size` bytes (all but
//! the last), at most [`PARTS_IN_FLIGHT`] upload at once, so memory per upload
//! stays under `part_size * (PARTS_IN_FLIGHT + 1)`. Dropped without `finish`
//! (client gone, handler cancelled), it aborts the upload in the background.

use bytes::Bytes;
use object_store::{MultipartUpload, WriteMultipart};

use super::StorageError;
use super::health::Calls;

/// Parts uploading concurrently per upload.
pub const PARTS_IN_FLIGHT: usize = 2;

/// An in-progress multipart upload.
#[derive(Debug)]
pub struct MultipartWriter {
    key: String,
    inner: Option<WriteMultipart>,
    calls: Calls,
}

impl MultipartWriter {
    pub(super) fn new(
        key: &str,
        upload: Box<dyn MultipartUpload>,
        part_size: usize,
        calls: Calls,
    ) -> Self {
        Self {
            key: key.to_string(),
            inner: Some(WriteMultipart::new_with_chunk_size(upload, part_size)),
            calls,
        }
    }

    fn writer(&mut self) -> Result<&mut WriteMultipart, StorageError> {
        self.inner.as_mut().ok_or_else(|| {
            StorageError::Unavailable(format!("upload of {} already ended", self.key))
        })
    }

    /// Append bytes; waits while too many parts are in flight (back-pressure),
    /// at most the storage deadline for a part to finish.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        let key = self.key.clone();
        let calls = self.calls.clone();
        let writer = self.writer()?;
        let capacity = async {
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|e| StorageError::classify_write(&key, e))
        };
        calls.run(&format!("a part of {key}"), capacity).await?;
        writer.put(chunk);
        Ok(())
    }

    /// Upload the last part and complete: the object becomes visible.
    pub async fn finish(mut self) -> Result<(), StorageError> {
        let Some(writer) = self.inner.take() else {
            return Err(StorageError::Unavailable(format!(
                "upload of {} already ended",
                self.key
            )));
        };
        let key = &self.key;
        let finish = async {
            writer
                .finish()
                .await
                .map(drop)
                .map_err(|e| StorageError::classify_write(key, e))
        };
        self.calls
            .run(&format!("completing the multipart upload of {key}"), finish)
            .await
    }

    /// Abandon the upload and remove the parts sent so far.
    pub async fn abort(mut self) {
        if let Some(writer) = self.inner.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(key = %self.key, error = %e, "aborting multipart upload failed; the bucket may keep orphaned parts until its lifecycle rule removes them");
        }
    }
}

impl Drop for MultipartWriter {
    fn drop(&mut self) {
        let Some(writer) = self.inner.take() else {
            return;
        };
        let key = std::mem::take(&mut self.key);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = writer.abort().await {
                        tracing::warn!(key = %key, error = %e, "aborting abandoned multipart upload failed");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(key = %key, "multipart upload abandoned outside a runtime; not aborted")
            }
        }
    }
}
