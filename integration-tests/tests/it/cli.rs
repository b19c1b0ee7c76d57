//! The `vault-secret` command-line tool, run as a separate process against
//! the real server: `get`, `exec`, `doctor` and every exit code.
//!
//! The binary is built once per test process with
//! `cargo build -p vault-secret --bin vault-secret --message-format=json`,
//! and its path is taken from cargo's own report of the artifact, so the
//! tests never run a stale binary and never guess the target directory or
//! profile (`CARGO_BIN_EXE_*` only exists for binaries of the package under
//! test, and this one belongs to `vault-secret`). `VAULT_SECRET_BIN=<path>`
//! runs a prebuilt binary instead.
//!
//! Every run gets an explicit environment: nothing from the developer's
//! (`env_clear`), `HOME` and `PATH` pointing at empty temporary
//! directories, and only the variables the test sets.

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::cli_binary;
use crate::harness::{self, Admin, Server, unique};
use crate::support::{approle_credentials, read_policy};

/// One way of running the tool: its environment, and nothing else.
#[derive(Debug)]
pub(crate) struct Cli {
    vars: Vec<(String, String)>,
    _home: TempDir,
    _path: TempDir,
}

impl Cli {
    /// Only `HOME` and `PATH` (both empty temporary directories).
    fn bare() -> Self {
        let home = tempfile::tempdir().expect("temp home");
        let path = tempfile::tempdir().expect("temp PATH directory");
        let vars = vec![
            ("HOME".to_owned(), home.path().display().to_string()),
            ("PATH".to_owned(), path.path().display().to_string()),
        ];
        Cli {
            vars,
            _home: home,
            _path: path,
        }
    }

    /// `VAULT_ADDR` (and `VAULT_CACERT` for https) of `server`, no credentials.
    pub(crate) fn new(server: &Server) -> Self {
        let cli = Cli::bare().set("VAULT_ADDR", server.addr());
        match server.ca_cert_path() {
            Some(ca) => cli.set("VAULT_CACERT", ca.display().to_string()),
            None => cli,
        }
    }

    /// [`Cli::new`] with `VAULT_TOKEN`.
    pub(crate) fn with_token(server: &Server, token: &str) -> Self {
        Cli::new(server).set("VAULT_TOKEN", token)
    }

    pub(crate) fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.to_owned(), value.into()));
        self
    }

    /// Runs the tool with `args`; stdin is empty, stdout and stderr captured.
    pub(crate) async fn run(&self, args: &[&str]) -> Run {
        let output = cli_binary::run(args, self.vars.iter().map(|(k, v)| (k, v)))
            .await
            .unwrap_or_else(|e| panic!("vault-secret {args:?}: {e}"));
        Run {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            // As a shell reports it: 128+N when signal N ended the process
            // (`exec` hands the process over to the command).
            code: output.status.code().or_else(|| {
                std::os::unix::process::ExitStatusExt::signal(&output.status).map(|s| 128 + s)
            }),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// What one run did.
#[derive(Debug)]
pub(crate) struct Run {
    args: Vec<String>,
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Asserts the exit code; returns `self` for more checks.
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "vault-secret {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts the failure format: stdout empty, stderr one
    /// `vault-secret: ...` line containing `needle`, then maybe one `hint: ...` line.
    #[track_caller]
    fn expect_error(&self, code: i32, needle: &str) -> &Self {
        self.expect_code(code);
        assert_eq!(self.stdout, "", "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(
            (1..=2).contains(&lines.len()) && lines[0].starts_with("vault-secret: "),
            "{self:?}"
        );
        if let Some(hint) = lines.get(1) {
            assert!(hint.starts_with("hint: "), "{self:?}");
        }
        assert!(lines[0].contains(needle), "{needle:?} not in {self:?}");
        self
    }

    /// The `hint: ...` line, if any.
    fn hint(&self) -> Option<&str> {
        self.stderr
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("hint: "))
    }

    /// Asserts `text` is in neither stdout nor stderr.
    #[track_caller]
    fn expect_absent(&self, text: &str) -> &Self {
        assert!(
            !self.stdout.contains(text) && !self.stderr.contains(text),
            "{text:?} was printed: {self:?}"
        );
        self
    }

    /// The `doctor` line of `check`.
    #[track_caller]
    fn check_line(&self, check: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| {
                l.get(7..)
                    .is_some_and(|rest| rest.starts_with(&format!("{check}:")))
            })
            .unwrap_or_else(|| panic!("no `{check}` line in:\n{}", self.stdout))
    }
}

