//! Log canary (issue 9), in a test binary of its own: it captures every
//! log line of the process at TRACE, so no other test runs beside it (a
//! subscriber or callsite interest another test sets could hide lines).
//!
//! The whole flow (token, AppRole, Kubernetes, JWT and certificate
//! logins, KV v1 and v2 reads, a renewal, a revocation, a retried fault,
//! the errors users meet) runs with every target logged at TRACE, span
//! events included, and the `Debug` output of every public type it meets
//! captured; then not one byte sequence of any token, id, JWT or secret
//! value may appear in either.
//!
//! `reqwest` logs through the `log` crate: `tracing_log::LogTracer` forwards
//! those records to this thread's subscriber.

// Shared with the `it` binary, which uses more of it.
#[allow(dead_code)]
#[path = "common/log_capture.rs"]
pub mod log_capture;

use std::io::Write;
use std::time::Duration;

use secret_core::{Env, SecretChain};
use serde_json::{Value, json};
use vault_secret::testing::{DevVault, MockVault, Token};
use vault_secret::{Error, KvVersion, VaultClient, VaultConfig, VaultSecret, VaultSource};

/// `{:?}` and `{:#?}` of everything the flow met.
#[derive(Default)]
struct Shown(Vec<u8>);

impl Shown {
    fn debug(&mut self, value: &dyn std::fmt::Debug) {
        let _ = writeln!(self.0, "{value:?}\n{value:#?}");
    }

    /// `Debug` and `Display` of an error.
    fn error(&mut self, error: &Error) {
        self.debug(error);
        let _ = writeln!(self.0, "{error}");
    }
}

/// Values that must never be shown, each with a label for the message.
#[derive(Default)]
struct Canaries(Vec<(String, String)>);

impl Canaries {
    fn add(&mut self, label: impl Into<String>, value: impl Into<String>) {
        let value = value.into();
        let label = label.into();
        assert!(value.len() >= 8, "{label}: too short for a canary");
        self.0.push((label, value));
    }

    /// Fails naming the canary and where it was found, never showing it:
    /// the message gives the text before it on its line, at most 200 bytes.
    fn check(&self, place: &str, haystack: &[u8]) {
        for (label, value) in &self.0 {
            let needle = value.as_bytes();
            if let Some(at) = haystack.windows(needle.len()).position(|w| w == needle) {
                let line_start = haystack[..at]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |i| i + 1)
                    .max(at.saturating_sub(200));
                panic!(
                    "{label} appears in the {place}, after: {:?}",
                    String::from_utf8_lossy(&haystack[line_start..at])
                );
            }
        }
    }
}

