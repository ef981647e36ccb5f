//! Files that are not what they seem, each handled and logged, none
//! blocking the queue (a normal file dropped after them is stored): FIFOs,
//! sockets, device nodes, symlinks (to a file inside, outside, in a loop, to
//! their own directory), a name that is not UTF-8, a 0-byte file, an
//! unreadable file, a file deleted before its upload, a file replaced by a
//! FIFO while queued, and a large file appended to while it is uploaded.
//! One set exists before the start (the scan meets it), one is made while
//! the watcher runs (inotify meets it).
//!
//! Unreadable files: root reads a chmod-000 file regardless. As root the
//! watcher runs under `setpriv` without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH,
//! so chmod 000 means for it what it means for a desktop user: a permanent
//! failure listed by `status`. Without setpriv, root uploads the file.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use rustix::fs::{CWD, FileType, Mode, makedev, mknodat};
use sha2::{Digest, Sha256};

use crate::support::{Home, Server, content, hex_lower, sha, wait_stored, wait_until, write};

const T: Duration = Duration::from_secs(120);
const NO_DAC: [&str; 4] = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
    "--",
];

/// The wrapper that makes permissions bind the watcher even as root.
fn permission_wrapper() -> Option<&'static [&'static str]> {
    if !rustix::process::geteuid().is_root() {
        return Some(&[]);
    }
    let works = std::process::Command::new(NO_DAC[0])
        .args(&NO_DAC[1..])
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        eprintln!(
            "setpriv cannot drop CAP_DAC_OVERRIDE here: root reads chmod-000 files, so they are expected on the server"
        );
    }
    works.then_some(&NO_DAC[..])
}

/// Make the special entries in `dir`; returns the contents that must be
/// stored, the ones that must not, and the sockets to keep open.
fn make_specials(dir: &Path, outside: &Path) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, UnixListener) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let tag = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    mknodat(CWD, dir.join("pipe"), FileType::Fifo, Mode::from(0o644), 0).expect("mkfifo");
    let sock = UnixListener::bind(dir.join("sock")).expect("socket");
    let zero = mknodat(
        CWD,
        dir.join("zero"),
        FileType::CharacterDevice,
        Mode::from(0o644),
        makedev(1, 5),
    );
    if let Err(e) = zero {
        eprintln!("no device node in {tag}: mknod not permitted here ({e})");
    }
    let target = format!("symlink target in {tag}").into_bytes();
    write(&dir.join("target.txt"), &target);
    let secret = format!("outside, linked from {tag}").into_bytes();
    write(&outside.join(format!("secret-{tag}.txt")), &secret);
    let link =
        |to: &Path, name: &str| std::os::unix::fs::symlink(to, dir.join(name)).expect("symlink");
    link(Path::new("target.txt"), "link-in");
    link(&outside.join(format!("secret-{tag}.txt")), "link-out");
    link(Path::new("loop-b"), "loop-a");
    link(Path::new("loop-a"), "loop-b");
    link(Path::new("."), "self-dir");
    let odd = format!("name that is not UTF-8 in {tag}").into_bytes();
    write(&dir.join(OsStr::from_bytes(b"caf\xe9 \xff.bin")), &odd);
    write(&dir.join("empty.dat"), b"");
    let unreadable = format!("chmod 000 in {tag}").into_bytes();
    let locked = dir.join("locked.bin");
    write(&locked, &unreadable);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    (
        vec![target, odd, Vec::new()],
        vec![secret, unreadable],
        sock,
    )
}

/// Append to `path` in 64 KiB pieces for a while with one open handle;
/// returns the hash of every complete state the file went through.
fn grow(path: &Path, start: usize, pieces: usize) -> (Vec<u8>, HashSet<String>) {
    let mut data = content("growing", start);
    let mut f = std::fs::File::create(path).expect("create");
    f.write_all(&data).expect("write");
    drop(f);
    let mut hasher = Sha256::new();
    hasher.update(&data);
    let mut states = HashSet::from([hex_lower(&hasher.clone().finalize())]);
    // Appends start at once and go on for about two seconds: the hash and
    // the upload that the close set off see the file change under them.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open");
    for i in 0..pieces {
        let piece = content(&format!("growing-{i}"), 64 * 1024);
        f.write_all(&piece).expect("append");
        hasher.update(&piece);
        data.extend_from_slice(&piece);
        states.insert(hex_lower(&hasher.clone().finalize()));
        std::thread::sleep(Duration::from_millis(40));
    }
    (data, states)
}

