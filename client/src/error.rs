//! Errors of one file's transfer, and the single place that decides what
//! happens next: retry later, give up (failed state), re-hash and send again,
//! upload instead of a sighting, or drop the job because the file is gone.

use std::io;

use asset_catalog_proto::ErrorCode;

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
    },
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
                message: _,
            } => classify_http(*status, *code),
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
            } => Self::Http {
                status: *status,
                code: *code,
                message: message.clone(),
            },
            Self::Protocol(s) => Self::Protocol(s.clone()),
            Self::Changed => Self::Changed,
            Self::Io(e) => Self::Io(io::Error::new(e.kind(), e.to_string())),
            Self::Worker => Self::Worker,
            Self::State(s) => Self::State(s.clone()),
            Self::TooLarge => Self::TooLarge,
        }
    }

    /// True when the trouble is the server, its address or our credentials
    /// rather than one file (logged once a minute, not once per file).
    pub fn is_systemic(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::Timeout | Self::Send(_))
            || matches!(self, Self::Http { status, .. } if matches!(status, 300..=399 | 401 | 403 | 500..=599))
    }
}

/// How a refused-credentials error starts once stored as a job's last error.
pub const AUTH_FAILURE_PREFIXES: [&str; 2] = ["server answered 401", "server answered 403"];

fn classify_http(status: u16, code: Option<ErrorCode>) -> Disposition {
    match (status, code) {
        (422, Some(ErrorCode::HashMismatch)) => Disposition::Rehash,
        (400, Some(ErrorCode::IncompleteBody)) => Disposition::Rehash,
        (404, Some(ErrorCode::NotFound)) => Disposition::NotOnServer,
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
        TransferError::Http {
            status,
            code,
            message: String::new(),
        }
        .disposition()
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
        for s in [408, 429, 500, 502, 503, 507] {
            assert_eq!(http(s, None), Disposition::Retry, "{s}");
        }
        for status in [301, 302, 307, 308] {
            let redirect = TransferError::Http {
                status,
                code: None,
                message: String::new(),
            };
            assert_eq!(redirect.disposition(), Disposition::Retry, "{status}");
            assert!(
                redirect.is_systemic(),
                "{status}: logged once, as an outage"
            );
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
        let denied = TransferError::Http {
            status: 401,
            code: Some(ErrorCode::Unauthorized),
            message: String::new(),
        };
        assert!(denied.is_systemic());
        assert!(denied.to_string().starts_with(AUTH_FAILURE_PREFIXES[0]));
    }

    #[test]
    fn http_error_message_names_the_code() {
        let e = TransferError::Http {
            status: 413,
            code: Some(ErrorCode::PayloadTooLarge),
            message: "body larger than 1 GiB".into(),
        };
        assert_eq!(
            e.to_string(),
            "server answered 413 payload_too_large: body larger than 1 GiB"
        );
    }
}
