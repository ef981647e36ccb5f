//! `asset-catalog-server fsck [--repair]`: compare the index with the
//! bucket, report every disagreement, and with `--repair` fix what can be
//! fixed. Per hash it finds ([`Problem`]):
//!
//! - `unindexed`: content objects without a row. Repair: adopt the content
//!   into the index, described by its sidecar or object attribute as
//!   `reindex` would (else from its key, size and time), and delete its
//!   other copies;
//! - `missing-object`: a row whose object is gone, no other copy left.
//!   Repair: remove the row through the index's delete, so the removal is
//!   recorded among the deletions (without a token);
//! - `wrong-key`: a row naming an object the bucket lacks while it has other
//!   copies of the hash. Repair: point the row at the oldest copy (of the
//!   row's size, if one is) and delete the other copies;
//! - `extra-copies`: besides the row's object, more copies of the hash under
//!   other extensions. Repair: delete them;
//! - `size-mismatch`: the row's size is not its object's. Only reported:
//!   deleting cannot tell which one is right.
//!
//! The staged parts of resumable uploads in progress (`uploads/<id>/…`, in
//! the file store: see `storage::resumable`) are neither content nor
//! foreign: they are counted as uploads in progress and left alone, for the
//! upload's completion or abort to remove.
//!
//! # Safe while servers serve
//!
//! - An upload PUTs its object and then inserts its row. Objects no row
//!   points to that were modified within the grace period (`--grace-secs`,
//!   default [`DEFAULT_GRACE_SECS`]) are only counted ("recent, skipped"),
//!   never adopted or deleted.
//! - The listing and the index walk are not one snapshot, so every hash
//!   that looks wrong is looked at again right before it is reported or
//!   repaired: its row re-read, each of its objects HEADed. An upload or a
//!   delete that finished meanwhile is neither reported nor undone
//!   ("settled meanwhile").
//! - With `--repair` that second look and the repair run under
//!   `Index::claim(sha, Purpose::Other)` (waiting up to 30 s). With
//!   PostgreSQL that is the lease every server takes to upload or delete the
//!   hash, so nothing changes it in between; a hash another server holds
//!   all along is left and reported busy. With SQLite the claim is local to
//!   this process and the serving process's hash locks do not reach it: the
//!   second look is the guard there, and each extra copy is checked once
//!   more (no row names it, still old) right before it is deleted.
//! - A bucket with no content at all while the index lists assets is taken
//!   for a wrong storage URL or an unmounted directory (the file store
//!   creates a missing directory): `--repair` refuses to run
//!   ([`FsckError::EmptyBucket`]) rather than remove every row.
//!
//! # Memory
//!
//! The bucket listing is held as a map hash → objects: a few hundred bytes
//! an object, so a few hundred megabytes per million objects. The index is
//! walked in hash order, [`PAGE`] rows at a time, and never held whole.

pub mod diagnose;
mod repair;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use asset_catalog_proto::Sha256Hex;
use object_store::ObjectMeta;

pub use diagnose::{Problem, Row};

use crate::Config;
use crate::admin::{Listing, list_bucket};
use crate::index::{Claim, Index, IndexError, Purpose};
use crate::storage::keys::{self, KeyKind};
use crate::storage::{Storage, StorageError};
use diagnose::diagnose;
use repair::{Fix, Fixer};

/// Default `--grace-secs`: objects without a row younger than this are left alone.
pub const DEFAULT_GRACE_SECS: u64 = 900;
/// Index rows read per round trip.
pub const PAGE: usize = 1000;
/// How long a repair waits for another server's hold on the hash.
const CLAIM_WAIT: Duration = Duration::from_secs(30);

/// Why `fsck` could not check.
#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(
        "{storage} holds no content while the index lists assets: is the storage URL right and the storage mounted? \
         --repair would remove every row, so it does nothing; run fsck without --repair to see the report"
    )]
    EmptyBucket { storage: String },
}

/// How `fsck` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsckOptions {
    /// Fix what can be fixed (else only report).
    pub repair: bool,
    /// Objects no row points to, modified this recently, are left alone.
    pub grace: Duration,
}

impl Default for FsckOptions {
    fn default() -> Self {
        Self {
            repair: false,
            grace: Duration::from_secs(DEFAULT_GRACE_SECS),
        }
    }
}

/// What became of one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Reported only: no `--repair`, or a size mismatch (never repaired).
    Reported,
    /// Fixed; what was done.
    Repaired(String),
    /// Another server held the hash for the whole wait: left as it is.
    Busy,
}

