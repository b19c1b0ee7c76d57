//! Bad input at every edge, through the `vault-secret` binary (issue 11).
//!
//! One table: each case is an input (variables, files, arguments), the exit
//! code it must give and a phrase the output must hold. Every run is also
//! checked for what must never happen: a panic (`panicked` on stderr, exit
//! 101, or our own panic exit 70) and a token or secret in stdout or stderr.
//! The cases cover each token source (credentials JSON, `VAULT_TOKEN`,
//! `~/.vault-token`), the role and secret ids and the namespace with CR,
//! CRLF, LF, tab, NUL and DEL inside (NUL only where it can exist: JSON and
//! files, not environment variables), each file-based input missing, empty,
//! unreadable and a directory, and the address, path, timeout and `exec`
//! edge cases.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::cli_binary;
use crate::harness::KubeFixture;
use crate::harness::{self, Admin, unique};
use crate::support::{approle_credentials, read_policy};

/// What `~/.vault-token` is in a case's home directory.
#[derive(Debug, Clone)]
enum HomeToken {
    Absent,
    File(Vec<u8>),
    Directory,
    /// A symlink to a file that opens but cannot be read (works as root too).
    Unreadable,
}

/// One row of the table.
#[derive(Debug)]
struct Case {
    /// The input, in words.
    what: String,
    args: Vec<String>,
    vars: Vec<(String, String)>,
    home_token: HomeToken,
    code: i32,
    /// Each must be in stdout or stderr.
    phrases: Vec<String>,
    /// Must be in neither.
    secrets: Vec<String>,
}

impl Case {
    fn new(what: impl Into<String>, args: &[&str], code: i32, phrase: impl Into<String>) -> Self {
        Case {
            what: what.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            vars: Vec::new(),
            home_token: HomeToken::Absent,
            code,
            phrases: vec![phrase.into()],
            secrets: Vec::new(),
        }
    }

    /// Sets (or replaces) a variable.
    fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.to_owned(), value.into()));
        self
    }

    /// Another phrase the output must hold.
    fn also(mut self, phrase: impl Into<String>) -> Self {
        self.phrases.push(phrase.into());
        self
    }

    fn credentials(self, creds: Value) -> Self {
        self.var(
            "PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS",
            creds.to_string(),
        )
    }

    fn home_token(mut self, token: HomeToken) -> Self {
        self.home_token = token;
        self
    }

    fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Runs the case; `Err` says what went wrong.
    async fn check(&self) -> Result<(), String> {
        let home = tempfile::tempdir().expect("temp home");
        let empty_path = tempfile::tempdir().expect("temp PATH");
        let token_file = home.path().join(".vault-token");
        match &self.home_token {
            HomeToken::Absent => {}
            HomeToken::File(content) => std::fs::write(&token_file, content).expect("token file"),
            HomeToken::Directory => std::fs::create_dir(&token_file).expect("token dir"),
            HomeToken::Unreadable => {
                std::os::unix::fs::symlink(unreadable_file(home.path()), &token_file)
                    .expect("token symlink")
            }
        }
        let base = [
            ("HOME".to_owned(), home.path().as_os_str().to_owned()),
            ("PATH".to_owned(), empty_path.path().as_os_str().to_owned()),
        ];
        let vars = base.into_iter().chain(
            self.vars
                .iter()
                .map(|(k, v)| (k.clone(), std::ffi::OsString::from(v))),
        );
        let output = cli_binary::run(&self.args, vars).await?;
        let code = output.status.code();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let shown = || format!("exit {code:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
        if stderr.contains("panicked") || code == Some(101) || code == Some(70) {
            return Err(format!("panicked: {}", shown()));
        }
        if code != Some(self.code) {
            return Err(format!("expected exit {}: {}", self.code, shown()));
        }
        for phrase in &self.phrases {
            if !stdout.contains(phrase.as_str()) && !stderr.contains(phrase.as_str()) {
                return Err(format!("{phrase:?} not in the output: {}", shown()));
            }
        }
        for secret in &self.secrets {
            if stdout.contains(secret.as_str()) || stderr.contains(secret.as_str()) {
                return Err(format!("the secret {secret:?} was printed: {}", shown()));
            }
        }
        Ok(())
    }
}

/// A file that opens but cannot be read: mode 000 for a normal user, and
/// `/proc/self/mem` (reading offset 0 fails with EIO) for root, who reads
/// anything mode 000.
fn unreadable_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("unreadable");
    std::fs::write(&file, "x").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    if std::fs::read(&file).is_ok() {
        PathBuf::from("/proc/self/mem")
    } else {
        file
    }
}

