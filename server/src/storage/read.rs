//! Turning an `object_store` read into a byte stream. Remote stores already
//! stream; a local file is read here in [`FILE_CHUNK`]-sized pieces on tokio's
//! file I/O (object_store's own local stream uses 8 KiB pieces).

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use object_store::{GetResult, GetResultPayload};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{ObjectBody, StorageError};

/// Read size for local files.
pub const FILE_CHUNK: usize = 256 * 1024;

pub(super) fn into_body(key: &str, result: GetResult) -> ObjectBody {
    let size = result.meta.size;
    let range = result.range.clone();
    let stream = match result.payload {
        GetResultPayload::File(file, _) => file_stream(key, file, range.clone()),
        GetResultPayload::Stream(stream) => {
            let key = key.to_string();
            stream
                .map_err(move |e| StorageError::classify(&key, e))
                .boxed()
        }
    };
    ObjectBody {
        size,
        range,
        stream,
    }
}

fn file_stream(
    key: &str,
    file: std::fs::File,
    range: std::ops::Range<u64>,
) -> futures_util::stream::BoxStream<'static, Result<Bytes, StorageError>> {
    let key = key.to_string();
    let file = tokio::fs::File::from_std(file);
    let state = (file, range.start, range.end - range.start, false, key);
    futures_util::stream::try_unfold(
        state,
        |(mut file, start, remaining, seeked, key)| async move {
            if remaining == 0 {
                return Ok(None);
            }
            if !seeked {
                file.seek(std::io::SeekFrom::Start(start))
                    .await
                    .map_err(|e| StorageError::io(&key, e))?;
            }
            let want = usize::try_from(remaining).map_or(FILE_CHUNK, |r| r.min(FILE_CHUNK));
            let mut buf = BytesMut::with_capacity(want);
            while buf.len() < want {
                let n = (&mut file)
                    .take((want - buf.len()) as u64)
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| StorageError::io(&key, e))?;
                if n == 0 {
                    let eof = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "object file shorter than its recorded size",
                    );
                    return Err(StorageError::io(&key, eof));
                }
            }
            let read = buf.len() as u64;
            Ok(Some((
                buf.freeze(),
                (file, start, remaining - read, true, key),
            )))
        },
    )
    .boxed()
}
