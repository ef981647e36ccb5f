//! Cases on what the index records: assets, sightings, listing, tokens.

use asset_catalog_server::auth::{Presented, Scope, Scopes};
use asset_catalog_server::index::{Cursor, ListFilter, SightingPage, TokenLimits, TokenVerdict};

use super::{Backend, Kind, asset, at, place, sha};

/// Insert, the first key wins, sightings are added, refreshed and capped,
/// `missing` keeps request order without duplicates, delete is audited.
pub async fn assets_and_sightings(kind: Kind) {
    let b = Backend::open(kind).await;
    let index = &b.index;
    let first = index
        .insert(
            asset(1, "a.jpg", "image/jpeg", 0),
            place("laptop", "/p/a.jpg", 0),
            3,
        )
        .await
        .expect("insert");
    assert!(first.created && first.sighted);
    assert_eq!(first.asset.sighting_count, 1);
    let mut other_ext = asset(1, "a.jpeg", "image/jpeg", 9);
    other_ext.key = format!("{}.jpeg", sha(1));
    let again = index
        .insert(other_ext, place("desk", "/q/a.jpeg", 9), 3)
        .await
        .expect("insert again");
    assert!(
        !again.created,
        "the second insert of a hash creates nothing"
    );
    assert_eq!(again.asset.key, first.asset.key, "the first key is kept");
    assert_eq!(again.asset.sighting_count, 2);
    assert_eq!(again.asset.last_seen, at(9));

    let (a, sighted) = index
        .record_sighting(&sha(1), place("laptop", "/p/a.jpg", 20), 3)
        .await
        .expect("refresh")
        .expect("known");
    assert!(
        sighted && a.sighting_count == 2,
        "a known place is refreshed, not added"
    );
    assert!(
        index
            .record_sighting(&sha(1), place("nas", "/n/a.jpg", 21), 3)
            .await
            .expect("third")
            .is_some_and(|(_, s)| s)
    );
    let capped = index
        .record_sighting(&sha(1), place("nas", "/n/other.jpg", 22), 3)
        .await
        .expect("past the cap")
        .expect("known");
    assert!(!capped.1, "the cap keeps a fourth place out");
    assert_eq!(capped.0.sighting_count, 3);
    assert!(
        index
            .record_sighting(&sha(99), place("x", "/y", 0), 3)
            .await
            .expect("unknown")
            .is_none()
    );

    let wanted = vec![sha(5), sha(1), sha(5), sha(6)];
    assert_eq!(
        index.missing(wanted).await.expect("missing"),
        vec![sha(5), sha(6)]
    );

    let detail = index
        .detail(
            &sha(1),
            SightingPage {
                limit: 2,
                after: None,
            },
        )
        .await
        .expect("detail")
        .expect("present");
    assert_eq!(detail.sightings.len(), 2);
    assert_eq!(detail.sightings[0].path, "/n/a.jpg", "most recent first");
    let cursor = detail.sightings_cursor.expect("a second page");
    let rest = index
        .detail(
            &sha(1),
            SightingPage {
                limit: 2,
                after: asset_catalog_server::index::SightingCursor::decode(&cursor),
            },
        )
        .await
        .expect("page 2")
        .expect("present");
    assert_eq!(rest.sightings.len(), 1);
    assert!(rest.sightings_cursor.is_none());

    assert!(index.delete(&sha(1), Some("tok1")).await.expect("delete"));
    assert!(!index.delete(&sha(1), None).await.expect("delete twice"));
    assert!(index.get(&sha(1)).await.expect("get").is_none());
    let audit = index.deletions(&sha(1)).await.expect("deletions");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0.as_deref(), Some("tok1"));
    assert_eq!(index.count().await.expect("count"), 0);
}

