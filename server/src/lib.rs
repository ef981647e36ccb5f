//! `asset-catalog-server` as a library: everything except argument parsing and
//! process exit codes lives here so tests can drive the real server in-process
//! (`run` on a `127.0.0.1:0` listener) or through the binary.
//!
//! Dependencies point one way: [`http`] and [`ui`] → [`service`] → [`storage`] / [`index`].

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod fsck;
pub mod http;
pub mod index;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod server;
pub mod service;
pub mod storage;
pub mod tls;
pub mod token_admin;
pub mod ui;

pub use config::{Config, ConfigError};
pub use server::{ServeError, run, run_with_storage};