#[test]
fn faults_special_files_are_handled_and_none_blocks_the_queue() {
    let wrapper = permission_wrapper();
    let mut server = Server::start();
    let home = Home::new(&server, &[]);
    let w = home.watched.clone();
    // Before the start, with the server down: the scan meets these, and two
    // plain files wait in the queue.
    server.stop();
    let (mut want, mut never, _pre_sock) = make_specials(&w.join("pre"), &home.outside);
    let doomed = content("doomed", 9_000);
    let swapped = content("swapped", 9_000);
    write(&w.join("pre/doomed.bin"), &doomed);
    write(&w.join("pre/swap.bin"), &swapped);
    never.extend([doomed, swapped]);
    let run = home.spawn(wrapper.unwrap_or(&[]), &[]);
    let t0 = std::time::Instant::now();
    wait_until("both plain files retrying", T, || {
        assert!(
            t0.elapsed() < T - Duration::from_secs(1),
            "not retrying; status {}\nlog:\n{}",
            home.status(),
            run.log()
        );
        let s = home.status();
        let waiting: Vec<String> = s["retries"]
            .as_array()?
            .iter()
            .filter_map(|r| r["path"].as_str().map(str::to_owned))
            .collect();
        (waiting.iter().any(|p| p.ends_with("doomed.bin"))
            && waiting.iter().any(|p| p.ends_with("swap.bin")))
        .then_some(())
    });
    // Deleted while queued; replaced by a FIFO while queued (the restarted
    // watcher must not block opening it).
    std::fs::remove_file(w.join("pre/doomed.bin")).expect("rm");
    run.kill9();
    mknodat(
        CWD,
        home.outside.join("fifo"),
        FileType::Fifo,
        Mode::from(0o644),
        0,
    )
    .expect("mkfifo");
    std::fs::rename(home.outside.join("fifo"), w.join("pre/swap.bin")).expect("fifo over swap.bin");
    server.spawn();
    let mut run = home.spawn(wrapper.unwrap_or(&[]), &[]);
    run.wait_for_message("READY=1", T);

    // While it runs: the same again, a file deleted at once, and a large
    // file appended to while it is hashed and sent.
    let (live_want, live_never, _live_sock) = make_specials(&w.join("live"), &home.outside);
    want.extend(live_want);
    never.extend(live_never);
    let gone = content("deleted at once", 5_000);
    write(&w.join("live/gone.bin"), &gone);
    std::fs::remove_file(w.join("live/gone.bin")).expect("rm");
    never.push(gone);
    let (grown, grow_states) = grow(&w.join("live/growing.bin"), 16 << 20, 50);
    want.push(grown);
    let after = content("the file after the bad ones", 4_000);
    write(&w.join("after.txt"), &after);
    want.push(after);

    let mut want_hashes: Vec<String> = want.iter().map(|d| sha(d)).collect();
    if wrapper.is_none() {
        // Root without setpriv reads chmod-000 files.
        let unreadable: Vec<Vec<u8>> = never
            .iter()
            .filter(|d| d.starts_with(b"chmod 000"))
            .cloned()
            .collect();
        never.retain(|d| !d.starts_with(b"chmod 000"));
        want_hashes.extend(unreadable.iter().map(|d| sha(d)));
    }
    wait_stored(&server, &home, &want_hashes, T);
    let log = run.log();
    assert_eq!(run.stop().code(), Some(0));

    let have = server.hashes();
    for d in &never {
        assert!(
            !have.contains(&sha(d)),
            "{:?} must not be stored",
            String::from_utf8_lossy(d)
        );
    }
    let extra: Vec<&String> = have.iter().filter(|h| !want_hashes.contains(h)).collect();
    assert!(
        extra.iter().all(|h| grow_states.contains(*h)),
        "only complete states of the growing file besides what was wanted: {extra:?}"
    );
    let sent = home.status()["bytes_sent"].as_u64().unwrap_or(0);
    eprintln!(
        "growing file: {} intermediate states stored; {} bytes sent in transfers cut off by a change",
        extra.len(),
        sent.saturating_sub(server.stored_bytes())
    );
    assert_eq!(server.redundant_uploads(), 0);
    let target = sha(b"symlink target in pre");
    assert_eq!(
        server.sighting_paths(&target),
        vec!["w/pre/target.txt".to_owned()],
        "links are not followed"
    );
    let odd = sha(b"name that is not UTF-8 in pre");
    assert_eq!(
        server.sighting_paths(&odd),
        vec!["w/pre/caf\u{fffd} \u{fffd}.bin".to_owned()]
    );
    assert_eq!(
        server.sighting_paths(&sha(b"")),
        vec!["w/live/empty.dat".to_owned(), "w/pre/empty.dat".to_owned()]
    );
    let status = home.status();
    assert_eq!(status["queued"].as_u64(), Some(0), "{status}");
    if wrapper.is_some() {
        assert_eq!(status["failed"].as_u64(), Some(2), "{status}");
        for f in status["failures"].as_array().expect("failures") {
            assert!(
                f["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("locked.bin")),
                "{f}"
            );
            assert!(
                f["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("ermission denied")),
                "{f}"
            );
        }
    }
    for name in ["pre/pipe", "pre/sock"] {
        assert!(
            log.contains(&format!("skipped {}", w.join(name).display())),
            "{name} not logged:\n{log}"
        );
    }
    assert!(
        log.contains("locked.bin"),
        "the unreadable file is logged:\n{log}"
    );
}
