//! The web UI's values, the same for every backend: sign-in sessions (a
//! cookie) and one-time sign-in links, both stored as the SHA-256 of their
//! random secret in one `sessions` table, and the overview page's figures.
//!
//! A session signed in with a token acts as that token: its grant is read
//! with the session on every request, so a revoked token's sessions stop at
//! once (and `revoke_token` deletes them). A session opened by a CLI sign-in
//! link has no token and carries its own scopes.
//!
//! The overview never scans `assets` or `sightings`: it reads two small
//! summary tables that triggers keep for every writer (uploads, `reindex`,
//! `fsck --repair`, deletes) and that the migration creating them
//! backfilled (SQLite v6, PostgreSQL v3):
//!
//! - `days`: assets first seen and their bytes per UTC day. The last
//!   `days` days are a range of it and the totals its sum (about 1,100 rows
//!   for B8's three years);
//! - `clients`: per client, the sightings it has now and when it last
//!   reported one (kept when its sightings go with their assets: the client
//!   stays listed, with 0).
//!
//! Chosen by measurement (B8, `bench/index-bench`, 1,000,000 assets and
//! 3,000,000 sightings, median of 5). Scanning for the same figures took,
//! on SQLite / PostgreSQL: `count(*), sum(size)` over `assets` 137 / 94 ms
//! (and growing with the catalog: this decided for `days`); `GROUP BY
//! client` over `sightings` 5,506 / 348 ms; 30 days of
//! `assets_by_first_seen` 9.1 / 17 ms (fast enough, but `days` has them
//! too). The whole overview from the summary tables takes 0.08 ms (SQLite)
//! and 1.6 ms (PostgreSQL, which sums shards: see `postgres/schema.rs`,
//! V3). Their cost is on writes: two trigger upserts per upload, which on
//! PostgreSQL (testkit, `fsync = off`) took B8's sustained insert rate at
//! 200,000 assets from 3,848 / 3,827 to 3,310 / 3,490 assets/s (two runs
//! each); on SQLite, where each commit's fsync dominates, the difference
//! was within run-to-run noise.

use time::{Date, OffsetDateTime};

use super::{Index, IndexError, TokenGrant};
use crate::auth::Scopes;

/// What a stored row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A sign-in session: the browser's cookie.
    Session,
    /// A one-time sign-in link, redeemed for a session.
    Link,
}

impl SessionKind {
    /// Stored form: `session` or `link`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Link => "link",
        }
    }
}

/// A sign-in session (cookie) or a one-time sign-in link, as stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 of the cookie's / link's random secret (the secret itself is never stored).
    pub id_hash: [u8; 32],
    /// The token signed in with; `None` for a session opened by a CLI sign-in link.
    pub token_id: Option<String>,
    /// Scopes of a token-less session (ignored when `token_id` is set: the token's own scopes apply).
    pub scopes: Scopes,
    /// The session's CSRF token (random hex), compared by the UI on every form.
    pub csrf: String,
    pub created: OffsetDateTime,
    pub expires: OffsetDateTime,
    pub kind: SessionKind,
}

/// A live session: who it acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    /// The token's grant (id, scopes, limits), or `None` for a token-less session.
    pub token: Option<TokenGrant>,
    /// Effective scopes (the token's, else the session's own).
    pub scopes: Scopes,
    pub csrf: String,
    pub expires: OffsetDateTime,
}

/// The overview page's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub assets: u64,
    pub bytes: u64,
    /// Assets whose integrity is corrupt or missing.
    pub problems: u64,
    /// Uploads (assets first seen) per UTC day, the last `days` days up to `now`, oldest first; days with none are left out.
    pub per_day: Vec<DayCount>,
    /// Every client that ever recorded a sighting, the most recently seen first.
    pub clients: Vec<ClientSummary>,
}

/// Assets first seen on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    pub day: Date,
    pub assets: u64,
    pub bytes: u64,
}

/// One client's sightings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSummary {
    pub client: String,
    /// Sightings it has now (0 once all of them went with their assets).
    pub sightings: u64,
    /// When it last reported a sighting.
    pub last_seen: OffsetDateTime,
}

/// Nanoseconds in a day: `days.day` is `floor(first_seen / DAY_NANOS)`.
pub(crate) const DAY_NANOS: i64 = 86_400_000_000_000;

/// Julian day of 1970-01-01.
const UNIX_EPOCH_JULIAN: i64 = 2_440_588;

/// The days of `days.day` an overview covers: `days` days up to `now`'s, inclusive.
pub(crate) fn day_range(now: OffsetDateTime, days: u32) -> (i64, i64) {
    let today = super::types::to_nanos(now).div_euclid(DAY_NANOS);
    (today - i64::from(days) + 1, today)
}

/// A `days.day` number as a date; `None` outside `time`'s range.
pub(crate) fn day_date(day: i64) -> Option<Date> {
    let julian = i32::try_from(day.checked_add(UNIX_EPOCH_JULIAN)?).ok()?;
    Date::from_julian_day(julian).ok()
}

/// Sessions, sign-in links and the overview, on whichever backend the index is.
impl Index {
    /// Store a session or link; expired rows of either kind (those whose
    /// `expires` is not after `new.created`) are deleted in the same write.
    pub async fn create_session(&self, new: &NewSession) -> Result<(), IndexError> {
        each!(self, i => i.create_session(new).await)
    }

    /// The live session with this hash: kind session, `expires > now`, and when it has a token,
    /// that token exists and is not revoked. `None` otherwise (unknown, expired, token revoked).
    pub async fn session(
        &self,
        id_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<SessionGrant>, IndexError> {
        each!(self, i => i.session(id_hash, now).await)
    }

    /// Sign out: delete the session row; false when there was none.
    pub async fn end_session(&self, id_hash: &[u8; 32]) -> Result<bool, IndexError> {
        each!(self, i => i.end_session(id_hash).await)
    }

    /// Redeem a one-time link: atomically delete the link row and return its scopes if it had not expired
    /// (a second redeem, even concurrent, gets None). A link's own scopes are returned: links carry no token.
    pub async fn redeem_link(
        &self,
        id_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<Scopes>, IndexError> {
        each!(self, i => i.redeem_link(id_hash, now).await)
    }

    /// The overview figures (see the module's comment for where they come from).
    pub async fn overview(&self, now: OffsetDateTime, days: u32) -> Result<Overview, IndexError> {
        each!(self, i => i.overview(now, days).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_date(0), Some(date!(1970 - 01 - 01)));
        assert_eq!(day_date(-1), Some(date!(1969 - 12 - 31)));
        let (from, to) = day_range(datetime!(2024-03-01 23:59:59 UTC), 3);
        assert_eq!(day_date(from), Some(date!(2024 - 02 - 28)));
        assert_eq!(day_date(to), Some(date!(2024 - 03 - 01)));
        let (from, to) = day_range(datetime!(1969-12-31 12:00 UTC), 1);
        assert_eq!((from, to), (-1, -1));
        assert!(day_range(OffsetDateTime::UNIX_EPOCH, 0).0 > 0, "no days");
        assert_eq!(day_date(i64::MAX), None);
    }
}
