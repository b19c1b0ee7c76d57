//! The failure model: what a call came back with (an [`Answer`], or an
//! [`ApiFailure`] classified once, here) and how a failure becomes the
//! crate's [`Error`]. The transport makes these; `auth`, `kv` and `api`
//! read them.
//!
//! What a user sees of it (which failures are retried and how often, leader
//! elections, deadlines, sealed servers, tolerant parsing, what is logged)
//! is written once, in the crate docs' "Behaviour under failure" section;
//! a change of rule here changes that text.

use std::fmt;

use secret_core::BoxError;

use crate::error::Error;
use crate::error::TransportKind;

/// A successful (2xx) answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    /// Wiped on drop: it can hold secret values and tokens.
    pub(crate) body: zeroize::Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Answer {
    /// The body as `T`, or a failure naming the status and content type
    /// (never serde's words, which can quote the body).
    pub(crate) fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiFailure> {
        serde_json::from_slice(&self.body).map_err(|_| ApiFailure::BadAnswer {
            status: self.status,
            content_type: self.content_type.clone(),
        })
    }
}

/// What the body of a failed answer was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// JSON; its messages (from `errors` or `error`) are in `errors`.
    Json,
    /// No body at all.
    Empty,
    /// Not JSON (an HTML page from a proxy, plain text): named by its content
    /// type, never shown.
    NotJson { content_type: Option<String> },
}

/// A failed call, classified once, here. `Debug` leaves the JSON body out
/// (a KV answer can carry data); the messages are the server's own.
pub(crate) enum ApiFailure {
    /// The server answered with a non-success status.
    Status {
        code: u16,
        /// The messages of `{"errors": [...]}` or `{"error": "..."}`; they
        /// never hold a secret, so they can be quoted.
        errors: Vec<String>,
        body: Body,
        /// The JSON body, for callers that read more from an error answer
        /// (KV v2 answers 404 with the metadata of a deleted version).
        json: Option<serde_json::Value>,
        attempts: u32,
    },
    /// A 2xx answer that is not the JSON the call expects.
    BadAnswer {
        status: u16,
        content_type: Option<String>,
    },
    /// The request did not complete.
    Transport {
        kind: TransportKind,
        reason: String,
        attempts: u32,
        /// reqwest's error, when there is one: the `source()` of the error it becomes.
        source: Option<BoxError>,
    },
    /// A token or namespace that cannot travel as an HTTP header.
    BadHeader { name: &'static str },
}

impl fmt::Debug for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiFailure::Status {
                code,
                errors,
                body,
                json,
                attempts,
            } => f
                .debug_struct("Status")
                .field("code", code)
                .field("errors", errors)
                .field("body", body)
                .field("json", &json.as_ref().map(|_| "[REDACTED]"))
                .field("attempts", attempts)
                .finish(),
            ApiFailure::BadAnswer {
                status,
                content_type,
            } => f
                .debug_struct("BadAnswer")
                .field("status", status)
                .field("content_type", content_type)
                .finish(),
            ApiFailure::Transport {
                kind,
                reason,
                attempts,
                source,
            } => f
                .debug_struct("Transport")
                .field("kind", kind)
                .field("reason", reason)
                .field("attempts", attempts)
                .field("source", source)
                .finish(),
            ApiFailure::BadHeader { name } => {
                f.debug_struct("BadHeader").field("name", name).finish()
            }
        }
    }
}

impl ApiFailure {
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            ApiFailure::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The server's messages, one line.
    pub(crate) fn messages(&self) -> String {
        match self {
            ApiFailure::Status { errors, body, .. } => describe_body(errors, body),
            other => other.to_string(),
        }
    }

    /// The server's (or the local) reason, one line, for auth attempts.
    pub(crate) fn reason(&self) -> String {
        match self {
            ApiFailure::Status { code, .. } => format!("{} (HTTP {code})", self.messages()),
            other => other.to_string(),
        }
    }

