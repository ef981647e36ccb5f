//! The generated catalog: N assets with 1–5 sightings each (3 on average,
//! exactly 3·N in total for an even N), every asset a pure function of `(seed, index)` so
//! both backends get the same rows without holding them in memory, and the
//! benchmark can recompute any asset's hash or `first_seen` from its index.
//!
//! Realistic shapes: camera and phone names (`IMG_20240512_123456.jpg`,
//! `PXL_…`, `Screenshot …`), documents named after a project topic
//! (`kestrel-audit-2023-q4.pdf`, 729 topics, so one topic matches a few
//! hundred assets), paths under `/home/USER/…`, 20 clients with Zipf-like
//! activity, content types in a typical mix, `first_seen` spread evenly over
//! the 3 years before the run.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const NANOS: i64 = 1_000_000_000;
const DAY: i64 = 86_400 * NANOS;
/// `first_seen` lies in the 3 years before the run.
const SPAN: i64 = 3 * 365 * DAY;

/// Clients and the user whose home they sync, busiest first: client `r`
/// (0-based) is picked with weight 1/(r+1).
pub const CLIENTS: [(&str, &str); 20] = [
    ("nas-01", "media"),
    ("alice-laptop", "alice"),
    ("bob-laptop", "bob"),
    ("alice-phone", "alice"),
    ("carol-laptop", "carol"),
    ("dave-workstation", "dave"),
    ("bob-phone", "bob"),
    ("erin-laptop", "erin"),
    ("nas-02", "media"),
    ("frank-laptop", "frank"),
    ("grace-laptop", "grace"),
    ("carol-phone", "carol"),
    ("heidi-desktop", "heidi"),
    ("ivan-laptop", "ivan"),
    ("grace-phone", "grace"),
    ("judy-laptop", "judy"),
    ("alice-desktop", "alice"),
    ("mallory-laptop", "mallory"),
    ("backup-host", "backup"),
    ("office-scanner", "scanner"),
];

const TOPIC_A: [&str; 27] = [
    "alpine", "amber", "atlas", "beacon", "cedar", "cobalt", "delta", "ember", "falcon", "garnet",
    "harbor", "indigo", "juniper", "kestrel", "lumen", "maple", "nimbus", "onyx", "orchid",
    "pioneer", "quartz", "raven", "sierra", "tundra", "umber", "vertex", "willow",
];
const TOPIC_B: [&str; 27] = [
    "budget",
    "roadmap",
    "launch",
    "audit",
    "forecast",
    "hiring",
    "offsite",
    "migration",
    "review",
    "proposal",
    "contract",
    "survey",
    "retro",
    "pricing",
    "summary",
    "planning",
    "training",
    "security",
    "backlog",
    "design",
    "metrics",
    "onboarding",
    "release",
    "research",
    "strategy",
    "support",
    "vendor",
];

/// A substring of one topic: in the names of ~0.03% of the assets.
pub const RARE_NAME: &str = "kestrel-audit";

/// One kind of file: weight in percent, content types (with weights),
/// where it lives under the home directory, size range, name pattern.
struct Kind {
    weight: u32,
    types: &'static [(&'static str, u32)],
    dir: &'static str,
    size: (f64, f64),
    name: fn(&mut SmallRng, &Stamp) -> String,
}

