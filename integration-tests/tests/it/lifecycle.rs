//! A token's lifetime against a real server: the CLI revokes the tokens it
//! logged in for and never the user's, and a long-running library loop
//! renews its token and logs in again only when renewal stops extending it
//! (counted in the server's audit log).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use vault_secret::{VaultClient, VaultSecret};

use crate::cli::Cli;
use crate::harness::{self, Admin, DedicatedServer, ServerOptions, dedicated_server, unique};
use crate::support::{TestEnv, approle_credentials};

/// A KV v2 mount holding `app` = `{"password": <returned>}` and a policy
/// reading only that secret; returns (mount, password, policy).
async fn one_secret(admin: &Admin) -> (String, String, String) {
    let mount = unique("life-kv");
    admin.mount_kv(&mount, 2).await;
    let password = unique("life-password");
    admin
        .kv2_put(&mount, "app", json!({"password": password}))
        .await;
    let policy = unique("life-pol");
    admin
        .put_policy(
            &policy,
            &format!("path \"{mount}/data/app\" {{ capabilities = [\"read\"] }}"),
        )
        .await;
    (mount, password, policy)
}

/// What the server says about the tokens behind `accessors` (display name,
/// policies, metadata; never the token), for failure messages.
async fn describe_tokens(admin: &Admin, accessors: &[&String]) -> Vec<Value> {
    let mut described = Vec::new();
    for accessor in accessors {
        let r = admin
            .post(
                "auth/token/lookup-accessor",
                &json!({ "accessor": accessor }),
            )
            .await;
        let data = &r.body["data"];
        described.push(json!({
            "display_name": data["display_name"],
            "policies": data["policies"],
            "meta": data["meta"],
            "ttl": data["ttl"],
        }));
    }
    described
}

/// A dedicated server with a file audit device; returns it, the directory
/// holding its configuration and log (keep it), and the log's path.
async fn audited_server() -> (DedicatedServer, TempDir, PathBuf) {
    // Audit devices can be enabled through the API only when the server's
    // configuration allows it.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("audit.hcl");
    std::fs::write(&config, "unsafe_allow_api_audit_creation = true\n").expect("write config");
    let server = dedicated_server(ServerOptions {
        extra_args: vec![format!("-config={}", config.display())],
        ..ServerOptions::default()
    })
    .await;
    let audit_log = dir.path().join("audit.log");
    server
        .admin()
        .put(
            &format!("sys/audit/{}", unique("file")),
            &json!({"type": "file", "options": {"file_path": audit_log.display().to_string()}}),
        )
        .await
        .expect_ok("enable a file audit device");
    (server, dir, audit_log)
}

