//! `vault-secret exec` as a supervisor, and what its command gets: real
//! OpenBao servers, the real CLI binary, real child processes.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use vault_secret::KvVersion;
use vault_secret::testing::{DevVault, TestCredentials, Token, unique};

use crate::cli_binary;

/// A shell for the children: absolute, as `PATH` is ours to set.
const SH: &str = "/bin/sh";
/// What every run gets besides the server's variables.
const PATH: &str = "/usr/bin:/bin";

/// A KV v2 secret `{"value": value}` under a fresh mount; its path.
async fn kv_secret(vault: &DevVault, value: &str) -> String {
    let mount = vault.kv_mount(KvVersion::V2).await;
    let path = format!("{mount}/app");
    vault.kv_put(&path, json!({ "value": value })).await;
    path
}

/// The CLI with `vars` only (and `PATH`).
fn cli(vars: &[(String, String)], args: &[&str]) -> Command {
    let mut command = Command::new(cli_binary::binary());
    command
        .args(args)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// `exec` running in the background: its output line by line, as it comes.
struct Running {
    child: Child,
    stdout: mpsc::UnboundedReceiver<(Instant, String)>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Running {
    fn start(mut command: Command) -> Running {
        let mut child = command.spawn().expect("start vault-secret");
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let (tx, stdout) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let collected = stderr.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut all = collected
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                all.push_str(&line);
                all.push('\n');
            }
        });
        Running {
            child,
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The next stdout line, waiting at most `timeout`.
    async fn line(&mut self, timeout: Duration) -> Option<(Instant, String)> {
        tokio::time::timeout(timeout, self.stdout.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next stdout line, or a panic with stderr after `timeout`.
    async fn expect_line(&mut self, timeout: Duration) -> String {
        match self.line(timeout).await {
            Some((_, line)) => line,
            None => panic!("no output within {timeout:?}; stderr:\n{}", self.stderr()),
        }
    }

    /// Sends `signal` (`TERM`, `HUP`, ...) to `exec`.
    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("exec still running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// `exec`'s exit code (128+N when a signal ended it), within 20 s.
    async fn exit_code(&mut self) -> i32 {
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("exec did not exit; stderr:\n{}", self.stderr()))
            .expect("wait for exec");
        status.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
        })
    }
}

/// `start <pid> <value>` once, then waits forever: each start of the command shows.
const REPORTS_START: &str = r#"echo "start $$ $VALUE"; while :; do sleep 0.1; done"#;

fn start_line(line: &str) -> (String, String) {
    let mut parts = line.split_whitespace();
    assert_eq!(parts.next(), Some("start"), "{line}");
    (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    )
}

// ----- what the command gets ----------------------------------------------

/// The names of the variables `env` printed.
fn env_names(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name.to_owned()))
        .collect()
}

/// Each JSON key of a credentials mapping as a variable of its own name.
fn plain_vars(vault: &DevVault, credentials: &dyn TestCredentials) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = vault
        .env_vars_for(credentials)
        .into_iter()
        .filter(|(name, _)| name != "VAULT_CREDENTIALS")
        .collect();
    if let Value::Object(map) = credentials.credentials_json() {
        for (k, v) in map {
            vars.push((k, v.as_str().unwrap_or_default().to_owned()));
        }
    }
    vars
}

