//! [`StorageError`]: every `object_store` failure classified once, into what
//! the API needs to tell apart: missing object (404), out of space (507) and
//! everything else (503, retry later).

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {key} not found")]
    NotFound { key: String },
    #[error("storage is out of space writing {key}: {source}")]
    OutOfSpace {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("storage failed on {key}: {source}")]
    Backend {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Storage is known to be down (see [`super::Health`]): the upload was
    /// refused without a call, or a call failed again during the outage.
    /// Logged once when the outage starts, not per request.
    #[error("storage is down: {0}")]
    Down(String),
    #[error("reading {key} from disk: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the asset metadata in {key} is unusable: {message}")]
    BadSidecar { key: String, message: String },
    #[error("storage configuration: {0}")]
    Config(String),
    /// A resumable upload cannot go on as asked (a part number outside
    /// 1..=10,000, parts to complete that are not 1..=n, an id this store
    /// did not give, a part replaced since its id was recorded): a fault of
    /// the caller or of what it kept, not of storage.
    #[error("resumable upload of {key}: {reason}")]
    InvalidUpload { key: String, reason: String },
}

impl StorageError {
    /// Classify an `object_store` error for `key`.
    pub fn classify(key: &str, source: object_store::Error) -> Self {
        let key = key.to_string();
        if matches!(source, object_store::Error::NotFound { .. }) {
            return Self::NotFound { key };
        }
        if is_out_of_space(&source) {
            return Self::OutOfSpace { key, source };
        }
        Self::Backend { key, source }
    }

    /// Classify an error of a write or listing: "not found" there means the
    /// bucket (or directory) is missing, which is an outage, not a 404.
    pub fn classify_write(key: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Self::Unavailable(format!(
                "writing {key}: the bucket or storage directory does not exist ({source})"
            )),
            other => Self::classify(key, other),
        }
    }

    /// Does this say storage is not answering (rather than answering "not
    /// found" or "full")? Such errors mark storage down ([`super::Health`]).
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            Self::Backend { .. } | Self::Unavailable(_) | Self::Down(_)
        )
    }

    /// Classify an I/O error while streaming a local file.
    pub fn io(key: &str, source: std::io::Error) -> Self {
        Self::Io {
            key: key.to_string(),
            source,
        }
    }
}

/// ENOSPC / EDQUOT anywhere in the chain, or an S3 "storage full" answer.
fn is_out_of_space(error: &object_store::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull
                || io.kind() == std::io::ErrorKind::QuotaExceeded
                || matches!(io.raw_os_error(), Some(28 | 122)))
        {
            return true;
        }
        current = e.source();
    }
    let text = error.to_string();
    text.contains("XMinioStorageFull")
        || text.contains("507 Insufficient Storage")
        || text.contains("EntityTooLarge") && text.contains("quota")
}
