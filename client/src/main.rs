//! `asset-watcher` binary: parse the command line, set up logging, run the
//! command, map the result to an exit code.

use std::process::ExitCode;

use asset_watcher::cli::{Cli, Command, execute};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.command {
        Command::Run | Command::Scan(_) => "info",
        _ => "warn",
    };
    asset_watcher::logging::init(level);
    match execute(cli).map_err(anyhow::Error::from) {
        Ok(code) => code,
        Err(e) => {
            if asset_watcher::logging::stderr_is_journal() {
                tracing::error!("{e:#}");
            } else {
                eprintln!("asset-watcher: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
