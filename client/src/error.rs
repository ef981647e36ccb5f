//! Errors of one file's transfer, and the single place that decides what
//! happens next: retry later, wait as long as the server holds this token's
//! uploads back (rate limit, quota), give up (failed state), re-hash and send
//! again, upload instead of a sighting, count the file as done as far as the
//! server lets it be, or drop the job because the file is gone.

use std::io;
use std::time::Duration;

use asset_catalog_proto::ErrorCode;

use crate::backoff::Backoff;

/// What the pipeline does with a job after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Transient: try again after a backoff.
    Retry,
    /// Will not get better by retrying: the file goes to the failed state
    /// until it changes (or `scan --retry-failed`).
    Permanent,
    /// The bytes differ from the hash we sent: hash again and resend.
    Rehash,
    /// The server does not have the content: upload it instead of a sighting.
    NotOnServer,
    /// The file no longer exists; its vanish event takes care of the row.
    Vanished,
    /// The server holds this token's uploads back for now (its rate limit or
    /// its quota): the file stays queued and is tried again when the hold
    /// says; this counts neither against the file nor as the server being down.
    Hold(Hold),
    /// The server has the content and records no further place for it
    /// (`too_many_sightings`): nothing more can be done, the file is done.
    Settled,
}

/// Why, and for how long, the server holds this token's uploads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// `rate_limited`: not before this long from now (its `Retry-After`).
    RateLimited(Duration),
    /// `quota_exceeded`: the token's stored-bytes quota has no room for
    /// this file (403), or is smaller than the file (413).
    QuotaExceeded,
}

/// A quota refusal is retried slowly: a quota gets room only when someone
/// raises it or deletes assets.
pub const QUOTA_BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(300),
    max: Duration::from_secs(3600),
};
/// `Retry-After` when the server sent none that can be read: the period of
/// a per-minute limit.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl Hold {
    /// How long a held file waits before its next try, after `attempts`
    /// tries; `jitter` is a random number in `[0, 1]`.
    pub fn retry_delay(self, attempts: u32, jitter: f64) -> Duration {
        match self {
            // Never before the server said; spread over a further quarter,
            // so the queue does not come back in one burst.
            Self::RateLimited(after) => after + after.mul_f64(jitter.clamp(0.0, 1.0) / 4.0),
            Self::QuotaExceeded => QUOTA_BACKOFF.delay(attempts, jitter),
        }
    }

    /// The server's code for this hold.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::QuotaExceeded => ErrorCode::QuotaExceeded,
        }
    }

    /// What a request held back locally says (see `TransferError::Held`).
    fn not_sent(self) -> String {
        match self {
            Self::RateLimited(d) => format!(
                "the server's upload rate limit for this token (rate_limited) applies for another {} s",
                d.as_secs().max(1)
            ),
            Self::QuotaExceeded => {
                "the server's quota for this token (quota_exceeded) has no room \
                                    for a file this large"
                    .to_owned()
            }
        }
    }
}

/// Everything that can go wrong while hashing, checking, uploading or
/// announcing one file.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("cannot reach the server: {0}")]
    Connect(String),
    #[error("the server did not answer in time")]
    Timeout,
    #[error("sending the request failed: {0}")]
    Send(String),
    #[error("server answered {status}{}: {message}", code.map(|c| format!(" {c}")).unwrap_or_default())]
    Http {
        status: u16,
        code: Option<ErrorCode>,
        message: String,
        /// The `Retry-After` header, in seconds, if it had one.
        retry_after: Option<Duration>,
    },
    /// Not sent: the server holds such requests back (a hold met earlier).
    #[error("not sent: {}", .0.not_sent())]
    Held(Hold),
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    #[error("the file changed while it was being read")]
    Changed,
    #[error("reading the file failed: {0}")]
    Io(#[from] io::Error),
    #[error("the hash worker stopped unexpectedly")]
    Worker,
    #[error("state database: {0}")]
    State(String),
    #[error("the file is larger than this client can describe")]
    TooLarge,
}

