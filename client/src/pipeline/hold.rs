//! The server's holds on this token's uploads, as the transfers meet them:
//! its rate limit (`rate_limited`, until the time its `Retry-After` names)
//! and its quota (`quota_exceeded`). While a hold lasts, requests it would
//! refuse are not sent: nothing while rate-limited, and no upload at least as
//! large as one the quota refused, until a while after that refusal (smaller
//! files and sightings go on). So no bytes are sent in vain, and nothing is
//! dropped: held files wait in the queue. A hold is logged when it starts
//! (a quota hold also when it ends), never once per file, and written to the
//! state database for `asset-watcher status`. Time is passed in (ms since
//! the epoch), so the logic is tested with a made-up clock.

use std::cell::Cell;
use std::time::Duration;

use crate::error::{Hold, TransferError};
use crate::state::{State, counters, now_ms};

/// After a quota refusal, an upload at least as large waits this long
/// before one is tried again.
pub(super) const QUOTA_RECHECK_MS: i64 = 300_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RateHold {
    since: i64,
    until: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct QuotaHold {
    since: i64,
    /// The smallest upload the quota refused: no room for this size.
    smallest_refused: u64,
    recheck_at: i64,
}

/// A hold that started or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    RateStarted { until: i64 },
    QuotaStarted,
    QuotaEnded { since: i64 },
}

/// The holds met so far in this process.
#[derive(Debug, Default)]
pub(super) struct Holds {
    rate: Cell<Option<RateHold>>,
    quota: Cell<Option<QuotaHold>>,
    /// Quota refusals so far: an upload that was on its way when one came
    /// proves nothing by being stored.
    quota_refusals: Cell<u64>,
}

impl Holds {
    /// May a request go out at `now`? `put` is the size of an upload,
    /// `None` for anything else.
    pub fn gate(&self, put: Option<u64>, now: i64) -> Result<(), Hold> {
        if let Some(r) = self.rate.get().filter(|r| now < r.until) {
            let left = u64::try_from(r.until - now).unwrap_or(0);
            return Err(Hold::RateLimited(Duration::from_millis(left)));
        }
        match (put, self.quota.get()) {
            (Some(size), Some(q)) if size >= q.smallest_refused && now < q.recheck_at => {
                Err(Hold::QuotaExceeded)
            }
            _ => Ok(()),
        }
    }

