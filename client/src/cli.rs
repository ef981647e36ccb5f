//! The command line (clap) and what each subcommand does: `run`, `scan`,
//! `status`, `init`, `check-config`, `check-state`, and the hidden `generate-docs` used at
//! package build time. Errors come back as [`CommandError`]; `main.rs` only
//! prints them and picks the exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    ConfigError, Environment, FileConfig, InitOptions, Settings, write_new_config,
};
use crate::daemon::{Context, DaemonError, ScanOptions};
use crate::paths::{Paths, PathsError};
use crate::status::StatusError;

/// Exit code of `scan` when files are left queued (server unreachable).
pub const EXIT_STILL_QUEUED: u8 = 3;

/// Watches directories and uploads new or changed files to an asset-catalog server.
#[derive(Debug, Parser)]
#[command(
    name = "asset-watcher",
    version,
    about,
    long_about = "Watches directories (inotify, recursively) and uploads every new or changed \
file to an asset-catalog server, once per content: unchanged files are never read again, \
renamed files and duplicates are announced without sending their bytes.\n\n\
Config: $XDG_CONFIG_HOME/asset-watcher/config.toml (see `asset-watcher init`); every key \
can be overridden by an ASSET_WATCHER__<KEY> environment variable. State: \
$XDG_STATE_HOME/asset-watcher/. Logs: journald under systemd, else stderr; set \
ASSET_WATCHER_LOG=debug for more."
)]
pub struct Cli {
    /// Use this config file instead of $XDG_CONFIG_HOME/asset-watcher/config.toml.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the watcher daemon (what the systemd user unit starts).
    Run,
    /// Upload everything new or changed once, then exit (exit code 3 if some files stay queued).
    Scan(ScanArgs),
    /// Show the queue, failures with their reasons, the last sync, and any hold the server puts on uploads (rate limit, quota).
    Status(StatusArgs),
    /// Write a commented config file.
    Init(InitArgs),
    /// Validate the config and show what it resolves to.
    CheckConfig,
    /// Read every page of the state database and check it (every start checks only its headers).
    CheckState,
    /// Write the man page and shell completions (used when building packages).
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Queue files that failed permanently again before scanning.
    #[arg(long)]
    pub retry_failed: bool,
    /// Never draw a progress bar (it is only drawn on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// List at most this many failures.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Server URL to write (default http://127.0.0.1:8000).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Directory to watch; repeat for several.
    #[arg(long, value_name = "DIR")]
    pub watch: Vec<String>,
    /// Client id to write (default: <hostname>-<user>, computed at run time).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// File holding the server token (chmod 600).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<String>,
    /// Replace an existing config file.
    #[arg(long)]
    pub force: bool,
}

/// A subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Paths(#[from] PathsError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Init(#[from] crate::config::InitError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The process environment as (key, value) pairs (non-UTF-8 entries skipped).
pub fn env_pairs() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Load and validate the config; also returns the file used, if any.
pub fn load_settings(paths: &Paths) -> Result<(Settings, Option<PathBuf>), ConfigError> {
    let env = env_pairs();
    let loaded = FileConfig::load(&paths.config_file, &env)?;
    let source = match &loaded.file {
        Some(f) => f.display().to_string(),
        None => format!(
            "the built-in defaults (no file at {})",
            paths.config_file.display()
        ),
    };
    let settings = loaded
        .config
        .validate(&source, &Environment::from_vars(&env, paths))?;
    Ok((settings, loaded.file))
}

