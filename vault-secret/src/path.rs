//! Parsing `<mount>/<path>[?version=N][#field]`.

use crate::error::Error;
use crate::input;

/// A parsed secret reference: the path, and optionally a KV v2 version and a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretRef {
    /// The path without a leading or trailing slash, e.g. `secret/app/db`.
    pub(crate) path: String,
    pub(crate) version: Option<u64>,
    pub(crate) field: Option<String>,
}

impl SecretRef {
    /// Parses `secret/app?version=3#password` (URL order: query, then fragment).
    ///
    /// Refused (naming the path, shown escaped and cut short) when longer than
    /// [`input::MAX_PATH_LEN`] bytes, or holding a control character.
    pub(crate) fn parse(raw: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidPath {
            path: input::shown(raw),
            reason: reason.to_owned(),
        };
        if raw.len() > input::MAX_PATH_LEN {
            return Err(invalid(&format!(
                "it is {} bytes long; a path of more than {} bytes is refused",
                raw.len(),
                input::MAX_PATH_LEN
            )));
        }
        if raw.chars().any(char::is_control) {
            return Err(invalid(
                "it contains a control character (a line break, tab, NUL...)",
            ));
        }
        let (rest, field) = match raw.split_once('#') {
            Some((_, "")) => {
                return Err(invalid("the field after `#` is empty"));
            }
            Some((rest, field)) => (rest, Some(field.to_owned())),
            None => (raw, None),
        };
        let (path, version) = match rest.split_once('?') {
            Some((path, query)) => {
                let value = query
                    .strip_prefix("version=")
                    .ok_or_else(|| invalid("the only query it takes is `?version=N`"))?;
                (path, Some(parse_version(value).map_err(|r| invalid(&r))?))
            }
            None => (rest, None),
        };
        let path = path.trim().trim_matches('/');
        if path.is_empty() {
            return Err(invalid("it is empty; expected `<mount>/<path>`"));
        }
        if !path.contains('/') {
            return Err(invalid(
                "it names only a mount; expected `<mount>/<path>`, e.g. `secret/app`",
            ));
        }
        for segment in path.split('/') {
            match segment {
                "" => return Err(invalid("it has an empty segment (`//`)")),
                "." | ".." => return Err(invalid("`.` and `..` segments are not allowed")),
                _ => {}
            }
        }
        Ok(SecretRef {
            path: path.to_owned(),
            version,
            field,
        })
    }

    /// The part of the path below `mount` (which has no trailing slash).
    pub(crate) fn below(&self, mount: &str) -> Option<&str> {
        self.path
            .strip_prefix(mount)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|rest| !rest.is_empty())
    }

    /// The first segment: the mount guessed when the server will not say.
    pub(crate) fn first_segment(&self) -> &str {
        self.path.split('/').next().unwrap_or(&self.path)
    }
}

