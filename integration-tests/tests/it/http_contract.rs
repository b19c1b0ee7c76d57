//! The HTTP contract against stand-in servers (the faults a real server
//! gives only by chance): redirects followed only to the active node the
//! cluster names, `Retry-After` as an HTTP date, and what a write retries.

use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use vault_secret::testing::{MockAnswer, MockVault};
use vault_secret::{Cas, Error, VaultClient};

/// A client of `mock` with its root token and these settings.
async fn client(mock: &MockVault, retries: u32, timeout: Duration) -> VaultClient {
    VaultClient::builder()
        .env(mock.env_for(&mock.root_token()))
        .max_retries(retries)
        .timeout(timeout)
        .build()
        .await
        .expect("a client of the stand-in")
}

/// `sys/leader` as a standby of a cluster whose active node is `leader` says it.
fn leader_answer(leader: &str) -> MockAnswer {
    MockAnswer::json(
        200,
        json!({"ha_enabled": true, "is_self": false, "leader_address": leader,
               "leader_cluster_address": "https://127.0.0.1:1"}),
    )
}

/// A KV v2 write's answer.
fn written(version: u64) -> MockAnswer {
    MockAnswer::data(json!({
        "created_time": "2026-12-04T00:00:00Z", "custom_metadata": null,
        "deletion_time": "", "destroyed": false, "version": version,
    }))
}

#[tokio::test]
async fn a_redirect_to_the_active_node_is_followed_once_with_the_token_and_body() {
    let leader = MockVault::start().await;
    let standby = MockVault::start().await;
    standby.kv2("secret/redir-ok", json!({"k": "old"})).await;
    standby
        .answer("sys/leader", leader_answer(&leader.addr()))
        .await;
    standby
        .answer(
            "secret/data/redir-ok",
            MockAnswer::empty(307).method("POST").header(
                "Location",
                format!("{}/v1/secret/data/redir-ok", leader.addr()),
            ),
        )
        .await;
    // The leader accepts only the client's token and the body it was given.
    leader
        .answer(
            "secret/data/redir-ok",
            written(2)
                .method("POST")
                .for_token(&standby.root_token())
                .for_body(json!({"data": {"k": "new"}})),
        )
        .await;
    let vault = client(&standby, 2, Duration::from_secs(5)).await;
    let outcome = vault
        .write("secret/redir-ok", &json!({"k": "new"}))
        .await
        .unwrap();
    assert_eq!(outcome.version, Some(2));
    assert_eq!(leader.count("secret/data/redir-ok").await, 1);
    assert_eq!(standby.count("secret/data/redir-ok").await, 1);
}

#[tokio::test]
async fn a_redirect_elsewhere_is_refused_at_once_and_the_token_never_goes() {
    let leader = MockVault::start().await;
    let elsewhere = MockVault::start().await;
    let standby = MockVault::start().await;
    standby.kv2("secret/redir-bad", json!({"k": "v"})).await;
    standby
        .answer("sys/leader", leader_answer(&leader.addr()))
        .await;
    for method in ["GET", "POST"] {
        standby
            .answer(
                "secret/data/redir-bad",
                MockAnswer::empty(307).method(method).header(
                    "Location",
                    format!("{}/v1/secret/data/redir-bad", elsewhere.addr()),
                ),
            )
            .await;
    }
    let vault = client(&standby, 2, Duration::from_secs(5)).await;
    let started = Instant::now();
    let err = vault
        .write("secret/redir-bad", &json!({"k": "new"}))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Server { status: 307, .. }), "{err}");
    assert!(
        err.to_string().contains("redirect, which is not followed"),
        "{err}"
    );
    let started = Instant::now();
    let err = vault.read("secret/redir-bad").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Server { status: 307, .. }), "{err}");
    let sent: Vec<String> = elsewhere
        .received()
        .await
        .into_iter()
        .filter(|r| r.path.contains("redir-bad"))
        .map(|r| r.path)
        .collect();
    assert!(sent.is_empty(), "the redirect was followed: {sent:?}");
    assert!(
        leader
            .received()
            .await
            .iter()
            .all(|r| !r.path.contains("redir-bad")),
        "sent to the leader though the redirect named another host"
    );
}

