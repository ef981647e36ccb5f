//! The upload queue as the pipeline sees it: take due jobs, record a hash,
//! and finish a job (synced, retry later, failed, hash again, dropped).
//! Every write is conditional on the row's `version`, so a result computed
//! for an older state of the file never overwrites a newer observation.

use std::collections::HashSet;
use std::path::PathBuf;

use asset_catalog_proto::Sha256Hex;
use rusqlite::params;

use super::{FileStat, State, StateError, Status, counters, path_from_bytes};

/// One queued file, as the pipeline works on it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub path: PathBuf,
    pub stat: FileStat,
    /// Known when the status is `Hashed`.
    pub sha256: Option<Sha256Hex>,
    pub status: Status,
    pub version: i64,
    pub attempts: u32,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobUpdate {
    /// The server has the content and this path.
    Synced,
    /// Transient error: try again at `next_try_ms`; `attempts` is the
    /// number of tries in a row that got nowhere (the backoff's exponent).
    Retry {
        error: String,
        next_try_ms: i64,
        attempts: u32,
    },
    /// Permanent error: leave it until the file changes.
    Failed { error: String },
    /// The bytes were not what we hashed: hash again now.
    Rehash,
    /// The file vanished: take it off the queue.
    Drop,
}

impl State {
    /// Up to `limit` jobs due at `now`, oldest first, skipping `busy` ids.
    pub fn due_jobs(
        &self,
        now: i64,
        limit: usize,
        busy: &HashSet<i64>,
    ) -> Result<Vec<Job>, StateError> {
        let mut st = self.conn.prepare_cached(
            "SELECT f.id, f.path, f.dev, f.ino, f.size, f.mtime_ns, f.ctime_ns,
                    f.sha256, f.status, f.version, q.attempts
             FROM queue q JOIN files f ON f.id = q.file_id
             WHERE q.next_try_ms <= ?1 AND f.status IN ('pending', 'hashed')
             ORDER BY q.next_try_ms, q.file_id
             LIMIT ?2",
        )?;
        let fetch = i64::try_from(limit + busy.len()).unwrap_or(i64::MAX);
        let rows = st.query_map(params![now, fetch], |r| {
            let sha: Option<String> = r.get(7)?;
            Ok(Job {
                id: r.get(0)?,
                path: path_from_bytes(r.get(1)?),
                stat: FileStat {
                    dev: r.get::<_, i64>(2)? as u64,
                    ino: r.get::<_, i64>(3)? as u64,
                    size: r.get::<_, i64>(4)? as u64,
                    mtime_ns: r.get(5)?,
                    ctime_ns: r.get(6)?,
                },
                sha256: sha.and_then(|s| s.parse().ok()),
                status: Status::parse(&r.get::<_, String>(8)?),
                version: r.get(9)?,
                attempts: u32::try_from(r.get::<_, i64>(10)?).unwrap_or(u32::MAX),
            })
        })?;
        let mut jobs = Vec::with_capacity(limit);
        for job in rows {
            let job = job?;
            if !busy.contains(&job.id) {
                jobs.push(job);
                if jobs.len() == limit {
                    break;
                }
            }
        }
        Ok(jobs)
    }

    /// When the next queued job becomes due after `now` (ms since epoch),
    /// if any. Jobs already due at `now` are not counted: the caller took
    /// them (or they are in progress), so the answer is always later than
    /// `now`, and a job that came due between two clock readings is never
    /// mistaken for "nothing to wait for".
    pub fn next_due_after(&self, now: i64) -> Result<Option<i64>, StateError> {
        Ok(self.conn.query_row(
            "SELECT min(q.next_try_ms) FROM queue q JOIN files f ON f.id = q.file_id
             WHERE f.status IN ('pending', 'hashed') AND q.next_try_ms > ?1",
            [now],
            |r| r.get(0),
        )?)
    }

