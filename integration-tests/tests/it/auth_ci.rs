//! Logging in from CI (JWT: inline, from a file, from GitHub Actions' token
//! endpoint) and with a TLS client certificate, end to end against a real
//! OpenBao dev server provisioned by `vault_secret::testing`.

use serde_json::json;
use vault_secret::testing::{Admin, DevVault, JwtCredentials, TestCredentials as _};
use vault_secret::{Error, KvVersion, VaultClient, VaultSecret};

use crate::cli_binary;

/// A KV v2 secret `<mount>/app` = `{"password": password}` and a policy
/// reading it; returns (path of the password field, policy).
async fn secret(vault: &DevVault, password: &str) -> (String, String) {
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/app"), json!({ "password": password }))
        .await;
    let policy = vault
        .policy(
            "ci-read",
            &format!(r#"path "{mount}/data/app" {{ capabilities = ["read"] }}"#),
        )
        .await;
    (format!("{mount}/app#password"), policy)
}

/// `VAULT_ADDR` (and `VAULT_CACERT`) of `vault` plus `vars`, with no credentials secret.
fn env(vault: &DevVault, vars: &[(String, String)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = vault
        .env_vars_for(&vault.root_token())
        .into_iter()
        .filter(|(k, _)| k != "VAULT_CREDENTIALS")
        .collect();
    all.extend(vars.iter().cloned());
    all
}

/// Variables, name and value.
type Vars = Vec<(String, String)>;

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The variables for the JWT role of `jwt`, without a token.
fn jwt_role_vars(jwt: &JwtCredentials) -> Vec<(String, String)> {
    vars(&[
        ("VAULT_JWT_ROLE", jwt.role()),
        ("VAULT_JWT_PATH", jwt.mount()),
    ])
}

async fn read_with(vars: Vec<(String, String)>, path: &str) -> Result<String, Error> {
    let value = VaultSecret::new(path)
        .env(secret_core::Env::from_map(vars))
        .run()
        .await?;
    Ok(value.expose_secret().to_owned())
}

async fn method_with(vars: Vec<(String, String)>) -> Result<&'static str, Error> {
    let client = VaultClient::builder()
        .env(secret_core::Env::from_map(vars))
        .build()
        .await?;
    let method = client.inspect().login().await;
    client.shutdown().await?;
    method
}

#[tokio::test]
async fn jwt_logs_in_inline_from_a_file_and_from_github_actions() {
    let vault = DevVault::shared().await.unwrap();
    let (path, policy) = secret(&vault, "jwt-pass").await;
    let jwt = vault.jwt("ci", &[&policy]).await;

    // Inline, in the credentials secret.
    let value = VaultSecret::new(&path).env(vault.env_for(&jwt)).run().await;
    assert_eq!(value.unwrap().expose_secret(), "jwt-pass");

    // From a file, with a trailing newline.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt");
    std::fs::write(&file, format!("{}\n", jwt.mint())).unwrap();
    let mut from_file = jwt_role_vars(&jwt);
    from_file.push(("VAULT_JWT_FILE".into(), file.display().to_string()));
    assert_eq!(
        read_with(env(&vault, &from_file), &path).await.unwrap(),
        "jwt-pass"
    );
    assert_eq!(method_with(env(&vault, &from_file)).await.unwrap(), "jwt");

    // From the Actions stand-in: the bearer request token and the audience asked for.
    let mut actions = jwt_role_vars(&jwt);
    actions.push(("VAULT_JWT_AUDIENCE".into(), jwt.audience().to_owned()));
    actions.extend(jwt.actions_vars());
    assert_eq!(
        read_with(env(&vault, &actions), &path).await.unwrap(),
        "jwt-pass"
    );
    let requests = jwt.actions_requests().await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].bearer_ok, "{requests:?}");
    assert_eq!(requests[0].audience.as_deref(), Some(jwt.audience()));
    // Each new login (here a new client's) fetches a fresh token.
    assert_eq!(method_with(env(&vault, &actions)).await.unwrap(), "jwt");
    assert_eq!(jwt.actions_requests().await.len(), 2);
}

