//! The local context: in-process secrets, `PREFECT__CONTEXT__SECRETS__<NAME>`
//! variables and a TOML config file's `[context.secrets]` table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::error::Error;
use crate::file::{FileError, read_regular};
use crate::source::check_secret_name;
use crate::source::{Lookup, SecretFuture, SecretSource};
use crate::value::SecretValue;

/// The default prefix of environment context variables.
pub const DEFAULT_ENV_PREFIX: &str = "PREFECT__CONTEXT__SECRETS__";

/// The default config file, relative to the home directory.
pub const DEFAULT_CONFIG_FILE: &str = ".prefect/config.toml";

/// The first place a name is looked up: secrets the program set itself, then
/// environment context variables, then the config file.
///
/// Names are case-sensitive. The config file is read once, when the context
/// is built: an absent file is fine, a malformed one is an error naming the
/// file and line.
///
/// ```
/// use secret_core::{Env, LocalContext, SecretValue};
///
/// let ctx = LocalContext::builder()
///     .env(Env::from_map([("PREFECT__CONTEXT__SECRETS__TOKEN", "t")]))
///     .secret("OTHER", SecretValue::text("o"))
///     .build()
///     .unwrap();
/// # let _ = ctx;
/// ```
#[derive(Debug, Clone)]
pub struct LocalContext {
    in_process: HashMap<String, SecretValue>,
    env: Option<Env>,
    prefix: String,
    file: Option<PathBuf>,
    file_secrets: HashMap<String, SecretValue>,
}

/// Builds a [`LocalContext`].
#[derive(Debug, Clone)]
#[must_use]
pub struct LocalContextBuilder {
    in_process: HashMap<String, SecretValue>,
    env: Option<Env>,
    prefix: String,
    file: FileChoice,
}

#[derive(Debug, Clone)]
enum FileChoice {
    None,
    Default,
    Path(PathBuf),
}

impl LocalContext {
    /// A builder with no layers: add the ones you want.
    pub fn builder() -> LocalContextBuilder {
        LocalContextBuilder {
            in_process: HashMap::new(),
            env: None,
            prefix: DEFAULT_ENV_PREFIX.to_owned(),
            file: FileChoice::None,
        }
    }

    /// The process environment (default prefix) and `~/.prefect/config.toml`.
    pub fn from_env() -> Result<Self, Error> {
        Self::builder()
            .env(Env::process())
            .default_config_file()
            .build()
    }

    /// The config file this context read, if any was configured.
    pub fn config_file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    fn find(&self, name: &str) -> Result<Option<SecretValue>, Error> {
        check_secret_name(name)?;
        if let Some(value) = self.in_process.get(name) {
            return Ok(Some(value.clone()));
        }
        if let Some(env) = &self.env
            && let Some(text) = env.get(&format!("{}{name}", self.prefix))?
        {
            return Ok(Some(SecretValue::text(text)));
        }
        Ok(self.file_secrets.get(name).cloned())
    }
}

impl SecretSource for LocalContext {
    fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        Box::pin(async move {
            Ok(match self.find(name)? {
                Some(value) => Lookup::Found(value),
                None => Lookup::not_found(format!(
                    "no in-process secret, no variable `{}{name}`{}",
                    self.prefix,
                    match &self.file {
                        Some(path) => format!(", not in `{}`", path.display()),
                        None => String::new(),
                    }
                )),
            })
        })
    }
}

impl LocalContextBuilder {
    /// Adds (or replaces) an in-process secret.
    pub fn secret(mut self, name: impl Into<String>, value: SecretValue) -> Self {
        self.in_process.insert(name.into(), value);
        self
    }

    /// Reads environment context variables from `env`.
    pub fn env(mut self, env: Env) -> Self {
        self.env = Some(env);
        self
    }

    /// The environment variable prefix (default `PREFECT__CONTEXT__SECRETS__`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Reads `[context.secrets]` from this TOML file.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = FileChoice::Path(path.into());
        self
    }

    /// Reads `[context.secrets]` from `$HOME/.prefect/config.toml` (home from the
    /// builder's environment; skipped when `HOME` is unset).
    pub fn default_config_file(mut self) -> Self {
        self.file = FileChoice::Default;
        self
    }

    /// Builds the context, reading the config file now.
    pub fn build(self) -> Result<LocalContext, Error> {
        for name in self.in_process.keys() {
            check_secret_name(name)?;
        }
        let file = match self.file {
            FileChoice::None => None,
            FileChoice::Path(path) => Some(path),
            FileChoice::Default => {
                let env = self.env.clone().unwrap_or_else(Env::process);
                env.get("HOME")?
                    .filter(|home| !home.is_empty())
                    .map(|home| Path::new(&home).join(DEFAULT_CONFIG_FILE))
            }
        };
        let file_secrets = match &file {
            Some(path) => read_config_secrets(path)?,
            None => HashMap::new(),
        };
        Ok(LocalContext {
            in_process: self.in_process,
            env: self.env,
            prefix: self.prefix,
            file,
            file_secrets,
        })
    }
}