#[tokio::test]
async fn exec_gives_the_command_no_credential_of_any_method_unless_asked() {
    let vault = DevVault::shared().await.unwrap();
    let value = unique("child-value");
    let path = kv_secret(&vault, &value).await;
    let (mount, _) = path.split_once('/').unwrap();
    let policy = vault
        .policy(
            &unique("exec-env"),
            &format!(r#"path "{mount}/data/*" {{ capabilities = ["read"] }}"#),
        )
        .await;
    let approle = vault.approle(&[&policy]).await;
    let kube = vault.kubernetes("exec-env", &[&policy]).await;
    let jwt = vault.jwt("exec-env", &[&policy]).await;
    let jwt_vars = {
        let mut vars = plain_vars(&vault, &jwt);
        vars.push(("VAULT_JWT".to_owned(), jwt.mint()));
        vars
    };
    let root: Token = vault.root_token();
    let credential_names = vault_secret::variables::credentials("VAULT_CREDENTIALS");
    let secret = format!("GIVEN={path}#value");
    // (method, its variables, the credentials --pass-credentials keeps)
    type Method<'a> = (&'a str, Vec<(String, String)>, &'a [&'a str]);
    let methods: Vec<Method<'_>> = vec![
        ("token", plain_vars(&vault, &root), &["VAULT_TOKEN"]),
        (
            "approle",
            plain_vars(&vault, &approle),
            &["VAULT_ROLE_ID", "VAULT_SECRET_ID"],
        ),
        (
            "kubernetes",
            plain_vars(&vault, &kube),
            &["VAULT_KUBE_TOKEN_FILE"],
        ),
        ("jwt", jwt_vars, &["VAULT_JWT"]),
        (
            "the credentials secret",
            vault.env_vars_for(&approle),
            &["VAULT_CREDENTIALS"],
        ),
    ];
    for (method, vars, held) in methods {
        let out = cli(&vars, &["exec", "--secret", &secret, "--", "/usr/bin/env"])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{method}: {out:?}");
        assert!(
            stdout.lines().any(|l| l == format!("GIVEN={value}")),
            "{method}: {stdout}"
        );
        let names = env_names(&stdout);
        for name in &names {
            assert!(
                !credential_names.contains(name),
                "{method}: the command got `{name}`; its environment: {names:?}"
            );
        }
        // Settings are not credentials: they stay.
        assert!(
            names.iter().any(|n| n == "VAULT_ADDR"),
            "{method}: {names:?}"
        );

        let out = cli(
            &vars,
            &[
                "exec",
                "--pass-credentials",
                "--secret",
                &secret,
                "--",
                "/usr/bin/env",
            ],
        )
        .output()
        .await
        .unwrap();
        let names = env_names(&String::from_utf8_lossy(&out.stdout));
        for name in held {
            assert!(
                names.iter().any(|n| n == name),
                "{method}: --pass-credentials lost `{name}`: {names:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_secret_map_cannot_set_path_and_replaces_no_parent_variable_without_override() {
    let vault = DevVault::shared().await.unwrap();
    let mount = vault.kv_mount(KvVersion::V2).await;
    let evil = format!("{mount}/evil");
    vault
        .kv_put(&evil, json!({ "PATH": "/tmp/evil:/usr/bin", "OK": "fine" }))
        .await;
    let plain = format!("{mount}/plain");
    vault
        .kv_put(&plain, json!({ "GREETING": "from-the-secret" }))
        .await;
    let vars = vault.env_vars_for(&vault.root_token());
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let marker_arg = marker.display().to_string();

    let out = cli(
        &vars,
        &[
            "exec",
            "--secret-map",
            &evil,
            "--",
            SH,
            "-c",
            r#": > "$1""#,
            "sh",
            &marker_arg,
        ],
    )
    .output()
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("`{evil}`")) && stderr.contains("`PATH`"),
        "{stderr}"
    );
    assert!(stderr.contains("--secret PATH="), "{stderr}");
    assert!(!stderr.contains("/tmp/evil"), "{stderr}");
    assert!(!marker.exists(), "the command ran");

    // `get --format env` (for `eval`) refuses it too.
    let out = cli(&vars, &["get", "--format", "env", &evil])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("`PATH`"));

    // Set on purpose, it is the user's choice.
    let out = cli(
        &vars,
        &[
            "exec",
            "--secret",
            &format!("PATH={evil}#PATH"),
            "--",
            SH,
            "-c",
            r#"printf '%s' "$PATH""#,
        ],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/tmp/evil:/usr/bin");

    // A variable the parent has is not replaced without --override.
    let mut with_greeting = vars.clone();
    with_greeting.push(("GREETING".into(), "from-the-parent".into()));
    let probe = [SH, "-c", r#"printf '%s' "$GREETING""#];
    let mut args = vec!["exec", "--secret-map", &plain, "--"];
    args.extend(probe);
    let out = cli(&with_greeting, &args).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("`GREETING`") && stderr.contains("--override"),
        "{stderr}"
    );
    assert!(!stderr.contains("from-the-"), "{stderr}");
    let mut args = vec!["exec", "--override", "--secret-map", &plain, "--"];
    args.extend(probe);
    let out = cli(&with_greeting, &args).output().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-the-secret");
}

