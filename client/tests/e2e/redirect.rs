//! Issue 12, point 10: the watcher never follows a redirect. A tiny HTTP
//! server stands in for the catalog: it answers the hash check (everything
//! missing) and redirects every upload (307, then 308, in turn) to a second
//! local listener. That listener must never see a connection — no token, no
//! bytes — and the watcher must say what happened, keeping the file queued.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{Home, Server, content, write};

const T: Duration = Duration::from_secs(60);

/// One request: method, target and body.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    r.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok().filter(|n| *n > 0)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    Some((method, target, body))
}

/// Serve one connection: checks answered, everything else redirected.
fn redirect_all(stream: TcpStream, to: u16, redirected: &AtomicUsize) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    while let Some((method, target, body)) = read_request(&mut r) {
        let answer = if method == "POST" && target == "/v1/assets/check" {
            let asked: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let json = serde_json::json!({ "missing": asked["hashes"] }).to_string();
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                json.len()
            )
        } else {
            let n = redirected.fetch_add(1, Ordering::SeqCst);
            let (code, reason) = if n % 2 == 0 {
                (307, "Temporary Redirect")
            } else {
                (308, "Permanent Redirect")
            };
            format!(
                "HTTP/1.1 {code} {reason}\r\nlocation: http://127.0.0.1:{to}{target}\r\n\
                 content-length: 0\r\n\r\n"
            )
        };
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Accept connections on `listener` for ever, each on its own thread.
fn serve(listener: TcpListener, each: impl Fn(TcpStream) + Send + Sync + 'static) {
    let each = Arc::new(each);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let each = Arc::clone(&each);
            std::thread::spawn(move || each(stream));
        }
    });
}

#[test]
fn redirects_are_not_followed_and_nothing_reaches_their_target() {
    let trap = TcpListener::bind("127.0.0.1:0").expect("bind");
    let trap_port = trap.local_addr().expect("addr").port();
    let reached = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&reached);
    serve(trap, move |mut s| {
        count.fetch_add(1, Ordering::SeqCst);
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = s.read(&mut [0u8; 4096]);
    });
    let front = TcpListener::bind("127.0.0.1:0").expect("bind");
    let front_url = format!(
        "http://127.0.0.1:{}",
        front.local_addr().expect("addr").port()
    );
    let redirected = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&redirected);
    serve(front, move |s| redirect_all(s, trap_port, &seen));

    // A real server only to mint the watcher's token.
    let server = Server::start();
    let home = Home::new(&server, &[("ASSET_WATCHER__SERVER", front_url.as_str())]);
    write(
        &home.watched.join("photo.jpg"),
        &content("redirected", 50_000),
    );
    let run = home.start();
    crate::support::wait_until("a 307 and a 308 answered", T, || {
        (redirected.load(Ordering::SeqCst) >= 2).then_some(())
    });
    // Time to follow the last redirect, had it been followed.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the redirect's target was contacted"
    );
    let status = home.status();
    let error = status["retries"][0]["error"].as_str().unwrap_or_default();
    let location = format!("http://127.0.0.1:{trap_port}/v1/assets/");
    assert!(
        error.contains("server answered 30")
            && error.contains(&location)
            && error.contains("does not follow"),
        "{status}"
    );
    assert_eq!(status["queued"].as_u64(), Some(1), "the file stays queued");
    assert!(
        run.log().contains("which asset-watcher does not follow"),
        "{}",
        run.log()
    );
    assert_eq!(run.stop().code(), Some(0));
    assert!(server.hashes().is_empty());
}
