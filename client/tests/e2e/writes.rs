//! Files written slowly in pieces, and temporary `*.part` files renamed to
//! their final name: each is sent once, complete.

use std::io::Write;
use std::time::Duration;

use crate::support::{Home, Server, content, sha, wait_stored};

const T: Duration = Duration::from_secs(90);

#[test]
fn a_file_written_slowly_in_pieces_is_sent_once_complete() {
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let run = home.start();
    let data = content("slow", 5 * 64 * 1024);
    let mut f = std::fs::File::create(home.watched.join("slow.bin")).expect("create");
    for piece in data.chunks(64 * 1024) {
        f.write_all(piece).expect("write piece");
        f.flush().expect("flush");
        // Longer than the quiet period: only the close may trigger an upload.
        std::thread::sleep(Duration::from_millis(400));
    }
    drop(f);
    wait_stored(&server, &home, &[sha(&data)], T);
    assert_eq!(run.stop().code(), Some(0));
    assert_eq!(server.hashes().len(), 1, "no partial version was stored");
    assert_eq!(server.stored_bytes(), data.len() as u64);
    assert_eq!(
        home.status()["bytes_sent"].as_u64(),
        Some(data.len() as u64)
    );
}

#[test]
fn a_part_file_renamed_to_its_final_name_is_sent_once() {
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let run = home.start();
    let data = content("download", 400_000);
    let part = home.watched.join("movie.mkv.part");
    let mut f = std::fs::File::create(&part).expect("create");
    for piece in data.chunks(100_000) {
        f.write_all(piece).expect("write");
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(f);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::rename(&part, home.watched.join("movie.mkv")).expect("rename");
    wait_stored(&server, &home, &[sha(&data)], T);
    assert_eq!(run.stop().code(), Some(0));
    assert_eq!(server.hashes().len(), 1);
    assert_eq!(server.stored_bytes(), data.len() as u64);
    assert_eq!(
        home.status()["bytes_sent"].as_u64(),
        Some(data.len() as u64)
    );
    let paths = server.sighting_paths(&sha(&data));
    assert_eq!(paths, vec!["w/movie.mkv".to_owned()]);
}
