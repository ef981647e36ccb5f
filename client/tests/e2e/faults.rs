//! Issue 7, the watcher's side: faults and bad input lose nothing and send
//! nothing twice. kill -9 at random points (`kill`), the server down for a
//! while (`outage`), an inotify queue overflow (`overflow`), a corrupt or
//! truncated state database (`state_db`) and files that are not what they
//! seem (`special`). Each asserts on the server's index, the bucket and the
//! bytes sent.
//!
//! CI sizes by default; `ASSET_CATALOG_SOAK=1` switches to soak sizes:
//! `ASSET_CATALOG_SOAK=1 cargo test -p asset-watcher --test e2e faults -- --nocapture`.
//! `ASSET_CATALOG_FAULT_SEED=N` replays the random kill points of a run.

mod kill;
mod outage;
mod overflow;
mod special;
mod state_db;
mod storage;

/// `ASSET_CATALOG_SOAK=1`: the long variants.
pub fn soak() -> bool {
    std::env::var("ASSET_CATALOG_SOAK").is_ok_and(|v| v == "1")
}

/// CI size, or soak size under `ASSET_CATALOG_SOAK=1`.
pub fn sized<T>(ci: T, soak_size: T) -> T {
    if soak() { soak_size } else { ci }
}

/// A seeded RNG; the seed comes from `ASSET_CATALOG_FAULT_SEED` or the clock
/// and is printed, so a failing run can be replayed.
pub fn seeded_rng(test: &str) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    let seed = std::env::var("ASSET_CATALOG_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("{test}: seed {seed} (replay with ASSET_CATALOG_FAULT_SEED={seed})");
    rand::rngs::StdRng::seed_from_u64(seed)
}
