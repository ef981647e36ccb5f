//! The backend's own upload rates: plain object_store PUTs of many files at a
//! fixed concurrency, and one multipart upload of a large file. Reading the
//! files from disk is included, as it is for every tool being compared.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt as _, PutPayload, WriteMultipart};
use serde_json::json;
use tokio::io::AsyncReadExt as _;

/// Where the bucket is and how to sign for it.
#[derive(Debug, clap::Args)]
pub struct S3Args {
    /// S3 endpoint, e.g. http://127.0.0.1:3900
    #[arg(long, env = "BENCH_S3_ENDPOINT")]
    endpoint: String,
    /// Region (Garage: its `s3_region`).
    #[arg(long, env = "BENCH_S3_REGION", default_value = "garage")]
    region: String,
    #[arg(long, env = "BENCH_S3_BUCKET")]
    bucket: String,
    #[arg(long, env = "BENCH_S3_ACCESS_KEY_ID")]
    access_key_id: String,
    /// File holding the secret access key.
    #[arg(long, env = "BENCH_S3_SECRET_ACCESS_KEY_FILE")]
    secret_access_key_file: PathBuf,
}

/// What went wrong talking to the bucket or reading the input.
#[derive(Debug, thiserror::Error)]
pub enum S3BenchError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not valid UTF-8, cannot be an object key")]
    NonUtf8(PathBuf),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
}

impl S3Args {
    /// An object_store client for this bucket, path-style, plain HTTP allowed.
    pub fn build(&self) -> Result<AmazonS3, S3BenchError> {
        let secret = std::fs::read_to_string(&self.secret_access_key_file).map_err(|source| {
            S3BenchError::Read {
                path: self.secret_access_key_file.clone(),
                source,
            }
        })?;
        Ok(AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_region(&self.region)
            .with_bucket_name(&self.bucket)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(secret.trim())
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()?)
    }
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> S3BenchError + '_ {
    move |source| S3BenchError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Every regular file under `dir`, depth first, sorted for repeatability.
fn walk(dir: &Path) -> Result<Vec<PathBuf>, S3BenchError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(read_err(&d))? {
            let entry = entry.map_err(read_err(&d))?;
            let kind = entry.file_type().map_err(read_err(&entry.path()))?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn object_key(prefix: &str, dir: &Path, file: &Path) -> Result<ObjectPath, S3BenchError> {
    let rel = file.strip_prefix(dir).unwrap_or(file);
    let rel = rel
        .to_str()
        .ok_or_else(|| S3BenchError::NonUtf8(file.to_path_buf()))?;
    Ok(ObjectPath::from(format!("{prefix}/{rel}")))
}

/// PUT each file under `dir` as its own object, `concurrency` at a time.
pub async fn put_many(
    store: &AmazonS3,
    dir: &Path,
    prefix: &str,
    concurrency: usize,
) -> Result<serde_json::Value, S3BenchError> {
    if concurrency == 0 {
        return Err(S3BenchError::ZeroConcurrency);
    }
    let start = Instant::now();
    let files = walk(dir)?;
    let store = Arc::new(store.clone());
    let sizes: Vec<u64> = futures_util::stream::iter(files)
        .map(|file| {
            let store = Arc::clone(&store);
            async move {
                let key = object_key(prefix, dir, &file)?;
                let data = tokio::fs::read(&file).await.map_err(read_err(&file))?;
                let len = data.len() as u64;
                store.put(&key, PutPayload::from(data)).await?;
                Ok::<u64, S3BenchError>(len)
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(json!({
        "op": "put_many",
        "files": sizes.len(),
        "bytes": sizes.iter().sum::<u64>(),
        "concurrency": concurrency,
        "seconds": start.elapsed().as_secs_f64(),
    }))
}

/// Read up to `size` bytes (less only at end of file).
async fn read_part(
    file: &mut tokio::fs::File,
    path: &Path,
    size: usize,
) -> Result<BytesMut, S3BenchError> {
    let mut buf = BytesMut::with_capacity(size);
    while buf.len() < size {
        let n = file.read_buf(&mut buf).await.map_err(read_err(path))?;
        if n == 0 {
            break;
        }
    }
    Ok(buf)
}

/// Upload `path` as one object through a multipart upload.
pub async fn put_multipart(
    store: &AmazonS3,
    path: &Path,
    key: &str,
    part_size: usize,
    concurrency: usize,
) -> Result<serde_json::Value, S3BenchError> {
    if concurrency == 0 {
        return Err(S3BenchError::ZeroConcurrency);
    }
    let start = Instant::now();
    let mut file = tokio::fs::File::open(path).await.map_err(read_err(path))?;
    let upload = store.put_multipart(&ObjectPath::from(key)).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
    let mut total = 0u64;
    loop {
        let part = read_part(&mut file, path, part_size).await?;
        if part.is_empty() {
            break;
        }
        total += part.len() as u64;
        writer.wait_for_capacity(concurrency).await?;
        writer.put(part.freeze());
    }
    writer.finish().await?;
    Ok(json!({
        "op": "put_multipart",
        "bytes": total,
        "part_size": part_size,
        "concurrency": concurrency,
        "seconds": start.elapsed().as_secs_f64(),
    }))
}
