//! The fault suite: what is retried, how often, how long it may take, and
//! what the error says when it gives up. One test per case, against a mock
//! (or, for a connection reset, a raw TCP server), each asserting the number
//! of attempts the server saw.

use std::time::{Duration, Instant};

use secret_core::Env;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vault_secret::{Error, KvVersion, VaultSecret};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "s.retry-token-hunter2";

fn env(address: &str, extra: &[(&str, &str)]) -> Env {
    let mut vars = vec![
        ("VAULT_ADDR".to_owned(), address.to_owned()),
        ("VAULT_TOKEN".to_owned(), TOKEN.to_owned()),
        ("HOME".to_owned(), "/nonexistent-home".to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Env::from_map(vars)
}

/// A KV v2 read of `<mount>/app` (no preflight: the version is given).
fn read(server: &MockServer, mount: &str, extra: &[(&str, &str)]) -> VaultSecret {
    VaultSecret::new(format!("{mount}/app"))
        .kv_version(KvVersion::V2)
        .env(env(&server.uri(), extra))
}

fn ok_body() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {"data": {"k": "v"}}}))
}

/// Answers `status` the first `times` requests to `api_path`, then 200 with the secret.
async fn fail_then_succeed(
    server: &MockServer,
    api_path: &str,
    failure: ResponseTemplate,
    times: u64,
) {
    Mock::given(path(api_path))
        .respond_with(failure)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(path(api_path))
        .respond_with(ok_body())
        .with_priority(2)
        .mount(server)
        .await;
}

async fn attempts(server: &MockServer, api_path: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == api_path)
        .count()
}

fn status(code: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({"errors": [message]}))
}

#[tokio::test]
async fn a_503_twice_then_200_succeeds_on_the_third_attempt() {
    let server = MockServer::start().await;
    fail_then_succeed(&server, "/v1/r503/data/app", status(503, "unavailable"), 2).await;
    let v = read(&server, "r503", &[]).run().await.unwrap();
    assert_eq!(v.to_json().unwrap(), json!({"k": "v"}));
    assert_eq!(attempts(&server, "/v1/r503/data/app").await, 3);
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    let limited = status(429, "rate limited").insert_header("Retry-After", "1");
    fail_then_succeed(&server, "/v1/r429/data/app", limited, 1).await;
    let started = Instant::now();
    read(&server, "r429", &[]).run().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(attempts(&server, "/v1/r429/data/app").await, 2);
}

#[tokio::test]
async fn a_412_then_200_succeeds() {
    let server = MockServer::start().await;
    fail_then_succeed(
        &server,
        "/v1/r412/data/app",
        status(412, "required index state not present"),
        1,
    )
    .await;
    read(&server, "r412", &[]).run().await.unwrap();
    assert_eq!(attempts(&server, "/v1/r412/data/app").await, 2);
}

#[tokio::test]
async fn a_500_forever_fails_after_one_plus_max_retries_attempts() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/r500/data/app"))
        .respond_with(status(500, "internal error"))
        .mount(&server)
        .await;
    let err = read(&server, "r500", &[]).run().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Server {
                status: 500,
                attempts: 3,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("500") && msg.contains("3 attempts") && msg.contains("r500/data/app"),
        "{msg}"
    );
    assert_eq!(attempts(&server, "/v1/r500/data/app").await, 3);

    let err = read(&server, "r500", &[("VAULT_MAX_RETRIES", "4")])
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("5 attempts"), "{err}");
    assert_eq!(attempts(&server, "/v1/r500/data/app").await, 3 + 5);
}

#[tokio::test]
async fn max_retries_zero_makes_exactly_one_attempt() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/rzero/data/app"))
        .respond_with(status(503, "unavailable"))
        .mount(&server)
        .await;
    let err = read(&server, "rzero", &[("VAULT_MAX_RETRIES", "0")])
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Server {
                status: 503,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(attempts(&server, "/v1/rzero/data/app").await, 1);
}

