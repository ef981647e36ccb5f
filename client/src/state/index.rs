//! What the indexer records of a file that is there: a path observed with a
//! given stat, and the live rows of a directory a rescan compares with.
//! Here live the rules "unchanged → nothing", "same inode/size/mtime at a
//! vanished path → rename, no hashing", "hard link → reuse the hash".
//! Paths that are gone are `vanish.rs`'s.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};

use super::{FileStat, State, StateError, Status, path_bytes, path_from_bytes};

/// What `observe` concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Known with this exact stat: nothing to do.
    Unchanged,
    /// A path not seen before: queued for hashing.
    New,
    /// A known path whose stat changed: queued for hashing.
    Changed,
    /// The content moved here from `from`: path updated, hash kept, queued
    /// only to tell the server about the new path.
    Renamed { from: PathBuf },
    /// Another hard link of a known file: hash reused, queued to announce.
    Linked,
    /// A vanished path came back with the same content: hash reused.
    Restored,
}

struct Row {
    id: i64,
    stat: FileStat,
    status: Status,
    sha256: Option<String>,
}

fn row_stat(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<FileStat> {
    Ok(FileStat {
        dev: r.get::<_, i64>(first)? as u64,
        ino: r.get::<_, i64>(first + 1)? as u64,
        size: r.get::<_, i64>(first + 2)? as u64,
        mtime_ns: r.get(first + 3)?,
        ctime_ns: r.get(first + 4)?,
    })
}

/// `[dir/, dir0)`: every path strictly inside `dir` (`'0'` follows `'/'`).
pub(super) fn subtree_range(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut lo = path_bytes(dir).to_vec();
    let mut hi = lo.clone();
    lo.push(b'/');
    hi.push(b'0');
    (lo, hi)
}

/// Is `path` still the regular file with this inode?
fn still_there(path: &Path, stat: &FileStat) -> bool {
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_file() && m.dev() == stat.dev && m.ino() == stat.ino)
}

