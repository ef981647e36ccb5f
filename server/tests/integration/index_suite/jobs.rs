//! The job queue and what jobs record, on both backends: a new asset gets
//! its metadata job from the index itself, concurrent claimers never share
//! a job, retries wait, failures keep their error, a dead worker's job is
//! put back (or failed when out of attempts), and the job columns feed the
//! listing's filters.

use std::collections::HashSet;

use asset_catalog_proto::{Integrity, Media, MediaKind};
use asset_catalog_server::index::jobs::{JobKind, JobOutcome, RetrySelection};
use asset_catalog_server::index::{Index, ListFilter};
use time::OffsetDateTime;

use super::{Backend, Kind, asset, at, place, sha};

fn count(counts: &[asset_catalog_server::index::jobs::JobCount], kind: &str, state: &str) -> u64 {
    counts
        .iter()
        .filter(|c| c.kind == kind && c.state == state)
        .map(|c| c.count)
        .sum()
}

async fn claim_all(index: Index, owner: String) -> Vec<i64> {
    let mut ids = Vec::new();
    loop {
        let jobs = index
            .claim_jobs(&owner, JobKind::Metadata, 3)
            .await
            .expect("claim");
        if jobs.is_empty() {
            return ids;
        }
        for job in jobs {
            assert_eq!(job.attempts, 1, "a job claimed once");
            ids.push(job.id);
            index
                .end_job(job.id, &owner, JobOutcome::Done)
                .await
                .expect("done");
        }
    }
}

pub async fn job_queue(kind: Kind) {
    let backend = Backend::open(kind).await;
    let index = &backend.index;
    for i in 0..40 {
        let a = asset(i, &format!("f{i}.jpg"), "image/jpeg", i64::from(i));
        index
            .insert(
                a,
                place("laptop", &format!("p/f{i}.jpg"), i64::from(i)),
                100,
            )
            .await
            .expect("insert");
    }
    let counts = index.job_counts().await.expect("counts");
    assert_eq!(count(&counts, "metadata", "queued"), 40, "{counts:?}");
    assert!(
        !index
            .enqueue_job(JobKind::Metadata, &sha(0))
            .await
            .expect("enqueue"),
        "a job of the same kind and hash does not pile up"
    );

    // Four workers drain the queue at once: each job goes to exactly one.
    let workers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(claim_all(index.clone(), format!("worker-{w}"))))
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(
        (all.len(), distinct.len()),
        (40, 40),
        "every job claimed once"
    );
    assert!(index.job_counts().await.expect("counts").is_empty());

    // Retry waits; failure keeps the error; retry puts it back.
    for i in [1, 2, 3] {
        index
            .enqueue_job(JobKind::Thumbnail, &sha(i))
            .await
            .expect("enqueue");
    }
    let jobs = index
        .claim_jobs("w", JobKind::Thumbnail, 10)
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 3);
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let (a, b) = (jobs[0].id, jobs[1].id);
    index
        .end_job(
            a,
            "w",
            JobOutcome::Retry {
                at: later,
                error: "storage down".into(),
            },
        )
        .await
        .expect("retry");
    index
        .end_job(
            b,
            "w",
            JobOutcome::Failed {
                error: "cannot decode: truncated".into(),
            },
        )
        .await
        .expect("fail");
    index
        .end_job(jobs[2].id, "someone-else", JobOutcome::Done)
        .await
        .expect("foreign end");
    assert!(
        index
            .claim_jobs("w", JobKind::Thumbnail, 10)
            .await
            .expect("claim")
            .is_empty(),
        "a retry waits for its time; a failure and a running job are not claimable"
    );
    let failed = index.failed_jobs(10).await.expect("failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error, "cannot decode: truncated");
    assert_eq!(failed[0].attempts, 1);
    let counts = index.job_counts().await.expect("counts");
    assert_eq!(
        count(&counts, "thumbnail", "running"),
        1,
        "another owner cannot end a job: {counts:?}"
    );
    assert_eq!(
        index
            .retry_jobs(RetrySelection::Ids(vec![b]))
            .await
            .expect("retry"),
        1
    );
    let again = index
        .claim_jobs("w2", JobKind::Thumbnail, 10)
        .await
        .expect("claim");
    assert_eq!(
        again.iter().map(|j| (j.id, j.attempts)).collect::<Vec<_>>(),
        [(b, 1)]
    );

    // A worker that stops heartbeating: its job is put back, then fails
    // when out of attempts.
    let stale = OffsetDateTime::now_utc() + time::Duration::seconds(5);
    assert_eq!(
        index.reclaim_jobs(stale, 5).await.expect("reclaim"),
        2,
        "w's and w2's running jobs"
    );
    let back = index
        .claim_jobs("w3", JobKind::Thumbnail, 10)
        .await
        .expect("claim");
    assert_eq!(back.len(), 2);
    assert!(back.iter().all(|j| j.attempts == 2));
    assert_eq!(index.heartbeat_jobs("w3").await.expect("heartbeat"), 2);
    assert_eq!(index.reclaim_jobs(stale, 2).await.expect("reclaim"), 2);
    let failed = index.failed_jobs(10).await.expect("failed");
    assert_eq!(failed.len(), 2);
    assert!(failed[0].error.contains("w3"), "{:?}", failed[0]);
    assert_eq!(
        index
            .retry_jobs(RetrySelection::All)
            .await
            .expect("retry all"),
        2
    );
    let mine = index
        .claim_jobs("w4", JobKind::Thumbnail, 10)
        .await
        .expect("claim");
    assert_eq!(mine.len(), 2);
    assert_eq!(
        index.release_jobs("w4").await.expect("release"),
        2,
        "a stopping server gives its jobs back"
    );
    let counts = index.job_counts().await.expect("counts");
    assert_eq!(
        count(&counts, "thumbnail", "queued"),
        3,
        "the two and the one waiting to retry: {counts:?}"
    );

    // Deleting an asset removes its jobs.
    index.delete(&sha(1), None).await.expect("delete");
    index.delete(&sha(2), None).await.expect("delete");
    let counts = index.job_counts().await.expect("counts");
    assert_eq!(count(&counts, "thumbnail", "queued"), 1, "{counts:?}");

    scrub_schedule(index).await;
    recorded_columns_filter_the_listing(index).await;
}

