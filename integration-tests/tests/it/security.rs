//! Issue 25's hardening, end to end: credentials come only from where the
//! user put them (in the documented precedence), only the given CA is
//! trusted, response-wrapped secret ids are unwrapped once and checked,
//! answers and files are bounded, server text reaches the terminal escaped,
//! and the CLI cannot dump core.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use vault_secret::testing::{MockAnswer, MockVault, TestCertificates, TestCredentials as _};
use vault_secret::{Error, KvVersion, TransportKind, VaultClient, WrappingKind};

use crate::cli_binary::run;
use crate::harness::{ServerOptions, dedicated_server, server};
use crate::support::{LogCapture, TestEnv};

/// A KV v2 mount with `app` (readable by the returned policy) and
/// `root-only` (readable by no policy but root).
async fn two_secrets(vault: &vault_secret::testing::DevVault) -> (String, String) {
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/app"), json!({"user": "app-user"}))
        .await;
    vault
        .kv_put(
            &format!("{mount}/root-only"),
            json!({"password": "root-only-value"}),
        )
        .await;
    let policy = vault
        .policy(
            "sec-app",
            &format!("path \"{mount}/data/app\" {{ capabilities = [\"read\"] }}"),
        )
        .await;
    (mount, policy)
}

/// Finding 1: a developer's `~/.vault-token` holding the root token does not
/// beat AppRole variables. The login is AppRole's, a path only root may read
/// is denied, and one WARN line names the token file (never a value).
#[tokio::test]
async fn a_root_token_file_loses_to_approle_variables() {
    let vault = server().await;
    let (mount, policy) = two_secrets(&vault).await;
    let approle = vault.approle(&[&policy]).await;
    let env = TestEnv::new(&vault)
        .set("VAULT_ROLE_ID", approle.role_id())
        .set("VAULT_SECRET_ID", approle.secret_id())
        .set("VAULT_APPROLE_PATH", approle.mount());
    std::fs::write(
        env.home().join(".vault-token"),
        format!("{}\n", vault.root_token()),
    )
    .expect("write ~/.vault-token");

    let (capture, _guard) = LogCapture::trace_everything();
    let client = VaultClient::builder()
        .env(env.env())
        .build()
        .await
        .expect("a client");
    assert_eq!(client.inspect().auth_methods(), ["approle"]);
    assert_eq!(client.inspect().ignored_credentials(), ["`~/.vault-token`"]);
    let user = client
        .read(&format!("{mount}/app#user"))
        .await
        .expect("the AppRole's policy reads app");
    assert_eq!(user.expose_secret(), "app-user");
    let info = client.inspect().token_info().await.expect("lookup-self");
    assert_eq!(info.method, "approle");
    assert!(!info.policies.iter().any(|p| p == "root"), "{info:?}");
    let denied = client
        .read(&format!("{mount}/root-only#password"))
        .await
        .unwrap_err();
    assert!(matches!(denied, Error::PermissionDenied { .. }), "{denied}");
    client.shutdown().await.expect("revoke");

    let logs = capture.since(0);
    let warn = logs
        .lines()
        .find(|l| l.contains("WARN") && l.contains("more than one place"))
        .unwrap_or_else(|| panic!("no WARN line about the ignored token file:\n{logs}"));
    assert!(warn.contains("`~/.vault-token`"), "{warn}");
    assert!(warn.contains("VAULT_ROLE_ID"), "{warn}");
    assert!(
        logs.contains("logged in") && logs.contains("approle"),
        "no INFO line naming the login:\n{logs}"
    );
    // (The dev server's root token may be the word `root`, which paths hold.)
    let root = Some(vault.root_token()).filter(|t| t.len() > 8);
    for (what, secret) in [
        ("the root token", root),
        ("the secret id", Some(approle.secret_id())),
        ("the root-only value", Some("root-only-value")),
    ] {
        if let Some(secret) = secret {
            assert!(!logs.contains(secret), "{what} reached the logs");
        }
    }
}