impl State {
    /// Run `f` in one write transaction (rolled back if it fails).
    pub fn in_transaction<T>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn row_by_path(&self, path: &Path) -> Result<Option<Row>, StateError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, dev, ino, size, mtime_ns, ctime_ns, status, sha256 FROM files WHERE path = ?1",
        )?;
        Ok(st
            .query_row([path_bytes(path)], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    stat: row_stat(r, 1)?,
                    status: Status::parse(&r.get::<_, String>(6)?),
                    sha256: r.get(7)?,
                })
            })
            .optional()?)
    }

    /// Rows elsewhere with the same content identity and a known hash.
    fn content_twins(
        &self,
        path: &Path,
        stat: &FileStat,
    ) -> Result<Vec<(i64, PathBuf, Status, String)>, StateError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, path, status, sha256 FROM files
             WHERE ino = ?1 AND dev = ?2 AND size = ?3 AND mtime_ns = ?4
               AND sha256 IS NOT NULL AND path != ?5
             LIMIT 16",
        )?;
        let rows = st.query_map(
            params![
                stat.ino as i64,
                stat.dev as i64,
                stat.size as i64,
                stat.mtime_ns,
                path_bytes(path)
            ],
            |r| {
                Ok((
                    r.get(0)?,
                    path_from_bytes(r.get(1)?),
                    Status::parse(&r.get::<_, String>(2)?),
                    r.get(3)?,
                ))
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Record that the regular file `path` has `stat` now.
    pub fn observe(
        &self,
        path: &Path,
        stat: &FileStat,
        now: i64,
    ) -> Result<(i64, Observed), StateError> {
        let row = self.row_by_path(path)?;
        if let Some(r) = &row {
            if r.status != Status::Gone && r.stat == *stat {
                return Ok((r.id, Observed::Unchanged));
            }
            if let (Status::Gone, Some(sha)) = (r.status, &r.sha256) {
                if r.stat.same_content(stat) {
                    let id = self.upsert(path, stat, Some(sha), Status::Hashed, now)?;
                    self.enqueue(id, now)?;
                    return Ok((id, Observed::Restored));
                }
            }
        }
        let twins = self.content_twins(path, stat)?;
        let moved = twins
            .iter()
            .find(|(_, from, status, _)| *status == Status::Gone || !still_there(from, stat));
        if let Some((id, from, _, _)) = moved {
            if let Some(r) = &row {
                self.conn
                    .execute("DELETE FROM files WHERE id = ?1", [r.id])?;
            }
            self.conn.execute(
                "UPDATE files SET path = ?1, ctime_ns = ?2, status = 'hashed',
                        version = version + 1, updated_ms = ?3 WHERE id = ?4",
                params![path_bytes(path), stat.ctime_ns, now, id],
            )?;
            self.enqueue(*id, now)?;
            return Ok((*id, Observed::Renamed { from: from.clone() }));
        }
        if let Some((_, _, _, sha)) = twins.first() {
            let id = self.upsert(path, stat, Some(sha), Status::Hashed, now)?;
            self.enqueue(id, now)?;
            return Ok((id, Observed::Linked));
        }
        let id = self.upsert(path, stat, None, Status::Pending, now)?;
        self.enqueue(id, now)?;
        let kind = if row.is_some_and(|r| r.status != Status::Gone) {
            Observed::Changed
        } else {
            Observed::New
        };
        Ok((id, kind))
    }

    fn upsert(
        &self,
        path: &Path,
        s: &FileStat,
        sha: Option<&str>,
        status: Status,
        now: i64,
    ) -> Result<i64, StateError> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO files (path, dev, ino, size, mtime_ns, ctime_ns, sha256, status, version, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9)
             ON CONFLICT (path) DO UPDATE SET
                dev = excluded.dev, ino = excluded.ino, size = excluded.size,
                mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns,
                sha256 = excluded.sha256, status = excluded.status,
                version = files.version + 1, updated_ms = excluded.updated_ms
             RETURNING id",
        )?;
        Ok(st.query_row(
            params![
                path_bytes(path),
                s.dev as i64,
                s.ino as i64,
                s.size as i64,
                s.mtime_ns,
                s.ctime_ns,
                sha,
                status.as_str(),
                now
            ],
            |r| r.get(0),
        )?)
    }

    /// Put a file in the upload queue, due now, with a clean slate.
    fn enqueue(&self, id: i64, now: i64) -> Result<(), StateError> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO queue (file_id, attempts, last_error, next_try_ms, enqueued_ms)
             VALUES (?1, 0, NULL, ?2, ?2)
             ON CONFLICT (file_id) DO UPDATE SET attempts = 0, last_error = NULL, next_try_ms = ?2",
        )?;
        st.execute(params![id, now])?;
        Ok(())
    }

    /// The live rows directly inside `dir` (not deeper), by file name, with
    /// their id and stat, and the names of its subdirectories the state
    /// holds rows under: a rescan compares each directory entry with these
    /// instead of looking every file up on its own, and what it does not
    /// meet is gone. Rows further down are skipped one subtree per seek, so
    /// each row is read once per scan.
    pub fn known_children(&self, dir: &Path) -> Result<Known, StateError> {
        const PAGE: usize = 512;
        let (lo, hi) = subtree_range(dir);
        let prefix = lo.len();
        let mut st = self.conn.prepare_cached(
            "SELECT path, id, dev, ino, size, mtime_ns, ctime_ns, status FROM files
             WHERE path >= ?1 AND path < ?2 ORDER BY path LIMIT 512",
        )?;
        let mut out = Known::default();
        // The key the next page starts from (rows are borrowed, not copied).
        let mut from = lo;
        loop {
            let mut rows = st.query(params![from, hi])?;
            let mut read = 0;
            let mut skipped = false;
            while let Some(r) = rows.next()? {
                read += 1;
                let path = r.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
                let name = path.get(prefix..).unwrap_or_default();
                from.clear();
                if let Some(slash) = name.iter().position(|b| *b == b'/') {
                    // Inside a subdirectory: go on after its whole subtree.
                    out.dirs.push(OsString::from_vec(name[..slash].to_vec()));
                    from.extend_from_slice(&path[..prefix + slash]);
                    from.push(b'0');
                    skipped = true;
                    break;
                }
                let status = r.get_ref(7)?.as_str().map_err(rusqlite::Error::from)?;
                if Status::parse(status) != Status::Gone {
                    let name = OsString::from_vec(name.to_vec());
                    out.files.insert(name, (r.get(1)?, row_stat(r, 2)?));
                }
                from.extend_from_slice(path);
                from.push(0); // the least key after this one
                if read == PAGE {
                    break;
                }
            }
            if !(skipped || read == PAGE) {
                return Ok(out);
            }
        }
    }
}