    /// Maps the failures every call shares (sealed, transport, other statuses)
    /// onto the crate's error; `api_path` names the endpoint.
    pub(crate) fn into_error(self, address: &str, api_path: &str) -> Error {
        match self {
            ApiFailure::Status {
                code: 503, errors, ..
            } if errors.iter().any(|m| m.contains("sealed")) => Error::Sealed {
                address: address.to_owned(),
            },
            ApiFailure::Status {
                code,
                attempts,
                body,
                errors,
                ..
            } => Error::Server {
                status: code,
                path: api_path.to_owned(),
                errors: status_messages(code, &errors, &body),
                attempts,
            },
            ApiFailure::BadAnswer {
                status,
                content_type,
            } => Error::Server {
                status,
                path: api_path.to_owned(),
                errors: vec![format!(
                    "the answer is not the JSON this call expects (content type {})",
                    content_type_name(content_type.as_deref())
                )],
                attempts: 1,
            },
            ApiFailure::Transport {
                kind,
                reason,
                attempts,
                source,
            } => Error::Transport {
                address: address.to_owned(),
                kind,
                reason: format!(
                    "{reason}{} (`{api_path}`, {})",
                    transport_hint(kind),
                    Attempts(attempts)
                ),
                source,
            },
            ApiFailure::BadHeader { name } => Error::config(
                name,
                "holds a character that cannot be sent in an HTTP header (a control character \
                 such as a newline?)",
            ),
        }
    }
}

/// The messages of an error answer with status `code`: the server's own,
/// tidied, else what the body was; a redirect says why it is not followed.
fn status_messages(code: u16, errors: &[String], body: &Body) -> Vec<String> {
    let mut messages = tidy(errors);
    if (300..400).contains(&code) {
        // A redirect to a host other than the active node the cluster
        // names (a proxy, a misconfigured node): the token would go along.
        messages.push(
            "the server answered with a redirect, which is not followed because the token \
             would go along; point VAULT_ADDR at the server that answers itself (the active \
             node)"
                .into(),
        );
    } else if messages.is_empty() {
        messages.push(describe_body(&[], body));
    }
    messages
}

/// What a transport failure of `kind` adds to its reason: the setting or
/// the fix, where one applies.
fn transport_hint(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Timeout => "; timed out (VAULT_CLIENT_TIMEOUT sets the limit per request)",
        TransportKind::NotTls => {
            " (the server does not speak TLS on this port: use http:// in VAULT_ADDR, or the \
             port of the HTTPS listener)"
        }
        _ => "",
    }
}

/// The server's messages with Vault's multi-error wrapping taken off.
fn tidy(errors: &[String]) -> Vec<String> {
    errors
        .iter()
        .map(|e| crate::error::tidy_server_message(e))
        .collect()
}

/// A content type as messages name it.
fn content_type_name(content_type: Option<&str>) -> &str {
    content_type.unwrap_or("none")
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiFailure::Status { code, .. } => write!(f, "HTTP {code}: {}", self.messages()),
            ApiFailure::BadAnswer {
                status,
                content_type,
            } => write!(
                f,
                "HTTP {status}: the answer is not the expected JSON (content type {})",
                content_type_name(content_type.as_deref())
            ),
            ApiFailure::Transport { reason, .. } => f.write_str(reason),
            ApiFailure::BadHeader { name } => {
                write!(f, "`{name}` cannot be sent as an HTTP header")
            }
        }
    }
}

struct Attempts(u32);

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("1 attempt"),
            n => write!(f, "{n} attempts"),
        }
    }
}

fn describe_body(errors: &[String], body: &Body) -> String {
    if !errors.is_empty() {
        return tidy(errors).join("; ");
    }
    match body {
        Body::Json => "no error message".into(),
        Body::Empty => "an empty answer".into(),
        Body::NotJson { content_type } => format!(
            "an answer that is not JSON (content type {}), perhaps from a proxy",
            content_type_name(content_type.as_deref())
        ),
    }
}

/// Reads the messages out of an error body: `{"errors": [...]}` (Vault),
/// `{"error": "..."}` (older servers, proxies), empty, or not JSON at all.
pub(crate) fn parse_error_body(
    content_type: Option<&str>,
    body: &[u8],
) -> (Vec<String>, Body, Option<serde_json::Value>) {
    if body.iter().all(u8::is_ascii_whitespace) {
        return (Vec::new(), Body::Empty, None);
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        let content_type = content_type.map(str::to_owned);
        return (Vec::new(), Body::NotJson { content_type }, None);
    };
    let mut errors = Vec::new();
    match json.get("errors") {
        Some(serde_json::Value::Array(items)) => {
            errors.extend(items.iter().filter_map(|e| e.as_str()).map(server_text));
        }
        Some(serde_json::Value::String(one)) => errors.push(server_text(one)),
        _ => {}
    }
    if let Some(serde_json::Value::String(one)) = json.get("error") {
        errors.push(server_text(one));
    }
    (errors, Body::Json, Some(json))
}

