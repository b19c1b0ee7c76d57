//! Where the server is: `VAULT_ADDR` vs `vault_addr`, TLS, namespaces, sealed servers.

use serde_json::json;
use vault_secret::{Error, VaultSecret};

use crate::harness::{self, ServerOptions, dedicated_server, unique};
use crate::support::TestEnv;

#[tokio::test]
async fn vault_addr_wins_and_vault_addr_lowercase_is_the_fallback() {
    let server = harness::server().await;
    let path = unique("addr");
    server
        .admin()
        .kv2_put("secret", &path, json!({"k": "v"}))
        .await;
    let creds = json!({"VAULT_TOKEN": server.root_token()});

    // Both set: VAULT_ADDR is used (vault_addr points nowhere).
    let env = TestEnv::new(&server)
        .credentials(creds.clone())
        .set("vault_addr", "http://127.0.0.1:1");
    let v = env.read(format!("secret/{path}#k")).await.unwrap();
    assert_eq!(v.expose_secret(), "v");

    // Only vault_addr.
    let env = TestEnv::new(&server)
        .credentials(creds)
        .unset("VAULT_ADDR")
        .set("vault_addr", server.addr());
    let v = env.read(format!("secret/{path}#k")).await.unwrap();
    assert_eq!(v.expose_secret(), "v");

    // A malformed address names the variable.
    let env = TestEnv::new(&server)
        .set("VAULT_ADDR", "127.0.0.1:8200 oops")
        .set("VAULT_TOKEN", "t");
    let err = env.read("secret/x").await.unwrap_err();
    assert!(
        matches!(&err, Error::Config { name, .. } if name == "VAULT_ADDR"),
        "{err}"
    );
}

#[tokio::test]
async fn namespaces_via_vault_namespace() {
    let server = harness::server().await;
    let admin = server.admin();
    if !admin.namespaces_supported().await {
        assert!(
            server.is_external(),
            "the OpenBao dev server supports namespaces"
        );
        return;
    }
    let ns = unique("ns");
    admin.create_namespace(&ns).await;
    let inside = admin.in_namespace(&ns);
    inside.mount_kv("kv", 2).await;
    inside
        .kv2_put("kv", "app", json!({"where": "inside"}))
        .await;
    let env = TestEnv::new(&server)
        .credentials(json!({"VAULT_TOKEN": server.root_token()}))
        .set("VAULT_NAMESPACE", ns.clone());
    let v = env.read("kv/app#where").await.unwrap();
    assert_eq!(v.expose_secret(), "inside");
    // Without the namespace the same path is not there.
    let env = env.unset("VAULT_NAMESPACE");
    let err = env.read("kv/app").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn tls_with_vault_cacert_and_without() {
    let server = dedicated_server(ServerOptions::tls()).await;
    assert!(server.addr().starts_with("https://"));
    let path = unique("tls");
    server
        .admin()
        .kv2_put("secret", &path, json!({"k": "tls"}))
        .await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": server.root_token()}));
    let v = env.read(format!("secret/{path}#k")).await.unwrap();
    assert_eq!(v.expose_secret(), "tls");

    let env = env.unset("VAULT_CACERT");
    let err = env.read(format!("secret/{path}")).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
}

#[tokio::test]
async fn a_sealed_server_is_named_as_such() {
    let server = dedicated_server(ServerOptions::default()).await;
    server.admin().seal().await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": server.root_token()}));
    let err = env.read("secret/app").await.unwrap_err();
    assert!(matches!(err, Error::Sealed { .. }), "{err}");
    assert!(err.to_string().ends_with("is sealed"), "{err}");
}

#[test]
fn run_blocking_without_a_runtime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(harness::server());
    let path = unique("blocking");
    rt.block_on(
        server
            .admin()
            .kv2_put("secret", &path, json!({"k": "sync"})),
    );
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": server.root_token()}));
    let secret = VaultSecret::new(format!("secret/{path}#k")).env(env.env());
    let value = std::thread::spawn(move || secret.run_blocking())
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(value.expose_secret(), "sync");
}

#[test]
fn one_session_serves_runtimes_that_come_and_go() {
    // Pooled connections die with the runtime that opened them; the shared
    // session must not hand a later runtime a dead one.
    let setup = tokio::runtime::Runtime::new().unwrap();
    let server = setup.block_on(harness::server());
    let path = unique("runtimes");
    setup.block_on(
        server
            .admin()
            .kv2_put("secret", &path, json!({"k": "many"})),
    );
    drop(setup);
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": server.root_token()}));
    let secret = VaultSecret::new(format!("secret/{path}#k")).env(env.env());
    for _ in 0..4 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(secret.run()).unwrap().expose_secret(), "many");
        drop(rt);
        assert_eq!(secret.run_blocking().unwrap().expose_secret(), "many");
    }
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let secret = secret.clone();
            std::thread::spawn(move || secret.run_blocking().map(|v| v.expose_secret().to_owned()))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), "many");
    }
}

#[tokio::test]
async fn vault_tls_server_name_is_what_the_certificate_is_checked_against() {
    let server = dedicated_server(ServerOptions::tls()).await;
    assert!(server.addr().starts_with("https://127.0.0.1:"));
    let path = unique("sni");
    server
        .admin()
        .kv2_put("secret", &path, json!({"k": "sni"}))
        .await;
    let env = |name: &str| {
        TestEnv::new(&server)
            .set("VAULT_TLS_SERVER_NAME", name)
            .credentials(json!({"VAULT_TOKEN": server.root_token()}))
    };
    // The dev certificate names `vm` (among others): requests still go to 127.0.0.1.
    let v = env("vm").read(format!("secret/{path}#k")).await.unwrap();
    assert_eq!(v.expose_secret(), "sni");
    // A name the certificate does not hold fails verification.
    let wrong = env("wrong.example");
    let err = wrong.read(format!("secret/{path}")).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn vault_agent_addr_takes_the_requests_when_set() {
    let server = harness::server().await;
    let path = unique("agent");
    server
        .admin()
        .kv2_put("secret", &path, json!({"k": "via agent"}))
        .await;
    // VAULT_ADDR points nowhere; the agent address is the server.
    let env = TestEnv::new(&server)
        .set("VAULT_AGENT_ADDR", server.addr())
        .set("VAULT_ADDR", "http://127.0.0.1:1")
        .credentials(json!({"VAULT_TOKEN": server.root_token()}));
    let v = env.read(format!("secret/{path}#k")).await.unwrap();
    assert_eq!(v.expose_secret(), "via agent");
}