impl TransferError {
    /// Classify this error. This is the only place that decides between
    /// retryable and permanent.
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::Connect(_)
            | Self::Timeout
            | Self::Send(_)
            | Self::Protocol(_)
            | Self::Worker
            | Self::State(_) => Disposition::Retry,
            Self::Http {
                status,
                code,
                retry_after,
                ..
            } => classify_http(*status, *code, *retry_after),
            Self::Held(hold) => Disposition::Hold(*hold),
            Self::Changed => Disposition::Rehash,
            Self::TooLarge => Disposition::Permanent,
            Self::Io(e) => match e.kind() {
                io::ErrorKind::NotFound => Disposition::Vanished,
                io::ErrorKind::PermissionDenied | io::ErrorKind::IsADirectory => {
                    Disposition::Permanent
                }
                _ => Disposition::Retry,
            },
        }
    }

    /// A copy for every job waiting on one shared request (io errors keep
    /// their kind and message).
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Connect(s) => Self::Connect(s.clone()),
            Self::Timeout => Self::Timeout,
            Self::Send(s) => Self::Send(s.clone()),
            Self::Http {
                status,
                code,
                message,
                retry_after,
            } => Self::Http {
                status: *status,
                code: *code,
                message: message.clone(),
                retry_after: *retry_after,
            },
            Self::Held(hold) => Self::Held(*hold),
            Self::Protocol(s) => Self::Protocol(s.clone()),
            Self::Changed => Self::Changed,
            Self::Io(e) => Self::Io(io::Error::new(e.kind(), e.to_string())),
            Self::Worker => Self::Worker,
            Self::State(s) => Self::State(s.clone()),
            Self::TooLarge => Self::TooLarge,
        }
    }

    /// True when the trouble is the server, its address or our credentials
    /// rather than one file (logged once a minute, not once per file). The
    /// server's holds (rate limit, quota) are not: they are logged when they
    /// start and end.
    pub fn is_systemic(&self) -> bool {
        if matches!(
            self.disposition(),
            Disposition::Hold(_) | Disposition::Settled
        ) {
            return false;
        }
        matches!(self, Self::Connect(_) | Self::Timeout | Self::Send(_))
            || matches!(self, Self::Http { status, .. } if matches!(status, 300..=399 | 401 | 403 | 500..=599))
    }
}

/// How a refused-credentials error starts once stored as a job's last error.
pub const AUTH_FAILURE_PREFIXES: [&str; 2] = ["server answered 401", "server answered 403"];