/// Finding 2: an exported `VAULT_TOKEN` beats the config file's
/// `VAULT_CREDENTIALS` (which holds root); the CLI says so on stderr by
/// default, naming the file.
#[tokio::test]
async fn an_exported_token_beats_the_config_file_with_a_warning() {
    let vault = server().await;
    let (mount, policy) = two_secrets(&vault).await;
    let limited = vault.token(&[&policy]).await;
    let env = TestEnv::new(&vault);
    let config = env.home().join(".prefect");
    std::fs::create_dir(&config).expect("~/.prefect");
    std::fs::write(
        config.join("config.toml"),
        format!(
            "[context.secrets]\nVAULT_CREDENTIALS = '{{\"VAULT_TOKEN\": \"{}\"}}'\n",
            vault.root_token()
        ),
    )
    .expect("write the config file");
    let mut vars = vec![
        ("VAULT_ADDR".to_owned(), vault.addr().to_owned()),
        ("HOME".to_owned(), env.home().display().to_string()),
        ("VAULT_TOKEN".to_owned(), limited.expose_secret().to_owned()),
    ];
    if let Some(ca) = vault.ca_cert_path() {
        vars.push(("VAULT_CACERT".to_owned(), ca.display().to_string()));
    }
    let root_only = format!("{mount}/root-only#password");
    let out = run(&["get", root_only.as_str()], vars.clone())
        .await
        .expect("run get");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(6),
        "the limited token is used: {stderr}"
    );
    assert!(out.stdout.is_empty());
    let warn = stderr
        .lines()
        .find(|l| l.contains("WARN"))
        .unwrap_or_else(|| panic!("no WARN line: {stderr}"));
    assert!(warn.contains("config.toml"), "{warn}");
    assert!(warn.contains("VAULT_TOKEN"), "{warn}");
    if vault.root_token().len() > 8 {
        assert!(!stderr.contains(vault.root_token()), "{stderr}");
    }
    assert!(!stderr.contains(limited.expose_secret()), "{stderr}");

    let app = format!("{mount}/app#user");
    let out = run(&["get", app.as_str()], vars.clone())
        .await
        .expect("run get");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "app-user");

    // doctor names the source used, what it hid, and the login's method.
    let out = run(&["doctor"], vars).await.expect("run doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |check: &str| {
        stdout
            .lines()
            .find(|l| l.contains(check))
            .unwrap_or_else(|| panic!("no `{check}` line:\n{stdout}"))
            .to_owned()
    };
    let credentials = line("credentials:");
    assert!(credentials.starts_with("[warn]"), "{credentials}");
    assert!(
        credentials.contains("the environment variable `VAULT_TOKEN`")
            && credentials.contains("also set but ignored: the secret `VAULT_CREDENTIALS` in `"),
        "{credentials}"
    );
    let login = line("login:");
    assert!(
        login.contains("method `token` (keys from the environment variable `VAULT_TOKEN`)"),
        "{login}"
    );
    assert!(!login.contains("policies: root"), "{login}");
}