/// A KV v2 version: a whole number from 1.
pub(crate) fn parse_version(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(0) => Err("versions start at 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "version `{}` is not a whole number",
            input::shown(value)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_path() {
        let r = SecretRef::parse("/secret/test/path/").unwrap();
        assert_eq!(r.path, "secret/test/path");
        assert_eq!((r.version, r.field.as_deref()), (None, None));
        assert_eq!(r.first_segment(), "secret");
        assert_eq!(r.below("secret"), Some("test/path"));
        assert_eq!(r.below("secret/test"), Some("path"));
        assert_eq!(r.below("sec"), None);
        assert_eq!(r.below("secret/test/path"), None);
    }

    #[test]
    fn version_and_field() {
        let r = SecretRef::parse("team/kv/app?version=3#password").unwrap();
        assert_eq!(r.path, "team/kv/app");
        assert_eq!(r.version, Some(3));
        assert_eq!(r.field.as_deref(), Some("password"));
        let r = SecretRef::parse("secret/app#a#b").unwrap();
        assert_eq!(r.field.as_deref(), Some("a#b"));
    }

    #[test]
    fn bad_paths_are_named_errors() {
        for bad in [
            "",
            "/",
            "secret",
            "secret//app",
            "secret/../app",
            "secret/app#",
            "secret/app?v=1",
            "secret/app?version=0",
            "secret/app?version=x",
        ] {
            let err = SecretRef::parse(bad).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidPath { path, .. } if path == bad),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn control_characters_anywhere_are_refused_and_shown_escaped() {
        for bad in [
            "secret/a\nb",
            "secret/app#pass\tword",
            "secret/app?version=1\r",
            "secret/a\u{0}",
            "secret/a\u{7f}",
        ] {
            let err = SecretRef::parse(bad).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("control character"), "{bad:?}: {msg}");
            assert!(!msg.chars().any(char::is_control), "{bad:?}: {msg}");
        }
    }

    #[test]
    fn a_long_path_is_refused_and_not_echoed_whole() {
        let long = format!("secret/{}", "a".repeat(100_000));
        let msg = SecretRef::parse(&long).unwrap_err().to_string();
        assert!(msg.contains("bytes long"), "{msg}");
        assert!(msg.len() < 400, "{msg}");
        let limit = format!("secret/{}", "a".repeat(input::MAX_PATH_LEN - 7));
        assert!(SecretRef::parse(&limit).is_ok());
    }
}

/// Property tests of the path parser: any text gives a reference or an
/// `InvalidPath` (shown short, without control characters), never a panic;
/// what parses is a clean `<mount>/<path>`; and what is written from parts
/// parses back to them.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::transport::proptests::{interesting_char, text};

    /// A path segment: letters and some punctuation, sometimes odd.
    fn segment() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(vec!['a', 'z', '0', '-', '_', '.', 'é', '€']),
                1 => interesting_char().prop_filter("no separator or control", |c| {
                    !c.is_control() && !['/', '?', '#'].contains(c) && !c.is_whitespace()
                }),
            ],
            1..8,
        )
        .prop_map(String::from_iter)
        .prop_filter("not . or ..", |s| s != "." && s != "..")
    }

    fn raw_path() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => text(40),
            2 => (prop::collection::vec(prop_oneof![segment(), text(4)], 0..5), text(4))
                .prop_map(|(segments, tail)| format!("{}{tail}", segments.join("/"))),
            // Past the length limit, with multi-byte characters around the cut.
            1 => (1usize..3, text(4)).prop_map(|(n, tail)| {
                format!("secret/{}{tail}", "é".repeat(input::MAX_PATH_LEN / 2 * n - 4))
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_text_is_a_clean_reference_or_an_invalid_path(raw in raw_path()) {
            match SecretRef::parse(&raw) {
                Ok(r) => {
                    prop_assert!(raw.len() <= input::MAX_PATH_LEN);
                    prop_assert!(!raw.chars().any(char::is_control));
                    prop_assert!(r.path.contains('/'), "{:?}", r);
                    prop_assert!(!r.path.starts_with('/') && !r.path.ends_with('/'), "{:?}", r);
                    prop_assert!(!r.path.contains(['?', '#']), "{:?}", r);
                    prop_assert!(r.path.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
                    prop_assert!(r.version != Some(0));
                    prop_assert!(r.field.as_deref().is_none_or(|f| !f.is_empty()));
                    let mount = r.first_segment();
                    prop_assert!(r.below(mount).is_some(), "{:?}", r);
                    prop_assert_eq!(r.below(&r.path), None);
                }
                Err(Error::InvalidPath { path, reason }) => {
                    prop_assert_eq!(&path, &input::shown(&raw));
                    let message = Error::InvalidPath { path, reason }.to_string();
                    prop_assert!(!message.chars().any(char::is_control), "{}", message);
                    prop_assert!(message.chars().count() < 600, "{}", message);
                }
                Err(other) => prop_assert!(false, "not an InvalidPath: {other:?}"),
            }
        }

        #[test]
        fn a_reference_written_from_parts_parses_back_to_them(
            segments in prop::collection::vec(segment(), 2..6),
            slashes in (any::<bool>(), any::<bool>()),
            version in prop::option::of(1u64..),
            field in prop::option::of(text(10).prop_filter("a field", |f| {
                !f.is_empty() && !f.chars().any(char::is_control)
            })),
        ) {
            let path = segments.join("/");
            let mut raw = format!(
                "{}{path}{}",
                if slashes.0 { "/" } else { "" },
                if slashes.1 { "/" } else { "" }
            );
            if let Some(v) = version {
                raw.push_str(&format!("?version={v}"));
            }
            if let Some(f) = &field {
                raw.push('#');
                raw.push_str(f);
            }
            let r = SecretRef::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(r, SecretRef { path, version, field });
        }

        #[test]
        fn any_version_text_is_a_number_from_1_or_a_reason(
            raw in prop_oneof![
                text(24),
                (text(2), any::<u64>(), text(2)).prop_map(|(a, n, b)| format!("{a}{n}{b}")),
                (0u64..3).prop_map(|n| n.to_string()),
            ],
        ) {
            match parse_version(&raw) {
                Ok(n) => {
                    prop_assert!(n >= 1);
                    prop_assert_eq!(raw.trim().parse::<u64>().ok(), Some(n));
                }
                Err(reason) => prop_assert!(!reason.chars().any(char::is_control), "{}", reason),
            }
        }
    }
}
