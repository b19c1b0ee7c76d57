//! The shapes other Vault-API servers answer with (older Vault versions,
//! Vault-compatible servers, proxies), against `MockVault`, through the
//! public API: bare envelopes, every error-body form, HTML pages from
//! proxies, a path-prefix proxy, no mount-lookup endpoint, the KV version
//! found by reading, and no WARN or ERROR log line for an expected outcome.
//!
//! Mounts are cached per client, and a pooled mock server may get the port
//! (so the default client) of an earlier test: each test uses mount names of
//! its own.

use std::sync::{Arc, Mutex};

use secret_core::SecretChain;
use serde_json::{Value, json};
use vault_secret::testing::{MockAnswer, MockVault, Token};
use vault_secret::{Error, VaultClient, VaultSecret, VaultSource};

/// A mount lookup answering only what it must: the mount and its version.
fn bare_mount(mount: &str, version: Option<&str>) -> MockAnswer {
    let options = version.map_or(json!(null), |v| json!({"version": v}));
    MockAnswer::json(
        200,
        json!({"data": {"path": format!("{mount}/"), "options": options}}),
    )
}

/// The mount lookup's path for `<mount>/app`.
fn lookup(mount: &str) -> String {
    format!("sys/internal/ui/mounts/{mount}/app")
}

#[tokio::test]
async fn kv2_and_kv1_reads_with_nothing_but_data() {
    let mock = MockVault::start().await;
    mock.answer(&lookup("shape2"), bare_mount("shape2", Some("2")))
        .await;
    mock.answer(
        "shape2/data/app",
        MockAnswer::json(200, json!({"data": {"data": {"k": "v2"}}})),
    )
    .await;
    mock.answer(&lookup("shape1"), bare_mount("shape1", None))
        .await;
    mock.answer(
        "shape1/app",
        MockAnswer::json(200, json!({"data": {"k": "v1"}})),
    )
    .await;
    let v2 = mock.secret("shape2/app#k").run().await.unwrap();
    assert_eq!(v2.expose_secret(), "v2");
    let v1 = mock.secret("shape1/app#k").run().await.unwrap();
    assert_eq!(v1.expose_secret(), "v1");
}

/// A login answering only the `auth` block's essentials, at `login_path`
/// and only to `login_body`, then a read that must carry its token.
async fn login_then_read(login_path: &str, login_body: Value, credentials: Value) {
    let mock = MockVault::start().await;
    let issued = Token::new(vault_secret::testing::unique("s.bare-login"));
    let bare_login = json!({"auth": {
        "client_token": issued.expose_secret(), "lease_duration": 60, "renewable": true}});
    mock.answer(
        login_path,
        MockAnswer::json(200, bare_login)
            .method("POST")
            .for_body(login_body),
    )
    .await;
    mock.answer(&lookup("loginkv"), bare_mount("loginkv", Some("2")))
        .await;
    mock.answer(
        "loginkv/data/app",
        MockAnswer::json(200, json!({"data": {"data": {"k": "read"}}})).for_token(&issued),
    )
    .await;
    let credentials = credentials.to_string();
    let v = VaultSecret::new("loginkv/app#k")
        .env(mock.env_with(&[("VAULT_CREDENTIALS", credentials.as_str())]))
        .run()
        .await
        .expect("the read after the login");
    assert_eq!(v.expose_secret(), "read");
    assert_eq!(mock.count(login_path).await, 1);
}

#[tokio::test]
async fn an_approle_login_answering_only_the_client_token_and_lease() {
    login_then_read(
        "auth/approle/login",
        json!({"role_id": "role-1", "secret_id": "secret-1"}),
        json!({"VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": "secret-1"}),
    )
    .await;
}

#[tokio::test]
async fn a_kubernetes_login_answering_only_the_client_token_and_lease() {
    let dir = tempfile::tempdir().unwrap();
    let jwt = dir.path().join("token");
    std::fs::write(&jwt, "header.payload.signature\n").unwrap();
    login_then_read(
        "auth/kube/login",
        json!({"role": "app", "jwt": "header.payload.signature"}),
        json!({"VAULT_KUBE_AUTH_ROLE": "app", "VAULT_KUBE_AUTH_PATH": "kube",
               "VAULT_KUBE_TOKEN_FILE": jwt.display().to_string()}),
    )
    .await;
}

