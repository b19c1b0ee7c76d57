//! `vault-secret`: read a secret from HashiCorp Vault or OpenBao (`get`),
//! write or delete one (`put`, `delete`), run a command with secrets in its
//! environment only (`exec`), and diagnose a set-up step by step (`doctor`).
//!
//! Every command resolves the address, the credentials and the path exactly
//! as the library's `VaultSecret::run()` does: `VAULT_ADDR` (else
//! `vault_addr`), the credentials from the first place that holds any (in
//! the order of the library's `credentials` module: `VAULT_CREDENTIALS`, the
//! method variables, the config file, `~/.vault-token`), and token, then
//! AppRole, then Kubernetes, then JWT, then TLS certificate authentication.
//! Nothing it prints to its own stdout or stderr
//! ever holds a token or a credential; only `get` prints secret values, on
//! stdout, because that is what it is asked for (`put` prints versions only).

mod delete;
mod doctor;
mod exec;
mod exit;
mod get;
mod logging;
mod output;
mod put;
mod vars;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::{EXIT_CODES_HELP, Exit, Failure};

/// Where a subcommand's help sends the reader for exit codes (the table is
/// in the top-level help only).
const SEE_EXIT_CODES: &str = "Exit codes: see `vault-secret --help`.";

/// Read secrets from HashiCorp Vault or OpenBao (KV v1 and v2; token, AppRole,
/// Kubernetes, JWT and TLS certificate auth).
#[derive(Debug, Parser)]
#[command(name = "vault-secret", version, about, after_help = EXIT_CODES_HELP)]
struct Cli {
    /// Log more on stderr: -v info, -vv debug, -vvv trace. `RUST_LOG`, when
    /// set, replaces these levels. Logs never hold tokens or secret values.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

/// The top-level `--help` text above the usage line: what the tool does.
const LONG_ABOUT: &str = "Read secrets from HashiCorp Vault or OpenBao (KV v1 and v2; token, \
     AppRole, Kubernetes, JWT and TLS certificate auth).\n\n\
     Settings come from the environment, as for the library (the variables are listed \
     below the options). Credentials come from the first of these that holds any (the \
     others are named in a warning): VAULT_CREDENTIALS='{\"VAULT_TOKEN\":\"...\"}' (or \
     another method's keys) as a JSON mapping; else each key as a variable of its own \
     name (VAULT_TOKEN first); else VAULT_CREDENTIALS under [context.secrets] in \
     ~/.prefect/config.toml; else ~/.vault-token.";

/// The top-level `--help` text after the options: every variable the library
/// reads (from the library's one declaration of them), then the exit codes.
fn after_long_help() -> String {
    let mut text = String::from("Environment variables:");
    let width = vault_secret::variables::ALL
        .iter()
        .map(|v| v.name.len())
        .max()
        .unwrap_or(0);
    for v in vault_secret::variables::ALL {
        text.push_str(&format!(
            "\n  {:width$}  {} [default: {}]",
            v.name, v.meaning, v.default
        ));
    }
    text.push_str("\n\n");
    text.push_str(EXIT_CODES_HELP);
    text
}

/// Turns core dumps off for this process, whose memory holds tokens,
/// credentials and secret values: not dumpable (`prctl(PR_SET_DUMPABLE,
/// 0)`, which also keeps other processes of the same user from attaching
/// a debugger or reading its memory through `/proc`), and a core size
/// limit of 0 (`RLIMIT_CORE`'s soft limit; the hard one is left, so the
/// program `exec` runs, which inherits the limit, may raise it again).
/// Linux only; elsewhere nothing is changed. What the kernel then reports
/// back, for the debug log.
#[cfg(target_os = "linux")]
fn harden_process() -> std::io::Result<String> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit};
    let maximum = rustix::process::getrlimit(Resource::Core).maximum;
    rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum,
        },
    )?;
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    let dumpable = rustix::process::dumpable_behavior()?;
    let core = rustix::process::getrlimit(Resource::Core);
    Ok(format!(
        "dumpable={} core_limit={}/{}",
        dumpable as i32,
        core.current.map_or("unlimited".into(), |c| c.to_string()),
        core.maximum.map_or("unlimited".into(), |c| c.to_string()),
    ))
}

