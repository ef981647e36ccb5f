//! Issue 12, point 7: the watcher never reads outside its tree. Round after
//! round, a directory is made inside the watched tree and at once replaced
//! by a symlink to a directory outside that holds "secret" files (unique
//! content each round, some under the same names as files the directory
//! held), racing the watcher between the directory's creation event and
//! its scan, and between a file's event and its hashing. No secret may
//! ever be hashed (the watcher's state) or uploaded (the server's index),
//! and the files that stay inside are all uploaded.
//!
//! 200 rounds at CI size; `ASSET_CATALOG_SOAK=1` runs 5,000.

use std::collections::HashSet;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::faults::{seeded_rng, sized};
use crate::support::{Home, Server, content, sha, wait_stored, write};

const T: Duration = Duration::from_secs(300);

/// Every hash the watcher has recorded for a file (what it hashed).
fn hashes_in_state(home: &Home) -> HashSet<String> {
    let db = home.state_dir().join("state.sqlite3");
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let conn = rusqlite::Connection::open_with_flags(db, flags).expect("state database");
    let mut st = conn
        .prepare("SELECT sha256 FROM files WHERE sha256 IS NOT NULL")
        .expect("query");
    st.query_map([], |r| r.get::<_, String>(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("hashes")
}

/// The secret directory of round `i`: a file at the top and one deeper,
/// both with content no other round has. Returns their hashes.
fn secret_dir(dir: &Path, i: usize) -> [String; 2] {
    let top = content(&format!("secret {i}"), 300 + i % 97);
    let deep = content(&format!("deep secret {i}"), 200 + i % 89);
    write(&dir.join("s.txt"), &top);
    write(&dir.join("sub/deep.txt"), &deep);
    [sha(&top), sha(&deep)]
}

/// Make `d` inside the tree in one of three shapes, then move it away
/// (out of the tree) or remove it, and put a symlink to `secret` in its place.
fn swap(d: &Path, secret: &Path, trash: &Path, shape: usize, pause: Duration) {
    match shape {
        0 => std::fs::create_dir(d).expect("mkdir"),
        1 => write(&d.join("s.txt"), b"inside, about to be swapped"),
        _ => std::fs::create_dir_all(d.join("sub/deeper")).expect("mkdir -p"),
    }
    std::thread::sleep(pause);
    if shape == 0 {
        std::fs::remove_dir(d).expect("rmdir");
    } else {
        let name = d.file_name().expect("name");
        std::fs::rename(d, trash.join(name)).expect("move out of the tree");
    }
    symlink(secret, d).expect("symlink in its place");
}

#[test]
fn outside_a_directory_swapped_for_a_symlink_is_never_read() {
    let rounds = sized(200, 5_000);
    let mut rng = seeded_rng("outside", None);
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let race = home.watched.join("race");
    let trash = home.outside.join("trash");
    std::fs::create_dir_all(&race).expect("race dir");
    std::fs::create_dir_all(&trash).expect("trash dir");
    let run = home.start();
    let t0 = Instant::now();
    let mut secrets = HashSet::new();
    let mut inside = Vec::new();
    for i in 0..rounds {
        let secret = home.outside.join(format!("secret{i}"));
        secrets.extend(secret_dir(&secret, i));
        // Mostly no pause at all, sometimes up to 3 ms: the swap lands before,
        // during and after the watcher's scan of the new directory.
        let pause = Duration::from_micros(if rng.random_bool(0.7) {
            0
        } else {
            rng.random_range(0..3_000)
        });
        swap(&race.join(format!("d{i}")), &secret, &trash, i % 3, pause);
        if i % 10 == 9 {
            let data = content(&format!("inside {i}"), 1_000 + i);
            inside.push(sha(&data));
            write(&race.join(format!("keep{i}.txt")), &data);
        }
    }
    let swapped = t0.elapsed();
    let last = content("the last file", 4_321);
    inside.push(sha(&last));
    write(&home.watched.join("last.txt"), &last);
    wait_stored(&server, &home, &inside, T);
    // Anything still settling would come up now.
    std::thread::sleep(Duration::from_secs(2));
    wait_stored(&server, &home, &inside, T);
    eprintln!(
        "outside: {rounds} rounds swapped in {swapped:.2?}, all settled after {:.2?}",
        t0.elapsed()
    );

    let uploaded = server.hashes().intersection(&secrets).count();
    assert_eq!(
        uploaded,
        0,
        "{uploaded} of {} secrets uploaded",
        secrets.len()
    );
    let hashed = hashes_in_state(&home).intersection(&secrets).count();
    assert_eq!(hashed, 0, "{hashed} secrets hashed; log:\n{}", run.log());
    assert_eq!(run.stop().code(), Some(0));
}
