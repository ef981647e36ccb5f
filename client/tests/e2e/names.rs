//! Issue 12, point 9 (the watcher's side): names with control and bidi
//! characters (newline, ESC, U+202E, U+2066) are uploaded under their real
//! names, and shown escaped wherever the watcher shows them: its log lines
//! and `asset-watcher status`.

use std::time::Duration;

use crate::support::{Home, Server, content, sha, wait_stored, wait_until, write};

const T: Duration = Duration::from_secs(60);

/// Characters no log line or status text may show raw.
fn raw_control(text: &str) -> Option<char> {
    text.chars().find(|c| {
        (c.is_control() && *c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

#[test]
fn names_with_control_and_bidi_characters_are_uploaded_as_they_are_and_shown_escaped() {
    let server = Server::start_with("max_upload_bytes = 100000");
    let home = Home::new(&server, &[]);
    let run = home.start();
    let name = "in\nvoice\u{1b}[31m\u{202e}fdp.exe";
    let dir = "dir\u{2066}x\r";
    let data = content("a name that lies", 3_000);
    write(&home.watched.join(dir).join(name), &data);
    // Too large for this server: a permanent failure that `status` lists.
    let big = content("too large", 200_000);
    let big_name = "big\u{202e}osi.\u{1b}]0;owned\u{7}";
    write(&home.watched.join(big_name), &big);
    wait_stored(&server, &home, &[sha(&data)], T);
    wait_until("the large file failed", T, || {
        (home.status()["failed"].as_u64() == Some(1)).then_some(())
    });

    assert_eq!(
        server.sighting_paths(&sha(&data)),
        vec![format!("w/{dir}/{name}")],
        "the server has the real name"
    );
    let log = run.log();
    let escaped = "w/dir\\u{2066}x\\r/in\\nvoice\\u{1b}[31m\\u{202e}fdp.exe";
    assert!(log.contains(escaped), "no escaped name in the log:\n{log}");
    assert_eq!(
        raw_control(&log),
        None,
        "a raw character in the log:\n{log:?}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("voice")),
        "a name broke a log line:\n{log}"
    );

    let out = home.run(&["status"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("big\\u{202e}osi.\\u{1b}]0;owned\\u{7}\n"),
        "{text}"
    );
    assert_eq!(
        raw_control(&text),
        None,
        "a raw character in status:\n{text:?}"
    );
    let json = home.status();
    assert!(
        json["failures"][0]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with(big_name)),
        "the JSON keeps the real name: {json}"
    );
    assert_eq!(run.stop().code(), Some(0));
}
