//! `[jobs]`: the background jobs a server runs (see `crate::jobs`) and the
//! share of the machine they may take.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default scrub rate: 16 MiB/s reads 40 TiB in 30 days.
pub const DEFAULT_SCRUB_BYTES_PER_SEC: u64 = 16 * 1024 * 1024;

/// `[jobs]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Run jobs on this server (off: an API-only node; others run them).
    pub enabled: bool,
    /// Metadata and thumbnail jobs run at once (scrub has its own worker).
    pub workers: usize,
    /// Scheduling priority of the jobs' parsing and decoding threads, 0 (as
    /// requests) to 19 (what requests leave).
    pub nice: u8,
    /// Longest one metadata or thumbnail job may run before it fails.
    pub job_timeout_secs: u64,
    /// Runs of one job before it is kept as failed.
    pub max_attempts: u32,
    /// A running job whose server stopped heartbeating for this long is run
    /// again by another (heartbeats go every quarter of it).
    pub lease_secs: u64,
    /// Scrub reads at most this many bytes per second (0: as fast as it can).
    pub scrub_bytes_per_sec: u64,
    /// Every asset is re-read at least once in this many days.
    pub scrub_period_days: u64,
    /// Before starting a job, wait until this server has had no upload under
    /// way for a second, but never longer than this (0: do not wait).
    pub yield_to_uploads_secs: u64,
    /// Keep the GPS position from a photo's EXIF (off: it is never stored).
    pub keep_gps: bool,
    /// Largest image a thumbnail is made of, in pixels (width × height).
    pub max_image_pixels: u64,
    /// Largest image file read into memory to make its thumbnails.
    pub max_image_bytes: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            workers: 1,
            nice: 19,
            job_timeout_secs: 120,
            max_attempts: 5,
            lease_secs: 60,
            scrub_bytes_per_sec: DEFAULT_SCRUB_BYTES_PER_SEC,
            scrub_period_days: 30,
            keep_gps: false,
            yield_to_uploads_secs: 30,
            max_image_pixels: 100_000_000,
            max_image_bytes: 256 * 1024 * 1024,
        }
    }
}

impl JobsConfig {
    pub fn job_timeout(&self) -> Duration {
        Duration::from_secs(self.job_timeout_secs)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    pub fn yield_to_uploads(&self) -> Duration {
        Duration::from_secs(self.yield_to_uploads_secs)
    }

    pub fn scrub_period(&self) -> Duration {
        Duration::from_secs(self.scrub_period_days.saturating_mul(86_400))
    }
}

pub(super) fn validate(jobs: &JobsConfig, out: &mut Vec<String>) {
    if jobs.workers == 0 || jobs.workers > 64 {
        out.push(format!(
            "jobs.workers: {} is out of range; use 1 to 64 (or jobs.enabled = false to run none)",
            jobs.workers
        ));
    }
    if jobs.nice > 19 {
        out.push(format!(
            "jobs.nice: {} is out of range; use 0 (as requests) to 19 (only when idle)",
            jobs.nice
        ));
    }
    for (key, value) in [
        ("job_timeout_secs", jobs.job_timeout_secs),
        ("max_attempts", u64::from(jobs.max_attempts)),
        ("lease_secs", jobs.lease_secs),
        ("scrub_period_days", jobs.scrub_period_days),
        ("max_image_pixels", jobs.max_image_pixels),
        ("max_image_bytes", jobs.max_image_bytes),
    ] {
        if value == 0 {
            out.push(format!("jobs.{key}: must be greater than 0"));
        }
    }
}
