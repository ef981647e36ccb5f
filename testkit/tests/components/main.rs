//! The components started for real and checked to work.

mod browser;
mod garage;
mod haproxy;
mod pg;