/// A fresh KV v2 mount of this test's own.
async fn kv2(admin: &Admin) -> String {
    let mount = unique("cli-kv");
    admin.mount_kv(&mount, 2).await;
    mount
}

/// A token that may read only `<mount>/data/<readable>` (and the default
/// policy), valid for an hour.
async fn token_reading_only(admin: &Admin, mount: &str, readable: &str) -> String {
    let policy = unique("cli-pol");
    admin
        .put_policy(
            &policy,
            &format!("path \"{mount}/data/{readable}\" {{ capabilities = [\"read\"] }}"),
        )
        .await;
    admin.create_token(&[&policy], Some("1h")).await
}

// ----- get ------------------------------------------------------------------

#[tokio::test]
async fn get_prints_a_mapping_as_pretty_json_by_default() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    let data = json!({"username": "app", "password": unique("pw"), "port": 5432});
    admin.kv2_put(&mount, "app", data.clone()).await;

    let run = Cli::with_token(&server, server.root_token())
        .run(&["get", &format!("{mount}/app")])
        .await;
    run.expect_code(0);
    let printed: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(printed, data);
    assert!(run.stdout.starts_with("{\n  \""), "not pretty: {run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
}

#[tokio::test]
async fn get_prints_a_field_bare_or_as_json() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    let password = format!("{} with \"quotes\"", unique("pw"));
    admin
        .kv2_put(&mount, "db", json!({"password": password, "port": 5432}))
        .await;
    let cli = Cli::with_token(&server, server.root_token());

    let run = cli.run(&["get", &format!("{mount}/db#password")]).await;
    run.expect_code(0);
    // Exactly the value: not a terminal, so no newline is added.
    assert_eq!(run.stdout, password);

    let run = cli
        .run(&["get", &format!("{mount}/db#password"), "--format", "json"])
        .await;
    run.expect_code(0);
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).ok(),
        Some(json!(password))
    );

    let run = cli.run(&["get", &format!("{mount}/db#port")]).await;
    run.expect_code(0);
    assert_eq!(run.stdout, "5432");
}

#[tokio::test]
async fn get_raw_prints_the_mapping_as_stored() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    let data = json!({"a": "1", "b": {"nested": true}});
    admin.kv2_put(&mount, "raw", data.clone()).await;

    let run = Cli::with_token(&server, server.root_token())
        .run(&["get", &format!("{mount}/raw"), "--format", "raw"])
        .await;
    run.expect_code(0);
    assert!(!run.stdout.contains('\n'), "{run:?}");
    assert_eq!(serde_json::from_str::<Value>(&run.stdout).ok(), Some(data));
}

#[tokio::test]
async fn get_env_output_reads_back_through_a_shell() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    let nasty = "it's $HOME `id` \"q\" \\ ;\nsecond line";
    admin
        .kv2_put(
            &mount,
            "env",
            json!({"NASTY": nasty, "PORT": 5432, "_plain": "x"}),
        )
        .await;

    let run = Cli::with_token(&server, server.root_token())
        .run(&["get", &format!("{mount}/env"), "--format", "env"])
        .await;
    run.expect_code(0);
    assert!(run.stdout.starts_with("NASTY='"), "{run:?}");

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("vars.sh");
    std::fs::write(&file, &run.stdout).expect("write the env output");
    let shell = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"set -eu; . "$1"; printf '%s|%s|%s' "$NASTY" "$PORT" "$_plain""#)
        .arg("sh")
        .arg(&file)
        .env_clear()
        .output()
        .expect("run /bin/sh");
    assert!(shell.status.success(), "{shell:?}");
    assert_eq!(
        String::from_utf8_lossy(&shell.stdout),
        format!("{nasty}|5432|x")
    );
}

