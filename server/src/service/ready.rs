//! Readiness: can storage and index serve requests? One probe at a time, and
//! its answer reused for [`READY_TTL`], so a flood of `/readyz` (anyone may
//! call it) is not a flood of storage LISTs and index queries. Both checks
//! are constant-cost: an empty-prefix LIST and a one-row index read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use futures_util::Future;

/// How long one probe's answer is reused.
pub const READY_TTL: Duration = Duration::from_secs(1);
/// Longest a probe may take before it counts as a failure.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Outcome of the readiness probe; the errors are for operators, not strangers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub storage: Result<(), String>,
    pub index: Result<(), String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.storage.is_ok() && self.index.is_ok()
    }

    fn timed_out() -> Self {
        let why = format!(
            "the readiness probe did not finish within {} s",
            READY_TIMEOUT.as_secs()
        );
        Self {
            storage: Err(why.clone()),
            index: Err(why),
        }
    }
}

/// The last probe's answer and when it was taken.
#[derive(Debug, Default)]
pub struct ReadyCache {
    last: tokio::sync::Mutex<Option<(Instant, Readiness)>>,
    probes: AtomicU64,
}

impl ReadyCache {
    /// The cached answer if younger than [`READY_TTL`], else a fresh probe.
    /// Callers arriving while a probe runs wait for it rather than start
    /// their own.
    pub async fn get(&self, probe: impl Future<Output = Readiness>) -> Readiness {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < READY_TTL
        {
            return answer.clone();
        }
        self.probes.fetch_add(1, Ordering::Relaxed);
        let fresh = tokio::time::timeout(READY_TIMEOUT, probe)
            .await
            .unwrap_or_else(|_| Readiness::timed_out());
        *last = Some((Instant::now(), fresh.clone()));
        fresh
    }

    /// Probes run so far.
    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ready() -> Readiness {
        Readiness {
            storage: Ok(()),
            index: Ok(()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_shares_one_probe_per_ttl() {
        let cache = Arc::new(ReadyCache::default());
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let cache = Arc::clone(&cache);
            tasks.push(tokio::spawn(async move {
                cache
                    .get(async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        ready()
                    })
                    .await
            }));
        }
        for t in tasks {
            assert!(t.await.expect("task").is_ready());
        }
        assert_eq!(cache.probes(), 1);
        tokio::time::advance(READY_TTL).await;
        assert!(cache.get(async { ready() }).await.is_ready());
        assert_eq!(cache.probes(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_probe_is_not_ready() {
        let cache = ReadyCache::default();
        let answer = cache.get(futures_util::future::pending()).await;
        assert!(!answer.is_ready());
        assert!(answer.storage.expect_err("timed out").contains("5 s"));
    }
}
