//! `vault-secret exec`: run a command with secrets in its environment only.
//!
//! Every secret is read before the command starts; any failure and the
//! command is not started.
//!
//! # What the command gets
//!
//! This process's environment, without the credentials this tool logs in
//! with (every variable the library declares a
//! [`credential`](vault_secret::variables::Variable::credential): tokens,
//! AppRole's ids, JWTs, the Kubernetes token file, the client key, the
//! credentials secret), plus one variable per `--secret` and per key of a
//! `--secret-map`. `--pass-credentials` keeps the credentials; a
//! `--secret` of one of their names sets it on purpose.
//!
//! A `--secret-map` sets names the secret's author chose, so it may not set
//! a variable that changes what runs or how it loads (`PATH`, `LD_*`,
//! `BASH_ENV`, `PYTHON*`, `HOME`, ...), nor replace one this process has
//! (unless `--override`). Name such a variable yourself with
//! `--secret NAME=path#key`.
//!
//! # Handing over, or supervising
//!
//! Without `--watch`, `--mask` or `--restart-on-exit`, the tool revokes the
//! token it logged in with and the command takes this process's place
//! (`execvp`, as bank-vaults' `vault-env` does): same PID, stdin, stdout
//! and stderr, the signals a supervisor or a terminal sends reach it
//! directly, its exit status is the one the caller sees, and no process is
//! left holding the Vault session or copies of the secrets while it runs.
//!
//! With any of them, or with a dynamic secret, the command runs as a child
//! and `exec` stays.
//!
//! A dynamic secret (`--secret DB_USER=database/creds/app#username
//! --secret DB_PASS=database/creds/app#password`: one lease for both
//! fields) is leased: the client renews the lease while the command runs,
//! and when it is rotated (its max TTL near, or a renewal refused) the
//! command gets the new credentials as `--on-change` says (restart by
//! default). Whatever ends the command (its own exit, a signal, SIGTERM or
//! SIGINT to `exec`), `exec` then revokes every lease and its token.
//!
//!
//! `--watch` checks each secret every `--watch-interval`: a KV v2 secret
//! through its metadata (`<mount>/metadata/<path>`, which carries no value)
//! when the token may read it, else by reading its value; one request per
//! secret per interval, and the values read again only when a version moved.
//!
//! | Event | What `exec` does |
//! |---|---|
//! | a watched secret changes (`--watch`) | `--on-change restart` (default): `--stop-signal` (default SIGTERM), up to `--kill-timeout` (default 10s), SIGKILL, then the command again with the new values; `--on-change signal:NAME`: that signal, same process |
//! | a dynamic secret's lease is rotated | the new credentials, as `--on-change` says (restart by default) |
//! | a lease cannot be kept (denied, expired) | a WARN with the path (never a value); the command keeps its credentials |
//! | the command exits by itself | `exec` exits with its code (128+N for signal N), as Vault Agent's supervisor does; with `--restart-on-exit` it is started again after 0.5s, 1s, 2s, ... up to 30s (afresh after a 10s run) |
//! | the server cannot be read | the command keeps running on the values it has; a WARN names the paths and the error (never a value), another when reading works again |
//! | SIGTERM to `exec` | `--stop-signal` to the command, SIGKILL after `--kill-timeout`; `exec` exits with its code |
//! | SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH | passed on as they are; after SIGINT the command is not restarted. In a terminal's foreground, Ctrl-C, Ctrl-\\ and window resizes reach the command from the terminal itself (it shares `exec`'s process group), so `exec` does not pass them on a second time |
//!
//! `--mask` passes the command's stdout and stderr through pipes and
//! replaces every secret value of 4 bytes or more, and its base64,
//! percent-encoded and JSON-escaped forms, by `<redacted>`, also when a
//! value is split across writes. It is off unless asked, also when the
//! output is not a terminal: without it the command's output is its own,
//! byte for byte (a `pg_dump > file` through `exec` must not be altered),
//! and the command keeps this process's PID. Give `--mask` in CI logs.
//!
//! # Examples
//!
//! A web server, restarted when its database password changes:
//!
//! ```text
//! vault-secret exec --watch --secret DB_PASS=secret/app#db_password -- ./server
//! ```
//!
//! A daemon that reloads its configuration on SIGHUP:
//!
//! ```text
//! vault-secret exec --watch --watch-interval 30s --on-change signal:HUP \
//!     --secret-map secret/nginx=NGINX_ -- nginx -g 'daemon off;'
//! ```

