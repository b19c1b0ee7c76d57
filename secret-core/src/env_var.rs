//! Secrets read from plain environment variables: `EnvVarSecret` and `EnvironmentSource`.

use std::fmt;

use crate::env::Env;
use crate::env::check_variable_name;
use crate::error::Error;
use crate::source::{Lookup, SecretFuture, SecretSource};
use crate::value::SecretValue;

/// How to read a variable's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cast {
    /// A signed 64-bit integer (surrounding whitespace ignored).
    Integer,
    /// A finite 64-bit float (surrounding whitespace ignored).
    Float,
    /// `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case.
    Boolean,
    /// A JSON document.
    Json,
}

impl fmt::Display for Cast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cast::Integer => "an integer",
            Cast::Float => "a float",
            Cast::Boolean => "a boolean",
            Cast::Json => "JSON",
        })
    }
}

impl Cast {
    fn apply(self, variable: &str, text: &str) -> Result<SecretValue, Error> {
        let fail = |reason: String| Error::Cast {
            variable: variable.to_owned(),
            cast: self,
            reason,
        };
        let json = match self {
            Cast::Integer => {
                let n: i64 = text
                    .trim()
                    .parse()
                    .map_err(|e: std::num::ParseIntError| fail(e.to_string()))?;
                serde_json::Value::from(n)
            }
            Cast::Float => {
                let x: f64 = text
                    .trim()
                    .parse()
                    .map_err(|e: std::num::ParseFloatError| fail(e.to_string()))?;
                serde_json::Number::from_f64(x)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| fail("not a finite number".into()))?
            }
            Cast::Boolean => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => serde_json::Value::Bool(true),
                "false" | "0" | "no" | "off" => serde_json::Value::Bool(false),
                _ => return Err(fail("expected true/false, 1/0, yes/no or on/off".into())),
            },
            Cast::Json => {
                return SecretValue::from_json_text(text.to_owned()).map_err(|e| match e {
                    Error::Shape { detail, .. } => fail(detail),
                    other => other,
                });
            }
        };
        Ok(SecretValue::json(json))
    }
}

/// A secret read from an environment variable by its plain name.
///
/// ```
/// use secret_core::{Cast, Env, EnvVarSecret};
///
/// let env = Env::from_map([("PORT", "8080")]);
/// let port = EnvVarSecret::new("PORT").cast(Cast::Integer).env(env).get().unwrap();
/// assert_eq!(port.unwrap().deserialize::<u16>().unwrap(), 8080);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct EnvVarSecret {
    variable: String,
    cast: Option<Cast>,
    raise_if_missing: bool,
    env: Env,
}

impl EnvVarSecret {
    /// Reads `variable` from the process environment, as text, `None` when unset.
    pub fn new(variable: impl Into<String>) -> Self {
        EnvVarSecret {
            variable: variable.into(),
            cast: None,
            raise_if_missing: false,
            env: Env::process(),
        }
    }

    /// Parses the text as `cast`.
    pub fn cast(mut self, cast: Cast) -> Self {
        self.cast = Some(cast);
        self
    }

    /// Makes an unset variable an error naming it, instead of `None`.
    pub fn raise_if_missing(mut self, raise: bool) -> Self {
        self.raise_if_missing = raise;
        self
    }

    /// Reads from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// The variable's value (cast when asked), named after the variable.
    pub fn get(&self) -> Result<Option<SecretValue>, Error> {
        let Some(text) = self.env.get(&self.variable)? else {
            return if self.raise_if_missing {
                Err(Error::MissingVariable {
                    variable: self.variable.clone(),
                })
            } else {
                Ok(None)
            };
        };
        let text = zeroize::Zeroizing::new(text);
        let value = match self.cast {
            None => SecretValue::text(text.as_str()),
            Some(cast) => cast.apply(&self.variable, &text)?,
        };
        Ok(Some(value.with_name(self.variable.as_str())))
    }
}

/// A chain source that reads a secret from the environment variable of the same name.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentSource {
    env: Env,
}

impl EnvironmentSource {
    /// Reads from `env`.
    pub fn new(env: Env) -> Self {
        EnvironmentSource { env }
    }
}

impl SecretSource for EnvironmentSource {
    fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        Box::pin(async move {
            check_variable_name(name)?;
            Ok(match EnvVarSecret::new(name).env(self.env.clone()).get()? {
                Some(value) => Lookup::Found(value),
                None => Lookup::not_found(format!("no variable `{name}`")),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(value: &str, cast: Cast) -> Result<SecretValue, Error> {
        EnvVarSecret::new("V")
            .cast(cast)
            .env(Env::from_map([("V", value)]))
            .get()
            .map(|v| v.expect("set"))
    }

    #[test]
    fn plain_text_is_exact() {
        let v = EnvVarSecret::new("V")
            .env(Env::from_map([("V", " x ")]))
            .get()
            .unwrap()
            .unwrap();
        assert_eq!(v.expose_secret(), " x ");
        assert_eq!(v.name(), Some("V"));
    }

    #[test]
    fn casts_parse() {
        assert_eq!(
            read(" -42 ", Cast::Integer)
                .unwrap()
                .deserialize::<i64>()
                .unwrap(),
            -42
        );
        assert_eq!(
            read("2.5", Cast::Float)
                .unwrap()
                .deserialize::<f64>()
                .unwrap(),
            2.5
        );
        assert!(
            read("YES", Cast::Boolean)
                .unwrap()
                .deserialize::<bool>()
                .unwrap()
        );
        assert!(
            !read("0", Cast::Boolean)
                .unwrap()
                .deserialize::<bool>()
                .unwrap()
        );
        let j = read(r#"{"a": [1]}"#, Cast::Json).unwrap();
        assert_eq!(j.to_json().unwrap(), serde_json::json!({"a": [1]}));
    }

    #[test]
    fn bad_casts_name_the_variable_not_the_value() {
        for (value, cast) in [
            ("hunter2", Cast::Integer),
            ("hunter2", Cast::Float),
            ("inf", Cast::Float),
            ("hunter2", Cast::Boolean),
            ("{hunter2", Cast::Json),
        ] {
            let err = read(value, cast).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::Cast { .. }), "{msg}");
            assert!(
                msg.starts_with(&format!(
                    "environment variable `V` cannot be read as {cast}"
                )),
                "{msg}"
            );
            assert!(!msg.contains("hunter2"), "{msg}");
        }
    }

    #[test]
    fn missing_is_none_or_an_error_naming_the_variable() {
        let empty = Env::from_map([("OTHER", "1")]);
        assert!(
            EnvVarSecret::new("V")
                .env(empty.clone())
                .get()
                .unwrap()
                .is_none()
        );
        let err = EnvVarSecret::new("V")
            .env(empty)
            .raise_if_missing(true)
            .get()
            .unwrap_err();
        assert_eq!(err.to_string(), "environment variable `V` is not set");
    }

    #[test]
    fn empty_variable_name_is_an_error() {
        let err = EnvVarSecret::new("").get().unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }));
    }

    #[tokio::test]
    async fn environment_source_finds_and_misses() {
        let src = EnvironmentSource::new(Env::from_map([("A", "1")]));
        assert!(matches!(src.resolve("A").await.unwrap(), Lookup::Found(_)));
        assert!(
            matches!(src.resolve("B").await.unwrap(), Lookup::NotFound(d) if d == "no variable `B`")
        );
        assert!(src.resolve("").await.is_err());
    }
}
