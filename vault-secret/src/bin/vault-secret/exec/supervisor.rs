//! Running the command as a child process and looking after it: signals
//! passed on, a restart or a signal when its secrets change, a restart with
//! backoff when it exits (`--restart-on-exit`), and its output masked
//! (`--mask`).

use std::ffi::OsString;
use std::io::PipeWriter;
use std::os::fd::AsFd as _;
use std::process::ExitStatus;
use std::sync::mpsc;
use std::time::Duration;

use rustix::process::Signal;
use tokio::process::Child;
use tokio::time::Instant;

use crate::exec::env::Snapshot;
use crate::exec::mask::{self, SharedMasker};
use crate::exec::secrets::Secrets;
use crate::exec::{signals, start};
use crate::exit::{Exit, Failure};

/// What to do when the secrets change (`--on-change`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnChange {
    /// Stop the command and start it again with the new values.
    Restart,
    /// Send it this signal and keep it (it reloads what it can).
    Signal(Signal),
}

/// How the command is looked after.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) on_change: OnChange,
    /// Sent to stop the command (a restart, or `exec` told to stop).
    pub(crate) stop_signal: Signal,
    /// How long the command has to stop before SIGKILL.
    pub(crate) kill_timeout: Duration,
    pub(crate) restart_on_exit: bool,
    pub(crate) mask: bool,
}

/// The first delay before a restart after the command exits by itself.
const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The longest delay between restarts.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// A command that ran this long before exiting starts the delays afresh.
const STABLE_RUN: Duration = Duration::from_secs(10);
/// How long the output threads may take to drain once the command is gone
/// (a background process of its own may hold the pipes open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Delays doubling from [`FIRST_DELAY`] to [`MAX_DELAY`] against a crash loop.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff { next: FIRST_DELAY }
    }

    /// The delay before the next start, after a run that lasted `ran`.
    fn delay(&mut self, ran: Duration) -> Duration {
        if ran >= STABLE_RUN {
            self.next = FIRST_DELAY;
        }
        let delay = self.next;
        self.next = (delay * 2).min(MAX_DELAY);
        delay
    }
}

/// The masked output: our ends of the command's stdout and stderr pipes,
/// kept for every command started, and the threads that copy them.
#[derive(Debug)]
struct Output {
    stdout: PipeWriter,
    stderr: PipeWriter,
    masker: SharedMasker,
    done: mpsc::Receiver<()>,
    threads: usize,
}

impl Output {
    fn start(first: &Snapshot) -> std::io::Result<Output> {
        let masker = SharedMasker::new(&first.masked);
        let (out_read, stdout) = std::io::pipe()?;
        let (err_read, stderr) = std::io::pipe()?;
        // Fewer, larger reads: the copy costs less than the switches
        // between the command, this process and the reader of our output.
        #[cfg(target_os = "linux")]
        {
            for read in [&out_read, &err_read] {
                if let Err(e) = rustix::pipe::fcntl_setpipe_size(read, mask::CHUNK) {
                    tracing::debug!(error = %e, "the output pipe keeps its size");
                }
            }
            // Our own stdout too, when it is a pipe (a file or a terminal
            // refuses; only the buffer grows, the reader sees no change).
            let _ = rustix::pipe::fcntl_setpipe_size(std::io::stdout(), mask::CHUNK);
        }
        let (tx, done) = mpsc::channel();
        for (read, is_stdout) in [(out_read, true), (err_read, false)] {
            let (tx, masker) = (tx.clone(), masker.clone());
            std::thread::Builder::new()
                .name("exec-mask".into())
                .spawn(move || {
                    // Our own descriptor, unbuffered: std's stdout buffers
                    // by line, which would copy every chunk once more.
                    let to = if is_stdout {
                        std::io::stdout().as_fd().try_clone_to_owned()
                    } else {
                        std::io::stderr().as_fd().try_clone_to_owned()
                    };
                    match to {
                        Ok(fd) => mask::pump(read, std::fs::File::from(fd), masker),
                        Err(_) if is_stdout => mask::pump(read, std::io::stdout(), masker),
                        Err(_) => mask::pump(read, std::io::stderr(), masker),
                    }
                    let _ = tx.send(());
                })?;
        }
        Ok(Output {
            stdout,
            stderr,
            masker,
            done,
            threads: 2,
        })
    }

