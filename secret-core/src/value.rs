//! `SecretValue`: a redacted, zeroized secret that is text or structured JSON.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{DeserializeOwned, IntoDeserializer};

use crate::error::Error;

/// The name used in errors for a value that did not come through a named lookup.
const UNNAMED: &str = "<unnamed>";

/// Whether a value was given as text or as structured JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Plain text; it may still be a JSON document, readable with [`SecretValue::to_json`].
    Text,
    /// A JSON document (a mapping, list, number, ...).
    Json,
}

/// A secret value.
///
/// The content lives in a [`SecretString`]: it is zeroized on drop and
/// `Debug`/`Display` show a redaction marker. The text is read with
/// [`expose_secret`](Self::expose_secret); structured reads
/// ([`to_json`](Self::to_json), [`deserialize`](Self::deserialize),
/// [`field`](Self::field)) parse it on demand and their errors name the
/// secret, never its content.
///
/// ```
/// use secret_core::SecretValue;
///
/// let value = SecretValue::text(r#"{"ACCESS_KEY": "x"}"#).with_name("AWS");
/// assert_eq!(format!("{value}"), "[REDACTED]");
/// assert_eq!(value.field("ACCESS_KEY").unwrap().expose_secret(), "x");
/// ```
#[derive(Clone)]
pub struct SecretValue {
    name: Option<Arc<str>>,
    kind: ValueKind,
    content: SecretString,
}

impl SecretValue {
    /// A text value, kept exactly as given.
    pub fn text(text: impl Into<String>) -> Self {
        SecretValue {
            name: None,
            kind: ValueKind::Text,
            content: SecretString::from(text.into()),
        }
    }

    /// A structured value.
    ///
    /// The value is serialized into zeroized memory and the strings of the
    /// `serde_json::Value` given are zeroized before it is dropped.
    pub fn json(mut value: serde_json::Value) -> Self {
        let content = SecretString::from(value.to_string());
        zeroize_json(&mut value);
        SecretValue {
            name: None,
            kind: ValueKind::Json,
            content,
        }
    }

    /// A structured value from its JSON text, checked to be a JSON document.
    pub fn from_json_text(text: impl Into<String>) -> Result<Self, Error> {
        let value = SecretValue {
            name: None,
            kind: ValueKind::Json,
            content: SecretString::from(text.into()),
        };
        serde_json::from_str::<serde::de::IgnoredAny>(value.expose_secret())
            .map_err(|e| value.shape_error("a JSON document", None, syntax_detail(&e)))?;
        Ok(value)
    }

    /// Names the value, so errors about it say which secret they concern.
    pub fn with_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The secret's name, when it came through a named lookup.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether the value was given as text or as JSON.
    pub fn kind(&self) -> ValueKind {
        self.kind
    }

    /// The value's exact text (for a JSON value, its JSON text).
    ///
    /// This is the one way to read the raw value; keep what it returns short-lived.
    pub fn expose_secret(&self) -> &str {
        self.content.expose_secret()
    }

    /// The value as JSON: a JSON value as is, a text value when it is a JSON document.
    pub fn to_json(&self) -> Result<serde_json::Value, Error> {
        serde_json::from_str(self.expose_secret())
            .map_err(|e| self.shape_error("JSON", None, syntax_detail(&e)))
    }

