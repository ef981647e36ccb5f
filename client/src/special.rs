//! Entries that are not regular files — FIFOs, sockets, device nodes,
//! symlinks — are never uploaded, never opened by a walk, and said so in
//! the log once per scan that meets them (symlinks only at debug level:
//! they are common and harmless, and they are not followed, so a loop
//! cannot trap a walk).

use std::fs::FileType;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// What kind of non-regular entry this is, for the log.
pub fn kind(ft: FileType) -> &'static str {
    if ft.is_symlink() {
        "symlink (not followed)"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device node"
    } else {
        "special file"
    }
}

/// Log that a walk skipped `path`, which is not a regular file.
pub fn note_skipped(path: &Path, ft: FileType) {
    let kind = kind(ft);
    if ft.is_symlink() {
        tracing::debug!(file.path = %path.display(), kind, "skipped: not a regular file");
    } else {
        tracing::info!(
            file.path = %path.display(),
            kind,
            "skipped {}: a {kind}, not a regular file",
            path.display()
        );
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
        let ft = |p: &Path| std::fs::symlink_metadata(p).expect("lstat").file_type();
        assert_eq!(kind(ft(&link)), "symlink (not followed)");
        assert_eq!(kind(ft(&sock)), "socket");
        assert_eq!(kind(ft(Path::new("/dev/null"))), "device node");
    }
}
