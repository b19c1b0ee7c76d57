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

    /// Read this KV v2 version of the secret (the same as `?version=N` in the path).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    secret_version: Option<u64>,

    /// Output format [default: json for a whole secret, raw for a field].
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
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
    let parts = path_parts(&args.path);
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
    let mut secret = VaultSecret::new(args.path.as_str());
    if let Some(version) = args.secret_version {
        secret = secret.version(version);
    }
    let value = match secret.run().await {
        Ok(value) => value,
        Err(vault_secret::Error::WrongEngine {
            use_api: ReadApi::Lease,
            ..
        }) if args.secret_version.is_none() && !parts.has_version => {
            read_leased(&args.path).await?
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
