//! Reading an upload body under the slow-sender limits, the same for `PUT`
//! and the multipart form upload: no chunk for `[server]
//! body_stall_timeout_secs`, fewer than `min_upload_bytes_per_sec` over a
//! [`RATE_WINDOW`] of waiting for the client, or the whole request past
//! `upload_deadline_secs` each end the body with a [`BodyError`] (408).
//!
//! The rate counts only time spent waiting for the client's bytes: while
//! the server itself is busy (storing a part, waiting for a lock) the
//! sender is not judged, so a fast client behind slow storage is never cut.

use std::time::Duration;

use tokio::time::Instant;

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::service::BodyError;

/// Waiting time over which a sender's rate is judged.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// The slow-sender limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Longest gap between two chunks.
    pub stall: Duration,
    /// Least bytes per second of waiting, judged per [`RATE_WINDOW`]; 0 = off.
    pub min_rate: u64,
    /// Longest a whole upload may take, from when its handler takes the body.
    pub deadline: Duration,
}

struct Reader<S> {
    payload: S,
    pace: Pace,
    started: Instant,
    waited: Duration,
    bytes: u64,
}

impl<S> Reader<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    async fn next(&mut self) -> Option<Result<Bytes, BodyError>> {
        let left = self.pace.deadline.saturating_sub(self.started.elapsed());
        let wait = self.pace.stall.min(left);
        let asked = Instant::now();
        let outcome = tokio::time::timeout(wait, self.payload.next()).await;
        self.waited += asked.elapsed();
        match outcome {
            Err(_) if wait < self.pace.stall => {
                Some(Err(BodyError::Deadline(self.pace.deadline.as_secs())))
            }
            Err(_) => Some(Err(BodyError::Stalled(self.pace.stall.as_secs()))),
            Ok(None) => None,
            Ok(Some(Err(e))) => Some(Err(super::request::body_error(e))),
            Ok(Some(Ok(chunk))) => Some(self.judge(chunk)),
        }
    }

    fn judge(&mut self, chunk: Bytes) -> Result<Bytes, BodyError> {
        self.bytes += chunk.len() as u64;
        if self.waited >= RATE_WINDOW {
            let least = self.pace.min_rate as f64 * self.waited.as_secs_f64();
            if (self.bytes as f64) < least {
                return Err(BodyError::TooSlow {
                    min_rate: self.pace.min_rate,
                    window: RATE_WINDOW.as_secs(),
                });
            }
            self.waited = Duration::ZERO;
            self.bytes = 0;
        }
        Ok(chunk)
    }
}

/// `payload` as a body stream under `pace`; it ends after its first error.
pub fn paced<S>(payload: S, pace: Pace) -> impl Stream<Item = Result<Bytes, BodyError>> + Unpin
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin + 'static,
{
    let reader = Reader {
        payload,
        pace,
        started: Instant::now(),
        waited: Duration::ZERO,
        bytes: 0,
    };
    // Fused: a parser may poll again after the end (multipart does).
    Box::pin(
        futures_util::stream::unfold(Some(reader), |reader| async move {
            let mut reader = reader?;
            match reader.next().await? {
                Ok(chunk) => Some((Ok(chunk), Some(reader))),
                Err(e) => Some((Err(e), None)),
            }
        })
        .fuse(),
    )
}

/// [`paced`] for a parser that takes raw payload errors (multipart): the
/// [`BodyError`] travels inside the I/O error and [`body_error_of`] gets it back.
pub fn paced_payload<S>(
    payload: S,
    pace: Pace,
) -> impl Stream<Item = Result<Bytes, PayloadError>> + Unpin + 'static
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin + 'static,
{
    paced(payload, pace).map(|item| item.map_err(|e| PayloadError::Io(std::io::Error::other(e))))
}

/// The [`BodyError`] a payload error stands for.
pub fn body_error_of(e: PayloadError) -> BodyError {
    if let PayloadError::Io(io) = &e
        && let Some(inner) = io.get_ref().and_then(|i| i.downcast_ref::<BodyError>())
    {
        return inner.clone();
    }
    super::request::body_error(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(min_rate: u64, deadline_secs: u64) -> Pace {
        Pace {
            stall: Duration::from_secs(30),
            min_rate,
            deadline: Duration::from_secs(deadline_secs),
        }
    }

    /// A sender of `n` one-byte chunks, one every `every`.
    fn trickle(
        n: usize,
        every: Duration,
    ) -> impl Stream<Item = Result<Bytes, PayloadError>> + Unpin + 'static {
        Box::pin(futures_util::stream::iter(0..n).then(move |_| async move {
            tokio::time::sleep(every).await;
            Ok(Bytes::from_static(b"x"))
        }))
    }

    async fn outcome(
        mut body: impl Stream<Item = Result<Bytes, BodyError>> + Unpin,
    ) -> Result<u64, BodyError> {
        let mut n = 0;
        while let Some(chunk) = body.next().await {
            n += chunk?.len() as u64;
        }
        Ok(n)
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_below_the_rate_is_cut_after_one_window() {
        let started = tokio::time::Instant::now();
        let err = outcome(paced(
            trickle(1000, Duration::from_secs(1)),
            pace(1024, 3600),
        ))
        .await
        .expect_err("too slow");
        assert!(
            matches!(err, BodyError::TooSlow { min_rate: 1024, .. }),
            "{err:?}"
        );
        assert!(started.elapsed() <= RATE_WINDOW + Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_sender_passes_and_the_deadline_cuts_a_long_one() {
        let fast = futures_util::stream::iter((0..100).map(|_| Ok(Bytes::from(vec![0; 4096]))));
        assert_eq!(outcome(paced(fast, pace(1024, 3600))).await, Ok(409_600));
        let err = outcome(paced(trickle(1000, Duration::from_secs(1)), pace(0, 5)))
            .await
            .expect_err("deadline");
        assert_eq!(err, BodyError::Deadline(5));
    }

    #[tokio::test(start_paused = true)]
    async fn multipart_errors_carry_the_body_error() {
        let mut raw = paced_payload(trickle(1000, Duration::from_secs(1)), pace(0, 3));
        let mut last = None;
        while let Some(item) = raw.next().await {
            if let Err(e) = item {
                last = Some(body_error_of(e));
            }
        }
        assert_eq!(last, Some(BodyError::Deadline(3)));
    }
}