/// What the state holds directly inside one directory.
#[derive(Debug, Default)]
pub struct Known {
    /// Live files by name, with their row id and stat.
    pub files: HashMap<OsString, (i64, FileStat)>,
    /// Subdirectories with rows under them (live or gone), by name.
    pub dirs: Vec<OsString>,
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{open_temp, stat};
    use super::*;

    #[test]
    fn unchanged_files_are_recognised() {
        let (_d, st) = open_temp();
        let p = Path::new("/w/a.jpg");
        let (id, o) = st.observe(p, &stat(1, 10, 100), 1).expect("observe");
        assert_eq!(o, Observed::New);
        assert_eq!(
            st.observe(p, &stat(1, 10, 100), 2).expect("again"),
            (id, Observed::Unchanged)
        );
        assert_eq!(
            st.observe(p, &stat(1, 11, 200), 3).expect("changed").1,
            Observed::Changed
        );
    }

    #[test]
    fn known_children_are_the_live_rows_directly_inside_a_directory() {
        let (_d, st) = open_temp();
        let mut ino = 0;
        let mut add = |p: &str| {
            ino += 1;
            st.observe(Path::new(p), &stat(ino, 1, 1), 1)
                .expect("observe")
                .0
        };
        // More direct children than one page, with subtrees in between.
        let mut want = HashMap::new();
        for i in 0..1300 {
            let name = format!("f{i:04}");
            want.insert(OsString::from(&name), add(&format!("/w/d/{name}")));
            if i % 100 == 0 {
                add(&format!("/w/d/f{i:04}x/deep/er"));
                add(&format!("/w/d/f{i:04}x/deep2"));
            }
        }
        add("/w/d.txt");
        add("/w/dx/outside");
        add("/w/d/gone");
        st.vanish(Path::new("/w/d/gone"), 2).expect("vanish");
        let known = st.known_children(Path::new("/w/d")).expect("children");
        let ids: HashMap<OsString, i64> =
            known.files.iter().map(|(k, v)| (k.clone(), v.0)).collect();
        assert_eq!(ids, want);
        let dirs: Vec<OsString> = (0..1300)
            .step_by(100)
            .map(|i| OsString::from(format!("f{i:04}x")))
            .collect();
        assert_eq!(known.dirs, dirs);
        let inside = st
            .known_children(Path::new("/w/d/f0100x"))
            .expect("children");
        assert_eq!(
            inside.files.keys().collect::<Vec<_>>(),
            [&OsString::from("deep2")]
        );
        assert_eq!(inside.dirs, [OsString::from("deep")]);
    }

    #[test]
    fn a_vanished_path_with_the_same_inode_is_a_rename() {
        let (_d, st) = open_temp();
        let (id, _) = st
            .observe(Path::new("/w/old.jpg"), &stat(7, 10, 100), 1)
            .expect("observe");
        st.conn
            .execute(
                "UPDATE files SET sha256 = 'ab', status = 'synced' WHERE id = ?1",
                [id],
            )
            .expect("fake hash");
        assert!(st.vanish(Path::new("/w/old.jpg"), 2).expect("vanish"));
        let mut moved = stat(7, 10, 100);
        moved.ctime_ns += 5;
        let (id2, o) = st
            .observe(Path::new("/w/sub/new.jpg"), &moved, 3)
            .expect("observe");
        assert_eq!(id2, id);
        assert_eq!(
            o,
            Observed::Renamed {
                from: PathBuf::from("/w/old.jpg")
            }
        );
        // The moved row keeps its hash and only needs announcing.
        let (status, sha): (String, String) = st
            .conn
            .query_row(
                "SELECT status, sha256 FROM files WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("row");
        assert_eq!((status.as_str(), sha.as_str()), ("hashed", "ab"));
    }

    #[test]
    fn a_rename_is_found_even_before_the_old_path_is_marked_gone() {
        let (_d, st) = open_temp();
        let (id, _) = st
            .observe(Path::new("/nonexistent/old"), &stat(9, 1, 1), 1)
            .expect("observe");
        st.conn
            .execute("UPDATE files SET sha256 = 'cd' WHERE id = ?1", [id])
            .expect("hash");
        let (_, o) = st
            .observe(Path::new("/nonexistent/new"), &stat(9, 1, 1), 2)
            .expect("observe");
        assert!(matches!(o, Observed::Renamed { .. }), "{o:?}");
    }
}
