//! Dynamic secrets with managed leases, on OpenBao and a real PostgreSQL:
//! issued credentials log in; leases renew, rotate before their max TTL,
//! are revoked after rotation, at close and at shutdown; a token that
//! reaches its max TTL hands its leases over to the next login; an outage
//! keeps the credentials; errors name what is wrong.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use vault_secret::testing::{DatabaseRole, DevVault, Postgres, unique};
use vault_secret::{
    Error, LeaseLostKind, ReadApi, VaultClient,
    lease::{LeaseEvent, LeaseOptions, LeasedSecret},
};

/// The PostgreSQL the tests of this binary share (each test has its own
/// database engine mount and so its own users).
pub(crate) async fn postgres() -> &'static Postgres {
    static PG: tokio::sync::OnceCell<Postgres> = tokio::sync::OnceCell::const_new();
    PG.get_or_init(|| async {
        Postgres::start()
            .await
            .expect("a PostgreSQL (see the error for how to get one)")
    })
    .await
}

#[derive(Deserialize)]
struct Creds {
    username: String,
    password: SecretString,
}

/// Logs in to `pg` as `user` and runs a query.
pub(crate) async fn log_in(pg: &Postgres, user: &str, password: &str) -> Result<(), String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(pg.port())
        .user(user)
        .password(password)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(5));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let connection = tokio::spawn(connection);
    let result = client
        .simple_query("SELECT 1")
        .await
        .map(drop)
        .map_err(|e| e.to_string());
    drop(client);
    let _ = connection.await;
    result
}

async fn creds_log_in(pg: &Postgres, lease: &LeasedSecret) -> Result<String, String> {
    let creds: Creds = lease.current_as().map_err(|e| e.to_string())?;
    log_in(pg, &creds.username, creds.password.expose_secret()).await?;
    Ok(creds.username)
}

/// A server, a database role with these TTLs and a client whose token may
/// issue, renew and revoke its credentials.
async fn setup(
    default_ttl: u64,
    max_ttl: u64,
    options: LeaseOptions,
) -> (DevVault, DatabaseRole, VaultClient) {
    let vault = DevVault::shared().await.expect("a dev server");
    let pg = postgres().await;
    let db = vault
        .database(
            pg,
            Duration::from_secs(default_ttl),
            Duration::from_secs(max_ttl),
        )
        .await;
    let policy = vault.policy("leases", &db.policy()).await;
    let token = vault.token(&[&policy]).await;
    let client = VaultClient::builder()
        .env(vault.env_for(&token))
        .lease_options(options)
        .build()
        .await
        .expect("a client");
    (vault, db, client)
}

/// Waits for an event `pick` accepts, within `within`.
async fn wait_for(
    changes: &mut watch::Receiver<LeaseEvent>,
    within: Duration,
    pick: impl Fn(&LeaseEvent) -> bool,
) -> LeaseEvent {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        {
            let event = changes.borrow_and_update();
            if pick(&event) {
                return event.clone();
            }
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("the change stream ended"),
            Err(_) => panic!(
                "no such event within {within:?}; last: {:?}",
                *changes.borrow()
            ),
        }
    }
}

/// `sys/leases/lookup`'s answer for `lease_id`.
async fn lookup(vault: &DevVault, lease_id: &str) -> vault_secret::testing::RawResponse {
    vault
        .admin()
        .put("sys/leases/lookup", &json!({ "lease_id": lease_id }))
        .await
}

