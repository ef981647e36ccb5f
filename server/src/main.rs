//! `asset-catalog-server`: parse the command line, load the configuration,
//! set up logging, run the command from the library, map the outcome to an
//! exit code (0 success, 1 failure or configuration problems, 2 usage;
//! `fsck`: 0 clean, 1 problems remain, 2 it could not check).

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result};
use asset_catalog_server::cli::{
    self, Cli, Command, FsckArgs, JobsCommand, ScrubArgs, ServeArgs, TokenCommand,
};
use asset_catalog_server::config::{Config, ConfigSource, DEFAULT_CONFIG_PATH};
use asset_catalog_server::fsck::{FsckOptions, FsckReport};
use asset_catalog_server::{admin, fsck, logging, token_admin};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::GenerateDocs { ref out }) => generate_docs(out),
        Some(Command::UiLink { ref base_url }) => ui_link(&cli, base_url.as_deref()),
        Some(Command::CheckConfig) => return check_config(&cli),
        Some(Command::Reindex) => reindex(&cli),
        Some(Command::ExportIndex { ref file }) => export_index(&cli, file),
        Some(Command::Fsck(ref args)) => return fsck(&cli, args),
        Some(Command::Token(ref command)) => token(&cli, command),
        Some(Command::Jobs(ref command)) => jobs(&cli, command),
        Some(Command::Scrub(ref args)) => return scrub(&cli, args),
        Some(Command::Serve(ref args)) => serve(&cli, args),
        None => serve(&cli, &ServeArgs::default()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Log `e` once logging is set up, else print it to stderr.
fn report_error(e: &anyhow::Error) {
    if tracing::dispatcher::has_been_set() {
        tracing::error!("{e:#}");
    } else {
        eprintln!("asset-catalog-server: {e:#}");
    }
}

/// Load the configuration, or print every problem (one per line) and fail.
fn load(cli: &Cli) -> Result<(Config, ConfigSource)> {
    Config::load_from_process(cli.config_path()).map_err(|e| {
        for problem in &e.problems {
            eprintln!("{problem}");
        }
        anyhow::anyhow!(
            "{} configuration problem(s) in {}",
            e.problems.len(),
            cli.config_display()
        )
    })
}

fn check_config(cli: &Cli) -> ExitCode {
    match load(cli) {
        Ok((config, source)) => {
            let origin = match source {
                ConfigSource::File(path) => path.display().to_string(),
                ConfigSource::Defaults => {
                    format!("built-in defaults ({DEFAULT_CONFIG_PATH} not found)")
                }
            };
            println!("configuration OK: {origin}: {}", config.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("asset-catalog-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: &Cli, args: &ServeArgs) -> Result<()> {
    let (mut config, source) = load(cli)?;
    if let Some(listen) = &args.listen {
        config.server.listen = listen.clone();
    }
    let addr: SocketAddr = config
        .server
        .listen
        .parse()
        .with_context(|| format!("--listen {:?} is not IP:PORT", config.server.listen))?;
    let target = logging::init(&config.log.level)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), log = ?target, "starting asset-catalog-server");
    match source {
        ConfigSource::File(path) => {
            tracing::info!(config = %path.display(), "{}", config.summary())
        }
        ConfigSource::Defaults => tracing::info!(
            "no configuration file at {DEFAULT_CONFIG_PATH}; using built-in defaults: {}",
            config.summary()
        ),
    }
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        };
        asset_catalog_server::run(config, listener, shutdown)
            .await
            .map_err(anyhow::Error::from)
    })
}

fn reindex(cli: &Cli) -> Result<()> {
    let (config, _) = load(cli)?;
    logging::init(&config.log.level)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(admin::reindex(&config))?;
    if let Some(aside) = &report.moved_aside {
        println!("moved the unreadable index to {}", aside.display());
    }
    println!(
        "reindexed {} assets into {} ({} with their stored description, {} duplicate copies, {} thumbnails kept, {} foreign keys ignored, {} resumable uploads in progress left alone)",
        report.assets,
        config.index_path().display(),
        report.described,
        report.duplicates,
        report.thumbnails,
        report.foreign,
        report.uploads
    );
    Ok(())
}

fn export_index(cli: &Cli, file: &std::path::Path) -> Result<()> {
    let (config, _) = load(cli)?;
    logging::init(&config.log.level)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let count = runtime.block_on(admin::export_index(&config, file))?;
    if file != std::path::Path::new("-") {
        println!("exported {count} assets to {}", file.display());
    }
    Ok(())
}

/// `fsck`: the report on stdout; 0 clean (or all repaired), 1 problems
/// remain, 2 it could not check (configuration, storage, index).
fn fsck(cli: &Cli, args: &FsckArgs) -> ExitCode {
    match run_fsck(cli, args) {
        Ok(report) => {
            for finding in &report.findings {
                println!("{finding}");
            }
            println!("{}", report.summary());
            if report.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            report_error(&e);
            ExitCode::from(2)
        }
    }
}

fn run_fsck(cli: &Cli, args: &FsckArgs) -> Result<FsckReport> {
    let (config, _) = load(cli)?;
    logging::init(&config.log.level)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let options = FsckOptions {
        repair: args.repair,
        grace: std::time::Duration::from_secs(args.grace_secs),
    };
    Ok(runtime.block_on(fsck::fsck(&config, options))?)
}