const KINDS: [Kind; 12] = [
    Kind {
        weight: 41,
        types: &[("image/jpeg", 1)],
        dir: "Pictures",
        size: (8e5, 9e6),
        name: photo,
    },
    Kind {
        weight: 14,
        types: &[("image/png", 1)],
        dir: "Pictures/Screenshots",
        size: (4e4, 3e6),
        name: screenshot,
    },
    Kind {
        weight: 4,
        types: &[("image/heic", 1)],
        dir: "Pictures",
        size: (1e6, 4e6),
        name: heic,
    },
    Kind {
        weight: 9,
        types: &[("video/mp4", 1)],
        dir: "Videos",
        size: (5e6, 9e8),
        name: video,
    },
    Kind {
        weight: 1,
        types: &[("video/quicktime", 1)],
        dir: "Videos",
        size: (5e6, 9e8),
        name: movie,
    },
    Kind {
        weight: 10,
        types: &[("application/pdf", 1)],
        dir: "Documents",
        size: (4e4, 6e6),
        name: pdf,
    },
    Kind {
        weight: 8,
        types: &[("text/plain; charset=utf-8", 85), ("text/plain", 15)],
        dir: "Documents/notes",
        size: (2e2, 6e4),
        name: notes,
    },
    Kind {
        weight: 4,
        types: &[(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            1,
        )],
        dir: "Documents",
        size: (1e4, 2e6),
        name: docx,
    },
    Kind {
        weight: 3,
        types: &[("audio/mpeg", 1)],
        dir: "Music",
        size: (2e6, 1.2e7),
        name: track,
    },
    Kind {
        weight: 3,
        types: &[("application/zip", 1)],
        dir: "Downloads",
        size: (1e5, 5e8),
        name: archive,
    },
    Kind {
        weight: 2,
        types: &[("application/octet-stream", 1)],
        dir: "Downloads",
        size: (1e3, 5e7),
        name: blob,
    },
    Kind {
        weight: 1,
        types: &[("application/json", 1)],
        dir: "Downloads",
        size: (1e2, 1e6),
        name: json,
    },
];

/// One generated asset with its sightings.
#[derive(Debug)]
pub struct AssetRow {
    pub sha256: String,
    pub key: String,
    pub size: i64,
    pub content_type: &'static str,
    pub name: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub sightings: Vec<SightingRow>,
}

impl AssetRow {
    /// The `names` column as the server's triggers keep it: the asset's
    /// name and each distinct sighting name, newline-separated.
    pub fn names(&self) -> String {
        let mut names: Vec<&str> = vec![&self.name];
        for s in &self.sightings {
            if !names.contains(&s.name.as_str()) {
                names.push(&s.name);
            }
        }
        names.join("\n")
    }
}

/// One place a client saw an asset.
#[derive(Debug)]
pub struct SightingRow {
    pub client: &'static str,
    pub path: String,
    pub name: String,
    /// RFC 3339, as a client reports it.
    pub mtime: String,
    pub seen_at: i64,
}

/// The catalog's parameters; see the module comment.
#[derive(Debug, Clone, Copy)]
pub struct Catalog {
    pub assets: u32,
    seed: u64,
    /// Unix nanoseconds of the run's start: the end of the 3 years.
    pub now: i64,
}

