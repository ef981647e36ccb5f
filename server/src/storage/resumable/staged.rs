//! The staged way of [`super`], for stores without a multipart API (the
//! file store): an upload is a record `uploads/<id>/target` holding its final
//! key and one object per part, `uploads/<id>/<n>`, each written whole or not
//! at all ([`keys`]). Completing streams the parts in order, each only while
//! its ETag is still the recorded one, through a [`MultipartWriter`] into the
//! key, then deletes the upload's objects, its record last.

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{Attributes, GetOptions, ObjectStoreExt, PutPayload};

use super::{ResumableUpload, StoredPart, invalid};
use crate::storage::{Backend, MultipartWriter, ObjectAttrs, Storage, StorageError, keys, read};

impl Storage {
    /// Record a new staged upload to `key`; its id.
    pub(super) async fn begin_staged(&self, key: &str) -> Result<String, StorageError> {
        let upload_id = hex::encode(rand::random::<[u8; 16]>());
        let record = keys::upload_target_key(&upload_id);
        let attrs = ObjectAttrs {
            content_type: "text/plain",
            description: None,
        };
        self.put(&record, vec![Bytes::from(key.to_string())], attrs)
            .await?;
        Ok(upload_id)
    }

    /// A part of a staged upload: its own object, written whole or not at all.
    pub(super) async fn put_staged_part(
        &self,
        upload: &ResumableUpload,
        number: u32,
        data: Bytes,
        what: &str,
    ) -> Result<String, StorageError> {
        let id = self.staged(upload).await?;
        let key = keys::upload_part_key(id, number);
        let path = ObjectPath::from(key.as_str());
        let put = self.store.put(&path, PutPayload::from(data));
        let stored = self
            .calls
            .run(what, async {
                put.await.map_err(|e| StorageError::classify_write(&key, e))
            })
            .await?;
        stored
            .e_tag
            .ok_or_else(|| StorageError::Unavailable(format!("the store gave {key} no ETag")))
    }

    /// Stream the parts into the key, then remove the upload's objects.
    pub(super) async fn complete_staged(
        &self,
        upload: &ResumableUpload,
        parts: &[&StoredPart],
    ) -> Result<(), StorageError> {
        let id = self.staged(upload).await?;
        let mut writer = self
            .start_multipart_with(&upload.key, Attributes::new())
            .await?;
        let mut copied = Ok(());
        for part in parts {
            copied = self.copy_staged_part(upload, id, part, &mut writer).await;
            if copied.is_err() {
                break;
            }
        }
        if let Err(e) = copied {
            writer.abort().await;
            return Err(e);
        }
        writer.finish().await?;
        // The object is whole and visible: parts left behind only take space
        // (fsck counts them), so failing to remove them fails nothing.
        if let Err(e) = self.remove_staged(upload).await {
            tracing::warn!(key = %upload.key, upload.id = %upload.upload_id, error = %e, "removing the parts of a completed upload failed");
        }
        Ok(())
    }

    /// Append staged part `part` to `writer`, if it is still the part stored
    /// under that id.
    async fn copy_staged_part(
        &self,
        upload: &ResumableUpload,
        id: &str,
        part: &StoredPart,
        writer: &mut MultipartWriter,
    ) -> Result<(), StorageError> {
        let key = keys::upload_part_key(id, part.number);
        let options = GetOptions {
            if_match: Some(part.id.clone()),
            ..GetOptions::default()
        };
        let path = ObjectPath::from(key.as_str());
        let get = self.store.get_opts(&path, options);
        let result = self
            .calls
            .run(&format!("GET {key}"), async {
                get.await.map_err(|e| match e {
                    object_store::Error::Precondition { .. } => invalid(
                        upload,
                        format!("part {} changed after its id was recorded", part.number),
                    ),
                    e => StorageError::classify(&key, e),
                })
            })
            .await?;
        let mut body = read::into_body(&key, result).stream;
        while let Some(chunk) = body.try_next().await? {
            writer.write(chunk).await?;
        }
        Ok(())
    }

    /// Delete every object of a staged upload, its record last, and (file
    /// store) its directory.
    pub(super) async fn remove_staged(&self, upload: &ResumableUpload) -> Result<(), StorageError> {
        let id = staged_id(upload)?;
        let prefix = keys::upload_prefix(id);
        let list = self
            .store
            .list(Some(&ObjectPath::from(prefix.as_str())))
            .map_ok(|meta| meta.location.to_string())
            .try_collect::<Vec<_>>();
        let mut found = self
            .calls
            .run(&format!("listing {prefix}"), async {
                list.await.map_err(|e| StorageError::classify(&prefix, e))
            })
            .await?;
        let record = keys::upload_target_key(id);
        found.retain(|key| *key != record);
        for key in found.iter().chain([&record]) {
            self.delete(key).await?;
        }
        if let Backend::File(dir) = &self.backend {
            match tokio::fs::remove_dir(dir.join(&prefix)).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(dir = %dir.join(&prefix).display(), error = %e, "cannot remove the directory of an ended upload")
                }
            }
        }
        Ok(())
    }

    /// The id of staged `upload`, once its record says it completes to
    /// `upload.key`; `NotFound` when it has ended.
    async fn staged<'u>(&self, upload: &'u ResumableUpload) -> Result<&'u str, StorageError> {
        let id = staged_id(upload)?;
        let record = keys::upload_target_key(id);
        let path = ObjectPath::from(record.as_str());
        let read = async {
            let target = self.store.get(&path).await?;
            target.bytes().await
        };
        let target = self
            .calls
            .run(&format!("GET {record}"), async {
                read.await.map_err(|e| StorageError::classify(&record, e))
            })
            .await?;
        if target != upload.key.as_bytes() {
            return Err(invalid(
                upload,
                "the upload was begun for another key".into(),
            ));
        }
        Ok(id)
    }
}

/// The id of a staged upload, if it is one this storage could have given.
fn staged_id(upload: &ResumableUpload) -> Result<&str, StorageError> {
    if keys::is_upload_id(&upload.upload_id) {
        Ok(&upload.upload_id)
    } else {
        Err(invalid(
            upload,
            format!(
                "{:?} is not the id of an upload this storage began",
                upload.upload_id
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_ids_are_checked_before_they_become_keys() {
        let upload = ResumableUpload {
            key: "k".into(),
            upload_id: "0123456789abcdef0123456789abcdef".into(),
        };
        assert!(staged_id(&upload).is_ok());
        let forged = ResumableUpload {
            upload_id: "../../etc".into(),
            ..upload
        };
        assert!(matches!(
            staged_id(&forged),
            Err(StorageError::InvalidUpload { .. })
        ));
    }
}