/// An old server without `sys/internal/ui/mounts` (404): the read finds the
/// version, KV v2 (its path answers) or KV v1 (the v2 path 404s, the v1 path
/// answers), asking the missing endpoint once.
#[tokio::test]
async fn a_server_without_the_mount_lookup_reads_kv2_and_kv1() {
    let mock = MockVault::start().await;
    for mount in ["nopre2", "nopre1"] {
        mock.answer(&lookup(mount), MockAnswer::errors(404, &[]))
            .await;
    }
    mock.answer("nopre2/data/app", MockAnswer::kv2_data(json!({"k": "new"})))
        .await;
    mock.answer(
        "nopre1/data/app",
        MockAnswer::json(404, json!({"error": "not found"})),
    )
    .await;
    mock.answer(
        "nopre1/app",
        MockAnswer::json(200, json!({"data": {"k": "old"}})),
    )
    .await;
    let v = mock.secret("nopre2/app#k").run().await.unwrap();
    assert_eq!(v.expose_secret(), "new");
    let v = mock.secret("nopre1/app#k").run().await.unwrap();
    assert_eq!(v.expose_secret(), "old");
    for mount in ["nopre2", "nopre1"] {
        assert_eq!(mock.count(&lookup(mount)).await, 1, "{mount}");
    }
}

/// A token that may not make the mount lookup (403): the read finds KV v1,
/// and the version found is kept (the v2 path is asked once for two reads).
#[tokio::test]
async fn a_denied_mount_lookup_finds_kv1_by_reading() {
    let mock = MockVault::start().await;
    // The mock answers an unknown mount's lookup 403, as a real server does.
    // KV v2's API path on a KV v1 mount: 404 with no errors.
    mock.answer("legacy/data/app", MockAnswer::errors(404, &[]))
        .await;
    mock.answer("legacy/app", MockAnswer::data(json!({"user": "kv1-user"})))
        .await;
    let v = mock.secret("legacy/app").run().await.unwrap();
    assert_eq!(v.to_json().unwrap(), json!({"user": "kv1-user"}));
    let v = mock.secret("legacy/app#user").run().await.unwrap();
    assert_eq!(v.expose_secret(), "kv1-user");
    assert_eq!(mock.count("legacy/data/app").await, 1);
    assert_eq!(mock.count("legacy/app").await, 2);
}

/// Every form a 403's body takes: Vault's `errors`, older servers' `error`,
/// none, and Vault's multi-error wrapping.
fn forbidden_forms() -> Vec<(&'static str, MockAnswer)> {
    vec![
        ("errors", MockAnswer::errors(403, &["permission denied"])),
        (
            "error",
            MockAnswer::json(403, json!({"error": "permission denied"})),
        ),
        ("empty", MockAnswer::empty(403)),
        (
            "vault",
            MockAnswer::errors(403, &["1 error occurred:\n\t* permission denied\n\n"]),
        ),
    ]
}

/// Whatever the 403's form, `lookup-self` decides: a token the server takes
/// means a policy denial, one it rejects an authentication failure.
#[tokio::test]
async fn a_403_in_any_form_is_a_denial_or_an_auth_failure_as_lookup_self_says() {
    for token_good in [true, false] {
        let mock = MockVault::start().await;
        if !token_good {
            let rejected = MockAnswer::errors(403, &["permission denied"]);
            mock.answer("auth/token/lookup-self", rejected).await;
        }
        for (form, answer) in forbidden_forms() {
            let mount = format!("{form}{token_good}");
            mock.answer(&lookup(&mount), bare_mount(&mount, Some("2")))
                .await;
            mock.answer(&format!("{mount}/data/app"), answer).await;
            let err = mock.secret(format!("{mount}/app")).run().await.unwrap_err();
            match (&err, token_good) {
                (Error::PermissionDenied { policy_paths, .. }, true) => {
                    assert_eq!(policy_paths, &[format!("{mount}/data/app")], "{form}");
                }
                (Error::AuthFailed { .. }, false) => {}
                (other, _) => panic!("{form}, token good: {token_good}: {other}"),
            }
            let token = mock.root_token();
            assert!(
                !format!("{err} {err:?}").contains(token.expose_secret()),
                "{form}: {err}"
            );
        }
    }
}