// ----- supervision ----------------------------------------------------------

#[tokio::test]
async fn watch_restarts_the_command_with_the_new_value_within_3_s() {
    let vault = DevVault::shared().await.unwrap();
    let (first, second) = (unique("first"), unique("second"));
    let path = kv_secret(&vault, &first).await;
    // A token that may read the value but not the metadata: the watch
    // falls back to reading the value.
    let (mount, _) = path.split_once('/').unwrap();
    let policy = vault
        .policy(
            &unique("exec-watch"),
            &format!(r#"path "{mount}/data/*" {{ capabilities = ["read"] }}"#),
        )
        .await;
    let vars = vault.env_vars_for(&vault.token(&[&policy]).await);
    let secret = format!("VALUE={path}#value");
    let mut exec = Running::start(cli(
        &vars,
        &[
            "exec",
            "--watch",
            "--watch-interval",
            "1s",
            "--secret",
            &secret,
            "--",
            SH,
            "-c",
            REPORTS_START,
        ],
    ));
    let (first_pid, value) = start_line(&exec.expect_line(Duration::from_secs(20)).await);
    assert_eq!(value, first);

    vault.kv_put(&path, json!({ "value": second })).await;
    let changed = Instant::now();
    let (second_pid, value) = start_line(&exec.expect_line(Duration::from_secs(3)).await);
    assert!(changed.elapsed() < Duration::from_secs(3));
    assert_eq!(value, second);
    assert_ne!(first_pid, second_pid, "a restart is a new process");

    // No change, no restart.
    assert!(exec.line(Duration::from_millis(2500)).await.is_none());
    exec.signal("TERM");
    assert_eq!(exec.exit_code().await, 143);
    assert!(!exec.stderr().contains(&second), "{}", exec.stderr());
}

#[tokio::test]
async fn watch_checks_kv2_versions_through_the_metadata_one_request_per_secret_per_interval() {
    let vault = DevVault::shared().await.unwrap();
    let audit = vault.audit_requests().await;
    let mount = vault.kv_mount(KvVersion::V2).await;
    let (a, b) = (format!("{mount}/a"), format!("{mount}/b"));
    vault
        .kv_put(&a, json!({ "value": "a1", "user": "u" }))
        .await;
    vault.kv_put(&b, json!({ "value": "b1" })).await;
    let vars = vault.env_vars_for(&vault.root_token());
    let script = r#"echo "start $$ $VALUE-$USER-$OTHER"; while :; do sleep 0.1; done"#;
    let mut exec = Running::start(cli(
        &vars,
        &[
            "exec",
            "--watch",
            "--watch-interval",
            "1s",
            "--secret",
            &format!("VALUE={a}#value"),
            "--secret",
            &format!("USER={a}#user"),
            "--secret",
            &format!("OTHER={b}#value"),
            "--",
            SH,
            "-c",
            script,
        ],
    ));
    let (pid, values) = start_line(&exec.expect_line(Duration::from_secs(20)).await);
    assert_eq!(values, "a1-u-b1");
    let mark = audit.mark().await;
    let watched = Duration::from_millis(4500);
    assert!(
        exec.line(watched).await.is_none(),
        "restarted without a change"
    );
    let requests: Vec<String> = audit
        .requests_since(&mark)
        .await
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.starts_with(&format!("{mount}/")))
        .collect();
    let metadata = requests.iter().filter(|p| p.contains("/metadata/")).count();
    let data = requests.iter().filter(|p| p.contains("/data/")).count();
    // Two secrets (three variables), four or five intervals: one metadata
    // request per secret per interval, and no value read without a change.
    assert!((6..=10).contains(&metadata), "{requests:?}");
    assert_eq!(data, 0, "{requests:?}");

    vault.kv_put(&b, json!({ "value": "b2" })).await;
    let (new_pid, values) = start_line(&exec.expect_line(Duration::from_secs(3)).await);
    assert_eq!(values, "a1-u-b2");
    assert_ne!(pid, new_pid);
    exec.signal("TERM");
    assert_eq!(exec.exit_code().await, 143);
}

