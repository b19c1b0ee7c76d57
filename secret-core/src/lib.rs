//! Secret values, secret sources and the resolver chain that plugs them together.
//!
//! - [`SecretValue`]: text or JSON, redacted in `Debug`/`Display`, zeroized on drop,
//!   read explicitly with [`SecretValue::expose_secret`] or parsed with
//!   [`SecretValue::deserialize`].
//! - [`SecretSource`]: the async trait every source implements (usable as `dyn`
//!   and behind `Arc`); its [`Lookup`] tells "found" from "not found", and a
//!   failure is an [`Error`].
//! - [`SecretChain`]: named sources tried in order; "not found" moves on, a
//!   failure stops (unless the source is optional).
//! - [`EnvironmentSource`] (a secret is the variable of its name) and
//!   [`EnvVarSecret`] (one variable, with a cast); [`LocalContext`] (secrets
//!   the program sets itself, and, for programs configured for the workflow
//!   library this crate grew from, its variable prefix and config file).
//! - Typed default secrets: [`AwsCredentials`], [`GcpCredentials`], [`GithubAccessToken`].
//!
//! This crate has no network code; backends such as Vault live in their own crates.
//!
//! # Example
//!
//! A chain of the local context then the environment, resolving the
//! `AWS_CREDENTIALS` variable into typed credentials:
//!
//! ```
//! use secret_core::{AwsCredentials, Env, EnvironmentSource, LocalContext, SecretChain};
//! use secrecy::ExposeSecret;
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! // In a program: `Env::process()`; a map here so the example is self-contained.
//! let env = Env::from_map([(
//!     "AWS_CREDENTIALS",
//!     r#"{"ACCESS_KEY": "AKIAEXAMPLE", "SECRET_ACCESS_KEY": "example-secret"}"#,
//! )]);
//! let chain = SecretChain::first_try("local", LocalContext::builder().env(env.clone()).build()?)
//!     .or_else("env", EnvironmentSource::new(env));
//!
//! let aws: AwsCredentials = chain.load().await?;
//! assert_eq!(aws.access_key.expose_secret(), "AKIAEXAMPLE");
//! assert!(!format!("{aws:?}").contains("example-secret"));
//! # Ok::<(), secret_core::Error>(())
//! # }).unwrap();
//! ```

mod chain;
mod defaults;
mod env;
mod env_var;
mod error;
pub mod file;
mod local;
mod source;
#[cfg(feature = "testing")]
pub mod testing;
mod value;

pub use chain::SecretChain;
pub use defaults::{AwsCredentials, DefaultSecret, GcpCredentials, GithubAccessToken};
pub use env::Env;
pub use env_var::{Cast, EnvVarSecret, EnvironmentSource};
pub use error::{Attempt, BoxError, Error, Outcome};
pub use local::{DEFAULT_CONFIG_FILE, DEFAULT_ENV_PREFIX, LocalContext, LocalContextBuilder};
pub use source::{Lookup, SecretFuture, SecretSource, SecretsFuture};
pub use value::{SecretValue, ValueKind, zeroize_json};

/// Re-exported so callers can name [`SecretString`](secrecy::SecretString) and
/// [`ExposeSecret`](secrecy::ExposeSecret) without a direct dependency.
pub use secrecy;

/// The README's examples, compiled (and where they need no environment,
/// run) as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
