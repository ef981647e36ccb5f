//! A large file's bytes as a resumable upload (tus, `api::resumable`). The
//! session is saved in the state database when the server creates it; any
//! later try (after a cut, a backoff, a restart of either side) asks the
//! server for the committed offset and sends the rest from there. A session
//! begun for another version of the file (hash, size, mtime or inode
//! differ) is terminated and a new one begun; a session the server no
//! longer knows is forgotten and begun again; a hash the server refuses
//! (422: the bytes changed without the stat showing it) forgets the session
//! and hashes again. The row goes when the upload finishes or ends.
//! A try that moved the session's committed offset forward made progress
//! ([`advanced`]): its retry waits as after a first failure.

use asset_catalog_proto::{ErrorCode, Sha256Hex};

use super::job::Worker;
use crate::api::FileMeta;
use crate::api::resumable::{Created, Patched};
use crate::error::TransferError;
use crate::hasher::open_regular;
use crate::shown;
use crate::state::{FileStat, Job, SavedSession, StateError, now_ms};

/// `PATCH`es one try sends before it leaves the rest to the next try.
const MAX_ROUNDS: u32 = 4;

fn state<T>(r: Result<T, StateError>) -> Result<T, TransferError> {
    r.map_err(|e| TransferError::State(e.to_string()))
}

fn code_of(e: &TransferError) -> Option<ErrorCode> {
    match e {
        TransferError::Http { code, .. } => *code,
        _ => None,
    }
}

/// The server has no `/v1/uploads` (an older server): the file goes up in one `PUT`.
pub(super) fn unsupported(e: &TransferError) -> bool {
    matches!(e, TransferError::Http { status: 404 | 405, code, .. }
        if matches!(code, None | Some(ErrorCode::RouteNotFound | ErrorCode::MethodNotAllowed)))
}

/// Where a file's session stands: its address and committed offset, as
/// the state database has them before and after a try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mark {
    url: String,
    committed: u64,
}

/// The committed offset a try moved the session to from `before`, if it
/// moved it forward: the same session further on, or a new one with bytes
/// committed. `None` when the try got nowhere (or the session is gone).
pub(super) fn advanced(before: Option<&Mark>, after: Option<&Mark>) -> Option<u64> {
    let after = after?;
    let from = before
        .filter(|b| b.url == after.url)
        .map_or(0, |b| b.committed);
    (after.committed > from).then_some(after.committed)
}

/// The tries in a row without progress after a failed try (the backoff's
/// exponent): one more than before, or 1 for a try that took the upload
/// to offset `reached`, which waits as after a first failure.
pub(super) fn attempts_after(attempts: u32, reached: Option<u64>) -> u32 {
    match reached {
        Some(_) => 1,
        None => attempts.saturating_add(1),
    }
}

/// Where a try stands before it sends bytes.
enum Begun {
    Session(SavedSession),
    /// The server has the content; `true` if this upload stored it.
    Present(bool),
}

impl Worker {
    /// Where the session of file `file_id` stands, if it has one (one that
    /// cannot be read counts as none: the try is then not seen to advance).
    pub(super) fn mark(&self, file_id: i64) -> Option<Mark> {
        let saved = self.state.session(file_id).ok().flatten()?;
        Some(Mark {
            url: saved.url,
            committed: saved.committed,
        })
    }

    /// Send the bytes of `job`'s file (hashed as `sha` with `stat`) through
    /// a resumable session; true when the server stored new content.
    pub(super) async fn put_resumable(
        &self,
        job: &Job,
        sha: &Sha256Hex,
        stat: &FileStat,
        meta: &FileMeta,
    ) -> Result<bool, TransferError> {
        let mut next = None;
        for _ in 0..MAX_ROUNDS {
            let session = match next.take() {
                Some(s) => s,
                None => match self.begin(job, sha, stat, meta).await? {
                    Begun::Present(created) => return Ok(created),
                    Begun::Session(s) => s,
                },
            };
            match self.send_rest(job, &session).await {
                Ok(Patched::Done) => return self.finished(&session, sha, meta).await,
                Ok(Patched::At(offset)) => next = Some(self.committed(session, offset)?),
                Err(e) => next = self.after_error(session, e).await?,
            }
        }
        Err(TransferError::Protocol(format!(
            "the server kept the upload short of its end {MAX_ROUNDS} times"
        )))
    }

    /// The saved session if it is this file's and the server still has it
    /// (at its committed offset), else a new one.
    async fn begin(
        &self,
        job: &Job,
        sha: &Sha256Hex,
        stat: &FileStat,
        meta: &FileMeta,
    ) -> Result<Begun, TransferError> {
        let path = shown::path(&job.path);
        if let Some(saved) = state(self.state.session(job.id))? {
            if saved.sha256 == *sha && saved.stat.same_content(stat) {
                if let Some(offset) = self.api.tus_offset(&saved.url).await? {
                    tracing::info!(file.path = %path, upload.offset = offset, upload.length = stat.size,
                        "resuming the upload of {path} at {offset} of {} bytes", stat.size);
                    return self.committed(saved, offset).map(Begun::Session);
                }
                tracing::info!(file.path = %path, "the server no longer knows the upload session of {path}; beginning again");
                state(self.state.forget_session(job.id))?;
            } else {
                self.end_changed(&saved).await?;
            }
        }
        match self.api.tus_create(sha, stat.size, meta).await? {
            Created::Present(res) => Ok(Begun::Present(res.created)),
            Created::Session(url) => {
                let saved = SavedSession {
                    file_id: job.id,
                    url,
                    sha256: sha.clone(),
                    stat: *stat,
                    rel_path: meta.rel_path.clone(),
                    committed: 0,
                };
                state(self.state.save_session(&saved, now_ms()))?;
                tracing::debug!(file.path = %path, upload.url = saved.url, "upload session begun");
                Ok(Begun::Session(saved))
            }
        }
    }