#[tokio::test]
async fn cold_cli_runs_with_approle_leave_no_tokens_behind() {
    // A server of its own: the other tests create tokens on the shared one
    // while this one counts. Its audit log shows each run logged in.
    let (server, _dir, audit_log) = audited_server().await;
    let admin = server.admin();
    let (mount, password, policy) = one_secret(&admin).await;
    let credentials = approle_credentials(&admin, "life-approle", "cli", &[&policy]).await;
    let field = |key: &str| credentials[key].as_str().unwrap_or_default().to_owned();
    let (approle, role_id, secret_id) = (
        field("VAULT_APPROLE_PATH"),
        field("VAULT_ROLE_ID"),
        field("VAULT_SECRET_ID"),
    );
    let cli = Cli::new(&server).set(
        "PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS",
        credentials.to_string(),
    );

    // The count sees a login's token: one made by hand shows up, and goes
    // when revoked.
    let before = crate::support::live_tokens(&admin).await;
    let login = admin
        .post(
            &format!("auth/{approle}/login"),
            &json!({"role_id": role_id, "secret_id": secret_id}),
        )
        .await
        .expect_ok("AppRole login");
    assert_eq!(
        crate::support::live_tokens(&admin).await.len(),
        before.len() + 1
    );
    let accessor = login["auth"]["accessor"]
        .as_str()
        .expect("the login's accessor");
    admin
        .post(
            "auth/token/revoke-accessor",
            &json!({ "accessor": accessor }),
        )
        .await
        .expect_ok("revoke the hand-made token");
    assert_eq!(
        crate::support::live_tokens(&admin).await.len(),
        before.len()
    );

    let field = format!("{mount}/app#password");
    let started = Instant::now();
    for _ in 0..10 {
        let run = cli.run(&["get", &field]).await;
        assert_eq!(
            run.expect_code(0).stdout,
            password,
            "get printed another value"
        );
    }
    let check = format!(r#"test "$APP_PASSWORD" = '{password}' && echo child-ran"#);
    let secret = format!("APP_PASSWORD={field}");
    for _ in 0..10 {
        let run = cli
            .run(&["exec", "--secret", &secret, "--", "/bin/sh", "-c", &check])
            .await;
        assert_eq!(
            run.expect_code(0).stdout,
            "child-ran\n",
            "exec: {:?}",
            run.stderr
        );
    }

    let after = crate::support::live_tokens(&admin).await;
    eprintln!(
        "lifecycle: 20 CLI runs (10 get, 10 exec) in {:.1} s; token accessors before {}, after {}",
        started.elapsed().as_secs_f64(),
        before.len(),
        after.len()
    );
    let extra: Vec<&String> = after.iter().filter(|a| !before.contains(a)).collect();
    assert!(
        extra.is_empty(),
        "20 CLI runs left {} tokens behind ({} before, {} after): {:?}",
        extra.len(),
        before.len(),
        after.len(),
        describe_tokens(&admin, &extra).await
    );
    assert_eq!(after.len(), before.len(), "tokens went missing");
    // Each run logged in once (plus the control login above) and revoked
    // its token itself.
    let audit = count_requests(&audit_log, &format!("auth/{approle}/login"), "");
    assert_eq!(audit.logins, 21, "AppRole logins: {audit:?}");
    assert_eq!(audit.revocations, 20, "revoke-self calls: {audit:?}");
}

#[tokio::test]
async fn a_user_supplied_token_outlives_cli_runs() {
    let server = harness::server().await;
    let admin = server.admin();
    let (mount, password, policy) = one_secret(&admin).await;
    let token = admin.create_token(&[&policy], Some("1h")).await;
    let cli = Cli::with_token(&server, &token);
    let field = format!("{mount}/app#password");
    let secret = format!("APP_PASSWORD={field}");
    let check = format!(r#"test "$APP_PASSWORD" = '{password}' && echo child-ran"#);

    for i in 0..5 {
        let run = if i % 2 == 0 {
            cli.run(&["get", &field]).await
        } else {
            cli.run(&["exec", "--secret", &secret, "--", "/bin/sh", "-c", &check])
                .await
        };
        run.expect_code(0);
    }

    let lookup = admin.with_token(&token).get("auth/token/lookup-self").await;
    assert!(
        lookup.is_success(),
        "the user's token no longer works after 5 CLI runs: HTTP {} {}",
        lookup.status,
        lookup.errors()
    );
    let run = cli.run(&["get", &field]).await;
    assert_eq!(run.expect_code(0).stdout, password);
}

/// What the audit log says a client did.
#[derive(Debug, Default)]
struct Audit {
    logins: usize,
    renewals: usize,
    /// `lookup-self`: what the session asks after a 403 (a token that
    /// expired under a request); reported, not asserted (timing-dependent).
    lookups: usize,
    revocations: usize,
    reads: usize,
}

/// Counts the requests (not the responses) in the file audit log at `path`.
fn count_requests(path: &Path, login_path: &str, read_path: &str) -> Audit {
    let text = std::fs::read_to_string(path).expect("read the audit log");
    let mut audit = Audit::default();
    for line in text.lines() {
        let entry: Value = serde_json::from_str(line).expect("an audit line is JSON");
        if entry["type"] != "request" {
            continue;
        }
        match entry["request"]["path"].as_str() {
            Some(p) if p == login_path => audit.logins += 1,
            Some("auth/token/renew-self") => audit.renewals += 1,
            Some("auth/token/lookup-self") => audit.lookups += 1,
            Some("auth/token/revoke-self") => audit.revocations += 1,
            // The admin's write goes to the same path.
            Some(p) if p == read_path && entry["request"]["operation"] == "read" => {
                audit.reads += 1;
            }
            _ => {}
        }
    }
    audit
}

#[tokio::test]
async fn a_library_loop_renews_its_token_and_logs_in_again_only_past_the_max_ttl() {
    let (server, _dir, audit_log) = audited_server().await;
    let admin = server.admin();

    let (mount, password, policy) = one_secret(&admin).await;
    let approle = unique("life-approle");
    admin.enable_auth(&approle, "approle").await;
    let role = "short";
    admin
        .post(
            &format!("auth/{approle}/role/{role}"),
            &json!({"token_policies": [policy], "token_ttl": "4s", "token_max_ttl": "20s"}),
        )
        .await
        .expect_ok("create the AppRole role");
    let role_id = admin
        .get(&format!("auth/{approle}/role/{role}/role-id"))
        .await
        .expect_ok("read the role id")["data"]["role_id"]
        .as_str()
        .expect("role_id")
        .to_owned();
    let secret_id = admin.approle_secret_id(&approle, role).await;
    let env = TestEnv::new(&server).credentials(json!({
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
        "VAULT_APPROLE_PATH": approle,
    }));
    let session = VaultClient::builder()
        .env(env.env())
        .build()
        .await
        .expect("a session");

    let started = Instant::now();
    let mut failures = Vec::new();
    let reads = 30u32;
    for i in 0..reads {
        match VaultSecret::new(format!("{mount}/app#password"))
            .client(session.clone())
            .run()
            .await
        {
            Ok(value) if value.expose_secret() == password => {}
            Ok(_) => failures.push(format!("read {i}: another value than was written")),
            Err(e) => failures.push(format!(
                "read {i} at {:.1} s: {e}",
                started.elapsed().as_secs_f64()
            )),
        }
        let next = started + Duration::from_secs(u64::from(i) + 1);
        tokio::time::sleep_until(next.into()).await;
    }
    let elapsed = started.elapsed();
    session
        .shutdown()
        .await
        .expect("revoke the session's token");

    let audit = count_requests(
        &audit_log,
        &format!("auth/{approle}/login"),
        &format!("{mount}/data/app"),
    );
    eprintln!(
        "lifecycle: {reads} reads in {:.1} s, {} failed; audit: {audit:?}",
        elapsed.as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {reads} reads failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        audit.reads, reads as usize,
        "reads in the audit log: {audit:?}"
    );
    // TTL 4 s: renewed at two thirds, several times per token.
    assert!(audit.renewals >= 3, "too few renew-self calls: {audit:?}");
    // Max TTL 20 s over 30 s of reads: a second login, perhaps a third.
    assert!(
        (2..=3).contains(&audit.logins),
        "want 2 or 3 logins in 30 s with a max TTL of 20 s: {audit:?}"
    );
}
