//! The web UI's part of the index, on both backends: sessions act as their
//! token (and stop with it), token-less sessions carry their own scopes, a
//! sign-in link is redeemed once (also when four tasks try at once) and is
//! never a session, and the overview's figures on a small known catalog,
//! through inserts, sightings, a refresh, a delete, scrub results and a
//! rebuild.

use asset_catalog_proto::Integrity;
use asset_catalog_server::auth::{Scope, Scopes};
use asset_catalog_server::index::{
    ClientSummary, DayCount, Index, NewAsset, NewSession, Overview, RebuildRecord, SessionKind,
    SightingRecord, TokenGrant, TokenLimits,
};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};

use super::{Backend, Kind, sha};

fn new_session(
    n: u8,
    kind: SessionKind,
    token_id: Option<&str>,
    scopes: &[Scope],
    created: OffsetDateTime,
    expires: OffsetDateTime,
) -> NewSession {
    NewSession {
        id_hash: [n; 32],
        token_id: token_id.map(str::to_owned),
        scopes: Scopes::new(scopes.to_vec()),
        csrf: format!("csrf-{n}"),
        created,
        expires,
        kind,
    }
}

pub async fn sessions(kind: Kind) {
    let backend = Backend::open(kind).await;
    let index = &backend.index;
    let now = datetime!(2030-06-01 12:00 UTC);
    let (hour, day) = (Duration::hours(1), Duration::days(1));
    let scopes = Scopes::new(vec![Scope::Upload, Scope::Read]);
    let limits = TokenLimits {
        client: Some("laptop".into()),
        max_bytes: Some(1 << 20),
        rate_per_min: Some(30),
    };
    let token = index
        .create_token("web", &scopes, &limits)
        .await
        .expect("token");
    let grant = TokenGrant {
        id: token.id.clone(),
        scopes: scopes.clone(),
        limits,
    };

    // A token's session: the token's grant and scopes (not the row's own).
    let with_token = new_session(
        1,
        SessionKind::Session,
        Some(&token.id),
        &[Scope::Admin],
        now,
        now + day,
    );
    index.create_session(&with_token).await.expect("create");
    let live = index
        .session(&[1; 32], now)
        .await
        .expect("session")
        .expect("live");
    assert_eq!(live.token, Some(grant));
    assert_eq!(live.scopes, scopes, "the token's scopes apply");
    assert_eq!((live.csrf.as_str(), live.expires), ("csrf-1", now + day));
    assert!(index.session(&[9; 32], now).await.expect("s").is_none());
    assert!(
        index
            .session(&[1; 32], now + day)
            .await
            .expect("s")
            .is_none(),
        "expired at `expires`"
    );

    // A token-less session (a CLI sign-in link's): its own scopes.
    let own = new_session(
        2,
        SessionKind::Session,
        None,
        &[Scope::Read],
        now,
        now + hour,
    );
    index.create_session(&own).await.expect("create");
    let live = index
        .session(&[2; 32], now)
        .await
        .expect("session")
        .expect("live");
    assert_eq!(live.token, None);
    assert_eq!(live.scopes, Scopes::new(vec![Scope::Read]));
    assert!(index.end_session(&[2; 32]).await.expect("end"));
    assert!(!index.end_session(&[2; 32]).await.expect("end twice"));
    assert!(index.session(&[2; 32], now).await.expect("s").is_none());

    // Creating a row deletes those expired by its creation time.
    let short = new_session(
        3,
        SessionKind::Session,
        None,
        &[Scope::Read],
        now,
        now + hour,
    );
    index.create_session(&short).await.expect("create");
    let later = new_session(
        4,
        SessionKind::Session,
        None,
        &[Scope::Read],
        now + hour * 2,
        now + hour * 3,
    );
    index.create_session(&later).await.expect("create");
    assert!(
        index.session(&[3; 32], now).await.expect("s").is_none(),
        "an expired row was deleted by the next create"
    );
    assert!(index.session(&[4; 32], now).await.expect("s").is_some());
    assert!(
        index.session(&[1; 32], now).await.expect("s").is_some(),
        "one not expired stays"
    );

    // Revoking the token ends its sessions, and deletes their rows.
    let second = new_session(
        5,
        SessionKind::Session,
        Some(&token.id),
        &[],
        now,
        now + day,
    );
    index.create_session(&second).await.expect("create");
    assert!(index.revoke_token(&token.id).await.expect("revoke"));
    for hash in [[1; 32], [5; 32]] {
        assert!(index.session(&hash, now).await.expect("s").is_none());
        assert!(
            !index.end_session(&hash).await.expect("end"),
            "the row went with the token"
        );
    }

    links(index, now).await;
    overview(index).await;
}

