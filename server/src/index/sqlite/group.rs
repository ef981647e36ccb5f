//! Group commit for the small writes every upload and sighting makes.
//!
//! With `synchronous=FULL` each commit costs a WAL write and an fsync; one
//! commit per upload made the index the server's busiest part under many
//! small uploads. Writers queue their change; whoever holds the writer
//! connection next applies everything queued, each change in its own
//! savepoint (a failing one is rolled back alone), and commits once. Every
//! caller is answered only after that commit is durable, so "stored" still
//! means "on disk".
//!
//! One committer thread at a time drains the queue, group after group, and
//! stops when it finds the queue empty; a writer starts one only when none
//! is running. (A thread per writer, each waiting for the connection to find
//! its change already committed by another, spent a fifth of the server's
//! samples under B1's small uploads waking threads, issue 17.)

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::{Shared, SqliteIndex};
use crate::index::IndexError;

/// Called after the group's commit with its outcome; answers one caller.
type Answer = Box<dyn FnOnce(Result<(), IndexError>) + Send>;
/// One queued change: applies itself inside a savepoint and says whether it
/// succeeded (a failed change's savepoint is rolled back).
type Change = Box<dyn FnOnce(&Connection, &Path) -> (bool, Answer) + Send>;

/// Changes waiting for the next group commit, and whether a committer is
/// running.
#[derive(Default)]
pub(super) struct Queue {
    changes: Mutex<Vec<Change>>,
    committing: AtomicBool,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.changes.lock().map_or(0, |q| q.len());
        f.debug_struct("Queue").field("queued", &n).finish()
    }
}

impl Queue {
    /// Queue `change`; true when the caller must start a committer.
    fn push(&self, change: Change) -> bool {
        self.lock().push(change);
        !self.committing.swap(true, Ordering::AcqRel)
    }

    fn take(&self) -> Vec<Change> {
        std::mem::take(&mut *self.lock())
    }

    /// The running committer found nothing to do: true when it may stop,
    /// false when a change came in meanwhile and it must carry on (the
    /// writer that queued it saw a committer running and started none).
    fn may_stop(&self) -> bool {
        self.committing.store(false, Ordering::Release);
        self.lock().is_empty() || self.committing.swap(true, Ordering::AcqRel)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Change>> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Clears `committing` if a committer unwinds, so the next writer starts
/// another (the changes it held were dropped, and their callers told so).
struct Running<'a>(&'a Queue);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.committing.store(false, Ordering::Release);
        }
    }
}

impl SqliteIndex {
    /// Run `f` in a transaction shared with the other writers queued now,
    /// inside a savepoint of its own; returns after the commit.
    pub(crate) async fn write_grouped<T, F>(&self, f: F) -> Result<T, IndexError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let change: Change = Box::new(move |conn, path| {
            let out = f(conn).map_err(|e| IndexError::from_sqlite(path, e));
            let applied = out.is_ok();
            let answer: Answer = Box::new(move |committed: Result<(), IndexError>| {
                let _ = tx.send(out.and_then(|v| committed.map(|()| v)));
            });
            (applied, answer)
        });
        if self.shared.queued.push(change) {
            let shared = Arc::clone(&self.shared);
            tokio::task::spawn_blocking(move || drain(&shared));
        }
        rx.await
            .map_err(|_| IndexError::Task("the index writer dropped a change".into()))?
    }
}

/// The committer: group commits until the queue is empty.
fn drain(shared: &Shared) {
    let _running = Running(&shared.queued);
    loop {
        let changes = shared.queued.take();
        if changes.is_empty() {
            if shared.queued.may_stop() {
                return;
            }
            continue;
        }
        commit_group(shared, changes);
    }
}

/// Apply `changes` in one transaction and answer each caller.
fn commit_group(shared: &Shared, changes: Vec<Change>) {
    let mut conn = shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
    let path = shared.path.as_path();
    let mut answers = Vec::with_capacity(changes.len());
    let outcome = (|| {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for change in changes {
            let sp = tx.savepoint()?;
            let (applied, answer) = change(&sp, path);
            answers.push(answer);
            if applied {
                sp.commit()?;
            } // else dropped: rolled back
        }
        tx.commit()
    })();
    for answer in answers {
        answer(match &outcome {
            Ok(()) => Ok(()),
            Err(e) => Err(IndexError::from_sqlite(path, copy_error(e))),
        });
    }
    // Changes never reached (the transaction failed first) were dropped with
    // their reply channel; their callers see "the index writer dropped a change".
}

