//! `[ui]`: the web UI the server serves at `/` (see `crate::ui`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest session lifetime accepted: 30 days.
const MAX_SESSION_HOURS: u64 = 30 * 24;
/// Smallest `resumable_above_bytes` accepted: below it tus costs more
/// requests than it saves, and a value this small is likely meant in MiB.
const MIN_RESUMABLE_ABOVE: u64 = 1 << 20;

/// `[ui]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Serve the web UI at `/` (off: `/` and `/ui/` answer 404; the API is unchanged).
    pub enabled: bool,
    /// A browser session ends this many hours after sign-in.
    pub session_hours: u64,
    /// A sign-in link printed by `asset-catalog-server ui-link` works this many
    /// minutes, once.
    pub link_minutes: u64,
    /// A file dropped on the browse page larger than this many bytes is
    /// uploaded resumably (tus, `/ui/uploads`), smaller ones in one form post.
    pub resumable_above_bytes: u64,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_hours: 12,
            link_minutes: 15,
            resumable_above_bytes: 64 << 20,
        }
    }
}

impl UiConfig {
    pub fn session_lifetime(&self) -> Duration {
        Duration::from_secs(self.session_hours.saturating_mul(3600))
    }

    pub fn link_lifetime(&self) -> Duration {
        Duration::from_secs(self.link_minutes.saturating_mul(60))
    }
}

pub(super) fn validate(ui: &UiConfig, out: &mut Vec<String>) {
    if ui.session_hours == 0 || ui.session_hours > MAX_SESSION_HOURS {
        out.push(format!(
            "ui.session_hours: {} is out of range; use 1 to {MAX_SESSION_HOURS}",
            ui.session_hours
        ));
    }
    if ui.link_minutes == 0 || ui.link_minutes > 24 * 60 {
        out.push(format!(
            "ui.link_minutes: {} is out of range; use 1 to 1440",
            ui.link_minutes
        ));
    }
    if ui.resumable_above_bytes < MIN_RESUMABLE_ABOVE {
        out.push(format!(
            "ui.resumable_above_bytes: {} is below {MIN_RESUMABLE_ABOVE} (1 MiB); it is a size in bytes (64 MiB is {})",
            ui.resumable_above_bytes,
            64u64 << 20
        ));
    }
}
