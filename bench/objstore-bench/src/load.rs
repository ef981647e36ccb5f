//! A small HTTP/1.1 load generator for `HEAD` requests. wrk 4.1.0 (Debian
//! 12) waits for a body after a `HEAD` response that carries
//! `Content-Length`, as a correct one does, and so measures nothing; this
//! does what wrk would: C keep-alive connections, one request in flight on
//! each, for a fixed time, rotating through a list of paths.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// What to load and for how long.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Server address, host:port (plain HTTP).
    #[arg(long)]
    addr: String,
    /// File with one request path per line, e.g. /v1/assets/<sha256>.
    #[arg(long)]
    paths_file: PathBuf,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Duration of the run in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long)]
    header: Vec<String>,
}

/// The load could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Paths {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} holds no paths")]
    NoPaths(PathBuf),
    #[error("a load task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    non_2xx: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

/// Status code of one response whose head is complete in `buf`.
fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let code = line.split(|b| *b == b' ').nth(1)?;
    std::str::from_utf8(code).ok()?.trim().parse().ok()
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// One request/response on `conn`; `Some(status)` or `None` on any failure.
async fn one(conn: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> Option<u16> {
    conn.write_all(req).await.ok()?;
    buf.clear();
    loop {
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(buf) {
            // A HEAD response has no body: anything after the head is an error.
            return if end == buf.len() {
                status_of(buf)
            } else {
                None
            };
        }
    }
}

async fn worker(addr: String, reqs: Vec<Vec<u8>>, start: usize, deadline: Instant) -> Tally {
    let mut t = Tally::default();
    let mut buf = Vec::with_capacity(4096);
    let mut i = start;
    let mut conn: Option<TcpStream> = None;
    while Instant::now() < deadline {
        if conn.is_none() {
            match TcpStream::connect(&addr).await {
                Ok(c) => {
                    let _ = c.set_nodelay(true);
                    conn = Some(c);
                }
                Err(_) => {
                    t.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let sent = Instant::now();
        match one(c, &reqs[i % reqs.len()], &mut buf).await {
            Some(status) => {
                let us = sent.elapsed().as_micros();
                t.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                if (200..300).contains(&status) {
                    t.ok += 1;
                } else {
                    t.non_2xx += 1;
                }
            }
            None => {
                t.errors += 1;
                conn = None;
            }
        }
        i += 1;
    }
    t
}

fn percentile(sorted: &[u32], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (sorted.len() * p).div_ceil(100).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// Run the load and report requests/s and latency percentiles (ms).
pub async fn head_load(args: &LoadArgs) -> Result<serde_json::Value, LoadError> {
    let text = std::fs::read_to_string(&args.paths_file).map_err(|source| LoadError::Paths {
        path: args.paths_file.clone(),
        source,
    })?;
    let extra: String = args.header.iter().map(|h| format!("{h}\r\n")).collect();
    let reqs: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|p| {
            format!(
                "HEAD {} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n",
                p.trim(),
                args.addr
            )
        })
        .map(String::into_bytes)
        .collect();
    if reqs.is_empty() {
        return Err(LoadError::NoPaths(args.paths_file.clone()));
    }
    let begin = Instant::now();
    let deadline = begin + Duration::from_secs(args.seconds);
    let step = reqs.len() / args.connections.max(1);
    let tasks: Vec<_> = (0..args.connections.max(1))
        .map(|c| tokio::spawn(worker(args.addr.clone(), reqs.clone(), c * step, deadline)))
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await?;
        all.ok += t.ok;
        all.non_2xx += t.non_2xx;
        all.errors += t.errors;
        all.latencies_us.extend(t.latencies_us);
    }
    let elapsed = begin.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    Ok(json!({
        "op": "head_load",
        "connections": args.connections,
        "seconds": elapsed,
        "requests": all.ok + all.non_2xx,
        "ok": all.ok,
        "non_2xx": all.non_2xx,
        "errors": all.errors,
        "requests_per_sec": (all.ok + all.non_2xx) as f64 / elapsed,
        "latency_ms_p50": percentile(&all.latencies_us, 50),
        "latency_ms_p99": percentile(&all.latencies_us, 99),
    }))
}