/// The largest config file read: far more than any `[context.secrets]`.
pub(crate) const MAX_CONFIG_FILE_LEN: u64 = 1024 * 1024;

/// The `[context.secrets]` table of a TOML file; an absent file gives none.
fn read_config_secrets(path: &Path) -> Result<HashMap<String, SecretValue>, Error> {
    let text = match read_config_text(path) {
        Ok(text) => text,
        Err(Unread::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(HashMap::new());
        }
        Err(Unread::Io(error)) => {
            return Err(Error::ConfigRead {
                path: path.to_owned(),
                error,
            });
        }
        Err(Unread::Unusable(what)) => {
            return Err(Error::ConfigUnusable {
                path: path.to_owned(),
                what,
            });
        }
    };
    let malformed = |line: usize, message: String| Error::ConfigMalformed {
        path: path.to_owned(),
        line,
        message,
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1);
        malformed(line, e.message().trim().to_owned())
    })?;
    let Some(context) = table.get("context") else {
        return Ok(HashMap::new());
    };
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(key))
            .map_or(1, |i| i + 1)
    };
    let context = context
        .as_table()
        .ok_or_else(|| malformed(line_of("context"), "`context` must be a table".into()))?;
    let Some(secrets) = context.get("secrets") else {
        return Ok(HashMap::new());
    };
    let secrets = secrets.as_table().ok_or_else(|| {
        malformed(
            line_of("secrets").max(line_of("[context.secrets]")),
            "`context.secrets` must be a table".into(),
        )
    })?;
    let mut out = HashMap::with_capacity(secrets.len());
    for (name, value) in secrets {
        check_secret_name(name)?;
        let value = match value {
            toml::Value::String(s) => SecretValue::text(s.clone()),
            other => {
                let json = serde_json::to_value(other).map_err(|_| {
                    malformed(
                        line_of(name),
                        format!("secret `{name}` cannot be represented as JSON"),
                    )
                })?;
                SecretValue::json(json)
            }
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Why the config file's text was not read.
enum Unread {
    Io(std::io::Error),
    /// Not a regular file, or too large: what it is instead.
    Unusable(String),
}

/// The config file's text, at most [`MAX_CONFIG_FILE_LEN`] bytes, from a
/// regular file only (see [`crate::file`]).
fn read_config_text(path: &Path) -> Result<zeroize::Zeroizing<String>, Unread> {
    let mut bytes = read_regular(path, MAX_CONFIG_FILE_LEN).map_err(|e| match e {
        FileError::Io(e) => Unread::Io(e),
        FileError::Directory => Unread::Unusable("a directory, not a regular file".into()),
        FileError::NotRegular(kind) => Unread::Unusable(format!("{kind}, not a regular file")),
        FileError::TooLarge { max } => Unread::Unusable(format!("larger than {max} bytes")),
    })?;
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(zeroize::Zeroizing::new(text)),
        Err(e) => {
            // Wipe the bytes that came back with the error.
            let mut back = zeroize::Zeroizing::new(e.into_bytes());
            back.clear();
            Err(Unread::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A FIFO with no writer and a symlink to `/dev/zero` are refused at
    /// once, naming the file, rather than hanging or reading forever.
    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_as_config_file_is_refused_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config-fifo.toml");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
        let zero = dir.path().join("config-zero.toml");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_CONFIG_FILE_LEN as usize + 1]).unwrap();
        let started = std::time::Instant::now();
        for (path, phrase) in [
            (&fifo, "a FIFO"),
            (&zero, "a device"),
            (&big, "larger than"),
        ] {
            let err = LocalContext::builder()
                .config_file(path)
                .build()
                .unwrap_err();
            assert!(matches!(&err, Error::ConfigUnusable { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.contains(phrase), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    fn file(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    async fn get(ctx: &LocalContext, name: &str) -> Option<String> {
        ctx.resolve(name)
            .await
            .unwrap()
            .into_found()
            .map(|v| v.expose_secret().to_owned())
    }

    #[tokio::test]
    async fn in_process_then_env_then_file() {
        let f = file("[context.secrets]\nA = \"file-a\"\nB = \"file-b\"\nC = \"file-c\"\n");
        let ctx = LocalContext::builder()
            .secret("A", SecretValue::text("mem-a"))
            .env(Env::from_map([
                ("PREFECT__CONTEXT__SECRETS__A", "env-a"),
                ("PREFECT__CONTEXT__SECRETS__B", "env-b"),
            ]))
            .config_file(f.path())
            .build()
            .unwrap();
        assert_eq!(get(&ctx, "A").await.as_deref(), Some("mem-a"));
        assert_eq!(get(&ctx, "B").await.as_deref(), Some("env-b"));
        assert_eq!(get(&ctx, "C").await.as_deref(), Some("file-c"));
        assert_eq!(get(&ctx, "D").await, None);
    }

    #[tokio::test]
    async fn env_names_are_case_sensitive_and_prefix_configurable() {
        let env = Env::from_map([("MYAPP_SECRET_Token", "t")]);
        let ctx = LocalContext::builder()
            .env(env)
            .prefix("MYAPP_SECRET_")
            .build()
            .unwrap();
        assert_eq!(get(&ctx, "Token").await.as_deref(), Some("t"));
        assert_eq!(get(&ctx, "TOKEN").await, None);
    }

    #[tokio::test]
    async fn not_found_says_where_it_looked() {
        let ctx = LocalContext::builder()
            .env(Env::from_map::<[(&str, &str); 0], _, _>([]))
            .build()
            .unwrap();
        match ctx.resolve("X").await.unwrap() {
            Lookup::NotFound(detail) => {
                assert_eq!(
                    detail,
                    "no in-process secret, no variable `PREFECT__CONTEXT__SECRETS__X`"
                )
            }
            Lookup::Found(_) => panic!("found"),
        }
    }

    #[tokio::test]
    async fn bad_names_are_errors() {
        let ctx = LocalContext::builder().build().unwrap();
        for name in ["", "A__B", "A=B"] {
            let err = ctx.resolve(name).await.unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{name}: {err}");
        }
        let err = LocalContext::builder()
            .secret("X__Y", SecretValue::text("v"))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("`X__Y`"), "{err}");
    }

    #[test]
    fn absent_file_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = LocalContext::builder()
            .config_file(dir.path().join("nope.toml"))
            .build();
        assert!(ctx.is_ok());
    }

    #[test]
    fn malformed_toml_names_file_and_line() {
        let f = file("[context.secrets]\nA = \"ok\"\nB = = \"hunter2\"\n");
        let err = LocalContext::builder()
            .config_file(f.path())
            .build()
            .unwrap_err();
        match &err {
            Error::ConfigMalformed { path, line, .. } => {
                assert_eq!(path, f.path());
                assert_eq!(*line, 3);
            }
            other => panic!("unexpected {other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&f.path().display().to_string()) && msg.contains("line 3"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn wrong_shape_is_malformed() {
        let f = file("context = 3\n");
        let err = LocalContext::builder()
            .config_file(f.path())
            .build()
            .unwrap_err();
        assert!(
            matches!(err, Error::ConfigMalformed { line: 1, .. }),
            "{err}"
        );
        let f = file("[context]\nsecrets = \"x\"\n");
        let err = LocalContext::builder()
            .config_file(f.path())
            .build()
            .unwrap_err();
        assert!(
            matches!(err, Error::ConfigMalformed { line: 2, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn structured_file_secrets_are_json() {
        let f = file(
            "[context.secrets.AWS_CREDENTIALS]\nACCESS_KEY = \"a\"\nSECRET_ACCESS_KEY = \"s\"\n",
        );
        let ctx = LocalContext::builder()
            .config_file(f.path())
            .build()
            .unwrap();
        let v = ctx
            .resolve("AWS_CREDENTIALS")
            .await
            .unwrap()
            .into_found()
            .unwrap();
        assert_eq!(v.field("ACCESS_KEY").unwrap().expose_secret(), "a");
    }

    #[test]
    fn default_file_comes_from_home() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".prefect")).unwrap();
        std::fs::write(
            home.path().join(".prefect/config.toml"),
            "[context.secrets]\nX = \"1\"\n",
        )
        .unwrap();
        let env = Env::from_map([("HOME", home.path().as_os_str().to_owned())]);
        let ctx = LocalContext::builder()
            .env(env)
            .default_config_file()
            .build()
            .unwrap();
        assert_eq!(
            ctx.config_file(),
            Some(home.path().join(".prefect/config.toml").as_path())
        );
        assert_eq!(ctx.file_secrets.len(), 1);
    }
}
