//! Object storage behind `object_store`: one [`Storage`] over an
//! `Arc<dyn ObjectStore>` chosen by URL (`file://`, `memory://`, `s3://`).
//! It promises: objects become visible only complete (single PUT, or a
//! multipart upload that is completed), errors are classified once
//! ([`StorageError`]), and reads stream in bounded chunks. Uploads that
//! outlive the process (resumable, across servers) are in [`resumable`].

pub mod cleanup;
mod error;
mod health;
pub mod keys;
mod multipart;
mod open;
mod read;
pub mod resumable;
pub mod sidecar;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use asset_catalog_proto::Sha256Hex;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload,
};

pub use error::StorageError;
use health::Calls;
pub use health::{DEFAULT_TIMEOUT, Health, TRIAL_EVERY};
pub use multipart::MultipartWriter;
pub use resumable::{ResumableUpload, StoredPart};
pub use sidecar::{Description, Sidecar, SidecarSighting};

/// Which kind of backend a [`Storage`] talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Local directory (the embedded default).
    File(PathBuf),
    /// In-process memory (tests).
    Memory,
    /// S3-compatible service.
    S3 { bucket: String },
}

/// The bucket, as the rest of the server sees it.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// The same store's multipart API, where it has one (S3, memory).
    multipart: Option<Arc<dyn MultipartStore>>,
    backend: Backend,
    part_size: usize,
    calls: Calls,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("store", &self.store)
            .field("multipart", &self.multipart.is_some())
            .field("backend", &self.backend)
            .field("part_size", &self.part_size)
            .field("calls", &self.calls)
            .finish()
    }
}

/// What is stored with an object besides its bytes.
#[derive(Debug, Clone, Copy)]
pub struct ObjectAttrs<'a> {
    pub content_type: &'a str,
    /// [`Description::to_attribute`], kept where the backend keeps attributes.
    pub description: Option<&'a str>,
}

/// A (possibly partial) object being read.
pub struct ObjectBody {
    /// Full size of the object.
    pub size: u64,
    /// The byte range this body carries.
    pub range: Range<u64>,
    pub stream: BoxStream<'static, Result<Bytes, StorageError>>,
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBody")
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Open the storage the configuration names. Does not contact it.
    pub fn open(config: &crate::Config) -> Result<Self, StorageError> {
        let opened = open::open(config)?;
        let storage =
            Self::from_store(opened.store, opened.backend, config.storage.part_size_bytes)
                .with_timeout(config.storage.timeout());
        Ok(match opened.multipart {
            Some(multipart) => storage.with_multipart(multipart),
            None => storage,
        })
    }

    /// Wrap an existing store (tests keep a handle to inspect it). It has no
    /// multipart API until [`Storage::with_multipart`] gives it one.
    pub fn from_store(store: Arc<dyn ObjectStore>, backend: Backend, part_size: u64) -> Self {
        let part_size = usize::try_from(part_size).unwrap_or(usize::MAX);
        Self {
            store,
            multipart: None,
            backend,
            part_size,
            calls: Calls::new(DEFAULT_TIMEOUT),
        }
    }

    /// Use `multipart`, the multipart API of the same store, for resumable
    /// uploads (else they are staged as objects: see [`resumable`]).
    #[must_use]
    pub fn with_multipart(mut self, multipart: Arc<dyn MultipartStore>) -> Self {
        self.multipart = Some(multipart);
        self
    }

    /// Give every storage call this deadline, retries included.
    #[must_use]
    pub fn with_timeout(mut self, deadline: std::time::Duration) -> Self {
        self.calls = Calls::new(deadline);
        self
    }

    /// Whether storage answered its last call.
    pub fn health(&self) -> &Health {
        &self.calls.health
    }

    /// The underlying store (for tools and tests).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Remove the staging files a crash left in the file store (see
    /// [`cleanup`]); nothing to do for other backends.
    pub fn remove_abandoned_staging(&self) -> Vec<PathBuf> {
        match &self.backend {
            Backend::File(dir) => {
                cleanup::remove_stale(dir, std::time::SystemTime::now(), &cleanup::is_staging_file)
            }
            _ => Vec::new(),
        }
    }

