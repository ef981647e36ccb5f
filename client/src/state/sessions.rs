//! Resumable upload sessions (tus) in progress, one per file at most: the
//! session's address on the server, the content and file identity it was
//! begun for, and the last offset the server reported as committed. A row
//! lives from the session's creation to its end (finished, terminated, or
//! found unknown by the server) and goes with its file's row.

use asset_catalog_proto::Sha256Hex;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{FileStat, State, StateError, path_from_bytes};

/// A session as saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSession {
    pub file_id: i64,
    /// The session's path on the server (`/v1/uploads/<id>`).
    pub url: String,
    pub sha256: Sha256Hex,
    /// The file as it was when the session began (`size` is the length).
    pub stat: FileStat,
    /// `<root label>/<path>` the session was created with.
    pub rel_path: String,
    /// The committed offset the server last reported.
    pub committed: u64,
}

/// A partial upload, as `asset-watcher status` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Partial {
    pub path: String,
    pub offset: u64,
    pub length: u64,
    pub url: String,
    pub updated_ms: i64,
}

impl Partial {
    /// Whole percent committed, rounded down (100 only when complete).
    pub fn percent(&self) -> u64 {
        if self.length == 0 {
            return 100;
        }
        u64::try_from(u128::from(self.offset) * 100 / u128::from(self.length)).unwrap_or(100)
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl State {
    /// The saved session of file `file_id`, if any (one whose hash cannot be
    /// read is treated as none).
    pub fn session(&self, file_id: i64) -> Result<Option<SavedSession>, StateError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT url, sha256, length, dev, ino, mtime_ns, rel_path, committed
                 FROM upload_sessions WHERE file_id = ?1",
            )?
            .query_row([file_id], |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    SavedSession {
                        file_id,
                        url: r.get(0)?,
                        sha256: Sha256Hex::from_digest([0; 32]),
                        stat: FileStat {
                            size: r.get::<_, i64>(2)? as u64,
                            dev: r.get::<_, i64>(3)? as u64,
                            ino: r.get::<_, i64>(4)? as u64,
                            mtime_ns: r.get(5)?,
                            ctime_ns: 0,
                        },
                        rel_path: r.get(6)?,
                        committed: r.get::<_, i64>(7)?.max(0) as u64,
                    },
                ))
            })
            .optional()?;
        Ok(row.and_then(|(sha, saved)| {
            Some(SavedSession {
                sha256: sha.parse().ok()?,
                ..saved
            })
        }))
    }

    /// Save a new session (replacing any other of the same file).
    pub fn save_session(&self, s: &SavedSession, now: i64) -> Result<(), StateError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO upload_sessions
                   (file_id, url, sha256, length, dev, ino, mtime_ns, rel_path, committed,
                    created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )?
            .execute(params![
                s.file_id,
                s.url,
                s.sha256.as_str(),
                to_i64(s.stat.size),
                to_i64(s.stat.dev),
                to_i64(s.stat.ino),
                s.stat.mtime_ns,
                s.rel_path,
                to_i64(s.committed),
                now
            ])?;
        Ok(())
    }

    /// Record the committed offset the server reported for file `file_id`'s session.
    pub fn session_committed(
        &self,
        file_id: i64,
        committed: u64,
        now: i64,
    ) -> Result<(), StateError> {
        self.conn
            .prepare_cached(
                "UPDATE upload_sessions SET committed = ?1, updated_ms = ?2 WHERE file_id = ?3",
            )?
            .execute(params![to_i64(committed), now, file_id])?;
        Ok(())
    }

    /// Forget file `file_id`'s session (finished, terminated or unknown).
    pub fn forget_session(&self, file_id: i64) -> Result<(), StateError> {
        self.conn
            .prepare_cached("DELETE FROM upload_sessions WHERE file_id = ?1")?
            .execute([file_id])?;
        Ok(())
    }

    /// Sessions of files still queued, by path; at most `limit`.
    pub fn partials(&self, limit: usize) -> Result<Vec<Partial>, StateError> {
        let mut st = self.conn.prepare_cached(
            "SELECT f.path, s.committed, s.length, s.url, s.updated_ms
             FROM upload_sessions s JOIN files f ON f.id = s.file_id
             WHERE f.status IN ('pending', 'hashed')
             ORDER BY f.path LIMIT ?1",
        )?;
        let rows = st.query_map([to_i64(limit as u64)], |r| {
            Ok(Partial {
                path: path_from_bytes(r.get(0)?).to_string_lossy().into_owned(),
                offset: r.get::<_, i64>(1)?.max(0) as u64,
                length: r.get::<_, i64>(2)?.max(0) as u64,
                url: r.get(3)?,
                updated_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::test_util::{open_temp, stat};
    use super::*;

    #[test]
    fn a_session_is_saved_advanced_listed_and_forgotten() {
        let (_d, st) = open_temp();
        let (id, _) = st
            .observe(Path::new("/w/big.iso"), &stat(7, 300, 9), 10)
            .expect("observe");
        assert_eq!(st.session(id).expect("none yet"), None);
        let saved = SavedSession {
            file_id: id,
            url: "/v1/uploads/abc".into(),
            sha256: Sha256Hex::from_digest([3; 32]),
            stat: stat(7, 300, 9),
            rel_path: "w/big.iso".into(),
            committed: 0,
        };
        st.save_session(&saved, 11).expect("save");
        st.session_committed(id, 100, 12).expect("advance");
        let got = st.session(id).expect("read").expect("saved");
        assert_eq!(got.committed, 100);
        assert_eq!((got.stat.size, got.stat.mtime_ns), (300, 9));
        let listed = st.partials(10).expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].path.as_str(), listed[0].percent()),
            ("/w/big.iso", 33)
        );
        st.forget_session(id).expect("forget");
        assert!(st.partials(10).expect("list").is_empty());
    }
}
