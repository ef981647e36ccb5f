//! `run`: serve the API on an already-bound listener until `shutdown`
//! resolves, then drain. Around the HTTP server it tells systemd what is
//! going on: `READY=1` once the listener is bound and storage and index have
//! answered, `STATUS=` lines, `WATCHDOG=1` pings while the server is healthy,
//! and `STOPPING=1` when the drain begins.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{Config, ConfigError};
use crate::http::{self, AppState};
use crate::index::{Index, IndexError};
use crate::metrics::Metrics;
use crate::notify;
use crate::service::{Catalog, Limits, Readiness};
use crate::storage::{Storage, StorageError};
use crate::tls::CertStore;

/// Longest a readiness or watchdog probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between readiness attempts at startup.
const MAX_READY_BACKOFF: Duration = Duration::from_secs(30);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid configuration:\n{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("cannot create {path}: {source}")]
    StateDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve on the listener: {0}")]
    Listen(#[source] std::io::Error),
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot start the background jobs' threads: {0}")]
    Jobs(#[source] std::io::Error),
}

/// Serve with the storage the configuration names.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let storage = Storage::open(&config)?;
    run_with_storage(config, storage, listener, shutdown).await
}

/// Serve with an already opened storage (tests keep a handle to it).
pub async fn run_with_storage(
    config: Config,
    storage: Storage,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let problems = config.validate();
    if !problems.is_empty() {
        return Err(ConfigError { problems }.into());
    }
    let metrics = Arc::new(Metrics::new());
    let catalog = open_catalog(&config, storage, Arc::clone(&metrics)).await?;
    let addr = listener.local_addr().map_err(ServeError::Listen)?;
    listener.set_nonblocking(true).map_err(ServeError::Listen)?;
    let state = AppState {
        catalog: catalog.clone(),
        metrics,
        metrics_enabled: config.metrics.enabled,
        limits: http::RequestLimits::from_config(&config),
    };
    if !config.auth.enabled {
        tracing::warn!(
            "[auth] enabled = false: anyone who reaches {addr} can upload, read and delete"
        );
    }
    let head_timeout = Duration::from_secs(config.server.request_head_timeout_secs);
    let drain = config.server.shutdown_timeout_secs;
    let tls = match config.tls_files() {
        Some((cert, key)) => {
            tracing::info!("TLS certificate {cert}, key {key}");
            Some(CertStore::open_files(&cert, &key)?)
        }
        None => None,
    };
    let builder = HttpServer::new(move || http::app(state.clone()))
        .tcp_nodelay(true)
        .client_request_timeout(head_timeout)
        .disable_signals()
        .shutdown_timeout(drain);
    let builder = match &tls {
        Some(store) => builder.listen_rustls_0_23(listener, store.server_config()?),
        None => builder.listen(listener),
    };
    let server = builder.map_err(ServeError::Listen)?.run();
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, storage = %catalog.storage().describe(), index = %catalog.index().describe(), "listening");
    let handle = server.handle();
    let jobs = crate::jobs::Jobs::start(&catalog, &config.jobs, format!("serving on {addr}"))
        .map_err(ServeError::Jobs)?;
    let ready = tokio::spawn(announce_ready(catalog.clone(), addr));
    let plain = tls.is_none();
    let watchdog = notify::watchdog_interval()
        .map(|every| tokio::spawn(watchdog(catalog.clone(), addr, every, plain)));
    let reloader = tokio::spawn(reload_on_sighup(tls));
    let expirer = tokio::spawn(expire_uploads(
        catalog.clone(),
        config.uploads.expire_after(),
    ));
    let stopper = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: draining connections for up to {drain} s");
        notify::stopping(&format!("stopping: draining connections (up to {drain} s)"));
        handle.stop(true).await;
    });
    let result = server.await.map_err(ServeError::Serve);
    ready.abort();
    stopper.abort();
    reloader.abort();
    expirer.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    if let Some(jobs) = jobs {
        jobs.stop().await;
    }
    tracing::info!("stopped");
    result
}

/// Abort resumable upload sessions past their expiry, checking a quarter
/// as often as they expire (at most every minute). Every server does it;
/// a session ends once, whoever gets to it.
async fn expire_uploads(catalog: Catalog, expire_after: Duration) {
    let every = (expire_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = catalog.expire_uploads().await {
            tracing::warn!(error = %e, "expiring upload sessions failed; retrying later");
        }
        if let Ok((sessions, bytes)) = catalog.index().upload_totals().await {
            catalog.metrics().upload_sessions(sessions, bytes);
        }
    }
}