    /// Multipart part size in bytes.
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// One line for logs and `STATUS=`.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::File(dir) => format!("file://{}", dir.display()),
            Backend::Memory => "memory://".into(),
            Backend::S3 { bucket } => format!("s3://{bucket}"),
        }
    }

    /// Whether objects keep attributes (content type, user metadata):
    /// everywhere but object_store's local file store.
    pub fn keeps_attributes(&self) -> bool {
        !matches!(self.backend, Backend::File(_))
    }

    /// Attributes to send with an object, where the backend keeps them.
    fn attributes(&self, attrs: ObjectAttrs<'_>) -> Attributes {
        let mut attributes = Attributes::new();
        if self.keeps_attributes() {
            attributes.insert(
                Attribute::ContentType,
                attrs.content_type.to_string().into(),
            );
            if let Some(value) = attrs.description {
                attributes.insert(
                    Attribute::Metadata(sidecar::DESCRIPTION_ATTRIBUTE.into()),
                    value.to_string().into(),
                );
            }
        }
        attributes
    }

    /// Store a complete object with a single PUT.
    pub async fn put(
        &self,
        key: &str,
        chunks: Vec<Bytes>,
        attrs: ObjectAttrs<'_>,
    ) -> Result<(), StorageError> {
        let options = PutOptions {
            attributes: self.attributes(attrs),
            ..PutOptions::default()
        };
        let payload: PutPayload = chunks.into_iter().collect();
        let path = ObjectPath::from(key);
        let put = self.store.put_opts(&path, payload, options);
        self.calls
            .run(&format!("PUT {key}"), async {
                put.await
                    .map(drop)
                    .map_err(|e| StorageError::classify_write(key, e))
            })
            .await
    }

    /// Start a multipart upload to `key`; nothing is visible until `finish`.
    pub async fn start_multipart(
        &self,
        key: &str,
        attrs: ObjectAttrs<'_>,
    ) -> Result<MultipartWriter, StorageError> {
        self.start_multipart_with(key, self.attributes(attrs)).await
    }

    /// [`Storage::start_multipart`] with the attributes already built.
    async fn start_multipart_with(
        &self,
        key: &str,
        attributes: Attributes,
    ) -> Result<MultipartWriter, StorageError> {
        let options = PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        };
        let path = ObjectPath::from(key);
        let start = self.store.put_multipart_opts(&path, options);
        let upload = self
            .calls
            .run(&format!("starting the multipart upload of {key}"), async {
                start
                    .await
                    .map_err(|e| StorageError::classify_write(key, e))
            })
            .await?;
        Ok(MultipartWriter::new(
            key,
            upload,
            self.part_size,
            self.calls.clone(),
        ))
    }

    /// Read `key`, all of it or `range` (end exclusive).
    pub async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<ObjectBody, StorageError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let path = ObjectPath::from(key);
        let get = self.store.get_opts(&path, options);
        let result = self
            .calls
            .run(&format!("GET {key}"), async {
                get.await.map_err(|e| StorageError::classify(key, e))
            })
            .await?;
        Ok(read::into_body(key, result))
    }

    /// Metadata of `key`.
    pub async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let path = ObjectPath::from(key);
        let head = self.store.head(&path);
        self.calls
            .run(&format!("HEAD {key}"), async {
                head.await.map_err(|e| StorageError::classify(key, e))
            })
            .await
    }

    /// Delete `key`; deleting what is not there succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = ObjectPath::from(key);
        let delete = self.store.delete(&path);
        self.calls
            .run(&format!("DELETE {key}"), async {
                match delete.await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(StorageError::classify(key, e)),
                }
            })
            .await
    }

    /// Write the sidecar of an asset.
    pub async fn put_sidecar(&self, sidecar: &Sidecar) -> Result<(), StorageError> {
        let key = keys::sidecar_key(&sidecar.sha256);
        let json = serde_json::to_vec(sidecar).map_err(|e| StorageError::BadSidecar {
            key: key.clone(),
            message: e.to_string(),
        })?;
        let attrs = ObjectAttrs {
            content_type: "application/json",
            description: None,
        };
        self.put(&key, vec![Bytes::from(json)], attrs).await
    }

    /// The [`Description`] attribute of the object at `key`, `None` when it
    /// has none (a sidecar, or nothing, describes it).
    pub async fn description(&self, key: &str) -> Result<Option<Description>, StorageError> {
        if !self.keeps_attributes() {
            return Ok(None);
        }
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let path = ObjectPath::from(key);
        let head = self.store.get_opts(&path, options);
        let result = self
            .calls
            .run(&format!("HEAD {key}"), async {
                head.await.map_err(|e| StorageError::classify(key, e))
            })
            .await?;
        let name = Attribute::Metadata(sidecar::DESCRIPTION_ATTRIBUTE.into());
        result
            .attributes
            .get(&name)
            .map(|value| {
                Description::from_attribute(value).map_err(|message| StorageError::BadSidecar {
                    key: format!("{key} (attribute {})", sidecar::DESCRIPTION_ATTRIBUTE),
                    message,
                })
            })
            .transpose()
    }

    /// Read the sidecar of `sha`, `None` when there is none.
    pub async fn get_sidecar(&self, sha: &Sha256Hex) -> Result<Option<Sidecar>, StorageError> {
        let key = keys::sidecar_key(sha);
        let read = async {
            match self.store.get(&ObjectPath::from(key.as_str())).await {
                Ok(result) => result.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
            .map_err(|e| StorageError::classify(&key, e))
        };
        let Some(body) = self.calls.run(&format!("GET {key}"), read).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| StorageError::BadSidecar {
                key,
                message: e.to_string(),
            })
    }

    /// Every object in the bucket (under the configured prefix).
    pub fn list(&self) -> BoxStream<'static, Result<ObjectMeta, StorageError>> {
        self.store
            .list(None)
            .map(|r| r.map_err(|e| StorageError::classify("(list)", e)))
            .boxed()
    }

    /// Cheap liveness check: one listing of a prefix that holds nothing.
    /// (A HEAD cannot tell a missing bucket from a missing key; a LIST can.)
    pub async fn probe(&self) -> Result<(), StorageError> {
        self.calls.run("the storage probe", self.probe_once()).await
    }

    async fn probe_once(&self) -> Result<(), StorageError> {
        if let Backend::File(dir) = &self.backend {
            let meta = tokio::fs::metadata(dir)
                .await
                .map_err(|e| StorageError::Unavailable(format!("{}: {e}", dir.display())))?;
            if !meta.is_dir() {
                return Err(StorageError::Unavailable(format!(
                    "{} is not a directory",
                    dir.display()
                )));
            }
        }
        let prefix = ObjectPath::from(".probe");
        match self.store.list(Some(&prefix)).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(StorageError::classify_write(".probe/", e)),
        }
    }
}
