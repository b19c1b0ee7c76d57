//! `vault-secret get`: print one secret, or one field of it.

use clap::error::ErrorKind;
use clap::{Args, ValueEnum};
use secret_core::{SecretValue, ValueKind};
use serde_json::Value;
use vault_secret::{ReadApi, VaultClient, VaultSecret};
use zeroize::Zeroizing;

use crate::exit::{Exit, Failure};
use crate::{output, vars};

/// Arguments of `get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The secret: `<mount>/<path>`, with an optional `?version=N` and `#field`,
    /// e.g. `secret/app`, `secret/app#password`, `team/kv/app?version=3#password`.
    ///
    /// A path outside KV (a dynamic secret such as `database/creds/app`) is
    /// issued with a lease, printed like a KV read; the lease then lives its
    /// TTL (or its token's, if shorter), as after `vault read`: nothing renews
    /// or revokes it. `-v` prints the lease (id, duration, renewable) on stderr.
    #[arg(value_name = "PATH")]
    path: String,

    /// Read this KV v2 version of the secret (the same as `?version=N` in the
    /// path; Vault's `-version=N` is read as this).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    secret_version: Option<u64>,

    /// Print only this field of the secret (the same as `#NAME` in the path;
    /// Vault's `-field=NAME` is read as this).
    #[arg(long, value_name = "NAME")]
    field: Option<String>,

    /// Output format [default: json for a whole secret, raw for a field]
    /// (Vault's `-format=json` is read as this).
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,

    /// Print `{"data": ..., "metadata": {"version": N, "created_time": ...}}`:
    /// the value with its KV v2 version's metadata (`null` on KV v1), JSON
    /// only. The version is what `put --cas` takes.
    #[arg(long)]
    with_metadata: bool,
}

/// How `get` prints the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Pretty JSON (a field: its JSON value, a string in quotes).
    Json,
    /// The value exactly as stored: a field's text, a mapping's compact JSON.
    /// No newline is added unless stdout is a terminal.
    Raw,
    /// `KEY='value'` lines, quoted for a POSIX shell (a whole secret only;
    /// every key must be a valid variable name).
    Env,
}

/// Vault CLI flags `get` reads as its own: `-version`, `-field`, `-format`
/// (each as `-flag=value` or `-flag value`).
const VAULT_CLI_FLAGS: [(&str, &str); 3] = [
    ("-version", "--secret-version"),
    ("-field", "--field"),
    ("-format", "--format"),
];

/// The command line with the Vault CLI's single-dash flags of `get` spelled
/// as this tool's (`-version=3` is `--secret-version=3`), or a usage failure
/// for `get --version N`, which would read as the tool's own version flag.
/// Only the arguments of `get` (up to a `--`) are looked at.
pub(crate) fn vault_cli_forms(
    args: Vec<std::ffi::OsString>,
) -> Result<Vec<std::ffi::OsString>, Failure> {
    let Some(get) = args
        .iter()
        .skip(1)
        .position(|a| !a.to_string_lossy().starts_with('-'))
        .map(|i| i + 1)
        .filter(|&i| args[i] == "get")
    else {
        return Ok(args);
    };
    let mut out = args[..=get].to_vec();
    let mut rest = args[get + 1..].iter();
    while let Some(arg) = rest.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg.clone());
            continue;
        };
        if text == "--" {
            out.push(arg.clone());
            out.extend(rest.cloned());
            break;
        }
        let (flag, value) = match text.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (text, None),
        };
        if flag == "--version" {
            let n = value
                .map(str::to_owned)
                .or_else(|| {
                    let next = rest.clone().next()?.to_str()?;
                    next.parse::<u64>().is_ok().then(|| next.to_owned())
                })
                .unwrap_or_else(|| "N".to_owned());
            return Err(Failure::usage(
                "get",
                ErrorKind::UnknownArgument,
                format!(
                    "unexpected argument '--version': a secret's version is \
                     '--secret-version {n}' (or `?version={n}` in the path)"
                ),
            ));
        }
        match VAULT_CLI_FLAGS.iter().find(|(vault, _)| *vault == flag) {
            Some((_, ours)) => out.push(match value {
                Some(value) => format!("{ours}={value}").into(),
                None => (*ours).into(),
            }),
            None => out.push(arg.clone()),
        }
    }
    Ok(out)
}

/// The parts of a `get` path the arguments must agree with.
struct PathParts {
    has_version: bool,
    has_field: bool,
}