#[tokio::test]
async fn a_bad_max_retries_names_the_variable() {
    let server = MockServer::start().await;
    for bad in ["-1", "many", "1000"] {
        let err = read(&server, "rbad", &[("VAULT_MAX_RETRIES", bad)])
            .run()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config { name, .. } if name == "VAULT_MAX_RETRIES"),
            "{bad}: {err}"
        );
    }
    assert_eq!(attempts(&server, "/v1/rbad/data/app").await, 0);
}

/// A raw HTTP server: the first connection is reset before any answer, the
/// next ones get the secret. Returns its address and the connection count.
async fn reset_once_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = format!(
        "http://{}",
        listener.local_addr().expect("the listener's address")
    );
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                // Read the request, then reset: closed before a response.
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                // A zero linger does not block: the close sends a reset.
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                drop(stream);
                continue;
            }
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let body = r#"{"data":{"data":{"k":"after-reset"}}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (address, connections)
}

#[tokio::test]
async fn a_connection_reset_then_200_succeeds() {
    let (address, connections) = reset_once_server().await;
    let v = VaultSecret::new("reset/app#k")
        .kv_version(KvVersion::V2)
        .env(env(&address, &[]))
        .run()
        .await
        .unwrap();
    assert_eq!(v.expose_secret(), "after-reset");
    // The mount preflight (reset, then retried: its answer is not a mount,
    // so the read goes by the first segment), then the read.
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_hanging_server_fails_in_bounded_time_naming_the_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/hang/data/app"))
        .respond_with(ok_body().set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = read(&server, "hang", &[("VAULT_CLIENT_TIMEOUT", "2")])
        .run()
        .await
        .unwrap_err();
    let took = started.elapsed();
    // Three attempts of 2 s each and two short waits.
    assert!(took < Duration::from_secs(12), "{took:?}");
    assert!(took >= Duration::from_secs(6), "{took:?}");
    let msg = err.to_string();
    assert!(matches!(err, Error::Transport { .. }), "{msg}");
    assert!(
        msg.contains("timed out")
            && msg.contains("VAULT_CLIENT_TIMEOUT")
            && msg.contains("3 attempts"),
        "{msg}"
    );
    assert!(msg.contains("hang/data/app"), "{msg}");
}

#[tokio::test]
async fn a_sealed_server_is_the_sealed_error_after_the_retries() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/sealed/data/app"))
        .respond_with(status(503, "Vault is sealed"))
        .mount(&server)
        .await;
    let err = read(&server, "sealed", &[]).run().await.unwrap_err();
    assert!(matches!(err, Error::Sealed { .. }), "{err}");
    assert!(err.to_string().contains("sealed"), "{err}");
    assert_eq!(attempts(&server, "/v1/sealed/data/app").await, 3);
}

#[tokio::test]
async fn a_403_and_a_404_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/nf/data/app"))
        .respond_with(status(404, "not found"))
        .mount(&server)
        .await;
    Mock::given(path("/v1/denied/data/app"))
        .respond_with(status(403, "permission denied"))
        .mount(&server)
        .await;
    Mock::given(path("/v1/auth/token/lookup-self"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"ttl": 0}})))
        .mount(&server)
        .await;
    let err = read(&server, "nf", &[]).run().await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(attempts(&server, "/v1/nf/data/app").await, 1);
    let err = read(&server, "denied", &[]).run().await.unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    assert_eq!(attempts(&server, "/v1/denied/data/app").await, 1);
}

#[tokio::test]
async fn an_approle_login_answering_503_once_then_200_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(status(503, "unavailable"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/auth/approle/login"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"auth": {"client_token": "s.issued", "lease_duration": 60, "renewable": true}}),
        ))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(path("/v1/rlogin/data/app"))
        .respond_with(ok_body())
        .mount(&server)
        .await;
    let creds = json!({"VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": "s"}).to_string();
    let env = Env::from_map([
        ("VAULT_ADDR", server.uri().as_str()),
        ("HOME", "/nonexistent-home"),
        ("VAULT_CREDENTIALS", creds.as_str()),
    ]);
    VaultSecret::new("rlogin/app")
        .kv_version(KvVersion::V2)
        .env(env)
        .run()
        .await
        .unwrap();
    assert_eq!(attempts(&server, "/v1/auth/approle/login").await, 2);
}