/// Finding 5: `VAULT_CACERT` is the only root. The dev server's CA in the
/// "system store" (`SSL_CERT_FILE` stands in for it) does not help when
/// another CA is given; the given CA works whatever the store holds.
/// Finding 6: skipping verification is warned about, once.
#[tokio::test]
async fn only_the_given_ca_is_trusted() {
    let vault = dedicated_server(ServerOptions::tls()).await;
    let server_ca = vault.ca_cert_path().expect("a TLS server").to_owned();
    let other = TestCertificates::generate("other-ca-client");
    let other_ca = other.ca_path();
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/app"), json!({"user": "tls-user"}))
        .await;
    let path = format!("{mount}/app#user");
    let get = |cacert: Option<&Path>, store: &Path, skip: bool| {
        let mut vars = vec![
            ("VAULT_ADDR".to_owned(), vault.addr().to_owned()),
            ("VAULT_TOKEN".to_owned(), vault.root_token().to_owned()),
            ("HOME".to_owned(), "/nonexistent-home".to_owned()),
            ("SSL_CERT_FILE".to_owned(), store.display().to_string()),
        ];
        if let Some(ca) = cacert {
            vars.push(("VAULT_CACERT".to_owned(), ca.display().to_string()));
        }
        if skip {
            vars.push(("VAULT_SKIP_VERIFY".to_owned(), "true".to_owned()));
        }
        let path = path.clone();
        async move { run(&["get", path.as_str()], vars).await.expect("run get") }
    };
    // The stand-in store is read: with no CA given, it alone lets the server in.
    let out = get(None, &server_ca, false).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "tls-user",
        "SSL_CERT_FILE did not stand in for the system store: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another CA given: the store's CA no longer counts.
    let out = get(Some(&other_ca), &server_ca, false).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(out.stdout.is_empty(), "read through an untrusted CA");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    // The given CA works, whatever the store holds.
    let out = get(Some(&server_ca), &other_ca, false).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "tls-user",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("WARN"));
    // Verification off: it works, with one warning.
    let out = get(None, &other_ca, true).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tls-user");
    assert_eq!(
        stderr.matches("TLS verification is off").count(),
        1,
        "{stderr}"
    );

    // doctor tells the truth about the roots.
    let vars = [
        ("VAULT_ADDR", vault.addr().to_owned()),
        ("VAULT_TOKEN", vault.root_token().to_owned()),
        ("HOME", "/nonexistent-home".to_owned()),
        ("VAULT_CACERT", server_ca.display().to_string()),
    ];
    let out = run(&["doctor"], vars).await.expect("run doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("certificate verified against only the CA in VAULT_CACERT"),
        "{stdout}"
    );
}

/// Finding 6: a token about to go over plain http to an address that is not
/// loopback is warned about once (192.0.2.1 is TEST-NET-1: nothing answers);
/// to loopback, not at all.
#[tokio::test]
async fn plain_http_to_another_host_is_warned_about_once() {
    let vars = [
        ("VAULT_ADDR", "http://192.0.2.1:8200"),
        ("VAULT_TOKEN", "hvs.plain-http-token"),
        ("HOME", "/nonexistent-home"),
        ("VAULT_CLIENT_TIMEOUT", "1s"),
        ("VAULT_MAX_RETRIES", "0"),
    ];
    let out = run(&["get", "secret/app#user"], vars)
        .await
        .expect("run get");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches("over plain http").count(), 1, "{stderr}");
    assert!(stderr.contains("`192.0.2.1`"), "{stderr}");
    assert!(!stderr.contains("plain-http-token"), "{stderr}");

    let mock = MockVault::start().await;
    mock.kv2("loop/app", json!({"user": "u"})).await;
    let mut vars = mock.env_vars_for(&mock.root_token());
    vars.push(("HOME".to_owned(), "/nonexistent-home".to_owned()));
    let out = run(&["get", "loop/app#user"], vars).await.expect("run get");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "u", "{stderr}");
    assert!(!stderr.contains("plain http"), "{stderr}");
}

