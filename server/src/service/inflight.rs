//! Uploads under way in this server: a hash is "in flight" from the moment
//! a `PUT` of it is handled (before its lock is taken and before a byte of
//! its body is read) until that upload has stored and indexed the content or
//! failed. `check` never calls such a hash missing: its bytes are arriving
//! already, and a client told "missing" would send them a second time.
//!
//! The window this closes: a watcher killed after its last body byte left
//! (the kernel still delivers it) while the server is storing the body; the
//! restarted watcher's check came before that upload was indexed, was told
//! "missing", and sent the bytes again (issue 11). With this set, the check
//! answers "present", the client sends a sighting, and the sighting waits on
//! the hash's lock until the upload ended (then it is recorded, or a 404
//! says the upload failed and the client sends the bytes, which the server
//! never had).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use asset_catalog_proto::Sha256Hex;

type Counts = Arc<Mutex<State>>;

/// The uploads under way, and when the last one ended.
#[derive(Debug, Default)]
struct State {
    hashes: HashMap<Sha256Hex, usize>,
    last_end: Option<Instant>,
}

impl std::ops::Deref for State {
    type Target = HashMap<Sha256Hex, usize>;
    fn deref(&self) -> &Self::Target {
        &self.hashes
    }
}

impl std::ops::DerefMut for State {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.hashes
    }
}

/// The hashes whose uploads are under way, with how many of each.
#[derive(Debug, Default)]
pub struct InFlight {
    counts: Counts,
}

/// Held by one upload for its whole duration; dropping it ends the upload.
#[derive(Debug)]
pub struct InFlightGuard {
    sha: Sha256Hex,
    counts: Counts,
}

impl InFlight {
    /// An upload of `sha` begins.
    pub fn begin(&self, sha: &Sha256Hex) -> InFlightGuard {
        *self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(sha.clone())
            .or_default() += 1;
        InFlightGuard {
            sha: sha.clone(),
            counts: Arc::clone(&self.counts),
        }
    }

    /// Which of `hashes` have an upload under way right now. Take this
    /// snapshot *before* reading the index: an upload that ends after it was
    /// taken has already been indexed when the index is read.
    pub fn snapshot(&self, hashes: &[Sha256Hex]) -> Vec<Sha256Hex> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.is_empty() {
            return Vec::new();
        }
        hashes
            .iter()
            .filter(|h| counts.contains_key(*h))
            .cloned()
            .collect()
    }

    /// How long no upload has been under way (zero while one is); the
    /// background jobs wait for a quiet moment (see `jobs/lane.rs`).
    pub fn quiet_for(&self) -> Duration {
        let state = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        match (state.is_empty(), state.last_end) {
            (false, _) => Duration::ZERO,
            (true, Some(end)) => end.elapsed(),
            (true, None) => Duration::MAX,
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.last_end = Some(Instant::now());
        if let Some(n) = counts.get_mut(&self.sha) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.sha);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_in_flight_until_its_last_upload_ends() {
        let inflight = InFlight::default();
        let (a, b) = (
            Sha256Hex::from_digest([1; 32]),
            Sha256Hex::from_digest([2; 32]),
        );
        let both = [a.clone(), b.clone()];
        assert!(inflight.snapshot(&both).is_empty());
        assert_eq!(inflight.quiet_for(), Duration::MAX, "nothing ever uploaded");
        let first = inflight.begin(&a);
        assert_eq!(inflight.quiet_for(), Duration::ZERO);
        let second = inflight.begin(&a);
        assert_eq!(inflight.snapshot(&both), vec![a.clone()]);
        drop(first);
        assert_eq!(inflight.snapshot(&both), vec![a.clone()], "one still runs");
        drop(second);
        assert!(inflight.snapshot(&both).is_empty());
        assert!(
            inflight.quiet_for() < Duration::from_secs(60),
            "quiet since just now"
        );
        assert!(inflight.counts.lock().expect("lock").is_empty());
    }
}
