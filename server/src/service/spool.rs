//! Spooling a body whose hash is not known in advance (`POST /v1/assets`
//! form uploads) to an anonymous temporary file in the state directory while
//! hashing it. The file has no name (O_TMPFILE where available) and vanishes
//! when dropped, so an interrupted upload leaves nothing behind. The spooled
//! bytes then go through the normal verified pipeline.

use std::io::SeekFrom;
use std::path::Path;

use asset_catalog_proto::Sha256Hex;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::ServiceError;
use super::upload::{BodyError, Metered};

/// Read size when replaying a spooled file.
const READ_CHUNK: usize = 256 * 1024;
/// Write buffer in front of the spool file.
const WRITE_BUFFER: usize = 1024 * 1024;

/// A fully received body in a temporary file.
#[derive(Debug)]
pub struct Spooled {
    file: tokio::fs::File,
    pub sha256: Sha256Hex,
    pub size: u64,
}

fn spool_error(e: std::io::Error) -> ServiceError {
    ServiceError::Spool(e)
}

/// Receive `body` into a temporary file under `dir`, at most `limit` bytes.
pub async fn spool<S>(dir: &Path, limit: u64, mut body: S) -> Result<Spooled, ServiceError>
where
    S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
{
    let dir = dir.to_path_buf();
    let file = tokio::task::spawn_blocking(move || tempfile::tempfile_in(dir))
        .await
        .map_err(|e| ServiceError::Spool(std::io::Error::other(e)))?
        .map_err(spool_error)?;
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file));
    let mut meter = Metered::new(limit);
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        meter.absorb(&chunk)?;
        writer.write_all(&chunk).await.map_err(spool_error)?;
    }
    writer.flush().await.map_err(spool_error)?;
    let mut file = writer.into_inner();
    file.seek(SeekFrom::Start(0)).await.map_err(spool_error)?;
    Ok(Spooled {
        file,
        sha256: meter.digest(),
        size: meter.size(),
    })
}

impl Spooled {
    /// The spooled bytes as a body stream.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, BodyError>> + Unpin {
        futures_util::stream::try_unfold(self.file, |mut file| async move {
            let mut buf = BytesMut::with_capacity(READ_CHUNK);
            let n = (&mut file)
                .take(READ_CHUNK as u64)
                .read_buf(&mut buf)
                .await
                .map_err(|e| BodyError::Incomplete(format!("reading the spool file: {e}")))?;
            Ok((n > 0).then(|| (buf.freeze(), file)))
        })
        .boxed()
    }
}
