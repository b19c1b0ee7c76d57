//! The shapes other Vault-API servers answer with (older Vault versions,
//! Vault-compatible servers, proxies), against a mock, through the public
//! API: bare envelopes, every error-body form, 403s told apart by asking the
//! server, and no WARN or ERROR log line for an expected outcome.

use std::sync::{Arc, Mutex};

use secret_core::{Env, SecretChain};
use serde_json::json;
use vault_secret::{Error, VaultSecret, VaultSource};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "s.protocol-token-hunter2";
const ISSUED: &str = "s.issued-by-login-hunter3";

fn env(server: &MockServer, extra: &[(&str, &str)]) -> Env {
    let mut vars = vec![
        ("VAULT_ADDR".to_owned(), server.uri()),
        ("HOME".to_owned(), "/nonexistent-home".to_owned()),
        ("VAULT_MAX_RETRIES".to_owned(), "1".to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Env::from_map(vars)
}

fn token_env(server: &MockServer) -> Env {
    env(server, &[("VAULT_TOKEN", TOKEN)])
}

/// A preflight answering only what it must: the mount and its version.
async fn bare_mount(server: &MockServer, secret: &str, mount: &str, version: Option<&str>) {
    let options = version.map_or(json!(null), |v| json!({"version": v}));
    Mock::given(path(format!("/v1/sys/internal/ui/mounts/{secret}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"path": format!("{mount}/"), "options": options}})),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn kv2_and_kv1_reads_with_nothing_but_data() {
    let server = MockServer::start().await;
    bare_mount(&server, "shape2/app", "shape2", Some("2")).await;
    Mock::given(path("/v1/shape2/data/app"))
        .and(header("X-Vault-Token", TOKEN))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"data": {"k": "v2"}}})),
        )
        .mount(&server)
        .await;
    bare_mount(&server, "shape1/app", "shape1", None).await;
    Mock::given(path("/v1/shape1/app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"k": "v1"}})))
        .mount(&server)
        .await;
    let v2 = VaultSecret::new("shape2/app#k")
        .env(token_env(&server))
        .run()
        .await
        .unwrap();
    assert_eq!(v2.expose_secret(), "v2");
    let v1 = VaultSecret::new("shape1/app#k")
        .env(token_env(&server))
        .run()
        .await
        .unwrap();
    assert_eq!(v1.expose_secret(), "v1");
}

/// A login answering only the `auth` block's essentials, then a read with its token.
async fn login_then_read(
    login_path: &str,
    login_body: serde_json::Value,
    creds: serde_json::Value,
) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(login_path))
        .and(body_json(login_body))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"auth": {
            "client_token": ISSUED, "lease_duration": 60, "renewable": true}})))
        .expect(1)
        .mount(&server)
        .await;
    bare_mount(&server, "loginkv/app", "loginkv", Some("2")).await;
    Mock::given(path("/v1/loginkv/data/app"))
        .and(header("X-Vault-Token", ISSUED))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"data": {"k": "read"}}})),
        )
        .mount(&server)
        .await;
    let creds = creds.to_string();
    let v = VaultSecret::new("loginkv/app#k")
        .env(env(&server, &[("VAULT_CREDENTIALS", creds.as_str())]))
        .run()
        .await
        .expect("the read after the login");
    assert_eq!(v.expose_secret(), "read");
}

#[tokio::test]
async fn an_approle_login_answering_only_the_client_token_and_lease() {
    login_then_read(
        "/v1/auth/approle/login",
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
        "/v1/auth/kube/login",
        json!({"role": "app", "jwt": "header.payload.signature"}),
        json!({"VAULT_KUBE_AUTH_ROLE": "app", "VAULT_KUBE_AUTH_PATH": "kube",
               "VAULT_KUBE_TOKEN_FILE": jwt.display().to_string()}),
    )
    .await;
}

#[tokio::test]
async fn a_server_without_the_preflight_reads_kv1() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/sys/internal/ui/mounts/nopre/app"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/nopre/data/app"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "not found"})))
        .mount(&server)
        .await;
    Mock::given(path("/v1/nopre/app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"k": "old"}})))
        .mount(&server)
        .await;
    let v = VaultSecret::new("nopre/app#k")
        .env(token_env(&server))
        .run()
        .await
        .unwrap();
    assert_eq!(v.expose_secret(), "old");
}

/// Mounts `secret` as KV v2 at `mount`, answering its read 403 with `body`.
async fn forbidden_read(server: &MockServer, mount: &str, body: ResponseTemplate) {
    bare_mount(server, &format!("{mount}/app"), mount, Some("2")).await;
    Mock::given(path(format!("/v1/{mount}/data/app")))
        .respond_with(body)
        .mount(server)
        .await;
}

async fn lookup_self(server: &MockServer, status: u16) {
    let answer = if status == 200 {
        ResponseTemplate::new(200).set_body_json(json!({"data": {"ttl": 0, "policies": ["x"]}}))
    } else {
        ResponseTemplate::new(status).set_body_json(json!({"errors": ["permission denied"]}))
    };
    Mock::given(path("/v1/auth/token/lookup-self"))
        .respond_with(answer)
        .mount(server)
        .await;
}

fn error_forms() -> Vec<(&'static str, ResponseTemplate)> {
    vec![
        (
            "errors",
            ResponseTemplate::new(403).set_body_json(json!({"errors": ["permission denied"]})),
        ),
        (
            "error",
            ResponseTemplate::new(403).set_body_json(json!({"error": "permission denied"})),
        ),
        ("empty", ResponseTemplate::new(403)),
        (
            "vault",
            ResponseTemplate::new(403)
                .set_body_json(json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]})),
        ),
    ]
}

