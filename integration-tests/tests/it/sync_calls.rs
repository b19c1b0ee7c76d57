//! Synchronous calls (issue 23): `run_blocking`, figment's
//! `Provider::data` and config-rs's `Source::collect` from a plain thread,
//! from inside `#[tokio::main]` and from `spawn_blocking` give the same
//! answers, and reuse one client's connections instead of opening one per
//! call (counted on a proxy in front of a real OpenBao).

use std::time::Duration;

use figment::Provider as _;
use serde_json::json;
use vault_secret::testing::DevVault;
use vault_secret::{KvVersion, VaultClient, VaultConfigSource, VaultProvider, VaultSecret};

use crate::proxy::Proxy;

/// Calls in each of the three places, a thousand in all.
const PLAIN: usize = 400;
const IN_TASK: usize = 300;
const SPAWN_BLOCKING: usize = 300;
/// "A handful": sequential calls need one connection; a spare few allow
/// for a connection the server or the pool closed.
const HANDFUL: usize = 4;

/// A server with `<mount>/app` holding `{"password": "sync-value"}`, the
/// secret's path, and the environment of a root-token client.
fn setup() -> (tokio::runtime::Runtime, DevVault, String, secret_core::Env) {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let (vault, mount) = rt.block_on(async {
        let vault = DevVault::shared().await.expect("the shared server");
        let mount = vault.kv_mount(KvVersion::V2).await;
        vault
            .kv_put(&format!("{mount}/app"), json!({"password": "sync-value"}))
            .await;
        (vault, mount)
    });
    let env = vault.env_for(&vault.root_token());
    (rt, vault, format!("{mount}/app#password"), env)
}

/// Runs `call` `PLAIN` times on a plain thread, `IN_TASK` times inside an
/// async task of a `#[tokio::main]` runtime and `SPAWN_BLOCKING` times on
/// `spawn_blocking` threads; every answer must be `expected`.
fn everywhere<F>(call: F, expected: &str)
where
    F: Fn() -> String + Send + Sync + Clone + 'static,
{
    let plain = call.clone();
    let answers = std::thread::spawn(move || (0..PLAIN).map(|_| plain()).collect::<Vec<_>>())
        .join()
        .expect("the plain thread's calls");
    assert!(answers.iter().all(|a| a == expected), "plain thread");
    // What `#[tokio::main]` expands to: a multi-thread runtime blocking on
    // the async main.
    let main = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let in_task = call.clone();
    let answers = main.block_on(async move { (0..IN_TASK).map(|_| in_task()).collect::<Vec<_>>() });
    assert!(
        answers.iter().all(|a| a == expected),
        "inside #[tokio::main]"
    );
    let answers = main.block_on(async move {
        let mut answers = Vec::new();
        for _ in 0..SPAWN_BLOCKING {
            let call = call.clone();
            answers.push(tokio::task::spawn_blocking(call).await.expect("the call"));
        }
        answers
    });
    assert!(answers.iter().all(|a| a == expected), "spawn_blocking");
    main.shutdown_timeout(Duration::from_secs(5));
}

#[test]
fn a_thousand_run_blocking_calls_open_a_handful_of_connections() {
    let (_rt, vault, path, env) = setup();

    // With a client of the caller's.
    let proxy = Proxy::start(vault.addr());
    let held = {
        let builder = VaultClient::builder()
            .env(env.clone())
            .address(proxy.addr());
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(builder.build())
            .unwrap()
    };
    let secret = VaultSecret::new(&path).client(held.clone());
    everywhere(
        move || secret.run_blocking().unwrap().expose_secret().to_owned(),
        "sync-value",
    );
    let with_client = proxy.accepted();
    assert!(
        (1..=HANDFUL).contains(&with_client),
        "{with_client} connections for 1,000 calls with a held client"
    );

    // With the default client for the settings (`VaultSecret::run`'s).
    let proxy = Proxy::start(vault.addr());
    let builder = VaultClient::builder().env(env).address(proxy.addr());
    let secret = VaultSecret::new(&path).builder(builder);
    everywhere(
        move || secret.run_blocking().unwrap().expose_secret().to_owned(),
        "sync-value",
    );
    let with_default = proxy.accepted();
    assert!(
        (1..=HANDFUL).contains(&with_default),
        "{with_default} connections for 1,000 calls with the default client"
    );
    eprintln!(
        "1,000 run_blocking calls: {with_client} connections (held client), \
         {with_default} (default client)"
    );
}

#[test]
fn figment_and_config_calls_with_a_client_reuse_its_connections() {
    let (_rt, vault, path, env) = setup();
    let proxy = Proxy::start(vault.addr());
    let client = {
        let builder = VaultClient::builder().env(env).address(proxy.addr());
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(builder.build())
            .unwrap()
    };
    let provider = VaultProvider::new(&path).client(client.clone());
    everywhere(
        move || {
            let data = provider.data().unwrap();
            let dict = data.values().next().unwrap();
            dict["password"].as_str().unwrap().to_owned()
        },
        "sync-value",
    );
    let source = VaultConfigSource::new(&path).client(client);
    everywhere(
        move || {
            let map = config::Source::collect(&source).unwrap();
            map["password"].clone().into_string().unwrap()
        },
        "sync-value",
    );
    let accepted = proxy.accepted();
    assert!(
        (1..=HANDFUL).contains(&accepted),
        "{accepted} connections for 2,000 figment and config-rs calls"
    );
}
