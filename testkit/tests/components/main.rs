//! The components started for real and checked to work.

mod garage;
mod haproxy;
mod pg;