#[tokio::test]
async fn on_change_signal_hup_keeps_the_command_and_its_pid() {
    let vault = DevVault::shared().await.unwrap();
    let path = kv_secret(&vault, "first").await;
    let vars = vault.env_vars_for(&vault.root_token());
    let secret = format!("VALUE={path}#value");
    let script = r#"trap 'echo "hup $$"' HUP; echo "start $$ $VALUE"; while :; do sleep 0.1; done"#;
    let mut exec = Running::start(cli(
        &vars,
        &[
            "exec",
            "--watch",
            "--watch-interval",
            "1s",
            "--on-change",
            "signal:HUP",
            "--secret",
            &secret,
            "--",
            SH,
            "-c",
            script,
        ],
    ));
    let (pid, _) = start_line(&exec.expect_line(Duration::from_secs(20)).await);
    vault.kv_put(&path, json!({ "value": "second" })).await;
    assert_eq!(
        exec.expect_line(Duration::from_secs(3)).await,
        format!("hup {pid}")
    );
    // A SIGHUP to exec reaches the command too, and does not end exec.
    exec.signal("HUP");
    assert_eq!(
        exec.expect_line(Duration::from_secs(3)).await,
        format!("hup {pid}")
    );
    exec.signal("TERM");
    assert_eq!(exec.exit_code().await, 143);
}

#[tokio::test]
async fn sigterm_to_exec_sends_the_stop_signal_and_exits_with_the_commands_code() {
    let vault = DevVault::shared().await.unwrap();
    let path = kv_secret(&vault, "v").await;
    let vars = vault.env_vars_for(&vault.root_token());
    let secret = format!("VALUE={path}#value");

    // Killed by the default stop signal, SIGTERM: 128 + 15.
    let mut exec = Running::start(cli(
        &vars,
        &[
            "exec",
            "--mask",
            "--secret",
            &secret,
            "--",
            SH,
            "-c",
            "echo ready; exec sleep 30",
        ],
    ));
    assert_eq!(exec.expect_line(Duration::from_secs(20)).await, "ready");
    exec.signal("TERM");
    assert_eq!(exec.exit_code().await, 143);

    // The command gets the stop signal asked for (SIGINT here) and its own
    // exit code is exec's.
    let mut exec = Running::start(cli(
        &vars,
        &[
            "exec",
            "--watch",
            "--stop-signal",
            "INT",
            "--secret",
            &secret,
            "--",
            SH,
            "-c",
            r#"trap 'echo got-int; exit 5' INT; echo ready; while :; do sleep 0.1; done"#,
        ],
    ));
    assert_eq!(exec.expect_line(Duration::from_secs(20)).await, "ready");
    exec.signal("TERM");
    assert_eq!(exec.expect_line(Duration::from_secs(5)).await, "got-int");
    assert_eq!(exec.exit_code().await, 5);

    // A command that ignores the stop signal is killed after --kill-timeout.
    let mut exec = Running::start(cli(
        &vars,
        &[
            "exec",
            "--mask",
            "--kill-timeout",
            "500ms",
            "--secret",
            &secret,
            "--",
            SH,
            "-c",
            r#"trap '' TERM; echo ready; while :; do sleep 0.1; done"#,
        ],
    ));
    assert_eq!(exec.expect_line(Duration::from_secs(20)).await, "ready");
    let sent = Instant::now();
    exec.signal("TERM");
    assert_eq!(exec.exit_code().await, 137);
    assert!(sent.elapsed() >= Duration::from_millis(500));
}