    /// Closes our ends and waits (a little) for the copies to finish.
    fn finish(self) {
        drop((self.stdout, self.stderr));
        let deadline = std::time::Instant::now() + DRAIN_TIMEOUT;
        for _ in 0..self.threads {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if self.done.recv_timeout(left).is_err() {
                tracing::debug!("the command's output is still open (a process it started?)");
                return;
            }
        }
    }
}

/// Starts the command, each time with the latest variables.
#[derive(Debug)]
struct Launcher {
    program: OsString,
    args: Vec<OsString>,
    removed: Vec<String>,
    output: Option<Output>,
}

impl Launcher {
    fn start(&self, snapshot: &Snapshot) -> Result<(Child, u32), Failure> {
        start::check_sizes(&snapshot.vars)?;
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args);
        for name in &self.removed {
            command.env_remove(name);
        }
        command.envs(snapshot.vars.iter().map(|(n, (v, _))| (n, v.as_str())));
        if let Some(output) = &self.output {
            let pipes = output
                .stdout
                .try_clone()
                .and_then(|out| Ok((out, output.stderr.try_clone()?)));
            let (out, err) = pipes.map_err(|e| {
                Failure::new(
                    Exit::Other,
                    format!("cannot pass on the command's output: {e}"),
                )
            })?;
            command.stdout(out).stderr(err);
        }
        let child = command
            .spawn()
            .map_err(|e| start::cannot_spawn(&self.program, &e, &start::sizes(&snapshot.vars)))?;
        // Our copies of the pipes' ends go with `command`.
        drop(command);
        let pid = child.id().unwrap_or_default();
        tracing::info!(pid, "started the command");
        Ok((child, pid))
    }
}

/// The exit code a shell gives for `status`: the code, or 128 + the signal.
fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from((128 + signal) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}

fn wait_failed(e: &std::io::Error) -> Failure {
    Failure::new(Exit::Other, format!("cannot wait for the command: {e}"))
}

/// Runs `command` with the secrets of `secrets` until it ends for good, and
/// gives the exit code `exec` ends with.
pub(crate) async fn run(
    command: &[OsString],
    removed: Vec<String>,
    mut secrets: Secrets,
    options: &Options,
) -> Result<u8, Failure> {
    let Some((program, args)) = command.split_first() else {
        return Err(Failure::new(Exit::Usage, "no command given after `--`"));
    };
    let mut incoming = signals::Incoming::install().map_err(|e| {
        Failure::new(
            Exit::Other,
            format!("cannot handle signals to pass them on: {e}"),
        )
    })?;
    let mut snapshot = secrets.current();
    let output = if options.mask {
        let output = Output::start(&snapshot).map_err(|e| {
            Failure::new(
                Exit::Other,
                format!("cannot mask the command's output: {e}"),
            )
        })?;
        Some(output)
    } else {
        None
    };
    let launcher = Launcher {
        program: program.clone(),
        args: args.to_vec(),
        removed,
        output,
    };
    let outcome = supervise(
        &launcher,
        &mut secrets,
        &mut snapshot,
        &mut incoming,
        options,
    )
    .await;
    if let Some(output) = launcher.output {
        output.finish();
    }
    outcome
}

