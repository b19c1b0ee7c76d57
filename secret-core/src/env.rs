//! The environment, read through an injectable map so tests never mutate the process.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::error::Error;

/// Where environment variables are read from.
///
/// [`Env::process`] reads the process environment at each lookup;
/// [`Env::from_map`] reads a fixed map (tests, embedding programs).
/// `Debug` never shows values.
#[derive(Clone, Default)]
pub struct Env {
    map: Option<Arc<HashMap<String, OsString>>>,
    /// The names asked, when recording (shared by clones, so a chain built
    /// from this `Env` records into the same list).
    asked: Option<Arc<Mutex<Vec<String>>>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Env {
            map: None,
            asked: None,
        }
    }

    /// A fixed set of variables.
    pub fn from_map<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<OsString>,
    {
        Env {
            map: Some(Arc::new(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            )),
            asked: None,
        }
    }

    /// This environment, also recording every name asked (by it and its
    /// clones), for tests that check which variables a piece of code reads.
    pub fn recording(mut self) -> Self {
        self.asked = Some(Arc::default());
        self
    }

    /// The names asked so far, in order, repeats included (empty unless
    /// [`recording`](Self::recording)).
    pub fn names_asked(&self) -> Vec<String> {
        self.asked.as_ref().map_or_else(Vec::new, |asked| {
            asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
        })
    }

    /// A variable's value; `Ok(None)` when unset, an error naming the variable
    /// when its name cannot exist or its value is not UTF-8.
    pub fn get(&self, variable: &str) -> Result<Option<String>, Error> {
        check_variable_name(variable)?;
        if let Some(asked) = &self.asked {
            asked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(variable.to_owned());
        }
        let raw = match &self.map {
            Some(map) => map.get(variable).cloned(),
            None => std::env::var_os(variable),
        };
        raw.map(|value| {
            value.into_string().map_err(|_| Error::NonUtf8Variable {
                variable: variable.to_owned(),
            })
        })
        .transpose()
    }

    /// Calls `f` with the name and raw value of each of `names` that is
    /// set, in no particular order, without copying values where it can: for
    /// callers that look at many variables at once (a fixed map is walked
    /// once; the process environment is asked name by name). Not recorded
    /// by [`recording`](Self::recording), which tracks lookups.
    pub fn for_each_of<'a, I>(&self, names: I, mut f: impl FnMut(&str, &std::ffi::OsStr))
    where
        I: IntoIterator<Item = &'a str>,
        I::IntoIter: Clone,
    {
        let names = names.into_iter();
        match &self.map {
            Some(map) => {
                for (name, value) in map.iter() {
                    if names.clone().any(|n| n == name) {
                        f(name, value);
                    }
                }
            }
            None => {
                for name in names {
                    if let Some(value) = std::env::var_os(name) {
                        f(name, &value);
                    }
                }
            }
        }
    }

    /// Like [`get`](Self::get), but an unset variable is an error naming it.
    pub fn require(&self, variable: &str) -> Result<String, Error> {
        self.get(variable)?.ok_or_else(|| Error::MissingVariable {
            variable: variable.to_owned(),
        })
    }
}

impl fmt::Debug for Env {
    // Values may be secrets: show where they come from, never what they are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.map {
            None => f.write_str("Env::Process"),
            Some(map) => write!(f, "Env::Map({} variables)", map.len()),
        }
    }
}

/// A name the OS could hold as a variable: non-empty, no `=`, no NUL.
pub(crate) fn check_variable_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.contains('=') {
        "it contains `=`"
    } else if name.contains('\0') {
        "it contains a NUL character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_lookup_and_missing() {
        let env = Env::from_map([("A", "1")]);
        assert_eq!(env.get("A").unwrap().as_deref(), Some("1"));
        assert_eq!(env.get("B").unwrap(), None);
        assert!(matches!(
            env.require("B").unwrap_err(),
            Error::MissingVariable { variable } if variable == "B"
        ));
    }

    #[test]
    fn names_are_case_sensitive() {
        let env = Env::from_map([("Token", "1")]);
        assert_eq!(env.get("TOKEN").unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_value_is_an_error_naming_the_variable() {
        use std::os::unix::ffi::OsStringExt;
        let env = Env::from_map([("BAD", OsString::from_vec(vec![0xff, 0xfe]))]);
        let err = env.get("BAD").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable `BAD` is not valid UTF-8"
        );
    }

    #[test]
    fn impossible_names_are_errors_not_panics() {
        for name in ["", "A=B", "A\0B"] {
            assert!(matches!(
                Env::process().get(name).unwrap_err(),
                Error::InvalidName { .. }
            ));
        }
    }

    #[test]
    fn process_env_is_read() {
        // PATH is set in any environment that runs cargo.
        assert!(Env::process().get("PATH").unwrap().is_some());
    }

    #[test]
    fn for_each_of_visits_each_named_variable_that_is_set() {
        let env = Env::from_map([("A", "1"), ("B", "2"), ("C", "3")]);
        let mut seen = Vec::new();
        env.for_each_of(["A", "C", "D"], |name, value| {
            seen.push((name.to_owned(), value.to_owned()));
        });
        seen.sort();
        assert_eq!(seen, [("A".into(), "1".into()), ("C".into(), "3".into())]);
        let mut found = Vec::new();
        Env::process().for_each_of(["PATH", "SECRET_CORE_SURELY_UNSET"], |name, _| {
            found.push(name.to_owned());
        });
        let expected: Vec<String> = std::env::var_os("PATH")
            .map(|_| "PATH".to_owned())
            .into_iter()
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_recording_env_and_its_clones_record_every_name_asked() {
        let env = Env::from_map([("A", "1")]).recording();
        let clone = env.clone();
        env.get("A").unwrap();
        clone.get("B").unwrap();
        assert_eq!(env.names_asked(), ["A", "B"]);
        assert!(Env::from_map([("A", "1")]).names_asked().is_empty());
    }

    #[test]
    fn debug_never_shows_values() {
        let env = Env::from_map([("SECRET", "hunter2")]);
        assert_eq!(format!("{env:?}"), "Env::Map(1 variables)");
        assert_eq!(format!("{:?}", Env::process()), "Env::Process");
    }
}
