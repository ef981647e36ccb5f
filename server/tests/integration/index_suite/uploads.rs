//! Resumable upload sessions (tus, issue 16) on both backends: a session
//! reads back as created, advances part by part with a compare-and-set on
//! its offset (a stale offset changes nothing; of four tasks advancing from
//! the same offset exactly one wins), never past its length, ends once with
//! every part, and is listed as expired and counted in the totals.

use asset_catalog_server::index::{Index, NewUpload, StoredPart, UploadRow};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{Backend, Kind, sha};

fn new_upload(id: &str, i: u32, length: u64, created: OffsetDateTime) -> NewUpload {
    NewUpload {
        id: id.into(),
        token_id: Some(format!("token-{i}")),
        sha256: sha(i),
        length,
        name: format!("{i}.mov"),
        path: Some(format!("Videos/{i}.mov")),
        mtime: Some("2030-05-31T08:00:00+02:00".into()),
        client: "laptop".into(),
        key: format!("{}.mov", sha(i)),
        multipart_id: format!("multipart-{i}"),
        hash_state: vec![i as u8; 104],
        created,
        expires: created + Duration::days(1),
    }
}

/// What reading `new` back gives before any part.
fn as_row(new: &NewUpload) -> UploadRow {
    UploadRow {
        id: new.id.clone(),
        token_id: new.token_id.clone(),
        sha256: new.sha256.clone(),
        length: new.length,
        name: new.name.clone(),
        path: new.path.clone(),
        mtime: new.mtime.clone(),
        client: new.client.clone(),
        key: new.key.clone(),
        multipart_id: new.multipart_id.clone(),
        hash_state: new.hash_state.clone(),
        created: new.created,
        expires: new.expires,
        offset: 0,
        parts: Vec::new(),
        updated: new.created,
    }
}

fn part(number: u32) -> StoredPart {
    StoredPart {
        number,
        id: format!("\"etag-{number}\""),
    }
}