async fn supervise(
    launcher: &Launcher,
    secrets: &mut Secrets,
    snapshot: &mut std::sync::Arc<Snapshot>,
    incoming: &mut signals::Incoming,
    options: &Options,
) -> Result<u8, Failure> {
    let (mut child, mut pid) = launcher.start(snapshot)?;
    let mut started = Instant::now();
    let mut backoff = Backoff::new();
    // SIGINT or SIGTERM to `exec`: the command is not started again.
    let mut interrupted = false;
    let mut kill_at: Option<Instant> = None;
    loop {
        let kill_timer = async move {
            match kill_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => {
                let status = status.map_err(|e| wait_failed(&e))?;
                let code = exit_code(status);
                if interrupted || !options.restart_on_exit {
                    return Ok(code);
                }
                let delay = backoff.delay(started.elapsed());
                tracing::warn!(
                    code,
                    "the command exited by itself; starting it again in {delay:?}"
                );
                if let Some(code) = pause(delay, incoming, secrets, snapshot, launcher).await {
                    return Ok(code);
                }
                (child, pid) = launcher.start(snapshot)?;
                started = Instant::now();
                kill_at = None;
            }
            signal = incoming.recv() => {
                if signal == Signal::TERM {
                    // A service manager stopping `exec`: the command's own
                    // stop signal, then SIGKILL after the timeout.
                    interrupted = true;
                    signals::send(pid, options.stop_signal);
                    kill_at.get_or_insert(Instant::now() + options.kill_timeout);
                } else {
                    interrupted |= signal == Signal::INT;
                    signals::pass_on(pid, signal);
                }
            }
            next = secrets.changed(), if !interrupted => {
                if let Some(output) = &launcher.output {
                    output.masker.extend(&next.masked);
                }
                *snapshot = next;
                match options.on_change {
                    OnChange::Signal(signal) => {
                        tracing::info!(signal = %signals::name(signal), "the secrets changed; signalling the command");
                        signals::send(pid, signal);
                    }
                    OnChange::Restart => {
                        tracing::info!("the secrets changed; restarting the command");
                        let status = stop(&mut child, pid, options, incoming, &mut interrupted).await?;
                        if interrupted {
                            return Ok(exit_code(status));
                        }
                        (child, pid) = launcher.start(snapshot)?;
                        started = Instant::now();
                        kill_at = None;
                    }
                }
            }
            () = kill_timer => {
                tracing::warn!(
                    "the command did not stop within {:?} of {}; killing it",
                    options.kill_timeout,
                    signals::name(options.stop_signal)
                );
                signals::send(pid, Signal::KILL);
                kill_at = None;
            }
        }
    }
}

/// Stops the command: the stop signal, then SIGKILL after the timeout.
/// Signals received meanwhile are passed on.
async fn stop(
    child: &mut Child,
    pid: u32,
    options: &Options,
    incoming: &mut signals::Incoming,
    interrupted: &mut bool,
) -> Result<ExitStatus, Failure> {
    signals::send(pid, options.stop_signal);
    let deadline = tokio::time::sleep(options.kill_timeout);
    tokio::pin!(deadline);
    let mut killed = false;
    loop {
        tokio::select! {
            status = child.wait() => return status.map_err(|e| wait_failed(&e)),
            () = &mut deadline, if !killed => {
                tracing::warn!(
                    "the command did not stop within {:?} of {}; killing it",
                    options.kill_timeout,
                    signals::name(options.stop_signal)
                );
                signals::send(pid, Signal::KILL);
                killed = true;
            }
            signal = incoming.recv() => {
                *interrupted |= signal == Signal::INT || signal == Signal::TERM;
                signals::pass_on(pid, signal);
            }
        }
    }
}

/// Waits `delay` before a restart; secrets that change meanwhile are taken.
/// SIGINT or SIGTERM ends the wait, and `exec` with 128 + the signal.
async fn pause(
    delay: Duration,
    incoming: &mut signals::Incoming,
    secrets: &mut Secrets,
    snapshot: &mut std::sync::Arc<Snapshot>,
    launcher: &Launcher,
) -> Option<u8> {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return None,
            signal = incoming.recv() => {
                if signal == Signal::INT || signal == Signal::TERM {
                    return u8::try_from(128 + signal.as_raw()).ok();
                }
            }
            next = secrets.changed() => {
                if let Some(output) = &launcher.output {
                    output.masker.extend(&next.masked);
                }
                *snapshot = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_starts_afresh_after_a_stable_run() {
        let mut b = Backoff::new();
        let short = Duration::from_millis(10);
        let delays: Vec<Duration> = (0..9).map(|_| b.delay(short)).collect();
        assert_eq!(delays[0], FIRST_DELAY);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(delays[1], FIRST_DELAY * 2);
        assert_eq!(*delays.last().unwrap(), MAX_DELAY);
        assert_eq!(b.delay(STABLE_RUN), FIRST_DELAY);
    }

    #[test]
    fn exit_codes_are_a_shells() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
