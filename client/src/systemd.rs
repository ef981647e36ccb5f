//! systemd readiness protocol through the safe `sd_notify::notify` (the
//! `*_and_unset_env` variants are unsafe once threads exist): READY=1,
//! STATUS=, WATCHDOG=1 and STOPPING=1. Without `NOTIFY_SOCKET` every call is
//! a no-op, so the daemon behaves the same outside systemd.
//!
//! The messages go out from a thread of their own: a notify socket that is
//! not read (its queue holds `net.unix.max_dgram_qlen` datagrams, 10 by
//! default, and a send to a full queue blocks) must never stall the event
//! loop, which also drives the uploads. When that thread falls behind,
//! STATUS= and WATCHDOG=1 messages are dropped, never queued without bound.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use sd_notify::NotifyState;

/// Messages waiting for the notify thread, at most.
const BACKLOG: usize = 16;
/// How long `stopping` waits for STOPPING=1 to be sent.
const STOP_FLUSH: Duration = Duration::from_secs(5);

#[derive(Debug)]
enum Msg {
    Ready(String),
    Status(String),
    Watchdog,
    Stopping(String, SyncSender<()>),
}

/// Talks to the service manager, if there is one.
#[derive(Debug, Clone)]
pub struct Notifier {
    watchdog: Option<Duration>,
    tx: Option<SyncSender<Msg>>,
}

fn sender(rx: &Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        let r = match &msg {
            Msg::Ready(s) => sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(s)]),
            Msg::Status(s) => sd_notify::notify(&[NotifyState::Status(s)]),
            Msg::Watchdog => sd_notify::notify(&[NotifyState::Watchdog]),
            Msg::Stopping(s, _) => {
                sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status(s)])
            }
        };
        if let Err(e) = r {
            tracing::debug!(error = %e, "sd_notify failed");
        }
        if let Msg::Stopping(_, done) = msg {
            let _ = done.send(());
        }
    }
}

impl Notifier {
    /// Read `NOTIFY_SOCKET` and `WATCHDOG_USEC`/`WATCHDOG_PID` from the
    /// environment; start the notify thread if there is a socket.
    pub fn from_env() -> Self {
        let tx = std::env::var_os("NOTIFY_SOCKET").and_then(|_| {
            let (tx, rx) = sync_channel(BACKLOG);
            std::thread::Builder::new()
                .name("sd-notify".into())
                .spawn(move || sender(&rx))
                .map_err(|e| tracing::warn!(error = %e, "cannot start the sd_notify thread"))
                .ok()
                .map(|_| tx)
        });
        Self {
            watchdog: sd_notify::watchdog_enabled(),
            tx,
        }
    }

    fn send(&self, msg: Msg) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(m)) => {
                tracing::debug!(message = ?m, "the service manager is not reading; notification dropped");
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Startup finished: watches are in place and the startup scan queued its work.
    pub fn ready(&self, status: &str) {
        self.send(Msg::Ready(status.to_owned()));
    }

    /// A line for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(Msg::Status(status.to_owned()));
    }

    /// The event loop is alive.
    pub fn watchdog(&self) {
        self.send(Msg::Watchdog);
    }

    /// Shutdown began: queued behind what is pending, and waited for (a
    /// little), so that it is not lost when the process exits.
    pub fn stopping(&self, status: &str) {
        let Some(tx) = &self.tx else { return };
        let (done, sent) = sync_channel(1);
        let deadline = std::time::Instant::now() + STOP_FLUSH;
        let mut msg = Msg::Stopping(status.to_owned(), done);
        loop {
            match tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if std::time::Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(_) => {
                    tracing::debug!("the service manager is not reading; STOPPING=1 dropped");
                    return;
                }
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if sent.recv_timeout(left).is_err() {
            tracing::debug!("STOPPING=1 not confirmed sent");
        }
    }

    /// How often to ping the watchdog (half its timeout), if enabled.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
            .map(|d| (d / 2).max(Duration::from_millis(100)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_backlog_drops_instead_of_blocking() {
        let (tx, rx) = sync_channel(BACKLOG);
        let n = Notifier {
            watchdog: None,
            tx: Some(tx),
        };
        for i in 0..BACKLOG * 3 {
            n.status(&format!("line {i}"));
        }
        assert_eq!(rx.try_iter().count(), BACKLOG);
    }
}
