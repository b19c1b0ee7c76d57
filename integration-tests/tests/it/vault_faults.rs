//! What a real server cannot show, against a mock: old servers, odd bodies,
//! server errors, redirects, a server that never answers.

use std::time::Duration;

use secret_core::Env;
use serde_json::json;
use vault_secret::{Error, VaultSecret};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "s.mock-token-hunter2";

// Mounts are cached per server address, and a mock server may get a port an
// earlier test's server had: each test here uses mount names of its own.

fn env(server: &MockServer, extra: &[(&str, &str)]) -> Env {
    let mut vars = vec![
        ("VAULT_ADDR".to_owned(), server.uri()),
        ("VAULT_TOKEN".to_owned(), TOKEN.to_owned()),
        ("HOME".to_owned(), "/nonexistent-home".to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Env::from_map(vars)
}

/// Vault's response wrapper around `data`.
fn wrapped(data: serde_json::Value) -> serde_json::Value {
    json!({"data": data, "lease_id": "", "lease_duration": 0, "renewable": false,
           "request_id": "r", "warnings": null, "wrap_info": null, "auth": null})
}

fn kv2_body(data: serde_json::Value) -> serde_json::Value {
    wrapped(
        json!({"data": data, "metadata": {"created_time": "", "deletion_time": "",
                   "destroyed": false, "version": 1, "custom_metadata": null}}),
    )
}

fn kv2_mount(mount: &str) -> serde_json::Value {
    wrapped(json!({"path": format!("{mount}/"), "type": "kv", "options": {"version": "2"}}))
}

#[tokio::test]
async fn an_old_server_without_the_preflight_endpoint_still_reads_kv2() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/sys/internal/ui/mounts/oldvault/app"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"errors": []})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/oldvault/data/app"))
        .and(header("X-Vault-Token", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(kv2_body(json!({"k": "v"}))))
        .mount(&server)
        .await;
    let v = VaultSecret::new("oldvault/app#k")
        .env(env(&server, &[]))
        .run()
        .await
        .unwrap();
    assert_eq!(v.expose_secret(), "v");
}

#[tokio::test]
async fn preflight_denied_finds_kv1_by_reading() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/sys/internal/ui/mounts/legacy/app"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"errors": [
            "preflight capability check returned 403, please ensure client's policies grant access to path \"legacy/app/\""
        ]})))
        .mount(&server)
        .await;
    // KV v2 API path on a KV v1 mount: 404 with no errors.
    Mock::given(path("/v1/legacy/data/app"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"errors": []})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/legacy/app"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(wrapped(json!({"user": "kv1-user"}))),
        )
        .expect(2)
        .mount(&server)
        .await;
    let e = env(&server, &[]);
    let v = VaultSecret::new("legacy/app")
        .env(e.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(v.to_json().unwrap(), json!({"user": "kv1-user"}));
    // The version found is cached: the second read goes straight to KV v1 (the v2 path is asked once).
    let v = VaultSecret::new("legacy/app#user")
        .env(e)
        .run()
        .await
        .unwrap();
    assert_eq!(v.expose_secret(), "kv1-user");
}

#[tokio::test]
async fn odd_bodies_are_errors_not_panics() {
    let server = MockServer::start().await;
    // A proxy's login page, answered 200 to every request: named by status,
    // content type and endpoint, never echoed, never serde's words.
    Mock::given(path_regex("^/v1/(sys/internal/ui/mounts/)?oddhtml/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("<html>proxy login</html>".as_bytes().to_vec(), "text/html"),
        )
        .mount(&server)
        .await;
    let err = VaultSecret::new("oddhtml/html")
        .env(env(&server, &[]))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Server { status: 200, .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("text/html") && msg.contains("oddhtml/data/html"),
        "{msg}"
    );
    assert!(
        !msg.contains("proxy login") && !msg.contains("line 1"),
        "{msg}"
    );

    Mock::given(path("/v1/sys/internal/ui/mounts/kv/list"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"path": "kv/", "type": "kv", "options": {"version": "2"}}}),
        ))
        .mount(&server)
        .await;
    Mock::given(path("/v1/oddkv/data/list"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(kv2_body(json!(["not", "a", "mapping"]))),
        )
        .mount(&server)
        .await;
    let err = VaultSecret::new("oddkv/list")
        .env(env(&server, &[]))
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a key/value mapping"), "{err}");
}