mod env;
mod leased;
mod mask;
mod secrets;
mod signals;
mod start;
mod supervisor;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use vault_secret::VaultClient;

use crate::exec::env::{Request, SecretMap, SecretVar};
use crate::exec::leased::Leased;
use crate::exec::secrets::{Secrets, Versions};
use crate::exec::supervisor::{OnChange, Options};
use crate::exit::{Exit, Failure};

/// The `--help` text after the flags: the supervision table and examples.
const SUPERVISION_HELP: &str = "\
Without --watch, --mask or --restart-on-exit the command replaces this process
(same PID, signals and exit status). With any of them, or with a dynamic secret
(database/creds/ROLE, ...), it runs as a child. A dynamic secret's lease is
renewed while the command runs, its rotation restarts the command (or signals
it, per --on-change), and every lease is revoked when the command is done.
--watch checks each secret once per interval: a KV v2 secret's version through
its metadata when the token may read <mount>/metadata/<path>, else its value.


  Event                         What exec does
  a watched secret changes      --on-change restart (default): --stop-signal,
                                up to --kill-timeout, SIGKILL, start again with
                                the new values; signal:NAME: send it, keep it
  the command exits by itself   exec exits with its code (128+N for signal N);
                                --restart-on-exit: start again after 0.5s, 1s,
                                2s, ... up to 30s (afresh after a 10s run)
  the server cannot be read     the command keeps its values; WARN with the
                                paths (never a value); watching resumes
  SIGTERM to exec               --stop-signal to the command, SIGKILL after
                                --kill-timeout; exit with its code
  SIGINT, SIGHUP, SIGQUIT,      passed on as they are (no restart after SIGINT);
  SIGUSR1, SIGUSR2, SIGWINCH    Ctrl-C, Ctrl-\\ and resizes in a terminal reach
                                the command from the terminal, once

The command never gets this tool's credentials (tokens, AppRole ids, JWTs,
key files, VAULT_CREDENTIALS) unless --pass-credentials. --secret-map refuses
keys that would set PATH, LD_*, DYLD_*, BASH_ENV, ENV, IFS, PS4, SHELLOPTS,
NODE_OPTIONS, PYTHON*, PERL5*, RUBYOPT, JAVA_TOOL_OPTIONS, GIT_* or HOME, and
does not replace a variable already set unless --override.

Examples:
  # a web server, restarted when its password changes
  vault-secret exec --watch --secret DB_PASS=secret/app#db_password -- ./server
  # a daemon that reloads on SIGHUP
  vault-secret exec --watch --on-change signal:HUP \\
      --secret-map secret/nginx=NGINX_ -- nginx -g 'daemon off;'
  # database credentials, renewed while the server runs, revoked after
  vault-secret exec --secret DB_USER=database/creds/app#username \\
      --secret DB_PASS=database/creds/app#password -- ./server
  # a CI step whose log must not show the token it uses
  vault-secret exec --mask --secret API_TOKEN=secret/ci#token -- ./deploy.sh

Exit codes: see `vault-secret --help`.";

/// Arguments of `exec`.
#[derive(Debug, Args)]
#[command(
    group = clap::ArgGroup::new("secrets").required(true).multiple(true).args(["secret", "secret_map"]),
    override_usage = "vault-secret exec [OPTIONS] [--secret NAME=PATH]... [--secret-map PATH[=PREFIX]]... -- <COMMAND>...",
    after_long_help = SUPERVISION_HELP
)]
pub(crate) struct ExecArgs {
    /// Sets variable NAME to a secret: `NAME=<mount>/<path>#field` gives the
    /// field's value; without `#field`, the whole secret as JSON. Repeatable.
    #[arg(long, value_name = "NAME=PATH", value_parser = env::parse_secret)]
    secret: Vec<SecretVar>,

    /// Sets one variable per key of a secret, named PREFIX + key
    /// (`--secret-map secret/db=DB_` gives DB_username, DB_password).
    /// Every key must make a valid variable name, not one that changes what
    /// runs (PATH, LD_*, HOME, ...), nor one already set here (see
    /// --override). Split at the last `=`; end with `=` for a path that has
    /// one itself. Repeatable.
    #[arg(long, value_name = "PATH[=PREFIX]", value_parser = env::parse_secret_map)]
    secret_map: Vec<SecretMap>,