/// One-time links: redeemed once, never before `expires`, never a session.
async fn links(index: &Index, now: OffsetDateTime) {
    let minutes = Duration::minutes(10);
    let admin = Scopes::new(vec![Scope::Admin]);
    let link = new_session(
        10,
        SessionKind::Link,
        None,
        &[Scope::Admin],
        now,
        now + minutes,
    );
    index.create_session(&link).await.expect("link");
    assert!(
        index.session(&[10; 32], now).await.expect("s").is_none(),
        "a link is not a session"
    );
    assert!(!index.end_session(&[10; 32]).await.expect("end"));
    assert_eq!(
        index.redeem_link(&[10; 32], now).await.expect("redeem"),
        Some(admin)
    );
    assert_eq!(
        index.redeem_link(&[10; 32], now).await.expect("again"),
        None
    );
    assert_eq!(
        index.redeem_link(&[1; 32], now).await.expect("a session"),
        None
    );

    let stale = new_session(
        11,
        SessionKind::Link,
        None,
        &[Scope::Read],
        now,
        now + minutes,
    );
    index.create_session(&stale).await.expect("link");
    assert_eq!(
        index
            .redeem_link(&[11; 32], now + minutes)
            .await
            .expect("expired"),
        None
    );
    assert_eq!(
        index.redeem_link(&[11; 32], now).await.expect("gone"),
        None,
        "an expired link is deleted when tried"
    );

    let contested = new_session(
        12,
        SessionKind::Link,
        None,
        &[Scope::Read],
        now,
        now + minutes,
    );
    index.create_session(&contested).await.expect("link");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let index = index.clone();
            tokio::spawn(async move { index.redeem_link(&[12; 32], now).await })
        })
        .collect();
    let mut redeemed = 0;
    for task in tasks {
        if task.await.expect("task").expect("redeem").is_some() {
            redeemed += 1;
        }
    }
    assert_eq!(redeemed, 1, "exactly one of four concurrent redeems");
}

fn new_asset(i: u32, size: u64, first_seen: OffsetDateTime) -> NewAsset {
    NewAsset {
        sha256: sha(i),
        key: format!("{}.bin", sha(i)),
        size,
        content_type: "application/octet-stream".into(),
        name: format!("{i}.bin"),
        first_seen,
        uploaded_by: None,
        verified_at: None,
    }
}

fn seen(client: &str, path: &str, at: OffsetDateTime) -> SightingRecord {
    SightingRecord {
        client: client.into(),
        path: path.into(),
        name: path.rsplit('/').next().unwrap_or(path).into(),
        mtime: None,
        seen_at: at,
        token: None,
    }
}