#[tokio::test]
async fn server_errors_carry_status_and_message_but_no_token() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/sys/internal/ui/mounts/fivehundred/app"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"errors": ["internal error"]})),
        )
        .mount(&server)
        .await;
    let err = VaultSecret::new("fivehundred/app")
        .env(env(&server, &[]))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Server { status: 500, .. }), "{err}");
    let msg = format!("{err} {err:?}");
    assert!(
        msg.contains("internal error") && !msg.contains("hunter2"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_the_token_never_leaves() {
    let elsewhere = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(kv2_mount("redirected")))
        .mount(&elsewhere)
        .await;
    let server = MockServer::start().await;
    Mock::given(path("/v1/sys/internal/ui/mounts/redirected/app"))
        .respond_with(ResponseTemplate::new(307).insert_header(
            "Location",
            format!(
                "{}/v1/sys/internal/ui/mounts/redirected/app",
                elsewhere.uri()
            ),
        ))
        .mount(&server)
        .await;
    let err = VaultSecret::new("redirected/app")
        .env(env(&server, &[]))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Server { status: 307, .. }), "{err}");
    // Only this test's token counts: a pooled mock server's port may have
    // served another test, whose session can still revoke its own token there.
    let followed: Vec<String> = elsewhere
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            r.headers
                .get("x-vault-token")
                .is_some_and(|t| t.as_bytes() == TOKEN.as_bytes())
        })
        .map(|r| format!("{} {}", r.method, r.url))
        .collect();
    assert!(followed.is_empty(), "followed the redirect: {followed:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let err = VaultSecret::new("slow/app")
        .env(env(&server, &[("VAULT_CLIENT_TIMEOUT", "300ms")]))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    // Bounded by the timeout, not by the server's 30 s.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn version_query_is_sent_for_kv2() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/sys/internal/ui/mounts/vq/kv/app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(kv2_mount("vq/kv")))
        .mount(&server)
        .await;
    Mock::given(path("/v1/vq/kv/data/app"))
        .and(query_param("version", "4"))
        .respond_with(ResponseTemplate::new(200).set_body_json(kv2_body(json!({"v": "four"}))))
        .mount(&server)
        .await;
    let v = VaultSecret::new("vq/kv/app?version=4#v")
        .env(env(&server, &[]))
        .run()
        .await
        .unwrap();
    assert_eq!(v.expose_secret(), "four");
}

#[test]
fn a_runtime_shutting_down_does_not_break_reads_on_another() {
    // Runtime A reads (its connection goes back to the pool), then runtime B
    // starts a slow read, then A shuts down mid-read. A connection belongs to
    // the runtime that opened it: B must not be using A's.
    let mock_rt = tokio::runtime::Runtime::new().unwrap();
    let server = mock_rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(path("/v1/sys/internal/ui/mounts/rtswap/fast"))
            .respond_with(ResponseTemplate::new(200).set_body_json(kv2_mount("rtswap")))
            .mount(&server)
            .await;
        Mock::given(path("/v1/rtswap/data/fast"))
            .respond_with(ResponseTemplate::new(200).set_body_json(kv2_body(json!({"k": "fast"}))))
            .mount(&server)
            .await;
        Mock::given(path("/v1/rtswap/data/slow"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(kv2_body(json!({"k": "slow"})))
                    .set_delay(Duration::from_millis(800)),
            )
            .mount(&server)
            .await;
        server
    });
    let e = env(&server, &[]);
    let runtime_a = tokio::runtime::Runtime::new().unwrap();
    let fast = runtime_a
        .block_on(VaultSecret::new("rtswap/fast#k").env(e.clone()).run())
        .unwrap();
    assert_eq!(fast.expose_secret(), "fast");

    let slow = std::thread::spawn(move || {
        VaultSecret::new("rtswap/slow#k")
            .env(e)
            .run_blocking()
            .map(|v| v.expose_secret().to_owned())
    });
    std::thread::sleep(Duration::from_millis(200));
    runtime_a.shutdown_background();
    assert_eq!(slow.join().unwrap().unwrap(), "slow");
    drop(mock_rt);
}

#[tokio::test]
async fn the_preflight_is_asked_once_per_mount() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path_regex(
        "^/v1/sys/internal/ui/mounts/once/",
    ))
    .respond_with(ResponseTemplate::new(200).set_body_json(kv2_mount("once")))
    .expect(1)
    .mount(&server)
    .await;
    Mock::given(wiremock::matchers::path_regex("^/v1/once/data/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(kv2_body(json!({"k": "v"}))))
        .expect(3)
        .mount(&server)
        .await;
    for path in ["once/a#k", "once/b#k", "once/deep/c#k"] {
        let v = VaultSecret::new(path)
            .env(env(&server, &[]))
            .run()
            .await
            .unwrap();
        assert_eq!(v.expose_secret(), "v");
    }
    // Dropping the server checks the expectations: one preflight, three reads.
}