/// The control characters tried inside each value: (name, text, phrase).
/// `in_env` is false for NUL, which no environment variable can hold.
const CONTROLS: [(&str, &str, &str, bool); 6] = [
    ("CR", "\r", "a carriage return", true),
    ("CRLF", "\r\n", "a carriage return", true),
    ("LF", "\n", "a line feed", true),
    ("tab", "\t", "a tab", true),
    ("NUL", "\0", "a NUL byte", false),
    ("DEL", "\u{7f}", "a DEL character", true),
];

/// Files of one test: empty, a directory, missing, unreadable, not PEM.
struct Files {
    _dir: TempDir,
    empty: String,
    directory: String,
    missing: String,
    unreadable: String,
    garbage: String,
    two_lines: String,
    script: String,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(p("empty"), "").expect("write");
        std::fs::create_dir(p("directory")).expect("mkdir");
        std::fs::write(p("garbage"), "hunter2-not-pem").expect("write");
        std::fs::write(p("two-lines"), "hunter2.jwt\nsecond.line\n").expect("write");
        std::fs::write(p("script"), "#!/nonexistent/interpreter\necho ran\n").expect("write");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p("script"), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        Files {
            empty: p("empty"),
            directory: p("directory"),
            missing: p("missing"),
            unreadable: unreadable_file(dir.path()).display().to_string(),
            garbage: p("garbage"),
            two_lines: p("two-lines"),
            script: p("script"),
            _dir: dir,
        }
    }
}

/// A KV v2 mount with `app` = {user, password} and `big` = a 1 MB value,
/// and a token that may read them.
async fn fixture(admin: &Admin) -> (String, String, String) {
    let mount = unique("inputs-kv");
    admin.mount_kv(&mount, 2).await;
    let password = unique("pw-hunter2");
    admin
        .kv2_put(
            &mount,
            "app",
            json!({"user": "app-user", "password": password}),
        )
        .await;
    admin
        .kv2_put(&mount, "big", json!({"v": "b".repeat(1_000_000)}))
        .await;
    let policy = read_policy(admin, "inputs-pol", &format!("{mount}/*")).await;
    let token = admin.create_token(&[&policy], Some("1h")).await;
    (mount, password, token)
}

