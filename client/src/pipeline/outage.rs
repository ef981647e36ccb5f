//! Whether the server takes files, as the transfers see it. The change to
//! "unavailable" and back is logged once each, never once per file or per
//! retry (the daemon adds a summary once a minute), and when the server is
//! back every file that waits after an error is retried at once instead of
//! at the end of its backoff.

use std::cell::Cell;

use tokio::time::Instant;

use crate::error::TransferError;
use crate::state::{State, now_ms};

/// Server availability as the last transfers saw it.
#[derive(Debug, Default)]
pub(super) struct Outage {
    since: Cell<Option<Instant>>,
}

impl Outage {
    /// A transfer failed for a server-wide reason: log it if this starts an outage.
    pub fn failed(&self, state: &State, e: &TransferError) {
        if self.since.get().is_some() {
            return;
        }
        self.since.set(Some(Instant::now()));
        let waiting = state.queue_depth().unwrap_or(0);
        tracing::warn!(
            error = %e,
            waiting,
            "server unavailable ({e}): {waiting} files wait and are retried with backoff; \
             a summary follows once a minute"
        );
    }

    /// A transfer succeeded: if an outage ends, log it and make the files
    /// that wait after errors due now. True when that happened.
    pub fn succeeded(&self, state: &State) -> bool {
        let Some(since) = self.since.take() else {
            return false;
        };
        let secs = since.elapsed().as_secs();
        let retried = state.retry_waiting_now(now_ms()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot move waiting files forward");
            0
        });
        tracing::info!(
            seconds = secs,
            retried,
            "server available again after {secs} s; {retried} waiting files are retried now"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_starts_once_and_ends_once() {
        let (_d, state) = crate::state::test_util::open_temp();
        let o = Outage::default();
        assert!(!o.succeeded(&state), "no outage yet");
        let e = TransferError::Connect("refused".into());
        o.failed(&state, &e);
        let started = o.since.get();
        o.failed(&state, &e);
        assert_eq!(o.since.get(), started, "a second failure changes nothing");
        assert!(o.succeeded(&state));
        assert!(!o.succeeded(&state), "ended once");
    }
}
