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

/// A seeded RNG; the seed is `fixed` (a regression case's), or comes from
/// `ASSET_CATALOG_FAULT_SEED` or the clock, and is printed, so a failing run
/// can be replayed.
pub fn seeded_rng(test: &str, fixed: Option<u64>) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    let seed = fixed
        .or_else(|| {
            std::env::var("ASSET_CATALOG_FAULT_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
        })
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("{test}: seed {seed} (replay with ASSET_CATALOG_FAULT_SEED={seed})");
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// Files arriving during an outage: `waves` waves of `per_wave` files, the
/// waves spread over `outage`. Returns their hashes and total size.
pub fn arrive_in_waves(
    home: &crate::support::Home,
    label: &str,
    (waves, per_wave): (u32, usize),
    outage: std::time::Duration,
) -> (Vec<String>, usize) {
    use crate::support::{content, sha, write};
    let mut want = Vec::new();
    let mut total = 0;
    for wave in 0..waves {
        for i in 0..per_wave {
            let data = content(&format!("{label}-{wave}-{i}"), 2_000 + 37 * i);
            total += data.len();
            want.push(sha(&data));
            write(&home.watched.join(format!("wave{wave}/{i}.dat")), &data);
        }
        std::thread::sleep(outage / (waves + 1));
    }
    (want, total)
}

/// The watcher's log lines during an outage of `outage`: a line when the
/// trouble starts and a summary or two a minute, never one per file.
pub fn assert_outage_log_is_short(during: &[&str], outage: std::time::Duration) {
    let bound = 4 + 3 * (outage.as_secs() as usize).div_ceil(60);
    assert!(
        during.len() <= bound,
        "{} log lines in a {outage:?} outage (at most {bound}):\n{}",
        during.len(),
        during.join("\n")
    );
    assert!(
        !during.iter().any(|l| l.contains("wave")),
        "no line names a waiting file:\n{}",
        during.join("\n")
    );
}
