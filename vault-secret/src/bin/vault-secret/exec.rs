//! `vault-secret exec`: run a command with secrets in its environment only.
//!
//! Every secret is read before the command starts; any failure and the
//! command is not started. Then the tool revokes the token it logged in
//! with and the command takes this process's place (`execvp`, as
//! bank-vaults' `vault-env` does): same PID, stdin, stdout and stderr, the
//! signals a supervisor or a terminal sends reach it directly, its exit
//! status is the one the caller sees, and no process is left holding the
//! Vault session or copies of the secrets while it runs.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use clap::Args;
use vault_secret::VaultClient;
use zeroize::Zeroizing;

use crate::exit::{Exit, Failure};
use crate::vars;

/// Arguments of `exec`.
#[derive(Debug, Args)]
#[command(
    group = clap::ArgGroup::new("secrets").required(true).multiple(true).args(["secret", "secret_map"]),
    override_usage = "vault-secret exec [--secret NAME=PATH]... [--secret-map PATH[=PREFIX]]... -- <COMMAND>..."
)]
pub(crate) struct ExecArgs {
    /// Sets variable NAME to a secret: `NAME=<mount>/<path>#field` gives the
    /// field's value; without `#field`, the whole secret as JSON. Repeatable.
    #[arg(long, value_name = "NAME=PATH", value_parser = parse_secret)]
    secret: Vec<SecretVar>,

    /// Sets one variable per key of a secret, named PREFIX + key
    /// (`--secret-map secret/db=DB_` gives DB_username, DB_password).
    /// Every key must make a valid variable name. Split at the last `=`; end
    /// with `=` for a path that has one itself. Repeatable.
    #[arg(long, value_name = "PATH[=PREFIX]", value_parser = parse_secret_map)]
    secret_map: Vec<SecretMap>,

