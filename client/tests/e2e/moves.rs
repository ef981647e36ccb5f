//! New nested directories, directories and files moved in from outside,
//! and renames inside the tree (which send no bytes).

use std::time::Duration;

use crate::support::{Home, Server, content, sha, wait_stored, wait_until, write};

const T: Duration = Duration::from_secs(90);

#[test]
fn new_nested_directories_are_watched_and_scanned_at_once() {
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let run = home.start();
    let mut want = Vec::new();
    let mut total = 0;
    for i in 0..5 {
        let dir = home.watched.join(format!("n{i}/a/b/c"));
        std::fs::create_dir_all(&dir).expect("mkdir -p");
        let data = content(&format!("nested{i}"), 4096 * (i + 1));
        write(&dir.join("f.bin"), &data);
        write(
            &home.watched.join(format!("n{i}/a/top.txt")),
            &content(&format!("top{i}"), 100),
        );
        total += data.len() + 100;
        want.push(sha(&data));
        want.push(sha(&content(&format!("top{i}"), 100)));
    }
    wait_stored(&server, &home, &want, T);
    // A file written later into the deepest new directory proves it is watched.
    let late = content("late", 1234);
    write(&home.watched.join("n4/a/b/c/late.bin"), &late);
    wait_stored(&server, &home, &[sha(&late)], T);
    assert_eq!(run.stop().code(), Some(0));
    assert_eq!(server.stored_bytes(), (total + late.len()) as u64);
    assert_eq!(server.redundant_uploads(), 0);
    assert_eq!(
        home.status()["bytes_sent"].as_u64(),
        Some((total + late.len()) as u64)
    );
}

#[test]
fn moved_in_files_are_uploaded_and_renames_inside_send_no_bytes() {
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let one = content("one", 50_000);
    let two = content("two", 60_000);
    let three = content("three", 70_000);
    write(&home.outside.join("one.dat"), &one);
    write(&home.outside.join("album/two.dat"), &two);
    write(&home.outside.join("album/sub/three.dat"), &three);
    let run = home.start();
    std::fs::rename(home.outside.join("one.dat"), home.watched.join("one.dat"))
        .expect("mv file in");
    std::fs::rename(home.outside.join("album"), home.watched.join("album")).expect("mv dir in");
    let want = [sha(&one), sha(&two), sha(&three)];
    wait_stored(&server, &home, &want, T);
    let total = (one.len() + two.len() + three.len()) as u64;
    assert_eq!(server.stored_bytes(), total);

    // Renames inside: a file, and a directory with a subdirectory.
    std::fs::rename(
        home.watched.join("one.dat"),
        home.watched.join("album/one-renamed.dat"),
    )
    .expect("mv");
    std::fs::rename(home.watched.join("album"), home.watched.join("album-2024")).expect("mv dir");
    wait_until("renamed paths recorded", T, || {
        let ok = server
            .sighting_paths(&sha(&one))
            .contains(&"w/album-2024/one-renamed.dat".to_owned())
            && server
                .sighting_paths(&sha(&three))
                .contains(&"w/album-2024/sub/three.dat".to_owned())
            && server
                .sighting_paths(&sha(&two))
                .contains(&"w/album-2024/two.dat".to_owned());
        ok.then_some(())
    });
    // A file written into the renamed subdirectory lands under its new name.
    let four = content("four", 1000);
    write(&home.watched.join("album-2024/sub/four.dat"), &four);
    wait_stored(&server, &home, &[sha(&four)], T);
    assert_eq!(
        server.sighting_paths(&sha(&four)),
        vec!["w/album-2024/sub/four.dat".to_owned()]
    );
    assert_eq!(run.stop().code(), Some(0));

    assert_eq!(
        server.stored_bytes(),
        total + four.len() as u64,
        "renames sent no bytes"
    );
    assert_eq!(server.redundant_uploads(), 0);
    let status = home.status();
    assert_eq!(
        status["bytes_sent"].as_u64(),
        Some(total + four.len() as u64)
    );
    assert_eq!(
        status["bytes_hashed"].as_u64(),
        Some(total + four.len() as u64),
        "renamed files are not hashed again"
    );
    assert!(
        status["sightings"].as_u64().is_some_and(|n| n >= 3),
        "{status}"
    );
}
