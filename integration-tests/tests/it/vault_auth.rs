//! Authentication end to end: token, AppRole, Kubernetes, the fall-through
//! when a method is rejected, where credentials come from, login reuse.

use serde_json::json;
use vault_secret::{Error, VaultClient, VaultSecret};

use crate::harness::{self, KubeFixture, Server, unique};
use crate::support::TestEnv;

/// A KV v2 mount with `app` = {"password": <value>} and a policy reading it.
async fn fixture(server: &Server, value: &str) -> (String, String) {
    let admin = server.admin();
    let mount = unique("kv2");
    admin.mount_kv(&mount, 2).await;
    admin
        .kv2_put(&mount, "app", json!({"password": value}))
        .await;
    let policy = unique("read");
    admin
        .put_policy(
            &policy,
            &format!(r#"path "{mount}/data/*" {{ capabilities = ["read"] }}"#),
        )
        .await;
    (mount, policy)
}

/// AppRole credentials whose secret id allows one login only: reads that
/// succeed after the first prove they share its token.
async fn single_use_approle(server: &Server, policy: &str) -> serde_json::Value {
    let admin = server.admin();
    let approle = unique("approle");
    admin.enable_auth(&approle, "approle").await;
    admin
        .post(
            &format!("auth/{approle}/role/once"),
            &json!({"token_policies": [policy], "secret_id_num_uses": 1}),
        )
        .await
        .expect_ok("role with single-use secret ids");
    let role_id = admin
        .get(&format!("auth/{approle}/role/once/role-id"))
        .await
        .expect_ok("role id")["data"]["role_id"]
        .as_str()
        .expect("role_id in the answer")
        .to_owned();
    let secret_id = admin.approle_secret_id(&approle, "once").await;
    json!({"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id, "VAULT_APPROLE_PATH": approle})
}

async fn read_password(env: &TestEnv, mount: &str) -> Result<String, Error> {
    VaultSecret::new(format!("{mount}/app#password"))
        .env(env.env())
        .run()
        .await
        .map(|v| v.expose_secret().to_owned())
}

#[tokio::test]
async fn token_from_prefect_context_credentials() {
    let server = harness::server().await;
    let (mount, policy) = fixture(&server, "tok-pass").await;
    let token = server.admin().create_token(&[&policy], Some("1h")).await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": token}));
    assert_eq!(read_password(&env, &mount).await.unwrap(), "tok-pass");
}

#[tokio::test]
async fn the_credentials_secret_name_is_configurable() {
    let server = harness::server().await;
    let (mount, policy) = fixture(&server, "named-creds").await;
    let token = server.admin().create_token(&[&policy], Some("1h")).await;
    let env = TestEnv::new(&server).set(
        "PREFECT__CONTEXT__SECRETS__TEAM_VAULT",
        json!({"VAULT_TOKEN": token}).to_string(),
    );
    let value = VaultSecret::new(format!("{mount}/app#password"))
        .builder(
            VaultClient::builder()
                .credentials_secret("TEAM_VAULT")
                .env(env.env()),
        )
        .run()
        .await
        .unwrap();
    assert_eq!(value.expose_secret(), "named-creds");
    // Under the default name nothing is found: no credentials at all.
    let err = read_password(&env, &mount).await.unwrap_err();
    assert!(matches!(err, Error::NoCredentials { .. }), "{err}");
}

#[tokio::test]
async fn token_from_vault_token_variable_and_token_file() {
    let server = harness::server().await;
    let (mount, policy) = fixture(&server, "fallback").await;
    let token = server.admin().create_token(&[&policy], Some("1h")).await;
    // No VAULT_CREDENTIALS secret anywhere: VAULT_TOKEN is used.
    let env = TestEnv::new(&server).set("VAULT_TOKEN", token.clone());
    assert_eq!(read_password(&env, &mount).await.unwrap(), "fallback");
    // Nor VAULT_TOKEN: ~/.vault-token is used.
    let env = TestEnv::new(&server);
    std::fs::write(env.home().join(".vault-token"), format!("{token}\n")).unwrap();
    assert_eq!(read_password(&env, &mount).await.unwrap(), "fallback");
}

#[tokio::test]
async fn approle_on_the_default_and_a_custom_mount() {
    let server = harness::server().await;
    let admin = server.admin();
    let (mount, policy) = fixture(&server, "approle-pass").await;

    // The default `approle` mount (enabled once per server).
    if !admin.get("sys/auth").await.body["data"]["approle/"].is_object() {
        let r = admin
            .post("sys/auth/approle", &json!({"type": "approle"}))
            .await;
        assert!(
            r.is_success() || r.errors().contains("path is already in use"),
            "{}",
            r.errors()
        );
    }
    let role = unique("role");
    let (role_id, secret_id) = admin.approle_role("approle", &role, &[&policy]).await;
    let env = TestEnv::new(&server)
        .credentials(json!({"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}));
    assert_eq!(read_password(&env, &mount).await.unwrap(), "approle-pass");

    let custom = unique("my-approle");
    admin.enable_auth(&custom, "approle").await;
    let (role_id, secret_id) = admin.approle_role(&custom, "r", &[&policy]).await;
    let env = TestEnv::new(&server).credentials(json!({
        "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id, "VAULT_APPROLE_PATH": custom,
    }));
    assert_eq!(read_password(&env, &mount).await.unwrap(), "approle-pass");
}

#[tokio::test]
async fn kubernetes_role_with_a_custom_mount_and_token_file() {
    let server = harness::server().await;
    let (mount, policy) = fixture(&server, "kube-pass").await;
    let kube = KubeFixture::start("apps", "billing").await;
    let auth_path = unique("k8s");
    kube.configure(&server.admin(), &auth_path, "billing-role", &[&policy])
        .await;

    let env = TestEnv::new(&server).credentials(json!({
        "VAULT_KUBE_AUTH_ROLE": "billing-role",
        "VAULT_KUBE_AUTH_PATH": auth_path,
        "VAULT_KUBE_TOKEN_FILE": kube.token_path(),
    }));
    assert_eq!(read_password(&env, &mount).await.unwrap(), "kube-pass");
    // The token file ends with a newline; the JWT reviewed is the trimmed one.
    assert_eq!(
        kube.reviewed_tokens().await.last().map(String::as_str),
        Some(kube.jwt())
    );
}

#[tokio::test]
async fn rejected_methods_fall_through_in_order() {
    let server = harness::server().await;
    let admin = server.admin();
    let (mount, policy) = fixture(&server, "fell-through").await;
    let approle = unique("approle");
    admin.enable_auth(&approle, "approle").await;
    let (role_id, _) = admin.approle_role(&approle, "r", &[&policy]).await;
    let kube = KubeFixture::start("ns", "sa").await;
    let k8s = unique("k8s");
    kube.configure(&admin, &k8s, "role", &[&policy]).await;

    // A bad token, a bad AppRole secret id, then a good Kubernetes role.
    let env = TestEnv::new(&server).credentials(json!({
        "VAULT_TOKEN": "s.not-a-real-token",
        "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": "wrong-secret-id", "VAULT_APPROLE_PATH": approle,
        "VAULT_KUBE_AUTH_ROLE": "role", "VAULT_KUBE_AUTH_PATH": k8s, "VAULT_KUBE_TOKEN_FILE": kube.token_path(),
    }));
    assert_eq!(read_password(&env, &mount).await.unwrap(), "fell-through");

    // A bad token then a good AppRole: AppRole is used, Kubernetes never asked.
    let (role_id, secret_id) = admin.approle_role(&approle, "r2", &[&policy]).await;
    let env = TestEnv::new(&server).credentials(json!({
        "VAULT_TOKEN": "s.not-a-real-token",
        "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id, "VAULT_APPROLE_PATH": approle,
    }));
    let session = VaultClient::builder().env(env.env()).build().await.unwrap();
    assert_eq!(session.inspect().login().await.unwrap(), "approle");
}

#[tokio::test]
async fn all_methods_rejected_lists_each_without_credentials() {
    let server = harness::server().await;
    let admin = server.admin();
    let (mount, _) = fixture(&server, "x").await;
    let approle = unique("approle");
    admin.enable_auth(&approle, "approle").await;
    let (role_id, _) = admin.approle_role(&approle, "r", &["default"]).await;
    // A readable token file the server turns down (a missing one is a
    // configuration error, before any request: see cli_inputs).
    let jwt = tempfile::NamedTempFile::new().expect("temp token file");
    std::fs::write(jwt.path(), "hunter2.not-a.jwt\n").expect("write the token file");
    let env = TestEnv::new(&server).credentials(json!({
        "VAULT_TOKEN": "s.hunter2-token",
        "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": "hunter2-secret-id", "VAULT_APPROLE_PATH": approle,
        "VAULT_KUBE_AUTH_ROLE": "role", "VAULT_KUBE_TOKEN_FILE": jwt.path(),
    }));
    let err = read_password(&env, &mount).await.unwrap_err();
    let Error::AuthFailed { attempts } = &err else {
        panic!("expected AuthFailed, got {err}")
    };
    let methods: Vec<_> = attempts.iter().map(|a| a.method).collect();
    assert_eq!(methods, ["token", "approle", "kubernetes"]);
    assert!(
        attempts[1].reason.contains("invalid role or secret ID"),
        "{err}"
    );
    let msg = format!("{err} {err:?}");
    for secret in ["hunter2", &role_id] {
        assert!(!msg.contains(secret), "{msg}");
    }
}

#[tokio::test]
async fn a_lone_bad_token_is_an_authentication_error() {
    let server = harness::server().await;
    let (mount, _) = fixture(&server, "x").await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": "s.hunter2"}));
    let err = read_password(&env, &mount).await.unwrap_err();
    assert!(
        matches!(&err, Error::AuthFailed { attempts } if attempts[0].method == "token"),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

#[tokio::test]
async fn partial_credentials_are_named() {
    let server = harness::server().await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_SECRET_ID": "hunter2"}));
    let err = read_password(&env, "secret").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NoCredentials { .. }), "{msg}");
    assert!(
        msg.contains("`VAULT_SECRET_ID` given without `VAULT_ROLE_ID`"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test]
async fn one_login_serves_many_reads() {
    let server = harness::server().await;
    let (mount, policy) = fixture(&server, "reused").await;
    let env = TestEnv::new(&server).credentials(single_use_approle(&server, &policy).await);
    // The secret id works for one login only: three reads succeed only if they share it.
    for _ in 0..3 {
        assert_eq!(read_password(&env, &mount).await.unwrap(), "reused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_reads_log_in_once() {
    let server = harness::server().await;
    let (mount, policy) = fixture(&server, "concurrent").await;
    let env = TestEnv::new(&server).credentials(single_use_approle(&server, &policy).await);
    // Ten reads race for the first login; the single-use secret id allows one.
    let reads: Vec<_> = (0..10)
        .map(|_| {
            let secret = VaultSecret::new(format!("{mount}/app#password")).env(env.env());
            tokio::spawn(async move { secret.run().await.map(|v| v.expose_secret().to_owned()) })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap(), "concurrent");
    }
}

#[tokio::test]
async fn a_revoked_token_is_replaced_by_a_new_login() {
    let server = harness::server().await;
    let admin = server.admin();
    let (mount, policy) = fixture(&server, "relogged").await;
    let approle = unique("approle");
    admin.enable_auth(&approle, "approle").await;
    let (role_id, secret_id) = admin.approle_role(&approle, "r", &[&policy]).await;
    let env = TestEnv::new(&server).credentials(json!({
        "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id, "VAULT_APPROLE_PATH": approle,
    }));
    assert_eq!(read_password(&env, &mount).await.unwrap(), "relogged");
    // Revoke every token this AppRole mount issued.
    let r = admin
        .put(
            &format!("sys/leases/revoke-prefix/auth/{approle}/login"),
            &json!({}),
        )
        .await;
    assert!(r.is_success(), "{}", r.errors());
    assert_eq!(read_password(&env, &mount).await.unwrap(), "relogged");
}

/// A role whose tokens lack the `default` policy: `lookup-self` is refused
/// too, so a denied read cannot be told from a rejected token. The error
/// says so rather than only "rejected".
#[tokio::test]
async fn a_denied_read_with_a_token_lacking_the_default_policy_says_so() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = unique("nodef-kv");
    admin.mount_kv(&mount, 2).await;
    admin.kv2_put(&mount, "app", json!({"k": "v"})).await;
    let policy =
        crate::support::read_policy(&admin, "nodef-pol", &format!("{mount}/data/other")).await;
    let creds = crate::support::approle_credentials(&admin, "nodef-approle", "r", &[&policy]).await;
    let approle = creds["VAULT_APPROLE_PATH"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    admin
        .post(
            &format!("auth/{approle}/role/r"),
            &json!({"token_no_default_policy": true}),
        )
        .await
        .expect_ok("drop the default policy from the role's tokens");
    let env = TestEnv::new(&server).credentials(creds);
    let err = env.read(format!("{mount}/app")).await.unwrap_err();
    assert!(matches!(err, Error::AuthFailed { .. }), "{err}");
    assert!(err.to_string().contains("`default` policy"), "{err}");
}
