//! `asset-watcher`: watches directories with inotify and uploads every new or
//! changed file to an asset-catalog server, exactly once per content.
//!
//! The pieces, with dependencies pointing one way:
//! `cli` → `daemon` (`run` / `scan`) → `watch` (inotify), `indexer` (the
//! thread that walks trees and records them), `pipeline` (hash → check →
//! upload) → `api` (the server's API over awc; `api::resumable`: tus
//! sessions for large files on the same client), `state` (SQLite),
//! `debounce` (settling inotify events), `backoff` (retry delays), `hasher`;
//! with `config`, `paths`, `ignore`, `error`, `systemd` (sd-notify) and
//! `logging` beside them, `beneath` (opens that never leave a watched root)
//! under `indexer` and `hasher`, and `shown` (names escaped for logs and
//! `status`).

pub mod api;
pub mod backoff;
pub mod beneath;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod debounce;
pub mod docs;
pub mod error;
pub mod hasher;
pub mod ignore;
pub mod indexer;
pub mod logging;
pub mod paths;
pub mod pipeline;
pub mod shown;
pub mod special;
pub mod state;
pub mod status;
pub mod systemd;
pub mod watch;

/// Name used for XDG directories, the binary and the systemd unit.
pub const APP_NAME: &str = "asset-watcher";