/// A proxy's HTML page, as an error (502) or as a 200 to every request (a
/// login page): a server error named by status, content type and endpoint,
/// never echoed, never serde's words.
#[tokio::test]
async fn an_html_page_from_a_proxy_is_named_by_status_and_type_never_echoed() {
    let mock = MockVault::start().await;
    for (mount, status) in [("html502", 502), ("html200", 200)] {
        let page = MockAnswer::text(status, "text/html", "<html><h1>proxy login</h1></html>");
        // A 200 page on the mount lookup is no mount: the read decides. A
        // 502 there would end the call before the read, so that one answers.
        let mount_lookup = match status {
            200 => page.clone(),
            _ => bare_mount(mount, Some("2")),
        };
        mock.answer(&lookup(mount), mount_lookup).await;
        mock.answer(&format!("{mount}/data/app"), page).await;
        let err = mock.secret(format!("{mount}/app")).run().await.unwrap_err();
        assert!(
            matches!(err, Error::Server { status: s, .. } if s == status),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("text/html") && msg.contains(&format!("{mount}/data/app")),
            "{msg}"
        );
        assert!(
            !msg.contains("proxy login") && !msg.contains("line 1"),
            "{msg}"
        );
    }
}

#[tokio::test]
async fn kv2_data_that_is_not_a_mapping_is_an_error() {
    let mock = MockVault::start().await;
    let list = MockAnswer::kv2_data(json!(["not", "a", "mapping"]));
    mock.answer("oddkv/data/list", list).await;
    let err = mock.secret("oddkv/list").run().await.unwrap_err();
    assert!(err.to_string().contains("not a key/value mapping"), "{err}");
}

#[tokio::test]
async fn an_address_with_a_path_prefix_reaches_vault_behind_a_proxy() {
    let mock = MockVault::start_under("/vault").await;
    mock.kv2("proxied/app", json!({"k": "via proxy"})).await;
    // A trailing `/v1/` on the address is the API's, not the proxy's.
    let address = format!("{}/v1/", mock.addr());
    let v = VaultSecret::new("proxied/app#k")
        .env(mock.env_with(&[("VAULT_ADDR", address.as_str())]))
        .run()
        .await
        .unwrap();
    assert_eq!(v.expose_secret(), "via proxy");
    let paths: Vec<String> = mock.received().await.into_iter().map(|r| r.path).collect();
    assert!(paths.iter().any(|p| p == "proxied/data/app"), "{paths:?}");
}

/// Every event at WARN or above, with its target.
#[derive(Clone, Default)]
struct Loud(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Loud {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() <= tracing::Level::WARN {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!("{} {}", meta.level(), meta.target()));
        }
    }
}

#[tokio::test]
async fn expected_outcomes_log_nothing_at_warn_or_error() {
    use tracing_subscriber::layer::SubscriberExt;
    let loud = Loud::default();
    let everything = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::TRACE)
        .with(loud.clone());
    // This test's runtime is single-threaded: the guard covers every await below.
    let _guard = tracing::subscriber::set_default(everything);

    let mock = MockVault::start().await;
    // A chain whose Vault source misses (404 on both KV versions, the mount
    // lookup denied).
    let chain = SecretChain::first_try(
        "vault",
        VaultSource::under("quiet/apps").builder(VaultClient::builder().env(mock.env_with(&[]))),
    );
    let missed = chain.get_optional("DB").await.unwrap();
    assert!(missed.is_none());
    // A read from a server without the mount-lookup endpoint.
    mock.answer(&lookup("quiet2"), MockAnswer::errors(404, &[]))
        .await;
    mock.answer("quiet2/data/app", MockAnswer::kv2_data(json!({"k": "v"})))
        .await;
    let v = mock.secret("quiet2/app#k").run().await.unwrap();
    assert_eq!(v.expose_secret(), "v");
    let lines = loud.0.lock().unwrap().clone();
    assert!(lines.is_empty(), "{lines:?}");
}
