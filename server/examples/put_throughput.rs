//! Throughput of a large upload: (a) `PUT /v1/assets/{sha256}` through a
//! running `asset-catalog-server` that stores into S3, and (b) the same
//! amount written straight into the S3 bucket with `object_store` multipart,
//! so the server's overhead can be read off. Prints MB/s for both and, given
//! the server's pid, its peak RSS (`VmHWM`).
//!
//! ```text
//! BENCH_SERVER_URL=http://127.0.0.1:8000 BENCH_SERVER_PID=1234 \
//! BENCH_S3_ENDPOINT=http://127.0.0.1:3900 BENCH_S3_BUCKET=assets BENCH_S3_REGION=garage \
//! BENCH_S3_ACCESS_KEY=GK... BENCH_S3_SECRET_KEY=... [BENCH_SIZE_MIB=1024] [BENCH_PART_SIZE_MIB=16] \
//! cargo run --release -p asset-catalog-server --example put_throughput
//! ```
//!
//! The bodies are generated in memory before timing starts (different bytes
//! for each run, so the store's own block dedup cannot help either side).

use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("set {name} (see the example's header)"))
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `mib` chunks of 1 MiB of pseudo-random bytes from `seed`.
fn generate(seed: u64, mib: usize) -> Vec<Bytes> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..mib)
        .map(|_| {
            let mut chunk = Vec::with_capacity(MIB);
            while chunk.len() < MIB {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.extend_from_slice(&x.to_le_bytes());
            }
            Bytes::from(chunk)
        })
        .collect()
}

fn rate(bytes: usize, seconds: f64) -> String {
    format!(
        "{:.1} MB/s ({:.1} MiB/s, {bytes} bytes in {seconds:.2} s)",
        bytes as f64 / 1e6 / seconds,
        bytes as f64 / MIB as f64 / seconds
    )
}

fn vm_hwm(pid: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
}

async fn through_server(url: &str, chunks: Vec<Bytes>) -> f64 {
    let total: usize = chunks.iter().map(Bytes::len).sum();
    let mut hasher = Sha256::new();
    for c in &chunks {
        hasher.update(c);
    }
    let sha = hex::encode(hasher.finalize());
    let body = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let sized = awc::body::SizedStream::new(total as u64, body.boxed_local());
    let start = Instant::now();
    let mut res = awc::Client::builder()
        .disable_timeout()
        .finish()
        .put(format!("{url}/v1/assets/{sha}"))
        .insert_header(("x-asset-name", "bench.bin"))
        .send_body(sized)
        .await
        .expect("PUT through the server");
    let status = res.status();
    let body = res.body().await.expect("response body");
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(status.as_u16(), 201, "{}", String::from_utf8_lossy(&body));
    elapsed
}

async fn straight_to_s3(chunks: Vec<Bytes>, part_size: usize) -> f64 {
    let store = AmazonS3Builder::new()
        .with_endpoint(env("BENCH_S3_ENDPOINT"))
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region(env("BENCH_S3_REGION"))
        .with_bucket_name(env("BENCH_S3_BUCKET"))
        .with_access_key_id(env("BENCH_S3_ACCESS_KEY"))
        .with_secret_access_key(env("BENCH_S3_SECRET_KEY"))
        .build()
        .expect("S3 client");
    let key = format!("bench/direct-{}", std::process::id());
    let start = Instant::now();
    let upload = store
        .put_multipart(&key.as_str().into())
        .await
        .expect("start multipart");
    let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
    for chunk in chunks {
        // Same in-flight bound as the server (2 parts).
        writer.wait_for_capacity(2).await.expect("part upload");
        writer.put(chunk);
    }
    writer.finish().await.expect("complete multipart");
    let elapsed = start.elapsed().as_secs_f64();
    let _ = store.delete(&key.as_str().into()).await;
    elapsed
}

#[actix_web::main]
async fn main() {
    let server = env("BENCH_SERVER_URL");
    let pid = std::env::var("BENCH_SERVER_PID").ok();
    let mib = env_or("BENCH_SIZE_MIB", 1024);
    let part_size = env_or("BENCH_PART_SIZE_MIB", 16) * MIB;
    let bytes = mib * MIB;
    if let Some(pid) = &pid {
        println!(
            "server VmHWM before: {}",
            vm_hwm(pid).unwrap_or_else(|| "?".into())
        );
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let chunks = generate(seed, mib);
    let seconds = through_server(&server, chunks).await;
    println!(
        "(a) PUT through asset-catalog-server: {}",
        rate(bytes, seconds)
    );
    if let Some(pid) = &pid {
        println!(
            "server VmHWM after:  {}",
            vm_hwm(pid).unwrap_or_else(|| "?".into())
        );
    }
    let chunks = generate(seed ^ 0x5555_5555, mib);
    let seconds = straight_to_s3(chunks, part_size).await;
    println!(
        "(b) object_store multipart straight to S3: {}",
        rate(bytes, seconds)
    );
}