/// Assets indexed without reading them (as `reindex` does) are due at
/// once; scrubs are queued in batches without duplicates.
async fn scrub_schedule(index: &Index) {
    let now = OffsetDateTime::now_utc();
    assert_eq!(index.scrub_due(now).await.expect("due"), 38);
    assert_eq!(index.enqueue_scrubs(now, 30).await.expect("enqueue"), 30);
    assert_eq!(
        index.enqueue_scrubs(now, 30).await.expect("enqueue"),
        0,
        "the same 30, already queued"
    );
    let jobs = index
        .claim_jobs("s", JobKind::Scrub, 100)
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 30);
    for job in &jobs {
        let before = index
            .record_integrity(&job.sha256, Integrity::Ok, now)
            .await
            .expect("record");
        assert_eq!(before, Some(Integrity::Unverified));
        index
            .end_job(job.id, "s", JobOutcome::Done)
            .await
            .expect("done");
    }
    assert_eq!(index.scrub_due(now).await.expect("due"), 8);
    assert_eq!(index.enqueue_scrubs(now, 30).await.expect("enqueue"), 8);
    assert_eq!(
        index
            .record_integrity(&sha(1), Integrity::Ok, now)
            .await
            .expect("gone"),
        None,
        "a deleted asset records nothing"
    );
}

async fn recorded_columns_filter_the_listing(index: &Index) {
    let taken = OffsetDateTime::from_unix_timestamp(1_600_000_000).expect("time");
    let media = Media {
        kind: MediaKind::Image,
        media_type: "image/jpeg".into(),
        width: Some(4000),
        height: Some(3000),
        taken_at: Some(taken),
        camera_make: Some("Canon".into()),
        orientation: Some(6),
        ..Media::default()
    };
    assert!(index.record_media(&sha(5), &media).await.expect("media"));
    assert!(index.record_thumbnail(&sha(5), "jpg").await.expect("thumb"));
    let audio = Media {
        kind: MediaKind::Audio,
        media_type: "audio/x-wav".into(),
        duration_secs: Some(1.5),
        ..Media::default()
    };
    assert!(index.record_media(&sha(6), &audio).await.expect("media"));
    assert!(index.record_thumbnail(&sha(6), "").await.expect("none"));
    index
        .record_integrity(&sha(7), Integrity::Corrupt, at(100))
        .await
        .expect("corrupt");
    index
        .record_integrity(&sha(8), Integrity::Missing, at(100))
        .await
        .expect("missing");
    let a = index.get(&sha(5)).await.expect("get").expect("there");
    assert_eq!(a.media.as_ref(), Some(&media));
    assert_eq!(a.thumbnail, Some(true));
    assert_eq!(
        index.thumbnail_ext(&sha(5)).await.expect("ext").as_deref(),
        Some("jpg")
    );
    assert_eq!(index.thumbnail_ext(&sha(6)).await.expect("ext"), None);
    let b = index.get(&sha(6)).await.expect("get").expect("there");
    assert_eq!(
        (b.thumbnail, b.media.and_then(|m| m.duration_secs)),
        (Some(false), Some(1.5))
    );
    let list = |filter: ListFilter| async move {
        let page = index
            .list(ListFilter {
                limit: 100,
                ..filter
            })
            .await
            .expect("list");
        let mut hashes: Vec<String> = page.items.iter().map(|a| a.sha256.to_string()).collect();
        hashes.sort();
        hashes
    };
    let hex = |i: u32| sha(i).to_string();
    assert_eq!(
        list(ListFilter {
            kind: Some(MediaKind::Image),
            ..Default::default()
        })
        .await,
        [hex(5)]
    );
    assert_eq!(
        list(ListFilter {
            kind: Some(MediaKind::Audio),
            ..Default::default()
        })
        .await,
        [hex(6)]
    );
    let since = |s: i64| Some(taken + time::Duration::seconds(s));
    assert_eq!(
        list(ListFilter {
            taken_since: since(0),
            ..Default::default()
        })
        .await,
        [hex(5)]
    );
    assert!(
        list(ListFilter {
            taken_since: since(1),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(ListFilter {
            taken_until: since(1),
            ..Default::default()
        })
        .await,
        [hex(5)]
    );
    assert_eq!(
        list(ListFilter {
            integrity: vec![Integrity::Corrupt, Integrity::Missing],
            ..Default::default()
        })
        .await,
        [hex(7), hex(8)]
    );
    let c = index.get(&sha(7)).await.expect("get").expect("there");
    assert_eq!(
        (c.integrity, c.verified_at),
        (Integrity::Corrupt, Some(at(100)))
    );
}
