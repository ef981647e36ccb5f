//! `asset-watcher status`: what the state database says (it is safe to read
//! while the daemon runs: WAL), as text for people or `--json` for scripts.
//! The text shows names and the server's messages escaped (`shown`); the
//! JSON keeps them exact (JSON escapes control characters itself). Partial
//! resumable uploads are listed with their progress. When the
//! server holds uploads back (rate limit, quota), the text says so first.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;

use crate::config::Settings;
use crate::paths::Paths;
use crate::shown;
use crate::state::{Failure, Partial, Report, State, StateError, now_ms};

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
        State::open_checked(&db)?.report(limit)?
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
    for line in hold_lines(r, now_ms()) {
        writeln!(out, "Uploads:    {line}")?;
    }
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
    partials(out, &r.partial)?;
    Ok(())
}

/// Resumable uploads under way: path, committed bytes of the length, percent.
fn partials(out: &mut dyn Write, items: &[Partial]) -> std::io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "Partial uploads (resumed from the server's committed offset):"
    )?;
    for p in items {
        writeln!(
            out,
            "  {}
    {} of {} ({}%), as of {}",
            shown::text(&p.path),
            human_bytes(p.offset),
            human_bytes(p.length),
            p.percent(),
            when(Some(p.updated_ms))
        )?;
    }
    Ok(())
}

/// The server's hold on uploads at `now`, in a few words (systemd's STATUS=).
pub fn held_briefly(r: &Report, now: i64) -> Option<&'static str> {
    if r.quota_exceeded_since_ms.is_some() {
        Some("uploads paused (quota_exceeded)")
    } else if r.rate_limited_until_ms.is_some_and(|u| u > now) {
        Some("uploads paused (rate_limited)")
    } else {
        None
    }
}

/// What the server holds back at `now`, one line each (none: uploads go).
fn hold_lines(r: &Report, now: i64) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(until) = r.rate_limited_until_ms.filter(|u| *u > now) {
        lines.push(format!(
            "paused: the server's upload rate limit for this token was reached (rate_limited) \
             since {}; uploads go on in {} s",
            when_at(r.rate_limited_since_ms, now),
            (until - now + 999) / 1000
        ));
    }
    if let Some(since) = r.quota_exceeded_since_ms {
        lines.push(format!(
            "paused: the server says this token's quota is used up (quota_exceeded) since {}; \
             files that do not fit stay queued and are tried again every few minutes",
            when_at(Some(since), now)
        ));
    }
    lines
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

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn holds_are_shown_with_their_code_and_since_when() {
        let mut r = Report::default();
        assert!(hold_lines(&r, NOW).is_empty(), "uploads go");
        r.quota_exceeded_since_ms = Some(NOW - 300_000);
        r.rate_limited_since_ms = Some(NOW - 20_000);
        r.rate_limited_until_ms = Some(NOW + 40_000);
        let lines = hold_lines(&r, NOW);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("(rate_limited) since 2027-01-15 07:59:40 UTC (20 s ago)"),
            "{}",
            lines[0]
        );
        assert!(lines[0].ends_with("uploads go on in 40 s"), "{}", lines[0]);
        assert!(
            lines[1].starts_with(
                "paused: the server says this token's quota is used up (quota_exceeded) since \
                 2027-01-15 07:55:00 UTC (5 min ago)"
            ),
            "{}",
            lines[1]
        );
        r.rate_limited_until_ms = Some(NOW - 1);
        assert_eq!(
            hold_lines(&r, NOW).len(),
            1,
            "a rate limit that is over is not shown"
        );
    }

    #[test]
    fn text_status_escapes_names_and_shows_holds() {
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
            quota_exceeded_since_ms: Some(now_ms()),
            partial: vec![Partial {
                path: "/w/film\u{1b}.mkv".to_owned(),
                offset: 15 << 20,
                length: 60 << 20,
                url: "/v1/uploads/ab".to_owned(),
                updated_ms: now_ms(),
            }],
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
        assert!(
            text.contains("  /w/film\\u{1b}.mkv\n    15.0 MiB of 60.0 MiB (25%), as of "),
            "{text}"
        );
        assert!(text.contains("Watching:   /w/\\u{202e}odd"), "{text}");
        assert!(
            text.contains(
                "Uploads:    paused: the server says this token's quota is used up (quota_exceeded)"
            ),
            "{text}"
        );
        let shown: String = text.lines().collect();
        assert!(
            !shown.chars().any(|c| c != '\\' && shown::needs_escape(c)),
            "{text:?}"
        );
    }
}
