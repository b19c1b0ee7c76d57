//! `vault-secret put`: write a secret's key/value mapping (or merge keys
//! into it with `--patch`), from arguments, files, stdin or a JSON file.
//! Prints the new version, never a value.

use std::io::Read;

use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};
use vault_secret::{Cas, VaultClient, Written};
use zeroize::Zeroizing;

use crate::exit::{Exit, Failure};
use crate::output;

/// What `put --help` warns about first.
pub(crate) const PUT_ABOUT: &str = "\
Write a secret's key/value mapping (a new version on KV v2), or merge keys into it with --patch.

Values typed on the command line (KEY=VALUE) are visible to other users of this machine \
(in `ps` and /proc) and stay in your shell history: give them as KEY=@FILE or KEY=- \
(standard input), or the whole mapping with --from-json FILE|-.

Prints the new version (never a value).";

/// Arguments of `put`.
#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// The secret: `<mount>/<path>`, e.g. `secret/app/db`.
    #[arg(value_name = "PATH")]
    path: String,

    /// KEY=VALUE, KEY=@FILE (the file's content, as it is) or KEY=- (standard
    /// input); values are strings.
    #[arg(value_name = "KEY=VALUE")]
    pairs: Vec<String>,

    /// A JSON object holding the whole mapping, from FILE or `-` (standard input).
    #[arg(long, value_name = "FILE|-")]
    from_json: Option<String>,

    /// Check-and-set (KV v2): write only if the current version is N;
    /// `--cas 0` writes only if the secret does not exist yet.
    #[arg(long, value_name = "N")]
    cas: Option<u64>,

    /// Merge the keys given into the latest version (KV v2) instead of
    /// replacing the whole mapping.
    #[arg(long)]
    patch: bool,

    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    format: Format,
}

/// How `put` reports the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line: `version N of PATH` (or `wrote PATH` on KV v1).
    Text,
    /// `{"path": ..., "version": N, "created_time": ...}`.
    Json,
}

/// The mapping to write, wiped on drop.
struct Data(Value);

impl Drop for Data {
    fn drop(&mut self) {
        secret_core::zeroize_json(&mut self.0);
    }
}

/// Where standard input went, so it is read at most once.
#[derive(Default)]
struct Stdin {
    used_by: Option<String>,
}

impl Stdin {
    fn take(&mut self, argument: &str) -> Result<Zeroizing<String>, Failure> {
        if let Some(first) = &self.used_by {
            return Err(bad_input(format!(
                "`-` (standard input) is used twice: by {first} and by {argument}; \
                 it can be read once"
            )));
        }
        self.used_by = Some(argument.to_owned());
        let mut bytes = Zeroizing::new(Vec::new());
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| bad_input(format!("cannot read standard input for {argument}: {e}")))?;
        text(bytes, argument, "standard input")
    }
}

fn text(
    bytes: Zeroizing<Vec<u8>>,
    argument: &str,
    from: &str,
) -> Result<Zeroizing<String>, Failure> {
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(bad_input(format!(
            "{from} for {argument} is not UTF-8 text"
        ))),
    }
}

fn bad_input(message: String) -> Failure {
    Failure::new(Exit::Config, message)
}

/// The content of `file` for `argument`; the error names both, never the content.
fn read_file(file: &str, argument: &str) -> Result<Zeroizing<String>, Failure> {
    let bytes = std::fs::read(file)
        .map(Zeroizing::new)
        .map_err(|e| bad_input(format!("cannot read the file `{file}` for {argument}: {e}")))?;
    text(bytes, argument, &format!("the file `{file}`"))
}

/// The mapping the arguments give, checked: every key once, `-` once.
fn collect(args: &PutArgs) -> Result<Data, Failure> {
    let mut stdin = Stdin::default();
    let mut map = Map::new();
    if let Some(source) = &args.from_json {
        let argument = format!("--from-json {source}");
        let raw = match source.as_str() {
            "-" => stdin.take(&argument)?,
            file => read_file(file, &argument)?,
        };
        // serde's message can quote the text: give only where it failed.
        let value: Value = serde_json::from_str(&raw).map_err(|e| {
            bad_input(format!(
                "{argument} is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let mut value = Data(value);
        match std::mem::take(&mut value.0) {
            Value::Object(object) => map = object,
            _ => {
                return Err(bad_input(format!(
                    "{argument} must hold a JSON object (a key/value mapping)"
                )));
            }
        }
    }
    for (i, pair) in args.pairs.iter().enumerate() {
        // The argument itself may be a value typed without its key: name
        // it by position only.
        let position = format!("argument {} after PATH", i + 1);
        let Some((key, value)) = pair.split_once('=') else {
            return Err(bad_input(format!(
                "{position} is not KEY=VALUE, KEY=@FILE or KEY=- (it has no `=`)"
            )));
        };
        if key.trim().is_empty() {
            return Err(bad_input(format!("{position} has an empty key")));
        }
        if map.contains_key(key) {
            return Err(bad_input(format!(
                "the key `{key}` is given twice ({position} and an earlier one); give each key once"
            )));
        }
        let value = match value {
            "-" => stdin.take(&format!("`{key}=-`"))?,
            v if v.starts_with('@') => read_file(&v[1..], &format!("`{key}=@{}`", &v[1..]))?,
            v => Zeroizing::new(v.to_owned()),
        };
        map.insert(key.to_owned(), Value::String(value.as_str().to_owned()));
    }
    if args.pairs.is_empty() && args.from_json.is_none() {
        return Err(bad_input(
            "nothing to write: give KEY=VALUE pairs, or the mapping with --from-json".into(),
        ));
    }
    Ok(Data(Value::Object(map)))
}

/// Writes the secret and prints its new version.
pub(crate) async fn run(args: PutArgs) -> Result<u8, Failure> {
    let data = collect(&args)?;
    let cas = args.cas.map(|n| match n {
        0 => Cas::MustNotExist,
        n => Cas::Version(n),
    });
    let vault = VaultClient::from_env().await?;
    let written = match (args.patch, cas) {
        (false, None) => vault.write(&args.path, &data.0).await,
        (false, Some(cas)) => vault.write_cas(&args.path, &data.0, cas).await,
        (true, None) => vault.patch(&args.path, &data.0).await,
        (true, Some(cas)) => vault.patch_cas(&args.path, &data.0, cas).await,
    };
    drop(data);
    // The token this run logged in with does not outlive it.
    if let Err(e) = vault.shutdown().await {
        tracing::debug!(error = %e, "could not revoke the token");
    }
    let written = written?;
    output::print(&report(&args.path, &written, args.format), true)?;
    Ok(0)
}

/// What `put` prints: the path and version, never a value.
fn report(path: &str, written: &Written, format: Format) -> String {
    match format {
        Format::Text => match written.version {
            Some(version) => format!("version {version} of {path}"),
            None => format!("wrote {path}"),
        },
        Format::Json => {
            let created = written
                .metadata
                .as_ref()
                .and_then(|m| m.created_time.clone());
            json!({"path": path, "version": written.version, "created_time": created}).to_string()
        }
    }
}