/// One problem of one hash, as confirmed by the second look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub sha256: Sha256Hex,
    pub problem: Problem,
    pub outcome: Outcome,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, sha) = (self.problem.kind(), &self.sha256);
        write!(f, "{kind:<14} {sha} {}", self.problem)?;
        match &self.outcome {
            Outcome::Reported => Ok(()),
            Outcome::Repaired(what) => write!(f, " => repaired: {what}"),
            Outcome::Busy => write!(f, " => not repaired: another server held the hash"),
        }
    }
}

/// What `fsck` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// One per problem, in hash order (rows first, then unindexed content).
    pub findings: Vec<Finding>,
    /// Index rows walked.
    pub rows: u64,
    /// Content objects listed.
    pub objects: u64,
    /// Objects without a row inside the grace period, skipped.
    pub recent: u64,
    /// Hashes that looked wrong but were right on the second look.
    pub settled: u64,
    /// Keys this server did not write (ignored).
    pub foreign: u64,
    /// Resumable uploads in progress with parts staged in the bucket (the
    /// file store's): not content yet, left alone.
    pub uploads: u64,
}

impl FsckReport {
    /// Nothing is left to fix: no findings, or all of them repaired.
    pub fn clean(&self) -> bool {
        self.findings
            .iter()
            .all(|f| matches!(f.outcome, Outcome::Repaired(_)))
    }

    /// The closing line of the report: counts of everything.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = diagnose::KINDS
            .iter()
            .map(|kind| {
                let n = self.findings.iter().filter(|f| f.problem.kind() == *kind);
                format!("{} {kind}", n.count())
            })
            .collect();
        let count = |outcome: fn(&Outcome) -> bool| {
            self.findings.iter().filter(|f| outcome(&f.outcome)).count()
        };
        let repaired = count(|o| matches!(o, Outcome::Repaired(_)));
        let busy = count(|o| *o == Outcome::Busy);
        let verdict = match (self.findings.is_empty(), self.clean()) {
            (true, _) => "clean",
            (false, true) => "repaired",
            (false, false) => "problems remain",
        };
        format!(
            "{verdict}: {} index rows, {} objects; {} problems ({}), {repaired} repaired, {} remaining; \
             {} recent objects skipped, {} busy, {} settled meanwhile, {} foreign keys ignored, \
             {} resumable uploads in progress left alone",
            self.rows,
            self.objects,
            self.findings.len(),
            kinds.join(", "),
            self.findings.len() - repaired,
            self.recent,
            busy,
            self.settled,
            self.foreign,
            self.uploads
        )
    }
}

/// `asset-catalog-server fsck`: open the bucket and the index `config`
/// names, then [`fsck_with`].
pub async fn fsck(config: &Config, options: FsckOptions) -> Result<FsckReport, FsckError> {
    let storage = Storage::open(config)?;
    storage.probe().await?;
    let index = Index::open_tool(config).await?;
    let report = fsck_with(&storage, &index, options).await;
    index.finish_tool()?;
    report
}

/// Compare `index` with `storage`: the bucket listed once, then the index
/// walked in hash order, then the content no row named.
#[tracing::instrument(skip_all, err, fields(repair = options.repair))]
pub async fn fsck_with(
    storage: &Storage,
    index: &Index,
    options: FsckOptions,
) -> Result<FsckReport, FsckError> {
    let Listing {
        mut objects,
        sidecars,
        thumbnails: _,
        foreign,
        uploads,
    } = list_bucket(storage).await?;
    let listed = objects.values().map(|v| v.len() as u64).sum();
    if options.repair && listed == 0 && !index.key_page(None, 1).await?.is_empty() {
        return Err(FsckError::EmptyBucket {
            storage: storage.describe(),
        });
    }
    tracing::info!(objects = listed, storage = %storage.describe(), index = %index.describe(), "bucket listed; walking the index");
    let report = FsckReport {
        objects: listed,
        foreign,
        uploads: uploads.len() as u64,
        ..FsckReport::default()
    };
    let mut run = Run {
        storage,
        index,
        options,
        sidecars,
        report,
    };
    run.walk_index(&mut objects).await?;
    for (sha, listed) in objects {
        run.check(sha, None, listed).await?;
    }
    tracing::info!("{}", run.report.summary());
    Ok(run.report)
}