#[tokio::test]
async fn get_env_refuses_a_key_that_is_not_a_variable_name() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    let value = unique("value");
    admin
        .kv2_put(&mount, "dash", json!({"db-pass": value, "OK": "fine"}))
        .await;

    let run = Cli::with_token(&server, server.root_token())
        .run(&["get", &format!("{mount}/dash"), "--format", "env"])
        .await;
    run.expect_error(3, "`db-pass`").expect_absent(&value);
}

#[tokio::test]
async fn get_version_reads_an_older_version_and_conflicts_with_a_path_version() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    admin.kv2_put(&mount, "v", json!({"n": "one"})).await;
    admin.kv2_put(&mount, "v", json!({"n": "two"})).await;
    let cli = Cli::with_token(&server, server.root_token());

    let run = cli.run(&["get", &format!("{mount}/v#n")]).await;
    assert_eq!(run.expect_code(0).stdout, "two");
    let run = cli
        .run(&["get", &format!("{mount}/v#n"), "--secret-version", "1"])
        .await;
    assert_eq!(run.expect_code(0).stdout, "one");
    let run = cli.run(&["get", &format!("{mount}/v?version=1#n")]).await;
    assert_eq!(run.expect_code(0).stdout, "one");

    let run = cli
        .run(&[
            "get",
            &format!("{mount}/v?version=1"),
            "--secret-version",
            "2",
        ])
        .await;
    run.expect_code(2);
    assert!(run.stderr.contains("--secret-version"), "{run:?}");
    assert_eq!(run.stdout, "");
}

#[tokio::test]
async fn get_takes_the_vault_cli_single_dash_flags_and_hints_at_version() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    admin.kv2_put(&mount, "v", json!({"n": "one"})).await;
    admin.kv2_put(&mount, "v", json!({"n": "two"})).await;
    let cli = Cli::with_token(&server, server.root_token());
    let path = format!("{mount}/v");

    let run = cli.run(&["get", "-version=1", "-field=n", &path]).await;
    assert_eq!(run.expect_code(0).stdout, "one");
    let run = cli
        .run(&["get", "-field", "n", "-format", "json", &path])
        .await;
    assert_eq!(run.expect_code(0).stdout.trim_end(), "\"two\"");
    let run = cli.run(&["get", "--field", "n", &path]).await;
    assert_eq!(run.expect_code(0).stdout, "two");
    // The field given twice is a usage error naming the flag.
    let run = cli.run(&["get", "-field=n", &format!("{path}#n")]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("--field"), "{run:?}");

    // `--version` after `get` names the flag that reads a secret's version.
    let run = cli.run(&["get", &path, "--version", "1"]).await;
    run.expect_code(2);
    assert!(
        run.stderr.contains("--secret-version 1") && run.stderr.contains("?version=1"),
        "{run:?}"
    );
    assert_eq!(run.stdout, "");
}

#[tokio::test]
async fn get_reads_kv_v1_too() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = unique("cli-kv1");
    admin.mount_kv(&mount, 1).await;
    admin
        .kv1_put(&mount, "app", json!({"user": "v1-user"}))
        .await;

    let run = Cli::with_token(&server, server.root_token())
        .run(&["get", &format!("{mount}/app#user")])
        .await;
    assert_eq!(run.expect_code(0).stdout, "v1-user");
}

// ----- exec -----------------------------------------------------------------

