//! What the indexer records of files that are gone: a path deleted or moved
//! away, everything under a directory that went (a complete walk of a root
//! calls these for what it did not meet), and the purge of rows too old to be the source of a
//! rename. A vanished row leaves the upload queue at once; its hash stays
//! until the purge, so the same content reappearing is a rename.

use std::path::Path;

use rusqlite::{OptionalExtension, params};

use super::index::subtree_range;
use super::{State, StateError, path_bytes};

impl State {
    /// The file at `path` is gone (deleted or moved away). Returns whether
    /// a row was affected.
    pub fn vanish(&self, path: &Path, now: i64) -> Result<bool, StateError> {
        let id: Option<i64> = self
            .conn
            .prepare_cached(
                "UPDATE files SET status = 'gone', version = version + 1, updated_ms = ?1
                 WHERE path = ?2 AND status != 'gone' RETURNING id",
            )?
            .query_row(params![now, path_bytes(path)], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            self.conn
                .execute("DELETE FROM queue WHERE file_id = ?1", [id])?;
        }
        Ok(id.is_some())
    }

    /// Everything under the directory `dir` is gone.
    pub fn vanish_under(&self, dir: &Path, now: i64) -> Result<usize, StateError> {
        let (lo, hi) = subtree_range(dir);
        self.conn.execute(
            "DELETE FROM queue WHERE file_id IN
               (SELECT id FROM files WHERE path >= ?1 AND path < ?2)",
            params![lo, hi],
        )?;
        Ok(self.conn.execute(
            "UPDATE files SET status = 'gone', version = version + 1, updated_ms = ?3
             WHERE path >= ?1 AND path < ?2 AND status != 'gone'",
            params![lo, hi, now],
        )?)
    }

    /// Forget vanished rows last touched before `before_ms` (too old to be
    /// the source of a rename).
    pub fn purge_gone(&self, before_ms: i64) -> Result<usize, StateError> {
        Ok(self.conn.execute(
            "DELETE FROM files WHERE status = 'gone' AND updated_ms < ?1",
            [before_ms],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{open_temp, stat};
    use super::*;
    use crate::state::Observed;

    #[test]
    fn vanish_under_and_purge() {
        let (_d, st) = open_temp();
        let (a, _) = st
            .observe(Path::new("/w/d/a"), &stat(1, 1, 1), 1)
            .expect("a");
        st.observe(Path::new("/w/d/e/b"), &stat(2, 1, 1), 1)
            .expect("b");
        st.observe(Path::new("/w/d0"), &stat(3, 1, 1), 1)
            .expect("sibling");
        assert_eq!(st.vanish_under(Path::new("/w/d"), 2).expect("vanish"), 2);
        assert_eq!(
            st.observe(Path::new("/w/d/a"), &stat(1, 1, 1), 3)
                .expect("back"),
            (a, Observed::New)
        );
        assert!(st.vanish(Path::new("/w/d0"), 4).expect("vanish"));
        assert!(!st.vanish(Path::new("/w/d0"), 4).expect("already gone"));
        assert_eq!(st.purge_gone(5).expect("purge"), 2);
    }
}
