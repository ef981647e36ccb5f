//! `asset-watcher`: watches directories with inotify and uploads every new or
//! changed file to an asset-catalog server, exactly once per content.
//!
//! The pieces, with dependencies pointing one way:
//! `cli` → `daemon` (run / scan) → `watch` (inotify), `scan` (the indexer
//! thread), `pipeline` (hash → check → upload) → `upload` (awc) and
//! `resumable` (tus sessions for large files, on the same client), `state`
//! (SQLite), `queue` (debounce, backoff), `hasher`; with `config`, `paths`,
//! `ignore`, `error`, `notify` and `logging` beside them, `beneath` (opens that
//! never leave a watched root) under `scan` and `hasher`, and `shown` (names
//! escaped for logs and `status`).

pub mod beneath;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod docs;
pub mod error;
pub mod hasher;
pub mod ignore;
pub mod logging;
pub mod notify;
pub mod paths;
pub mod pipeline;
pub mod queue;
pub mod resumable;
pub mod scan;
pub mod shown;
pub mod special;
pub mod state;
pub mod status;
pub mod upload;
pub mod watch;

/// Name used for XDG directories, the binary and the systemd unit.
pub const APP_NAME: &str = "asset-watcher";
