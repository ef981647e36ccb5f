use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use testkit::haproxy::Haproxy;
use testkit::http;

/// A tiny HTTP server: `/readyz` answers 200, everything else its `name`.
struct Responder {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    fn start(name: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a responder");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("responder address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).expect("blocking stream");
                let mut head = [0u8; 1024];
                let n = stream.read(&mut head).unwrap_or(0);
                let request = String::from_utf8_lossy(&head[..n]);
                let body = if request.starts_with("GET /readyz ") {
                    "ready"
                } else {
                    name
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn get_body(haproxy: &Haproxy) -> String {
    let response = http::get(haproxy.port(), "/", &[]).expect("an answer through HAProxy");
    assert_eq!(response.status, 200, "{response:?}\n{}", haproxy.log());
    response.body
}

#[test]
fn balances_over_two_servers_and_skips_a_dead_one() {
    let a = Responder::start("a");
    let b = Responder::start("b");
    let haproxy = Haproxy::start(&[a.port, b.port]);
    assert_eq!(
        haproxy.url(),
        format!("http://127.0.0.1:{}", haproxy.port())
    );

    let mut bodies: Vec<String> = (0..4).map(|_| get_body(&haproxy)).collect();
    bodies.sort();
    assert_eq!(bodies, ["a", "a", "b", "b"], "round robin");

    // A dead server: connection failures are retried on the other one,
    // before and after the health checks mark it down.
    drop(b);
    for _ in 0..6 {
        assert_eq!(get_body(&haproxy), "a");
    }
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..4 {
        assert_eq!(get_body(&haproxy), "a");
    }
}

#[test]
fn dropping_stops_haproxy() {
    let a = Responder::start("a");
    let haproxy = Haproxy::start(&[a.port]);
    let port = haproxy.port();
    drop(haproxy);
    assert!(http::get(port, "/", &[]).is_none());
}
