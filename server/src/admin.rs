//! Offline operations: `reindex` rebuilds the index from the bucket alone
//! (content objects plus their description: a `meta/<sha256>.json` sidecar
//! or the object's own metadata attribute; content with neither is indexed
//! from its key, size and modification time), and
//! `export-index` writes every asset as one JSON document. The bucket
//! listing and the description of one hash's content are shared with `fsck`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use asset_catalog_proto::Sha256Hex;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use time::OffsetDateTime;

use crate::Config;
use crate::index::{ExportItem, Index, IndexError, NewAsset, RebuildRecord, SightingRecord};
use crate::storage::keys::{self, KeyKind};
use crate::storage::{Description, Storage, StorageError};

/// Descriptions (sidecars or object attributes) fetched concurrently during `reindex`.
const DESCRIPTION_FETCHES: usize = 16;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("writing {target}: {source}")]
    Write {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the rebuild was interrupted; the index is unchanged")]
    Interrupted,
}

/// What `reindex` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReindexReport {
    /// Assets now in the index.
    pub assets: u64,
    /// Of those, with their description (sidecar or object attribute);
    /// the others are indexed from key, size and modification time only.
    pub described: u64,
    /// Hashes stored under more than one key (the extra copies are left alone).
    pub duplicates: u64,
    /// Keys this server did not write (ignored).
    pub foreign: u64,
    /// Resumable uploads in progress whose parts are staged in the bucket
    /// (the file store's; left alone).
    pub uploads: u64,
    /// Thumbnail objects found (kept: the thumbnail jobs the new rows get
    /// use them instead of decoding the image again).
    pub thumbnails: u64,
    /// Where an unreadable index was moved, if it was.
    pub moved_aside: Option<PathBuf>,
}

/// `asset-catalog-server reindex`.
pub async fn reindex(config: &Config) -> Result<ReindexReport, AdminError> {
    let storage = Storage::open(config)?;
    storage.probe().await?;
    let (index, moved_aside) = Index::open_for_rebuild(config).await?;
    let report = reindex_with(&storage, &index).await;
    index.finish_tool()?;
    let mut report = report?;
    report.moved_aside = moved_aside;
    Ok(report)
}

/// Rebuild `index` from `storage` in one transaction.
pub async fn reindex_with(storage: &Storage, index: &Index) -> Result<ReindexReport, AdminError> {
    let Listing {
        objects,
        sidecars,
        thumbnails,
        foreign,
        uploads,
    } = list_bucket(storage).await?;
    let mut report = ReindexReport {
        foreign,
        uploads: uploads.len() as u64,
        thumbnails: thumbnails.values().map(|k| k.len() as u64).sum(),
        ..ReindexReport::default()
    };
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let sidecars = &sidecars;
    let producer = async {
        let mut records = futures_util::stream::iter(objects)
            .map(|(sha, metas)| async move {
                let has_sidecar = sidecars.contains(&sha);
                let record = record_from_bucket(storage, &sha, &metas, has_sidecar).await;
                (sha, record, metas)
            })
            .buffered(DESCRIPTION_FETCHES);
        while let Some((sha, record, metas)) = records.next().await {
            if metas.len() > 1 {
                report.duplicates += 1;
                let found: Vec<String> = metas.iter().map(|m| m.location.to_string()).collect();
                tracing::warn!(asset.sha256 = %sha, keys = ?found, "content stored under several keys; indexing one");
            }
            let record = record?;
            report.described += u64::from(record.sighting.is_some());
            if tx.send(Some(record)).await.is_err() {
                return Err(AdminError::Interrupted);
            }
        }
        tx.send(None).await.map_err(|_| AdminError::Interrupted)
    };
    let (produced, rebuilt) = tokio::join!(producer, index.rebuild(rx));
    produced?;
    report.assets = rebuilt?.ok_or(AdminError::Interrupted)?;
    Ok(report)
}

/// The bucket as `reindex` and `fsck` read it, held in memory (a few
/// hundred bytes an object).
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Content objects by hash, oldest first.
    pub(crate) objects: BTreeMap<Sha256Hex, Vec<ObjectMeta>>,
    /// Hashes with a sidecar.
    pub(crate) sidecars: BTreeSet<Sha256Hex>,
    /// Thumbnail keys by the hash they show.
    pub(crate) thumbnails: BTreeMap<Sha256Hex, Vec<String>>,
    /// Keys this server did not write.
    pub(crate) foreign: u64,
    /// Ids of the staged resumable uploads in progress (parts, not content).
    pub(crate) uploads: BTreeSet<String>,
}

/// List the whole bucket and sort it by [`keys::classify`].
pub(crate) async fn list_bucket(storage: &Storage) -> Result<Listing, StorageError> {
    let mut listing = Listing::default();
    let mut stream = storage.list();
    while let Some(meta) = stream.try_next().await? {
        match keys::classify(meta.location.as_ref()) {
            KeyKind::Data(sha) => listing.objects.entry(sha).or_default().push(meta),
            KeyKind::Sidecar(sha) => {
                listing.sidecars.insert(sha);
            }
            KeyKind::Thumbnail(sha) => listing
                .thumbnails
                .entry(sha)
                .or_default()
                .push(meta.location.to_string()),
            KeyKind::Upload(id) => {
                listing.uploads.insert(id);
            }
            KeyKind::Foreign => listing.foreign += 1,
        }
    }
    for metas in listing.objects.values_mut() {
        metas.sort_by_key(|m| m.last_modified);
    }
    Ok(listing)
}