#[tokio::test]
async fn exec_gives_the_command_its_secrets_and_never_prints_them() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    let password = unique("db-password");
    let user = unique("db-user");
    admin
        .kv2_put(&mount, "db", json!({"password": password, "user": user}))
        .await;

    // Most verbose logging: still no secret on the tool's own output.
    let run = Cli::with_token(&server, server.root_token())
        .run(&[
            "-vvv",
            "exec",
            "--secret",
            &format!("DB_PASS={mount}/db#password"),
            "--secret",
            &format!("DB_USER={mount}/db#user"),
            "--",
            "/bin/sh",
            "-c",
            &format!(
                r#"test "$DB_PASS" = '{password}' && test "$DB_USER" = '{user}' && echo child-ran"#
            ),
        ])
        .await;
    run.expect_code(0);
    assert_eq!(run.stdout, "child-ran\n", "{run:?}");
    // The value is in the child's argv (for the comparison), but the tool
    // must not echo it or the variables anywhere.
    run.expect_absent(&password).expect_absent(&user);
    assert!(
        run.stderr.contains("DB_PASS"),
        "the -v log names variables: {run:?}"
    );
}

#[tokio::test]
async fn exec_keeps_the_vault_credentials_from_the_command_unless_asked() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    admin.kv2_put(&mount, "db", json!({"password": "p"})).await;
    let secret = format!("DB_PASS={mount}/db#password");
    let probe =
        r#"if [ -n "${VAULT_TOKEN+set}" ]; then echo token-visible; else echo token-hidden; fi"#;

    let run = Cli::with_token(&server, server.root_token())
        .run(&["exec", "--secret", &secret, "--", "/bin/sh", "-c", probe])
        .await;
    assert_eq!(run.expect_code(0).stdout, "token-hidden\n", "{run:?}");

    let run = Cli::with_token(&server, server.root_token())
        .run(&[
            "exec",
            "--pass-credentials",
            "--secret",
            &secret,
            "--",
            "/bin/sh",
            "-c",
            probe,
        ])
        .await;
    assert_eq!(run.expect_code(0).stdout, "token-visible\n", "{run:?}");
}

#[tokio::test]
async fn exec_secret_map_sets_a_variable_per_key_with_the_prefix() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    admin
        .kv2_put(&mount, "app", json!({"user": "u1", "port": 5432}))
        .await;

    let run = Cli::with_token(&server, server.root_token())
        .run(&[
            "exec",
            "--secret-map",
            &format!("{mount}/app=APP_"),
            "--",
            "/bin/sh",
            "-c",
            r#"printf '%s:%s' "$APP_user" "$APP_port""#,
        ])
        .await;
    assert_eq!(run.expect_code(0).stdout, "u1:5432");
}

#[tokio::test]
async fn exec_secret_map_with_a_bad_key_names_it_and_runs_nothing() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    let value = unique("value");
    admin
        .kv2_put(&mount, "bad", json!({"good": "x", "bad key": value}))
        .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("ran");

    let run = Cli::with_token(&server, server.root_token())
        .run(&[
            "exec",
            "--secret-map",
            &format!("{mount}/bad"),
            "--",
            "/bin/sh",
            "-c",
            r#": > "$1""#,
            "sh",
            &marker.display().to_string(),
        ])
        .await;
    run.expect_error(3, "`bad key`").expect_absent(&value);
    assert!(!marker.exists(), "the command ran");
}

#[tokio::test]
async fn exec_passes_the_exit_code_and_a_killing_signal_through() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    admin.kv2_put(&mount, "x", json!({"k": "v"})).await;
    let cli = Cli::with_token(&server, server.root_token());
    let secret = format!("K={mount}/x#k");

    for (script, code) in [
        ("exit 7", 7),
        ("exit 0", 0),
        ("exit 255", 255),
        // Killed by SIGTERM (15): 128 + 15.
        ("kill -TERM $$", 143),
    ] {
        let run = cli
            .run(&["exec", "--secret", &secret, "--", "/bin/sh", "-c", script])
            .await;
        run.expect_code(code);
        assert_eq!(run.stderr, "", "{run:?}");
    }
}

