//! The debouncer: turns a burst of inotify events for one path into one
//! "settled" path after a quiet period (longer for a file written without a
//! close). Pure logic with the clock passed in; no I/O here.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// What an event says about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Closed after writing, or moved into place: settle after the quiet period.
    Closed,
    /// Created or modified with no close yet: probably still being written,
    /// so wait for the close (or, failing that, the longer write grace).
    Writing,
}

/// Collects paths with a deadline each; a path is due when nothing has
/// happened to it until its deadline.
#[derive(Debug)]
pub struct Debouncer<K> {
    quiet: Duration,
    write_grace: Duration,
    by_key: HashMap<K, (Instant, u64)>,
    by_deadline: BTreeMap<(Instant, u64), K>,
    seq: u64,
}

impl<K: Clone + Eq + Hash> Debouncer<K> {
    /// `quiet`: wait after a close; `write_grace`: wait after a write with
    /// no close (hard links, writers that keep the file open).
    pub fn new(quiet: Duration, write_grace: Duration) -> Self {
        Self {
            quiet,
            write_grace: write_grace.max(quiet),
            by_key: HashMap::new(),
            by_deadline: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Record activity on `key` at `now`.
    pub fn record(&mut self, key: K, activity: Activity, now: Instant) {
        let deadline = match activity {
            Activity::Closed => now + self.quiet,
            Activity::Writing => {
                let grace = now + self.write_grace;
                self.by_key
                    .get(&key)
                    .map_or(grace, |(d, _)| (*d).max(grace))
            }
        };
        self.set(key, deadline);
    }

    fn set(&mut self, key: K, deadline: Instant) {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_deadline.remove(&old);
        }
        self.seq += 1;
        self.by_deadline.insert((deadline, self.seq), key.clone());
        self.by_key.insert(key, (deadline, self.seq));
    }

    /// Forget `key` (it was deleted).
    pub fn remove(&mut self, key: &K) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_deadline.remove(&old);
        }
    }

    /// The earliest deadline, if any path is waiting.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.keys().next().map(|(d, _)| *d)
    }

    /// Remove and return every path whose deadline is at or before `now`,
    /// earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while let Some(entry) = self.by_deadline.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.by_key.remove(&key);
            due.push(key);
        }
        due
    }

    /// Remove and return everything (shutdown: nothing may be lost).
    pub fn drain(&mut self) -> Vec<K> {
        self.by_key.clear();
        std::mem::take(&mut self.by_deadline)
            .into_values()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Duration = Duration::from_millis(500);
    const G: Duration = Duration::from_secs(30);

    #[test]
    fn repeated_events_settle_once_after_the_last() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, G);
        d.record("a", Activity::Closed, t0);
        d.record("a", Activity::Closed, t0 + Duration::from_millis(400));
        assert!(d.pop_due(t0 + Duration::from_millis(600)).is_empty());
        assert_eq!(d.pop_due(t0 + Duration::from_millis(900)), vec!["a"]);
        assert!(d.is_empty());
    }

    #[test]
    fn writing_waits_for_close_or_grace() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, G);
        d.record("slow", Activity::Writing, t0);
        d.record("slow", Activity::Writing, t0 + Duration::from_secs(5));
        assert_eq!(d.next_deadline(), Some(t0 + Duration::from_secs(35)));
        assert!(d.pop_due(t0 + Duration::from_secs(20)).is_empty());
        d.record("slow", Activity::Closed, t0 + Duration::from_secs(21));
        assert_eq!(d.pop_due(t0 + Duration::from_secs(21) + Q), vec!["slow"]);
        d.record("link", Activity::Writing, t0);
        assert_eq!(d.pop_due(t0 + G), vec!["link"]);
    }

    #[test]
    fn due_paths_come_out_in_deadline_order_and_drain_takes_all() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(Q, G);
        d.record("b", Activity::Closed, t0 + Duration::from_millis(10));
        d.record("a", Activity::Closed, t0);
        d.record("c", Activity::Writing, t0);
        d.remove(&"zzz");
        assert_eq!(d.pop_due(t0 + Duration::from_secs(1)), vec!["a", "b"]);
        assert_eq!(d.len(), 1);
        assert_eq!(d.drain(), vec!["c"]);
        assert_eq!(d.next_deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn driven_by_a_paused_clock() {
        let mut d = Debouncer::new(Q, G);
        d.record(1, Activity::Closed, Instant::now());
        tokio::time::sleep(Duration::from_millis(300)).await;
        d.record(1, Activity::Closed, Instant::now());
        let deadline = d.next_deadline().expect("pending");
        tokio::time::sleep_until(deadline).await;
        assert_eq!(d.pop_due(Instant::now()), vec![1]);
        assert_eq!(Instant::now().duration_since(deadline), Duration::ZERO);
    }
}
