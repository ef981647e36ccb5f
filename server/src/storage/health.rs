//! Deadlines on storage calls, and what the server learned from them about
//! whether storage answers. Every call on the request path gets one deadline,
//! retries included ([`Calls::run`]); a call that fails because storage is
//! unreachable marks it down, and while it is down new uploads are refused at
//! once with 503 `storage_unavailable` ([`Health::admit`]), before they take
//! an upload slot or read their body, so an outage of any length never fills
//! the slots. One upload every [`TRIAL_EVERY`] is let through as a trial; any
//! call that succeeds (a trial, a read, the readiness probe) marks it up.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::StorageError;

/// While storage is down, one upload this often goes through to try it.
pub const TRIAL_EVERY: Duration = Duration::from_secs(2);

/// Default deadline of one storage call, retries included: well below a
/// client's request timeout (the watcher's is 60 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum State {
    Up,
    Down {
        since: Instant,
        error: String,
        next_trial: Instant,
    },
}

/// Whether storage answered its last call.
#[derive(Debug)]
pub struct Health {
    state: Mutex<State>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::Up),
        }
    }
}

impl Health {
    /// May an upload go to storage now? Refused while storage is down, but
    /// for one trial every [`TRIAL_EVERY`].
    pub fn admit(&self) -> Result<(), StorageError> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Result<(), StorageError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *state {
            State::Up => Ok(()),
            State::Down { next_trial, .. } if now >= *next_trial => {
                *next_trial = now + TRIAL_EVERY;
                Ok(())
            }
            State::Down { since, error, .. } => Err(StorageError::Down(format!(
                "storage has not answered for {} s (last error: {error})",
                now.duration_since(*since).as_secs()
            ))),
        }
    }

    /// Is storage known to be down?
    pub fn is_down(&self) -> bool {
        matches!(
            *self.state.lock().unwrap_or_else(PoisonError::into_inner),
            State::Down { .. }
        )
    }

    /// Learn from the outcome of one call.
    pub fn record<T>(&self, outcome: &Result<T, StorageError>) {
        match outcome {
            Err(e) if e.is_outage() => self.went_down(e, Instant::now()),
            _ => self.answered(),
        }
    }

    fn went_down(&self, e: &StorageError, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *state {
            State::Down { error, .. } => *error = e.to_string(),
            State::Up => {
                tracing::error!(error = %e, "object storage does not answer; uploads get 503 storage_unavailable at once until it does (one trial every {} s)", TRIAL_EVERY.as_secs());
                *state = State::Down {
                    since: now,
                    error: e.to_string(),
                    next_trial: now + TRIAL_EVERY,
                };
            }
        }
    }

    fn answered(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let State::Down { since, .. } = &*state {
            tracing::warn!(
                down_secs = since.elapsed().as_secs(),
                "object storage answers again; uploads resume"
            );
            *state = State::Up;
        }
    }
}

/// How every storage call is run: under one deadline, its outcome recorded.
#[derive(Debug, Clone)]
pub struct Calls {
    pub health: Arc<Health>,
    pub deadline: Duration,
}

impl Calls {
    pub fn new(deadline: Duration) -> Self {
        Self {
            health: Arc::new(Health::default()),
            deadline,
        }
    }

    /// Run `call` (described as `what` in errors) within the deadline. A
    /// call that fails while storage is known to be down fails as
    /// [`StorageError::Down`] (no log line per request).
    pub async fn run<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let was_down = self.health.is_down();
        let outcome = match tokio::time::timeout(self.deadline, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StorageError::Unavailable(format!(
                "{what} did not finish within {} s ([storage] timeout_secs)",
                self.deadline.as_secs()
            ))),
        };
        self.health.record(&outcome);
        match outcome {
            Err(e) if was_down && e.is_outage() => Err(StorageError::Down(e.to_string())),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> StorageError {
        StorageError::Unavailable("connection refused".into())
    }

    #[test]
    fn down_refuses_but_for_one_trial_every_interval() {
        let health = Health::default();
        let t0 = Instant::now();
        assert!(health.admit_at(t0).is_ok());
        health.went_down(&down(), t0);
        assert!(health.is_down());
        let refused = health.admit_at(t0 + Duration::from_millis(500));
        assert!(
            matches!(&refused, Err(StorageError::Down(m)) if m.contains("connection refused")),
            "{refused:?}"
        );
        assert!(health.admit_at(t0 + TRIAL_EVERY).is_ok(), "the trial");
        assert!(health.admit_at(t0 + TRIAL_EVERY).is_err(), "one trial only");
        assert!(
            health.admit_at(t0 + TRIAL_EVERY * 2).is_ok(),
            "the next trial"
        );
        health.record(&Ok::<(), StorageError>(()));
        assert!(!health.is_down());
        assert!(health.admit_at(t0 + TRIAL_EVERY * 2).is_ok());
    }

    #[test]
    fn answers_that_are_not_outages_keep_it_up() {
        let health = Health::default();
        health.record(&Err::<(), _>(StorageError::NotFound { key: "k".into() }));
        assert!(!health.is_down());
        health.record(&Err::<(), _>(down()));
        assert!(health.is_down());
    }

    #[tokio::test]
    async fn a_call_past_its_deadline_is_an_outage() {
        let calls = Calls::new(Duration::from_secs(1));
        let hung = calls
            .run("PUT k", std::future::pending::<Result<(), StorageError>>())
            .await;
        assert!(
            matches!(&hung, Err(StorageError::Unavailable(m)) if m.contains("within 1 s")),
            "{hung:?}"
        );
        assert!(calls.health.is_down());
    }
}
