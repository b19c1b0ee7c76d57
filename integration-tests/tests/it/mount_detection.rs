//! Mount detection and its cache, against `MockVault`: the mount lookup
//! (`sys/internal/ui/mounts`) is asked once per mount, and a nested mount it
//! names is read with the version asked for. (A server without the lookup,
//! or a token that may not make it, is in `server_shapes`.)

use serde_json::json;
use vault_secret::testing::{MockAnswer, MockVault};

#[tokio::test]
async fn the_mount_lookup_is_asked_once_per_mount() {
    let mock = MockVault::start().await;
    for path in ["once/a", "once/b", "once/deep/c"] {
        mock.kv2(path, json!({"k": "v"})).await;
    }
    for path in ["once/a#k", "once/b#k", "once/deep/c#k"] {
        let v = mock.secret(path).run().await.unwrap();
        assert_eq!(v.expose_secret(), "v");
    }
    let received = mock.received().await;
    let lookups = received
        .iter()
        .filter(|r| r.path.starts_with("sys/internal/ui/mounts/once/"))
        .count();
    let reads = received
        .iter()
        .filter(|r| r.path.starts_with("once/data/"))
        .count();
    assert_eq!((lookups, reads), (1, 3));
}

#[tokio::test]
async fn a_nested_kv2_mount_is_read_at_the_version_asked_for() {
    let mock = MockVault::start().await;
    let nested = json!({"path": "vq/kv/", "type": "kv", "options": {"version": "2"}});
    mock.answer("sys/internal/ui/mounts/vq/kv/app", MockAnswer::data(nested))
        .await;
    mock.answer("vq/kv/data/app", MockAnswer::kv2_data(json!({"v": "four"})))
        .await;
    let v = mock.secret("vq/kv/app?version=4#v").run().await.unwrap();
    assert_eq!(v.expose_secret(), "four");
    let reads: Vec<Option<String>> = mock
        .received()
        .await
        .into_iter()
        .filter(|r| r.path == "vq/kv/data/app")
        .map(|r| r.query)
        .collect();
    assert_eq!(reads, [Some("version=4".to_owned())]);
}