/// Objects modified after this, with no row naming them, are left alone.
fn cutoff(grace: Duration) -> SystemTime {
    SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn key_of(meta: &ObjectMeta) -> String {
    meta.location.to_string()
}

/// One run's handles and what it found so far.
struct Run<'a> {
    storage: &'a Storage,
    index: &'a Index,
    options: FsckOptions,
    sidecars: BTreeSet<Sha256Hex>,
    report: FsckReport,
}

impl Run<'_> {
    /// Check every index row against its objects, taken out of `objects`
    /// (which is left with the content no row names).
    async fn walk_index(
        &mut self,
        objects: &mut BTreeMap<Sha256Hex, Vec<ObjectMeta>>,
    ) -> Result<(), FsckError> {
        let mut after = None;
        loop {
            let page = self.index.key_page(after.take(), PAGE).await?;
            let more = page.len() == PAGE;
            after = page.last().map(|r| r.sha256.clone());
            for row in page {
                self.report.rows += 1;
                let listed = objects.remove(&row.sha256).unwrap_or_default();
                let seen = Row {
                    key: row.key,
                    size: row.size,
                };
                self.check(row.sha256, Some(seen), listed).await?;
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// Check one hash: its row as the walk saw it and its listed objects;
    /// a hash that looks wrong is looked at again (under its claim when
    /// repairing) before anything is reported or done.
    async fn check(
        &mut self,
        sha: Sha256Hex,
        row: Option<Row>,
        listed: Vec<ObjectMeta>,
    ) -> Result<(), FsckError> {
        let first = diagnose(row.as_ref(), &listed, cutoff(self.options.grace));
        if first.problems.is_empty() {
            self.report.recent += first.recent;
            return Ok(());
        }
        let claim = if self.options.repair {
            Some(self.index.claim(&sha, Purpose::Other, CLAIM_WAIT).await?)
        } else {
            None
        };
        let busy = matches!(claim, Some(Claim::Busy));
        let mut keys: Vec<String> = listed.iter().map(key_of).collect();
        keys.extend(row.map(|r| r.key));
        let (row, objects) = self.look_again(&sha, keys).await?;
        let second = diagnose(row.as_ref(), &objects, cutoff(self.options.grace));
        self.report.recent += second.recent;
        self.report.settled += u64::from(second.problems.is_empty());
        for problem in second.problems {
            self.settle(&sha, problem, &objects, busy).await?;
        }
        drop(claim);
        Ok(())
    }

    /// The row of `sha` and those of `keys` that are its objects, read now.
    async fn look_again(
        &self,
        sha: &Sha256Hex,
        mut keys: Vec<String>,
    ) -> Result<(Option<Row>, Vec<ObjectMeta>), FsckError> {
        let row = self.index.get(sha).await?.map(|a| Row {
            key: a.key,
            size: a.size,
        });
        keys.extend(row.iter().map(|r| r.key.clone()));
        keys.sort();
        keys.dedup();
        let mut objects = Vec::new();
        for key in keys {
            if keys::classify(&key) == KeyKind::Data(sha.clone()) {
                objects.extend(repair::head(self.storage, &key).await?);
            }
        }
        objects.sort_by_key(|m| m.last_modified);
        Ok((row, objects))
    }

    /// Report `problem`, repairing it first when asked to and possible.
    async fn settle(
        &mut self,
        sha: &Sha256Hex,
        problem: Problem,
        objects: &[ObjectMeta],
        busy: bool,
    ) -> Result<(), FsckError> {
        let fix = match (self.options.repair, busy) {
            (false, _) => Fix::Left,
            (true, true) => Fix::Busy,
            (true, false) => self.fixer().repair(sha, &problem, objects).await?,
        };
        let outcome = match fix {
            Fix::Left => Outcome::Reported,
            Fix::Busy => Outcome::Busy,
            Fix::Done(what) => Outcome::Repaired(what),
            Fix::Settled => {
                self.report.settled += 1;
                return Ok(());
            }
        };
        let finding = Finding {
            sha256: sha.clone(),
            problem,
            outcome,
        };
        match finding.outcome {
            Outcome::Repaired(_) => tracing::info!(asset.sha256 = %sha, "{finding}"),
            _ => tracing::warn!(asset.sha256 = %sha, "{finding}"),
        }
        self.report.findings.push(finding);
        Ok(())
    }

    fn fixer(&self) -> Fixer<'_> {
        Fixer {
            storage: self.storage,
            index: self.index,
            sidecars: &self.sidecars,
            grace: self.options.grace,
        }
    }
}
