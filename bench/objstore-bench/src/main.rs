//! `objstore-bench`: what the storage backend can do on its own, without
//! asset-catalog in between (object_store PUTs and multipart uploads), the
//! watcher's hasher on its own, and a HEAD load generator. `bench/run.sh`
//! runs it next to the real daemons so every end-to-end figure has a peer or
//! a limit to be compared with. Each subcommand prints one JSON object.

mod hash;
mod load;
mod s3;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Baselines for the asset-catalog benchmark harness.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// PUT every file under DIR as one object each, CONCURRENCY at a time.
    PutMany {
        #[command(flatten)]
        s3: s3::S3Args,
        /// Directory to upload (recursively).
        #[arg(long)]
        dir: PathBuf,
        /// Object key prefix (keys are PREFIX/relative/path).
        #[arg(long, default_value = "objstore-bench")]
        prefix: String,
        /// PUT requests in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Upload one file with a multipart upload.
    PutMultipart {
        #[command(flatten)]
        s3: s3::S3Args,
        /// The file to upload.
        #[arg(long)]
        file: PathBuf,
        /// Object key.
        #[arg(long, default_value = "objstore-bench/multipart")]
        key: String,
        /// Part size in MiB (S3 needs at least 5 for all parts but the last).
        #[arg(long, default_value_t = 8)]
        part_size_mib: usize,
        /// Parts in flight at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Keep C connections busy with HEAD requests for a while (wrk stand-in).
    HeadLoad {
        #[command(flatten)]
        load: load::LoadArgs,
        /// Worker threads of the load generator.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// SHA-256 the given files with asset-watcher's hasher, THREADS at a time.
    Hash {
        /// Size of the hashing pool (files hashed at once).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Files to hash.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("objstore-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<serde_json::Value> {
    match cli.cmd {
        Cmd::Hash { threads, files } => Ok(hash::hash_files(&files, threads).context("hashing")?),
        Cmd::HeadLoad { load, threads } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            Ok(rt.block_on(load::head_load(&load)).context("HEAD load")?)
        }
        Cmd::PutMany {
            s3,
            dir,
            prefix,
            concurrency,
        } => {
            let rt = runtime()?;
            let store = s3.build().context("configuring the S3 client")?;
            let report = rt.block_on(s3::put_many(&store, &dir, &prefix, concurrency));
            Ok(report.context("uploading")?)
        }
        Cmd::PutMultipart {
            s3,
            file,
            key,
            part_size_mib,
            concurrency,
        } => {
            let rt = runtime()?;
            let store = s3.build().context("configuring the S3 client")?;
            let part = part_size_mib * 1024 * 1024;
            let report = rt.block_on(s3::put_multipart(&store, &file, &key, part, concurrency));
            Ok(report.context("multipart upload")?)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}
