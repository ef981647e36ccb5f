//! A body larger than several parts (40 MiB, generated on the fly and
//! streamed with Content-Length) goes through the multipart path; ranges
//! across part boundaries and the full content read back exactly.

use asset_catalog_proto::UploadResponse;
use awc::http::header;
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::support::{Kind, TestServer, chunk, json_of};

const CHUNK: usize = 1024 * 1024;
const CHUNKS: u64 = 40;

fn body_stream() -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::iter(0..CHUNKS).map(|i| Ok(chunk(i, CHUNK)))
}

pub async fn large_upload_streams_through_multipart(kind: Kind) {
    // Minimum part size: 8 parts, all but the last exactly 5 MiB.
    let s = TestServer::start_with(kind, |c| {
        c.storage.part_size_bytes = 5 * 1024 * 1024;
        c.server.max_upload_bytes = 1 << 30;
    })
    .await;
    let mut hasher = Sha256::new();
    for i in 0..CHUNKS {
        hasher.update(chunk(i, CHUNK));
    }
    let sha = hex::encode(hasher.finalize());
    let total = CHUNKS * CHUNK as u64;
    let sized = awc::body::SizedStream::new(total, body_stream().boxed_local());
    let res = s
        .client()
        .put(s.url(&format!("/v1/assets/{sha}")))
        .insert_header(("x-asset-name", "big.bin"))
        .send_body(sized)
        .await
        .expect("PUT");
    let (status, json) = json_of(res).await;
    assert_eq!(status, 201, "{json}");
    let up: UploadResponse = serde_json::from_value(json).expect("upload");
    assert_eq!(up.asset.size, total);

    // 3 bytes either side of the 5 MiB part boundary and of a 1 MiB chunk boundary.
    let boundary = 5 * 1024 * 1024u64;
    let mut res = s
        .client()
        .get(s.url(&format!("/v1/assets/{sha}/content")))
        .insert_header((
            header::RANGE,
            format!("bytes={}-{}", boundary - 3, boundary + 2),
        ))
        .send()
        .await
        .expect("range GET");
    assert_eq!(res.status().as_u16(), 206);
    let got = res.body().await.expect("range body");
    let expected: Vec<u8> = chunk(4, CHUNK)[CHUNK - 3..]
        .iter()
        .chain(&chunk(5, CHUNK)[..3])
        .copied()
        .collect();
    assert_eq!(&got[..], &expected[..]);

    let res = s
        .client()
        .get(s.url(&format!("/v1/assets/{sha}/content")))
        .send()
        .await
        .expect("full GET");
    assert_eq!(
        res.headers().get(header::CONTENT_LENGTH).expect("len"),
        total.to_string().as_str()
    );
    let mut hasher = Sha256::new();
    let mut stream = res;
    let mut read = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece.expect("piece");
        read += piece.len() as u64;
        hasher.update(&piece);
    }
    assert_eq!((read, hex::encode(hasher.finalize())), (total, sha.clone()));
    assert_eq!(s.keys().await, s.keys_of(&format!("{sha}.bin")));
    s.stop().await;
}