/// A command that says `got-int` on each SIGINT it gets (perl counts every
/// delivery; a shell's trap may merge two close ones).
const COUNTS_SIGINT: &str =
    r#"$| = 1; $SIG{INT} = sub { print "got-int\n" }; print "ready\n"; sleep 1 while 1"#;

/// Runs `argv` on a pseudo-terminal (as its session's foreground job):
/// waits for `ready`, types Ctrl-C once, waits 1.5 s, sends SIGTERM to the
/// process, and prints all the terminal showed, then `exit <code>`.
const ON_A_TERMINAL: &str = r#"
import os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
def read_for(seconds, until=None):
    global out
    end = time.time() + seconds
    while time.time() < end:
        if select.select([fd], [], [], 0.05)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            out += chunk
            if until and until in out:
                return
read_for(20, b"ready")
os.write(fd, b"\x03")
read_for(1.5)
os.kill(pid, signal.SIGTERM)
read_for(10)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print("exit", os.waitstatus_to_exitcode(status))
"#;

#[tokio::test]
async fn ctrl_c_in_a_terminal_reaches_the_command_once_and_a_sigint_to_exec_once() {
    let vault = DevVault::shared().await.unwrap();
    let path = kv_secret(&vault, "v").await;
    let vars = vault.env_vars_for(&vault.root_token());
    let secret = format!("VALUE={path}#value");
    let exec = [
        "exec",
        "--watch",
        "--secret",
        &secret,
        "--",
        "perl",
        "-e",
        COUNTS_SIGINT,
    ];

    // In a terminal's foreground, the terminal itself delivers Ctrl-C to
    // the command (it is in exec's process group): exec does not pass it
    // on a second time.
    let mut on_terminal = std::process::Command::new("python3");
    on_terminal
        .args(["-c", ON_A_TERMINAL, "/usr/bin/env", "-i"])
        .arg(format!("PATH={PATH}"))
        .args(vars.iter().map(|(k, v)| format!("{k}={v}")))
        .arg(cli_binary::binary())
        .args(exec);
    let shown = tokio::task::spawn_blocking(move || on_terminal.output())
        .await
        .unwrap()
        .expect("run python3 with a pseudo-terminal");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.matches("got-int").count(), 1, "{shown}");
    assert!(shown.contains("exit 143"), "{shown}");

    // Without a terminal, a SIGINT sent to exec is passed on, once.
    let mut running = Running::start(cli(&vars, &exec));
    assert_eq!(running.expect_line(Duration::from_secs(20)).await, "ready");
    running.signal("INT");
    assert_eq!(running.expect_line(Duration::from_secs(5)).await, "got-int");
    assert!(running.line(Duration::from_millis(500)).await.is_none());
    running.signal("TERM");
    assert_eq!(running.exit_code().await, 143);
}