    /// Lets --secret-map replace variables this process already has.
    #[arg(long = "override")]
    override_parent: bool,

    /// Also passes the Vault credentials this tool reads (`VAULT_TOKEN`,
    /// `VAULT_ROLE_ID`, `VAULT_SECRET_ID`, `VAULT_JWT`, `VAULT_JWT_FILE`,
    /// `VAULT_KUBE_TOKEN_FILE`, `VAULT_CLIENT_KEY`, `VAULT_CREDENTIALS`, ...)
    /// to the command. By default they are removed from its environment: it
    /// gets the secrets asked for, not the keys to every other one.
    #[arg(long)]
    pass_credentials: bool,

    /// Checks the secrets every --watch-interval (a KV v2 secret through its
    /// metadata when the token may read it, else its value) and acts on the
    /// command when they change (see --on-change).
    #[arg(long)]
    watch: bool,

    /// How often --watch reads the secrets: 5s, 500ms, 2m, or seconds
    /// [default: 5s].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    watch_interval: Option<String>,

    /// What a change does (with --watch): `restart` the command with the new
    /// values, or `signal:NAME` (e.g. signal:HUP) to send it a signal and
    /// keep it [default: restart].
    #[arg(long, value_name = "ACTION")]
    on_change: Option<String>,

    /// The signal that stops the command (before a restart, or when exec
    /// gets SIGTERM) [default: TERM].
    #[arg(long, value_name = "SIGNAL")]
    stop_signal: Option<String>,

    /// How long the command has to stop before SIGKILL: 10s, 500ms, 0 for
    /// at once [default: 10s].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    kill_timeout: Option<String>,

    /// Starts the command again when it exits by itself, after a delay that
    /// doubles from 0.5s to 30s. Off: exec exits with the command's code.
    #[arg(long)]
    restart_on_exit: bool,

    /// Replaces every secret value (and its base64, URL and JSON-escaped
    /// forms) in the command's stdout and stderr by `<redacted>`. Off
    /// unless given, also when the output is not a terminal.
    #[arg(long)]
    mask: bool,

