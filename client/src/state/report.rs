//! The numbers `asset-watcher status` shows: queue depth, retrying and
//! failed files with their reasons, partial (resumable) uploads, last sync,
//! lifetime counters, and the server's holds on uploads (rate limit, quota)
//! the daemon last met.

use serde::Serialize;

use super::{Partial, State, StateError, counters, path_from_bytes};

/// A file that is failing (permanently, or retrying after an error).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    pub path: String,
    pub error: String,
    pub attempts: u32,
    /// `None` for permanent failures.
    pub next_try_ms: Option<i64>,
}

/// A snapshot of the state database.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub files_total: u64,
    pub synced: u64,
    pub queued: u64,
    pub retrying: u64,
    pub failed: u64,
    pub last_sync_ms: Option<i64>,
    pub last_scan_ms: Option<i64>,
    pub bytes_hashed: u64,
    pub bytes_sent: u64,
    pub uploads: u64,
    pub sightings: u64,
    /// Since when the token's quota is used up, if it is.
    pub quota_exceeded_since_ms: Option<i64>,
    /// Since and until when the server's rate limit holds uploads back.
    pub rate_limited_since_ms: Option<i64>,
    pub rate_limited_until_ms: Option<i64>,
    pub failures: Vec<Failure>,
    pub retries: Vec<Failure>,
    /// Resumable uploads begun and not finished, with the committed offset
    /// the server last reported.
    pub partial: Vec<Partial>,
}

fn count(st: &State, sql: &str) -> Result<u64, StateError> {
    let n: i64 = st.conn.query_row(sql, [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

impl State {
    /// Gather the status report; at most `max_listed` failures and retries
    /// are listed by name.
    pub fn report(&self, max_listed: usize) -> Result<Report, StateError> {
        let positive = |v: i64| (v > 0).then_some(v);
        let unsigned = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Report {
            files_total: count(self, "SELECT count(*) FROM files WHERE status != 'gone'")?,
            synced: count(self, "SELECT count(*) FROM files WHERE status = 'synced'")?,
            queued: self.queue_depth()?,
            retrying: count(
                self,
                "SELECT count(*) FROM queue q JOIN files f ON f.id = q.file_id
                 WHERE f.status IN ('pending', 'hashed') AND q.last_error IS NOT NULL",
            )?,
            failed: count(self, "SELECT count(*) FROM files WHERE status = 'failed'")?,
            last_sync_ms: positive(self.counter(counters::LAST_SYNC_MS)?),
            last_scan_ms: positive(self.counter(counters::LAST_SCAN_MS)?),
            bytes_hashed: unsigned(self.counter(counters::BYTES_HASHED)?),
            bytes_sent: unsigned(self.counter(counters::BYTES_SENT)?),
            uploads: unsigned(self.counter(counters::UPLOADS)?),
            sightings: unsigned(self.counter(counters::SIGHTINGS)?),
            quota_exceeded_since_ms: positive(self.counter(counters::QUOTA_EXCEEDED_SINCE_MS)?),
            rate_limited_since_ms: positive(self.counter(counters::RATE_LIMITED_SINCE_MS)?),
            rate_limited_until_ms: positive(self.counter(counters::RATE_LIMITED_UNTIL_MS)?),
            failures: self.failures("f.status = 'failed'", max_listed)?,
            retries: self.failures(
                "f.status IN ('pending', 'hashed') AND q.last_error IS NOT NULL",
                max_listed,
            )?,
            partial: self.partials(max_listed)?,
        })
    }

    fn failures(&self, filter: &str, limit: usize) -> Result<Vec<Failure>, StateError> {
        let sql = format!(
            "SELECT f.path, coalesce(q.last_error, ''), q.attempts, q.next_try_ms, f.status
             FROM queue q JOIN files f ON f.id = q.file_id
             WHERE {filter} ORDER BY f.path LIMIT ?1"
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            let status: String = r.get(4)?;
            Ok(Failure {
                path: path_from_bytes(r.get(0)?).to_string_lossy().into_owned(),
                error: r.get(1)?,
                attempts: u32::try_from(r.get::<_, i64>(2)?).unwrap_or(u32::MAX),
                next_try_ms: (status != "failed").then_some(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::super::JobUpdate;
    use super::super::test_util::{open_temp, stat};
    use super::*;

    #[test]
    fn report_lists_failures_with_reasons() {
        let (_d, st) = open_temp();
        st.observe(Path::new("/w/big.iso"), &stat(1, 5, 5), 10)
            .expect("a");
        st.observe(Path::new("/w/b"), &stat(2, 5, 5), 10)
            .expect("b");
        let jobs = st.due_jobs(10, 10, &HashSet::new()).expect("due");
        let failed = JobUpdate::Failed {
            error: "server answered 413".into(),
        };
        st.finish_job(&jobs[0], &failed, 11).expect("fail");
        st.add_counter(counters::BYTES_SENT, 42).expect("count");
        let r = st.report(10).expect("report");
        assert_eq!((r.files_total, r.queued, r.failed, r.synced), (2, 1, 1, 0));
        assert_eq!(r.failures[0].path, "/w/big.iso");
        assert_eq!(r.failures[0].error, "server answered 413");
        assert_eq!(r.failures[0].next_try_ms, None);
        assert_eq!(r.bytes_sent, 42);
        assert_eq!(r.last_sync_ms, None);
    }
}
