//! The trait every secret source implements.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Error;
use crate::value::SecretValue;

/// The future a [`SecretSource`] returns.
pub type SecretFuture<'a> = Pin<Box<dyn Future<Output = Result<Lookup, Error>> + Send + 'a>>;

/// The future [`SecretSource::resolve_many`] returns: one [`Lookup`] per
/// name, in the order asked.
pub type SecretsFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Lookup>, Error>> + Send + 'a>>;

/// What a source says about a name: found, or not found (and where it looked).
///
/// A failure (unreachable, denied, misconfigured) is the `Err` of the
/// surrounding `Result`, so the three outcomes are always told apart.
#[derive(Debug)]
#[must_use]
pub enum Lookup {
    /// The source has the secret.
    Found(SecretValue),
    /// The source does not have it; the text says where it looked (no values).
    NotFound(String),
}

impl Lookup {
    /// A "not found" with a short description of where the source looked.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Lookup::NotFound(detail.into())
    }

    /// The value, if found.
    pub fn into_found(self) -> Option<SecretValue> {
        match self {
            Lookup::Found(value) => Some(value),
            Lookup::NotFound(_) => None,
        }
    }
}

/// A place secrets can be looked up by name: the local context, the
/// environment, Vault, a cloud store, a file...
///
/// Implementations are cheap to share (`Arc<dyn SecretSource>` works) and
/// their `Debug` never shows a secret value.
///
/// ```
/// use secret_core::{Lookup, SecretFuture, SecretSource, SecretValue};
///
/// #[derive(Debug)]
/// struct Fixed;
///
/// impl SecretSource for Fixed {
///     fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
///         Box::pin(async move {
///             Ok(match name {
///                 "GREETING" => Lookup::Found(SecretValue::text("hello")),
///                 _ => Lookup::not_found("only GREETING is known"),
///             })
///         })
///     }
/// }
/// ```
pub trait SecretSource: Send + Sync + fmt::Debug {
    /// Looks a secret up by name.
    fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a>;

    /// Looks several secrets up at once: one [`Lookup`] per name, in order.
    /// A failure is the whole call's. The default asks
    /// [`resolve`](Self::resolve) for each name in turn; a backend that can
    /// do better (one read for names that land on the same remote secret,
    /// reads at the same time) overrides it.
    fn resolve_many<'a>(&'a self, names: &'a [&'a str]) -> SecretsFuture<'a> {
        Box::pin(async move {
            let mut lookups = Vec::with_capacity(names.len());
            for name in names {
                lookups.push(self.resolve(name).await?);
            }
            Ok(lookups)
        })
    }
}

impl<T: SecretSource + ?Sized> SecretSource for Arc<T> {
    fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        (**self).resolve(name)
    }
    fn resolve_many<'a>(&'a self, names: &'a [&'a str]) -> SecretsFuture<'a> {
        (**self).resolve_many(names)
    }
}

impl<T: SecretSource + ?Sized> SecretSource for Box<T> {
    fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        (**self).resolve(name)
    }
    fn resolve_many<'a>(&'a self, names: &'a [&'a str]) -> SecretsFuture<'a> {
        (**self).resolve_many(names)
    }
}

impl<T: SecretSource + ?Sized> SecretSource for &T {
    fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        (**self).resolve(name)
    }
    fn resolve_many<'a>(&'a self, names: &'a [&'a str]) -> SecretsFuture<'a> {
        (**self).resolve_many(names)
    }
}

/// Rejects names no source can hold: empty, or with `__` (which the
/// `PREFECT__CONTEXT__SECRETS__` convention reads as nesting).
pub(crate) fn check_secret_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.contains("__") {
        "it contains `__`, which environment context variables read as nesting"
    } else if name.contains('=') || name.contains('\0') {
        "it contains `=` or a NUL character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_owned(),
        reason,
    })
}