#[tokio::test]
async fn exec_does_not_start_the_command_when_a_secret_is_missing() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    admin.kv2_put(&mount, "there", json!({"k": "v"})).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("ran");

    let run = Cli::with_token(&server, server.root_token())
        .run(&[
            "exec",
            "--secret",
            &format!("A={mount}/there#k"),
            "--secret",
            &format!("B={mount}/not-there#k"),
            "--",
            "/bin/sh",
            "-c",
            r#": > "$1""#,
            "sh",
            &marker.display().to_string(),
        ])
        .await;
    run.expect_error(5, "not-there");
    assert!(!marker.exists(), "the command ran");
}

#[tokio::test]
async fn exec_reports_a_command_that_does_not_exist() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    admin.kv2_put(&mount, "x", json!({"k": "v"})).await;

    // PATH is an empty directory: nothing is found by name.
    let run = Cli::with_token(&server, server.root_token())
        .run(&[
            "exec",
            "--secret",
            &format!("K={mount}/x#k"),
            "--",
            "no-such-command",
        ])
        .await;
    run.expect_error(127, "no-such-command");
}

// ----- doctor ---------------------------------------------------------------

#[tokio::test]
async fn doctor_passes_a_healthy_approle_setup_and_names_method_mount_and_kv_version() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    let value = unique("value");
    admin
        .kv2_put(&mount, "app", json!({"password": value}))
        .await;
    let policy = read_policy(&admin, "cli-pol", &format!("{mount}/data/app")).await;
    let credentials = approle_credentials(&admin, "cli-approle", "reader", &[&policy]).await;

    let run = Cli::new(&server)
        .set(
            "PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS",
            credentials.to_string(),
        )
        .run(&["doctor", &format!("{mount}/app")])
        .await;
    run.expect_code(0);
    assert!(run.check_line("address").starts_with("[ ok ]"), "{run:?}");
    assert!(run.check_line("address").contains("VAULT_ADDR"), "{run:?}");
    assert!(run.check_line("seal").starts_with("[ ok ]"), "{run:?}");
    let credentials_line = run.check_line("credentials");
    assert!(
        credentials_line.contains("VAULT_CREDENTIALS") && credentials_line.contains("approle"),
        "{run:?}"
    );
    assert!(run.check_line("login").contains("`approle`"), "{run:?}");
    assert!(
        run.check_line("token lifetime").starts_with("[ ok ]"),
        "{run:?}"
    );
    let mount_line = run.check_line("mount");
    assert!(
        mount_line.starts_with("[ ok ]")
            && mount_line.contains(&format!("`{mount}/`"))
            && mount_line.contains("KV v2"),
        "{run:?}"
    );
    assert!(
        run.check_line("capabilities").starts_with("[ ok ]"),
        "{run:?}"
    );
    assert!(run.check_line("read").starts_with("[ ok ]"), "{run:?}");
    assert!(!run.stdout.contains("[FAIL]"), "{run:?}");
    assert!(
        run.stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("verdict: OK")),
        "{run:?}"
    );
    run.expect_absent(&value)
        .expect_absent(credentials["VAULT_ROLE_ID"].as_str().unwrap_or("role id"))
        .expect_absent(
            credentials["VAULT_SECRET_ID"]
                .as_str()
                .unwrap_or("secret id"),
        );
}

