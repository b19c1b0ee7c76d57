//! KV writes on a real server: write (with check-and-set), patch, delete,
//! delete and destroy versions, on KV v1, v2 and a nested mount; least
//! privilege; concurrent check-and-set writers; read-your-writes through
//! the cache; a write through a standby of a three-node cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secret_core::SecretValue;
use serde_json::json;
use vault_secret::testing::DevCluster;
use vault_secret::{Cas, Error, VaultClient, VaultSecret, cache::CacheOptions};

use crate::harness::{self, unique};
use crate::support::TestEnv;

/// A client with the root token, and the server.
async fn root_client() -> (Arc<harness::Server>, VaultClient) {
    let server = harness::server().await;
    let client = TestEnv::new(&server)
        .credentials(json!({"VAULT_TOKEN": server.root_token()}))
        .session()
        .await;
    (server, client)
}

/// A client with a token of its own holding `policy` (HCL).
async fn client_with_policy(server: &harness::Server, hcl: &str) -> VaultClient {
    let admin = server.admin();
    let name = unique("write-pol");
    admin.put_policy(&name, hcl).await;
    let token = admin.create_token(&[&name], None).await;
    TestEnv::new(server)
        .credentials(json!({"VAULT_TOKEN": token}))
        .session()
        .await
}

#[tokio::test]
async fn writes_on_kv2_kv1_and_a_nested_mount() {
    let (server, vault) = root_client().await;
    let admin = server.admin();
    let v2 = unique("w-kv2");
    let v1 = unique("w-kv1");
    let nested = format!("{}/team/kv", unique("w-nest"));
    admin.mount_kv(&v2, 2).await;
    admin.mount_kv(&v1, 1).await;
    admin.mount_kv(&nested, 2).await;

    let first = vault
        .write(
            &format!("{v2}/app/db"),
            &json!({"user": "u", "password": "p1"}),
        )
        .await
        .unwrap();
    assert_eq!(first.version, Some(1));
    let meta = first
        .metadata
        .expect("KV v2 answers the version's metadata");
    assert!(meta.created_time.is_some() && !meta.destroyed, "{meta:?}");
    let mut map = BTreeMap::new();
    map.insert("password".to_owned(), "p2");
    let second = vault.write(&format!("{v2}/app/db"), &map).await.unwrap();
    assert_eq!(second.version, Some(2));
    // Written as the server keeps it: the whole mapping replaced.
    assert_eq!(
        admin.kv2_get(&v2, "app/db", None).await["data"],
        json!({"password": "p2"})
    );

    let v1_written = vault
        .write(
            &format!("{v1}/app/db"),
            &SecretValue::json(json!({"port": 5432, "password": "v1pass"})),
        )
        .await
        .unwrap();
    assert_eq!(v1_written.version, None);
    let read = vault.read(&format!("{v1}/app/db")).await.unwrap();
    assert_eq!(
        read.to_json().unwrap(),
        json!({"port": 5432, "password": "v1pass"})
    );

    let nested_written = vault
        .write(&format!("{nested}/svc"), &json!({"k": "v"}))
        .await
        .unwrap();
    assert_eq!(nested_written.version, Some(1));
    let read = vault.read(&format!("{nested}/svc#k")).await.unwrap();
    assert_eq!(read.expose_secret(), "v");
}

#[tokio::test]
async fn read_versioned_gives_the_version_and_its_metadata() {
    let (server, vault) = root_client().await;
    let admin = server.admin();
    let mount = unique("w-meta");
    admin.mount_kv(&mount, 2).await;
    vault
        .write(&format!("{mount}/app"), &json!({"k": "one"}))
        .await
        .unwrap();
    vault
        .write(&format!("{mount}/app"), &json!({"k": "two"}))
        .await
        .unwrap();
    admin
        .post(
            &format!("{mount}/metadata/app"),
            &json!({"custom_metadata": {"owner": "team-a"}}),
        )
        .await
        .expect_ok("custom metadata");
    let got = vault.read_versioned(&format!("{mount}/app")).await.unwrap();
    let meta = got.metadata.expect("KV v2 metadata");
    assert_eq!(meta.version, 2);
    assert_eq!(meta.deletion_time, None);
    assert_eq!(
        meta.custom_metadata.get("owner").map(String::as_str),
        Some("team-a")
    );
    assert_eq!(got.value.to_json().unwrap(), json!({"k": "two"}));
    let old = vault
        .read_versioned(&format!("{mount}/app?version=1#k"))
        .await
        .unwrap();
    assert_eq!(old.metadata.map(|m| m.version), Some(1));
    assert_eq!(old.value.expose_secret(), "one");

    let v1 = unique("w-meta1");
    admin.mount_kv(&v1, 1).await;
    vault
        .write(&format!("{v1}/app"), &json!({"k": "v"}))
        .await
        .unwrap();
    let got = vault.read_versioned(&format!("{v1}/app")).await.unwrap();
    assert!(got.metadata.is_none());
}