/// The overview of a small catalog whose figures are known.
async fn overview(index: &Index) {
    let empty = index
        .overview(datetime!(2023-11-20 12:00 UTC), 7)
        .await
        .expect("overview");
    assert_eq!((empty.assets, empty.bytes, empty.problems), (0, 0, 0));
    assert!(empty.per_day.is_empty() && empty.clients.is_empty());

    let catalog = [
        (1, 10, datetime!(2023-11-10 10:00 UTC), "old-host", "/o/1"),
        (2, 20, datetime!(2023-11-14 00:00 UTC), "laptop", "/l/2"),
        (
            3,
            30,
            datetime!(2023-11-14 23:59:59.999 UTC),
            "laptop",
            "/l/3",
        ),
        (4, 40, datetime!(2023-11-16 12:00 UTC), "nas", "/n/4"),
        (5, 50, datetime!(2023-11-21 00:00 UTC), "nas", "/n/5"),
    ];
    for (i, size, at, client, path) in catalog {
        let done = index
            .insert(new_asset(i, size, at), seen(client, path, at), 100)
            .await
            .expect("insert");
        assert!(done.created);
    }
    let (known, sighted) = index
        .record_sighting(
            &sha(2),
            seen("phone", "/p/2", datetime!(2023-11-15 08:00 UTC)),
            100,
        )
        .await
        .expect("sighting")
        .expect("known");
    assert!(sighted && known.sighting_count == 2);
    // A refresh of a known place: a later last_seen, no new sighting.
    index
        .record_sighting(
            &sha(2),
            seen("laptop", "/l/2", datetime!(2023-11-19 09:00 UTC)),
            100,
        )
        .await
        .expect("refresh")
        .expect("known");
    assert!(index.delete(&sha(1), None).await.expect("delete"));
    let scrubbed = datetime!(2023-11-20 00:00 UTC);
    for (i, found) in [
        (2, Integrity::Corrupt),
        (5, Integrity::Missing),
        (3, Integrity::Ok),
    ] {
        index
            .record_integrity(&sha(i), found, scrubbed)
            .await
            .expect("integrity")
            .expect("present");
    }

    let client = |name: &str, sightings, last_seen| ClientSummary {
        client: name.into(),
        sightings,
        last_seen,
    };
    let expected = Overview {
        assets: 4,
        bytes: 140,
        problems: 2,
        per_day: vec![
            DayCount {
                day: date!(2023 - 11 - 14),
                assets: 2,
                bytes: 50,
            },
            DayCount {
                day: date!(2023 - 11 - 16),
                assets: 1,
                bytes: 40,
            },
        ],
        clients: vec![
            client("nas", 2, datetime!(2023-11-21 00:00 UTC)),
            client("laptop", 2, datetime!(2023-11-19 09:00 UTC)),
            client("phone", 1, datetime!(2023-11-15 08:00 UTC)),
            client("old-host", 0, datetime!(2023-11-10 10:00 UTC)),
        ],
    };
    let now = datetime!(2023-11-20 12:00 UTC);
    assert_eq!(index.overview(now, 7).await.expect("overview"), expected);
    let narrow = index
        .overview(datetime!(2023-11-16 23:59:59 UTC), 1)
        .await
        .expect("one day");
    assert_eq!(narrow.per_day, expected.per_day[1..]);
    assert!(
        index
            .overview(now, 0)
            .await
            .expect("no days")
            .per_day
            .is_empty()
    );

    // `reindex` replaces everything, the figures with it.
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let rebuild = index.rebuild(rx);
    let feed = async {
        let at = datetime!(2023-11-18 06:00 UTC);
        let record = RebuildRecord {
            asset: new_asset(7, 70, at),
            sighting: Some(seen("nas", "/n/7", at)),
        };
        tx.send(Some(record)).await.expect("send");
        tx.send(None).await.expect("end");
    };
    let (count, ()) = tokio::join!(rebuild, feed);
    assert_eq!(count.expect("rebuild"), Some(1));
    let rebuilt = index.overview(now, 7).await.expect("overview");
    assert_eq!(
        (rebuilt.assets, rebuilt.bytes, rebuilt.problems),
        (1, 70, 0)
    );
    assert_eq!(
        rebuilt.per_day,
        [DayCount {
            day: date!(2023 - 11 - 18),
            assets: 1,
            bytes: 70
        }]
    );
    let counts: Vec<(&str, u64)> = rebuilt
        .clients
        .iter()
        .map(|c| (c.client.as_str(), c.sightings))
        .collect();
    assert_eq!(
        counts,
        [("nas", 1), ("laptop", 0), ("phone", 0), ("old-host", 0)],
        "clients stay listed, with the sightings they have now"
    );
}