fn read_policy(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| format!(r#"path "{p}" {{ capabilities = ["read"] }}"#))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `client_token` string anywhere in `value`.
fn client_tokens(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if key == "client_token" && !s.is_empty() => {
                        out.push(s.clone());
                    }
                    _ => client_tokens(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| client_tokens(v, out)),
        _ => {}
    }
}

/// `value` as text, failing without showing it when it is not `expected`.
fn assert_value(value: &secret_core::SecretValue, expected: &str, what: &str) {
    assert!(
        value.expose_secret() == expected,
        "{what}: not the value written"
    );
}

const KV2_VALUE: &str = "canary-secret-value-7f3a";
const KV2_KEY: &str = "canary-kv2-api-key-91be";
const KV1_VALUE: &str = "canary-kv1-value-c0de";
const MOCK_VALUE: &str = "canary-mock-value-4b2d";
const BAD_TOKEN: &str = "canary-bad-token-5e1d";
const WRONG_SECRET_ID: &str = "canary-wrong-secret-id-aa01";
const WRITTEN_V2: &str = "canary-written-v2-value-31c7";
const PATCHED_V2: &str = "canary-patched-v2-value-08d4";
const WRITTEN_V1: &str = "canary-written-v1-value-e6a9";
const WRITE_DENIED: &str = "canary-write-denied-value-7b12";
const WRITE_LOST: &str = "canary-write-lost-value-c4f0";

#[tokio::test]
async fn no_token_id_jwt_or_secret_value_reaches_the_logs_or_debug_output() {
    // This runtime is single-threaded: the guard covers every await below.
    // Every formatted event and span of every target.
    // The check below that reqwest's records arrived tells the capture works.
    let (capture, _guard) = log_capture::LogCapture::trace_everything();

    let mut shown = Shown::default();
    let mut canaries = Canaries::default();

    // --- A server of the test's own: its audit logs hold only this flow.
    let vault = DevVault::start().await.expect("a dev Vault");
    let raw_dir = tempfile::tempdir().unwrap();
    let raw_log = raw_dir.path().join("raw-audit.log");
    // A second audit device with `log_raw`: the tokens the server issued,
    // unhashed, so they can be looked for too.
    vault
        .admin()
        .put(
            "sys/audit/canary-raw",
            &json!({"type": "file", "options": {
                "file_path": raw_log.display().to_string(), "log_raw": "true"}}),
        )
        .await
        .expect_ok("enable the raw audit device");
    let audit = vault.audit_requests().await;

    let kv2 = vault.kv_mount(KvVersion::V2).await;
    let kv1 = vault.kv_mount(KvVersion::V1).await;
    let kv2_path = format!("{kv2}/canary/app");
    let kv1_path = format!("{kv1}/canary/app");
    vault
        .kv_put(
            &kv2_path,
            json!({"password": KV2_VALUE, "api_key": KV2_KEY}),
        )
        .await;
    vault
        .kv_put(&kv1_path, json!({"password": KV1_VALUE}))
        .await;
    let policy = vault
        .policy(
            "canary",
            &read_policy(&[format!("{kv2}/data/canary/*"), format!("{kv1}/canary/*")]),
        )
        .await;
    let token = vault.token(&[&policy]).await;
    let approle = vault.approle(&[&policy]).await;
    // A short lease, so the session renews it within the test.
    let role_update = vault
        .admin()
        .post(
            &format!("auth/{}/role/app", approle.mount()),
            &json!({"token_ttl": "3s", "token_max_ttl": "1h"}),
        )
        .await;
    shown.debug(&role_update);
    assert!(role_update.is_success(), "HTTP {}", role_update.status);
    let kube = vault.kubernetes("canary", &[&policy]).await;
    // The dev server's own root token is the word `root`, which logs hold
    // as a policy name: a token with the root policy stands in for it.
    let root = Token::new(
        vault
            .admin()
            .create_token_with(&json!({"policies": ["root"], "ttl": "1h"}))
            .await,
    );

    canaries.add("a root token", root.expose_secret());
    canaries.add("the policy token", token.expose_secret());
    canaries.add("the AppRole role id", approle.role_id());
    canaries.add("the AppRole secret id", approle.secret_id());
    canaries.add("the Kubernetes JWT", kube.fixture().jwt());
    canaries.add("the KV v2 password", KV2_VALUE);
    canaries.add("the KV v2 api key", KV2_KEY);
    canaries.add("the KV v1 password", KV1_VALUE);
    canaries.add("the mock's secret value", MOCK_VALUE);
    canaries.add("a malformed token", BAD_TOKEN);
    canaries.add("a wrong secret id", WRONG_SECRET_ID);
    for value in [
        &vault as &dyn std::fmt::Debug,
        &root,
        &token,
        &approle,
        &kube,
        kube.fixture(),
        &audit,
        &vault.admin(),
    ] {
        shown.debug(value);
    }
    let before = audit.mark().await;

    // --- Token login: reads of both KV versions, and what a session tells.
    let session = VaultClient::builder()
        .env(vault.env_for(&token))
        .build()
        .await
        .unwrap();
    let v2 = session.read(&format!("{kv2_path}#password")).await.unwrap();
    assert_value(&v2, KV2_VALUE, "KV v2 with a token");
    let whole = session.read(&kv2_path).await.unwrap();
    let v1 = session.read(&format!("{kv1_path}#password")).await.unwrap();
    assert_value(&v1, KV1_VALUE, "KV v1 with a token");
    let as_root = VaultSecret::new(format!("{kv2_path}#password"))
        .env(vault.env_for(&root))
        .run()
        .await
        .unwrap();
    assert_value(&as_root, KV2_VALUE, "KV v2 with a root token");
    shown.debug(&as_root);
    let info = session.inspect().token_info().await.unwrap();
    let health = session.inspect().health().await.unwrap();
    let mount = session.inspect().mount_of(&kv2_path).await.unwrap();
    let config: &VaultConfig = session.config();
    for value in [
        &session as &dyn std::fmt::Debug,
        &v2,
        &whole,
        &v1,
        &info,
        &health,
        &mount,
        config,
        &VaultClient::builder().env(vault.env_for(&token)),
        &vault.env_for(&token),
    ] {
        shown.debug(value);
    }

    // --- AppRole login, a renewal past two thirds of the 3 s lease, a revocation.
    let approle_session = VaultClient::builder()
        .env(vault.env_for(&approle))
        .build()
        .await
        .unwrap();
    let first = approle_session
        .read(&format!("{kv2_path}#api_key"))
        .await
        .unwrap();
    assert_value(&first, KV2_KEY, "KV v2 with AppRole");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let second = approle_session
        .read(&format!("{kv1_path}#password"))
        .await
        .unwrap();
    assert_value(&second, KV1_VALUE, "KV v1 with AppRole after the renewal");
    let renewed_info = approle_session.inspect().token_info().await.unwrap();
    shown.debug(&renewed_info);
    approle_session.shutdown().await.unwrap();
    shown.debug(&approle_session);
    let requests = audit.requests_since(&before).await;
    let count = |path: &str| requests.iter().filter(|r| r.path == path).count();
    let login_path = format!("auth/{}/login", approle.mount());
    assert_eq!(
        count(&login_path),
        1,
        "one AppRole login, renewed rather than redone"
    );
    assert_eq!(count("auth/token/renew-self"), 1, "one renewal");
    assert_eq!(count("auth/token/revoke-self"), 1, "one revocation");

    // --- A response-wrapped secret id: unwrapped at the first login, and a
    // second client finding it used. The wrapping token is a canary here,
    // the secret id it unwrapped to once the raw audit log gives it (below).
    let wrapped = vault.approle_wrapped(&[&policy]).await;
    canaries.add("the wrapping token", wrapped.secret_id());
    let wrapped_session = VaultClient::builder()
        .env(vault.env_for(&wrapped))
        .build()
        .await
        .unwrap();
    let unwrapped_read = wrapped_session
        .read(&format!("{kv2_path}#password"))
        .await
        .unwrap();
    assert_value(&unwrapped_read, KV2_VALUE, "KV v2 with a wrapped secret id");
    let reused = VaultClient::builder()
        .env(vault.env_for(&wrapped))
        .build()
        .await
        .unwrap()
        .read(&format!("{kv2_path}#password"))
        .await
        .unwrap_err();
    assert!(
        matches!(reused, Error::WrappedSecretId { .. }),
        "a used wrapping token"
    );
    shown.error(&reused);
    wrapped_session.shutdown().await.unwrap();
    shown.debug(&wrapped_session);
    shown.debug(&wrapped);

    // --- Kubernetes login, through VaultSecret and through a chain's VaultSource.
    let kube_secret = VaultSecret::new(format!("{kv1_path}#password")).env(vault.env_for(&kube));
    let kube_value = kube_secret.run().await.unwrap();
    assert_value(&kube_value, KV1_VALUE, "KV v1 with Kubernetes");
    let source =
        VaultSource::fields_of(&kv2_path).builder(VaultClient::builder().env(vault.env_for(&kube)));
    shown.debug(&source);
    let chain = SecretChain::first_try("vault", source);
    let from_chain = chain.get("password").await.unwrap();
    assert_value(&from_chain, KV2_VALUE, "KV v2 through the chain");
    for value in [
        &kube_secret as &dyn std::fmt::Debug,
        &kube_value,
        &chain,
        &from_chain,
    ] {
        shown.debug(value);
    }

    // --- JWT logins: inline, and fetched from the GitHub Actions stand-in.
    let jwt = vault.jwt("canary", &[&policy]).await;
    let minted = jwt.mint();
    canaries.add("the CI JWT", &minted);
    let mut jwt_vars: Vec<(String, String)> = vault
        .env_vars_for(&jwt)
        .into_iter()
        .filter(|(k, _)| k != "VAULT_CREDENTIALS")
        .collect();
    jwt_vars.push(("VAULT_JWT_ROLE".into(), jwt.role().into()));
    jwt_vars.push(("VAULT_JWT_PATH".into(), jwt.mount().into()));
    let mut actions_vars = jwt_vars.clone();
    jwt_vars.push(("VAULT_JWT".into(), minted.clone()));
    actions_vars.push(("VAULT_JWT_AUDIENCE".into(), jwt.audience().into()));
    actions_vars.extend(jwt.actions_vars());
    canaries.add("the Actions request token", &actions_vars.last().unwrap().1);
    for vars in [jwt_vars, actions_vars] {
        let jwt_secret = VaultSecret::new(format!("{kv1_path}#password")).env(Env::from_map(vars));
        let value = jwt_secret.run().await.unwrap();
        assert_value(&value, KV1_VALUE, "KV v1 with a JWT");
        shown.debug(&jwt_secret);
    }
    shown.debug(&jwt);
    assert_eq!(jwt.actions_requests().await.len(), 1);

    // --- Certificate login on a TLS server of its own: the client key must not show.
    let tls = DevVault::builder()
        .tls()
        .start()
        .await
        .expect("a TLS dev Vault");
    let tls_kv = tls.kv_mount(KvVersion::V2).await;
    tls.kv_put(
        &format!("{tls_kv}/canary/app"),
        json!({"password": KV2_VALUE}),
    )
    .await;
    let tls_policy = tls
        .policy("canary", &read_policy(&[format!("{tls_kv}/data/canary/*")]))
        .await;
    let cert = tls.cert("canary", &[&tls_policy]).await;
    let key_pem = std::fs::read_to_string(cert.certificates().client_key_path()).unwrap();
    for (i, line) in key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .enumerate()
    {
        canaries.add(format!("the client key, line {i}"), line);
    }
    let mut cert_vars = tls.env_vars_for(&cert);
    cert_vars.extend(cert.client_cert_vars());
    let cert_secret =
        VaultSecret::new(format!("{tls_kv}/canary/app#password")).env(Env::from_map(cert_vars));
    let cert_value = cert_secret.run().await.unwrap();
    assert_value(&cert_value, KV2_VALUE, "KV v2 with a client certificate");
    shown.debug(&cert_secret);
    shown.debug(&cert);

    // --- The errors users meet.
    let stranger = vault.token(&[]).await;
    canaries.add("a token without the policy", stranger.expose_secret());
    let errors = [
        // Denied by policy.
        VaultSecret::new(&kv2_path)
            .env(vault.env_for(&stranger))
            .run()
            .await,
        // Nothing there.
        session.read(&format!("{kv2}/canary/missing")).await,
        // A path that is no path.
        session.read("no-mount").await,
        // A secret id the server turns down.
        VaultSecret::new(&kv2_path)
            .env(vault.env_for(&approle.with_secret_id(WRONG_SECRET_ID)))
            .run()
            .await,
        // A token that cannot be sent.
        VaultSecret::new(&kv2_path)
            .env(Env::from_map([
                ("VAULT_ADDR", vault.addr().to_owned()),
                (
                    "VAULT_CREDENTIALS",
                    json!({ "VAULT_TOKEN": format!("{BAD_TOKEN}\n2") }).to_string(),
                ),
            ]))
            .run()
            .await,
    ];
    for outcome in &errors {
        match outcome {
            Err(e) => shown.error(e),
            Ok(_) => panic!("an error case succeeded"),
        }
    }
    assert!(
        matches!(errors[0], Err(Error::PermissionDenied { .. })),
        "denied"
    );
    assert!(matches!(errors[1], Err(Error::NotFound { .. })), "missing");
    assert!(
        matches!(errors[2], Err(Error::InvalidPath { .. })),
        "bad path"
    );
    assert!(
        matches!(errors[3], Err(Error::AuthFailed { .. })),
        "wrong secret id"
    );
    assert!(
        matches!(errors[4], Err(Error::Credentials { .. })),
        "bad token"
    );

    // --- Writes: write, check-and-set, patch, a versioned read, delete and
    // destroy, on both KV versions, and the errors writes meet.
    for (label, value) in [
        ("a KV v2 written value", WRITTEN_V2),
        ("a KV v2 patched value", PATCHED_V2),
        ("a KV v1 written value", WRITTEN_V1),
        ("a value a denied write carried", WRITE_DENIED),
        ("a value a lost write carried", WRITE_LOST),
    ] {
        canaries.add(label, value);
    }
    let writer = VaultClient::builder()
        .env(vault.env_for(&root))
        .build()
        .await
        .unwrap();
    let written_path = format!("{kv2}/canary/written");
    let written = writer
        .write(&written_path, &json!({"password": WRITTEN_V2}))
        .await
        .unwrap();
    let version = written.version.expect("a KV v2 version");
    let cas = writer
        .write_cas(
            &written_path,
            &json!({"password": WRITTEN_V2}),
            vault_secret::Cas::Version(version),
        )
        .await
        .unwrap();
    let patched = writer
        .patch(&written_path, &json!({"password": PATCHED_V2}))
        .await
        .unwrap();
    let versioned = writer.read_versioned(&written_path).await.unwrap();
    assert_value(
        &versioned.value.field("password").unwrap(),
        PATCHED_V2,
        "a patched value read back",
    );
    let v1_written = writer
        .write(
            &format!("{kv1}/canary/written"),
            &json!({"password": WRITTEN_V1}),
        )
        .await
        .unwrap();
    let write_errors = [
        // A stale check-and-set.
        writer
            .write_cas(
                &written_path,
                &json!({"password": WRITTEN_V2}),
                vault_secret::Cas::Version(version),
            )
            .await,
        // A token that may only read.
        session
            .write(&written_path, &json!({"password": WRITE_DENIED}))
            .await,
        // No merge on KV v1.
        writer
            .patch(
                &format!("{kv1}/canary/written"),
                &json!({"password": WRITTEN_V1}),
            )
            .await,
        // An empty key, refused before any request.
        writer
            .write(&written_path, &json!({"": WRITE_DENIED}))
            .await,
    ];
    for outcome in &write_errors {
        match outcome {
            Err(e) => shown.error(e),
            Ok(_) => panic!("a write error case succeeded"),
        }
    }
    assert!(
        matches!(write_errors[0], Err(Error::CasMismatch { .. })),
        "cas"
    );
    assert!(
        matches!(write_errors[1], Err(Error::WriteDenied { .. })),
        "denied"
    );
    writer.delete(&written_path).await.unwrap();
    writer
        .destroy_versions(&written_path, &[version])
        .await
        .unwrap();
    for value in [
        &writer as &dyn std::fmt::Debug,
        &written,
        &cas,
        &patched,
        &versioned,
        &v1_written,
    ] {
        shown.debug(value);
    }

    // --- A fault retried: one 503, then the value (a mock, to time it).
    let mock = MockVault::start().await;
    mock.kv2("canary/app", json!({"password": MOCK_VALUE}))
        .await;
    mock.fail("canary/app", 503, 1).await;
    canaries.add("the mock's token", mock.root_token().expose_secret());
    let mock_approle = mock.login_approle().await;
    canaries.add("the mock's role id", mock_approle.role_id());
    canaries.add("the mock's secret id", mock_approle.secret_id());
    let retried = VaultSecret::new("canary/app#password")
        .env(mock.env_for(&mock_approle))
        .run()
        .await
        .unwrap();
    assert_value(&retried, MOCK_VALUE, "the mock's value after a retry");
    let reads = mock
        .received()
        .await
        .into_iter()
        .filter(|r| r.path == "canary/data/app")
        .collect::<Vec<_>>();
    assert_eq!(reads.len(), 2, "one 503, then one read that succeeded");
    // A write whose answer never comes: uncertain, and its body in no log.
    mock.answer(
        "canary/data/lost",
        vault_secret::testing::MockAnswer::empty(204)
            .method("POST")
            .delay(Duration::from_secs(3)),
    )
    .await;
    let lost = VaultClient::builder()
        .env(mock.env_for(&mock_approle))
        .timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap()
        .write("canary/lost", &json!({"password": WRITE_LOST}))
        .await;
    match &lost {
        Err(e @ Error::WriteUncertain { .. }) => shown.error(e),
        other => panic!("a lost write: {other:?}"),
    }
    for value in [
        &mock as &dyn std::fmt::Debug,
        &mock_approle,
        &mock.root_token(),
        &retried,
        &reads,
        &mock.secret("canary/app"),
    ] {
        shown.debug(value);
    }

    // --- A dynamic secret (issue 21): issued, renewed, rotated, closed;
    // the PostgreSQL passwords and the lease's data are canaries.
    let pg = vault_secret::testing::Postgres::start()
        .await
        .expect("a PostgreSQL");
    canaries.add("the PostgreSQL superuser's password", pg.password());
    let db = vault
        .database(&pg, Duration::from_secs(2), Duration::from_secs(4))
        .await;
    let lease_policy = vault.policy("canary-leases", &db.policy()).await;
    let lease_token = vault.token(&[&lease_policy]).await;
    canaries.add("the lease client's token", lease_token.expose_secret());
    let leaser = VaultClient::builder()
        .env(vault.env_for(&lease_token))
        .lease_options(
            vault_secret::lease::LeaseOptions::new().with_grace_period(Duration::from_millis(500)),
        )
        .build()
        .await
        .unwrap();
    let lease = leaser.lease(db.creds_path()).await.unwrap();
    let first: Value = lease.current_as().unwrap();
    canaries.add(
        "the first issued password",
        first["password"].as_str().unwrap(),
    );
    let mut changes = lease.changes();
    let mut events = Vec::new();
    while !matches!(
        events.last(),
        Some(vault_secret::lease::LeaseEvent::Rotated(_))
    ) {
        tokio::time::timeout(Duration::from_secs(10), changes.changed())
            .await
            .expect("a rotation within 10 s")
            .expect("the change stream");
        events.push(changes.borrow_and_update().clone());
    }
    assert!(
        events
            .iter()
            .any(|e| matches!(e, vault_secret::lease::LeaseEvent::Renewed(_))),
        "{events:?}"
    );
    let second: Value = lease.current_as().unwrap();
    canaries.add("the rotated password", second["password"].as_str().unwrap());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kv_leased = leaser.lease(&kv2_path).await.unwrap_err();
    let read_leased = leaser.read(&db.creds_path()).await.unwrap_err();
    let denied = VaultClient::builder()
        .env(vault.env_for(&token))
        .build()
        .await
        .unwrap()
        .lease(db.creds_path())
        .await
        .unwrap_err();
    for error in [&kv_leased, &read_leased, &denied] {
        shown.error(error);
    }
    shown.debug(&lease);
    shown.debug(&lease.current());
    shown.debug(&lease.lease());
    shown.debug(&events);
    shown.debug(&leaser);
    shown.debug(&pg);
    shown.debug(&db);
    leaser.shutdown().await.unwrap();
    drop(pg);

    // --- Tokens the server issued (logins, token creation), from the raw audit log.
    let raw = std::fs::read_to_string(&raw_log).unwrap_or_default();
    let mut issued = Vec::new();
    for line in raw.lines() {
        if let Ok(entry) = serde_json::from_str::<Value>(line) {
            client_tokens(&entry, &mut issued);
        }
    }
    issued.sort();
    issued.dedup();
    // The dev root token (`root`, see above) signs the provisioning requests.
    issued.retain(|t| t != vault.root_token().expose_secret());
    // The root-policy, policy and stranger tokens, and the AppRole and
    // Kubernetes logins (the VaultSecret and the source share one session).
    assert!(
        issued.len() >= 5,
        "the raw audit log gave {} tokens",
        issued.len()
    );
    for (i, t) in issued.into_iter().enumerate() {
        canaries.add(format!("issued token #{i}"), t);
    }

    // --- The secret ids unwrapped (the answers of `sys/wrapping/unwrap`).
    let mut unwrapped = Vec::new();
    for line in raw.lines() {
        if let Ok(entry) = serde_json::from_str::<Value>(line)
            && entry["type"] == "response"
            && entry["request"]["path"] == "sys/wrapping/unwrap"
            && let Some(id) = entry["response"]["data"]["secret_id"].as_str()
        {
            unwrapped.push(id.to_owned());
        }
    }
    assert_eq!(unwrapped.len(), 1, "one unwrap in the raw audit log");
    canaries.add("the unwrapped secret id", unwrapped.remove(0));

    // --- The capture works: it holds what a broken one would not.
    drop(_guard);
    let logs = capture.bytes();
    let text = String::from_utf8_lossy(&logs);
    for marker in [
        kv2_path.as_str(), // a span field (vault_read's path)
        "vault_write",     // a write's span
        "logged in",
        "token renewed",
        "token revoked",
        "retrying",
        "log.target=\"reqwest::", // a record from the `log` crate
        "close time.busy",        // a span event
        "rustify",                // another crate's spans
        "lease renewed",
        "credentials rotated",
        "lease revoked",
    ] {
        assert!(
            text.contains(marker),
            "the captured log lacks `{marker}` ({} bytes)",
            logs.len()
        );
    }
    let shown_text = String::from_utf8_lossy(&shown.0);
    for marker in [
        "VaultClient",
        "REDACTED",
        "PermissionDenied",
        "MountReport",
        "CasMismatch",
        "WriteUncertain",
    ] {
        assert!(
            shown_text.contains(marker),
            "the Debug output lacks `{marker}`"
        );
    }

    canaries.check("captured log", &logs);
    canaries.check("Debug output", &shown.0);
}

/// The checker finds a canary, so a passing run means something.
#[test]
#[should_panic(expected = "the test value appears in the log")]
fn the_canary_check_finds_a_canary() {
    let mut canaries = Canaries::default();
    canaries.add("the test value", "canary-self-check-0001");
    canaries.check(
        "log",
        b"line one\nDEBUG x: value=canary-self-check-0001 y\n",
    );
}