    /// `PATCH` the rest of the file, if it is still the one the session is for.
    async fn send_rest(&self, job: &Job, s: &SavedSession) -> Result<Patched, TransferError> {
        let root = self
            .root_of(job)
            .ok_or(TransferError::Io(std::io::ErrorKind::NotFound.into()))?;
        let (file, now) = open_regular(&root.path, &job.path)?;
        if !now.same_content(&s.stat) {
            return Err(TransferError::Changed);
        }
        self.api.tus_patch(&s.url, file, &s.stat, s.committed).await
    }

    /// Record the offset the server committed; the session goes on from there.
    fn committed(&self, mut s: SavedSession, offset: u64) -> Result<SavedSession, TransferError> {
        s.committed = offset;
        state(self.state.session_committed(s.file_id, offset, now_ms()))?;
        Ok(s)
    }

    /// The session to go on with after `e`, or `None` to begin again; an
    /// error that ends this try is returned.
    async fn after_error(
        &self,
        s: SavedSession,
        e: TransferError,
    ) -> Result<Option<SavedSession>, TransferError> {
        match (&e, code_of(&e)) {
            (_, Some(ErrorCode::OffsetMismatch)) => match self.api.tus_offset(&s.url).await? {
                Some(offset) => self.committed(s, offset).map(Some),
                None => state(self.state.forget_session(s.file_id)).map(|()| None),
            },
            (_, Some(ErrorCode::UnknownUpload)) => {
                state(self.state.forget_session(s.file_id)).map(|()| None)
            }
            // The server ended the session itself; the file is hashed again.
            (_, Some(ErrorCode::HashMismatch)) => {
                state(self.state.forget_session(s.file_id))?;
                Err(e)
            }
            (TransferError::Changed, _) => {
                self.end_changed(&s).await?;
                Err(e)
            }
            _ => {
                // For `status`: what the server kept, if it can say now.
                if let Ok(Some(offset)) = self.api.tus_offset(&s.url).await {
                    let _ = self.committed(s, offset);
                }
                Err(e)
            }
        }
    }

    /// End the session of a file that changed since it began.
    async fn end_changed(&self, s: &SavedSession) -> Result<(), TransferError> {
        let rel = shown::text(&s.rel_path);
        tracing::info!(file.rel_path = %rel, upload.offset = s.committed,
            "{rel} changed since its upload session began; ending that session");
        self.terminate(s).await
    }

    /// End a session on the server (one it no longer knows is ended) and
    /// forget it; if the server cannot be told, the row stays for the next try.
    async fn terminate(&self, s: &SavedSession) -> Result<(), TransferError> {
        self.api.tus_terminate(&s.url).await?;
        state(self.state.forget_session(s.file_id))
    }

    /// The last byte was verified: forget the session; if the file was
    /// renamed since the session began, record its place now.
    async fn finished(
        &self,
        s: &SavedSession,
        sha: &Sha256Hex,
        meta: &FileMeta,
    ) -> Result<bool, TransferError> {
        state(self.state.forget_session(s.file_id))?;
        if s.rel_path != meta.rel_path {
            self.api.sighting(sha, meta).await?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(url: &str, committed: u64) -> Mark {
        Mark {
            url: url.into(),
            committed,
        }
    }

    #[test]
    fn a_try_advances_when_the_committed_offset_grows() {
        let (a, b) = ("/v1/uploads/a", "/v1/uploads/b");
        assert_eq!(advanced(Some(&at(a, 5)), Some(&at(a, 15))), Some(15));
        assert_eq!(advanced(None, Some(&at(a, 10))), Some(10), "a new session");
        assert_eq!(
            advanced(Some(&at(a, 50)), Some(&at(b, 10))),
            Some(10),
            "begun again"
        );
        assert_eq!(advanced(Some(&at(a, 10)), Some(&at(a, 10))), None, "stuck");
        assert_eq!(advanced(None, Some(&at(a, 0))), None, "begun, no byte kept");
        assert_eq!(advanced(Some(&at(a, 10)), None), None, "forgotten");
        assert_eq!(advanced(None, None), None, "no session");
    }

    #[test]
    fn a_try_that_advanced_waits_as_after_a_first_failure() {
        let b = crate::backoff::Backoff::default();
        let mut attempts = 0;
        for _ in 0..6 {
            attempts = attempts_after(attempts, None);
        }
        assert_eq!(b.delay(attempts, 1.0), Duration::from_secs(32), "grown");
        let reached = advanced(Some(&at("/u", 10)), Some(&at("/u", 20)));
        let reset = attempts_after(attempts, reached);
        assert_eq!((reset, b.delay(reset, 1.0)), (1, b.delay(1, 1.0)));
        let stuck = advanced(Some(&at("/u", 20)), Some(&at("/u", 20)));
        assert_eq!(attempts_after(reset, stuck), 2, "and grows again");
    }
}