    /// The server refused a request for `size` bytes with `hold` at `now`.
    pub fn refused(&self, hold: Hold, size: u64, now: i64) -> Option<Change> {
        match hold {
            Hold::RateLimited(after) => {
                let until =
                    now.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX));
                match self.rate.get().filter(|r| now < r.until) {
                    Some(r) => {
                        let until = r.until.max(until);
                        self.rate.set(Some(RateHold { until, ..r }));
                        None
                    }
                    None => {
                        self.rate.set(Some(RateHold { since: now, until }));
                        Some(Change::RateStarted { until })
                    }
                }
            }
            Hold::QuotaExceeded => {
                self.quota_refusals.set(self.quota_refusals.get() + 1);
                let recheck_at = now.saturating_add(QUOTA_RECHECK_MS);
                let (held, change) = match self.quota.get() {
                    Some(q) => (
                        QuotaHold {
                            smallest_refused: q.smallest_refused.min(size),
                            recheck_at,
                            ..q
                        },
                        None,
                    ),
                    None => (
                        QuotaHold {
                            since: now,
                            smallest_refused: size,
                            recheck_at,
                        },
                        Some(Change::QuotaStarted),
                    ),
                };
                self.quota.set(Some(held));
                change
            }
        }
    }

    /// How many quota refusals came so far; read when an upload leaves.
    pub fn quota_refusals(&self) -> u64 {
        self.quota_refusals.get()
    }

    /// The server stored an upload of `size` bytes that left after
    /// `refusals` quota refusals: if none came since, a quota hold for that
    /// size or less is over (the quota has room again).
    pub fn stored(&self, size: u64, refusals: u64) -> Option<Change> {
        if refusals != self.quota_refusals.get() {
            return None;
        }
        let q = self.quota.get().filter(|q| size >= q.smallest_refused)?;
        self.quota.set(None);
        Some(Change::QuotaEnded { since: q.since })
    }

    /// Write the holds where `asset-watcher status` reads them (0: none).
    pub fn save(&self, state: &State) {
        let rate = self.rate.get();
        let values = [
            (counters::RATE_LIMITED_SINCE_MS, rate.map_or(0, |r| r.since)),
            (counters::RATE_LIMITED_UNTIL_MS, rate.map_or(0, |r| r.until)),
            (
                counters::QUOTA_EXCEEDED_SINCE_MS,
                self.quota.get().map_or(0, |q| q.since),
            ),
        ];
        let saved = state.in_transaction(|s| {
            values
                .iter()
                .try_for_each(|(key, value)| s.set_counter(key, *value))
        });
        if let Err(e) = saved {
            tracing::error!(error = %e, "cannot record the server's holds for `status`");
        }
    }

    /// The server refused an upload of `size` bytes with `hold` (`why`):
    /// record it, and log a hold that starts.
    pub fn note_refusal(&self, state: &State, hold: Hold, size: u64, why: &TransferError) {
        let now = now_ms();
        let change = self.refused(hold, size, now);
        self.save(state);
        let queued = state.queue_depth().unwrap_or(0);
        match change {
            Some(Change::RateStarted { until }) => {
                let seconds = (until - now).max(0) / 1000;
                tracing::warn!(
                    code = "rate_limited",
                    seconds,
                    queued,
                    "uploads paused for {seconds} s: the server's upload rate limit for this token \
                     was reached (rate_limited); queued files wait and go on after that"
                );
            }
            Some(Change::QuotaStarted) => tracing::warn!(
                code = "quota_exceeded", error = %why, queued,
                "uploads held back: the server says this token's quota is used up ({why}); files \
                 that do not fit stay queued and are tried again every few minutes; smaller files \
                 and files the server already has go on"
            ),
            _ => {}
        }
    }

    /// The server stored an upload of `size` bytes (which left after
    /// `refusals` quota refusals): log and record the end of a quota hold.
    pub fn note_stored(&self, state: &State, size: u64, refusals: u64) {
        if let Some(Change::QuotaEnded { since }) = self.stored(size, refusals) {
            self.save(state);
            let minutes = (now_ms() - since).max(0) / 60_000;
            tracing::info!(
                code = "quota_exceeded",
                minutes,
                "the server takes uploads again: the token's quota has room (it was used up for \
                 {minutes} min)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn a_rate_limit_holds_every_request_until_retry_after() {
        let h = Holds::default();
        assert_eq!(h.gate(Some(10), T0), Ok(()));
        let after = Duration::from_secs(30);
        assert_eq!(
            h.refused(Hold::RateLimited(after), 10, T0),
            Some(Change::RateStarted { until: T0 + 30_000 })
        );
        assert_eq!(
            h.gate(None, T0 + 10_000),
            Err(Hold::RateLimited(Duration::from_secs(20))),
            "sightings wait too, for what is left"
        );
        assert_eq!(
            h.refused(Hold::RateLimited(after), 10, T0 + 20_000),
            None,
            "a refusal during the hold extends it without starting another"
        );
        assert!(h.gate(Some(1), T0 + 49_999).is_err());
        assert_eq!(h.gate(Some(1), T0 + 50_000), Ok(()));
        assert!(
            h.refused(Hold::RateLimited(after), 10, T0 + 60_000)
                .is_some(),
            "a new hold once the last one is over"
        );
    }

    #[test]
    fn a_quota_hold_stops_uploads_that_cannot_fit_and_lets_smaller_ones_try() {
        let h = Holds::default();
        let before = h.quota_refusals();
        assert_eq!(
            h.refused(Hold::QuotaExceeded, 5_000, T0),
            Some(Change::QuotaStarted)
        );
        assert_eq!(
            h.stored(9_000, before),
            None,
            "an upload on its way when the refusal came proves no room"
        );
        assert_eq!(h.gate(Some(5_000), T0 + 1), Err(Hold::QuotaExceeded));
        assert_eq!(h.gate(Some(4_999), T0 + 1), Ok(()), "may still fit");
        assert_eq!(h.gate(None, T0 + 1), Ok(()), "sightings store nothing");
        assert_eq!(h.refused(Hold::QuotaExceeded, 2_000, T0 + 1_000), None);
        assert_eq!(h.gate(Some(3_000), T0 + 2_000), Err(Hold::QuotaExceeded));
        let recheck = T0 + 1_000 + QUOTA_RECHECK_MS;
        assert!(h.gate(Some(3_000), recheck - 1).is_err());
        assert_eq!(h.gate(Some(3_000), recheck), Ok(()), "one is tried again");
        let after = h.quota_refusals();
        assert_eq!(h.stored(1_999, after), None, "a smaller file says nothing");
        assert_eq!(
            h.stored(2_000, after),
            Some(Change::QuotaEnded { since: T0 })
        );
        assert_eq!(h.gate(Some(1 << 40), recheck), Ok(()));
        assert_eq!(h.stored(2_000, after), None, "ended once");
    }

    #[test]
    fn holds_are_saved_for_status() {
        let (_d, state) = crate::state::test_util::open_temp();
        let h = Holds::default();
        h.refused(Hold::RateLimited(Duration::from_secs(5)), 1, T0);
        h.refused(Hold::QuotaExceeded, 1, T0 + 7);
        h.save(&state);
        let r = state.report(0).expect("report");
        assert_eq!(r.rate_limited_since_ms, Some(T0));
        assert_eq!(r.rate_limited_until_ms, Some(T0 + 5_000));
        assert_eq!(r.quota_exceeded_since_ms, Some(T0 + 7));
        h.stored(1, h.quota_refusals());
        Holds::default().save(&state);
        let r = state.report(0).expect("report");
        assert_eq!(r.quota_exceeded_since_ms, None);
        assert_eq!(r.rate_limited_until_ms, None);
    }
}