/// A response-wrapped secret id: unwrapped once at the first login, kept
/// for later logins; a second client with the same wrapping token finds it
/// used (it may have been intercepted), and a token wrapping something else
/// is refused unopened.
#[tokio::test]
async fn a_wrapped_secret_id_is_unwrapped_once_and_checked() {
    let vault = server().await;
    let (mount, policy) = two_secrets(&vault).await;
    let wrapped = vault.approle_wrapped(&[&policy]).await;
    assert!(wrapped.is_wrapped());
    let env = TestEnv::new(&vault).credentials(wrapped.credentials_json());
    let client = VaultClient::builder()
        .env(env.env())
        .build()
        .await
        .expect("a client");
    let path = format!("{mount}/app#user");
    assert_eq!(
        client.read(&path).await.unwrap().expose_secret(),
        "app-user"
    );
    // Revoked: the next read logs in again, with the unwrapped secret id.
    client.shutdown().await.expect("revoke");
    assert_eq!(
        client.read(&path).await.unwrap().expose_secret(),
        "app-user"
    );
    client.shutdown().await.expect("revoke");

    // Reuse: the wrapping token was used up by the first client.
    let again = VaultClient::builder()
        .env(env.env())
        .build()
        .await
        .expect("a client");
    let err = again.read(&path).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrappedSecretId {
                kind: WrappingKind::InvalidOrUsed,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("intercepted"), "{message}");
    assert!(!message.contains(wrapped.secret_id()), "{message}");

    // A token that wraps something else: refused, and left unopened.
    let admin = vault.admin();
    let foreign = admin.wrap(&json!({"secret_id": "planted"})).await;
    let planted = wrapped.with_wrapped_secret_id(&foreign);
    let env = TestEnv::new(&vault).credentials(planted.credentials_json());
    let client = VaultClient::builder()
        .env(env.env())
        .build()
        .await
        .expect("a client");
    let err = client.read(&path).await.unwrap_err();
    match &err {
        Error::WrappedSecretId {
            kind: WrappingKind::WrongCreationPath,
            expected,
            found,
        } => {
            assert_eq!(found.as_deref(), Some("sys/wrapping/wrap"));
            assert_eq!(
                expected,
                &format!("auth/{}/role/<role>/secret-id", wrapped.mount())
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.to_string().contains(&foreign), "{err}");
    let lookup = admin
        .post("sys/wrapping/lookup", &json!({"token": foreign}))
        .await;
    assert!(lookup.is_success(), "the foreign token was used up");
}

/// Finding 7: a KV answer over the 4 MiB default is refused before it is
/// read whole; a client that allows more reads it.
#[tokio::test]
async fn answers_are_capped_by_a_configurable_size() {
    let mock = MockVault::start().await;
    let big = "x".repeat(5 * 1024 * 1024);
    mock.kv2("big/app", json!({ "blob": big })).await;
    let build = |max: Option<usize>| {
        let mut builder = VaultClient::builder()
            .env(mock.env_with(&[("HOME", "/nonexistent-home")]))
            .max_retries(0);
        if let Some(max) = max {
            builder = builder.max_response_size(max);
        }
        builder.build()
    };
    let err = build(None)
        .await
        .unwrap()
        .read("big/app#blob")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Body,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("larger than 4194304 bytes"),
        "{err}"
    );
    let value = build(Some(8 * 1024 * 1024))
        .await
        .unwrap()
        .read("big/app#blob")
        .await
        .expect("read with a larger cap");
    assert_eq!(value.expose_secret().len(), big.len());
}

/// Finding 8: a FIFO as `~/.vault-token`, a FIFO as `VAULT_CACERT` and the
/// config file symlinked to `/dev/zero` are configuration errors naming
/// them, at once (no hang, no endless read).
#[tokio::test]
async fn fifos_and_devices_are_configuration_errors_not_hangs() {
    let home = tempfile::tempdir().expect("a home");
    let fifo = home.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    std::os::unix::fs::symlink(&fifo, home.path().join(".vault-token")).expect("symlink");
    let home_dir = home.path().display().to_string();
    let fifo_path = fifo.display().to_string();
    // Built (on first use) before the clock starts.
    crate::cli_binary::binary();
    let started = Instant::now();
    let base = [
        ("VAULT_ADDR", "https://127.0.0.1:1"),
        ("HOME", home_dir.as_str()),
    ];
    let out = run(&["get", "secret/app"], base).await.expect("run get");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("`~/.vault-token`") && stderr.contains("a FIFO"),
        "{stderr}"
    );

    let mut vars = base.to_vec();
    vars.extend([("VAULT_TOKEN", "t"), ("VAULT_CACERT", fifo_path.as_str())]);
    let out = run(&["get", "secret/app"], vars).await.expect("run get");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("invalid `VAULT_CACERT`") && stderr.contains("not a regular file"),
        "{stderr}"
    );

    std::fs::remove_file(home.path().join(".vault-token")).expect("rm");
    std::fs::create_dir(home.path().join(".prefect")).expect("~/.prefect");
    std::os::unix::fs::symlink("/dev/zero", home.path().join(".prefect/config.toml"))
        .expect("symlink");
    let out = run(&["get", "secret/app"], base).await.expect("run get");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("config.toml") && stderr.contains("a device"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "too slow");
}

