//! Command line: `asset-catalog-server [--config FILE] [COMMAND]` with
//! `serve` (the default), `check-config`, `reindex`, `export-index [FILE]`,
//! `fsck [--repair]`, `token …`, `jobs …`, `scrub [--now]`, and the hidden `generate-docs --out DIR` that writes the man page and
//! shell completions at package build time.

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::DEFAULT_CONFIG_PATH;

const AFTER_HELP: &str = "\
Tokens: `asset-catalog-server token create --name admin --scope admin` prints a new
token once; send it as `Authorization: Bearer <token>`.
Configuration is read from /etc/asset-catalog/server.toml (built-in defaults if it is missing),
then overridden by environment variables ASSET_CATALOG__SECTION__KEY, e.g.
ASSET_CATALOG__SERVER__LISTEN=0.0.0.0:8000 or ASSET_CATALOG__STORAGE__URL=s3://assets.
The S3 secret comes from storage.secret_access_key_file or the systemd credential
named by storage.secret_access_key_credential under $CREDENTIALS_DIRECTORY.
`fsck` exits 0 when the index and the bucket agree (or --repair fixed every problem),
1 when problems remain, 2 when it could not check (configuration, storage or index).";

const FSCK_ABOUT: &str = "\
Compare the index with the bucket and report, one line each: content objects without
a row (unindexed), rows whose object is gone (missing-object), rows naming an object
the bucket lacks while it holds another copy (wrong-key), further copies of one hash
under other extensions (extra-copies), and rows whose size is not their object's
(size-mismatch); then a summary line.

With --repair: unindexed content is indexed from its sidecar or object metadata, as
reindex does; a row without an object is removed (recorded as a deletion); a wrong
key is pointed at the oldest existing copy; extra copies no row names are deleted.
Size mismatches are only reported.

Safe while servers serve: objects without a row that are younger than --grace-secs
are skipped (an upload stores its object before its row), every hash is read again
right before it is reported or repaired, and each repair holds the hash as uploads
and deletes do (with a PostgreSQL index, across all servers).

Exit status: 0 when everything agrees (or was repaired), 1 when problems remain,
2 when it could not check.";

/// Content-addressed asset catalog server.
#[derive(Debug, Parser)]
#[command(name = "asset-catalog-server", version, about, after_long_help = AFTER_HELP)]
pub struct Cli {
    /// Configuration file [default: /etc/asset-catalog/server.toml]
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default)
    Serve(ServeArgs),
    /// Validate the configuration and print every problem, one per line
    CheckConfig,
    /// Rebuild the metadata index from the bucket alone
    Reindex,
    /// Write every asset as one JSON document
    ExportIndex {
        /// Output file; `-` writes to stdout
        #[arg(default_value = "assets_index.json", value_name = "FILE")]
        file: PathBuf,
    },
    /// Compare the index with the bucket; report (or --repair) what disagrees
    #[command(long_about = FSCK_ABOUT)]
    Fsck(FsckArgs),
    /// Create, list and revoke bearer tokens (works while the server runs)
    #[command(subcommand)]
    Token(TokenCommand),
    /// Background jobs: counts, failures, retries (works while servers run)
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Re-read stored content and compare it with its hash
    #[command(long_about = SCRUB_ABOUT)]
    Scrub(ScrubArgs),
    /// Print a one-time link that signs a browser in to the web UI as an administrator
    #[command(long_about = UI_LINK_ABOUT)]
    UiLink {
        /// How browsers reach this server, e.g. https://catalog.example.org
        /// (default: built from [server] listen)
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
    /// Write the man page and shell completions (used when packaging)
    #[command(hide = true)]
    GenerateDocs {
        /// Directory to write into
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// `jobs …`: operates on the index database directly.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Jobs by kind and state, and how many assets are due for scrub
    Status,
    /// Failed jobs with their errors, latest first
    Failed {
        /// Show at most this many
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: usize,
    },
    /// Queue failed jobs again with fresh attempts
    Retry {
        /// Job ids from `jobs failed`
        #[arg(
            value_name = "ID",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        ids: Vec<i64>,
        /// Every failed job
        #[arg(long)]
        all: bool,
    },
}

const SCRUB_ABOUT: &str = "\
Re-read stored content, hash it and compare the hash with the asset's key. What is
found is recorded as the background scrub records it (the asset's integrity and
verification time, shown in the API); nothing is ever deleted or changed in the bucket.

With --now: scrub the named assets (every asset when none is named) here and now,
print one line per asset, and exit 0 when all are whole, 1 when one is corrupt,
missing or unknown, 2 when it could not check. Without --now: queue scrubs of the
named assets for the running servers' jobs.";

const UI_LINK_ABOUT: &str = "\
Print a one-time link that signs a browser in to the web UI as an administrator,
without a token. It works once, for [ui] link_minutes (15), on every server sharing
this index; opening it shows a button that spends it. Anyone holding the link in that
time can use it: pass it on only through a channel you trust.";

/// Options of `scrub`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScrubArgs {
    /// Scrub here and now instead of queueing jobs for the servers
    #[arg(long)]
    pub now: bool,
    /// Read at most this many bytes per second, e.g. 50MiB (with --now; default: unthrottled)
    #[arg(long, value_name = "SIZE", requires = "now")]
    pub rate: Option<bytesize::ByteSize>,
    /// SHA-256 of the assets (with --now, none means every asset)
    #[arg(value_name = "SHA256", required_unless_present = "now")]
    pub hashes: Vec<String>,
}