#[tokio::test]
async fn create_without_update_creates_and_cannot_overwrite() {
    let server = harness::server().await;
    let mount = unique("w-lp");
    server.admin().mount_kv(&mount, 2).await;
    let hcl = format!(r#"path "{mount}/data/app" {{ capabilities = ["create"] }}"#);
    let vault = client_with_policy(&server, &hcl).await;

    let created = vault
        .write(&format!("{mount}/app"), &json!({"k": "first"}))
        .await
        .unwrap();
    assert_eq!(created.version, Some(1));
    let err = vault
        .write(&format!("{mount}/app"), &json!({"k": "second"}))
        .await
        .unwrap_err();
    match &err {
        Error::WriteDenied {
            needed, api_path, ..
        } => {
            assert_eq!(needed, &["update"]);
            assert_eq!(api_path, &format!("{mount}/data/app"));
        }
        other => panic!("expected WriteDenied, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("`update`") && !text.contains("second"),
        "{text}"
    );
    assert_eq!(
        server.admin().kv2_get(&mount, "app", None).await["data"],
        json!({"k": "first"})
    );
    // Patch and delete name their own capabilities.
    let err = vault
        .patch(&format!("{mount}/app"), &json!({"k": "third"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::WriteDenied { needed, .. } if needed == &["patch"]),
        "{err}"
    );
    let err = vault.delete(&format!("{mount}/app")).await.unwrap_err();
    assert!(
        matches!(&err, Error::WriteDenied { needed, .. } if needed == &["delete"]),
        "{err}"
    );
}

#[tokio::test]
async fn sixteen_concurrent_cas_writers_one_wins_fifteen_conflict() {
    let (server, vault) = root_client().await;
    let mount = unique("w-cas");
    server.admin().mount_kv(&mount, 2).await;
    let path = format!("{mount}/counter");
    vault.write(&path, &json!({"n": "0"})).await.unwrap();

    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let writers = (0..16).map(|i| {
        let (vault, path, barrier) = (vault.clone(), path.clone(), barrier.clone());
        tokio::spawn(async move {
            let seen = vault.read_versioned(&path).await.expect("read");
            let version = seen.metadata.expect("metadata").version;
            // Every writer has read before any writes.
            barrier.wait().await;
            vault
                .write_cas(&path, &json!({ "n": i.to_string() }), Cas::Version(version))
                .await
        })
    });
    let outcomes = futures_util::future::join_all(writers).await;
    let mut won = 0;
    let mut conflicts = 0;
    for outcome in outcomes {
        match outcome.expect("writer task") {
            Ok(written) => {
                assert_eq!(written.version, Some(2));
                won += 1;
            }
            Err(Error::CasMismatch {
                expected,
                current,
                answer_lost,
                ..
            }) => {
                assert_eq!((expected, current, answer_lost), (Some(1), Some(2), false));
                conflicts += 1;
            }
            Err(other) => panic!("neither a win nor a conflict: {other}"),
        }
    }
    assert_eq!((won, conflicts), (1, 15));

    // Must-not-exist on an existing secret is a conflict too.
    let err = vault
        .write_cas(&path, &json!({"n": "x"}), Cas::MustNotExist)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::CasMismatch { expected: None, .. }),
        "{err}"
    );
    let fresh = vault
        .write_cas(
            &format!("{mount}/fresh"),
            &json!({"n": "1"}),
            Cas::MustNotExist,
        )
        .await
        .unwrap();
    assert_eq!(fresh.version, Some(1));
}

#[tokio::test]
async fn patch_merges_on_kv2_and_is_refused_on_kv1() {
    let (server, vault) = root_client().await;
    let admin = server.admin();
    let v2 = unique("w-patch2");
    let v1 = unique("w-patch1");
    admin.mount_kv(&v2, 2).await;
    admin.mount_kv(&v1, 1).await;

    vault
        .write(
            &format!("{v2}/app"),
            &json!({"a": "1", "b": "2", "gone": "x"}),
        )
        .await
        .unwrap();
    let patched = vault
        .patch(
            &format!("{v2}/app"),
            &json!({"b": "3", "c": "4", "gone": null}),
        )
        .await
        .unwrap();
    assert_eq!(patched.version, Some(2));
    let read = vault.read(&format!("{v2}/app")).await.unwrap();
    assert_eq!(
        read.to_json().unwrap(),
        json!({"a": "1", "b": "3", "c": "4"})
    );
    let err = vault
        .patch_cas(&format!("{v2}/app"), &json!({"a": "9"}), Cas::Version(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CasMismatch {
                expected: Some(1),
                ..
            }
        ),
        "{err}"
    );
    let err = vault
        .patch(&format!("{v2}/missing"), &json!({"a": "1"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");

    vault
        .write(&format!("{v1}/app"), &json!({"a": "1"}))
        .await
        .unwrap();
    let err = vault
        .patch(&format!("{v1}/app"), &json!({"b": "2"}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NeedsKvV2 {
                operation: "patch",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("no atomic merge"), "{err}");
    // Nothing was read, merged and written behind the caller's back.
    let read = vault.read(&format!("{v1}/app")).await.unwrap();
    assert_eq!(read.to_json().unwrap(), json!({"a": "1"}));
}

#[tokio::test]
async fn delete_delete_versions_and_destroy_each_give_their_read_error() {
    let (server, vault) = root_client().await;
    let admin = server.admin();
    let mount = unique("w-del");
    admin.mount_kv(&mount, 2).await;
    let path = format!("{mount}/app");
    for n in 1..=3 {
        vault
            .write(&path, &json!({ "n": n.to_string() }))
            .await
            .unwrap();
    }

    vault.delete(&path).await.unwrap();
    let err = vault.read(&path).await.unwrap_err();
    assert!(
        matches!(err, Error::VersionDeleted { version: 3, .. }),
        "{err}"
    );

    vault.delete_versions(&path, &[2]).await.unwrap();
    let err = vault.read(&format!("{path}?version=2")).await.unwrap_err();
    assert!(
        matches!(err, Error::VersionDeleted { version: 2, .. }),
        "{err}"
    );

    vault.destroy_versions(&path, &[1]).await.unwrap();
    let err = vault.read(&format!("{path}?version=1")).await.unwrap_err();
    assert!(
        matches!(err, Error::VersionDestroyed { version: 1, .. }),
        "{err}"
    );

    let v1 = unique("w-del1");
    admin.mount_kv(&v1, 1).await;
    vault
        .write(&format!("{v1}/app"), &json!({"k": "v"}))
        .await
        .unwrap();
    let err = vault
        .delete_versions(&format!("{v1}/app"), &[1])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeedsKvV2 { .. }), "{err}");
    vault.delete(&format!("{v1}/app")).await.unwrap();
    let err = vault.read(&format!("{v1}/app")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_caching_client_reads_its_own_writes_at_once() {
    let server = harness::server().await;
    let mount = unique("w-cache");
    server.admin().mount_kv(&mount, 2).await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": server.root_token()}));
    let vault = VaultClient::builder()
        .env(env.env())
        .cache(CacheOptions::new().with_ttl(Duration::from_secs(600)))
        .build()
        .await
        .unwrap();
    let path = format!("{mount}/app");
    vault.write(&path, &json!({"k": "one"})).await.unwrap();
    assert_eq!(
        vault
            .read(&format!("{path}#k"))
            .await
            .unwrap()
            .expose_secret(),
        "one"
    );
    vault.write(&path, &json!({"k": "two"})).await.unwrap();
    assert_eq!(
        vault
            .read(&format!("{path}#k"))
            .await
            .unwrap()
            .expose_secret(),
        "two"
    );
    vault.patch(&path, &json!({"k": "three"})).await.unwrap();
    assert_eq!(
        vault
            .read(&format!("{path}#k"))
            .await
            .unwrap()
            .expose_secret(),
        "three"
    );
    vault.delete(&path).await.unwrap();
    let err = vault.read(&path).await.unwrap_err();
    assert!(matches!(err, Error::VersionDeleted { .. }), "{err}");
}

#[tokio::test]
async fn a_write_to_another_engine_names_it_and_bad_input_sends_nothing() {
    let (_server, vault) = root_client().await;
    let err = vault
        .write("cubbyhole/app", &json!({"k": "v"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`cubbyhole` secrets engine, not KV"),
        "{err}"
    );

    // No server at all: every check happens before a request.
    let offline = VaultClient::builder()
        .address("http://127.0.0.1:9")
        .token("offline-token")
        .build()
        .await
        .unwrap();
    for (err, says) in [
        (
            offline.write("secret/app", &json!({"": "hunter2"})).await,
            "a key is empty",
        ),
        (
            offline.write("secret/app", &json!("hunter2")).await,
            "a string, not a key/value mapping",
        ),
        (
            offline
                .write_cas("secret/app", &json!({"k": "v"}), Cas::Version(0))
                .await,
            "version 0",
        ),
        (
            offline.write("secret/app#field", &json!({"k": "v"})).await,
            "without `?version=` or `#field`",
        ),
    ] {
        let err = err.unwrap_err();
        assert!(matches!(err, Error::InvalidWrite { .. }), "{err}");
        let shown = format!("{err}\n{err:?}");
        assert!(
            shown.contains(says) && !shown.contains("hunter2"),
            "{shown}"
        );
    }
    let err = offline
        .destroy_versions("secret/app", &[0])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidWrite { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_a_standby_succeeds() {
    let cluster = DevCluster::start().await.expect("a three-node cluster");
    let leader = cluster.active_node().await.expect("an active node");
    let admin = cluster.admin(&leader);
    let mount = unique("w-ha");
    admin.mount_kv(&mount, 2).await;
    let standby = cluster
        .nodes()
        .into_iter()
        .find(|n| *n != leader)
        .expect("a standby")
        .to_owned();
    let vault = VaultClient::builder()
        .address(&standby)
        .token(cluster.root_token().expose_secret())
        .build()
        .await
        .unwrap();
    // A fresh KV v2 mount answers 400 ("upgrading") on a standby for a moment.
    let path = format!("{mount}/app");
    let started = std::time::Instant::now();
    let written = loop {
        match vault.write(&path, &json!({"k": "via-standby"})).await {
            Ok(written) => break written,
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                eprintln!("write through {standby}: {e}; again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("write through a standby: {e}"),
        }
    };
    assert_eq!(written.version, Some(1));
    assert_eq!(
        admin.kv2_get(&mount, "app", None).await["data"],
        json!({"k": "via-standby"})
    );
}

#[tokio::test]
async fn the_one_liner_sets_what_run_reads() {
    let server = harness::server().await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": server.root_token()}));
    let path = format!("secret/{}", unique("set"));
    let written = VaultSecret::new(&path)
        .env(env.env())
        .set(&json!({"password": "seeded"}))
        .await
        .unwrap();
    assert_eq!(written.version, Some(1));
    let read = VaultSecret::new(format!("{path}#password"))
        .env(env.env())
        .run()
        .await
        .unwrap();
    assert_eq!(read.expose_secret(), "seeded");
}

/// Runs the CLI with `args`, `vars` only, and `stdin` as its standard input.
async fn cli(args: &[&str], vars: &[(&str, String)], stdin: &str) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(crate::cli_binary::binary())
        .args(args)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the CLI starts");
    let mut input = child.stdin.take().expect("stdin");
    // A run that fails before reading its input closes the pipe early.
    let _ = input.write_all(stdin.as_bytes()).await;
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the CLI ends")
        .expect("the CLI's output");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn cli_put_reads_stdin_and_files_and_never_prints_a_value() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = unique("w-cli");
    admin.mount_kv(&mount, 2).await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("token.txt");
    let from_file = unique("file-secret");
    let from_stdin = unique("stdin-secret");
    std::fs::write(&file, &from_file).unwrap();
    let vars = [
        ("VAULT_ADDR", server.addr().to_owned()),
        ("VAULT_TOKEN", server.root_token().to_owned()),
        ("HOME", home.path().display().to_string()),
    ];
    let path = format!("{mount}/app");
    let token_arg = format!("token=@{}", file.display());
    let (code, stdout, stderr) = cli(
        &[
            "-vvv",
            "put",
            &path,
            "user=app",
            "password=-",
            &token_arg,
            "--format",
            "json",
        ],
        &vars,
        &from_stdin,
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let printed: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(printed["version"], 1);
    assert_eq!(printed["path"], path.as_str());
    for secret in [&from_file, &from_stdin] {
        assert!(!stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()));
    }
    assert_eq!(
        admin.kv2_get(&mount, "app", None).await["data"],
        json!({"user": "app", "password": from_stdin, "token": from_file})
    );

    // Check-and-set: a stale version is its own exit code; --cas 0 on a new path writes.
    let (code, _, stderr) = cli(&["put", &path, "--cas", "7", "k=v"], &vars, "").await;
    assert_eq!(code, 8, "{stderr}");
    assert!(stderr.contains("check-and-set conflict"), "{stderr}");
    let (code, stdout, stderr) = cli(
        &["put", &format!("{mount}/new"), "--cas", "0", "k=v"],
        &vars,
        "",
    )
    .await;
    assert_eq!(
        (code, stdout.trim()),
        (0, format!("version 1 of {mount}/new").as_str()),
        "{stderr}"
    );
    let (code, stdout, _) = cli(&["put", &path, "--patch", "user=other"], &vars, "").await;
    assert_eq!(
        (code, stdout.trim()),
        (0, format!("version 2 of {path}").as_str())
    );

    // The metadata a --cas needs.
    let (code, stdout, stderr) = cli(&["get", "--with-metadata", &path], &vars, "").await;
    assert_eq!(code, 0, "{stderr}");
    let shown: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(shown["metadata"]["version"], 2);
    assert_eq!(shown["data"]["user"], "other");

    // Delete, delete versions, destroy: each read back gives its error.
    let (code, stdout, _) = cli(
        &["delete", &path, "--versions", "1", "--destroy"],
        &vars,
        "",
    )
    .await;
    assert_eq!(
        (code, stdout.trim()),
        (0, format!("destroyed versions 1 of {path}").as_str())
    );
    let (code, _, stderr) = cli(&["get", &format!("{path}?version=1")], &vars, "").await;
    assert!(code == 5 && stderr.contains("destroyed"), "{code} {stderr}");
    let (code, _, _) = cli(&["delete", &path], &vars, "").await;
    assert_eq!(code, 0);
    let (code, _, stderr) = cli(&["get", &path], &vars, "").await;
    assert!(code == 5 && stderr.contains("deleted"), "{code} {stderr}");
}

#[tokio::test]
async fn cli_put_refuses_bad_arguments_naming_them_never_a_value() {
    let server = harness::server().await;
    let home = tempfile::tempdir().unwrap();
    let vars = [
        ("VAULT_ADDR", server.addr().to_owned()),
        ("VAULT_TOKEN", server.root_token().to_owned()),
        ("HOME", home.path().display().to_string()),
    ];
    let missing = home.path().join("missing.txt").display().to_string();
    let cases: [(Vec<String>, &str); 5] = [
        (
            vec!["k=hunter2-a".into(), "k=hunter2-b".into()],
            "the key `k` is given twice",
        ),
        (vec!["a=-".into(), "b=-".into()], "used twice"),
        (vec![format!("k=@{missing}")], "missing.txt"),
        (
            vec!["hunter2-typed-alone".into()],
            "argument 1 after PATH is not KEY=VALUE",
        ),
        (vec!["=hunter2-c".into()], "empty key"),
    ];
    for (pairs, says) in cases {
        let mut args = vec!["put", "secret/app"];
        args.extend(pairs.iter().map(String::as_str));
        let (code, stdout, stderr) = cli(&args, &vars, "hunter2-stdin").await;
        assert_eq!(code, 3, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            !stdout.contains("hunter2") && !stderr.contains("hunter2"),
            "{stderr}"
        );
    }
    let (code, help, _) = cli(&["put", "--help"], &vars, "").await;
    assert_eq!(code, 0);
    assert!(
        help.contains("visible to other users") && help.contains("KEY=-"),
        "{help}"
    );
}
