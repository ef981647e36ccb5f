//! `asset-watcher status`: what the state database says (it is safe to read
//! while the daemon runs: WAL), as text for people or `--json` for scripts.
//! The text shows names and the server's messages escaped (`shown`); the
//! JSON keeps them exact (JSON escapes control characters itself).

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;

use crate::config::Settings;
use crate::paths::Paths;
use crate::shown;
use crate::state::{Failure, Report, State, StateError, now_ms};

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct StatusDoc<'a> {
    pub state_db: String,
    pub daemon_pid: Option<u32>,
    pub server: String,
    pub client_id: &'a str,
    pub watch: Vec<String>,
    #[serde(flatten)]
    pub report: Report,
}

/// The daemon's pid, from the lock file, if that process is alive.
pub fn daemon_pid(paths: &Paths) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(paths.lock_file())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

fn when(ms: Option<i64>) -> String {
    when_at(ms, now_ms())
}

/// `ms` (since the epoch) as a date and how long before `now` it was.
fn when_at(ms: Option<i64>, now: i64) -> String {
    let Some(ms) = ms else {
        return "never".to_owned();
    };
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let ago = (now - ms).max(0) / 1000;
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    format!(
        "{} ({})",
        t.format(&fmt).unwrap_or_default(),
        human_secs(ago)
    )
}

fn human_secs(s: i64) -> String {
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86400),
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn list(out: &mut dyn Write, title: &str, items: &[Failure], total: u64) -> std::io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out, "{title}:")?;
    for f in items {
        let retry = match f.next_try_ms {
            Some(ms) => format!(", next try in {} s", ((ms - now_ms()).max(0) + 999) / 1000),
            None => String::new(),
        };
        writeln!(
            out,
            "  {}\n    {} (attempts: {}{retry})",
            shown::text(&f.path),
            shown::Made(&f.error),
            f.attempts
        )?;
    }
    if total > items.len() as u64 {
        writeln!(out, "  ... and {} more", total - items.len() as u64)?;
    }
    Ok(())
}

/// Print the status. `limit` caps the listed failures.
pub fn print_status(
    paths: &Paths,
    settings: &Settings,
    json: bool,
    limit: usize,
    out: &mut dyn Write,
) -> Result<(), StatusError> {
    let db = paths.state_db();
    let report = if db.exists() {
        State::open(&db)?.report(limit)?
    } else {
        Report::default()
    };
    let doc = StatusDoc {
        state_db: db.display().to_string(),
        daemon_pid: daemon_pid(paths),
        server: settings.server.to_string(),
        client_id: &settings.client_id,
        watch: settings
            .roots
            .iter()
            .map(|r| r.path.display().to_string())
            .collect(),
        report,
    };
    if json {
        serde_json::to_writer_pretty(&mut *out, &doc).map_err(std::io::Error::other)?;
        writeln!(out)?;
        return Ok(());
    }
    print_text(&doc, db.exists(), out)
}

fn print_text(
    doc: &StatusDoc<'_>,
    db_exists: bool,
    out: &mut dyn Write,
) -> Result<(), StatusError> {
    let r = &doc.report;
    let daemon = doc
        .daemon_pid
        .map_or("not running".to_owned(), |p| format!("running (pid {p})"));
    let watching = if doc.watch.is_empty() {
        "nothing (see `asset-watcher init`)".to_owned()
    } else {
        doc.watch.join(", ")
    };
    writeln!(out, "Daemon:     {daemon}")?;
    writeln!(out, "Server:     {} (as {})", doc.server, doc.client_id)?;
    writeln!(out, "Watching:   {}", shown::text(&watching))?;
    let created = if db_exists { "" } else { " (not created yet)" };
    writeln!(out, "State:      {}{created}", shown::text(&doc.state_db))?;
    writeln!(
        out,
        "Files:      {} known, {} synced",
        r.files_total, r.synced
    )?;
    writeln!(
        out,
        "Queue:      {} waiting ({} retrying after errors)",
        r.queued, r.retrying
    )?;
    writeln!(out, "Failed:     {}", r.failed)?;
    writeln!(out, "Last sync:  {}", when(r.last_sync_ms))?;
    writeln!(out, "Last scan:  {}", when(r.last_scan_ms))?;
    writeln!(
        out,
        "Sent:       {} in {} uploads; {} sightings sent no bytes",
        human_bytes(r.bytes_sent),
        r.uploads,
        r.sightings
    )?;
    writeln!(out, "Hashed:     {}", human_bytes(r.bytes_hashed))?;
    let title = "Failures (fixed by changing the file, or `asset-watcher scan --retry-failed`)";
    list(out, title, &r.failures, r.failed)?;
    list(out, "Retrying", &r.retries, r.retrying)?;
    Ok(())
}

/// `status` could not read the state.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("writing the status: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humane_numbers() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(human_secs(30), "30 s ago");
        assert_eq!(human_secs(600), "10 min ago");
        assert_eq!(when(None), "never");
    }

    #[test]
    fn text_status_escapes_names() {
        let evil = "/w/in\nvoice\u{202e}fdp.exe\u{1b}[2J";
        let failure = Failure {
            path: evil.to_owned(),
            error: "server answered 400 bad_request: bad \u{1b}[31mname".to_owned(),
            attempts: 1,
            next_try_ms: None,
        };
        let report = Report {
            failed: 1,
            failures: vec![failure],
            ..Report::default()
        };
        let doc = StatusDoc {
            state_db: "/s/state.sqlite3".to_owned(),
            daemon_pid: None,
            server: "http://127.0.0.1:8000/".to_owned(),
            client_id: "host-user",
            watch: vec!["/w/\u{202e}odd".to_owned()],
            report,
        };
        let mut out = Vec::new();
        print_text(&doc, true, &mut out).expect("print");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("/w/in\\nvoice\\u{202e}fdp.exe\\u{1b}[2J\n"),
            "{text}"
        );
        assert!(text.contains("bad \\u{1b}[31mname"), "{text}");
        assert!(text.contains("Watching:   /w/\\u{202e}odd"), "{text}");
        let shown: String = text.lines().collect();
        assert!(
            !shown.chars().any(|c| c != '\\' && shown::needs_escape(c)),
            "{text:?}"
        );
    }
}