impl Catalog {
    pub fn new(assets: u32, seed: u64) -> Self {
        let now = i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0);
        Self { assets, seed, now }
    }

    /// Total sightings: 3 per asset on average, exactly 3·N for an even N
    /// (the counts of assets 2j and 2j+1 sum to 6).
    pub fn sightings(&self) -> u64 {
        (0..self.assets)
            .map(|i| u64::from(self.sighting_count(i)))
            .sum()
    }

    /// The asset's content hash: SHA-256 of the seed and the index.
    pub fn sha(&self, i: u32) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.seed.to_le_bytes());
        h.update(b"asset");
        h.update(i.to_le_bytes());
        h.finalize().into()
    }

    /// Every index in upload order (`first_seen`, then hash): the order in
    /// which a server's index grows, so rows lie in the files as they would.
    pub fn upload_order(&self) -> Vec<u32> {
        let mut keyed: Vec<(i64, [u8; 32], u32)> = (0..self.assets)
            .map(|i| (self.first_seen(i), self.sha(i), i))
            .collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|(_, _, i)| i).collect()
    }

    /// The asset's `first_seen` (the first draw of its generator).
    pub fn first_seen(&self, i: u32) -> i64 {
        self.rng(i).random_range(self.now - SPAN..self.now)
    }

    fn rng(&self, i: u32) -> SmallRng {
        SmallRng::seed_from_u64(self.seed ^ u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// 1–5 for an even index, 6 minus its partner's for an odd one.
    fn sighting_count(&self, i: u32) -> u32 {
        let even = i & !1;
        let mut rng = SmallRng::seed_from_u64(!self.seed ^ u64::from(even));
        let k = rng.random_range(1..=5);
        if i == even { k } else { 6 - k }
    }

    /// Asset `i` with its sightings.
    pub fn asset(&self, i: u32) -> AssetRow {
        let mut rng = self.rng(i);
        let first_seen = rng.random_range(self.now - SPAN..self.now);
        let kind = pick(&mut rng, &KINDS, |k| k.weight);
        let content_type = pick(&mut rng, kind.types, |t| t.1).0;
        let taken = first_seen - rng.random_range(0..30 * DAY);
        let stamp = Stamp::at(taken);
        let name = (kind.name)(&mut rng, &stamp);
        let (lo, hi) = kind.size;
        let size = rng.random_range(lo.ln()..hi.ln()).exp() as i64;
        let sha256 = hex::encode(self.sha(i));
        let key = match name.rsplit_once('.') {
            Some((_, ext)) => format!("{sha256}.{}", ext.to_ascii_lowercase()),
            None => sha256.clone(),
        };
        let sightings = self.sightings_of(&mut rng, i, first_seen, kind.dir, &name, &stamp);
        let last_seen = sightings
            .iter()
            .map(|s| s.seen_at)
            .max()
            .unwrap_or(first_seen);
        AssetRow {
            sha256,
            key,
            size,
            content_type,
            name,
            first_seen,
            last_seen,
            sightings,
        }
    }

    fn sightings_of(
        &self,
        rng: &mut SmallRng,
        i: u32,
        first_seen: i64,
        dir: &str,
        name: &str,
        stamp: &Stamp,
    ) -> Vec<SightingRow> {
        let mut picked: Vec<usize> = Vec::new();
        while picked.len() < self.sighting_count(i) as usize {
            let c = pick_index(rng, CLIENTS.len(), |r| 1000 / (r as u32 + 1));
            if !picked.contains(&c) {
                picked.push(c);
            }
        }
        picked
            .into_iter()
            .enumerate()
            .map(|(n, c)| {
                let (client, user) = CLIENTS[c];
                let seen_at = if n == 0 {
                    first_seen
                } else {
                    rng.random_range(first_seen..self.now)
                };
                let local = variant(rng, name);
                SightingRow {
                    client,
                    path: format!("/home/{user}/{dir}/{}/{local}", stamp.year),
                    name: local,
                    mtime: stamp.rfc3339.clone(),
                    seen_at,
                }
            })
            .collect()
    }
}

/// The same file under another name on some machines.
fn variant(rng: &mut SmallRng, name: &str) -> String {
    match rng.random_range(0..100) {
        0..85 => name.to_owned(),
        85..95 => match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem} (1).{ext}"),
            None => format!("{name} (1)"),
        },
        _ => format!("Copy of {name}"),
    }
}

fn pick<'a, T>(rng: &mut SmallRng, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
    &items[pick_index(rng, items.len(), |i| weight(&items[i]))]
}

fn pick_index(rng: &mut SmallRng, n: usize, weight: impl Fn(usize) -> u32) -> usize {
    let total: u32 = (0..n).map(&weight).sum();
    let mut at = rng.random_range(0..total);
    for i in 0..n {
        let w = weight(i);
        if at < w {
            return i;
        }
        at -= w;
    }
    n - 1
}

/// When a file was made, in the forms names use.
struct Stamp {
    year: i32,
    /// `20240512`
    ymd: String,
    /// `123456`
    hms: String,
    /// `2024-05-12`
    dashed: String,
    /// `12.34.56`
    dotted: String,
    rfc3339: String,
}