/// Looks at the path the way the library parses it (`?` before `#`).
fn path_parts(path: &str) -> PathParts {
    let (rest, field) = match path.split_once('#') {
        Some((rest, _)) => (rest, true),
        None => (path, false),
    };
    PathParts {
        has_version: rest.contains('?'),
        has_field: field,
    }
}

/// Reads the secret as `VaultSecret::run()` does and prints it.
pub(crate) async fn run(args: GetArgs) -> Result<u8, Failure> {
    let mut parts = path_parts(&args.path);
    if args.field.is_some() && parts.has_field {
        return Err(Failure::usage(
            "get",
            ErrorKind::ArgumentConflict,
            format!(
                "the argument '--field <NAME>' cannot be used with a path that has \
                 `#field` (`{}`); give the field once",
                args.path
            ),
        ));
    }
    parts.has_field |= args.field.is_some();
    if args.secret_version.is_some() && parts.has_version {
        return Err(Failure::usage(
            "get",
            ErrorKind::ArgumentConflict,
            format!(
                "the argument '--secret-version <N>' cannot be used with a path that has \
                 `?version=` (`{}`); give the version once",
                args.path
            ),
        ));
    }
    if args.format == Some(Format::Env) && parts.has_field {
        return Err(Failure::usage(
            "get",
            ErrorKind::ArgumentConflict,
            "'--format env' prints a whole secret as KEY=value lines; \
             drop the `#field`, or use '--format raw' for one field",
        ));
    }
    if args.with_metadata {
        return with_metadata(&args).await;
    }
    let mut secret = VaultSecret::new(args.path.as_str());
    if let Some(version) = args.secret_version {
        secret = secret.version(version);
    }
    if let Some(field) = &args.field {
        secret = secret.field(field.as_str());
    }
    let value = match secret.run().await {
        Ok(value) => value,
        Err(vault_secret::Error::WrongEngine {
            use_api: ReadApi::Lease,
            ..
        }) if args.secret_version.is_none() && !parts.has_version => {
            let path = match &args.field {
                Some(field) => format!("{}#{field}", args.path),
                None => args.path.clone(),
            };
            read_leased(&path).await?
        }
        Err(e) => return Err(e.into()),
    };
    let format = args.format.unwrap_or(if parts.has_field {
        Format::Raw
    } else {
        Format::Json
    });
    let (text, newline) = render(&value, format, &args.path)?;
    output::print(&text, newline)?;
    Ok(0)
}

/// `get --with-metadata`: the value and its version's metadata, as JSON.
async fn with_metadata(args: &GetArgs) -> Result<u8, Failure> {
    if args.format.is_some_and(|f| f != Format::Json) {
        return Err(Failure::usage(
            "get",
            ErrorKind::ArgumentConflict,
            "'--with-metadata' prints JSON; drop '--format' or use '--format json'",
        ));
    }
    let path = match args.secret_version {
        Some(version) => match args.path.split_once('#') {
            Some((path, field)) => format!("{path}?version={version}#{field}"),
            None => format!("{}?version={version}", args.path),
        },
        None => args.path.clone(),
    };
    let vault = vault_secret::VaultClient::from_env().await?;
    let read = vault.read_versioned(&path).await;
    // The token this run logged in with does not outlive it.
    if let Err(e) = vault.shutdown().await {
        tracing::debug!(error = %e, "could not revoke the token");
    }
    let read = read?;
    let (data, _) = render(&read.value, Format::Json, &args.path)?;
    let metadata = serde_json::to_string_pretty(&read.metadata)
        .map_err(|e| Failure::new(Exit::Other, format!("cannot format JSON: {e}")))?;
    // Spliced as text, so the value is never copied into another JSON tree.
    let mut text = Zeroizing::new(String::with_capacity(
        2 * (data.len() + metadata.len()) + 32,
    ));
    text.push_str("{\n  \"data\": ");
    indented(&mut text, &data);
    text.push_str(",\n  \"metadata\": ");
    indented(&mut text, &metadata);
    text.push_str("\n}");
    output::print(&text, true)?;
    Ok(0)
}

/// Appends pretty JSON `json` one level deeper (a newline in JSON text is
/// always structure: inside strings it is escaped).
fn indented(out: &mut String, json: &str) {
    for c in json.chars() {
        out.push(c);
        if c == '\n' {
            out.push_str("  ");
        }
    }
}

/// Issues a dynamic secret and leaves its lease to its TTL (keeping leases
/// alive is `exec`'s job).
async fn read_leased(path: &str) -> Result<SecretValue, Failure> {
    let client = VaultClient::from_env().await?;
    let lease = client.lease(path).await?;
    let info = lease.lease();
    tracing::info!(
        lease_id = %info.id,
        duration_s = info.duration.as_secs(),
        renewable = info.renewable,
        "lease issued; it lives its TTL (not renewed nor revoked)"
    );
    let value = lease.current();
    lease.detach();
    Ok(value)
}