pub async fn uploads(kind: Kind) {
    let backend = Backend::open(kind).await;
    let index = &backend.index;
    let now = datetime!(2030-06-01 12:00:00.123456789 UTC);
    const MIB: u64 = 1 << 20;

    // Every field reads back, also the empty and absent ones.
    let new = new_upload("u-a", 1, 20 * MIB, now);
    index.create_upload(&new).await.expect("create");
    let mut expected = as_row(&new);
    assert_eq!(
        index.upload("u-a").await.expect("read"),
        Some(expected.clone())
    );
    assert_eq!(index.upload("u-none").await.expect("read"), None);
    let bare = NewUpload {
        token_id: None,
        path: None,
        mtime: None,
        hash_state: Vec::new(),
        ..new_upload("u-bare", 2, 0, now)
    };
    index.create_upload(&bare).await.expect("create bare");
    assert_eq!(
        index.upload("u-bare").await.expect("read"),
        Some(as_row(&bare))
    );
    assert!(
        index.create_upload(&new).await.is_err(),
        "an id is used once"
    );

    // Three parts: 5 + 5 + 10 MiB, each with the hash state after it.
    let steps = [(0, 5 * MIB), (5 * MIB, 5 * MIB), (10 * MIB, 10 * MIB)];
    for (n, (from, len)) in (1..).zip(steps) {
        let state = vec![n as u8 + 100; 104];
        let at = now + Duration::seconds(i64::from(n));
        let advanced = index
            .advance_upload("u-a", from, &part(n), len, &state, at)
            .await
            .expect("advance");
        assert!(advanced, "part {n}");
        (expected.offset, expected.hash_state, expected.updated) = (from + len, state, at);
        expected.parts.push(part(n));
    }
    assert_eq!(
        index.upload("u-a").await.expect("read"),
        Some(expected.clone())
    );
    assert_eq!(expected.offset, 20 * MIB);

    // A stale offset changes nothing, as does an unknown session.
    let late = now + Duration::minutes(5);
    for from in [0, 10 * MIB, 21 * MIB] {
        assert!(
            !index
                .advance_upload("u-a", from, &part(9), MIB, &[9], late)
                .await
                .expect("stale"),
            "from {from}"
        );
    }
    assert!(
        !index
            .advance_upload("u-none", 0, &part(1), MIB, &[9], late)
            .await
            .expect("unknown")
    );
    assert_eq!(
        index.upload("u-a").await.expect("read"),
        Some(expected.clone())
    );

    // Never past the length, never a part number twice: errors, and nothing changes.
    let racy = new_upload("u-race", 3, 8 * MIB, now);
    index.create_upload(&racy).await.expect("create");
    let past = index
        .advance_upload("u-race", 0, &part(1), 8 * MIB + 1, &[1], late)
        .await;
    assert!(past.is_err(), "past the length: {past:?}");
    assert!(
        index
            .advance_upload("u-race", 0, &part(1), 4 * MIB, &[1], late)
            .await
            .expect("first half")
    );
    let again = index
        .advance_upload("u-race", 4 * MIB, &part(1), 4 * MIB, &[2], late)
        .await;
    assert!(again.is_err(), "part 1 twice: {again:?}");
    let half = index.upload("u-race").await.expect("read").expect("row");
    assert_eq!(
        (half.offset, half.parts, half.hash_state),
        (4 * MIB, vec![part(1)], vec![1])
    );

    // Four servers advancing from the same offset: exactly one wins.
    let tasks: Vec<_> = (0..4u8)
        .map(|t| {
            let index = index.clone();
            tokio::spawn(async move {
                let part = StoredPart {
                    number: 2,
                    id: format!("task-{t}"),
                };
                let won = index
                    .advance_upload("u-race", 4 * MIB, &part, 4 * MIB, &[t], late)
                    .await
                    .expect("advance");
                (t, won)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (t, won) = task.await.expect("task");
        if won {
            winners.push(t);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of four: {winners:?}");
    let won = index.upload("u-race").await.expect("read").expect("row");
    assert_eq!(won.offset, 8 * MIB);
    assert_eq!(won.hash_state, vec![winners[0]], "the winner's state");
    assert_eq!(
        won.parts[1].id,
        format!("task-{}", winners[0]),
        "the winner's part"
    );

    totals_and_expiry(index, now).await;

    // Ending returns the row as it was, once.
    assert_eq!(index.end_upload("u-a").await.expect("end"), Some(expected));
    assert_eq!(index.end_upload("u-a").await.expect("again"), None);
    assert_eq!(index.upload("u-a").await.expect("read"), None);
    assert!(
        !index
            .advance_upload("u-a", 20 * MIB, &part(4), 0, &[], late)
            .await
            .expect("ended"),
        "an ended session does not advance"
    );
    assert_eq!(index.end_upload("u-race").await.expect("end"), Some(won));
    assert_eq!(index.upload_totals().await.expect("totals"), (1, 0));
}

/// Totals, and the expired sessions oldest first, at most `limit`.
async fn totals_and_expiry(index: &Index, now: OffsetDateTime) {
    let mib = 1 << 20;
    // u-a at 20 MiB, u-bare at 0, u-race at 8 MiB.
    assert_eq!(index.upload_totals().await.expect("totals"), (3, 28 * mib));
    let day = Duration::days(1);
    assert!(
        index
            .expired_uploads(now + day - Duration::nanoseconds(1), 10)
            .await
            .expect("none yet")
            .is_empty()
    );
    let mut old = new_upload("u-old", 4, mib, now - day);
    old.expires = now - Duration::hours(1);
    index.create_upload(&old).await.expect("create");
    assert!(
        index
            .advance_upload("u-old", 0, &part(1), mib, &[4], now - day)
            .await
            .expect("advance")
    );
    let older = NewUpload {
        expires: now - Duration::hours(2),
        ..new_upload("u-older", 5, mib, now - day)
    };
    index.create_upload(&older).await.expect("create");
    let ids = |rows: Vec<UploadRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let expired = index.expired_uploads(now, 10).await.expect("expired");
    assert_eq!(ids(expired.clone()), ["u-older", "u-old"], "oldest first");
    assert_eq!(expired[1].parts, [part(1)], "with their parts");
    assert_eq!(expired[1].offset, mib);
    assert_eq!(
        ids(index.expired_uploads(now, 1).await.expect("expired")),
        ["u-older"],
        "at most `limit`"
    );
    let at_expiry = index.expired_uploads(now - Duration::hours(2), 10).await;
    assert_eq!(
        ids(at_expiry.expect("expired")),
        ["u-older"],
        "expired at `expires`"
    );
    assert_eq!(
        ids(index.expired_uploads(now + day, 10).await.expect("all")),
        ["u-older", "u-old", "u-a", "u-bare", "u-race"]
    );
    assert_eq!(index.upload_totals().await.expect("totals"), (5, 29 * mib));
    for id in ["u-old", "u-older"] {
        assert!(index.end_upload(id).await.expect("end").is_some());
    }
}