/// Finding 9: escape sequences in a server's error body and in the
/// `sys/health` version reach the terminal escaped.
#[tokio::test]
async fn server_text_reaches_the_terminal_escaped() {
    const HOSTILE: &str = "denied\u{1b}]0;pwned\u{7}\u{1b}[2J";
    let mock = MockVault::start().await;
    mock.kv2("esc/app", json!({"user": "u"})).await;
    mock.answer("esc/data/app", MockAnswer::errors(418, &[HOSTILE]))
        .await;
    mock.answer(
        "sys/health",
        MockAnswer::json(
            200,
            json!({"initialized": true, "sealed": false, "standby": false,
                   "version": format!("2.0{HOSTILE}")}),
        ),
    )
    .await;
    let mut vars = mock.env_vars_for(&mock.root_token());
    vars.push(("HOME".to_owned(), "/nonexistent-home".to_owned()));
    vars.push(("VAULT_MAX_RETRIES".to_owned(), "0".to_owned()));
    let out = run(&["get", "esc/app"], vars.clone())
        .await
        .expect("run get");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("denied"), "{stderr}");
    assert!(stderr.contains("\\u{1b}]0;pwned\\u{7}"), "{stderr}");
    assert!(
        !out.stderr.iter().any(|b| *b == 0x1b || *b == 0x07),
        "{stderr}"
    );

    let out = run(&["doctor"], vars).await.expect("run doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("version 2.0"), "{stdout}");
    assert!(
        !out.stdout.iter().any(|b| *b == 0x1b || *b == 0x07),
        "{stdout}"
    );
    assert!(!out.stderr.iter().any(|b| *b == 0x1b || *b == 0x07));
}

/// Finding 10: the CLI, while it waits on a server (a stand-in that accepts
/// and never answers), is not dumpable and may not write a core: the
/// kernel's own account of its limits (`/proc/<pid>/limits`) and what the
/// process read back from the kernel (its debug line) say so.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_cli_cannot_dump_core() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.flush().await;
            open.push(stream);
        }
    });
    let mut child = tokio::process::Command::new(crate::cli_binary::binary())
        .args(["-vv", "get", "secret/app"])
        .env_clear()
        .envs([
            ("VAULT_ADDR", address.as_str()),
            ("VAULT_TOKEN", "hvs.core-dump-token"),
            ("HOME", "/nonexistent-home"),
            ("VAULT_CLIENT_TIMEOUT", "30s"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the CLI");
    let pid = child.id().expect("a pid");
    // Wait until it is blocked on the stand-in: its limits are set by then.
    let mut limits = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        if limits.lines().any(|l| {
            l.starts_with("Max core file size") && l.split_whitespace().nth(4) == Some("0")
        }) {
            break;
        }
    }
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_else(|| panic!("no core limit in /proc/{pid}/limits:\n{limits}"));
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    child.start_kill().expect("kill");
    let out = child.wait_with_output().await.expect("wait");
    held.abort();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("core dumps are off") && stderr.contains("dumpable=0"),
        "{stderr}"
    );
    assert!(stderr.contains("core_limit=0/"), "{stderr}");
    assert!(!stderr.contains("core-dump-token"), "{stderr}");
}

/// `doctor` does not log in with a wrapped secret id (it would use it up):
/// it says so, and the wrapping token still works afterwards.
#[tokio::test]
async fn doctor_leaves_a_wrapped_secret_id_unused() {
    let vault = server().await;
    let (_, policy) = two_secrets(&vault).await;
    let wrapped = vault.approle_wrapped(&[&policy]).await;
    let mut vars = vault.env_vars_for(&wrapped);
    vars.push(("HOME".to_owned(), "/nonexistent-home".to_owned()));
    let out = run(&["doctor"], vars).await.expect("run doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("[warn] login: not tried") && stdout.contains("response-wrapped"),
        "{stdout}"
    );
    assert!(!stdout.contains(wrapped.secret_id()), "{stdout}");
    let lookup = vault
        .admin()
        .post(
            "sys/wrapping/lookup",
            &json!({"token": wrapped.secret_id()}),
        )
        .await;
    assert!(lookup.is_success(), "doctor used the wrapping token up");
}