/// Whatever the 403's form, `lookup-self` decides: a token the server takes
/// means a policy denial, one it rejects an authentication failure.
#[tokio::test]
async fn a_403_in_any_form_is_a_denial_or_an_auth_failure_as_lookup_self_says() {
    for (lookup, token_good) in [(200, true), (403, false)] {
        let server = MockServer::start().await;
        lookup_self(&server, lookup).await;
        for (form, answer) in error_forms() {
            let mount = format!("{form}{lookup}");
            forbidden_read(&server, &mount, answer).await;
            let err = VaultSecret::new(format!("{mount}/app"))
                .env(token_env(&server))
                .run()
                .await
                .unwrap_err();
            match (&err, token_good) {
                (Error::PermissionDenied { policy_paths, .. }, true) => {
                    assert_eq!(policy_paths, &[format!("{mount}/data/app")], "{form}");
                }
                (Error::AuthFailed { .. }, false) => {}
                (other, _) => panic!("{form}, lookup-self {lookup}: {other}"),
            }
            assert!(
                !format!("{err} {err:?}").contains("hunter2"),
                "{form}: {err}"
            );
        }
    }
}

#[tokio::test]
async fn an_html_502_from_a_proxy_is_a_server_error_named_by_status_and_type() {
    let server = MockServer::start().await;
    bare_mount(&server, "proxied/app", "proxied", Some("2")).await;
    Mock::given(path("/v1/proxied/data/app"))
        .respond_with(ResponseTemplate::new(502).set_body_raw(
            b"<html><h1>502 Bad Gateway</h1></html>".to_vec(),
            "text/html",
        ))
        .mount(&server)
        .await;
    let err = VaultSecret::new("proxied/app")
        .env(token_env(&server))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Server { status: 502, .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("text/html") && msg.contains("proxied/data/app"),
        "{msg}"
    );
    assert!(!msg.contains("Bad Gateway</h1>"), "{msg}");
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

    let server = MockServer::start().await;
    // A chain whose Vault source misses (404 on both KV versions, no preflight).
    let chain = SecretChain::first_try(
        "vault",
        VaultSource::under("quiet/apps")
            .builder(vault_secret::VaultClient::builder().env(token_env(&server))),
    );
    let missed = chain.get_optional("DB").await.unwrap();
    assert!(missed.is_none());
    // A read from a server without the preflight endpoint.
    Mock::given(path("/v1/quiet2/data/app"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"data": {"k": "v"}}})),
        )
        .mount(&server)
        .await;
    let v = VaultSecret::new("quiet2/app#k")
        .env(token_env(&server))
        .run()
        .await
        .unwrap();
    assert_eq!(v.expose_secret(), "v");
    let lines = loud.0.lock().unwrap().clone();
    assert!(lines.is_empty(), "{lines:?}");
}

#[tokio::test]
async fn an_address_with_a_path_prefix_reaches_vault_behind_a_proxy() {
    let server = MockServer::start().await;
    Mock::given(path("/vault/v1/sys/internal/ui/mounts/proxied/app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"path": "proxied/", "type": "kv", "options": {"version": "2"}}}),
        ))
        .mount(&server)
        .await;
    Mock::given(path("/vault/v1/proxied/data/app"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"data": {"k": "via proxy"}}})),
        )
        .mount(&server)
        .await;
    let address = format!("{}/vault/v1/", server.uri());
    let v = VaultSecret::new("proxied/app#k")
        .env(Env::from_map([
            ("VAULT_ADDR", address.as_str()),
            ("VAULT_TOKEN", TOKEN),
            ("HOME", "/nonexistent-home"),
        ]))
        .run()
        .await
        .unwrap();
    assert_eq!(v.expose_secret(), "via proxy");
}

#[tokio::test]
async fn an_answer_larger_than_any_secret_is_refused_not_read_whole() {
    let server = MockServer::start().await;
    bare_mount(&server, "huge/app", "huge", Some("2")).await;
    Mock::given(path("/v1/huge/data/app"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(vec![b' '; 33 * 1024 * 1024], "application/json"),
        )
        .mount(&server)
        .await;
    let err = VaultSecret::new("huge/app")
        .env(token_env(&server))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(err.to_string().contains("larger than 32 MiB"), "{err}");
    let reads = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/v1/huge/data/app")
        .count();
    assert_eq!(reads, 1, "a refused answer is not asked for again");
}

/// The same limit for an answer sent in chunks, with no announced length.
#[tokio::test]
async fn a_chunked_answer_is_held_to_the_same_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b' '; 1024 * 1024];
                for _ in 0..40 {
                    let frame = format!("{:x}\r\n", chunk.len());
                    if stream.write_all(frame.as_bytes()).await.is_err()
                        || stream.write_all(&chunk).await.is_err()
                        || stream.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    let err = VaultSecret::new("chunked/app")
        .kv_version(vault_secret::KvVersion::V2)
        .env(Env::from_map([
            ("VAULT_ADDR", address.as_str()),
            ("VAULT_TOKEN", TOKEN),
            ("HOME", "/nonexistent-home"),
        ]))
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than 32 MiB"), "{err}");
}
