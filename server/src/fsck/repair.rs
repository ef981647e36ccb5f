//! `fsck --repair`: the fix of each [`Problem`], run under the hash's claim
//! right after the second look. A fix that finds the index changed meanwhile
//! (the row gone, or indexed by an upload) does nothing more; an extra copy
//! is deleted only if, checked once more just before, no row names it and
//! it is still older than the grace period.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use asset_catalog_proto::Sha256Hex;
use object_store::ObjectMeta;

use super::diagnose::Problem;
use super::{FsckError, cutoff, key_of};
use crate::admin::record_from_bucket;
use crate::index::Index;
use crate::storage::{Storage, StorageError};

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fix {
    /// Fixed; what was done, for the report.
    Done(String),
    /// Nothing left to do: the index changed meanwhile.
    Settled,
    /// Not repaired by design (a size mismatch), or not asked to.
    Left,
    /// Another server held the hash.
    Busy,
}

/// What a repair needs.
#[derive(Debug)]
pub(super) struct Fixer<'a> {
    pub(super) storage: &'a Storage,
    pub(super) index: &'a Index,
    /// Hashes with a sidecar in the listing.
    pub(super) sidecars: &'a BTreeSet<Sha256Hex>,
    pub(super) grace: Duration,
}

impl Fixer<'_> {
    /// Fix `problem` of `sha`, whose objects (oldest first) are `objects`.
    pub(super) async fn repair(
        &self,
        sha: &Sha256Hex,
        problem: &Problem,
        objects: &[ObjectMeta],
    ) -> Result<Fix, FsckError> {
        match problem {
            Problem::Unindexed { .. } => self.adopt(sha, objects).await,
            Problem::MissingObject { .. } => Ok(if self.index.delete(sha, None).await? {
                Fix::Done("removed the row (recorded as a deletion)".into())
            } else {
                Fix::Settled
            }),
            Problem::WrongKey { target, extras, .. } => self.repoint(sha, target, extras).await,
            Problem::ExtraCopies { extras, .. } => {
                let deleted = self.delete_extras(sha, extras).await?;
                Ok(if deleted.is_empty() {
                    Fix::Settled
                } else {
                    Fix::Done(format!("deleted {}", deleted.join(", ")))
                })
            }
            Problem::SizeMismatch { .. } => Ok(Fix::Left),
        }
    }

    /// Index the content as `reindex` would, then delete its other copies.
    async fn adopt(&self, sha: &Sha256Hex, objects: &[ObjectMeta]) -> Result<Fix, FsckError> {
        let has_sidecar = self.sidecars.contains(sha);
        let record = record_from_bucket(self.storage, sha, objects, has_sidecar).await?;
        let key = record.asset.key.clone();
        if !self.index.adopt(record).await? {
            return Ok(Fix::Settled);
        }
        let extras: Vec<String> = objects.iter().map(key_of).filter(|k| *k != key).collect();
        let deleted = self.delete_extras(sha, &extras).await?;
        Ok(Fix::Done(and_deleted(
            format!("indexed as {key}"),
            &deleted,
        )))
    }

    /// Point the row at `target`, then delete the other copies.
    async fn repoint(
        &self,
        sha: &Sha256Hex,
        target: &str,
        extras: &[String],
    ) -> Result<Fix, FsckError> {
        if !self.index.set_key(sha, target).await? {
            return Ok(Fix::Settled);
        }
        let deleted = self.delete_extras(sha, extras).await?;
        let done = format!("the row now names {target}");
        Ok(Fix::Done(and_deleted(done, &deleted)))
    }

    /// Delete those of `keys` that no row names and that are still older
    /// than the grace period, each checked right before; the deleted keys.
    async fn delete_extras(
        &self,
        sha: &Sha256Hex,
        keys: &[String],
    ) -> Result<Vec<String>, FsckError> {
        let mut deleted = Vec::new();
        for key in keys {
            let named = self.index.get(sha).await?.is_some_and(|a| a.key == *key);
            let old = head(self.storage, key)
                .await?
                .is_some_and(|m| SystemTime::from(m.last_modified) <= cutoff(self.grace));
            if named || !old {
                tracing::info!(asset.sha256 = %sha, key, named, "extra copy changed meanwhile; left");
                continue;
            }
            self.storage.delete(key).await?;
            deleted.push(key.clone());
        }
        Ok(deleted)
    }
}

fn and_deleted(done: String, deleted: &[String]) -> String {
    match deleted {
        [] => done,
        _ => format!("{done}; deleted {}", deleted.join(", ")),
    }
}

/// The metadata of `key`, `None` when there is no such object.
pub(super) async fn head(storage: &Storage, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
    match storage.head(key).await {
        Ok(meta) => Ok(Some(meta)),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