#[tokio::test]
async fn a_429_with_an_http_date_retry_after_is_waited_for() {
    let mock = MockVault::start().await;
    mock.kv2("secret/limited", json!({"k": "v"})).await;
    // Two whole seconds ahead at least: the date has a one-second grain.
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3));
    mock.answer(
        "secret/data/limited",
        MockAnswer::errors(429, &["rate limited"])
            .header("Retry-After", at)
            .times(1),
    )
    .await;
    let vault = client(&mock, 2, Duration::from_secs(10)).await;
    let started = Instant::now();
    let value = vault.read("secret/limited#k").await.unwrap();
    let took = started.elapsed();
    assert_eq!(value.expose_secret(), "v");
    assert!(
        took >= Duration::from_millis(1900),
        "second request after {took:?}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(mock.count("secret/data/limited").await, 2);
}

#[tokio::test]
async fn a_write_is_not_retried_on_a_500_and_a_lost_answer_is_uncertain() {
    let mock = MockVault::start().await;
    mock.kv2("secret/w500", json!({"k": "v"})).await;
    mock.answer(
        "secret/data/w500",
        MockAnswer::errors(500, &["internal error"]).method("POST"),
    )
    .await;
    let vault = client(&mock, 3, Duration::from_millis(500)).await;
    let err = vault
        .write("secret/w500", &json!({"k": "hunter2-x"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Server { status: 500, .. }), "{err}");
    assert_eq!(
        mock.count("secret/data/w500").await,
        1,
        "a 500 write was resent"
    );

    // A read of the same answer is retried.
    mock.answer(
        "secret/data/r500",
        MockAnswer::errors(500, &["internal error"]).times(1),
    )
    .await;
    mock.kv2("secret/r500", json!({"k": "v"})).await;
    vault.read("secret/r500").await.unwrap();
    assert_eq!(mock.count("secret/data/r500").await, 2);

    // No answer within the timeout: sent once, and said to be uncertain.
    mock.kv2("secret/wslow", json!({"k": "v"})).await;
    mock.answer(
        "secret/data/wslow",
        written(2).method("POST").delay(Duration::from_secs(3)),
    )
    .await;
    let err = vault
        .write("secret/wslow", &json!({"k": "hunter2-y"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WriteUncertain { .. }), "{err}");
    let shown = format!("{err}\n{err:?}");
    assert!(shown.contains("may or may not have happened"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(
        mock.count("secret/data/wslow").await,
        1,
        "a lost write was resent"
    );
}

#[tokio::test]
async fn a_cas_write_retried_after_a_lost_answer_reports_a_conflict_as_possibly_its_own() {
    let mock = MockVault::start().await;
    mock.kv2("secret/wcas", json!({"k": "v"})).await;
    // The first attempt's answer never comes in time; the retry finds the
    // version it may itself have made.
    mock.answer(
        "secret/data/wcas",
        written(2)
            .method("POST")
            .delay(Duration::from_secs(3))
            .times(1),
    )
    .await;
    mock.answer(
        "secret/data/wcas",
        MockAnswer::errors(
            400,
            &["check-and-set parameter did not match the current version"],
        )
        .method("POST"),
    )
    .await;
    let vault = client(&mock, 2, Duration::from_millis(500)).await;
    let err = vault
        .write_cas("secret/wcas", &json!({"k": "new"}), Cas::Version(1))
        .await
        .unwrap_err();
    match &err {
        Error::CasMismatch {
            expected,
            answer_lost,
            ..
        } => assert_eq!((*expected, *answer_lost), (Some(1), true)),
        other => panic!("expected CasMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("may have happened"), "{err}");
    assert_eq!(mock.count("secret/data/wcas").await, 2);
}

#[tokio::test]
async fn a_write_is_retried_on_412_and_429() {
    let mock = MockVault::start().await;
    mock.kv2("secret/w412", json!({"k": "v"})).await;
    mock.answer(
        "secret/data/w412",
        MockAnswer::errors(412, &["index not yet replicated"])
            .method("POST")
            .times(1),
    )
    .await;
    mock.answer(
        "secret/data/w412",
        MockAnswer::errors(429, &["rate limited"])
            .method("POST")
            .header("Retry-After", "0")
            .times(1),
    )
    .await;
    mock.answer("secret/data/w412", written(2).method("POST"))
        .await;
    let vault = client(&mock, 3, Duration::from_secs(5)).await;
    let outcome = vault
        .write("secret/w412", &json!({"k": "new"}))
        .await
        .unwrap();
    assert_eq!(outcome.version, Some(2));
    assert_eq!(mock.count("secret/data/w412").await, 3);
}
