//! Prometheus metrics (OpenMetrics text via `prometheus-client`): uploads,
//! stored bytes, dedup hits, errors by code, request latency by route. One
//! registry per server instance, so in-process tests do not share counters.

use asset_catalog_proto::ErrorCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViaLabels {
    via: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

/// Where a dedup hit was noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupVia {
    /// An upload of content the server already had.
    Upload,
    /// A sighting recorded without the bytes being sent.
    Sighting,
    /// A hash reported present by a check batch.
    Check,
}

/// All metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    uploads: Family<OutcomeLabels, Counter>,
    upload_bytes: Counter,
    dedup_hits: Family<ViaLabels, Counter>,
    errors: Family<CodeLabels, Counter>,
    requests: Family<RequestLabels, Histogram>,
    readiness_probes: Counter,
    upload_sessions: Gauge,
    upload_session_bytes: Gauge,
    upload_session_received: Counter,
    /// The background jobs' metrics.
    pub jobs: crate::jobs::JobMetrics,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("asset_catalog");
        let uploads = Family::<OutcomeLabels, Counter>::default();
        let upload_bytes = Counter::default();
        let dedup_hits = Family::<ViaLabels, Counter>::default();
        let errors = Family::<CodeLabels, Counter>::default();
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "uploads",
            "Uploads by outcome (created: bytes stored; existing: content already present)",
            uploads.clone(),
        );
        registry.register_with_unit(
            "upload",
            "Bytes of new content stored",
            Unit::Bytes,
            upload_bytes.clone(),
        );
        registry.register(
            "dedup_hits",
            "Times known content was not stored again, by where it was noticed",
            dedup_hits.clone(),
        );
        registry.register("errors", "Error responses by error code", errors.clone());
        registry.register_with_unit(
            "http_request_duration",
            "Time to produce a response, by method, route pattern and status",
            Unit::Seconds,
            requests.clone(),
        );
        let readiness_probes = Counter::default();
        registry.register(
            "readiness_probes",
            "Readiness probes of storage and index run (each answers /readyz for about a second)",
            readiness_probes.clone(),
        );
        let upload_sessions = Gauge::default();
        registry.register(
            "upload_sessions",
            "Resumable upload sessions open (tus), on every server sharing the index",
            upload_sessions.clone(),
        );
        let upload_session_bytes = Gauge::default();
        registry.register_with_unit(
            "upload_session",
            "Bytes the open resumable upload sessions hold",
            Unit::Bytes,
            upload_session_bytes.clone(),
        );
        let upload_session_received = Counter::default();
        registry.register_with_unit(
            "upload_session_received",
            "PATCH body bytes received for resumable upload sessions (resent bytes: this minus their lengths)",
            Unit::Bytes,
            upload_session_received.clone(),
        );
        let jobs = crate::jobs::JobMetrics::register(&mut registry);
        Self {
            jobs,
            upload_sessions,
            upload_session_bytes,
            upload_session_received,
            readiness_probes,
            registry,
            uploads,
            upload_bytes,
            dedup_hits,
            errors,
            requests,
        }
    }

    /// The open resumable upload sessions and the bytes they hold.
    pub fn upload_sessions(&self, sessions: u64, bytes: u64) {
        self.upload_sessions
            .set(i64::try_from(sessions).unwrap_or(i64::MAX));
        self.upload_session_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// `bytes` of a resumable session's `PATCH` body arrived.
    pub fn upload_session_received(&self, bytes: u64) {
        self.upload_session_received.inc_by(bytes);
    }

    /// New content of `bytes` bytes was stored.
    pub fn upload_created(&self, bytes: u64) {
        self.uploads
            .get_or_create(&OutcomeLabels { outcome: "created" })
            .inc();
        self.upload_bytes.inc_by(bytes);
    }

    /// An upload carried content the server already had.
    pub fn upload_existing(&self) {
        self.uploads
            .get_or_create(&OutcomeLabels {
                outcome: "existing",
            })
            .inc();
        self.dedup_hit(DedupVia::Upload, 1);
    }

    pub fn dedup_hit(&self, via: DedupVia, n: u64) {
        let via = match via {
            DedupVia::Upload => "upload",
            DedupVia::Sighting => "sighting",
            DedupVia::Check => "check",
        };
        self.dedup_hits.get_or_create(&ViaLabels { via }).inc_by(n);
    }

    /// Storage and index were probed for readiness.
    pub fn readiness_probe(&self) {
        self.readiness_probes.inc();
    }

    /// An error response with `code` was sent.
    pub fn error(&self, code: ErrorCode) {
        self.errors
            .get_or_create(&CodeLabels {
                code: code.as_str(),
            })
            .inc();
    }

    /// A request finished. Labels are `'static` on purpose: callers map what
    /// a client sent onto a fixed set ([`method_label`], the route patterns),
    /// so no request can add a series.
    pub fn observe_request(
        &self,
        method: &'static str,
        route: &'static str,
        status: u16,
        seconds: f64,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .observe(seconds);
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The `method` label: the methods the API serves, anything else `other`.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        // tus appends (`/v1/uploads/{id}`, `/ui/uploads/{id}`).
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        use actix_web::http::Method;
        for m in ["BREW", "PROPFIND", "get", "TRACE", "CONNECT"] {
            let method = Method::from_bytes(m.as_bytes()).expect("token");
            assert_eq!(method_label(&method), "other", "{m}");
        }
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        assert_eq!(
            method_label(&Method::PATCH),
            "PATCH",
            "tus appends with PATCH"
        );
    }

    #[test]
    fn exposition_names() {
        let m = Metrics::new();
        m.upload_created(10);
        m.upload_existing();
        m.upload_session_received(7);
        m.error(ErrorCode::HashMismatch);
        m.observe_request("PUT", "/v1/assets/{sha256}", 201, 0.01);
        let text = m.encode();
        for needle in [
            "asset_catalog_uploads_total{outcome=\"created\"} 1",
            "asset_catalog_upload_bytes_total 10",
            "asset_catalog_upload_session_received_bytes_total 7",
            "asset_catalog_dedup_hits_total{via=\"upload\"} 1",
            "asset_catalog_errors_total{code=\"hash_mismatch\"} 1",
            "asset_catalog_http_request_duration_seconds_count{method=\"PUT\"",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }
}
