//! Per-token quotas (`token create --rate N --max-bytes N`): uploads per
//! minute, enforced before an upload takes a slot or reads its body (GCRA
//! through `governor`: a burst of N, then one every 60/N s), and bytes of
//! new content stored, checked before any byte goes to storage against the
//! index's `stored_bytes` plus what this token's uploads under way have
//! reserved. Duplicates cost nothing. Both are kept per server process; the
//! byte count itself lives in the index and is shared.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

use super::{Caller, ServiceError};

/// Upload-rate limiters and byte reservations, by token id.
#[derive(Debug, Default)]
pub struct Quotas {
    rates: Mutex<HashMap<String, (u32, Arc<DefaultDirectRateLimiter>)>>,
    reserved: Arc<Mutex<HashMap<String, u64>>>,
}

/// Bytes held for an upload under way; given back on drop.
#[derive(Debug)]
pub struct Reservation {
    token: String,
    bytes: u64,
    reserved: Arc<Mutex<HashMap<String, u64>>>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut map = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = map.get_mut(&self.token) {
            *held = held.saturating_sub(self.bytes);
            if *held == 0 {
                map.remove(&self.token);
            }
        }
    }
}

impl Quotas {
    /// May `caller` start another upload now? `rate_limited` with the wait otherwise.
    pub fn admit(&self, caller: &Caller) -> Result<(), ServiceError> {
        let (Some(id), Some(per_min)) = (caller.token_id(), caller.limits().rate_per_min) else {
            return Ok(());
        };
        let Some(burst) = NonZeroU32::new(per_min) else {
            return Err(ServiceError::RateLimited {
                per_minute: 0,
                retry_after: 60,
            });
        };
        let limiter = {
            let mut map = self.rates.lock().unwrap_or_else(PoisonError::into_inner);
            let fresh = || {
                let limiter = DefaultDirectRateLimiter::direct(Quota::per_minute(burst));
                (per_min, Arc::new(limiter))
            };
            let entry = map.entry(id.to_owned()).or_insert_with(fresh);
            if entry.0 != per_min {
                *entry = fresh();
            }
            Arc::clone(&entry.1)
        };
        limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ServiceError::RateLimited {
                per_minute: per_min,
                retry_after: wait.as_secs() + 1,
            }
        })
    }

    /// Bytes this token may still store, counting uploads under way; `None`
    /// when it has no byte quota.
    pub fn room(&self, caller: &Caller, stored: u64) -> Option<u64> {
        let (id, max) = (caller.token_id()?, caller.limits().max_bytes?);
        let held = self.held(id);
        Some(max.saturating_sub(stored.saturating_add(held)))
    }

    /// Hold `bytes` of the quota for an upload of known size, or say why not.
    pub fn reserve(
        &self,
        caller: &Caller,
        stored: u64,
        bytes: u64,
    ) -> Result<Option<Reservation>, ServiceError> {
        let (Some(id), Some(max)) = (caller.token_id(), caller.limits().max_bytes) else {
            return Ok(None);
        };
        let mut map = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        let held = map.get(id).copied().unwrap_or_default();
        let used = stored.saturating_add(held);
        if bytes > max || used.saturating_add(bytes) > max {
            return Err(ServiceError::QuotaExceeded {
                token: id.to_owned(),
                max,
                used,
                size: bytes,
            });
        }
        *map.entry(id.to_owned()).or_default() += bytes;
        Ok(Some(Reservation {
            token: id.to_owned(),
            bytes,
            reserved: Arc::clone(&self.reserved),
        }))
    }

    /// Bytes held for this caller's uploads under way (theirs included).
    pub fn held_for(&self, caller: &Caller) -> u64 {
        caller.token_id().map_or(0, |id| self.held(id))
    }

    /// Whether `held` (read after this upload's own reservation) plus
    /// `stored` (read after that) still fits the caller's quota. The index's
    /// `stored` that `reserve` was given may predate an upload that has since
    /// been committed and let its reservation go: without this second look,
    /// uploads started together could all pass on the same stale figure.
    pub fn confirm(
        &self,
        caller: &Caller,
        held: u64,
        stored: u64,
        bytes: u64,
    ) -> Result<(), ServiceError> {
        let (Some(id), Some(max)) = (caller.token_id(), caller.limits().max_bytes) else {
            return Ok(());
        };
        let used = stored.saturating_add(held);
        if used > max {
            return Err(ServiceError::QuotaExceeded {
                token: id.to_owned(),
                max,
                used: used.saturating_sub(bytes),
                size: bytes,
            });
        }
        Ok(())
    }

    fn held(&self, id: &str) -> u64 {
        let map = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(id).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Scope, Scopes};
    use crate::index::{TokenGrant, TokenLimits};

    fn caller(max_bytes: Option<u64>, rate_per_min: Option<u32>) -> Caller {
        Caller::from_grant(TokenGrant {
            id: "0123456789ab".into(),
            scopes: Scopes::new(vec![Scope::Upload]),
            limits: TokenLimits {
                client: None,
                max_bytes,
                rate_per_min,
            },
        })
    }

    #[test]
    fn the_rate_allows_a_burst_then_says_how_long_to_wait() {
        let quotas = Quotas::default();
        let c = caller(None, Some(3));
        for _ in 0..3 {
            quotas.admit(&c).expect("within the burst");
        }
        match quotas.admit(&c) {
            Err(ServiceError::RateLimited { retry_after, .. }) => {
                assert!((1..=21).contains(&retry_after), "{retry_after}");
            }
            other => panic!("expected rate_limited, got {other:?}"),
        }
        assert!(quotas.admit(&Caller::trusted()).is_ok());
    }

    #[test]
    fn reservations_count_until_dropped() {
        let quotas = Quotas::default();
        let c = caller(Some(100), None);
        let first = quotas.reserve(&c, 10, 60).expect("fits");
        assert_eq!(quotas.room(&c, 10), Some(30));
        let err = quotas.reserve(&c, 10, 31).expect_err("over");
        assert!(
            matches!(err, ServiceError::QuotaExceeded { used: 70, .. }),
            "{err:?}"
        );
        assert!(matches!(
            quotas.reserve(&c, 0, 101),
            Err(ServiceError::QuotaExceeded { .. })
        ));
        drop(first);
        assert_eq!(quotas.room(&c, 10), Some(90));
        assert!(
            quotas
                .reserve(&Caller::trusted(), 0, u64::MAX)
                .expect("no quota")
                .is_none()
        );
    }

    #[test]
    fn a_second_look_refuses_what_a_stale_stored_figure_let_through() {
        let quotas = Quotas::default();
        let c = caller(Some(10_000), None);
        // Both read stored = 6,000 before a third upload of 3,000 committed.
        let first = quotas
            .reserve(&c, 6_000, 3_000)
            .expect("fits on the stale figure");
        let held = quotas.held_for(&c);
        assert_eq!(held, 3_000);
        // The fresh figure includes the third upload: 9,000 + 3,000 > 10,000.
        let err = quotas
            .confirm(&c, held, 9_000, 3_000)
            .expect_err("over on the fresh figure");
        assert!(matches!(err, ServiceError::QuotaExceeded { .. }), "{err}");
        drop(first);
        assert_eq!(
            quotas.held_for(&c),
            0,
            "the refused upload's hold is let go"
        );
        quotas
            .confirm(&c, 3_000, 6_000, 3_000)
            .expect("what fits still fits");
    }
}