/// The index record of content `sha` stored as `metas` (oldest first):
/// from its description (the sidecar when `has_sidecar`, else the first
/// copy's attribute) when that names one of the copies, else from the first
/// copy's key, size and modification time.
pub(crate) async fn record_from_bucket(
    storage: &Storage,
    sha: &Sha256Hex,
    metas: &[ObjectMeta],
    has_sidecar: bool,
) -> Result<RebuildRecord, StorageError> {
    let found = describe(storage, sha, metas, has_sidecar).await?;
    Ok(record_for(sha, metas, found))
}

/// A description and the object (key, size) it describes.
struct Found {
    key: String,
    size: u64,
    description: Description,
}

/// The description of `sha`: its sidecar when the listing had one, else the
/// metadata attribute of its first copy.
async fn describe(
    storage: &Storage,
    sha: &Sha256Hex,
    metas: &[ObjectMeta],
    has_sidecar: bool,
) -> Result<Option<Found>, StorageError> {
    if has_sidecar {
        return Ok(storage
            .get_sidecar(sha)
            .await?
            .filter(|s| &s.sha256 == sha)
            .map(|s| Found {
                key: s.key,
                size: s.size,
                description: s.description,
            }));
    }
    let Some(meta) = metas.first() else {
        return Ok(None);
    };
    let key = meta.location.to_string();
    Ok(storage.description(&key).await?.map(|description| Found {
        key,
        size: meta.size,
        description,
    }))
}

fn record_for(sha: &Sha256Hex, metas: &[ObjectMeta], found: Option<Found>) -> RebuildRecord {
    let usable = found.filter(|f| {
        metas
            .iter()
            .any(|m| m.location.as_ref() == f.key && m.size == f.size)
    });
    if let Some(Found {
        key,
        size,
        description: d,
    }) = usable
    {
        let sighting = d.first_sighting.map(|f| SightingRecord {
            token: None,
            client: f.client,
            path: f.path,
            name: f.name,
            mtime: f.mtime,
            seen_at: d.first_seen,
        });
        let asset = NewAsset {
            uploaded_by: None,
            verified_at: None,
            sha256: sha.clone(),
            key,
            size,
            content_type: d.content_type,
            name: d.name,
            first_seen: d.first_seen,
        };
        return RebuildRecord { asset, sighting };
    }
    let meta = &metas[0];
    let key = meta.location.to_string();
    let content_type = mime_guess::from_path(&key)
        .first_or_octet_stream()
        .essence_str()
        .to_string();
    let nanos = i128::from(meta.last_modified.timestamp()) * 1_000_000_000
        + i128::from(meta.last_modified.timestamp_subsec_nanos());
    let first_seen =
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let asset = NewAsset {
        uploaded_by: None,
        verified_at: None,
        sha256: sha.clone(),
        name: key.clone(),
        key,
        size: meta.size,
        content_type,
        first_seen,
    };
    RebuildRecord {
        asset,
        sighting: None,
    }
}

/// `asset-catalog-server export-index [FILE]`: `-` writes to stdout; a file
/// is written next to its final name and renamed into place when complete.
pub async fn export_index(config: &Config, target: &Path) -> Result<u64, AdminError> {
    let index = Index::open(config).await?;
    if target == Path::new("-") {
        let (_, count) = export_to(&index, std::io::stdout(), "stdout").await?;
        return Ok(count);
    }
    let partial = PathBuf::from(format!("{}.partial", target.display()));
    let write_err = |source| AdminError::Write {
        target: target.display().to_string(),
        source,
    };
    let file = std::fs::File::create(&partial).map_err(write_err)?;
    let (file, count) = export_to(&index, std::io::BufWriter::new(file), "file").await?;
    let file = file.into_inner().map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    std::fs::rename(&partial, target).map_err(write_err)?;
    Ok(count)
}

/// Write the export document to `out`; returns it and the asset count.
async fn export_to<W: Write + Send + 'static>(
    index: &Index,
    out: W,
    label: &'static str,
) -> Result<(W, u64), AdminError> {
    let generated = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    // The writer runs on the blocking pool; the index feeds it from one snapshot.
    let writer = tokio::task::spawn_blocking(move || {
        let mut out = out;
        let mut count = 0;
        let mut first = true;
        while let Some(item) = rx.blocking_recv() {
            match item {
                ExportItem::Count(n) => {
                    count = n;
                    let header = format!(
                        "{{\"format\":\"asset-catalog-index\",\"version\":1,\"generated_at\":\"{generated}\",\"asset_count\":{n},\"assets\":[\n"
                    );
                    out.write_all(header.as_bytes())?;
                }
                ExportItem::Asset(detail) => {
                    if !std::mem::take(&mut first) {
                        out.write_all(b",\n")?;
                    }
                    serde_json::to_writer(&mut out, &*detail).map_err(std::io::Error::from)?;
                }
            }
        }
        out.write_all(b"\n]}\n")?;
        out.flush()?;
        Ok::<_, std::io::Error>((out, count))
    });
    let read = index.export(tx).await;
    let written = writer
        .await
        .map_err(|e| AdminError::Index(IndexError::Task(e.to_string())))?;
    read?;
    written.map_err(|source| AdminError::Write {
        target: label.to_string(),
        source,
    })
}
