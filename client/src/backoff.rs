//! The retry backoff: exponential with jitter, how long a file whose upload
//! failed with a retryable error waits before its next try. Pure arithmetic;
//! the jitter is passed in.

use std::time::Duration;

/// Exponential backoff with "equal jitter": attempt n waits between half
/// and all of `base * 2^(n-1)`, capped at `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// Delay before retry number `attempts` (1 = first retry); `jitter` is a
    /// random number in `[0, 1]`.
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1 << exp).min(self.max);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(b.delay(4, 1.0), Duration::from_secs(8));
        assert_eq!(b.delay(30, 1.0), Duration::from_secs(300));
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(150));
        let mid = b.delay(3, 0.5);
        assert!(mid > Duration::from_secs(2) && mid < Duration::from_secs(4));
    }
}