#[tokio::test]
async fn doctor_fails_the_login_with_a_wrong_token_and_skips_what_needs_it() {
    let server = harness::server().await;
    let run = Cli::with_token(&server, "not-a-real-token")
        .run(&["doctor", "secret/anything"])
        .await;
    run.expect_code(1);
    assert!(run.check_line("server").starts_with("[ ok ]"), "{run:?}");
    assert!(
        run.check_line("credentials").starts_with("[ ok ]"),
        "{run:?}"
    );
    assert!(run.check_line("login").starts_with("[FAIL]"), "{run:?}");
    for later in ["token lifetime", "mount", "capabilities", "read"] {
        assert!(
            run.check_line(later).starts_with("[skip]"),
            "{later}: {run:?}"
        );
    }
    assert!(
        run.stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("verdict: FAILED")),
        "{run:?}"
    );
    run.expect_absent("not-a-real-token");
}

#[tokio::test]
async fn doctor_fails_the_capabilities_check_naming_the_policy_path() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    admin.kv2_put(&mount, "locked", json!({"k": "v"})).await;
    let token = token_reading_only(&admin, &mount, "other").await;

    let run = Cli::with_token(&server, &token)
        .run(&["doctor", &format!("{mount}/locked")])
        .await;
    run.expect_code(1);
    assert!(run.check_line("login").starts_with("[ ok ]"), "{run:?}");
    let caps = run.check_line("capabilities");
    assert!(
        caps.starts_with("[FAIL]") && caps.contains(&format!("`{mount}/data/locked`")),
        "{run:?}"
    );
    let stanza = format!("path \"{mount}/data/locked\" {{ capabilities = [\"read\"] }}");
    assert!(run.stdout.contains(&stanza), "{run:?}");
    assert!(run.check_line("read").starts_with("[skip]"), "{run:?}");
    run.expect_absent(&token);
}

#[tokio::test]
async fn doctor_without_an_address_fails_first_and_skips_the_rest() {
    let run = Cli::bare()
        .set("VAULT_TOKEN", "whatever")
        .run(&["doctor"])
        .await;
    run.expect_code(1);
    let first = run.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("[FAIL] address:"), "{run:?}");
    assert!(run.stdout.contains("hint: export VAULT_ADDR="), "{run:?}");
    for later in ["server", "TLS", "seal", "credentials", "login"] {
        assert!(
            run.check_line(later).starts_with("[skip]"),
            "{later}: {run:?}"
        );
    }
}

// ----- exit codes -----------------------------------------------------------

#[tokio::test]
async fn exit_code_2_for_usage_errors() {
    let cli = Cli::bare();
    for args in [
        &["get"][..],
        &["no-such-subcommand"],
        &["get", "secret/app", "--format", "yaml"],
        &["get", "secret/app", "--secret-version", "0"],
        &[
            "exec",
            "--secret",
            "BAD-NAME=secret/app#k",
            "--",
            "/bin/true",
        ],
        &["exec", "--secret", "K=secret/app#k"],
        &["exec", "--", "/bin/true"],
    ] {
        let run = cli.run(args).await;
        run.expect_code(2);
        assert_eq!(run.stdout, "", "{run:?}");
        assert!(run.stderr.contains("error:"), "{run:?}");
    }
}

#[tokio::test]
async fn help_lists_the_exit_codes_once_and_every_declared_variable() {
    let run = Cli::bare().run(&["--help"]).await;
    run.expect_code(0);
    // Usage and subcommands first, the variables after them.
    let at = |text: &str| {
        run.stdout
            .find(text)
            .unwrap_or_else(|| panic!("{text:?} missing: {run:?}"))
    };
    assert!(at("Usage:") < at("Commands:"), "{run:?}");
    assert!(at("Commands:") < at("Environment variables:"), "{run:?}");
    assert!(at("Environment variables:") < at("VAULT_ADDR "), "{run:?}");
    for method in ["AppRole", "Kubernetes", "JWT", "certificate"] {
        assert!(
            at("Usage:") > at(method),
            "{method} missing from the about line"
        );
    }
    for line in ["Exit codes:", "  3 ", "  4 ", "  5 ", "  6 ", "  7 "] {
        assert!(run.stdout.contains(line), "{line:?} missing: {run:?}");
    }
    for variable in vault_secret::variables::ALL {
        let listed = run
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{} ", variable.name)));
        assert!(listed, "{} missing from --help: {run:?}", variable.name);
    }
    for sub in ["get", "exec", "doctor"] {
        let run = Cli::bare().run(&[sub, "--help"]).await;
        run.expect_code(0);
        assert!(!run.stdout.contains("  4    authentication"), "{run:?}");
        assert!(run.stdout.contains("vault-secret --help"), "{run:?}");
    }
}