/// The live leases under `<prefix>` (`LIST sys/leases/lookup/<prefix>`).
pub(crate) async fn live_leases(vault: &DevVault, prefix: &str) -> Vec<Value> {
    let answer = vault
        .admin()
        .list(&format!("sys/leases/lookup/{prefix}"))
        .await;
    answer.body["data"]["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn issued_credentials_log_in_and_the_lease_is_described() {
    let (_vault, db, client) = setup(60, 120, LeaseOptions::new()).await;
    let pg = postgres().await;
    let lease = client.lease(db.creds_path()).await.unwrap();
    let info = lease.lease();
    assert!(info.id.starts_with(&db.creds_path()), "{info:?}");
    assert_eq!(info.duration, Duration::from_secs(60));
    assert!(info.renewable);
    assert!(info.expires_at > Instant::now() + Duration::from_secs(50));
    creds_log_in(pg, &lease).await.unwrap();
    // One field, as a read takes it.
    let user = client
        .lease(format!("{}#username", db.creds_path()))
        .await
        .unwrap();
    assert!(user.current().expose_secret().starts_with("v-"));
    // Debug shows the lease, never the credentials.
    let creds: Creds = lease.current_as().unwrap();
    let shown = format!("{lease:?} {:?}", lease.current());
    assert!(shown.contains(&info.id), "{shown}");
    assert!(!shown.contains(creds.password.expose_secret()), "{shown}");
    assert_eq!(client.leases_held(), 2);
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn leases_are_renewed_and_keep_working_past_their_ttl() {
    let (vault, db, client) = setup(2, 8, LeaseOptions::new()).await;
    let pg = postgres().await;
    let lease = client.lease(db.creds_path()).await.unwrap();
    let id = lease.lease().id;
    let first_expiry = lookup(&vault, &id).await.expect_ok("lookup")["data"]["expire_time"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut changes = lease.changes();
    let renewed = wait_for(&mut changes, Duration::from_secs(5), |e| {
        matches!(e, LeaseEvent::Renewed(_))
    })
    .await;
    let LeaseEvent::Renewed(info) = renewed else {
        unreachable!()
    };
    assert_eq!(info.id, id, "a renewal keeps the lease");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = lookup(&vault, &id).await.expect_ok("lookup")["data"]["expire_time"]
        .as_str()
        .unwrap()
        .to_owned();
    // RFC 3339 times of one server and zone compare as text.
    assert!(after > first_expiry, "{after} vs {first_expiry}");
    // Past the 2 s TTL, the same credentials still log in.
    let user = creds_log_in(pg, &lease).await.unwrap();
    assert_eq!(lease.lease().id, id);
    assert!(user.starts_with("v-"));
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn rotation_before_max_ttl_publishes_new_credentials_and_revokes_the_old_after_grace() {
    let options = LeaseOptions::new().with_grace_period(Duration::from_secs(1));
    let (vault, db, client) = setup(2, 5, options).await;
    let pg = postgres().await;
    let lease = client.lease(db.creds_path()).await.unwrap();
    let old: Creds = lease.current_as().unwrap();
    let old_id = lease.lease().id;
    let mut changes = lease.changes();
    let rotated = wait_for(&mut changes, Duration::from_secs(8), |e| {
        matches!(e, LeaseEvent::Rotated(_))
    })
    .await;
    let LeaseEvent::Rotated(info) = rotated else {
        unreachable!()
    };
    assert_ne!(info.id, old_id);
    let new_user = creds_log_in(pg, &lease).await.unwrap();
    assert_ne!(new_user, old.username, "rotation gives a new user");
    // After the grace period the old lease is revoked and its user dropped.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!lookup(&vault, &old_id).await.is_success());
    let refused = log_in(pg, &old.username, old.password.expose_secret()).await;
    assert!(refused.is_err(), "the old user still logs in");
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_revokes_every_lease_and_their_database_users() {
    let (vault, db, client) = setup(60, 120, LeaseOptions::new()).await;
    let pg = postgres().await;
    let a = client.lease(db.creds_path()).await.unwrap();
    let b = client.lease(db.creds_path()).await.unwrap();
    let users = [
        creds_log_in(pg, &a).await.unwrap(),
        creds_log_in(pg, &b).await.unwrap(),
    ];
    assert_eq!(live_leases(&vault, &db.creds_path()).await.len(), 2);
    client.shutdown().await.unwrap();
    assert_eq!(
        live_leases(&vault, &db.creds_path()).await,
        Vec::<Value>::new()
    );
    let roles = pg.login_roles().unwrap();
    for user in &users {
        assert!(!roles.contains(user), "{user} left in pg_roles: {roles:?}");
    }
    // The handles' change streams have ended.
    assert!(a.changes().changed().await.is_err());
    // A dropped handle revokes its lease in the background.
    let c = client.lease(db.creds_path()).await.unwrap();
    let user = creds_log_in(pg, &c).await.unwrap();
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pg.login_roles().unwrap().contains(&user) {
        assert!(Instant::now() < deadline, "a dropped lease was not revoked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn close_revokes_now_and_detach_leaves_the_lease_to_its_ttl() {
    let (vault, db, client) = setup(60, 120, LeaseOptions::new()).await;
    let pg = postgres().await;
    let closed = client.lease(db.creds_path()).await.unwrap();
    let user = creds_log_in(pg, &closed).await.unwrap();
    closed.close().await.unwrap();
    assert!(!pg.login_roles().unwrap().contains(&user));
    closed.close().await.unwrap();
    let detached = client.lease(db.creds_path()).await.unwrap();
    let id = detached.lease().id;
    detached.detach();
    drop(detached);
    client.shutdown().await.unwrap();
    assert!(
        lookup(&vault, &id).await.is_success(),
        "a detached lease lives its TTL"
    );
    vault
        .admin()
        .put("sys/leases/revoke", &json!({ "lease_id": id }))
        .await;
}

#[tokio::test]
async fn a_token_at_its_max_ttl_hands_its_leases_to_the_next_login() {
    let vault = DevVault::shared().await.expect("a dev server");
    let pg = postgres().await;
    let db = vault
        .database(pg, Duration::from_secs(60), Duration::from_secs(120))
        .await;
    let policy = vault.policy("leases", &db.policy()).await;
    let approle = vault.approle(&[&policy]).await;
    // Tokens of 3 s, renewable up to 6 s: the client logs in again mid-lease.
    vault
        .admin()
        .post(
            &format!("auth/{}/role/app", approle.mount()),
            &json!({ "token_ttl": "3s", "token_max_ttl": "6s" }),
        )
        .await
        .expect_ok("role TTLs");
    let client = VaultClient::builder()
        .env(vault.env_for(&approle))
        .build()
        .await
        .unwrap();
    let lease = client.lease(db.creds_path()).await.unwrap();
    let old_user = creds_log_in(pg, &lease).await.unwrap();
    let mut changes = lease.changes();
    let rotated = wait_for(&mut changes, Duration::from_secs(10), |e| {
        matches!(e, LeaseEvent::Rotated(_))
    })
    .await;
    assert!(matches!(rotated, LeaseEvent::Rotated(_)));
    let new_user = creds_log_in(pg, &lease).await.unwrap();
    assert_ne!(new_user, old_user);
    // Past the first token's max TTL (and the second's): the credentials
    // in use still work, and the first ones went with the first token.
    tokio::time::sleep(Duration::from_secs(7)).await;
    creds_log_in(pg, &lease).await.unwrap();
    assert!(lookup(&vault, &lease.lease().id).await.is_success());
    assert!(!pg.login_roles().unwrap().contains(&old_user));
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lease_held_through_a_server_crash_keeps_its_credentials_and_renews_after_unseal() {
    let vault = DevVault::builder()
        .persistent()
        .start()
        .await
        .expect("a persistent server");
    let pg = postgres().await;
    let db = vault
        .database(pg, Duration::from_secs(20), Duration::from_secs(120))
        .await;
    let client = VaultClient::builder()
        .env(vault.env_for(&vault.root_token()))
        .max_retries(0)
        .build()
        .await
        .unwrap();
    let lease = client.lease(db.creds_path()).await.unwrap();
    let user = creds_log_in(pg, &lease).await.unwrap();
    let id = lease.lease().id;
    let mut changes = lease.changes();
    vault.kill();
    // The renewal falls due (12 to 13.3 s in) while the server is down.
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert_eq!(
        *changes.borrow_and_update(),
        LeaseEvent::Issued(lease.lease())
    );
    assert_eq!(creds_log_in(pg, &lease).await.unwrap(), user);
    vault.restart().await;
    vault.unseal().await;
    let unsealed = Instant::now();
    let renewed = wait_for(&mut changes, Duration::from_secs(4), |e| {
        matches!(e, LeaseEvent::Renewed(_))
    })
    .await;
    assert!(Instant::now() - unsealed < Duration::from_secs(4));
    let LeaseEvent::Renewed(info) = renewed else {
        unreachable!()
    };
    assert_eq!(info.id, id);
    assert_eq!(creds_log_in(pg, &lease).await.unwrap(), user);
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_non_renewable_lease_is_rotated_not_renewed() {
    let vault = DevVault::shared().await.expect("a dev server");
    let mount = unique("pki");
    let admin = vault.admin();
    admin
        .post(&format!("sys/mounts/{mount}"), &json!({ "type": "pki" }))
        .await
        .expect_ok("pki mount");
    admin
        .post(
            &format!("{mount}/root/generate/internal"),
            &json!({ "common_name": "test root", "ttl": "1h" }),
        )
        .await
        .expect_ok("root CA");
    admin
        .post(
            &format!("{mount}/roles/app"),
            &json!({ "allow_any_name": true, "max_ttl": "1h", "generate_lease": true }),
        )
        .await
        .expect_ok("pki role");
    let client = VaultClient::builder()
        .env(vault.env_for(&vault.root_token()))
        .build()
        .await
        .unwrap();
    let cert = client
        .lease_with(
            format!("{mount}/issue/app"),
            json!({ "common_name": "app.example.com", "ttl": "3s" }),
        )
        .await
        .unwrap();
    assert!(!cert.lease().renewable);
    let first: Value = cert.current_as().unwrap();
    let mut changes = cert.changes();
    let event = wait_for(&mut changes, Duration::from_secs(5), |e| {
        !matches!(e, LeaseEvent::Issued(_))
    })
    .await;
    assert!(matches!(event, LeaseEvent::Rotated(_)), "{event:?}");
    let second: Value = cert.current_as().unwrap();
    assert_ne!(first["serial_number"], second["serial_number"]);
    client.shutdown().await.unwrap();
    admin.delete(&format!("sys/mounts/{mount}")).await;
}

#[tokio::test]
async fn a_denial_names_the_capability_and_an_unknown_role_is_named() {
    let (vault, db, client) = setup(60, 120, LeaseOptions::new()).await;
    // A token without the policy.
    let stranger = VaultClient::builder()
        .env(vault.env_for(&vault.token(&[]).await))
        .build()
        .await
        .unwrap();
    let err = stranger.lease(db.creds_path()).await.unwrap_err();
    let Error::LeaseDenied {
        capability,
        policy_path,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(
        (*capability, policy_path.as_str()),
        ("read", db.creds_path().as_str())
    );
    assert!(err.to_string().contains("needs `read` on"), "{err}");
    // A role that does not exist.
    let err = client
        .lease(format!("{}/creds/nope", db.mount))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lease_revoked_behind_the_clients_back_is_replaced_at_its_renewal() {
    let (vault, db, client) = setup(3, 60, LeaseOptions::new()).await;
    let pg = postgres().await;
    let lease = client.lease(db.creds_path()).await.unwrap();
    let old_user = creds_log_in(pg, &lease).await.unwrap();
    let id = lease.lease().id;
    vault
        .admin()
        .put("sys/leases/revoke", &json!({ "lease_id": id }))
        .await
        .expect_ok("revoke");
    // The renewal (about 2 s in) is refused: new credentials are issued.
    let mut changes = lease.changes();
    let event = wait_for(&mut changes, Duration::from_secs(5), |e| {
        !matches!(e, LeaseEvent::Issued(_))
    })
    .await;
    assert!(matches!(event, LeaseEvent::Rotated(_)), "{event:?}");
    let new_user = creds_log_in(pg, &lease).await.unwrap();
    assert_ne!(new_user, old_user);
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_policy_taken_away_mid_lease_is_published_as_lost_denied() {
    let vault = DevVault::shared().await.expect("a dev server");
    let pg = postgres().await;
    let db = vault
        .database(pg, Duration::from_secs(3), Duration::from_secs(4))
        .await;
    let policy = vault.policy("leases", &db.policy()).await;
    let token = vault.token(&[&policy]).await;
    let client = VaultClient::builder()
        .env(vault.env_for(&token))
        .build()
        .await
        .unwrap();
    let lease = client.lease(db.creds_path()).await.unwrap();
    // The policy no longer allows the path (the `default` policy still
    // allows renewals, until the max TTL forces a new issue).
    vault
        .admin()
        .put(
            &format!("sys/policies/acl/{policy}"),
            &json!({ "policy": r#"path "sys/nothing" { capabilities = ["read"] }"# }),
        )
        .await
        .expect_ok("policy");
    let mut changes = lease.changes();
    let event = wait_for(&mut changes, Duration::from_secs(6), |e| {
        matches!(e, LeaseEvent::Lost(_) | LeaseEvent::Rotated(_))
    })
    .await;
    let LeaseEvent::Lost(lost) = event else {
        panic!("{event:?}");
    };
    assert_eq!(lost.kind, LeaseLostKind::Denied);
    assert!(lost.reason.contains(&db.creds_path()), "{}", lost.reason);
    vault
        .admin()
        .put(
            "sys/leases/revoke",
            &json!({ "lease_id": lease.lease().id }),
        )
        .await;
}

#[tokio::test]
async fn kv_paths_and_leased_paths_point_at_each_other() {
    let (vault, db, client) = setup(60, 120, LeaseOptions::new()).await;
    let root = VaultClient::builder()
        .env(vault.env_for(&vault.root_token()))
        .build()
        .await
        .unwrap();
    vault.kv_put("secret/leases/app", json!({ "a": "1" })).await;
    let err = root.lease("secret/leases/app").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongEngine {
                use_api: ReadApi::Read,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("VaultClient::read"), "{err}");
    let err = client.read(&db.creds_path()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongEngine {
                use_api: ReadApi::Lease,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("`database` secrets engine, not KV") && text.contains("VaultClient::lease"),
        "{text}"
    );
    // The lost kind's words are stable for messages.
    assert_eq!(LeaseLostKind::Expired.to_string(), "expired");
}

#[tokio::test]
async fn the_cli_prints_a_dynamic_secret_and_leaves_its_lease_to_its_ttl() {
    let (vault, db, _client) = setup(60, 120, LeaseOptions::new()).await;
    let pg = postgres().await;
    let policy = vault.policy("leases-cli", &db.policy()).await;
    let token = vault.token(&[&policy]).await;
    let vars = vault.env_vars_for(&token);
    let whole = crate::cli_binary::run(&["get", "-v", &db.creds_path()], vars.clone())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&whole.stderr);
    assert!(whole.status.success(), "{stderr}");
    let printed: Value = serde_json::from_slice(&whole.stdout).expect("JSON on stdout");
    let (user, password) = (
        printed["username"].as_str().unwrap(),
        printed["password"].as_str().unwrap(),
    );
    log_in(pg, user, password).await.unwrap();
    // The lease line on stderr at -v: id, duration, renewable; no value.
    assert!(
        stderr.contains(&db.creds_path())
            && stderr.contains("duration_s=60")
            && stderr.contains("renewable=true"),
        "{stderr}"
    );
    assert!(!stderr.contains(password), "{stderr}");
    // Not revoked when the command ends: it lives its TTL.
    assert_eq!(live_leases(&vault, &db.creds_path()).await.len(), 1);
    let field = crate::cli_binary::run(&["get", &format!("{}#username", db.creds_path())], vars)
        .await
        .unwrap();
    assert!(field.status.success());
    assert!(String::from_utf8_lossy(&field.stdout).starts_with("v-"));
    assert_eq!(String::from_utf8_lossy(&field.stderr), "");
    vault
        .admin()
        .put(
            &format!("sys/leases/revoke-prefix/{}", db.creds_path()),
            &json!({}),
        )
        .await;
}

#[tokio::test]
async fn config_adapters_refuse_a_leased_path_with_the_hint() {
    let (vault, db, _client) = setup(60, 120, LeaseOptions::new()).await;
    let policy = vault.policy("leases-cfg", &db.policy()).await;
    let token = vault.token(&[&policy]).await;
    let provider = vault_secret::VaultProvider::new(db.creds_path()).env(vault.env_for(&token));
    let err = figment::Figment::from(provider)
        .extract::<Value>()
        .unwrap_err();
    assert!(err.to_string().contains("VaultClient::lease"), "{err}");
    // Nothing was issued.
    assert!(live_leases(&vault, &db.creds_path()).await.is_empty());
}
