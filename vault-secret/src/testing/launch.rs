//! Launching servers: a dev server ([`DevVault::start`](super::DevVault::start)),
//! the primitives a persistent raft server uses, attaching to one the user runs, and the free
//! port each listens on.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use secrecy::SecretString;
use secret_core::Env;

use super::binary::{HOW_TO_GET_A_SERVER, default_venv_dirs, find_server_binary};
use super::error::{TestingError, TestingErrorKind};
use super::health::{NotReady, wait_for_health};
use super::process::ServerProcess;
use super::state::{Kind, Launched, ServerInner, ServerOptions};

/// Root token of every dev server started here.
const DEV_ROOT_TOKEN: &str = "root";

/// How long a started server has to answer `sys/health` as wanted.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts at starting a server when the port chosen was taken meanwhile.
const START_ATTEMPTS: usize = 5;

/// Dev server config: lets tests enable a file audit device through the API
/// (OpenBao 2.x refuses without it). Costs nothing at start.
pub(crate) const AUDIT_CONFIG: &str = "unsafe_allow_api_audit_creation = true\n";

/// The arguments of `server` for a port and a scratch directory.
pub(crate) type ServerArgs<'a> = dyn Fn(u16, &Path) -> Result<Vec<String>, TestingError> + 'a;

/// What [`launch`] starts: a name for messages, the arguments of `server`
/// for a port (the next port is free too, for a cluster listener) and a
/// scratch directory, and the `sys/health` statuses that mean "up".
pub(crate) struct LaunchPlan<'a> {
    pub(crate) bin: &'a Path,
    pub(crate) tls: bool,
    pub(crate) args: &'a ServerArgs<'a>,
    pub(crate) ready: &'a dyn Fn(u16) -> bool,
}

/// Starts `bin server <args>` on a free loopback port under the watchdog,
/// trying another port when the chosen one was taken meanwhile; returns
/// once `sys/health` answers as the plan wants.
pub(crate) async fn launch(plan: &LaunchPlan<'_>) -> Result<Launched, TestingError> {
    let start_error = |message: String| TestingError::new(TestingErrorKind::Start, message);
    let mut last_output = String::new();
    for _ in 0..START_ATTEMPTS {
        let work_dir = tempfile::Builder::new()
            .prefix("dev-vault-")
            .tempdir()
            .map_err(|e| {
                TestingError::caused(
                    TestingErrorKind::Start,
                    "cannot create a scratch directory",
                    e,
                )
            })?;
        let port = free_port()?;
        let args = (plan.args)(port, work_dir.path())?;
        let mut process = ServerProcess::spawn(plan.bin, &args, work_dir.path())?;
        let scheme = if plan.tls { "https" } else { "http" };
        let addr = format!("{scheme}://127.0.0.1:{port}");
        let ca_cert = plan.tls.then(|| work_dir.path().join("tls/vault-ca.pem"));
        let health = wait_for_health(
            &addr,
            ca_cert.as_deref(),
            plan.ready,
            READY_TIMEOUT,
            Some(&mut process),
        )
        .await;
        let why = match health {
            Ok(_) => {
                return Ok(Launched {
                    process,
                    work_dir,
                    addr,
                    ca_cert,
                    args,
                });
            }
            Err(NotReady::Exited(_)) if process.log().contains("address already in use") => {
                last_output = process.log();
                continue;
            }
            Err(NotReady::Exited(status)) => format!("it exited early ({status})"),
            Err(NotReady::TimedOut(last)) => last,
        };
        return Err(start_error(format!(
            "server `{}` ({}) did not get ready: {why}\n--- server output ---\n{}",
            plan.bin.display(),
            args.join(" "),
            process.log()
        )));
    }
    Err(start_error(format!(
        "server `{}` found no free port in {START_ATTEMPTS} attempts; last output:\n{last_output}",
        plan.bin.display()
    )))
}

/// The binary the builder's options find.
pub(crate) fn binary(options: &ServerOptions) -> Result<PathBuf, TestingError> {
    let venv_dirs = match &options.venv_dirs {
        Some(dirs) => dirs.clone(),
        None => default_venv_dirs(&options.env),
    };
    find_server_binary(&options.env, &venv_dirs)
}

/// Whether `bin` is OpenBao (which needs [`AUDIT_CONFIG`]) rather than
/// HashiCorp Vault (which enables audit devices through the API anyway).
pub(crate) fn is_openbao(bin: &Path) -> bool {
    bin.file_name() != Some(OsStr::new("vault"))
}

