//! What the server modules share (`server`, `launch`, `raft`, `cleanup`):
//! how a test got its server, the server's state, and the options it was
//! started with. It imports none of them.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use secrecy::SecretString;
use secret_core::Env;
use tempfile::TempDir;

use super::process::ServerProcess;

/// Options for a server of the test's own, as
/// [`DevVaultBuilder`](super::DevVaultBuilder) collects them.
#[derive(Debug, Clone)]
pub(crate) struct ServerOptions {
    pub(crate) tls: bool,
    pub(crate) persistent: bool,
    pub(crate) env: Env,
    pub(crate) args: Vec<String>,
    pub(crate) venv_dirs: Option<Vec<PathBuf>>,
}

/// A server process that answers `sys/health`.
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) process: ServerProcess,
    pub(crate) work_dir: TempDir,
    /// `http(s)://127.0.0.1:PORT`.
    pub(crate) addr: String,
    pub(crate) ca_cert: Option<PathBuf>,
    pub(crate) args: Vec<String>,
}

/// How a test got its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Started for this test ([`DevVault::start`](super::DevVault::start)).
    Own,
    /// Started once for the test binary ([`DevVault::shared`](super::DevVault::shared)).
    Shared,
    /// Run by the user ([`DevVault::attach`](super::DevVault::attach)).
    Attached,
    /// Started for this test with raft storage
    /// ([`DevVaultBuilder::persistent`](super::DevVaultBuilder::persistent)): it can be killed and restarted.
    Persistent,
}

/// How to start a persistent server's process again.
#[derive(Debug)]
pub(crate) struct Relaunch {
    pub(crate) bin: PathBuf,
    pub(crate) args: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct ServerInner {
    pub(crate) addr: String,
    pub(crate) root_token: SecretString,
    pub(crate) ca_cert: Option<PathBuf>,
    pub(crate) kind: Kind,
    pub(crate) process: Option<Mutex<ServerProcess>>,
    pub(crate) relaunch: Option<Relaunch>,
    pub(crate) unseal_key: Mutex<Option<SecretString>>,
    /// The file audit device of a started server, enabled on first use.
    pub(crate) audit: tokio::sync::OnceCell<PathBuf>,
    // Declared after `process`: removed once the server has stopped.
    pub(crate) work_dir: Option<TempDir>,
}

impl ServerInner {
    /// A server this process launched.
    pub(crate) fn started(
        launched: Launched,
        root_token: SecretString,
        unseal_key: Option<SecretString>,
        kind: Kind,
        relaunch: Option<Relaunch>,
    ) -> Self {
        ServerInner {
            addr: launched.addr,
            root_token,
            ca_cert: launched.ca_cert,
            kind,
            process: Some(Mutex::new(launched.process)),
            relaunch,
            unseal_key: Mutex::new(unseal_key),
            audit: tokio::sync::OnceCell::new(),
            work_dir: Some(launched.work_dir),
        }
    }

    pub(crate) fn process(&self) -> Option<MutexGuard<'_, ServerProcess>> {
        self.process
            .as_ref()
            .map(|p| p.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub(crate) fn work_dir(&self) -> Option<&Path> {
        self.work_dir.as_ref().map(TempDir::path)
    }
}