fn classify_http(
    status: u16,
    code: Option<ErrorCode>,
    retry_after: Option<Duration>,
) -> Disposition {
    match (status, code) {
        (_, Some(ErrorCode::RateLimited)) => {
            let after = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
            Disposition::Hold(Hold::RateLimited(
                after.clamp(Duration::from_secs(1), MAX_RETRY_AFTER),
            ))
        }
        // 403: no room left for this file; 413: the file is larger than the
        // whole quota. Either may change (the quota raised, assets deleted).
        (_, Some(ErrorCode::QuotaExceeded)) => Disposition::Hold(Hold::QuotaExceeded),
        (_, Some(ErrorCode::TooManySightings)) => Disposition::Settled,
        // The token is bound to another client id: the config must change
        // (files refused with 403 are queued again when the watcher starts).
        (403, Some(ErrorCode::WrongClient)) => Disposition::Permanent,
        (422, Some(ErrorCode::HashMismatch)) => Disposition::Rehash,
        (400, Some(ErrorCode::IncompleteBody)) => Disposition::Rehash,
        (404, Some(ErrorCode::NotFound)) => Disposition::NotOnServer,
        // A resumable session the server no longer knows, or whose offset
        // moved on: the next try asks again (or begins a new session).
        (_, Some(ErrorCode::UnknownUpload | ErrorCode::OffsetMismatch)) => Disposition::Retry,
        // 401/403 (bad token) are permanent per the contract; such files are
        // queued again when the watcher next starts (the token may be fixed).
        (413, _) => Disposition::Permanent,
        (408 | 429, _) => Disposition::Retry,
        (500..=599, _) => Disposition::Retry,
        (400..=499, _) => Disposition::Permanent,
        // 1xx/3xx/other 2xx where we expected something else: a proxy or a
        // misconfiguration; it may be fixed, so keep trying, slowly. (The
        // watcher never follows a redirect: its token and the file's bytes go
        // only to the configured server.)
        _ => Disposition::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, code: Option<ErrorCode>) -> Disposition {
        answer(status, code, None).disposition()
    }

    fn answer(status: u16, code: Option<ErrorCode>, retry_after: Option<u64>) -> TransferError {
        TransferError::Http {
            status,
            code,
            message: String::new(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn server_statuses_are_classified_per_contract() {
        assert_eq!(
            http(422, Some(ErrorCode::HashMismatch)),
            Disposition::Rehash
        );
        assert_eq!(
            http(404, Some(ErrorCode::NotFound)),
            Disposition::NotOnServer
        );
        assert_eq!(
            http(413, Some(ErrorCode::PayloadTooLarge)),
            Disposition::Permanent
        );
        assert_eq!(
            http(400, Some(ErrorCode::BadRequest)),
            Disposition::Permanent
        );
        assert_eq!(
            http(401, Some(ErrorCode::Unauthorized)),
            Disposition::Permanent
        );
        assert_eq!(
            http(404, Some(ErrorCode::RouteNotFound)),
            Disposition::Permanent
        );
        assert_eq!(
            http(404, Some(ErrorCode::UnknownUpload)),
            Disposition::Retry
        );
        assert_eq!(
            http(409, Some(ErrorCode::OffsetMismatch)),
            Disposition::Retry
        );
        for s in [408, 429, 500, 502, 503, 507] {
            assert_eq!(http(s, None), Disposition::Retry, "{s}");
        }
    }

    #[test]
    fn local_errors_are_classified() {
        let e = |k| TransferError::Io(io::Error::from(k)).disposition();
        assert_eq!(e(io::ErrorKind::NotFound), Disposition::Vanished);
        assert_eq!(e(io::ErrorKind::PermissionDenied), Disposition::Permanent);
        assert_eq!(e(io::ErrorKind::Interrupted), Disposition::Retry);
        assert_eq!(TransferError::Changed.disposition(), Disposition::Rehash);
        assert_eq!(
            TransferError::Connect("refused".into()).disposition(),
            Disposition::Retry
        );
        assert!(TransferError::Timeout.is_systemic());
        assert!(!TransferError::Changed.is_systemic());
        let denied = answer(401, Some(ErrorCode::Unauthorized), None);
        assert!(denied.is_systemic());
        assert!(denied.to_string().starts_with(AUTH_FAILURE_PREFIXES[0]));
    }

    #[test]
    fn http_error_message_names_the_code() {
        let e = TransferError::Http {
            status: 413,
            code: Some(ErrorCode::PayloadTooLarge),
            message: "body larger than 1 GiB".into(),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            "server answered 413 payload_too_large: body larger than 1 GiB"
        );
    }

    #[test]
    fn the_servers_holds_are_waited_out_and_never_fail_the_file() {
        let rate = |secs| Disposition::Hold(Hold::RateLimited(Duration::from_secs(secs)));
        let limited = |after| answer(429, Some(ErrorCode::RateLimited), after).disposition();
        assert_eq!(limited(Some(17)), rate(17), "Retry-After is honoured");
        assert_eq!(limited(None), rate(60), "a minute without one");
        assert_eq!(limited(Some(0)), rate(1));
        assert_eq!(limited(Some(86_400)), rate(3600));
        for status in [403, 413] {
            let quota = answer(status, Some(ErrorCode::QuotaExceeded), None);
            assert_eq!(quota.disposition(), Disposition::Hold(Hold::QuotaExceeded));
            assert!(!quota.is_systemic(), "{status}: not an outage");
        }
        assert!(!answer(429, Some(ErrorCode::RateLimited), Some(5)).is_systemic());
        let capped = answer(409, Some(ErrorCode::TooManySightings), None);
        assert_eq!(capped.disposition(), Disposition::Settled);
        assert!(!capped.is_systemic());
        let wrong = answer(403, Some(ErrorCode::WrongClient), None);
        assert_eq!(wrong.disposition(), Disposition::Permanent);
        assert!(
            wrong.is_systemic(),
            "a configuration problem, logged once a minute"
        );
        assert!(wrong.to_string().starts_with(AUTH_FAILURE_PREFIXES[1]));
        assert_eq!(
            http(429, Some(ErrorCode::TooManyRequests)),
            Disposition::Retry,
            "the server's own concurrency cap is an ordinary retry"
        );
        for status in [301, 302, 307, 308] {
            assert_eq!(http(status, None), Disposition::Retry, "{status}");
            assert!(answer(status, None, None).is_systemic(), "{status}");
        }
    }

    #[test]
    fn held_files_wait_as_long_as_the_server_says() {
        let rate = Hold::RateLimited(Duration::from_secs(20));
        assert_eq!(rate.retry_delay(1, 0.0), Duration::from_secs(20));
        assert_eq!(rate.retry_delay(9, 1.0), Duration::from_secs(25));
        let quota = Hold::QuotaExceeded;
        assert_eq!(quota.retry_delay(1, 0.0), Duration::from_secs(150));
        assert_eq!(quota.retry_delay(1, 1.0), Duration::from_secs(300));
        assert_eq!(quota.retry_delay(3, 1.0), Duration::from_secs(1200));
        assert_eq!(quota.retry_delay(u32::MAX, 1.0), Duration::from_secs(3600));
        let held = TransferError::Held(rate);
        assert_eq!(held.disposition(), Disposition::Hold(rate));
        assert!(!held.is_systemic());
        let text = held.to_string();
        assert!(
            text.starts_with("not sent: ")
                && text.contains("rate_limited")
                && text.contains("20 s"),
            "{text}"
        );
        assert!(
            TransferError::Held(quota)
                .duplicate()
                .to_string()
                .contains("quota_exceeded")
        );
    }
}
