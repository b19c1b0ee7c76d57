//! Faults and retries, against `MockVault` (or, where HTTP cannot show it, a
//! raw TCP server): what is retried (connection errors, 412, 429, 5xx,
//! elections), how often, how long a call may take, and what the error says
//! when it gives up (sealed, timed out, redirected, too large). Each test
//! counts the attempts the server saw.
//!
//! Mounts are cached per client, and a pooled mock server may get the port
//! (so the default client) of an earlier test: each test uses mount names of
//! its own.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vault_secret::testing::{MockAnswer, MockVault};
use vault_secret::{Error, KvVersion, VaultSecret};

/// A KV v2 read of `<mount>/app` with `vars` set. The version is given; the
/// mount lookup still asks (the mock denies it), so counts are of the read.
fn read(mock: &MockVault, mount: &str, vars: &[(&str, &str)]) -> VaultSecret {
    VaultSecret::new(format!("{mount}/app"))
        .kv_version(KvVersion::V2)
        .env(mock.env_with(vars))
}

/// A mock whose `<mount>/app` answers `failure` to the first `times` reads,
/// then the secret `{"k": "v"}`.
async fn failing_then_ok(mount: &str, failure: MockAnswer, times: u64) -> MockVault {
    let mock = MockVault::start().await;
    // The answer given first applies while its `times` last.
    mock.answer(&format!("{mount}/data/app"), failure.times(times))
        .await;
    mock.kv2(&format!("{mount}/app"), json!({"k": "v"})).await;
    mock
}

#[tokio::test]
async fn a_503_twice_then_200_succeeds_on_the_third_attempt() {
    let mock = failing_then_ok("r503", MockAnswer::errors(503, &["unavailable"]), 2).await;
    let v = read(&mock, "r503", &[]).run().await.unwrap();
    assert_eq!(v.to_json().unwrap(), json!({"k": "v"}));
    assert_eq!(mock.count("r503/data/app").await, 3);
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let limited = MockAnswer::errors(429, &["rate limited"]).header("Retry-After", "1");
    let mock = failing_then_ok("r429", limited, 1).await;
    let started = Instant::now();
    read(&mock, "r429", &[]).run().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(mock.count("r429/data/app").await, 2);
}

#[tokio::test]
async fn a_412_then_200_succeeds() {
    let stale = MockAnswer::errors(412, &["required index state not present"]);
    let mock = failing_then_ok("r412", stale, 1).await;
    read(&mock, "r412", &[]).run().await.unwrap();
    assert_eq!(mock.count("r412/data/app").await, 2);
}

/// A standby answering "no active Vault instance" while the cluster elects
/// a leader is asked again past `VAULT_MAX_RETRIES` (within the election
/// budget, when retries are on at all).
#[tokio::test]
async fn an_election_is_ridden_out_beyond_the_counted_retries() {
    let electing = MockAnswer::errors(503, &["no active Vault instance found"]);
    let mock = failing_then_ok("relect", electing, 3).await;
    let v = read(&mock, "relect", &[("VAULT_MAX_RETRIES", "1")])
        .run()
        .await
        .unwrap();
    assert_eq!(v.to_json().unwrap(), json!({"k": "v"}));
    assert_eq!(mock.count("relect/data/app").await, 4);
}

#[tokio::test]
async fn a_500_forever_fails_after_one_plus_max_retries_attempts() {
    let mock = MockVault::start().await;
    mock.answer(
        "r500/data/app",
        MockAnswer::errors(500, &["internal error"]),
    )
    .await;
    let err = read(&mock, "r500", &[]).run().await.unwrap_err();
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
    assert_eq!(mock.count("r500/data/app").await, 3);

    let err = read(&mock, "r500", &[("VAULT_MAX_RETRIES", "4")])
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("5 attempts"), "{err}");
    assert_eq!(mock.count("r500/data/app").await, 3 + 5);
}

/// A 5xx on the mount lookup ends the call too, quoting the server's
/// message and never the token.
#[tokio::test]
async fn a_500_on_the_mount_lookup_quotes_the_server_not_the_token() {
    let mock = MockVault::start().await;
    mock.answer(
        "sys/internal/ui/mounts/fivehundred/app",
        MockAnswer::errors(500, &["internal error"]),
    )
    .await;
    let err = mock.secret("fivehundred/app").run().await.unwrap_err();
    assert!(matches!(err, Error::Server { status: 500, .. }), "{err}");
    let msg = format!("{err} {err:?}");
    let token = mock.root_token();
    assert!(
        msg.contains("internal error") && !msg.contains(token.expose_secret()),
        "{msg}"
    );
}

