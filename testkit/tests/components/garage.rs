use std::time::Instant;

use object_store::ObjectStoreExt;
use object_store::path::Path;
use testkit::garage::GarageCluster;

/// An async test on purpose: the blocking API works inside a runtime too.
#[tokio::test]
async fn keeps_serving_with_one_node_down_and_takes_it_back() {
    let started = Instant::now();
    let mut garage = GarageCluster::start();
    eprintln!("GarageCluster::start took {:?}", started.elapsed());
    assert_eq!(garage.nodes(), 3);
    assert_eq!(garage.bucket(), "testkit-bucket");
    assert!(
        garage.access_key().starts_with("GK"),
        "{}",
        garage.access_key()
    );
    for i in 0..3 {
        assert!(garage.endpoint(i).starts_with("http://127.0.0.1:"));
    }
    garage
        .write_and_read(1, 2)
        .expect("write via node 1, read via node 2");

    garage.stop_node(1);
    garage
        .write_and_read(2, 0)
        .expect("with node 1 down: write via 2, read via 0");
    let path = Path::from("kept/while-down");
    garage
        .store(0)
        .put(&path, "while node 1 was down".into())
        .await
        .expect("put via node 0");

    let restarted = Instant::now();
    garage.start_node(1);
    eprintln!("start_node(1) took {:?}", restarted.elapsed());
    garage
        .write_and_read(1, 0)
        .expect("node 1 back: write via 1, read via 0");
    let got = garage.store(1).get(&path).await.expect("get via node 1");
    assert_eq!(
        got.bytes().await.expect("body"),
        "while node 1 was down".as_bytes()
    );
}