    /// Make every job that waits after an error due at `now` (the server
    /// is back); returns how many were moved forward.
    pub fn retry_waiting_now(&self, now: i64) -> Result<usize, StateError> {
        Ok(self.conn.execute(
            "UPDATE queue SET next_try_ms = ?1 WHERE last_error IS NOT NULL AND next_try_ms > ?1",
            [now],
        )?)
    }

    /// Jobs waiting (pending or hashed), due or not.
    pub fn queue_depth(&self) -> Result<u64, StateError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM queue q JOIN files f ON f.id = q.file_id
             WHERE f.status IN ('pending', 'hashed')",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Store the hash of the file as it was when hashed (`stat`). False when
    /// the row changed meanwhile (the job is superseded).
    pub fn record_hash(
        &self,
        job: &Job,
        stat: &FileStat,
        sha: &Sha256Hex,
        now: i64,
    ) -> Result<bool, StateError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE files SET sha256 = ?1, status = 'hashed', dev = ?2, ino = ?3, size = ?4,
                    mtime_ns = ?5, ctime_ns = ?6, updated_ms = ?7
             WHERE id = ?8 AND version = ?9",
            )?
            .execute(params![
                sha.as_str(),
                stat.dev as i64,
                stat.ino as i64,
                stat.size as i64,
                stat.mtime_ns,
                stat.ctime_ns,
                now,
                job.id,
                job.version
            ])?;
        Ok(n == 1)
    }

    /// Record how a job ended. False when the row changed meanwhile (a newer
    /// observation already re-queued it).
    pub fn finish_job(&self, job: &Job, update: &JobUpdate, now: i64) -> Result<bool, StateError> {
        self.in_transaction(|s| s.finish_job_inner(job.id, job.version, update, now))
    }

    /// Record how several jobs ended, in one transaction (one commit for
    /// all the jobs that finished together). Returns how many rows were
    /// still current.
    pub fn finish_jobs<'a>(
        &self,
        ended: impl IntoIterator<Item = (i64, i64, &'a JobUpdate)>,
        now: i64,
    ) -> Result<usize, StateError> {
        self.in_transaction(|s| {
            let mut current = 0;
            for (id, version, update) in ended {
                current += usize::from(s.finish_job_inner(id, version, update, now)?);
            }
            Ok(current)
        })
    }

    fn finish_job_inner(
        &self,
        id: i64,
        version: i64,
        update: &JobUpdate,
        now: i64,
    ) -> Result<bool, StateError> {
        let current: Option<i64> = {
            use rusqlite::OptionalExtension;
            self.conn
                .prepare_cached("SELECT version FROM files WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?
        };
        if current != Some(version) {
            return Ok(false);
        }
        self.apply_update(id, update, now)?;
        Ok(true)
    }

    fn apply_update(&self, id: i64, update: &JobUpdate, now: i64) -> Result<(), StateError> {
        let c = &self.conn;
        match update {
            JobUpdate::Synced => {
                c.prepare_cached(
                    "UPDATE files SET status = 'synced', synced_ms = ?1 WHERE id = ?2",
                )?
                .execute(params![now, id])?;
                c.prepare_cached("DELETE FROM queue WHERE file_id = ?1")?
                    .execute([id])?;
                c.prepare_cached(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                )?
                .execute(params![counters::LAST_SYNC_MS, now])?;
            }
            JobUpdate::Retry {
                error,
                next_try_ms,
                attempts,
            } => {
                c.prepare_cached(
                    "UPDATE queue SET attempts = ?1, last_error = ?2, next_try_ms = ?3
                     WHERE file_id = ?4",
                )?
                .execute(params![attempts, error, next_try_ms, id])?;
            }
            JobUpdate::Failed { error } => {
                c.execute("UPDATE files SET status = 'failed' WHERE id = ?1", [id])?;
                c.execute(
                    "UPDATE queue SET attempts = attempts + 1, last_error = ?1, next_try_ms = ?2
                     WHERE file_id = ?3",
                    params![error, i64::MAX, id],
                )?;
            }
            JobUpdate::Rehash => {
                c.execute(
                    "UPDATE files SET status = 'pending', sha256 = NULL WHERE id = ?1",
                    [id],
                )?;
                c.execute(
                    "UPDATE queue SET attempts = attempts + 1, next_try_ms = ?1 WHERE file_id = ?2",
                    params![now, id],
                )?;
            }
            JobUpdate::Drop => {
                c.execute("DELETE FROM queue WHERE file_id = ?1", [id])?;
            }
        }
        Ok(())
    }

    /// Put failed files whose error starts with one of `prefixes` back in
    /// the queue (credential failures, once the watcher restarts).
    pub fn retry_failed_with(&self, prefixes: &[&str], now: i64) -> Result<usize, StateError> {
        let mut n = 0;
        for prefix in prefixes {
            let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
            n += self.in_transaction(|s| {
                let ids = "SELECT q.file_id FROM queue q JOIN files f ON f.id = q.file_id
                           WHERE f.status = 'failed' AND q.last_error LIKE ?1";
                s.conn.execute(
                    &format!("UPDATE files SET status = CASE WHEN sha256 IS NULL THEN 'pending' ELSE 'hashed' END WHERE id IN ({ids})"),
                    [&pattern],
                )?;
                // Correlated, so only the parked queue rows (`queue_due`) are
                // looked at; `file_id IN (SELECT id FROM files WHERE ...)`
                // built a temporary table of every live file first, a tenth
                // of a 100,000-file rescan (issue 17).
                Ok(s.conn.execute(
                    "UPDATE queue SET attempts = 0, next_try_ms = ?1
                     WHERE next_try_ms = ?2 AND EXISTS
                       (SELECT 1 FROM files f WHERE f.id = queue.file_id AND f.status != 'failed')",
                    params![now, i64::MAX],
                )?)
            })?;
        }
        Ok(n)
    }

    /// Put every failed file back in the queue (`scan --retry-failed`).
    pub fn retry_failed(&self, now: i64) -> Result<usize, StateError> {
        self.in_transaction(|s| {
            s.conn.execute(
                "UPDATE queue SET attempts = 0, next_try_ms = ?1
                 WHERE file_id IN (SELECT id FROM files WHERE status = 'failed')",
                [now],
            )?;
            Ok(s.conn.execute(
                "UPDATE files SET status = CASE WHEN sha256 IS NULL THEN 'pending' ELSE 'hashed' END
                 WHERE status = 'failed'",
                [],
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::test_util::{open_temp, stat};
    use super::*;

    fn sha(b: u8) -> Sha256Hex {
        Sha256Hex::from_digest([b; 32])
    }

    #[test]
    fn a_job_goes_from_pending_to_synced() {
        let (_d, st) = open_temp();
        st.observe(Path::new("/w/a"), &stat(1, 5, 5), 10)
            .expect("observe");
        let jobs = st.due_jobs(10, 10, &HashSet::new()).expect("due");
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].status, Status::Pending);
        assert!(
            st.record_hash(&jobs[0], &jobs[0].stat, &sha(1), 11)
                .expect("hash")
        );
        let job = st.due_jobs(11, 10, &HashSet::new()).expect("due").remove(0);
        assert_eq!(job.sha256, Some(sha(1)));
        assert!(st.finish_job(&job, &JobUpdate::Synced, 12).expect("finish"));
        assert_eq!(st.queue_depth().expect("depth"), 0);
        assert_eq!(st.counter(counters::LAST_SYNC_MS).expect("last"), 12);
    }

    #[test]
    fn stale_results_do_not_overwrite_newer_observations() {
        let (_d, st) = open_temp();
        let p = Path::new("/w/a");
        st.observe(p, &stat(1, 5, 5), 10).expect("observe");
        let job = st.due_jobs(10, 10, &HashSet::new()).expect("due").remove(0);
        st.observe(p, &stat(1, 6, 6), 11)
            .expect("changed meanwhile");
        assert!(!st.record_hash(&job, &job.stat, &sha(1), 12).expect("hash"));
        assert!(!st.finish_job(&job, &JobUpdate::Synced, 12).expect("finish"));
        assert_eq!(st.queue_depth().expect("depth"), 1);
    }

    /// Files /w/a and /w/b observed at 10, and their two jobs, due then.
    fn two_due_jobs(st: &State) -> Vec<Job> {
        st.observe(Path::new("/w/a"), &stat(1, 5, 5), 10)
            .expect("a");
        st.observe(Path::new("/w/b"), &stat(2, 5, 5), 10)
            .expect("b");
        st.due_jobs(10, 10, &HashSet::new()).expect("due")
    }

    #[test]
    fn jobs_ending_together_are_recorded_in_one_go_except_stale_ones() {
        let (_d, st) = open_temp();
        let jobs = two_due_jobs(&st);
        st.observe(Path::new("/w/b"), &stat(2, 6, 6), 11)
            .expect("b changed meanwhile");
        let synced = JobUpdate::Synced;
        let ended = jobs.iter().map(|j| (j.id, j.version, &synced));
        assert_eq!(st.finish_jobs(ended, 12).expect("finish"), 1);
        assert_eq!(st.queue_depth().expect("depth"), 1, "b is queued again");
    }

    #[test]
    fn retries_wait_and_failures_park_until_retry_failed() {
        let (_d, st) = open_temp();
        let jobs = two_due_jobs(&st);
        let retry = JobUpdate::Retry {
            error: "refused".into(),
            next_try_ms: 100,
            attempts: 1,
        };
        st.finish_job(&jobs[0], &retry, 11).expect("retry");
        st.finish_job(
            &jobs[1],
            &JobUpdate::Failed {
                error: "413".into(),
            },
            11,
        )
        .expect("fail");
        assert!(
            st.due_jobs(50, 10, &HashSet::new())
                .expect("due")
                .is_empty()
        );
        assert_eq!(st.next_due_after(50).expect("next"), Some(100));
        assert_eq!(
            st.next_due_after(100).expect("next"),
            None,
            "a job due now is not something to wait for"
        );
        let again = st.due_jobs(100, 10, &HashSet::new()).expect("due");
        assert_eq!((again.len(), again[0].attempts), (1, 1));
        assert_eq!(st.queue_depth().expect("depth"), 1);
        assert_eq!(
            st.retry_failed_with(&["server answered 401"], 150)
                .expect("auth"),
            0
        );
        assert_eq!(st.retry_failed(200).expect("retry failed"), 1);
        assert_eq!(st.queue_depth().expect("depth"), 2);
    }

    #[test]
    fn credential_failures_can_be_requeued_alone() {
        let (_d, st) = open_temp();
        let jobs = two_due_jobs(&st);
        let denied = JobUpdate::Failed {
            error: "server answered 401 unauthorized: no".into(),
        };
        let too_big = JobUpdate::Failed {
            error: "server answered 413 payload_too_large".into(),
        };
        st.finish_job(&jobs[0], &denied, 11).expect("fail");
        st.finish_job(&jobs[1], &too_big, 11).expect("fail");
        let n = st
            .retry_failed_with(&["server answered 401", "server answered 403"], 12)
            .expect("requeue");
        assert_eq!(n, 1);
        assert_eq!(st.report(10).expect("report").failed, 1);
        assert_eq!(st.due_jobs(12, 10, &HashSet::new()).expect("due").len(), 1);
    }

    #[test]
    fn busy_jobs_are_skipped() {
        let (_d, st) = open_temp();
        let (a, _) = st
            .observe(Path::new("/w/a"), &stat(1, 5, 5), 10)
            .expect("a");
        st.observe(Path::new("/w/b"), &stat(2, 5, 5), 10)
            .expect("b");
        let busy: HashSet<i64> = [a].into_iter().collect();
        let jobs = st.due_jobs(10, 1, &busy).expect("due");
        assert_eq!(jobs.len(), 1);
        assert_ne!(jobs[0].id, a);
    }
}