#[tokio::test]
async fn mask_hides_the_value_its_base64_form_and_a_value_split_across_writes() {
    let vault = DevVault::shared().await.unwrap();
    let value = unique("masked-Value/+=");
    let path = kv_secret(&vault, &value).await;
    let vars = vault.env_vars_for(&vault.root_token());
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &value);
    let (head, tail) = value.split_at(value.len() / 2);
    let script = r#"printf '%s\n' "$VALUE"; printf 'b64 %s\n' "$2"; printf 'split %s' "$1"; sleep 0.01; printf '%s end\n' "$3"; printf 'err %s\n' "$VALUE" >&2; exit 3"#;
    let out = cli(
        &vars,
        &[
            "exec",
            "--mask",
            "--secret",
            &format!("VALUE={path}#value"),
            "--",
            SH,
            "-c",
            script,
            "sh",
            head,
            &b64,
            tail,
        ],
    )
    .output()
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        stdout, "<redacted>\nb64 <redacted>\nsplit <redacted> end\n",
        "{stderr}"
    );
    assert!(stderr.contains("err <redacted>"), "{stderr}");
    assert!(!stderr.contains(&value), "{stderr}");
}

#[tokio::test]
async fn mask_passes_100_mb_through_unchanged() {
    let vault = DevVault::shared().await.unwrap();
    let path = kv_secret(&vault, "not-in-the-output").await;
    let vars = vault.env_vars_for(&vault.root_token());
    let mut child = cli(
        &vars,
        &[
            "exec",
            "--mask",
            "--secret",
            &format!("VALUE={path}#value"),
            "--",
            SH,
            "-c",
            "yes 'a line of output, not a secret' | head -c 104857600",
        ],
    )
    .spawn()
    .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0usize;
    let mut first = Vec::new();
    loop {
        let n = stdout.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        if first.len() < 64 {
            first.extend_from_slice(&buf[..n.min(64)]);
        }
        total += n;
    }
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(total, 100 * 1024 * 1024);
    assert!(first.starts_with(b"a line of output, not a secret\na line"));
}

#[tokio::test]
async fn a_crash_looping_command_is_restarted_with_growing_delays() {
    let vault = DevVault::shared().await.unwrap();
    let path = kv_secret(&vault, "v").await;
    let vars = vault.env_vars_for(&vault.root_token());
    let mut exec = Running::start(cli(
        &vars,
        &[
            "exec",
            "--restart-on-exit",
            "--secret",
            &format!("VALUE={path}#value"),
            "--",
            SH,
            "-c",
            "echo started; exit 1",
        ],
    ));
    let mut starts = Vec::new();
    let until = Instant::now() + Duration::from_secs(20);
    while let Some((at, line)) = exec.line(until - Instant::now()).await {
        assert_eq!(line, "started");
        starts.push(at);
        if starts.len() == 5 {
            break;
        }
    }
    assert_eq!(starts.len(), 5, "{}", exec.stderr());
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    for pair in gaps.windows(2) {
        assert!(
            pair[1] > pair[0] + Duration::from_millis(200),
            "the delays do not grow: {gaps:?}"
        );
    }
    assert!(gaps[0] >= Duration::from_millis(400), "{gaps:?}");
    assert!(
        exec.stderr().contains("starting it again"),
        "{}",
        exec.stderr()
    );
    exec.signal("TERM");
    assert_eq!(exec.exit_code().await, 143);
}

#[tokio::test]
async fn the_command_survives_a_server_outage_and_watching_resumes() {
    let vault = DevVault::builder().persistent().start().await.unwrap();
    let (before, after) = (unique("before"), unique("after"));
    let path = kv_secret(&vault, &before).await;
    let vars = vault.env_vars_for(&vault.root_token());
    let mut exec = Running::start(cli(
        &vars,
        &[
            "exec",
            "--watch",
            "--watch-interval",
            "1s",
            "--secret",
            &format!("VALUE={path}#value"),
            "--",
            SH,
            "-c",
            REPORTS_START,
        ],
    ));
    let (pid, value) = start_line(&exec.expect_line(Duration::from_secs(20)).await);
    assert_eq!(value, before);

    vault.kill();
    // A few intervals without a server: the command runs on, unrestarted.
    assert!(exec.line(Duration::from_secs(4)).await.is_none());
    assert!(exec.child.try_wait().unwrap().is_none(), "exec ended");
    let stderr = exec.stderr();
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(
        stderr.contains(&path),
        "the warning names the path: {stderr}"
    );
    assert!(!stderr.contains(&before), "{stderr}");

    vault.restart().await;
    vault.unseal().await;
    vault.kv_put(&path, json!({ "value": after })).await;
    let (new_pid, value) = start_line(&exec.expect_line(Duration::from_secs(20)).await);
    assert_eq!(value, after);
    assert_ne!(new_pid, pid);
    assert!(
        exec.stderr().contains("watching resumes"),
        "{}",
        exec.stderr()
    );
    exec.signal("TERM");
    assert_eq!(exec.exit_code().await, 143);
}