#[tokio::test]
async fn a_jwt_for_another_audience_is_rejected_and_falls_through_to_approle() {
    let vault = DevVault::shared().await.unwrap();
    let (path, policy) = secret(&vault, "fell-through").await;
    let jwt = vault.jwt("ci", &[&policy]).await;
    let approle = vault.approle(&[&policy]).await;
    let wrong = jwt.mint_for("someone-else");
    let mut creds = approle.credentials_json();
    creds["VAULT_JWT_ROLE"] = json!(jwt.role());
    creds["VAULT_JWT_PATH"] = json!(jwt.mount());
    creds["VAULT_JWT"] = json!(wrong);
    let mut vars = env(&vault, &[]);
    vars.push(("VAULT_CREDENTIALS".into(), creds.to_string()));
    // AppRole comes first in the order: reject it too, so JWT is tried.
    let mut bad_approle = creds.clone();
    bad_approle["VAULT_SECRET_ID"] = json!("not-the-secret-id");
    let mut bad_vars = env(&vault, &[]);
    bad_vars.push(("VAULT_CREDENTIALS".into(), bad_approle.to_string()));
    let err = read_with(bad_vars, &path).await.unwrap_err();
    let Error::AuthFailed { attempts } = &err else {
        panic!("expected AuthFailed, got {err}");
    };
    let methods: Vec<_> = attempts.iter().map(|a| a.method).collect();
    assert_eq!(methods, ["approle", "jwt"], "{err}");
    assert!(attempts[1].reason.contains("claim"), "{err}");
    assert!(!format!("{err} {err:?}").contains(&wrong), "{err}");

    // With a good AppRole the read works (AppRole comes before JWT; a
    // rejected JWT falling through to certificate login is checked below).
    assert_eq!(
        read_with(vars.clone(), &path).await.unwrap(),
        "fell-through"
    );
    assert_eq!(method_with(vars).await.unwrap(), "approle");
}

#[tokio::test]
async fn certificate_login_on_a_tls_server_and_never_without_the_opt_in() {
    let vault = DevVault::builder().tls().start().await.unwrap();
    let (path, policy) = secret(&vault, "cert-pass").await;
    let cert = vault.cert("web", &[&policy]).await;
    let audit = vault.audit_requests().await;
    let start = audit.mark().await;

    let mut with_cert = vault.env_vars_for(&cert);
    with_cert.extend(cert.client_cert_vars());
    assert_eq!(
        read_with(with_cert.clone(), &path).await.unwrap(),
        "cert-pass"
    );
    assert_eq!(method_with(with_cert).await.unwrap(), "cert");
    let logins = format!("auth/{}/login", cert.mount());
    assert!(audit.count_since(&start, &logins).await >= 1);

    // A JWT for another audience is rejected and falls through to the certificate.
    let jwt = vault.jwt("ci", &[&policy]).await;
    let mut creds = cert.credentials_json();
    creds["VAULT_JWT_ROLE"] = json!(jwt.role());
    creds["VAULT_JWT_PATH"] = json!(jwt.mount());
    creds["VAULT_JWT"] = json!(jwt.mint_for("someone-else"));
    let mut jwt_then_cert = env(&vault, &cert.client_cert_vars());
    jwt_then_cert.push(("VAULT_CREDENTIALS".into(), creds.to_string()));
    let mark = audit.mark().await;
    assert_eq!(method_with(jwt_then_cert).await.unwrap(), "cert");
    assert!(
        audit
            .count_since(&mark, &format!("auth/{}/login", jwt.mount()))
            .await
            >= 1
    );

    // The same client certificate for mTLS only, with a rejected AppRole:
    // no certificate login is attempted.
    let mark = audit.mark().await;
    let approle = vault.approle(&[&policy]).await;
    let mut creds = approle.credentials_json();
    creds["VAULT_SECRET_ID"] = json!("not-the-secret-id");
    let mut mtls_only = env(&vault, &cert.client_cert_vars());
    mtls_only.push(("VAULT_CREDENTIALS".into(), creds.to_string()));
    let err = read_with(mtls_only, &path).await.unwrap_err();
    let Error::AuthFailed { attempts } = &err else {
        panic!("expected AuthFailed, got {err}");
    };
    assert_eq!(attempts.len(), 1, "{err}");
    assert_eq!(attempts[0].method, "approle");
    // Audit lines are written as requests complete: the AppRole login is there.
    assert!(
        audit
            .count_since(&mark, &format!("auth/{}/login", approle.mount()))
            .await
            >= 1
    );
    assert_eq!(audit.count_since(&mark, &logins).await, 0);
    assert_eq!(audit.count_since(&mark, "auth/cert").await, 0);
}

