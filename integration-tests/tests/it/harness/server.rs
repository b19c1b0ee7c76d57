//! Getting a server, under the harness's names: the test binary's shared
//! [`DevVault`], an external Vault (`VAULT_IT_EXTERNAL=1`, attached with
//! [`DevVault::attach`]) or a dedicated server for one test.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::OnceCell;
use vault_secret::testing::{Admin, DevVault, Token};

/// A Vault-API server the tests may provision: its address, a root token
/// and, for https, the CA certificate that signed its certificate. Derefs
/// to the [`DevVault`] it wraps.
#[derive(Debug)]
pub struct Server {
    vault: DevVault,
    root_token: Token,
}

impl Server {
    fn new(vault: DevVault) -> Server {
        let root_token = vault.root_token();
        Server { vault, root_token }
    }

    /// Base address, e.g. `http://127.0.0.1:38211` (no trailing slash).
    pub fn addr(&self) -> &str {
        self.vault.addr()
    }

    /// A root token of this server.
    pub fn root_token(&self) -> &str {
        self.root_token.expose_secret()
    }

    /// PEM file of the CA to trust for an https server (`None` for http).
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.vault.ca_cert()
    }

    /// An admin client using the root token.
    pub fn admin(&self) -> Admin {
        self.vault.admin()
    }

    /// Whether this is a server the tests did not start
    /// (`VAULT_IT_EXTERNAL=1`).
    pub fn is_external(&self) -> bool {
        self.vault.is_attached()
    }

    /// Everything the server process wrote so far (empty for an external
    /// server).
    pub fn log(&self) -> String {
        self.vault.log()
    }
}

impl std::ops::Deref for Server {
    type Target = DevVault;

    fn deref(&self) -> &DevVault {
        &self.vault
    }
}

/// Options for [`dedicated_server`].
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Serve https with a generated CA (`-dev-tls`); see
    /// [`Server::ca_cert_path`].
    pub tls: bool,
    /// More arguments for `server -dev`.
    pub extra_args: Vec<String>,
}

impl ServerOptions {
    /// Options for an https server.
    pub fn tls() -> Self {
        ServerOptions {
            tls: true,
            ..ServerOptions::default()
        }
    }
}

/// A server started for one test only (to seal it, stop it or speak TLS to
/// it). Stopped when dropped. Derefs to [`Server`].
#[derive(Debug)]
pub struct DedicatedServer {
    server: Server,
}

impl DedicatedServer {
    /// Stops the server now (it is also stopped on drop); later requests to
    /// [`Server::addr`] fail to connect.
    pub fn stop(&mut self) {
        self.server.vault.stop();
    }
}

impl std::ops::Deref for DedicatedServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

/// The server shared by all tests of this binary: [`DevVault::shared`], or
/// the external server named by `VAULT_ADDR`/`VAULT_TOKEN` when
/// `VAULT_IT_EXTERNAL=1`. Panics, with directions, when there is none.
pub async fn server() -> Arc<Server> {
    static SHARED: OnceCell<Arc<Server>> = OnceCell::const_new();
    let shared = SHARED
        .get_or_init(|| async {
            let vault = if std::env::var("VAULT_IT_EXTERNAL").is_ok_and(|v| v == "1") {
                DevVault::attach().await
            } else {
                DevVault::shared().await
            };
            Arc::new(Server::new(vault.unwrap_or_else(|e| panic!("{e}"))))
        })
        .await;
    Arc::clone(shared)
}

/// Starts a fresh dev server for the calling test only (even when the
/// shared server is external). Panics, with directions, when it cannot.
pub async fn dedicated_server(options: ServerOptions) -> DedicatedServer {
    let mut builder = DevVault::builder();
    if options.tls {
        builder = builder.tls();
    }
    for arg in options.extra_args {
        builder = builder.arg(arg);
    }
    let vault = builder.start().await.unwrap_or_else(|e| panic!("{e}"));
    DedicatedServer {
        server: Server::new(vault),
    }
}
