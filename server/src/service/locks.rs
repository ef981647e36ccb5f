//! Per-hash mutual exclusion inside one server: two uploads (or an upload
//! and a delete) of the same content never interleave, so the same bytes are
//! never stored under two extensions and a delete never races a store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use asset_catalog_proto::Sha256Hex;
use tokio::sync::OwnedMutexGuard;

/// Lock table keyed by hash; entries disappear when nobody holds or waits.
#[derive(Debug, Default)]
pub struct HashLocks {
    map: Arc<Mutex<HashMap<Sha256Hex, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Held while working on one hash.
#[derive(Debug)]
pub struct HashGuard {
    guard: Option<OwnedMutexGuard<()>>,
    key: Sha256Hex,
    map: Arc<Mutex<HashMap<Sha256Hex, Arc<tokio::sync::Mutex<()>>>>>,
}

impl HashLocks {
    /// Wait for and take the lock of `key`.
    pub async fn lock(&self, key: &Sha256Hex) -> HashGuard {
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry(key.clone()).or_default())
        };
        let guard = mutex.lock_owned().await;
        HashGuard {
            guard: Some(guard),
            key: key.clone(),
            map: Arc::clone(&self.map),
        }
    }

    /// [`Self::lock`], giving up after `wait` (`None`): a request never waits
    /// without bound behind another on the same hash.
    pub async fn lock_within(
        &self,
        key: &Sha256Hex,
        wait: std::time::Duration,
    ) -> Option<HashGuard> {
        tokio::time::timeout(wait, self.lock(key)).await.ok()
    }

    /// Number of hashes with a holder or waiter (for tests).
    pub fn active(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for HashGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.get(&self.key)
            && Arc::strong_count(entry) == 1
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_hash_serialises_and_entries_are_cleaned_up() {
        let locks = Arc::new(HashLocks::default());
        let h = Sha256Hex::from_digest([1; 32]);
        let first = locks.lock(&h).await;
        let waiter = {
            let locks = Arc::clone(&locks);
            let h = h.clone();
            tokio::spawn(async move { drop(locks.lock(&h).await) })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let other = locks.lock(&Sha256Hex::from_digest([2; 32])).await;
        drop(other);
        drop(first);
        waiter.await.expect("waiter");
        assert_eq!(locks.active(), 0);
    }
}
