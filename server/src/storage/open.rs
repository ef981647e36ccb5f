//! Building the `object_store` the configuration's URL names:
//! `file:///DIR` (created if missing, fsync on write), `memory://`, or
//! `s3://BUCKET[/PREFIX]` with endpoint, region, path style and credentials.
//! The in-memory and S3 stores also serve as the [`MultipartStore`] of
//! resumable uploads; the file store has none.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::multipart::MultipartStore;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use super::{Backend, StorageError};
use crate::Config;

/// Region used when an s3:// configuration names none.
const DEFAULT_REGION: &str = "us-east-1";

/// What [`open`] built: one store, seen through both traits where it has both.
pub(super) struct Opened {
    pub store: Arc<dyn ObjectStore>,
    pub multipart: Option<Arc<dyn MultipartStore>>,
    pub backend: Backend,
}

impl Opened {
    /// A store with a multipart API (`T` is one object behind both traits).
    fn both<T: ObjectStore + MultipartStore>(store: T, backend: Backend) -> Self {
        let store = Arc::new(store);
        Self {
            store: Arc::clone(&store) as Arc<dyn ObjectStore>,
            multipart: Some(store),
            backend,
        }
    }
}

pub(super) fn open(config: &Config) -> Result<Opened, StorageError> {
    let url = config.storage_url();
    match url.split_once("://") {
        Some(("file", dir)) => open_file(PathBuf::from(dir)),
        Some(("memory", _)) => Ok(Opened::both(InMemory::new(), Backend::Memory)),
        Some(("s3", rest)) => open_s3(config, rest),
        _ => Err(StorageError::Config(format!(
            "unsupported storage URL {url:?}"
        ))),
    }
}

fn open_file(dir: PathBuf) -> Result<Opened, StorageError> {
    std::fs::create_dir_all(&dir).map_err(|e| {
        StorageError::Config(format!(
            "cannot create storage directory {}: {e}",
            dir.display()
        ))
    })?;
    // fsync: an object the index points at must survive a power loss.
    let store = LocalFileSystem::new_with_prefix(&dir)
        .map_err(|e| StorageError::Config(format!("storage directory {}: {e}", dir.display())))?
        .with_fsync(true);
    Ok(Opened {
        store: Arc::new(store),
        multipart: None,
        backend: Backend::File(dir),
    })
}

fn open_s3(config: &Config, rest: &str) -> Result<Opened, StorageError> {
    let storage = &config.storage;
    let (bucket, prefix) = match rest.split_once('/') {
        Some((bucket, prefix)) => (bucket, prefix.trim_matches('/')),
        None => (rest, ""),
    };
    let secret = config
        .s3_secret()
        .map_err(|e| StorageError::Config(e.to_string()))?
        .ok_or_else(|| StorageError::Config("no S3 secret access key configured".into()))?;
    let access_key = storage
        .access_key_id
        .clone()
        .ok_or_else(|| StorageError::Config("storage.access_key_id is not set".into()))?;
    // Every call, retries included, ends within `timeout_secs` (the storage
    // layer enforces it too): fail fast enough for a client to retry, rather
    // than object_store's 3 minutes.
    let deadline = storage.timeout();
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: deadline / 2,
        ..RetryConfig::default()
    };
    let client = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5).min(deadline))
        .with_timeout(deadline);
    // Client options first: `with_client_options` replaces them wholesale,
    // including the allow_http flag set below.
    let mut builder = AmazonS3Builder::new()
        .with_client_options(client)
        .with_bucket_name(bucket)
        .with_region(storage.region.as_deref().unwrap_or(DEFAULT_REGION))
        .with_virtual_hosted_style_request(!storage.path_style)
        .with_allow_http(storage.allow_http)
        .with_access_key_id(access_key)
        .with_secret_access_key(secret.expose())
        .with_retry(retry);
    if let Some(endpoint) = &storage.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    builder = builder.with_unsigned_payload(!payload_signature_needed(storage.endpoint.as_deref()));
    let s3 = builder
        .build()
        .map_err(|e| StorageError::Config(format!("s3://{bucket}: {e}")))?;
    let backend = Backend::S3 {
        bucket: if prefix.is_empty() {
            bucket.to_string()
        } else {
            format!("{bucket}/{prefix}")
        },
    };
    Ok(if prefix.is_empty() {
        Opened::both(s3, backend)
    } else {
        Opened::both(PrefixStore::new(s3, prefix), backend)
    })
}

/// Whether requests to `endpoint` should sign their payload (SigV4 hashes
/// every body, a second SHA-256 pass over each upload beside the server's
/// own). It guards against a body changed in transit, which TLS already
/// prevents and which cannot happen on loopback; so only plain http to
/// another host signs. (The server verifies every upload's SHA-256 itself.)
fn payload_signature_needed(endpoint: Option<&str>) -> bool {
    let Some(url) = endpoint.and_then(|e| url::Url::parse(e).ok()) else {
        return false; // AWS itself: https
    };
    if url.scheme() != "http" {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(d)) => !d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => !ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => !ip.is_loopback(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::payload_signature_needed;

    #[test]
    fn only_plain_http_to_another_host_signs_payloads() {
        for (endpoint, signs) in [
            (None, false),
            (Some("https://s3.example.net"), false),
            (Some("http://127.0.0.1:3900"), false),
            (Some("http://[::1]:3900"), false),
            (Some("http://localhost:9000"), false),
            (Some("http://minio.lan:9000"), true),
            (Some("http://10.0.0.5:9000"), true),
        ] {
            assert_eq!(payload_signature_needed(endpoint), signs, "{endpoint:?}");
        }
    }
}
