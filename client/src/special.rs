//! Entries that are not regular files — FIFOs, sockets, device nodes,
//! symlinks — are never uploaded, never opened by a walk, and said so in
//! the log once per scan that meets them (symlinks only at debug level:
//! they are common and harmless, and they are not followed, so a loop
//! cannot trap a walk).

use std::path::Path;

use rustix::fs::FileType;

use crate::shown;

/// What kind of non-regular entry this is, for the log.
pub fn kind(ft: FileType) -> &'static str {
    match ft {
        FileType::Symlink => "symlink (not followed)",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::BlockDevice | FileType::CharacterDevice => "device node",
        _ => "special file",
    }
}

/// Log that a walk skipped `path`, which is not a regular file.
pub fn note_skipped(path: &Path, ft: FileType) {
    let kind = kind(ft);
    let shown = shown::path(path);
    if ft == FileType::Symlink {
        tracing::debug!(file.path = %shown, kind, "skipped: not a regular file");
    } else {
        tracing::info!(file.path = %shown, kind, "skipped {shown}: a {kind}, not a regular file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("l");
        std::os::unix::fs::symlink("l", &link).expect("symlink loop");
        let sock = dir.path().join("s");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let ft = |p: &Path| {
            let st = rustix::fs::lstat(p).expect("lstat");
            FileType::from_raw_mode(st.st_mode)
        };
        assert_eq!(kind(ft(&link)), "symlink (not followed)");
        assert_eq!(kind(ft(&sock)), "socket");
        assert_eq!(kind(ft(Path::new("/dev/null"))), "device node");
    }
}