#[tokio::test]
async fn exec_without_the_separator_says_to_put_it_before_the_command() {
    let run = Cli::bare()
        .run(&["exec", "--secret", "A=secret/app#a", "env"])
        .await;
    run.expect_code(2);
    assert!(
        run.stderr.contains("put `--` before the command"),
        "{run:?}"
    );
}

#[tokio::test]
async fn doctor_names_vault_agent_addr_when_it_gives_the_address() {
    let server = harness::server().await;
    let run = Cli::with_token(&server, server.root_token())
        .set("VAULT_AGENT_ADDR", server.addr())
        .set("VAULT_ADDR", "http://127.0.0.1:1")
        .run(&["doctor"])
        .await;
    let line = run.check_line("address");
    assert!(line.contains("(from VAULT_AGENT_ADDR)"), "{run:?}");
    assert!(run.check_line("server").starts_with("[ ok ]"), "{run:?}");
}

#[tokio::test]
async fn a_field_typo_lists_the_fields_there_are() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    let password = unique("pw");
    admin
        .kv2_put(&mount, "db", json!({"password": password, "user": "u"}))
        .await;
    let run = Cli::with_token(&server, server.root_token())
        .run(&["get", &format!("{mount}/db#pasword")])
        .await;
    run.expect_error(5, "fields: password, user")
        .expect_absent(&password);
    assert!(
        run.hint().is_some_and(|h| h.contains("password, user")),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_mount_typo_under_a_least_privilege_token_names_the_guessed_mount() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    admin.kv2_put(&mount, "app", json!({"k": "v"})).await;
    let token = token_reading_only(&admin, &mount, "app").await;
    let typo = format!("{mount}x");
    let run = Cli::with_token(&server, &token)
        .run(&["get", &format!("{typo}/app")])
        .await;
    run.expect_error(6, &format!("the mount `{typo}/` was guessed"))
        .expect_absent(&token);
    assert!(
        run.hint()
            .is_some_and(|h| h.contains(&format!("`{typo}/`")) && h.contains("misspelled")),
        "{run:?}"
    );
}

#[tokio::test]
async fn https_to_a_plain_http_port_hints_at_http_not_a_ca() {
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let run = Cli::bare()
        .set("VAULT_ADDR", format!("https://127.0.0.1:{port}"))
        .set("VAULT_TOKEN", "whatever")
        .set("VAULT_MAX_RETRIES", "0")
        .run(&["get", "secret/app"])
        .await;
    serve.abort();
    run.expect_error(7, "does not speak TLS");
    let hint = run.hint().unwrap_or_default();
    assert!(hint.contains("use http://"), "{run:?}");
    assert!(!hint.contains("VAULT_CACERT"), "{run:?}");
}

#[tokio::test]
async fn exit_code_3_without_an_address() {
    let run = Cli::bare()
        .set("VAULT_TOKEN", "whatever")
        .run(&["get", "secret/app"])
        .await;
    run.expect_error(3, "VAULT_ADDR");
    assert!(
        run.hint().is_some_and(|h| h.contains("export VAULT_ADDR=")),
        "{run:?}"
    );
}

