//! Cases on the operator's calls and on coordination between writers.

use std::time::Duration;

use asset_catalog_server::index::{Claim, ExportItem, Purpose, RebuildRecord};

use super::{Backend, Kind, asset, place, sha};

/// Rebuild, export, and fsck's walk and repairs.
pub async fn tools(kind: Kind) {
    let b = Backend::open(kind).await;
    let index = &b.index;
    index
        .insert(
            asset(1, "old.txt", "text/plain", 0),
            place("a", "/old.txt", 0),
            10,
        )
        .await
        .expect("insert");
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let rebuild = index.rebuild(rx);
    let feed = async {
        for i in 10..13u32 {
            let record = RebuildRecord {
                asset: asset(
                    i,
                    &format!("{i}.bin"),
                    "application/octet-stream",
                    i64::from(i),
                ),
                sighting: Some(place("b", &format!("/{i}.bin"), i64::from(i))),
            };
            tx.send(Some(record)).await.expect("send");
        }
        tx.send(None).await.expect("end");
    };
    let (count, ()) = tokio::join!(rebuild, feed);
    assert_eq!(count.expect("rebuild"), Some(3));
    assert!(
        index.get(&sha(1)).await.expect("get").is_none(),
        "rebuild replaces everything"
    );

    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(tx);
    assert_eq!(index.rebuild(rx).await.expect("abandoned"), None);
    assert_eq!(
        index.count().await.expect("count"),
        3,
        "an abandoned rebuild changes nothing"
    );

    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let export = index.export(tx);
    let collect = async {
        let mut items = Vec::new();
        while let Some(item) = rx.recv().await {
            items.push(item);
        }
        items
    };
    let (done, items) = tokio::join!(export, collect);
    done.expect("export");
    assert!(matches!(items[0], ExportItem::Count(3)));
    let names: Vec<String> = items[1..]
        .iter()
        .map(|i| match i {
            ExportItem::Asset(d) => {
                assert_eq!(d.sightings.len(), 1);
                d.asset.name.clone()
            }
            ExportItem::Count(_) => panic!("one count"),
        })
        .collect();
    assert_eq!(names, ["10.bin", "11.bin", "12.bin"], "oldest first");

    let first = index.key_page(None, 2).await.expect("keys");
    assert_eq!(
        first.iter().map(|k| k.sha256.clone()).collect::<Vec<_>>(),
        vec![sha(10), sha(11)]
    );
    let rest = index.key_page(Some(sha(11)), 2).await.expect("keys");
    assert_eq!(rest.len(), 1);
    assert!(
        index
            .set_key(&sha(12), "elsewhere.bin")
            .await
            .expect("set key")
    );
    assert_eq!(
        index.get(&sha(12)).await.expect("get").expect("row").key,
        "elsewhere.bin"
    );
    assert!(
        !index
            .set_key(&sha(40), "x")
            .await
            .expect("set key of nothing")
    );
    let adopted = RebuildRecord {
        asset: asset(20, "found.bin", "application/octet-stream", 30),
        sighting: None,
    };
    assert!(index.adopt(adopted.clone()).await.expect("adopt"));
    assert!(!index.adopt(adopted).await.expect("adopt twice"));
    assert_eq!(index.count().await.expect("count"), 4);
}

/// Many writers of one hash at once: one creates, all see one key. With
/// PostgreSQL, leases exclude each other and count as arriving for check.
pub async fn coordination(kind: Kind) {
    let b = Backend::open(kind).await;
    let index = &b.index;
    let mut tasks = Vec::new();
    for n in 0..16u32 {
        let index = index.clone();
        tasks.push(tokio::spawn(async move {
            let mut a = asset(3, "same.bin", "application/octet-stream", 0);
            a.key = format!("{}.ext{n}", sha(3));
            index
                .insert(a, place(&format!("c{n}"), "/same.bin", 0), 100)
                .await
                .expect("insert")
        }));
    }
    let mut created = 0;
    let mut keys = std::collections::BTreeSet::new();
    for t in tasks {
        let inserted = t.await.expect("task");
        created += usize::from(inserted.created);
        keys.insert(inserted.asset.key);
    }
    assert_eq!(created, 1, "exactly one writer creates the row");
    assert_eq!(
        keys.len(),
        1,
        "every writer is answered with the one key chosen"
    );
    assert_eq!(
        index
            .get(&sha(3))
            .await
            .expect("get")
            .expect("row")
            .sighting_count,
        16,
        "every sighting kept"
    );

    let wait = Duration::from_millis(300);
    match kind {
        Kind::Sqlite => {
            assert!(matches!(
                index
                    .claim(&sha(4), Purpose::Upload, wait)
                    .await
                    .expect("claim"),
                Claim::Local
            ));
            assert!(
                index
                    .arriving(&[sha(4)])
                    .await
                    .expect("arriving")
                    .is_empty()
            );
        }
        Kind::Postgres => {
            let held = index
                .claim(&sha(4), Purpose::Upload, wait)
                .await
                .expect("claim");
            assert!(matches!(held, Claim::Held(_)));
            assert_eq!(
                index.arriving(&[sha(4), sha(5)]).await.expect("arriving"),
                vec![sha(4)]
            );
            let other = index
                .claim(&sha(4), Purpose::Other, wait)
                .await
                .expect("second claim");
            assert!(
                matches!(other, Claim::Busy),
                "a held lease excludes another request"
            );
            let later = {
                let index = index.clone();
                tokio::spawn(async move {
                    index
                        .claim(&sha(4), Purpose::Other, Duration::from_secs(5))
                        .await
                })
            };
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(held);
            let taken = later.await.expect("task").expect("claim");
            assert!(
                matches!(taken, Claim::Held(_)),
                "a released lease is taken by the waiter"
            );
            assert!(
                index
                    .arriving(&[sha(4)])
                    .await
                    .expect("arriving")
                    .is_empty(),
                "an `other` lease is not an arrival"
            );
        }
    }
}