/// A server's error message with its control characters escaped (an
/// `ESC]0;...BEL` would retitle the terminal it is printed to), but for the
/// line breaks and tabs of Vault's multi-error layout, which messages tidy.
fn server_text(raw: &str) -> String {
    crate::input::escape_controls(&raw.replace("\r\n", "\n"), &['\n', '\t'])
}

/// The answers a standby gives while the cluster has no active node (seen on
/// OpenBao's and Vault's HA clusters): 503 "no active Vault instance found"
/// or 500 "local node not active but active cluster node not found". (A
/// redirect to the active node is the transport's to judge: it follows one
/// only to the node `sys/leader` names.)
pub(crate) fn is_election(status: u16, errors: &[String]) -> bool {
    let says = |needle: &str| errors.iter().any(|e| e.contains(needle));
    match status {
        503 => says("no active Vault instance"),
        500 => says("node not active") || says("active cluster node not found"),
        _ => false,
    }
}

/// A reqwest failure as the transport reports it: what kind of failure,
/// and its useful part in words (connection refused, timed out,
/// certificate...), naming the URL and the failure, never headers or bodies.
pub(crate) fn transport_failure(err: reqwest::Error, attempts: u32) -> ApiFailure {
    let kind = transport_kind(&err);
    let reason = crate::error::chain(&err);
    ApiFailure::Transport {
        kind,
        reason,
        attempts,
        source: Some(Box::new(err)),
    }
}

