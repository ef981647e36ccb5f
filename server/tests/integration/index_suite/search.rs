//! The name search past the newest-first walk: a catalog larger than the
//! window the walk reads (`NAME_WALK_ROWS`), with rare names far back in
//! time, found through the trigram index with the exact semantics of the
//! short walk (`%` and `_` literal, ASCII case-insensitive, any sighting's
//! name, every other filter, cursor pages).

use asset_catalog_proto::Sha256Hex;
use asset_catalog_server::index::{Cursor, Index, ListFilter, NAME_WALK_ROWS, RebuildRecord};

use super::{Backend, Kind, asset, at, place, sha};

/// Assets older than the window the walk reads.
const OLD: u32 = 1_000;

fn name_of(i: u32, total: u32) -> (String, &'static str) {
    match i {
        5 => ("Kestrel-Audit-5.wav".into(), "audio/wav"),
        11 => ("sale-50%_off.pdf".into(), "application/pdf"),
        12 => ("sale-50%xoff.pdf".into(), "application/pdf"),
        13 => ("sale-50ab_off.pdf".into(), "application/pdf"),
        i if i == total - 3 => ("kestrel-new.wav".into(), "audio/wav"),
        i if i % 10 == 0 => (format!("screenshot-{i}.png"), "image/png"),
        i => (format!("file-{i}.bin"), "application/octet-stream"),
    }
}

/// `total` assets, asset `i` first seen at second `i`, each with one sighting.
async fn load(index: &Index, total: u32) {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let feed = async {
        for i in 0..total {
            let (name, ct) = name_of(i, total);
            let record = RebuildRecord {
                asset: asset(i, &name, ct, i64::from(i)),
                sighting: Some(place("b", &format!("/d/{name}"), i64::from(i))),
            };
            tx.send(Some(record)).await.expect("send");
        }
        tx.send(None).await.expect("end");
    };
    let (count, ()) = tokio::join!(index.rebuild(rx), feed);
    assert_eq!(count.expect("rebuild"), Some(u64::from(total)));
}

/// Every page of `filter`, `limit` at a time: the hashes, in order.
async fn all_pages(index: &Index, filter: ListFilter, limit: usize) -> Vec<Sha256Hex> {
    let mut found = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = index
            .list(ListFilter {
                cursor: cursor.clone(),
                limit,
                ..filter.clone()
            })
            .await
            .expect("list");
        assert!(page.items.len() <= limit);
        found.extend(page.items.into_iter().map(|a| a.sha256));
        match page.next_cursor {
            Some(c) => cursor = Some(Cursor::decode(&c).expect("cursor")),
            None => return found,
        }
    }
}

fn named(name: &str) -> ListFilter {
    ListFilter {
        name: Some(name.into()),
        ..ListFilter::default()
    }
}

pub async fn name_search(kind: Kind) {
    let b = Backend::open(kind).await;
    let index = &b.index;
    let total = u32::try_from(NAME_WALK_ROWS).expect("u32") + OLD;
    let newest_rare = total - 3;
    load(index, total).await;
    // A second name for asset 7, far back in time, from a sighting only.
    index
        .record_sighting(&sha(7), place("c", "/e/kestrel-audit-copy.wav", 9), 10)
        .await
        .expect("sighting")
        .expect("known");

    assert_eq!(
        all_pages(index, named("KESTREL"), 2).await,
        [sha(newest_rare), sha(7), sha(5)],
        "a rare name: in the window and far behind it (its own name, a sighting's), \
         ASCII case-insensitive, two to a page"
    );
    assert_eq!(
        all_pages(index, named("50%_off"), 10).await,
        [sha(11)],
        "% and _ are literal behind the window too"
    );
    let audio = ListFilter {
        content_type: Some("audio/".into()),
        ..named("kestrel")
    };
    assert_eq!(
        all_pages(index, audio, 10).await,
        [sha(newest_rare), sha(5)],
        "other filters apply to what the index finds"
    );
    let old = ListFilter {
        until: Some(at(i64::from(OLD))),
        ..named("kestrel")
    };
    assert_eq!(all_pages(index, old, 10).await, [sha(7), sha(5)]);

    let frequent = index
        .list(ListFilter {
            limit: 100,
            ..named("screenshot")
        })
        .await
        .expect("frequent");
    let expected: Vec<Sha256Hex> = (0..total)
        .rev()
        .filter(|i| i % 10 == 0 && *i != newest_rare)
        .take(100)
        .map(sha)
        .collect();
    let got: Vec<Sha256Hex> = frequent.items.into_iter().map(|a| a.sha256).collect();
    assert_eq!(got, expected, "a frequent name: the newest 100");
    assert!(frequent.next_cursor.is_some());

    // A sighting renamed in place: found by its new name, and no longer by
    // the old one once it is renamed back (the exact test, not `names`).
    let renamed = |name: &str| {
        let mut p = place("b", "/d/file-15.bin", 20);
        p.name = name.into();
        p
    };
    assert!(all_pages(index, named("osprey"), 10).await.is_empty());
    for (name, expect) in [("osprey.bin", vec![sha(15)]), ("file-15.bin", vec![])] {
        index
            .record_sighting(&sha(15), renamed(name), 10)
            .await
            .expect("rename")
            .expect("known");
        assert_eq!(all_pages(index, named("osprey"), 10).await, expect);
    }

    assert!(index.delete(&sha(5), None).await.expect("delete"));
    assert_eq!(
        all_pages(index, named("kestrel"), 10).await,
        [sha(newest_rare), sha(7)],
        "a deleted asset leaves the index"
    );
}