    /// The command to run and its arguments, after `--`.
    #[arg(last = true, required = true, num_args = 1.., value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Whether `error` is clap's answer to a command given to `exec` without
/// the `--` before it (`exec --secret A=s/p ./app`).
pub(crate) fn forgot_separator(error: &clap::Error, args: &[OsString]) -> bool {
    error.kind() == clap::error::ErrorKind::UnknownArgument
        && args.iter().any(|a| a == "exec")
        && !args.iter().any(|a| a == "--")
}

/// The default of `--watch-interval`.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The default of `--kill-timeout`.
const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest interval or timeout taken.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// The supervision the arguments ask for; `None` to hand the process over.
#[derive(Debug)]
struct Plan {
    watch: Option<Duration>,
    options: Options,
}

impl Plan {
    /// Dynamic secrets without any supervision flag: `exec` stays to keep
    /// their leases, and restarts the command when one is rotated.
    fn keeping_leases() -> Plan {
        Plan {
            watch: None,
            options: Options {
                on_change: OnChange::Restart,
                stop_signal: rustix::process::Signal::TERM,
                kill_timeout: DEFAULT_KILL_TIMEOUT,
                restart_on_exit: false,
                mask: false,
            },
        }
    }
}

/// A configuration failure (exit 3) naming `flag`.
fn bad_flag(flag: &str, message: impl std::fmt::Display) -> Failure {
    Failure::new(Exit::Config, format!("{flag}: {message}"))
}

/// `30`, `30s`, `500ms`, `2m`, `1h`: at least `min`, at most a day.
fn duration(flag: &str, raw: &str, allow_zero: bool) -> Result<Duration, Failure> {
    let text = raw.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.' && c != '-')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shown: String = raw.chars().filter(|c| !c.is_control()).collect();
    let bad = || {
        bad_flag(
            flag,
            format!("`{shown}` is not a duration (use e.g. 5s, 500ms, 2m or 30)"),
        )
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !seconds.is_finite() || seconds < 0.0 || (seconds == 0.0 && !allow_zero) {
        let what = if allow_zero {
            "zero or more"
        } else {
            "more than zero"
        };
        return Err(bad_flag(flag, format!("`{shown}` must be {what}")));
    }
    if seconds > MAX_DURATION.as_secs_f64() {
        return Err(bad_flag(flag, format!("`{shown}` is more than a day")));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn signal_flag(flag: &str, raw: &str) -> Result<rustix::process::Signal, Failure> {
    signals::by_name(raw).ok_or_else(|| {
        let shown: String = raw.chars().filter(|c| !c.is_control()).collect();
        bad_flag(
            flag,
            format!(
                "`{shown}` is not a signal this tool knows ({})",
                signals::known()
            ),
        )
    })
}

impl ExecArgs {
    /// Checks the supervision flags: each bad one is an exit-3 failure
    /// naming it.
    fn plan(&self) -> Result<Option<Plan>, Failure> {
        if !self.watch {
            for (flag, given) in [
                ("--on-change", self.on_change.is_some()),
                ("--watch-interval", self.watch_interval.is_some()),
            ] {
                if given {
                    return Err(bad_flag(flag, "needs --watch")
                        .with_hint("add --watch to act when the secrets change"));
                }
            }
        }
        let interval = match &self.watch_interval {
            Some(raw) => duration("--watch-interval", raw, false)?,
            None => DEFAULT_INTERVAL,
        };
        let on_change = match self.on_change.as_deref().map(str::trim) {
            None | Some("restart") => OnChange::Restart,
            Some(other) => match other.strip_prefix("signal:") {
                Some(name) => OnChange::Signal(signal_flag("--on-change", name)?),
                None => {
                    let shown: String = other.chars().filter(|c| !c.is_control()).collect();
                    return Err(bad_flag(
                        "--on-change",
                        format!("`{shown}` is neither `restart` nor `signal:NAME`"),
                    ));
                }
            },
        };
        let stop_signal = match &self.stop_signal {
            Some(raw) => signal_flag("--stop-signal", raw)?,
            None => rustix::process::Signal::TERM,
        };
        let kill_timeout = match &self.kill_timeout {
            Some(raw) => duration("--kill-timeout", raw, true)?,
            None => DEFAULT_KILL_TIMEOUT,
        };
        let supervised = self.watch || self.mask || self.restart_on_exit;
        if !supervised {
            for (flag, given) in [
                ("--stop-signal", self.stop_signal.is_some()),
                ("--kill-timeout", self.kill_timeout.is_some()),
            ] {
                if given {
                    return Err(
                        bad_flag(flag, "only applies when exec supervises the command")
                            .with_hint("add --watch, --mask or --restart-on-exit"),
                    );
                }
            }
            return Ok(None);
        }
        Ok(Some(Plan {
            watch: self.watch.then_some(interval),
            options: Options {
                on_change,
                stop_signal,
                kill_timeout,
                restart_on_exit: self.restart_on_exit,
                mask: self.mask,
            },
        }))
    }
}

/// Reads every secret, then runs the command and gives its exit code.
pub(crate) async fn run(args: ExecArgs) -> Result<u8, Failure> {
    let plan = args.plan()?;
    let request = Arc::new(Request {
        secrets: args.secret,
        maps: args.secret_map,
        override_parent: args.override_parent,
        pass_credentials: args.pass_credentials,
    });
    let session = VaultClient::from_env().await?;
    let paths = request.paths();
    let versions = match plan.as_ref().and_then(|p| p.watch) {
        Some(_) => Some(Versions::before_reading(&session, &paths).await),
        None => None,
    };
    // One login; the KV paths read once each (a few at a time), a lease
    // issued for each dynamic secret.
    let read = Leased::read_all(&session, &paths).await;
    let (leased, snapshot) = match read {
        Ok((leased, values)) => {
            let snapshot = request.snapshot(&values, &env::parent_has);
            (leased, snapshot)
        }
        Err(failure) => (Leased::default(), Err(failure)),
    };
    let watching = plan.as_ref().and_then(|p| p.watch);
    // Leases are renewed while the command runs, so someone must stay.
    let stays = watching.is_some() || !leased.is_empty();
    if !stays || snapshot.is_err() {
        // The token (and any lease) is no longer needed: revoke it now, not
        // after the command exits (a token the user supplied is left alone).
        revoke(&session).await;
    }
    let snapshot = snapshot?;
    tracing::info!(variables = ?snapshot.vars.keys().collect::<Vec<_>>(), "all secrets read; starting the command");
    let removed = request.removed();
    let plan = match plan {
        Some(plan) => plan,
        None if !leased.is_empty() => Plan::keeping_leases(),
        None => return hand_over(&args.command, &removed, snapshot),
    };
    let secrets = if stays {
        Secrets::watch(
            session.clone(),
            Arc::clone(&request),
            leased,
            versions.unwrap_or_else(Versions::none),
            snapshot,
            plan.watch,
        )
    } else {
        Secrets::fixed(snapshot)
    };
    let outcome = supervisor::run(&args.command, removed, secrets, &plan.options).await;
    if stays {
        // Every lease, then the token: the command is done with them.
        revoke(&session).await;
    }
    outcome
}

async fn revoke(session: &VaultClient) {
    if let Err(e) = session.shutdown().await {
        tracing::debug!(error = %e, "could not revoke the token");
    }
}

/// The command takes this process's place; returns only when it could not
/// be started.
fn hand_over(
    command: &[OsString],
    removed: &[String],
    snapshot: env::Snapshot,
) -> Result<u8, Failure> {
    let Some((program, program_args)) = command.split_first() else {
        return Err(Failure::new(Exit::Usage, "no command given after `--`"));
    };
    start::check_sizes(&snapshot.vars)?;
    let mut child = std::process::Command::new(program);
    child.args(program_args);
    for name in removed {
        child.env_remove(name);
    }
    child.envs(
        snapshot
            .vars
            .iter()
            .map(|(name, (value, _))| (name, value.as_str())),
    );
    let sizes = start::sizes(&snapshot.vars);
    // Our copies go now; the command's copy is in the new process image.
    drop(snapshot);
    let error = child.exec();
    Err(start::cannot_spawn(program, &error, &sizes))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ExecArgs,
    }

    fn plan(flags: &[&str]) -> Result<Option<Plan>, Failure> {
        let mut argv = vec!["exec", "--secret", "A=s/p#f"];
        argv.extend_from_slice(flags);
        argv.extend_from_slice(&["--", "true"]);
        Wrap::try_parse_from(argv).unwrap().args.plan()
    }

    #[track_caller]
    fn refused(flags: &[&str], flag: &str) {
        match plan(flags) {
            Err(Failure::Error { exit, message, .. }) => {
                assert_eq!(exit, Exit::Config, "{flags:?}");
                assert!(message.starts_with(&format!("{flag}: ")), "{message}");
            }
            other => panic!("{flags:?}: {other:?}"),
        }
    }

    #[test]
    fn bad_supervision_flags_are_exit_3_naming_the_flag() {
        refused(&["--on-change", "restart"], "--on-change");
        refused(&["--watch-interval", "1s"], "--watch-interval");
        refused(&["--watch", "--watch-interval", "0"], "--watch-interval");
        refused(&["--watch", "--watch-interval", "-1s"], "--watch-interval");
        refused(&["--watch", "--watch-interval", "soon"], "--watch-interval");
        refused(&["--watch", "--on-change", "signal:NOPE"], "--on-change");
        refused(&["--watch", "--on-change", "reload"], "--on-change");
        refused(&["--watch", "--stop-signal", "SIGFOO"], "--stop-signal");
        refused(&["--mask", "--kill-timeout", "-3"], "--kill-timeout");
        refused(&["--stop-signal", "TERM"], "--stop-signal");
    }

    #[test]
    fn supervision_only_when_asked_with_documented_defaults() {
        assert!(plan(&[]).unwrap().is_none());
        let p = plan(&["--watch"]).unwrap().unwrap();
        assert_eq!(p.watch, Some(DEFAULT_INTERVAL));
        assert_eq!(p.options.on_change, OnChange::Restart);
        assert_eq!(p.options.stop_signal, rustix::process::Signal::TERM);
        assert_eq!(p.options.kill_timeout, DEFAULT_KILL_TIMEOUT);
        assert!(!p.options.restart_on_exit && !p.options.mask);
        let p = plan(&[
            "--watch",
            "--watch-interval",
            "500ms",
            "--on-change",
            "signal:HUP",
            "--kill-timeout",
            "0",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(p.watch, Some(Duration::from_millis(500)));
        assert_eq!(
            p.options.on_change,
            OnChange::Signal(rustix::process::Signal::HUP)
        );
        assert_eq!(p.options.kill_timeout, Duration::ZERO);
        let p = plan(&["--mask"]).unwrap().unwrap();
        assert!(p.watch.is_none() && p.options.mask);
    }
}