/// `token …`: operates on the index database directly.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once on stdout (store it now: only its hash is kept)
    Create {
        /// A label for people, e.g. the host or user it is for
        #[arg(long)]
        name: String,
        /// upload, read or admin (admin implies the others); repeat for several
        #[arg(long = "scope", required = true, value_name = "SCOPE")]
        scopes: Vec<crate::auth::Scope>,
        /// Bind the token to this client id: requests naming another client are refused
        #[arg(long, value_name = "ID")]
        client: Option<String>,
        /// Most bytes of new content the token may store, e.g. 500GiB (duplicates are free)
        #[arg(long, value_name = "SIZE")]
        max_bytes: Option<bytesize::ByteSize>,
        /// Most uploads the token may start per minute
        #[arg(long, value_name = "N")]
        rate: Option<u32>,
    },
    /// List tokens: id, name, scopes, limits, created, last used, revoked
    List,
    /// Revoke a token by id (the running server refuses it from the next request)
    Revoke {
        /// The id shown by `token list` (or the token itself)
        id: String,
    },
}

/// Options of `serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Listen on this address instead of the configured one
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// Options of `fsck`.
#[derive(Debug, Clone, clap::Args)]
pub struct FsckArgs {
    /// Fix what can be fixed: index unindexed content, remove rows without an object,
    /// point wrong keys at the existing copy, delete extra copies (size mismatches are
    /// only reported)
    #[arg(long)]
    pub repair: bool,
    /// Leave objects without a row alone while younger than this (seconds)
    #[arg(long, value_name = "N", default_value_t = crate::fsck::DEFAULT_GRACE_SECS)]
    pub grace_secs: u64,
}

impl Cli {
    /// The config file to read, if given explicitly.
    pub fn config_path(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    /// Path shown in messages.
    pub fn config_display(&self) -> String {
        self.config
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_CONFIG_PATH))
            .display()
            .to_string()
    }
}

/// Write `asset-catalog-server.1`, `asset-catalog-server.bash`,
/// `_asset-catalog-server` (zsh) and `asset-catalog-server.fish` into `out`.
pub fn generate_docs(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    use clap_complete::Shell;

    std::fs::create_dir_all(out)?;
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    let mut written = Vec::new();
    let man_path = out.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    std::fs::write(&man_path, page)?;
    written.push(man_path);
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        written.push(clap_complete::generate_to(shell, &mut cmd, &name, out)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn docs_are_generated_with_expected_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = generate_docs(dir.path()).expect("generate");
        let names: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(
            names,
            [
                "asset-catalog-server.1",
                "asset-catalog-server.bash",
                "_asset-catalog-server",
                "asset-catalog-server.fish"
            ]
        );
        let man = std::fs::read_to_string(&files[0]).expect("man page");
        assert!(man.contains("check\\-config"), "subcommands listed");
        assert!(
            !man.contains("generate\\-docs"),
            "hidden command not listed"
        );
    }
}