#[tokio::test]
async fn max_retries_zero_makes_exactly_one_attempt() {
    let mock = MockVault::start().await;
    mock.answer("rzero/data/app", MockAnswer::errors(503, &["unavailable"]))
        .await;
    let err = read(&mock, "rzero", &[("VAULT_MAX_RETRIES", "0")])
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
    assert_eq!(mock.count("rzero/data/app").await, 1);
}

#[tokio::test]
async fn a_bad_max_retries_names_the_variable() {
    let mock = MockVault::start().await;
    for bad in ["-1", "many", "1000"] {
        let err = read(&mock, "rbad", &[("VAULT_MAX_RETRIES", bad)])
            .run()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config { name, .. } if name == "VAULT_MAX_RETRIES"),
            "{bad}: {err}"
        );
    }
    assert_eq!(mock.count("rbad/data/app").await, 0);
}

#[tokio::test]
async fn a_sealed_server_is_the_sealed_error_after_the_retries() {
    let mock = MockVault::start().await;
    mock.answer(
        "sealed/data/app",
        MockAnswer::errors(503, &["Vault is sealed"]),
    )
    .await;
    let err = read(&mock, "sealed", &[]).run().await.unwrap_err();
    assert!(matches!(err, Error::Sealed { .. }), "{err}");
    assert!(err.to_string().contains("sealed"), "{err}");
    assert_eq!(mock.count("sealed/data/app").await, 3);
}

#[tokio::test]
async fn a_403_and_a_404_are_not_retried() {
    let mock = MockVault::start().await;
    // `nf` is unknown: the mock answers 404. The token itself is good
    // (lookup-self answers 200), so the 403 is a policy denial.
    mock.deny("denied/app").await;
    let err = read(&mock, "nf", &[]).run().await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(mock.count("nf/data/app").await, 1);
    let err = read(&mock, "denied", &[]).run().await.unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    assert_eq!(mock.count("denied/data/app").await, 1);
}

#[tokio::test]
async fn an_approle_login_answering_503_once_then_200_succeeds() {
    let mock = MockVault::start().await;
    mock.answer(
        "auth/approle/login",
        MockAnswer::errors(503, &["unavailable"])
            .method("POST")
            .times(1),
    )
    .await;
    let login = mock.login_approle().await;
    mock.kv2("rlogin/app", json!({"k": "v"})).await;
    VaultSecret::new("rlogin/app")
        .kv_version(KvVersion::V2)
        .env(mock.env_for(&login))
        .run()
        .await
        .unwrap();
    assert_eq!(mock.count("auth/approle/login").await, 2);
}

