//! `[uploads]`: resumable uploads over tus (`/v1/uploads`, see
//! `service::resumable`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[uploads]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// A session not finished this many seconds after it began is aborted
    /// (its stored parts deleted) and forgotten (default: a day).
    pub expire_secs: u64,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            expire_secs: 86_400,
        }
    }
}

impl UploadsConfig {
    pub fn expire_after(&self) -> Duration {
        Duration::from_secs(self.expire_secs)
    }
}

/// 90 days.
const MAX_EXPIRE_SECS: u64 = 90 * 86_400;

pub(super) fn validate(uploads: &UploadsConfig, out: &mut Vec<String>) {
    if uploads.expire_secs == 0 || uploads.expire_secs > MAX_EXPIRE_SECS {
        out.push(format!(
            "uploads.expire_secs: {} is out of range; use 1 to {MAX_EXPIRE_SECS} (90 days)",
            uploads.expire_secs
        ));
    }
}