    /// Reads the value into a caller's type.
    ///
    /// A text value that is a JSON document is read as that document; any
    /// other text is read as a plain string. The error names the secret, the
    /// target type and the place in the value, never the content.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let text = self.expose_secret();
        let target = short_type_name::<T>();
        let mut de = serde_json::Deserializer::from_str(text);
        let error = match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Ok(value) => match de.end() {
                Ok(()) => return Ok(value),
                Err(trailing) => (None, syntax_detail(&trailing)),
            },
            Err(json_err) => {
                let path = json_err.path().to_string();
                let inner = json_err.into_inner();
                let detail = if inner.is_data() {
                    redact_data_error(&inner.to_string())
                } else {
                    syntax_detail(&inner)
                };
                ((path != ".").then_some(path), detail)
            }
        };
        if self.kind == ValueKind::Text {
            // Text that is not a JSON document of the right shape may still be a plain string.
            let plain: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
                text.into_deserializer();
            if let Ok(value) = T::deserialize(plain) {
                return Ok(value);
            }
        }
        Err(self.shape_error(&format!("`{target}`"), error.0, error.1))
    }

    /// One field of a mapping value, as its own secret value.
    ///
    /// A string field becomes a text value with the string's exact content;
    /// any other field becomes a JSON value.
    pub fn field(&self, key: &str) -> Result<SecretValue, Error> {
        let mut map = self.to_mapping()?;
        let field = map.remove(key).ok_or_else(|| Error::MissingField {
            secret: self.display_name().to_owned(),
            field: key.to_owned(),
        })?;
        let value = match field {
            serde_json::Value::String(s) => SecretValue::text(s),
            other => SecretValue::json(other),
        };
        Ok(match &self.name {
            Some(name) => value.with_name(format!("{name}#{key}")),
            None => value,
        })
    }

    /// The value as a JSON mapping, or an error naming the secret.
    pub fn to_mapping(&self) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
        match self.to_json()? {
            serde_json::Value::Object(map) => Ok(map),
            other => Err(self.shape_error(
                "a JSON mapping",
                None,
                format!("it is {}", json_type_name(&other)),
            )),
        }
    }

    pub(crate) fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(UNNAMED)
    }

    pub(crate) fn shape_error(&self, target: &str, path: Option<String>, detail: String) -> Error {
        Error::Shape {
            secret: self.display_name().to_owned(),
            target: target.to_owned(),
            path,
            detail,
        }
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("content", &self.content)
            .finish()
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Zeroizes every string in a parsed JSON value (keys are names and stay),
/// for the copies that parsing a secret leaves behind. Use it on a mapping with
/// `map.values_mut().for_each(zeroize_json)`.
pub fn zeroize_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => zeroize::Zeroize::zeroize(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(zeroize_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(zeroize_json),
        _ => {}
    }
}

/// "a string", "a number", ... for messages about a JSON value's type.
pub(crate) fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// A syntax error's position, without the parser's view of the content.
fn syntax_detail(err: &serde_json::Error) -> String {
    format!(
        "not valid JSON (line {}, column {})",
        err.line(),
        err.column()
    )
}

/// serde's data errors quote the offending value (`invalid type: string "hunter2", ...`);
/// keep only what is safe: missing/unknown field names and what was expected.
fn redact_data_error(message: &str) -> String {
    // serde_json appends " at line L column C" to data errors.
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    if message.starts_with("missing field") || message.starts_with("duplicate field") {
        return message.to_owned();
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let field = rest.split(',').next().unwrap_or(rest);
        return format!("unknown field {field}");
    }
    let expected = message.rsplit_once(", expected ").map(|(_, e)| e);
    let what = if message.starts_with("invalid type") {
        "wrong type"
    } else if message.starts_with("invalid length") {
        "wrong length"
    } else if message.starts_with("unknown variant") {
        "unknown variant"
    } else {
        "invalid value"
    };
    match expected {
        Some(expected) => format!("{what}, expected {expected}"),
        None => what.to_owned(),
    }
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    // Keep generic arguments readable: shorten only the leading path.
    let head_end = full.find('<').unwrap_or(full.len());
    match full[..head_end].rfind("::") {
        Some(i) => &full[i + 2..],
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Creds {
        user: String,
        port: u16,
    }

    #[test]
    fn debug_and_display_are_pinned_and_redacted() {
        let v = SecretValue::text("hunter2").with_name("DB_PASSWORD");
        assert_eq!(
            format!("{v:?}"),
            r#"SecretValue { name: Some("DB_PASSWORD"), kind: Text, content: SecretBox<str>([REDACTED]) }"#
        );
        assert_eq!(format!("{v}"), "[REDACTED]");
        assert_eq!(format!("{v:#?}").matches("hunter2").count(), 0);
        let j = SecretValue::json(serde_json::json!({"k": "hunter2"}));
        assert_eq!(
            format!("{j:?}"),
            "SecretValue { name: None, kind: Json, content: SecretBox<str>([REDACTED]) }"
        );
    }

    #[test]
    fn text_is_read_exactly() {
        let raw = "  spaced {not json} \n";
        assert_eq!(SecretValue::text(raw).expose_secret(), raw);
        let json_text = r#"{"a":  1}"#;
        assert_eq!(SecretValue::text(json_text).expose_secret(), json_text);
    }

    #[test]
    fn text_that_is_json_reads_as_structured_data() {
        let v = SecretValue::text(r#"{"ACCESS_KEY": "x", "n": 2}"#);
        assert_eq!(
            v.to_json().unwrap(),
            serde_json::json!({"ACCESS_KEY": "x", "n": 2})
        );
        assert_eq!(v.field("ACCESS_KEY").unwrap().expose_secret(), "x");
        assert_eq!(v.field("n").unwrap().kind(), ValueKind::Json);
        assert_eq!(v.field("n").unwrap().expose_secret(), "2");
    }

    #[test]
    fn malformed_json_error_names_secret_not_content() {
        let v = SecretValue::text("{\"pw\": \"hunter2\"").with_name("DB");
        let err = v.to_json().unwrap_err().to_string();
        assert!(err.contains("secret `DB`"), "{err}");
        assert!(err.contains("not valid JSON"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = SecretValue::from_json_text("hunter2")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("<unnamed>") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn typed_read_works_and_errors_never_show_content() {
        let v = SecretValue::text(r#"{"user": "admin", "port": 5432}"#).with_name("DB");
        assert_eq!(
            v.deserialize::<Creds>().unwrap(),
            Creds {
                user: "admin".into(),
                port: 5432
            }
        );

        let bad = SecretValue::text(r#"{"user": "admin", "port": "hunter2"}"#).with_name("DB");
        let err = bad.deserialize::<Creds>().unwrap_err().to_string();
        assert_eq!(
            err,
            "secret `DB` cannot be read as `Creds` at `port`: wrong type, expected u16"
        );

        let missing = SecretValue::text(r#"{"user": "hunter2"}"#).with_name("DB");
        let err = missing.deserialize::<Creds>().unwrap_err().to_string();
        assert!(err.contains("missing field `port`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn plain_text_reads_as_a_string() {
        let v = SecretValue::text("not json at all");
        assert_eq!(v.deserialize::<String>().unwrap(), "not json at all");
        // A JSON string document reads as its content.
        assert_eq!(
            SecretValue::text("\"q\"").deserialize::<String>().unwrap(),
            "q"
        );
        let err = SecretValue::text("hunter2")
            .deserialize::<u32>()
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let v = SecretValue::json(serde_json::json!(1));
        assert_eq!(v.deserialize::<u8>().unwrap(), 1);
        let err = SecretValue::from_json_text("1 2").unwrap_err();
        assert!(matches!(err, Error::Shape { .. }));
    }

    #[test]
    fn field_of_non_mapping_or_missing_is_an_error() {
        let v = SecretValue::text("[1,2]").with_name("L");
        let err = v.field("a").unwrap_err().to_string();
        assert_eq!(
            err,
            "secret `L` cannot be read as a JSON mapping: it is a list"
        );
        let m = SecretValue::text(r#"{"a": 1}"#).with_name("M");
        assert!(matches!(
            m.field("b").unwrap_err(),
            Error::MissingField { ref secret, ref field } if secret == "M" && field == "b"
        ));
        assert_eq!(m.field("a").unwrap().name(), Some("M#a"));
    }

    #[test]
    fn zeroize_json_wipes_every_string() {
        let mut v = serde_json::json!({"a": "secret", "b": ["x", {"c": "y"}], "n": 1});
        zeroize_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": "", "b": ["", {"c": ""}], "n": 1})
        );
    }

    #[test]
    fn redaction_of_serde_messages() {
        assert_eq!(
            redact_data_error(r#"invalid type: string "hunter2", expected u16 at line 1 column 9"#),
            "wrong type, expected u16"
        );
        assert_eq!(
            redact_data_error("unknown field `x`, expected `a` or `b`"),
            "unknown field `x`"
        );
        assert_eq!(redact_data_error("invalid value: hunter2"), "invalid value");
    }
}
