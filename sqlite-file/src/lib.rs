//! Damage SQLite itself would not report when a database is opened, found by
//! reading headers only (so the check costs the same for ten rows as for ten
//! million): a database file that exists but is empty (SQLite would silently
//! start a new, empty one), one cut short of the page count its header
//! records, one that is not an SQLite database at all, and a write-ahead log
//! whose header is not a WAL header (SQLite would silently drop it, and with
//! it every transaction not yet checkpointed). A WAL with a valid header and
//! a torn tail is normal after a crash and is left to SQLite's recovery.
//!
//! It opens and closes the files, and closing any descriptor of a file drops
//! every POSIX lock the process holds on it, SQLite's included (another
//! process could then checkpoint and delete a live WAL). So a process calls
//! it before it opens its first connection to the database, never beside one.
//!
//! The server checks its index with it before opening it; the watcher checks
//! its state at every start (a full `PRAGMA integrity_check` reads every page
//! and is left to `asset-watcher check-state`).

use std::io::Read;
use std::path::{Path, PathBuf};

/// WAL magic numbers: little- and big-endian checksums.
const WAL_MAGIC: [u32; 2] = [0x377f_0682, 0x377f_0683];
/// The only WAL format version SQLite has written so far.
const WAL_VERSION: u32 = 3_007_000;
const WAL_HEADER_LEN: usize = 32;

/// How often a problem is looked at again before it is reported, and how
/// long apart: another process writing the database (a daemon checkpointing
/// while `status` or an admin command starts) can be caught half-way through
/// rewriting a header. Damage stays; a torn read does not.
const LOOKS: usize = 3;
const APART: std::time::Duration = std::time::Duration::from_millis(25);

/// The first damaged file found next to (or at) the database `path`, with
/// why; a problem is reported only if it is still there when looked at again.
pub fn find(path: &Path) -> Option<(PathBuf, String)> {
    let mut found = find_once(path)?;
    for _ in 1..LOOKS {
        std::thread::sleep(APART);
        found = find_once(path)?;
    }
    Some(found)
}

fn find_once(path: &Path) -> Option<(PathBuf, String)> {
    // SQLite never makes links; one here was planted (the server's index
    // directory belongs to the service's user, and root may run commands).
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some((
                file,
                "it is a symbolic link, not a file of the index; remove the link".into(),
            ));
        }
    }
    let main_len = std::fs::metadata(path).ok()?.len();
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    if let Some(problem) = wal_problem(&wal) {
        return Some((wal, problem));
    }
    // SQLite writes the first page before anything goes to the WAL, so an
    // empty main file is never a state SQLite leaves behind.
    if main_len == 0 {
        return Some((
            path.to_path_buf(),
            "the file is empty (0 bytes): SQLite would take it for a new, empty database".into(),
        ));
    }
    main_problem(path, main_len).map(|p| (path.to_path_buf(), p))
}

/// Why the main file is not a whole SQLite database, if it is not. (With a
/// WAL next to it SQLite may read page 1 from the WAL and never notice.)
fn main_problem(path: &Path, len: u64) -> Option<String> {
    let mut header = [0u8; 100];
    let mut file = std::fs::File::open(path).ok()?;
    if file.read_exact(&mut header).is_err() {
        return Some(format!(
            "it is {len} bytes long, shorter than a database header"
        ));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Some("it does not start with an SQLite database header".into());
    }
    let word =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    // The page count in the header is valid when "version-valid-for" matches
    // the change counter; SQLite extends the file before it writes page 1.
    let pages = u64::from(word(28));
    if word(92) == word(24) && pages > 0 && len < pages * page_size {
        return Some(format!(
            "it is truncated: {len} bytes, but its header says {pages} pages of {page_size} bytes"
        ));
    }
    None
}

/// Why the WAL at `wal` is not a WAL, if it is not (missing or empty is fine).
fn wal_problem(wal: &Path) -> Option<String> {
    let mut file = std::fs::File::open(wal).ok()?;
    let mut header = [0u8; WAL_HEADER_LEN];
    let mut got = 0;
    while got < WAL_HEADER_LEN {
        match file.read(&mut header[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Some(format!("cannot read it: {e}")),
        }
    }
    if got == 0 {
        return None;
    }
    if got < WAL_HEADER_LEN {
        return Some(format!(
            "it is {got} bytes long, shorter than a write-ahead log header"
        ));
    }
    let word =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let magic = word(0);
    if !WAL_MAGIC.contains(&magic) {
        return Some(format!(
            "it does not start with a write-ahead log header (magic {magic:#010x})"
        ));
    }
    if word(4) != WAL_VERSION {
        return Some(format!("unknown write-ahead log version {}", word(4)));
    }
    let big_endian = magic & 1 == 1;
    let (s0, s1) = checksum(&header[..24], big_endian);
    if (s0, s1) != (word(24), word(28)) {
        return Some("its header checksum does not match".into());
    }
    None
}

/// SQLite's WAL checksum over `data` (a multiple of 8 bytes).
fn checksum(data: &[u8], big_endian: bool) -> (u32, u32) {
    let (mut s0, mut s1) = (0u32, 0u32);
    for pair in data.chunks_exact(8) {
        let read = |b: &[u8]| {
            let bytes = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            }
        };
        s0 = s0.wrapping_add(read(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(read(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_wal_passes_and_garbage_or_empty_files_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.sqlite3");
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .expect("write");
        let wal = dir.path().join("index.sqlite3-wal");
        assert!(std::fs::metadata(&wal).expect("wal exists").len() > 0);
        assert_eq!(find(&path), None, "a live WAL is fine");
        let mut bytes = std::fs::read(&wal).expect("read wal");
        bytes[10] ^= 0xff;
        std::fs::write(&wal, &bytes).expect("damage wal");
        let (file, why) = find(&path).expect("damaged WAL found");
        assert_eq!(file, wal);
        assert!(why.contains("checksum"), "{why}");
        std::fs::write(&wal, vec![0x42u8; 4096]).expect("garbage wal");
        assert!(find(&path).is_some_and(|(_, why)| why.contains("magic")));
        drop(conn);
        std::fs::write(&wal, b"").expect("empty wal");
        std::fs::write(&path, b"").expect("empty index");
        assert!(find(&path).is_some_and(|(f, why)| f == path && why.contains("empty")));
    }
}