/// Run the parsed command line.
pub fn execute(cli: Cli) -> Result<ExitCode, CommandError> {
    let paths = Paths::from_env(cli.config.as_deref())?;
    match cli.command {
        Command::Run => {
            let (settings, config_file) = load_settings(&paths)?;
            crate::daemon::run_daemon(Context {
                settings,
                paths,
                config_file,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan(args) => scan(paths, &args),
        Command::Status(args) => {
            let (settings, _) = load_settings(&paths)?;
            let stdout = std::io::stdout();
            crate::status::print_status(
                &paths,
                &settings,
                args.json,
                args.limit,
                &mut stdout.lock(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Init(args) => init(&paths, args),
        Command::CheckConfig => check_config(&paths),
        Command::CheckState => check_state(&paths),
        Command::GenerateDocs { out } => {
            crate::docs::generate(&out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn scan(paths: Paths, args: &ScanArgs) -> Result<ExitCode, CommandError> {
    let (settings, config_file) = load_settings(&paths)?;
    let opts = ScanOptions {
        retry_failed: args.retry_failed,
        no_progress: args.no_progress,
    };
    let outcome = crate::daemon::run_scan(
        Context {
            settings,
            paths,
            config_file,
        },
        opts,
    )?;
    println!("{outcome}");
    tracing::info!(
        files = outcome.walk.files,
        uploads = outcome.uploads,
        sightings = outcome.sightings,
        bytes_sent = outcome.bytes_sent,
        bytes_hashed = outcome.bytes_hashed,
        "scan finished"
    );
    if outcome.still_queued > 0 {
        eprintln!(
            "asset-watcher: {} files stay queued ({}); `asset-watcher run` or the next scan retries them",
            outcome.still_queued,
            outcome.last_error.as_deref().unwrap_or("server errors")
        );
        return Ok(ExitCode::from(EXIT_STILL_QUEUED));
    }
    Ok(ExitCode::SUCCESS)
}

fn init(paths: &Paths, args: InitArgs) -> Result<ExitCode, CommandError> {
    let opts = InitOptions {
        server: args.server,
        watch: args.watch,
        client_id: args.client_id,
        token_file: args.token_file,
        force: args.force,
    };
    write_new_config(&paths.config_file, &opts)?;
    println!("wrote {}", paths.config_file.display());
    if let Err(e) = load_settings(paths) {
        eprintln!("asset-watcher: the new config needs attention:\n{e}");
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "check it with `asset-watcher check-config`, then start `systemctl --user enable --now asset-watcher`"
    );
    Ok(ExitCode::SUCCESS)
}

fn check_state(paths: &Paths) -> Result<ExitCode, CommandError> {
    let db = paths.state_db();
    if !db.exists() {
        println!(
            "no state yet: {} (the first start creates it)",
            db.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    crate::state::State::open_checked(&db)?.check_integrity(&db)?;
    println!("state OK: {}", db.display());
    Ok(ExitCode::SUCCESS)
}

fn check_config(paths: &Paths) -> Result<ExitCode, CommandError> {
    let (s, file) = load_settings(paths)?;
    let mut out = std::io::stdout().lock();
    match &file {
        Some(f) => writeln!(out, "config OK: {}", f.display())?,
        None => writeln!(
            out,
            "config OK: no file at {}, using the defaults",
            paths.config_file.display()
        )?,
    }
    writeln!(out, "server:      {}", s.server)?;
    writeln!(out, "client id:   {}", s.client_id)?;
    writeln!(
        out,
        "token:       {}",
        if s.token.is_some() { "set" } else { "not set" }
    )?;
    if s.roots.is_empty() {
        writeln!(
            out,
            "watch:       nothing (add `watch = [\"~/Pictures\"]` or run `asset-watcher init --watch DIR`)"
        )?;
    }
    for r in &s.roots {
        let exists = if r.path.is_dir() {
            ""
        } else {
            "  (does not exist yet)"
        };
        writeln!(
            out,
            "watch:       {} as {:?}{exists}",
            r.path.display(),
            r.label
        )?;
    }
    writeln!(
        out,
        "quiet:       {} ms; uploads {} at a time (and {} small files); {} hash workers",
        s.quiet_period.as_millis(),
        s.upload_concurrency,
        s.small_upload_concurrency,
        s.hash_workers
    )?;
    writeln!(
        out,
        "resumable:   files of {} bytes or more",
        s.resumable_threshold
    )?;
    writeln!(out, "state:       {}", paths.state_dir.display())?;
    writeln!(out, "cache:       {}", paths.cache_dir.display())?;
    Ok(ExitCode::SUCCESS)
}