#[cfg(not(target_os = "linux"))]
fn harden_process() -> std::io::Result<String> {
    Ok("unchanged (not Linux)".to_owned())
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a secret: its key/value mapping (JSON), or one field (`#field`).
    #[command(after_help = SEE_EXIT_CODES)]
    Get(get::GetArgs),
    /// Write a secret's key/value mapping (values typed here are visible to
    /// other users: prefer KEY=@FILE or KEY=-).
    #[command(after_help = SEE_EXIT_CODES, long_about = put::PUT_ABOUT)]
    Put(put::PutArgs),
    /// Delete a secret (its latest version on KV v2), or given KV v2
    /// versions (`--versions 1,2`), or destroy them (`--destroy`).
    #[command(after_help = SEE_EXIT_CODES)]
    Delete(delete::DeleteArgs),
    /// Run a command with secrets in its environment only.
    #[command(after_help = SEE_EXIT_CODES)]
    Exec(exec::ExecArgs),
    /// Check a set-up step by step, and say what to fix.
    ///
    /// Checks, in order: the address, the server, TLS, the seal, the
    /// credentials, the login, the token's lifetime and, given a path, its
    /// mount and KV version, the token's capabilities on it and the read.
    /// Exits 0 when no check failed (a warning is a pass), else 1.
    #[command(after_help = SEE_EXIT_CODES)]
    Doctor(doctor::DoctorArgs),
}

fn main() -> ExitCode {
    // First, before any credential is read: a core dump would hold them.
    let hardened = harden_process();
    report_panics();
    // Usage errors exit 2 (clap's code), --help and --version exit 0.
    let cli = match parse() {
        Ok(cli) => cli,
        Err(failure) => return failure.report(),
    };
    logging::init(cli.verbose);
    match hardened {
        Ok(state) => tracing::debug!(%state, "core dumps are off for this process"),
        Err(e) => tracing::warn!("could not turn core dumps off: {e}"),
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return Failure::new(Exit::Other, format!("cannot start the async runtime: {e}"))
                .report();
        }
    };
    let outcome = runtime.block_on(async {
        let outcome = match cli.command {
            Command::Get(args) => get::run(args).await,
            Command::Put(args) => put::run(args).await,
            Command::Delete(args) => delete::run(args).await,
            Command::Exec(args) => exec::run(args).await,
            Command::Doctor(args) => doctor::run(args).await,
        };
        // Tokens this run obtained by logging in do not outlive it, success
        // or failure (a token the user supplied is left alone).
        if let Err(e) = vault_secret::shutdown_default_clients().await {
            tracing::debug!(error = %e, "could not revoke a token");
        }
        outcome
    });
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(failure) => failure.report(),
    }
}

/// The `clap` command, with the help generated from the library's declarations.
fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
        .long_about(LONG_ABOUT)
        .after_long_help(after_long_help())
}

/// The arguments, or the usage failure to report.
fn parse() -> Result<Cli, Failure> {
    let args = get::vault_cli_forms(std::env::args_os().collect())?;
    let parsed = command()
        .try_get_matches_from(&args)
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches));
    parsed.map_err(|e| {
        if exec::forgot_separator(&e, &args) {
            return Failure::usage(
                "exec",
                clap::error::ErrorKind::UnknownArgument,
                "put `--` before the command to run, e.g. \
                 vault-secret exec --secret DB_PASS=secret/db#password -- ./app",
            );
        }
        e.exit()
    })
}

/// A panic is a bug; it must not look like a crash with a backtrace, nor
/// print its message, which could quote a value (a token in a header, a
/// secret). One line with the code location only, and exit 70 ([`Exit::Internal`]).
fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "vault-secret: internal error: the tool stopped on a bug{at}; no details are \
             shown, as they could hold a secret; please report the command that caused it"
        );
        std::process::exit(i32::from(Exit::Internal.code()));
    }));
}