/// One test for a server that never answers, on the read (named, with the
/// setting and the attempts) and on the mount lookup before it.
#[tokio::test]
async fn a_hanging_server_fails_in_bounded_time_naming_the_timeout() {
    let mock = MockVault::start().await;
    let hang = MockAnswer::kv2_data(json!({"k": "v"})).delay(Duration::from_secs(60));
    mock.answer("hang/data/app", hang.clone()).await;
    mock.answer("sys/internal/ui/mounts/hang2/app", hang).await;
    let timeout = [("VAULT_CLIENT_TIMEOUT", "300ms")];
    let started = Instant::now();
    let err = read(&mock, "hang", &timeout).run().await.unwrap_err();
    let took = started.elapsed();
    // Three attempts of 0.3 s each and two short waits, not the server's 60 s.
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    let msg = err.to_string();
    assert!(matches!(err, Error::Transport { .. }), "{msg}");
    assert!(
        msg.contains("timed out")
            && msg.contains("VAULT_CLIENT_TIMEOUT")
            && msg.contains("3 attempts"),
        "{msg}"
    );
    assert!(msg.contains("hang/data/app"), "{msg}");

    let started = Instant::now();
    let err = VaultSecret::new("hang2/app")
        .env(mock.env_with(&timeout))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(err.to_string().contains("sys/internal/ui/mounts"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_the_token_never_leaves() {
    let elsewhere = MockVault::start().await;
    elsewhere.kv2("redirected/app", json!({"k": "v"})).await;
    let mock = MockVault::start().await;
    let lookup = "sys/internal/ui/mounts/redirected/app";
    mock.answer(
        lookup,
        MockAnswer::empty(307).header("Location", format!("{}/v1/{lookup}", elsewhere.addr())),
    )
    .await;
    let err = mock.secret("redirected/app").run().await.unwrap_err();
    assert!(matches!(err, Error::Server { status: 307, .. }), "{err}");
    // This test's paths only: a pooled mock server's port may have served
    // another test, whose client can still call it.
    let followed: Vec<String> = elsewhere
        .received()
        .await
        .into_iter()
        .filter(|r| r.path.contains("redirected"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(followed.is_empty(), "followed the redirect: {followed:?}");
}

#[test]
fn a_runtime_shutting_down_does_not_break_reads_on_another() {
    // Runtime A reads (its connection goes back to the pool), then runtime B
    // starts a slow read, then A shuts down mid-read. A connection belongs to
    // the runtime that opened it: B must not be using A's.
    let mock_rt = tokio::runtime::Runtime::new().unwrap();
    let mock = mock_rt.block_on(async {
        let mock = MockVault::start().await;
        mock.kv2("rtswap/fast", json!({"k": "fast"})).await;
        let slow = MockAnswer::kv2_data(json!({"k": "slow"})).delay(Duration::from_millis(800));
        mock.answer("rtswap/data/slow", slow).await;
        mock
    });
    let e = mock.env_with(&[]);
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
async fn an_answer_larger_than_any_secret_is_refused_not_read_whole() {
    let mock = MockVault::start().await;
    let huge = vec![b' '; 33 * 1024 * 1024];
    mock.answer(
        "huge/data/app",
        MockAnswer::text(200, "application/json", huge),
    )
    .await;
    let err = read(&mock, "huge", &[]).run().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(
        err.to_string().contains("larger than 4194304 bytes"),
        "{err}"
    );
    assert_eq!(
        mock.count("huge/data/app").await,
        1,
        "a refused answer is not asked for again"
    );
}

/// A raw HTTP/1.1 server on a loopback port, for what wiremock cannot do
/// (reset a connection, stream an endless body): each connection's request
/// is read, then `reply(n, stream)` answers the n-th connection (from 0).
/// Returns the address and the number of connections so far.
async fn raw_server<F, R>(reply: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(usize, TcpStream) -> R + Send + Sync + 'static,
    R: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = format!("http://{}", listener.local_addr().expect("its address"));
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    let reply = Arc::new(reply);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                reply(n, stream).await;
            });
        }
    });
    (address, connections)
}

#[tokio::test]
async fn a_connection_reset_then_200_succeeds() {
    let (address, connections) = raw_server(|n, mut stream| async move {
        if n == 0 {
            // A zero linger does not block: the close sends a reset before
            // any answer.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            return;
        }
        let body = r#"{"data":{"data":{"k":"after-reset"}}}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
    })
    .await;
    let v = VaultSecret::new("reset/app#k")
        .kv_version(KvVersion::V2)
        .env(token_env(&address))
        .run()
        .await
        .unwrap();
    assert_eq!(v.expose_secret(), "after-reset");
    // The mount lookup (reset, then retried: its answer is not a mount, so
    // the read goes by the first segment), then the read.
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

/// The size limit for an answer sent in chunks, with no announced length.
#[tokio::test]
async fn a_chunked_answer_is_held_to_the_same_limit() {
    let (address, _) = raw_server(|_, mut stream| async move {
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
    })
    .await;
    let err = VaultSecret::new("chunked/app")
        .kv_version(KvVersion::V2)
        .env(token_env(&address))
        .run()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("larger than 4194304 bytes"),
        "{err}"
    );
}

/// `VAULT_ADDR` of a raw server and a token, for a server that is no
/// `MockVault`.
fn token_env(address: &str) -> secret_core::Env {
    secret_core::Env::from_map([
        ("VAULT_ADDR", address),
        ("VAULT_TOKEN", "s.raw-server-token"),
    ])
}

/// A long list of paths (`exec` with many secrets) is read a few at a time,
/// so the answers held at once stay bounded: 24 paths that each take 400 ms
/// need at least three rounds, where reading them all at once takes one.
#[tokio::test]
async fn many_paths_are_read_a_few_at_a_time() {
    let mock = MockVault::start().await;
    mock.kv2("wave/p0", json!({"n": 0})).await;
    let paths: Vec<String> = (0..24).map(|i| format!("wave/slow{i}#n")).collect();
    for i in 0..24 {
        let slow = MockAnswer::kv2_data(json!({"n": i})).delay(Duration::from_millis(400));
        mock.answer(&format!("wave/data/slow{i}"), slow).await;
    }
    let client = vault_secret::VaultClient::builder()
        .env(mock.env_with(&[]))
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    let values = client.read_many(&paths).await.expect("the reads");
    let took = started.elapsed();
    let read: Vec<String> = values
        .iter()
        .map(|v| v.expose_secret().to_owned())
        .collect();
    let expected: Vec<String> = (0..24).map(|i| i.to_string()).collect();
    assert_eq!(read, expected);
    assert!(
        took >= Duration::from_millis(1150),
        "24 slow paths read in {took:?}: more than eight at once"
    );
}