/// The text to print, and whether a newline follows it.
fn render(
    value: &SecretValue,
    format: Format,
    path: &str,
) -> Result<(Zeroizing<String>, bool), Failure> {
    match format {
        Format::Raw => Ok((
            Zeroizing::new(value.expose_secret().to_owned()),
            output::stdout_is_terminal(),
        )),
        Format::Json => {
            let mut json = match value.kind() {
                // A string field: print it as a JSON string.
                ValueKind::Text => Value::String(value.expose_secret().to_owned()),
                ValueKind::Json => value.to_json().map_err(vault_secret::Error::from)?,
            };
            let text = serde_json::to_string_pretty(&json)
                .map_err(|e| Failure::new(Exit::Other, format!("cannot format JSON: {e}")));
            secret_core::zeroize_json(&mut json);
            Ok((Zeroizing::new(text?), true))
        }
        Format::Env => {
            let mut map = vars::secret_mapping(value, path, "'--format env'")?;
            let lines = vars::mapping_vars(path, &map, "");
            vars::wipe_map(&mut map);
            let mut text = Zeroizing::new(String::new());
            for (name, value) in lines? {
                text.push_str(&name);
                text.push('=');
                text.push_str(&vars::shell_quote(&value));
                text.push('\n');
            }
            Ok((text, false))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts_follow_the_library_order() {
        let p = path_parts("secret/app?version=2#pass?word");
        assert!(p.has_version && p.has_field);
        let p = path_parts("secret/app#what?version=2");
        assert!(!p.has_version && p.has_field);
        let p = path_parts("secret/app");
        assert!(!p.has_version && !p.has_field);
    }

    fn forms(args: &[&str]) -> Result<Vec<String>, Failure> {
        let args = args.iter().map(std::ffi::OsString::from).collect();
        vault_cli_forms(args).map(|out| out.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn vault_cli_flags_of_get_are_read_as_ours() {
        assert_eq!(
            forms(&[
                "vs",
                "-v",
                "get",
                "-version=3",
                "-field",
                "pw",
                "-format=json",
                "s/p"
            ])
            .unwrap(),
            [
                "vs",
                "-v",
                "get",
                "--secret-version=3",
                "--field",
                "pw",
                "--format=json",
                "s/p"
            ]
        );
        // Other subcommands, and what follows `--`, are left alone.
        let exec = [
            "vs",
            "exec",
            "--secret",
            "A=s/p#a",
            "--",
            "app",
            "-version=3",
        ];
        assert_eq!(forms(&exec).unwrap(), exec);
        let after = ["vs", "get", "s/p", "--", "-field=x"];
        assert_eq!(forms(&after).unwrap(), after);
        assert_eq!(forms(&["vs", "--version"]).unwrap(), ["vs", "--version"]);
    }

    #[test]
    fn get_version_names_the_secret_version_flag() {
        for (args, n) in [
            (&["vs", "get", "s/p", "--version", "4"][..], "4"),
            (&["vs", "get", "--version=5", "s/p"], "5"),
            (&["vs", "get", "s/p", "--version"], "N"),
        ] {
            let Err(Failure::Usage(error)) = forms(args) else {
                panic!("{args:?} should be a usage failure");
            };
            let text = error.to_string();
            assert!(
                text.contains(&format!("'--secret-version {n}'"))
                    && text.contains(&format!("?version={n}")),
                "{text}"
            );
        }
    }

    #[test]
    fn renders() {
        let mapping = SecretValue::json(serde_json::json!({"user": "u", "n": 1}));
        let (text, nl) = render(&mapping, Format::Json, "s/p").unwrap();
        assert_eq!(text.as_str(), "{\n  \"n\": 1,\n  \"user\": \"u\"\n}");
        assert!(nl);
        let (text, _) = render(&mapping, Format::Env, "s/p").unwrap();
        assert_eq!(text.as_str(), "n='1'\nuser='u'\n");
        let field = SecretValue::text("it's");
        let (text, _) = render(&field, Format::Raw, "s/p#f").unwrap();
        assert_eq!(text.as_str(), "it's");
        let (text, _) = render(&field, Format::Json, "s/p#f").unwrap();
        assert_eq!(text.as_str(), "\"it's\"");
        assert!(render(&field, Format::Env, "s/p#f").is_err());
    }
}