impl Stamp {
    fn at(nanos: i64) -> Self {
        let t = OffsetDateTime::from_unix_timestamp(nanos / NANOS)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let (y, m, d) = (t.year(), u8::from(t.month()), t.day());
        let (hh, mm, ss) = (t.hour(), t.minute(), t.second());
        Self {
            year: y,
            ymd: format!("{y:04}{m:02}{d:02}"),
            hms: format!("{hh:02}{mm:02}{ss:02}"),
            dashed: format!("{y:04}-{m:02}-{d:02}"),
            dotted: format!("{hh:02}.{mm:02}.{ss:02}"),
            rfc3339: format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
        }
    }
}

fn topic(rng: &mut SmallRng) -> String {
    let a = TOPIC_A[rng.random_range(0..TOPIC_A.len())];
    let b = TOPIC_B[rng.random_range(0..TOPIC_B.len())];
    format!("{a}-{b}")
}

fn photo(rng: &mut SmallRng, s: &Stamp) -> String {
    match rng.random_range(0..100) {
        0..70 => format!("IMG_{}_{}.jpg", s.ymd, s.hms),
        70..85 => format!(
            "PXL_{}_{}{:03}.jpg",
            s.ymd,
            s.hms,
            rng.random_range(0..1000)
        ),
        _ => format!("DSC{:05}.JPG", rng.random_range(0..100_000)),
    }
}

fn screenshot(rng: &mut SmallRng, s: &Stamp) -> String {
    if rng.random_bool(0.6) {
        format!("Screenshot {} at {}.png", s.dashed, s.dotted)
    } else {
        format!("Screenshot_{}-{}.png", s.ymd, s.hms)
    }
}

fn heic(rng: &mut SmallRng, _: &Stamp) -> String {
    format!("IMG_{:04}.HEIC", rng.random_range(0..10_000))
}

fn video(_: &mut SmallRng, s: &Stamp) -> String {
    format!("VID_{}_{}.mp4", s.ymd, s.hms)
}

fn movie(rng: &mut SmallRng, _: &Stamp) -> String {
    format!("IMG_{:04}.MOV", rng.random_range(0..10_000))
}

fn pdf(rng: &mut SmallRng, s: &Stamp) -> String {
    let t = topic(rng);
    match rng.random_range(0..3) {
        0 => format!("{t}-{}-q{}.pdf", s.year, rng.random_range(1..=4)),
        1 => format!("report-{t}-{}.pdf", s.year),
        _ => format!("{t}-{}.pdf", s.ymd),
    }
}

fn notes(rng: &mut SmallRng, _: &Stamp) -> String {
    format!("{}-notes-{}.txt", topic(rng), rng.random_range(1..50))
}

fn docx(rng: &mut SmallRng, _: &Stamp) -> String {
    let t = topic(rng);
    let mut title = t.clone();
    title[..1].make_ascii_uppercase();
    format!("{title} draft v{}.docx", rng.random_range(1..10))
}

fn track(rng: &mut SmallRng, _: &Stamp) -> String {
    format!(
        "{:02} - {}.mp3",
        rng.random_range(1..20),
        TOPIC_A[rng.random_range(0..TOPIC_A.len())]
    )
}

fn archive(rng: &mut SmallRng, s: &Stamp) -> String {
    if rng.random_bool(0.5) {
        format!("backup-{}.zip", s.dashed)
    } else {
        format!("{}-export.zip", topic(rng))
    }
}

fn blob(rng: &mut SmallRng, _: &Stamp) -> String {
    format!("data-{:08x}.bin", rng.random::<u32>())
}

fn json(rng: &mut SmallRng, _: &Stamp) -> String {
    format!("export-{}.json", rng.random_range(1..100_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_sightings_per_asset_and_stable_rows() {
        let c = Catalog::new(1000, 7);
        assert_eq!(c.sightings(), 3000);
        let a = c.asset(10);
        assert_eq!(a.sha256, c.asset(10).sha256);
        assert_eq!(a.first_seen, c.first_seen(10));
        assert!((1..=5).contains(&a.sightings.len()));
        assert!(a.sightings.iter().all(|s| s.path.starts_with("/home/")));
    }
}