/// Starts a dev server (`server -dev`) as the options say (a persistent
/// server is `raft`'s).
pub(crate) async fn start_dev_server(
    options: &ServerOptions,
    kind: Kind,
) -> Result<ServerInner, TestingError> {
    let bin = binary(options)?;
    let args = |port: u16, work_dir: &Path| -> Result<Vec<String>, TestingError> {
        let mut args = vec![
            "-dev".to_owned(),
            "-dev-no-store-token".to_owned(),
            format!("-dev-root-token-id={DEV_ROOT_TOKEN}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ];
        if is_openbao(&bin) {
            let config = work_dir.join("dev.hcl");
            write(&config, AUDIT_CONFIG)?;
            args.push(format!("-config={}", config.display()));
        }
        if options.tls {
            let tls_dir = work_dir.join("tls");
            std::fs::create_dir(&tls_dir).map_err(|e| {
                TestingError::caused(
                    TestingErrorKind::Start,
                    format!("cannot create {}", tls_dir.display()),
                    e,
                )
            })?;
            args.push("-dev-tls".to_owned());
            args.push(format!("-dev-tls-cert-dir={}", tls_dir.display()));
        }
        args.extend(options.args.iter().cloned());
        Ok(args)
    };
    let launched = launch(&LaunchPlan {
        bin: &bin,
        tls: options.tls,
        args: &args,
        ready: &|status| status == 200,
    })
    .await?;
    Ok(ServerInner::started(
        launched,
        SecretString::from(DEV_ROOT_TOKEN),
        None,
        kind,
        None,
    ))
}

/// Writes `text` to `path`, or says which file could not be written.
pub(crate) fn write(path: &Path, text: &str) -> Result<(), TestingError> {
    std::fs::write(path, text).map_err(|e| {
        TestingError::caused(
            TestingErrorKind::Start,
            format!("cannot write {}", path.display()),
            e,
        )
    })
}

/// Uses the server at `VAULT_ADDR` with the root token `VAULT_TOKEN`.
pub(crate) async fn attach_server(env: &Env) -> Result<ServerInner, TestingError> {
    let var = |name: &str| env.get(name).ok().flatten().filter(|v| !v.is_empty());
    let require = |name: &str| {
        var(name).ok_or_else(|| {
            TestingError::new(
                TestingErrorKind::Attach,
                format!(
                    "DevVault::attach() needs {name} to be set (VAULT_ADDR, a root token in \
                     VAULT_TOKEN, and VAULT_CACERT for https).\n{HOW_TO_GET_A_SERVER}"
                ),
            )
        })
    };
    let addr = require("VAULT_ADDR")?.trim_end_matches('/').to_owned();
    let root_token = SecretString::from(require("VAULT_TOKEN")?);
    let ca_cert = var("VAULT_CACERT").map(PathBuf::from);
    // Active (200) or standby (429, 472, 473): usable.
    let usable = |status| matches!(status, 200 | 429 | 472 | 473);
    let health = wait_for_health(
        &addr,
        ca_cert.as_deref(),
        usable,
        Duration::from_secs(10),
        None,
    )
    .await;
    if let Err(not_ready) = health {
        let last = match not_ready {
            NotReady::TimedOut(last) => last,
            NotReady::Exited(status) => status.to_string(),
        };
        return Err(TestingError::new(
            TestingErrorKind::Attach,
            format!(
                "DevVault::attach() to {addr}: {last} (want an unsealed server).\n{HOW_TO_GET_A_SERVER}"
            ),
        ));
    }
    Ok(ServerInner {
        addr,
        root_token,
        ca_cert,
        kind: Kind::Attached,
        process: None,
        relaunch: None,
        unseal_key: Mutex::new(None),
        audit: tokio::sync::OnceCell::new(),
        work_dir: None,
    })
}

/// A loopback port that was free a moment ago, with the next one free too
/// (a dev server binds it for its cluster listener; a raft server is told
/// to). The server may still lose it to someone else; [`launch`] retries.
pub(crate) fn free_port() -> Result<u16, TestingError> {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| {
                TestingError::caused(TestingErrorKind::Start, "cannot bind a loopback port", e)
            })?;
        let port = listener.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(TestingError::new(
        TestingErrorKind::Start,
        "no two adjacent free loopback ports",
    ))
}
