//! The jobs' metrics: queue depth by kind and state, run time and outcome
//! by kind, scrub's bytes read and problems found.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::index::jobs::{JobCount, JobKind};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    kind: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FoundLabels {
    found: &'static str,
}

/// Registered into the server's registry by [`crate::metrics::Metrics`].
#[derive(Debug)]
pub struct JobMetrics {
    queue: Family<QueueLabels, Gauge>,
    runs: Family<RunLabels, Histogram>,
    scrub_bytes: Counter,
    scrub_due: Gauge,
    scrub_problems: Family<FoundLabels, Counter>,
}

fn run_histogram() -> Histogram {
    // 1 ms … ~9 min
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

impl JobMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self {
            queue: Family::default(),
            runs: Family::new_with_constructor(run_histogram as fn() -> Histogram),
            scrub_bytes: Counter::default(),
            scrub_due: Gauge::default(),
            scrub_problems: Family::default(),
        };
        registry.register(
            "jobs",
            "Jobs in the queue by kind and state (queued, running, failed), as this server last counted them",
            this.queue.clone(),
        );
        registry.register_with_unit(
            "job_duration",
            "Jobs this server ran, by kind and outcome (done, retry, failed), and how long each took",
            Unit::Seconds,
            this.runs.clone(),
        );
        registry.register_with_unit(
            "scrub_read",
            "Bytes of stored content scrub re-read and hashed",
            Unit::Bytes,
            this.scrub_bytes.clone(),
        );
        registry.register(
            "scrub_due",
            "Assets not verified within [jobs] scrub_period_days",
            this.scrub_due.clone(),
        );
        registry.register(
            "scrub_problems",
            "Assets scrub found corrupt or missing (each counted when first found)",
            this.scrub_problems.clone(),
        );
        this
    }

    /// Replace the queue gauges with a fresh count.
    pub fn set_queue(&self, counts: &[JobCount]) {
        self.queue.clear();
        for c in counts {
            let labels = QueueLabels {
                kind: c.kind.clone(),
                state: c.state.clone(),
            };
            self.queue
                .get_or_create(&labels)
                .set(i64::try_from(c.count).unwrap_or(i64::MAX));
        }
    }

    pub fn job_ran(&self, kind: JobKind, outcome: &'static str, secs: f64) {
        let labels = RunLabels {
            kind: kind.as_str(),
            outcome,
        };
        self.runs.get_or_create(&labels).observe(secs);
    }

    pub fn scrub_read(&self, bytes: u64) {
        self.scrub_bytes.inc_by(bytes);
    }

    pub fn set_scrub_due(&self, due: u64) {
        self.scrub_due.set(i64::try_from(due).unwrap_or(i64::MAX));
    }

    pub fn scrub_problem(&self, found: asset_catalog_proto::Integrity) {
        let labels = FoundLabels {
            found: found.as_str(),
        };
        self.scrub_problems.get_or_create(&labels).inc();
    }
}