/// A copy of `e` for each caller of a failed group (rusqlite errors are not
/// `Clone`; the code that classifies them, such as disk full, is kept).
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{NewAsset, SightingRecord};
    use asset_catalog_proto::Sha256Hex;
    use std::time::Duration;
    use time::OffsetDateTime;

    fn asset(i: u8) -> (NewAsset, SightingRecord) {
        let sha = Sha256Hex::from_digest([i; 32]);
        let now = OffsetDateTime::now_utc();
        let asset = NewAsset {
            key: format!("{sha}.bin"),
            sha256: sha,
            size: u64::from(i),
            content_type: "application/octet-stream".into(),
            name: format!("{i}.bin"),
            first_seen: now,
            uploaded_by: None,
            verified_at: Some(now),
        };
        let sighting = SightingRecord {
            token: None,
            client: "host".into(),
            path: format!("dir/{i}.bin"),
            name: format!("{i}.bin"),
            mtime: None,
            seen_at: now,
        };
        (asset, sighting)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_commits_and_a_failing_one_fails_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = SqliteIndex::open(&dir.path().join("index.sqlite3"))
            .await
            .expect("open");
        let mut tasks = Vec::new();
        for i in 0..64u8 {
            let index = index.clone();
            tasks.push(tokio::spawn(async move {
                if i % 16 == 5 {
                    // Fails inside its savepoint after changing something.
                    index
                        .write_grouped(|conn| {
                            conn.execute("DELETE FROM sightings", [])?;
                            conn.execute("INSERT INTO no_such_table VALUES (1)", [])
                        })
                        .await
                        .map(drop)
                } else {
                    let (a, s) = asset(i);
                    index
                        .insert(a, s, u64::MAX)
                        .await
                        .map(|inserted| assert!(inserted.created && inserted.sighted))
                }
            }));
        }
        let mut failed = 0;
        for t in tasks {
            if t.await.expect("task").is_err() {
                failed += 1;
            }
        }
        assert_eq!(failed, 4, "exactly the four bad changes fail");
        assert_eq!(index.count().await.expect("count"), 60);
        for i in (0..64u8).filter(|i| i % 16 != 5) {
            let stored = index
                .get(&asset(i).0.sha256)
                .await
                .expect("get")
                .expect("committed");
            assert_eq!(
                stored.sighting_count, 1,
                "the bad changes rolled back alone"
            );
        }
    }

    /// Writers arriving while the committer is about to stop must not be
    /// left queued with nobody to commit them: bursts of every size, each
    /// after the previous one drained, all answered, committer idle after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_burst_is_committed_and_the_committer_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = SqliteIndex::open(&dir.path().join("index.sqlite3"))
            .await
            .expect("open");
        let mut n = 0u64;
        for burst in 1..=40u64 {
            let tasks: Vec<_> = (0..burst % 9 + 1)
                .map(|_| {
                    n += 1;
                    let (index, k) = (index.clone(), n);
                    tokio::spawn(async move {
                        index
                            .write_grouped(move |conn| {
                                conn.execute(
                                    "INSERT INTO clients (client, sightings, last_seen) \
                                     VALUES (?1, 0, 0)",
                                    [format!("c{k}")],
                                )
                            })
                            .await
                    })
                })
                .collect();
            let all = futures_util::future::join_all(tasks);
            let done = tokio::time::timeout(Duration::from_secs(10), all)
                .await
                .expect("every writer of the burst answered within 10 s");
            for out in done {
                assert_eq!(out.expect("task").expect("committed"), 1);
            }
            if burst % 3 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let rows: i64 = index
            .read(|c| c.query_row("SELECT count(*) FROM clients", [], |r| r.get(0)))
            .await
            .expect("count");
        assert_eq!(u64::try_from(rows).expect("count"), n);
        let idle = || !index.shared.queued.committing.load(Ordering::Acquire);
        testkit::wait_until("the committer to stop", Duration::from_secs(10), || {
            idle().then_some(())
        });
    }
}
