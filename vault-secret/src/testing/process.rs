//! A server process, run under a small `sh` watchdog so it never outlives
//! the test process.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::error::{TestingError, TestingErrorKind};

/// Runs `<bin> server ...` in the background and kills it when its standard
/// input reaches end of file, i.e. when the test process (which holds the
/// only write end of that pipe) exits, however it exits: statics are never
/// dropped and a signal skips destructors, but the kernel closes a dead
/// process's files. A server that ignores SIGTERM for 10 s gets SIGKILL.
/// When the server is gone the shell exits with its status, so the caller
/// notices a server that died early; if it went because the pipe closed, the
/// shell first removes the server's scratch directory (config, TLS files,
/// audit log, raft data). A server killed while the test lives (a crash
/// test) keeps its directory, so a restart finds its data.
const LAUNCHER: &str = r#"
exec 3<&0
"$DEV_VAULT_BIN" server "$@" </dev/null 3<&- &
server=$!
echo "dev-vault launcher: server pid $server"
stopping="$DEV_VAULT_WORK_DIR/.stopping"
(read -r _ignored <&3; : > "$stopping"; kill "$server" 2>/dev/null; sleep 10; kill -9 "$server" 2>/dev/null) &
watcher=$!
exec 3<&-
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
[ -e "$stopping" ] && rm -rf "$DEV_VAULT_WORK_DIR"
exit "$status"
"#;

/// The watchdog shell running one dev server.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    /// Write end of the watchdog's stdin: closing it stops the server.
    keep_alive: Option<ChildStdin>,
    /// Unlinked file holding the server's stdout and stderr (a file rather
    /// than a pipe, so a chatty server never blocks on a full pipe).
    log: File,
}

impl ServerProcess {
    /// Starts `bin server args...`; `work_dir` is removed once the server
    /// has exited because the test process went or [`stop`](Self::stop) was
    /// called.
    pub(crate) fn spawn(
        bin: &Path,
        args: &[String],
        work_dir: &Path,
    ) -> Result<Self, TestingError> {
        let log = tempfile::tempfile().map_err(|e| {
            TestingError::caused(TestingErrorKind::Start, "cannot create a log file", e)
        })?;
        let clone = |log: &File| {
            log.try_clone().map_err(|e| {
                TestingError::caused(TestingErrorKind::Start, "cannot share the log file", e)
            })
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(LAUNCHER)
            .arg("dev-vault-launcher")
            .args(args)
            .env("DEV_VAULT_BIN", bin)
            .env("DEV_VAULT_WORK_DIR", work_dir)
            // The dev server reads these and they would override the flags.
            .env_remove("BAO_DEV_LISTEN_ADDRESS")
            .env_remove("BAO_DEV_ROOT_TOKEN_ID")
            .env_remove("VAULT_DEV_LISTEN_ADDRESS")
            .env_remove("VAULT_DEV_ROOT_TOKEN_ID")
            .stdin(Stdio::piped())
            .stdout(clone(&log)?)
            .stderr(clone(&log)?)
            .spawn()
            .map_err(|e| {
                let what = match e.kind() {
                    io::ErrorKind::NotFound => "cannot run `sh`".to_owned(),
                    _ => format!("cannot start `{}`", bin.display()),
                };
                TestingError::caused(TestingErrorKind::Start, what, e)
            })?;
        let keep_alive = child.stdin.take();
        Ok(ServerProcess {
            child,
            keep_alive,
            log,
        })
    }

    /// The watchdog's exit status once it has exited (i.e. the server died).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Everything the server (and the watchdog) wrote so far.
    pub(crate) fn log(&self) -> String {
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

    /// The server's process id (not the watchdog's), once it reported it.
    pub(crate) fn server_pid(&self) -> Option<u32> {
        self.log()
            .lines()
            .find_map(|line| line.strip_prefix("dev-vault launcher: server pid "))
            .and_then(|pid| pid.trim().parse().ok())
    }

    /// Kills the server with SIGKILL (no clean shutdown: a crash) and waits
    /// for the watchdog to notice; the scratch directory stays.
    pub(crate) fn kill(&mut self) {
        if let Some(pid) = self.server_pid() {
            // std has no kill(2) for a process that is not our child.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        self.wait_for_exit();
    }

    /// Closes the keep-alive pipe, then waits (a bounded time) for the
    /// server to shut down.
    pub(crate) fn stop(&mut self) {
        self.keep_alive.take();
        self.wait_for_exit();
    }

    /// Waits (a bounded time) for the watchdog to exit.
    fn wait_for_exit(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Last resort; the server itself may then outlive the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
