//! The fleet of real servers on one PostgreSQL index (testkit), for this
//! crate's binary.

use std::path::Path;

pub use testkit::fleet::Fleet;

pub const BIN: &str = env!("CARGO_BIN_EXE_asset-catalog-server");

/// `n` servers of this crate's binary on one index and one file store.
pub fn start(n: usize) -> Fleet {
    Fleet::start(Path::new(BIN), n)
}