#[tokio::test]
async fn supervision_flags_are_checked_and_a_command_that_cannot_start_is_126_or_127() {
    let vault = DevVault::shared().await.unwrap();
    let path = kv_secret(&vault, "v").await;
    let vars = vault.env_vars_for(&vault.root_token());
    let secret = format!("VALUE={path}#value");
    for (flags, named) in [
        (
            &["--watch", "--on-change", "signal:NOPE"][..],
            "--on-change",
        ),
        (&["--watch", "--watch-interval", "0"], "--watch-interval"),
        (&["--watch", "--watch-interval", "-5s"], "--watch-interval"),
        (&["--on-change", "restart"], "--on-change"),
        (&["--mask", "--stop-signal", "BOGUS"], "--stop-signal"),
    ] {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend(["--secret", &secret, "--", "/bin/true"]);
        let out = cli(&vars, &args).output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{flags:?}: {stderr}");
        assert!(stderr.contains(named), "{flags:?}: {stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("script");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    for (command, code) in [
        ("no-such-command".to_owned(), 127),
        (not_executable.display().to_string(), 126),
    ] {
        let out = cli(
            &vars,
            &["exec", "--mask", "--secret", &secret, "--", &command],
        )
        .output()
        .await
        .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn exec_help_has_the_supervision_table_and_examples() {
    let out = cli(&[], &["exec", "--help"]).output().await.unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--watch-interval",
        "--on-change",
        "--stop-signal",
        "--kill-timeout",
        "--restart-on-exit",
        "--mask",
        "--override",
        "a watched secret changes",
        "the command exits by itself",
        "the server cannot be read",
        "SIGTERM to exec",
        "signal:HUP",
        "./server",
    ] {
        assert!(help.contains(needle), "`{needle}` missing:\n{help}");
    }
}

/// A token that may issue, renew and revoke credentials of a fresh database
/// role (TTLs in seconds), as `exec`'s variables; the role.
async fn database_role(
    vault: &DevVault,
    default_ttl: u64,
    max_ttl: u64,
) -> (Vec<(String, String)>, vault_secret::testing::DatabaseRole) {
    let pg = crate::leases::postgres().await;
    let db = vault
        .database(
            pg,
            Duration::from_secs(default_ttl),
            Duration::from_secs(max_ttl),
        )
        .await;
    let policy = vault.policy("exec-lease", &db.policy()).await;
    let token = vault.token(&[&policy]).await;
    (vault.env_vars_for(&token), db)
}

/// Waits until `user` is gone from PostgreSQL's roles (the revocation
/// drops it), at most 10 s.
async fn role_dropped(user: &str) -> bool {
    let pg = crate::leases::postgres().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while pg
        .login_roles()
        .expect("pg_roles")
        .iter()
        .any(|r| r == user)
    {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    true
}

#[tokio::test]
async fn exec_keeps_a_dynamic_secrets_lease_while_the_command_runs_and_revokes_it_after() {
    let vault = DevVault::shared().await.unwrap();
    let (vars, db) = database_role(&vault, 2, 60).await;
    let creds = db.creds_path();
    let (user_var, pass_var) = (
        format!("DB_USER={creds}#username"),
        format!("DB_PASS={creds}#password"),
    );
    // Without any supervision flag: a dynamic secret makes exec stay.
    let mut exec = Running::start(cli(
        &vars,
        &[
            "exec",
            "--secret",
            &user_var,
            "--secret",
            &pass_var,
            "--",
            SH,
            "-c",
            r#"echo "$DB_USER $DB_PASS"; sleep 6; echo done"#,
        ],
    ));
    let started = Instant::now();
    let line = exec.expect_line(Duration::from_secs(30)).await;
    let (user, password) = line.split_once(' ').expect("user and password");
    // One lease for both fields.
    assert_eq!(crate::leases::live_leases(&vault, &creds).await.len(), 1);
    // Past the lease's 2 s the credentials still log in: exec renewed it.
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(started.elapsed())).await;
    let pg = crate::leases::postgres().await;
    crate::leases::log_in(pg, user, password)
        .await
        .unwrap_or_else(|e| panic!("the credentials past their TTL: {e}"));
    assert_eq!(exec.expect_line(Duration::from_secs(20)).await, "done");
    assert_eq!(exec.exit_code().await, 0);
    // The command is done: its lease is revoked, its user dropped.
    assert!(crate::leases::live_leases(&vault, &creds).await.is_empty());
    assert!(role_dropped(user).await, "{user} still in pg_roles");
    assert!(
        !exec.stderr().contains(password),
        "a password on stderr: {}",
        exec.stderr()
    );
}

#[tokio::test]
async fn sigterm_to_exec_stops_the_command_then_revokes_its_leases() {
    let vault = DevVault::shared().await.unwrap();
    let (vars, db) = database_role(&vault, 30, 120).await;
    let user_var = format!("DB_USER={}#username", db.creds_path());
    let mut exec = Running::start(cli(
        &vars,
        &[
            "exec",
            "--secret",
            &user_var,
            "--",
            SH,
            "-c",
            r#"trap 'echo got-term; exit 143' TERM; echo "$DB_USER"; while :; do sleep 0.1; done"#,
        ],
    ));
    let user = exec.expect_line(Duration::from_secs(30)).await;
    assert_eq!(
        crate::leases::live_leases(&vault, &db.creds_path())
            .await
            .len(),
        1
    );
    exec.signal("TERM");
    assert_eq!(exec.expect_line(Duration::from_secs(5)).await, "got-term");
    assert_eq!(exec.exit_code().await, 143);
    assert!(
        crate::leases::live_leases(&vault, &db.creds_path())
            .await
            .is_empty()
    );
    assert!(role_dropped(&user).await, "{user} still in pg_roles");
}

#[tokio::test]
async fn a_rotated_dynamic_secret_restarts_the_command_with_the_new_user() {
    let vault = DevVault::shared().await.unwrap();
    // Max TTL 6 s: the lease cannot be renewed past it and is rotated.
    let (vars, db) = database_role(&vault, 3, 6).await;
    let user_var = format!("DB_USER={}#username", db.creds_path());
    let mut exec = Running::start(cli(
        &vars,
        &[
            "exec",
            "--secret",
            &user_var,
            "--",
            SH,
            "-c",
            r#"echo "start $$ $DB_USER"; while :; do sleep 0.1; done"#,
        ],
    ));
    let (first_pid, first_user) = start_line(&exec.expect_line(Duration::from_secs(30)).await);
    let (second_pid, second_user) = start_line(&exec.expect_line(Duration::from_secs(15)).await);
    assert_ne!(first_user, second_user, "a new user after the rotation");
    assert_ne!(first_pid, second_pid, "the command was started again");
    exec.signal("TERM");
    assert_eq!(exec.exit_code().await, 143);
    // The current lease is revoked at exit; the rotated one, which ends
    // within its grace period anyway, is left to the server's max TTL.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !crate::leases::live_leases(&vault, &db.creds_path())
        .await
        .is_empty()
    {
        assert!(Instant::now() < deadline, "leases left after exec exited");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