#[tokio::test]
async fn exit_code_3_without_credentials_with_a_hint() {
    let server = harness::server().await;
    let run = Cli::new(&server).run(&["get", "secret/app"]).await;
    run.expect_error(3, "no usable Vault credentials");
    assert!(
        run.hint()
            .is_some_and(|h| h.contains("VAULT_TOKEN") && h.contains("VAULT_CREDENTIALS")),
        "{run:?}"
    );
}

#[tokio::test]
async fn exit_code_4_for_a_rejected_token() {
    let server = harness::server().await;
    let run = Cli::with_token(&server, "rejected-token")
        .run(&["get", "secret/app"])
        .await;
    run.expect_error(4, "authentication failed")
        .expect_absent("rejected-token");
}

#[tokio::test]
async fn exit_code_5_for_a_missing_secret_field_or_version() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    admin.kv2_put(&mount, "app", json!({"k": "v"})).await;
    let cli = Cli::with_token(&server, server.root_token());

    cli.run(&["get", &format!("{mount}/nothing")])
        .await
        .expect_error(5, "not found");
    cli.run(&["get", &format!("{mount}/app#nope")])
        .await
        .expect_error(5, "`nope`");
    cli.run(&["get", &format!("{mount}/app"), "--secret-version", "9"])
        .await
        .expect_error(5, "not found");
}

#[tokio::test]
async fn exit_code_6_for_a_denied_read_with_the_policy_in_the_hint() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = kv2(&admin).await;
    let value = unique("value");
    admin.kv2_put(&mount, "locked", json!({"k": value})).await;
    let token = token_reading_only(&admin, &mount, "other").await;

    let run = Cli::with_token(&server, &token)
        .run(&["get", &format!("{mount}/locked")])
        .await;
    run.expect_error(6, &format!("{mount}/data/locked"))
        .expect_absent(&value)
        .expect_absent(&token);
    let stanza = format!("path \"{mount}/data/locked\" {{ capabilities = [\"read\"] }}");
    assert!(run.hint().is_some_and(|h| h.contains(&stanza)), "{run:?}");
}

#[tokio::test]
async fn exit_code_7_when_the_server_is_unreachable() {
    // Port 1 on loopback refuses connections at once.
    let run = Cli::bare()
        .set("VAULT_ADDR", "http://127.0.0.1:1")
        .set("VAULT_TOKEN", "whatever")
        .run(&["get", "secret/app"])
        .await;
    run.expect_error(7, "127.0.0.1:1");
}

/// A read answered 403 `{"errors": ["permission denied"]}`: the server is
/// asked whether the token is good. Good: forbidden (exit 6); not: an
/// authentication failure (exit 4). Against a mock, which a real server's
/// wording cannot vary.
#[tokio::test]
async fn a_403_is_forbidden_or_an_auth_failure_as_lookup_self_says() {
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    for (lookup, code, phrase) in [
        (200, 6, "access forbidden"),
        (403, 4, "authentication failed"),
    ] {
        let server = MockServer::start().await;
        Mock::given(path("/v1/sys/internal/ui/mounts/mocked/app"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"data": {"path": "mocked/", "type": "kv", "options": {"version": "2"}}}),
            ))
            .mount(&server)
            .await;
        Mock::given(path("/v1/mocked/data/app"))
            .respond_with(
                ResponseTemplate::new(403).set_body_json(json!({"errors": ["permission denied"]})),
            )
            .mount(&server)
            .await;
        let answer = match lookup {
            200 => ResponseTemplate::new(200).set_body_json(json!({"data": {"ttl": 0}})),
            other => {
                ResponseTemplate::new(other).set_body_json(json!({"errors": ["permission denied"]}))
            }
        };
        Mock::given(path("/v1/auth/token/lookup-self"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let run = Cli::bare()
            .set("VAULT_ADDR", server.uri())
            .set("VAULT_TOKEN", "s.mocked-token-hunter2")
            .run(&["get", "mocked/app"])
            .await;
        run.expect_error(code, phrase).expect_absent("hunter2");
    }
}