/// What kind of failure `err` is, from its type and its causes' types.
fn transport_kind(err: &reqwest::Error) -> TransportKind {
    #[cfg(any(feature = "rustls", feature = "rustls-ring"))]
    match crate::error::causes(err).find_map(|e| e.downcast_ref::<rustls::Error>()) {
        // rustls' words for "this port speaks plain HTTP".
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            return TransportKind::NotTls;
        }
        Some(_) => return TransportKind::Tls,
        None => {}
    }
    // native-tls' errors are opaque: a port that speaks plain HTTP is a TLS
    // failure like any other there.
    #[cfg(not(any(feature = "rustls", feature = "rustls-ring")))]
    if crate::error::causes(err).any(|e| e.is::<native_tls::Error>()) {
        return TransportKind::Tls;
    }
    if err.is_timeout() {
        TransportKind::Timeout
    } else if err.is_connect() {
        TransportKind::Connect
    } else if err.is_body() || err.is_decode() {
        TransportKind::Body
    } else if err.is_builder() || err.is_request() {
        TransportKind::Request
    } else {
        TransportKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_every_shape() {
        let (errors, body, _) = parse_error_body(None, br#"{"errors":["permission denied"]}"#);
        assert_eq!(
            (errors, body),
            (vec!["permission denied".into()], Body::Json)
        );
        let (errors, body, _) = parse_error_body(None, br#"{"error":"permission denied"}"#);
        assert_eq!(
            (errors, body),
            (vec!["permission denied".into()], Body::Json)
        );
        let (errors, body, _) = parse_error_body(None, b"  \n");
        assert_eq!((errors, body), (Vec::<String>::new(), Body::Empty));
        let (errors, body, _) =
            parse_error_body(Some("text/html"), b"<html><body>Bad Gateway</body></html>");
        assert!(errors.is_empty());
        assert_eq!(
            body,
            Body::NotJson {
                content_type: Some("text/html".into())
            }
        );
    }

    #[test]
    fn a_non_json_answer_is_named_by_status_and_content_type_never_echoed() {
        let (errors, body, json) =
            parse_error_body(Some("text/html"), b"<html>secret-looking page</html>");
        let failure = ApiFailure::Status {
            code: 502,
            errors,
            body,
            json,
            attempts: 3,
        };
        let e = failure.into_error("http://v:8200", "secret/data/app");
        let text = e.to_string();
        assert!(text.contains("502") && text.contains("text/html"), "{text}");
        assert!(
            text.contains("secret/data/app") && text.contains("3 attempts"),
            "{text}"
        );
        assert!(!text.contains("secret-looking"), "{text}");
    }

    #[test]
    fn debug_leaves_the_body_out() {
        let (errors, body, json) =
            parse_error_body(None, br#"{"data":{"data":{"k":"hunter2"}},"errors":[]}"#);
        let failure = ApiFailure::Status {
            code: 404,
            errors,
            body,
            json,
            attempts: 1,
        };
        assert_eq!(
            format!("{failure:?}"),
            "Status { code: 404, errors: [], body: Json, json: Some(\"[REDACTED]\"), attempts: 1 }"
        );
    }

    #[test]
    fn election_answers_are_recognised() {
        assert!(is_election(503, &["no active Vault instance found".into()]));
        assert!(is_election(
            500,
            &["local node not active but active cluster node not found".into()]
        ));
        assert!(!is_election(307, &[]));
        assert!(!is_election(503, &["Vault is sealed".into()]));
        assert!(!is_election(500, &["internal error".into()]));
    }

    #[test]
    fn sealed_and_redirects_map_to_their_errors() {
        let sealed = ApiFailure::Status {
            code: 503,
            errors: vec!["Vault is sealed".into()],
            body: Body::Json,
            json: None,
            attempts: 3,
        };
        assert!(matches!(
            sealed.into_error("http://x", "secret/data/a"),
            Error::Sealed { .. }
        ));
        let redirect = ApiFailure::Status {
            code: 307,
            errors: Vec::new(),
            body: Body::Empty,
            json: None,
            attempts: 1,
        };
        let e = redirect.into_error("http://standby:8200", "secret/data/a");
        assert!(matches!(e, Error::Server { status: 307, .. }), "{e}");
        assert!(
            e.to_string().contains("redirect, which is not followed"),
            "{e}"
        );
    }
}

/// Builds answers for the parsers' property tests in other modules (the
/// content type is private to this one).
#[cfg(test)]
impl Answer {
    pub(crate) fn for_test(status: u16, content_type: Option<&str>, body: &[u8]) -> Answer {
        Answer {
            status,
            content_type: content_type.map(str::to_owned),
            body: zeroize::Zeroizing::new(body.to_vec()),
        }
    }
}

/// Property tests of the response parsing: any body gives a value or a
/// typed failure, never a panic, and a failure's text never quotes the body
/// (only the `errors`/`error` messages, which Vault never fills with a
/// secret). The strategies are shared with the other parsers' tests.
#[cfg(test)]
pub(crate) mod proptests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    /// Put into generated bodies and credentials; must be in no message.
    pub(crate) const MARK: &str = "S3CRETMARK";

    /// Characters that make inputs interesting: controls, whitespace,
    /// JSON and path punctuation, non-ASCII, plain letters.
    pub(crate) fn interesting_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => prop::sample::select(vec!['a', 'z', 'A', '0', '9', '-', '_', '.', ' ']),
            2 => prop::sample::select(vec![
                '\n', '\r', '\t', '\0', '\u{7f}', '\u{1b}', '\u{85}', '\u{a0}', '\u{2028}', '\u{feff}'
            ]),
            2 => prop::sample::select(vec!['/', '?', '#', '=', '"', '\\', '{', '}', '[', ']', ':', ',']),
            1 => any::<char>(),
        ]
    }

    /// Arbitrary text of up to `max` characters.
    pub(crate) fn text(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(interesting_char(), 0..max).prop_map(String::from_iter)
    }

    /// Text that sometimes holds [`MARK`].
    pub(crate) fn marked_text() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => text(12),
            1 => (text(6), text(6)).prop_map(|(a, b)| format!("{a}{MARK}{b}")),
        ]
    }

    /// Object keys: the ones the parsers look for, often, else anything.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(vec![
                "data", "auth", "errors", "error", "metadata", "version", "destroyed",
                "deletion_time", "warnings", "client_token", "lease_duration", "renewable",
                "path", "type", "options", "ttl", "policies", "initialized", "sealed",
                "standby", "capabilities",
            ])
            .prop_map(str::to_owned),
            1 => text(8),
        ]
    }

    /// Any JSON value, nested a few levels, with keys the parsers read.
    pub(crate) fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }),
            marked_text().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    /// A body: raw bytes (mostly not JSON), JSON text, or JSON cut short.
    pub(crate) fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            2 => prop::collection::vec(any::<u8>(), 0..64),
            1 => marked_text().prop_map(String::into_bytes),
            4 => json().prop_map(|v| v.to_string().into_bytes()),
            1 => (json(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
                let mut bytes = v.to_string().into_bytes();
                bytes.truncate(cut.index(bytes.len() + 1));
                bytes
            }),
        ]
    }

    fn content_type() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop::sample::select(vec![
            "application/json",
            "text/html",
            "text/plain; charset=utf-8",
        ]))
        .prop_map(|ct| ct.map(str::to_owned))
    }

    /// Every way an error's text is shown.
    fn all_text(failure: ApiFailure) -> String {
        let shown = format!("{failure}\n{}\n{}", failure.messages(), failure.reason());
        let error = failure.into_error("http://127.0.0.1:8200", "secret/data/app");
        format!("{shown}\n{error}\n{error:?}")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_error_body_is_classified_and_never_quoted(
            status in 300u16..600,
            ct in content_type(),
            body in body(),
        ) {
            let (errors, shape, json) = parse_error_body(ct.as_deref(), &body);
            match &shape {
                Body::Empty => {
                    prop_assert!(body.iter().all(u8::is_ascii_whitespace));
                    prop_assert!(errors.is_empty() && json.is_none());
                }
                Body::NotJson { content_type } => {
                    prop_assert!(serde_json::from_slice::<Value>(&body).is_err());
                    prop_assert_eq!(content_type, &ct);
                    prop_assert!(errors.is_empty() && json.is_none());
                }
                Body::Json => {
                    let parsed: Value = serde_json::from_slice(&body).expect("parsed as JSON");
                    prop_assert_eq!(json.as_ref(), Some(&parsed));
                    // Exactly the messages of `errors` (array or string), then
                    // `error`, control characters escaped.
                    let mut expected: Vec<String> = match parsed.get("errors") {
                        Some(Value::Array(items)) => items
                            .iter()
                            .filter_map(|e| e.as_str().map(server_text))
                            .collect(),
                        Some(Value::String(one)) => vec![server_text(one)],
                        _ => Vec::new(),
                    };
                    if let Some(Value::String(one)) = parsed.get("error") {
                        expected.push(server_text(one));
                    }
                    prop_assert_eq!(&errors, &expected);
                    for e in &errors {
                        prop_assert!(
                            !e.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
                            "{:?}", e
                        );
                    }
                }
            }
            let quoted = errors.iter().any(|e| e.contains(MARK));
            let failure = ApiFailure::Status { code: status, errors, body: shape, json, attempts: 2 };
            let text = all_text(failure);
            // The marker reaches a message only through the server's messages.
            prop_assert!(quoted || !text.contains(MARK), "{}", text);
        }

        #[test]
        fn a_json_body_is_quoted_only_through_its_messages(
            status in 300u16..600,
            mut value in json(),
        ) {
            if let Some(object) = value.as_object_mut() {
                object.remove("errors");
                object.remove("error");
            }
            let (errors, shape, json) = parse_error_body(Some("application/json"), value.to_string().as_bytes());
            prop_assert!(errors.is_empty());
            prop_assert_eq!(&shape, &Body::Json);
            let failure = ApiFailure::Status { code: status, errors, body: shape, json, attempts: 1 };
            let text = all_text(failure);
            prop_assert!(!text.contains(MARK), "{}", text);
        }

        #[test]
        fn a_success_body_parses_or_fails_naming_only_status_and_content_type(
            status in 200u16..300,
            ct in content_type(),
            body in body(),
        ) {
            let answer = Answer::for_test(status, ct.as_deref(), &body);
            let shown = format!("{answer:?}");
            prop_assert!(!shown.contains(MARK), "{}", shown);
            match answer.parse::<Value>() {
                Ok(value) => prop_assert_eq!(Some(value), serde_json::from_slice::<Value>(&body).ok()),
                Err(failure) => {
                    prop_assert!(serde_json::from_slice::<Value>(&body).is_err());
                    let is_bad_answer =
                        matches!(&failure, ApiFailure::BadAnswer { status: s, .. } if *s == status);
                    prop_assert!(is_bad_answer, "{:?}", failure);
                    let text = all_text(failure);
                    prop_assert!(!text.contains(MARK), "{}", text);
                }
            }
        }
    }
}