/// Newest first, stable cursor pages, and every filter.
pub async fn listing(kind: Kind) {
    let b = Backend::open(kind).await;
    let index = &b.index;
    for i in 0..25u32 {
        let (name, ct) = match i % 3 {
            0 => (format!("Holiday_{i}.JPG"), "image/jpeg"),
            1 => (format!("notes-{i}.txt"), "text/plain; charset=utf-8"),
            _ => (format!("clip{i}.mp4"), "video/mp4"),
        };
        let client = if i % 2 == 0 { "laptop" } else { "desk" };
        let secs = i64::from(i / 2); // pairs share a first_seen: the hash breaks ties
        index
            .insert(
                asset(i, &name, ct, secs),
                place(client, &format!("/d/{name}"), secs),
                100,
            )
            .await
            .expect("insert");
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = index
            .list(ListFilter {
                cursor: cursor.clone(),
                limit: 10,
                ..ListFilter::default()
            })
            .await
            .expect("list");
        seen.extend(page.items.iter().map(|a| (a.first_seen, a.sha256.clone())));
        match page.next_cursor {
            Some(c) => cursor = Some(Cursor::decode(&c).expect("cursor")),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25, "every asset once");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, hash breaks ties, across pages");

    let count = |filter: ListFilter| async move {
        index
            .list(ListFilter {
                limit: 100,
                ..filter
            })
            .await
            .expect("filter")
            .items
            .len()
    };
    assert_eq!(
        count(ListFilter {
            name: Some("holiday".into()),
            ..ListFilter::default()
        })
        .await,
        9,
        "name is case-insensitive"
    );
    assert_eq!(
        count(ListFilter {
            name: Some("_1".into()),
            ..ListFilter::default()
        })
        .await,
        3,
        "_ is literal: Holiday_12, _15 and _18 only"
    );
    assert_eq!(
        count(ListFilter {
            content_type: Some("text/plain".into()),
            ..ListFilter::default()
        })
        .await,
        8,
        "exact type matches with parameters"
    );
    assert_eq!(
        count(ListFilter {
            content_type: Some("video/".into()),
            ..ListFilter::default()
        })
        .await,
        8
    );
    assert_eq!(
        count(ListFilter {
            client: Some("desk".into()),
            ..ListFilter::default()
        })
        .await,
        12
    );
    assert_eq!(
        count(ListFilter {
            since: Some(at(10)),
            ..ListFilter::default()
        })
        .await,
        5
    );
    assert_eq!(
        count(ListFilter {
            until: Some(at(2)),
            ..ListFilter::default()
        })
        .await,
        4
    );
}

/// Tokens: create, verify, limits, revoke, usage and stored bytes.
pub async fn tokens(kind: Kind) {
    let b = Backend::open(kind).await;
    let index = &b.index;
    let scopes = Scopes::new(vec![Scope::Upload, Scope::Read]);
    let limits = TokenLimits {
        client: Some("laptop".into()),
        max_bytes: Some(1000),
        rate_per_min: Some(6),
    };
    let token = index
        .create_token("ci", &scopes, &limits)
        .await
        .expect("create");
    let presented = Presented::parse(&token.text).expect("parse");
    match index.verify_token(&presented).await.expect("verify") {
        TokenVerdict::Valid(grant) => {
            assert_eq!(
                (grant.id.as_str(), grant.scopes, grant.limits.clone()),
                (token.id.as_str(), scopes, limits.clone())
            );
        }
        other => panic!("a fresh token is valid, got {other:?}"),
    }
    let mut stored = asset(7, "x.bin", "application/octet-stream", 0);
    stored.uploaded_by = Some(token.id.clone());
    index
        .insert(stored, place("laptop", "/x.bin", 0), 10)
        .await
        .expect("insert");
    assert_eq!(
        index.token_stored_bytes(&token.id).await.expect("bytes"),
        70
    );
    index
        .delete(&sha(7), Some(&token.id))
        .await
        .expect("delete");
    assert_eq!(
        index.token_stored_bytes(&token.id).await.expect("bytes"),
        0,
        "a delete gives the bytes back"
    );
    index.touch_token(&token.id).await.expect("touch");
    assert!(index.revoke_token(&token.id).await.expect("revoke"));
    assert!(!index.revoke_token(&token.id).await.expect("revoke twice"));
    assert_eq!(
        index.verify_token(&presented).await.expect("verify"),
        TokenVerdict::Revoked
    );
    let rows = index.list_tokens().await.expect("list");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].last_used.is_some() && rows[0].revoked.is_some());
    assert_eq!(rows[0].limits, limits);
}