/// The accessors of every live token, with the root token.
async fn accessors(admin: &Admin) -> usize {
    admin
        .list("auth/token/accessors")
        .await
        .expect_ok("LIST auth/token/accessors")["data"]["keys"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn ten_cli_runs_with_each_method_leave_no_token() {
    // A server of this test's own: the count covers every token on it.
    let vault = DevVault::builder().tls().start().await.unwrap();
    let (path, policy) = secret(&vault, "counted").await;
    let cert = vault.cert("web", &[&policy]).await;
    let jwt = vault.jwt("ci", &[&policy]).await;
    let admin = vault.admin();
    let before = accessors(&admin).await;
    let mut cert_vars = vault.env_vars_for(&cert);
    cert_vars.extend(cert.client_cert_vars());
    let mut actions = env(&vault, &jwt_role_vars(&jwt));
    actions.push(("VAULT_JWT_AUDIENCE".into(), jwt.audience().to_owned()));
    actions.extend(jwt.actions_vars());
    for run in 0..10 {
        for (method, vars) in [
            ("jwt", vault.env_vars_for(&jwt)),
            ("jwt (actions)", actions.clone()),
            ("cert", cert_vars.clone()),
        ] {
            let output = cli_binary::run(&["get", &path], vars).await.unwrap();
            assert!(
                output.status.success(),
                "{method} run {run}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&output.stdout), "counted");
        }
    }
    assert_eq!(accessors(&admin).await, before, "tokens left behind");
}

#[tokio::test]
async fn local_mistakes_are_configuration_errors_naming_the_key() {
    let vault = DevVault::shared().await.unwrap();
    let (path, policy) = secret(&vault, "never-read").await;
    let jwt = vault.jwt("ci", &[&policy]).await;
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let not_jwt = dir.path().join("not-jwt");
    std::fs::write(&not_jwt, "hunter2-not-a-jwt\n").unwrap();
    let missing = dir.path().join("missing").display().to_string();
    let mut actions_refused = jwt.actions_vars();
    actions_refused[1].1 = "hunter2-wrong-request-token".into();
    let role = jwt_role_vars(&jwt);
    let with = |extra: Vec<(String, String)>| {
        let mut all = role.clone();
        all.extend(extra);
        all
    };
    let cases: Vec<(&str, Vars, &str)> = vec![
        (
            "a missing JWT file",
            with(vars(&[("VAULT_JWT_FILE", &missing)])),
            "VAULT_JWT_FILE",
        ),
        (
            "an empty JWT file",
            with(vars(&[("VAULT_JWT_FILE", &empty.display().to_string())])),
            "VAULT_JWT_FILE",
        ),
        (
            "a JWT file that is not a JWT",
            with(vars(&[("VAULT_JWT_FILE", &not_jwt.display().to_string())])),
            "VAULT_JWT_FILE",
        ),
        (
            "an inline JWT of two parts",
            with(vars(&[("VAULT_JWT", "hunter2.two-parts")])),
            "VAULT_JWT",
        ),
        (
            "the Actions endpoint refusing the request token",
            with(actions_refused),
            "ACTIONS_ID_TOKEN_REQUEST_URL",
        ),
        (
            "the Actions endpoint unreachable",
            with(vars(&[
                (
                    "ACTIONS_ID_TOKEN_REQUEST_URL",
                    "http://127.0.0.1:1/token?api-version=2.0",
                ),
                ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "hunter2-request-token"),
            ])),
            "ACTIONS_ID_TOKEN_REQUEST_URL",
        ),
        (
            "certificate login without a client certificate",
            vars(&[("VAULT_CERT_ROLE", "web")]),
            "VAULT_CERT_ROLE",
        ),
    ];
    let mut failures = Vec::new();
    for (what, extra, key) in cases {
        let output = cli_binary::run(&["get", &path], env(&vault, &extra))
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let code = output.status.code();
        if code != Some(3) || !stderr.contains(key) || stderr.contains("hunter2") {
            failures.push(format!(
                "{what}: exit {code:?}, expected 3 naming {key}:\n{stderr}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn doctor_shows_the_jwt_expiry_and_audience_never_the_token() {
    let vault = DevVault::shared().await.unwrap();
    let (path, policy) = secret(&vault, "doctor-pass").await;
    let jwt = vault.jwt("ci", &[&policy]).await;
    let token = jwt.mint();
    let mut vars = jwt_role_vars(&jwt);
    vars.push(("VAULT_JWT".into(), token.clone()));
    let output = cli_binary::run(&["doctor", &path], env(&vault, &vars))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("methods: jwt"), "{all}");
    let line = all
        .lines()
        .find(|l| l.contains("jwt") && l.contains("expires in"))
        .unwrap_or_else(|| panic!("no jwt line: {all}"));
    assert!(line.contains(&format!("aud {}", jwt.audience())), "{line}");
    assert!(!all.contains(&token), "the JWT was printed");
    assert!(output.status.success(), "{all}");
}