#[tokio::test]
async fn every_bad_input_gives_its_error_class_without_panic_or_echo() {
    let server = harness::server().await;
    let admin = server.admin();
    let (mount, password, token) = fixture(&admin).await;
    let files = Files::new();
    let addr = server.addr().to_owned();
    let user = format!("{mount}/app#user");
    let get = ["get", user.as_str()];
    // A TLS address nobody listens on: TLS files are read before any request.
    let https = "https://127.0.0.1:1";
    // Values that must never be printed, around the bad character.
    let (left, right) = ("hunter2-left", "hunter2-right");
    let mut cases = Vec::new();
    let base = |what: String, args: &[&str], code: i32, phrase: &str| {
        let mut case = Case::new(what, args, code, phrase)
            .var("VAULT_ADDR", &addr)
            .secret(&token)
            .secret(&password)
            .secret(left)
            .secret(right);
        if let Some(ca) = server.ca_cert_path() {
            case = case.var("VAULT_CACERT", ca.display().to_string());
        }
        case
    };

    // ----- control characters in each value from each source ------------
    for (name, c, phrase, in_env) in CONTROLS {
        let bad = format!("{left}{c}{right}");
        cases.push(
            base(
                format!("credentials JSON VAULT_TOKEN with {name} inside"),
                &get,
                3,
                &format!("key `VAULT_TOKEN` contains {phrase}"),
            )
            .credentials(json!({"VAULT_TOKEN": bad})),
        );
        cases.push(
            base(
                format!("credentials JSON VAULT_ROLE_ID with {name} inside"),
                &get,
                3,
                &format!("key `VAULT_ROLE_ID` contains {phrase}"),
            )
            .credentials(json!({"VAULT_ROLE_ID": bad, "VAULT_SECRET_ID": "s"})),
        );
        cases.push(
            base(
                format!("credentials JSON VAULT_SECRET_ID with {name} inside"),
                &get,
                3,
                &format!("key `VAULT_SECRET_ID` contains {phrase}"),
            )
            .credentials(json!({"VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": bad})),
        );
        cases.push(
            base(
                format!("~/.vault-token with {name} inside"),
                &get,
                3,
                "`~/.vault-token`: the content of the file",
            )
            .also(phrase)
            .home_token(HomeToken::File(bad.clone().into_bytes())),
        );
        if in_env {
            cases.push(
                base(
                    format!("VAULT_TOKEN with {name} inside"),
                    &get,
                    3,
                    &format!("invalid `VAULT_TOKEN`: contains {phrase}"),
                )
                .var("VAULT_TOKEN", &bad),
            );
            cases.push(
                base(
                    format!("VAULT_NAMESPACE with {name} inside"),
                    &get,
                    3,
                    &format!("invalid `VAULT_NAMESPACE`: contains {phrase}"),
                )
                .var("VAULT_TOKEN", &token)
                .var("VAULT_NAMESPACE", &bad),
            );
        }
    }

    // ----- surrounding whitespace is trimmed, from every source -----------
    for (what, case) in [
        (
            "credentials JSON token with a trailing newline",
            base(String::new(), &get, 0, "app-user")
                .credentials(json!({"VAULT_TOKEN": format!("{token}\n")})),
        ),
        (
            "credentials JSON token with CRLF and spaces around",
            base(String::new(), &get, 0, "app-user")
                .credentials(json!({"VAULT_TOKEN": format!("  {token}\r\n")})),
        ),
        (
            "VAULT_TOKEN with a trailing newline",
            base(String::new(), &get, 0, "app-user").var("VAULT_TOKEN", format!("{token}\n")),
        ),
        (
            "~/.vault-token with a trailing newline",
            base(String::new(), &get, 0, "app-user")
                .home_token(HomeToken::File(format!("{token}\n").into_bytes())),
        ),
        (
            "VAULT_NAMESPACE of only slashes and whitespace (the root namespace)",
            base(String::new(), &get, 0, "app-user")
                .var("VAULT_TOKEN", &token)
                .var("VAULT_NAMESPACE", " / \n"),
        ),
    ] {
        let mut case = case;
        case.what = what.to_owned();
        cases.push(case);
    }

    // ----- every command refuses before the request -----------------------
    let bad_json = json!({"VAULT_TOKEN": format!("{left}\n{right}")});
    let exec_secret = format!("U={user}");
    let exec_ok = ["exec", "--secret", exec_secret.as_str(), "--", "/bin/true"];
    cases.push(
        base(
            "exec with a JSON token holding LF".into(),
            &exec_ok,
            3,
            "a line feed",
        )
        .credentials(bad_json.clone()),
    );
    cases.push(
        base(
            "doctor with a JSON token holding LF".into(),
            &["doctor"],
            1,
            "[FAIL] credentials: invalid credentials secret",
        )
        .credentials(bad_json),
    );
    cases.push(
        base(
            "doctor with VAULT_NAMESPACE holding a tab".into(),
            &["doctor"],
            1,
            "invalid `VAULT_NAMESPACE`: contains a tab",
        )
        .var("VAULT_TOKEN", &token)
        .var("VAULT_NAMESPACE", format!("{left}\t{right}")),
    );

    // ----- the Kubernetes token file ---------------------------------------
    for (what, file, phrase) in [
        ("missing", files.missing.as_str(), "does not exist"),
        ("empty", files.empty.as_str(), "is empty"),
        ("a directory", files.directory.as_str(), "is a directory"),
        ("unreadable", files.unreadable.as_str(), "cannot be read"),
        ("two lines", files.two_lines.as_str(), "a line feed"),
    ] {
        cases.push(
            base(format!("VAULT_KUBE_TOKEN_FILE {what}"), &get, 3, phrase)
                .also("invalid `VAULT_KUBE_TOKEN_FILE`")
                .credentials(json!({"VAULT_KUBE_AUTH_ROLE": "r", "VAULT_KUBE_TOKEN_FILE": file}))
                .secret("second.line"),
        );
    }
    cases.push(
        base(
            "Kubernetes auth with the default token file absent".into(),
            &get,
            3,
            "/var/run/secrets/kubernetes.io/serviceaccount/token` does not exist",
        )
        .credentials(json!({"VAULT_KUBE_AUTH_ROLE": "r"})),
    );

    // ----- ~/.vault-token itself -------------------------------------------
    for (what, home_token, phrase) in [
        ("empty", HomeToken::File(Vec::new()), "is empty"),
        (
            "only a newline",
            HomeToken::File(b"\n".to_vec()),
            "is empty",
        ),
        ("a directory", HomeToken::Directory, "is a directory"),
        ("unreadable", HomeToken::Unreadable, "cannot be read"),
    ] {
        cases.push(base(format!("~/.vault-token {what}"), &get, 3, phrase).home_token(home_token));
    }

    // ----- TLS files (read before any request, for https) ------------------
    for (variable, others) in [
        ("VAULT_CACERT", vec![]),
        (
            "VAULT_CLIENT_CERT",
            vec![("VAULT_CLIENT_KEY", files.garbage.as_str())],
        ),
        (
            "VAULT_CLIENT_KEY",
            vec![("VAULT_CLIENT_CERT", files.garbage.as_str())],
        ),
    ] {
        for (what, file, phrase) in [
            ("missing", files.missing.as_str(), "does not exist"),
            ("empty", files.empty.as_str(), "is empty"),
            ("a directory", files.directory.as_str(), "is a directory"),
            ("unreadable", files.unreadable.as_str(), "cannot be read"),
        ] {
            let mut case = base(format!("{variable} {what}"), &get, 3, phrase)
                .also(format!("invalid `{variable}`: "))
                .var("VAULT_ADDR", https)
                .var("VAULT_TOKEN", &token)
                .var(variable, file);
            for (name, value) in &others {
                case = case.var(name, *value);
            }
            cases.push(case);
        }
    }
    for (what, extra, phrase) in [
        (
            "VAULT_CACERT not PEM",
            vec![("VAULT_CACERT", files.garbage.as_str())],
            "no PEM certificate",
        ),
        (
            "VAULT_CLIENT_CERT not PEM (was: builder error)",
            vec![
                ("VAULT_CLIENT_CERT", files.garbage.as_str()),
                ("VAULT_CLIENT_KEY", files.garbage.as_str()),
            ],
            "invalid `VAULT_CLIENT_CERT`",
        ),
        (
            "VAULT_CAPATH missing",
            vec![("VAULT_CAPATH", files.missing.as_str())],
            "does not exist",
        ),
        (
            "VAULT_CAPATH a file",
            vec![("VAULT_CAPATH", files.garbage.as_str())],
            "is not a directory",
        ),
        (
            "VAULT_CAPATH an empty directory",
            vec![("VAULT_CAPATH", files.directory.as_str())],
            "holds no certificate files",
        ),
    ] {
        let mut case = base(what.to_owned(), &get, 3, phrase)
            .var("VAULT_TOKEN", &token)
            .var("VAULT_ADDR", https);
        for (name, value) in extra {
            case = case.var(name, value);
        }
        cases.push(case.secret("hunter2-not-pem"));
    }

    // ----- the address --------------------------------------------------------
    let with_token = |what: &str, address: &str, args: &[&str], code: i32, phrase: &str| {
        base(what.to_owned(), args, code, phrase)
            .var("VAULT_TOKEN", &token)
            .var("VAULT_ADDR", address)
    };
    let v1 = format!("{addr}/v1");
    let v1_slash = format!("{addr}/v1/");
    let long_host = format!("http://{}.example:8200", "h".repeat(3000));
    for case in [
        with_token(
            "VAULT_ADDR ending in /v1 (accepted)",
            &v1,
            &get,
            0,
            "app-user",
        ),
        with_token(
            "VAULT_ADDR ending in /v1/ (accepted)",
            &v1_slash,
            &get,
            0,
            "app-user",
        ),
        with_token(
            "doctor with VAULT_ADDR ending in /v1",
            &v1,
            &["doctor", &format!("{mount}/app")],
            0,
            "[ ok ] login",
        ),
        // A path is a reverse proxy's prefix: requests go to <address>/v1/...,
        // where this server has nothing.
        with_token(
            "VAULT_ADDR with a path prefix the server does not serve",
            &format!("{addr}/vault"),
            &get,
            5,
            "secret not found",
        ),
        with_token(
            "VAULT_ADDR that does not parse, with a password",
            "http://admin:hunter2-left@bad host:8200",
            &get,
            3,
            "is not a URL",
        ),
        with_token(
            "VAULT_ADDR that does not parse, with ?token=",
            "http://bad host:8200/?token=hunter2-right",
            &get,
            3,
            "is not a URL",
        ),
        with_token(
            "VAULT_ADDR with a password that parses",
            "http://admin:hunter2-left@127.0.0.1:8200",
            &get,
            3,
            "must not carry a user name or password",
        ),
        with_token(
            "VAULT_ADDR with a query that parses",
            "http://127.0.0.1:8200/?token=hunter2-right",
            &get,
            3,
            "must not have a query",
        ),
        with_token(
            "VAULT_ADDR without a scheme",
            "127.0.0.1:8200",
            &get,
            3,
            "does not start with http:// or https://",
        ),
        with_token(
            "VAULT_ADDR plain http on 443",
            "http://127.0.0.1:443",
            &get,
            3,
            "the HTTPS port",
        ),
        with_token(
            "VAULT_ADDR https on 80",
            "https://127.0.0.1:80",
            &get,
            3,
            "the plain-HTTP port",
        ),
        with_token(
            "VAULT_ADDR with a tab inside",
            "http://127.0.0.1:\t8200",
            &get,
            3,
            "invalid `VAULT_ADDR`: contains a tab",
        ),
        with_token(
            "VAULT_ADDR of 3000 bytes",
            &long_host,
            &get,
            3,
            "bytes long",
        ),
    ] {
        cases.push(case);
    }

    // ----- paths, versions, settings -------------------------------------
    let long_path = format!("{mount}/{}", "p".repeat(100_000));
    let lf_path = format!("{mount}/a\nb");
    let tab_field = format!("{mount}/app#us\ter");
    let long_secret = format!("X={long_path}");
    let bad_version = format!("{mount}/app?version=v2");
    for (what, args, phrase) in [
        (
            "a 100 KB path",
            vec!["get", long_path.as_str()],
            "bytes long",
        ),
        (
            "exec with a 100 KB path",
            vec!["exec", "--secret", long_secret.as_str(), "--", "/bin/true"],
            "bytes long",
        ),
        (
            "doctor with a 100 KB path",
            vec!["doctor", long_path.as_str()],
            "bytes long",
        ),
        (
            "a path with LF",
            vec!["get", lf_path.as_str()],
            "control character",
        ),
        (
            "a field with a tab",
            vec!["get", tab_field.as_str()],
            "control character",
        ),
        (
            "a version that is not a number",
            vec!["get", bad_version.as_str()],
            "version `v2` is not a whole number",
        ),
    ] {
        let code = if what.starts_with("doctor") { 1 } else { 3 };
        cases.push(base(what.to_owned(), &args, code, phrase).var("VAULT_TOKEN", &token));
    }
    for (what, value, phrase) in [
        (
            "VAULT_CLIENT_TIMEOUT too large",
            "99999999999",
            "longest accepted",
        ),
        ("VAULT_CLIENT_TIMEOUT zero", "0s", "positive"),
        (
            "VAULT_SKIP_VERIFY not a boolean",
            "maybe\u{1b}[31m",
            "is not a boolean",
        ),
    ] {
        let variable = what.split(' ').next().expect("a variable name");
        cases.push(
            base(what.to_owned(), &get, 3, phrase)
                .var("VAULT_TOKEN", &token)
                .var(variable, value),
        );
    }

    // ----- exec -------------------------------------------------------------
    let big = format!("BIG={mount}/big#v");
    cases.push(
        base(
            "exec with a 1 MB value".into(),
            &["exec", "--secret", &big, "--", "/bin/true"],
            126,
            "the value for `BIG`",
        )
        .var("VAULT_TOKEN", &token),
    );
    cases.push(
        base(
            "exec of a script whose interpreter is missing".into(),
            &["exec", "--secret", &exec_secret, "--", &files.script],
            126,
            "its interpreter `/nonexistent/interpreter`",
        )
        .var("VAULT_TOKEN", &token),
    );
    cases.push(
        base(
            "exec of a command that does not exist".into(),
            &["exec", "--secret", &exec_secret, "--", "no-such-command"],
            127,
            "command not found",
        )
        .var("VAULT_TOKEN", &token),
    );

    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = case.check().await {
            failures.push(format!("## {}\n{why}", case.what));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// `doctor` in a namespace where `get` works: `sys/health` goes without the
/// namespace header, the namespace is checked by the token lookup made in it.
#[tokio::test]
async fn doctor_passes_in_a_namespace_where_get_works() {
    let server = harness::server().await;
    let admin = server.admin();
    if !admin.namespaces_supported().await {
        assert!(
            server.is_external(),
            "the OpenBao dev server supports namespaces"
        );
        return;
    }
    let ns = unique("inputs-ns");
    admin.create_namespace(&ns).await;
    let inside = admin.in_namespace(&ns);
    let mount = unique("inputs-kv");
    inside.mount_kv(&mount, 2).await;
    inside
        .kv2_put(&mount, "app", json!({"user": "ns-user"}))
        .await;
    let path = format!("{mount}/app");
    let field = format!("{path}#user");
    let token = server.root_token().to_owned();

    let mut get = Case::new("get in the namespace", &["get", &field], 0, "ns-user")
        .var("VAULT_ADDR", server.addr())
        .var("VAULT_TOKEN", &token)
        .var("VAULT_NAMESPACE", &ns);
    if let Some(ca) = server.ca_cert_path() {
        get = get.var("VAULT_CACERT", ca.display().to_string());
    }
    get.check().await.expect("get works in the namespace");

    let mut doctor = Case::new(
        "doctor in the namespace",
        &["doctor", &path],
        0,
        format!("[ ok ] namespace: `{ns}`"),
    );
    doctor.vars = get.vars.clone();
    if let Err(why) = doctor.check().await {
        panic!("{why}");
    }

    let mut missing = Case::new(
        "doctor in a namespace that does not exist",
        &["doctor", &path],
        1,
        "check that this namespace exists",
    );
    missing.vars = get.vars.clone();
    let missing = missing.var("VAULT_NAMESPACE", unique("no-such-ns"));
    if let Err(why) = missing.check().await {
        panic!("{why}");
    }
}

/// Credentials as variables: where no `VAULT_CREDENTIALS` secret exists,
/// each method's keys are read from the variables of the same names; when
/// it exists, it wins as a whole; an incomplete method says where its keys
/// were looked for.
#[tokio::test]
async fn credentials_as_variables_and_the_secret_winning_over_them() {
    let server = harness::server().await;
    let admin = server.admin();
    let (mount, password, token) = fixture(&admin).await;
    let policy = read_policy(&admin, "vars-pol", &format!("{mount}/*")).await;
    let approle = approle_credentials(&admin, "vars-approle", "r", &[&policy]).await;
    let kube = KubeFixture::start("apps", "vars").await;
    let k8s = unique("vars-k8s");
    kube.configure(&admin, &k8s, "vars-role", &[&policy]).await;
    let user = format!("{mount}/app#user");
    let get = ["get", user.as_str()];
    let base = |what: &str, code: i32, phrase: &str| {
        let mut case = Case::new(what, &get, code, phrase)
            .var("VAULT_ADDR", server.addr())
            .secret(&password)
            .secret(&token);
        if let Some(ca) = server.ca_cert_path() {
            case = case.var("VAULT_CACERT", ca.display().to_string());
        }
        case
    };
    let key = |k: &str| approle[k].as_str().expect("a string").to_owned();
    let cases = [
        base("AppRole keys as variables", 0, "app-user")
            .var("VAULT_ROLE_ID", key("VAULT_ROLE_ID"))
            .var("VAULT_SECRET_ID", key("VAULT_SECRET_ID"))
            .var("VAULT_APPROLE_PATH", key("VAULT_APPROLE_PATH")),
        base("Kubernetes keys as variables", 0, "app-user")
            .var("VAULT_KUBE_AUTH_ROLE", "vars-role")
            .var("VAULT_KUBE_AUTH_PATH", &k8s)
            .var(
                "VAULT_KUBE_TOKEN_FILE",
                kube.token_path().display().to_string(),
            ),
        // The secret's (good) token wins: the (bad) variables are never tried.
        base("the secret wins over the variables", 0, "app-user")
            .var(
                "VAULT_CREDENTIALS",
                json!({ "VAULT_TOKEN": token }).to_string(),
            )
            .var("VAULT_ROLE_ID", "not-a-role")
            .var("VAULT_SECRET_ID", "not-a-secret"),
        // The secret has half of AppRole, the variables the other half.
        base(
            "half in the secret, half in the variables",
            3,
            "looked in the secret `VAULT_CREDENTIALS`",
        )
        .also("`VAULT_SECRET_ID` are set but not read")
        .var(
            "VAULT_CREDENTIALS",
            json!({ "VAULT_ROLE_ID": key("VAULT_ROLE_ID") }).to_string(),
        )
        .var("VAULT_SECRET_ID", key("VAULT_SECRET_ID")),
        base(
            "half of AppRole in the variables",
            3,
            "looked in the environment variables",
        )
        .also("`VAULT_SECRET_ID` given without `VAULT_ROLE_ID`")
        .var("VAULT_SECRET_ID", key("VAULT_SECRET_ID")),
    ];
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = case.check().await {
            failures.push(format!("{}: {e}", case.what));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
