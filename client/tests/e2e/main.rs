//! End-to-end tests: the real `asset-watcher` binary against the real
//! `asset-catalog-server` binary, with real SQLite, real inotify and a temp
//! HOME/XDG tree. Every case checks the server's index and the bytes that
//! were actually sent (the server's stored-bytes counter, its count of
//! redundant uploads, and the watcher's own sent-bytes counter). Issue 12's
//! points have their own modules: `outside` (no read outside the tree),
//! `names` (names shown escaped), `redirect` (redirects not followed);
//! issue 16's, `resumable` (large files resumed after kills of either side).

mod support;

mod basics;
mod cluster;
mod faults;
mod moves;
mod names;
mod outside;
mod quota;
mod redirect;
mod resilience;
mod resumable;
mod scan;
mod tls;
mod writes;