async fn open_catalog(
    config: &Config,
    storage: Storage,
    metrics: Arc<Metrics>,
) -> Result<Catalog, ServeError> {
    let spool = config.spool_dir();
    std::fs::create_dir_all(&spool).map_err(|source| ServeError::StateDir {
        path: spool.clone(),
        source,
    })?;
    notify::status("opening the index");
    let index = Index::open(config).await?;
    tokio::task::spawn_blocking({
        let (storage, spool) = (storage.clone(), spool.clone());
        move || remove_crash_leftovers(&storage, &spool)
    });
    let limits = Limits {
        max_upload_bytes: config.server.max_upload_bytes,
        spool_dir: spool,
        max_sightings: config.server.max_sightings_per_asset,
        same_hash_wait: Duration::from_secs(config.server.same_hash_wait_secs),
    };
    Ok(Catalog::new(storage, index, limits, metrics))
}

/// Staging files of the file store and spool files a crash left behind
/// (untouched for a while, so no upload in progress owns them).
fn remove_crash_leftovers(storage: &Storage, spool: &std::path::Path) {
    let mut removed = storage.remove_abandoned_staging();
    let now = std::time::SystemTime::now();
    removed.extend(crate::storage::cleanup::remove_stale(spool, now, &|_| true));
    if !removed.is_empty() {
        tracing::info!(files = ?removed, "removed {} files abandoned by interrupted uploads", removed.len());
    }
}

fn describe(r: &Readiness) -> String {
    match (&r.storage, &r.index) {
        (Ok(()), Ok(())) => "ready".into(),
        (Err(e), _) => format!("storage: {e}"),
        (_, Err(e)) => format!("index: {e}"),
    }
}

/// Wait until storage and index answer, then send `READY=1`.
async fn announce_ready(catalog: Catalog, addr: SocketAddr) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match tokio::time::timeout(PROBE_TIMEOUT, catalog.readiness()).await {
            Ok(r) if r.is_ready() => {
                let assets = catalog.index().count().await.unwrap_or_default();
                let line = format!(
                    "serving on {addr}: {assets} assets, storage {}",
                    catalog.storage().describe()
                );
                tracing::info!("ready: {line}");
                notify::ready(&line);
                return;
            }
            Ok(r) => {
                let why = describe(&r);
                tracing::warn!("not ready yet ({why}); retrying in {backoff:?}");
                notify::status(&format!("waiting: {why}"));
            }
            Err(_) => {
                tracing::warn!("readiness probe timed out; retrying in {backoff:?}");
                notify::status("waiting: storage or index does not answer");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_READY_BACKOFF);
    }
}

/// Ping the watchdog while the server is alive: the index answers, the
/// storage probe *completes*, and our own listener serves `/healthz`.
/// A storage outage alone still pings (restarting would not fix it; readiness
/// reports it); a hung probe or a wedged HTTP server stops the pings.
async fn watchdog(catalog: Catalog, addr: SocketAddr, every: Duration, plain: bool) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let probe = tokio::time::timeout(PROBE_TIMEOUT, catalog.readiness()).await;
        let healthy = match probe {
            Ok(r) => r.index.is_ok() && self_check(addr, plain).await,
            Err(_) => false,
        };
        if healthy {
            notify::watchdog();
        } else {
            tracing::warn!("watchdog: server unhealthy, not pinging systemd");
        }
    }
}

/// Reload the TLS certificate and key on every SIGHUP. Without TLS there is
/// nothing to reload, but SIGHUP (`systemctl reload`) must still not kill us.
async fn reload_on_sighup(store: Option<std::sync::Arc<CertStore>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot handle SIGHUP ({e}); restart to load a new certificate");
            return;
        }
    };
    while hup.recv().await.is_some() {
        let Some(store) = store.as_ref() else {
            tracing::info!("SIGHUP: no TLS configured, nothing to reload");
            continue;
        };
        match store.reload() {
            Ok(()) => tracing::info!("SIGHUP: reloaded the TLS certificate and key"),
            Err(e) => tracing::warn!("SIGHUP: keeping the current TLS certificate: {e}"),
        }
    }
}

/// `GET /healthz` over our own listener (with TLS: the listener accepts).
async fn self_check(addr: SocketAddr, plain: bool) -> bool {
    let target = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(target).await.ok()?;
        if !plain {
            return Some(true);
        }
        let request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(&head == b"HTTP/1.1 200")
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, check).await,
        Ok(Some(true))
    )
}