    /// Also passes the Vault credentials this tool used (`VAULT_TOKEN`,
    /// `VAULT_CREDENTIALS`, `PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS`) to
    /// the command. By default they are removed from its environment: it gets
    /// the secrets asked for, not the keys to every other one.
    #[arg(long)]
    pass_credentials: bool,

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

/// `--secret NAME=PATH`.
#[derive(Debug, Clone)]
struct SecretVar {
    name: String,
    path: String,
}

/// `--secret-map PATH[=PREFIX]`.
#[derive(Debug, Clone)]
struct SecretMap {
    path: String,
    prefix: String,
}

fn parse_secret(arg: &str) -> Result<SecretVar, String> {
    let (name, path) = arg.split_once('=').ok_or_else(|| {
        "expected NAME=<mount>/<path>[#field], e.g. DB_PASS=secret/db#password".to_owned()
    })?;
    if !vars::is_env_name(name) {
        return Err(format!(
            "`{name}` is not a valid environment variable name ({})",
            vars::ENV_NAME_RULE
        ));
    }
    if path.trim().is_empty() {
        return Err(format!("no secret path after `{name}=`"));
    }
    Ok(SecretVar {
        name: name.to_owned(),
        path: path.to_owned(),
    })
}

fn parse_secret_map(arg: &str) -> Result<SecretMap, String> {
    let (path, prefix) = match arg.rsplit_once('=') {
        Some((path, prefix)) => (path, prefix),
        None => (arg, ""),
    };
    if !prefix.is_empty() && !vars::is_env_name(prefix) {
        return Err(format!(
            "prefix `{prefix}` cannot start a variable name ({})",
            vars::ENV_NAME_RULE
        ));
    }
    if path.trim().is_empty() {
        return Err("no secret path".to_owned());
    }
    Ok(SecretMap {
        path: path.to_owned(),
        prefix: prefix.to_owned(),
    })
}

/// Variables holding the credentials this tool logs in with, kept from the
/// command unless `--pass-credentials` (a `--secret` of the same name still wins).
const CREDENTIAL_VARIABLES: [&str; 3] = [
    "VAULT_TOKEN",
    "VAULT_CREDENTIALS",
    "PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS",
];

/// The variables to set, each with the argument it came from (for messages).
type Vars = BTreeMap<String, (Zeroizing<String>, String)>;

fn insert(
    vars: &mut Vars,
    name: String,
    value: Zeroizing<String>,
    origin: String,
) -> Result<(), Failure> {
    vars::check_no_nul(&name, &value)?;
    if let Some((_, earlier)) = vars.get(&name) {
        return Err(Failure::new(
            Exit::Config,
            format!("variable `{name}` would be set twice: by {earlier} and by {origin}"),
        )
        .with_hint("use a different NAME or a --secret-map PREFIX"));
    }
    vars.insert(name, (value, origin));
    Ok(())
}

/// Reads every secret, then runs the command and gives its exit code.
pub(crate) async fn run(args: ExecArgs) -> Result<u8, Failure> {
    let session = VaultClient::from_env().await?;
    // One login; each distinct path read once, all of them at the same time.
    let paths: Vec<&str> = args
        .secret
        .iter()
        .map(|s| s.path.as_str())
        .chain(args.secret_map.iter().map(|m| m.path.as_str()))
        .collect();
    let read = session.read_many(&paths).await;
    // The token is no longer needed: revoke it now, not after the command
    // exits (a token the user supplied is left alone).
    if let Err(e) = session.shutdown().await {
        tracing::debug!(error = %e, "could not revoke the token");
    }
    drop(session);
    let mut values = read?.into_iter();
    let mut env = Vars::new();
    for (s, value) in args.secret.iter().zip(values.by_ref()) {
        // A string field as it is; a mapping (or other JSON) as its JSON text.
        let text = Zeroizing::new(value.expose_secret().to_owned());
        insert(
            &mut env,
            s.name.clone(),
            text,
            format!("--secret {}=...", s.name),
        )?;
    }
    for (m, value) in args.secret_map.iter().zip(values) {
        let mut map = vars::secret_mapping(&value, &m.path, "--secret-map")
            .map_err(|f| f.with_hint("use --secret NAME=PATH#field for one value"))?;
        let pairs = vars::mapping_vars(&m.path, &map, &m.prefix);
        vars::wipe_map(&mut map);
        for (name, text) in pairs? {
            insert(&mut env, name, text, format!("--secret-map {}", m.path))?;
        }
    }
    tracing::info!(variables = ?env.keys().collect::<Vec<_>>(), "all secrets read; starting the command");

    let Some((program, program_args)) = args.command.split_first() else {
        return Err(Failure::new(Exit::Usage, "no command given after `--`"));
    };
    check_sizes(&env)?;
    let mut command = std::process::Command::new(program);
    command.args(program_args);
    if !args.pass_credentials {
        for name in CREDENTIAL_VARIABLES {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().map(|(name, (value, _))| (name, value.as_str())));
    let sizes: Vec<(String, usize)> = env.iter().map(|(n, (v, _))| (n.clone(), v.len())).collect();
    // Our copies go now; the command's copy is in the new process image.
    drop(env);
    // Returns only when the command could not be started.
    let error = command.exec();
    Err(cannot_spawn(program, &error, &sizes))
}

/// Linux refuses one `NAME=value` string of 32 pages or more (`MAX_ARG_STRLEN`)
/// with "Argument list too long", which names no variable: checked first.
const MAX_VARIABLE_LEN: usize = 32 * 4096;

/// A failure naming the variable whose value is too large for an environment.
fn check_sizes(env: &Vars) -> Result<(), Failure> {
    for (name, (value, origin)) in env {
        let len = name.len() + 1 + value.len();
        if cfg!(target_os = "linux") && len >= MAX_VARIABLE_LEN {
            return Err(Failure::new(
                Exit::CannotRun,
                format!(
                    "the value for `{name}` (from {origin}) is {} bytes; Linux starts no \
                     command with a variable of {} KiB or more",
                    value.len(),
                    MAX_VARIABLE_LEN / 1024
                ),
            )
            .with_hint(
                "give the command a large value in a file instead: vault-secret get PATH > file",
            ));
        }
    }
    Ok(())
}

/// Why the command did not start, in words that name the cause: a missing
/// command, a script whose interpreter is missing, an environment too large.
fn cannot_spawn(program: &OsString, e: &std::io::Error, sizes: &[(String, usize)]) -> Failure {
    let shown = program.to_string_lossy();
    if e.raw_os_error() == Some(rustix::io::Errno::TOOBIG.raw_os_error()) {
        let mut largest = sizes.to_vec();
        largest.sort_by_key(|(_, len)| std::cmp::Reverse(*len));
        let named: Vec<String> = largest
            .iter()
            .take(3)
            .map(|(name, len)| format!("`{name}` ({len} bytes)"))
            .collect();
        return Failure::new(
            Exit::CannotRun,
            format!(
                "cannot run `{shown}`: its arguments and environment are too large ({e}); \
                 the largest variables set: {}",
                named.join(", ")
            ),
        );
    }
    if e.kind() != std::io::ErrorKind::NotFound {
        return Failure::new(Exit::CannotRun, format!("cannot run `{shown}`: {e}"));
    }
    match find_program(program) {
        // The file is there: what is missing is what it needs to start.
        Some(file) => match interpreter(&file) {
            Some(interp) => Failure::new(
                Exit::CannotRun,
                format!(
                    "cannot run `{shown}`: its interpreter `{interp}` (from its `#!` line) \
                     was not found"
                ),
            )
            .with_hint(format!(
                "install `{interp}`, or fix the script's first line"
            )),
            None => Failure::new(
                Exit::CannotRun,
                format!(
                    "cannot run `{shown}`: the file exists, but the program loader it \
                     names was not found (built for another system?)"
                ),
            ),
        },
        None => Failure::new(
            Exit::CommandNotFound,
            format!("cannot run `{shown}`: command not found"),
        ),
    }
}

/// The file `program` names: itself when it holds a `/`, else the first
/// match in `PATH` (the command inherits ours).
fn find_program(program: &OsString) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(program);
    if program.as_encoded_bytes().contains(&b'/') {
        return path.is_file().then(|| path.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The interpreter named by a script's `#!` line, if it has one.
fn interpreter(file: &std::path::Path) -> Option<String> {
    use std::io::Read as _;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(file).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    line.split_whitespace()
        .next()
        .map(|interp| interp.chars().filter(|c| !c.is_control()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_args() {
        let s = parse_secret("DB_PASS=secret/db#pass=word").unwrap();
        assert_eq!(
            (s.name.as_str(), s.path.as_str()),
            ("DB_PASS", "secret/db#pass=word")
        );
        assert!(parse_secret("secret/db").is_err());
        assert!(parse_secret("DB-PASS=secret/db").is_err());
        assert!(parse_secret("DB=").is_err());
    }

    #[test]
    fn secret_map_args() {
        let m = parse_secret_map("secret/db=DB_").unwrap();
        assert_eq!((m.path.as_str(), m.prefix.as_str()), ("secret/db", "DB_"));
        let m = parse_secret_map("secret/db").unwrap();
        assert_eq!((m.path.as_str(), m.prefix.as_str()), ("secret/db", ""));
        let m = parse_secret_map("secret/a=b=").unwrap();
        assert_eq!((m.path.as_str(), m.prefix.as_str()), ("secret/a=b", ""));
        assert!(parse_secret_map("secret/db=1X").is_err());
    }

    #[test]
    fn a_variable_set_twice_is_an_error_naming_both() {
        let mut v = Vars::new();
        insert(
            &mut v,
            "A".into(),
            Zeroizing::new("1".into()),
            "first".into(),
        )
        .unwrap();
        match insert(
            &mut v,
            "A".into(),
            Zeroizing::new("2".into()),
            "second".into(),
        ) {
            Err(Failure::Error { message, .. }) => {
                assert!(
                    message.contains("first") && message.contains("second"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