fn token(cli: &Cli, command: &TokenCommand) -> Result<()> {
    use asset_catalog_server::auth::Scopes;
    use asset_catalog_server::index::TokenLimits;
    let (config, _) = load(cli)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let fmt_time = rfc3339;
    match command {
        TokenCommand::Create {
            name,
            scopes,
            client,
            max_bytes,
            rate,
        } => {
            let scopes = Scopes::new(scopes.clone());
            let limits = TokenLimits {
                client: client.clone(),
                max_bytes: max_bytes.map(|b| b.as_u64()),
                rate_per_min: *rate,
            };
            let token = runtime.block_on(token_admin::create(&config, name, &scopes, &limits))?;
            eprintln!(
                "created token {} ({name}, scopes {scopes}, {}); it is shown only now, store it safely:",
                token.id,
                token_admin::describe_limits(&limits, None)
            );
            println!("{}", token.text);
        }
        TokenCommand::List => {
            let rows = runtime.block_on(token_admin::list(&config))?;
            println!(
                "{:<12}  {:<20}  {:<18}  {:<36}  {:<20}  {:<20}  REVOKED",
                "ID", "NAME", "SCOPES", "LIMITS", "CREATED", "LAST USED"
            );
            for r in rows {
                println!(
                    "{:<12}  {:<20}  {:<18}  {:<36}  {:<20}  {:<20}  {}",
                    r.id,
                    r.name,
                    r.scopes.to_string(),
                    token_admin::describe_limits(&r.limits, Some(r.stored_bytes)),
                    fmt_time(r.created),
                    r.last_used.map(fmt_time).unwrap_or_else(|| "never".into()),
                    r.revoked.map(fmt_time).unwrap_or_else(|| "-".into())
                );
            }
        }
        TokenCommand::Revoke { id } => {
            runtime.block_on(token_admin::revoke(&config, id))?;
            let id = asset_catalog_server::auth::Presented::parse(id).map_or(id.as_str(), |p| p.id);
            println!("revoked {id}");
        }
    }
    Ok(())
}

fn ui_link(cli: &Cli, base_url: Option<&str>) -> Result<()> {
    let (config, _) = load(cli)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let secret = runtime.block_on(token_admin::ui_link(&config))?;
    let base = match base_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => token_admin::base_url(&config),
    };
    eprintln!(
        "open this within {} minutes; it signs one browser in as an administrator, once:",
        config.ui.link_minutes
    );
    println!("{base}/ui/sign-in/link?link={secret}");
    Ok(())
}

fn jobs(cli: &Cli, command: &JobsCommand) -> Result<()> {
    use asset_catalog_server::index::jobs::RetrySelection;
    use asset_catalog_server::jobs::admin;
    let (config, _) = load(cli)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match command {
        JobsCommand::Status => {
            let (counts, due) = runtime.block_on(admin::status(&config))?;
            println!("{:<10}  {:<8}  {:>10}  OLDEST", "KIND", "STATE", "JOBS");
            for c in &counts {
                println!(
                    "{:<10}  {:<8}  {:>10}  {}",
                    c.kind,
                    c.state,
                    c.count,
                    rfc3339(c.oldest)
                );
            }
            println!("{}", asset_catalog_server::jobs::backlog(&counts, due));
        }
        JobsCommand::Failed { limit } => {
            let failed = runtime.block_on(admin::failed(&config, *limit))?;
            if failed.is_empty() {
                println!("no failed jobs");
            }
            for f in failed {
                println!(
                    "{}  {}  {}  failed {} after {} attempts: {}",
                    f.id,
                    f.kind,
                    f.sha256,
                    rfc3339(f.failed_at),
                    f.attempts,
                    f.error
                );
            }
        }
        JobsCommand::Retry { ids, all } => {
            let which = if *all {
                RetrySelection::All
            } else {
                RetrySelection::Ids(ids.clone())
            };
            let n = runtime.block_on(admin::retry(&config, which))?;
            println!("queued {n} failed jobs again");
        }
    }
    Ok(())
}

/// `scrub`: with `--now` 0 when every asset is whole, 1 when one is not
/// (or unknown), 2 when it could not check.
fn scrub(cli: &Cli, args: &ScrubArgs) -> ExitCode {
    match run_scrub(cli, args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            report_error(&e);
            ExitCode::from(2)
        }
    }
}

fn run_scrub(cli: &Cli, args: &ScrubArgs) -> Result<bool> {
    use asset_catalog_server::jobs::admin;
    let (config, _) = load(cli)?;
    let hashes = args
        .hashes
        .iter()
        .map(|h| h.parse().map_err(|e| anyhow::anyhow!("{h:?}: {e}")))
        .collect::<Result<Vec<asset_catalog_proto::Sha256Hex>>>()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    if !args.now {
        let n = runtime.block_on(admin::queue_scrubs(&config, hashes.clone()))?;
        println!(
            "queued {n} scrubs ({} were queued already); the servers' jobs run them",
            hashes.len() as u64 - n
        );
        return Ok(true);
    }
    let rate = args.rate.map_or(0, |r| r.as_u64());
    let report = runtime.block_on(admin::scrub_now(&config, hashes, rate, |sha, found| {
        let what = found.map_or("unknown: not in the index", |i| i.as_str());
        println!("{sha}  {what}");
    }))?;
    println!(
        "{}: {} checked, {} ok, {} corrupt, {} missing, {} unknown",
        if report.clean() {
            "clean"
        } else {
            "problems found"
        },
        report.checked,
        report.ok,
        report.corrupt.len(),
        report.missing.len(),
        report.unknown.len()
    );
    Ok(report.clean())
}

/// A time as RFC 3339, to the second.
fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn generate_docs(out: &std::path::Path) -> Result<()> {
    for path in
        cli::generate_docs(out).with_context(|| format!("writing docs to {}", out.display()))?
    {
        println!("{}", path.display());
    }
    Ok(())
}
