//! The one place requests are made: the HTTP client, headers, retries and
//! the classification of what came back.
//!
//! Requests are described with rustify's `Endpoint` (see [`crate::api`]):
//! their method, path, query and body are built once per call, and each
//! attempt sends them with reqwest, which hands back the whole response
//! (status, headers, body) without judging it. What vaultrs' executors
//! would do after that (require `request_id`, `lease_id`, ...; log every
//! non-2xx answer at ERROR) is done here instead, tolerantly and quietly:
//! the status decides, the body is parsed only as far as the caller needs,
//! and what is retried follows Vault's own Go client (`api/client.go`):
//! connection errors, 412, 429 and 500/502/503/504, for every call.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use rustify::Endpoint;
use secrecy::{ExposeSecret, SecretString};

use crate::{Error, VaultConfig};

/// Longest wait between two attempts (before jitter).
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// First wait between two attempts (before jitter); doubles each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest `Retry-After` honoured on a 429.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// How long answers that mean "the cluster is electing a leader" are
/// retried, on top of the counted retries (elections measured here took
/// 0.7 s to 5 s and more).
pub(crate) const ELECTION_BUDGET: Duration = Duration::from_secs(15);

/// The HTTP client for the runtime a call runs on. A pooled connection lives
/// on the runtime that opened it and dies with it, so a client used from
/// several runtimes (each `run_blocking`, each `#[tokio::test]`) keeps one
/// client per runtime it last ran on.
#[derive(Debug)]
pub(crate) struct Transport {
    config: VaultConfig,
    /// `<address>/v1`: what the endpoints' paths are joined to.
    api_base: url::Url,
    namespace: Option<HeaderValue>,
    http: Mutex<Option<(Option<tokio::runtime::Id>, reqwest::Client)>>,
}

/// Whether a call carries the namespace header. Root-only endpoints
/// (`sys/health`) are refused inside a namespace, so they go without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Namespaced,
    Root,
}

/// A successful (2xx) answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    content_type: Option<String>,
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
        reason: String,
        timed_out: bool,
        attempts: u32,
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
                reason,
                timed_out,
                attempts,
            } => f
                .debug_struct("Transport")
                .field("reason", reason)
                .field("timed_out", timed_out)
                .field("attempts", attempts)
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
            } => {
                let mut errors: Vec<String> = errors
                    .iter()
                    .map(|e| crate::error::tidy_server_message(e))
                    .collect();
                if (300..400).contains(&code) {
                    // A standby without request forwarding, or a proxy:
                    // following it would send the token to whatever host it names.
                    errors.push(
                        "the server answered with a redirect, which is not followed because the \
                         token would go along; point VAULT_ADDR at the server that answers itself \
                         (the active node)"
                            .into(),
                    );
                } else if errors.is_empty() {
                    errors.push(describe_body(&[], &body));
                }
                Error::Server {
                    status: code,
                    path: api_path.to_owned(),
                    errors,
                    attempts,
                }
            }
            ApiFailure::BadAnswer {
                status,
                content_type,
            } => Error::Server {
                status,
                path: api_path.to_owned(),
                errors: vec![format!(
                    "the answer is not the JSON this call expects (content type {})",
                    content_type.as_deref().unwrap_or("none")
                )],
                attempts: 1,
            },
            ApiFailure::Transport {
                reason,
                attempts,
                timed_out,
            } => Error::Transport {
                address: address.to_owned(),
                reason: format!(
                    "{reason}{} (`{api_path}`, {})",
                    if timed_out {
                        "; timed out (VAULT_CLIENT_TIMEOUT sets the limit per request)"
                    } else {
                        ""
                    },
                    Attempts(attempts)
                ),
            },
            ApiFailure::BadHeader { name } => Error::config(
                name,
                "holds a character that cannot be sent in an HTTP header (a control character \
                 such as a newline?)",
            ),
        }
    }
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
                content_type.as_deref().unwrap_or("none")
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
        return errors
            .iter()
            .map(|e| crate::error::tidy_server_message(e))
            .collect::<Vec<_>>()
            .join("; ");
    }
    match body {
        Body::Json => "no error message".into(),
        Body::Empty => "an empty answer".into(),
        Body::NotJson { content_type } => format!(
            "an answer that is not JSON (content type {}), perhaps from a proxy",
            content_type.as_deref().unwrap_or("none")
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
            errors.extend(items.iter().filter_map(|e| e.as_str()).map(str::to_owned));
        }
        Some(serde_json::Value::String(one)) => errors.push(one.clone()),
        _ => {}
    }
    if let Some(serde_json::Value::String(one)) = json.get("error") {
        errors.push(one.clone());
    }
    (errors, Body::Json, Some(json))
}

/// One call's request, built once and sent by each attempt.
struct Call {
    method: http::Method,
    url: url::Url,
    /// Wiped on drop: a login's body holds its credentials.
    body: Option<zeroize::Zeroizing<Vec<u8>>>,
}

/// What one attempt came to, and whether to try again.
enum Verdict {
    Done(Result<Answer, ApiFailure>),
    /// Retry after the usual backoff (counted against `max_retries`).
    Retry(ApiFailure),
    /// Retry after this long (a 429's `Retry-After`; counted).
    RetryAfter(ApiFailure, Duration),
    /// The cluster is electing a leader: retried within [`ELECTION_BUDGET`].
    Election(ApiFailure),
}

impl Transport {
    pub(crate) fn new(config: VaultConfig) -> Result<Self, Error> {
        let namespace = match config.namespace_name() {
            Some(ns) => Some(HeaderValue::from_str(ns).map_err(|_| {
                Error::config(
                    "VAULT_NAMESPACE",
                    "holds a character that cannot be sent in an HTTP header",
                )
            })?),
            None => None,
        };
        // Built once now so bad TLS settings fail here, not on first use.
        let http = config.http_client()?;
        Ok(Transport {
            api_base: url::Url::parse(&format!("{}/v1", config.request_base()))
                .map_err(|e| Error::config("VAULT_ADDR", format!("cannot be a base URL: {e}")))?,
            namespace,
            http: Mutex::new(Some((current_runtime(), http))),
            config,
        })
    }

    pub(crate) fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// The address, for messages.
    pub(crate) fn address(&self) -> &str {
        self.config.base()
    }

    /// The HTTP client for the runtime this runs on.
    fn http(&self) -> Result<reqwest::Client, Error> {
        let runtime = current_runtime();
        let mut slot = self.http.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((owner, client)) = slot.as_ref()
            && *owner == runtime
        {
            return Ok(client.clone());
        }
        let client = self.config.http_client()?;
        *slot = Some((runtime, client.clone()));
        Ok(client)
    }

    /// Sends `endpoint` with `token` (if any), retrying what is safe to retry.
    pub(crate) async fn send<E: Endpoint>(
        &self,
        endpoint: &E,
        token: Option<&SecretString>,
        scope: Scope,
    ) -> Result<Answer, ApiFailure> {
        let path = endpoint.path();
        let http = self.http().map_err(|e| ApiFailure::Transport {
            reason: e.to_string(),
            timed_out: false,
            attempts: 0,
        })?;
        let call = match self.call(endpoint, &path) {
            Ok(call) => call,
            Err(e) => {
                return Err(ApiFailure::Transport {
                    reason: format!("cannot build the request for `{path}`: {e}"),
                    timed_out: false,
                    attempts: 0,
                });
            }
        };
        let started = Instant::now();
        let deadline = started + self.config.call_deadline();
        let max_retries = self.config.retries();
        let mut counted = 0u32;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let verdict = self
                .attempt(&http, &call, token, scope, deadline, attempts)
                .await;
            let (failure, wait) = match verdict {
                Verdict::Done(result) => return result,
                Verdict::Retry(failure) => {
                    counted += 1;
                    (failure, backoff(counted))
                }
                Verdict::RetryAfter(failure, wait) => {
                    counted += 1;
                    (failure, wait)
                }
                Verdict::Election(failure) => {
                    let in_budget = started.elapsed() < ELECTION_BUDGET && max_retries > 0;
                    let wait = backoff(attempts);
                    if in_budget {
                        tracing::debug!(path = %path, attempt = attempts, failure = %failure,
                            wait_ms = wait.as_millis() as u64, "no active node yet; retrying");
                        if Instant::now() + wait < deadline {
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                    }
                    counted += 1;
                    (failure, wait)
                }
            };
            if counted > max_retries || Instant::now() + wait >= deadline {
                return Err(failure);
            }
            tracing::debug!(path = %path, attempt = attempts, failure = %failure,
                wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// The method, URL and body of `endpoint`, built once for all attempts.
    fn call<E: Endpoint>(&self, endpoint: &E, path: &str) -> Result<Call, String> {
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .map_err(|()| "the address cannot take a path".to_owned())?
            .extend(path.split('/').filter(|s| !s.is_empty()));
        // rustify gives `Some("")` when every query field is `None`.
        let query = endpoint.query().map_err(|e| e.to_string())?;
        url.set_query(query.as_deref().filter(|q| !q.is_empty()));
        let body = endpoint
            .body()
            .map_err(|e| e.to_string())?
            .map(zeroize::Zeroizing::new);
        Ok(Call {
            method: endpoint.method().into(),
            url,
            body,
        })
    }

    async fn attempt(
        &self,
        http: &reqwest::Client,
        call: &Call,
        token: Option<&SecretString>,
        scope: Scope,
        deadline: Instant,
        attempts: u32,
    ) -> Verdict {
        let transport = |reason: String, timed_out: bool| ApiFailure::Transport {
            reason,
            timed_out,
            attempts,
        };
        let mut request = reqwest::Request::new(call.method.clone(), call.url.clone());
        if let Some(body) = &call.body {
            *request.body_mut() = Some(body.to_vec().into());
        }
        let headers = request.headers_mut();
        if let Some(token) = token {
            let Ok(mut value) = HeaderValue::from_str(token.expose_secret()) else {
                return Verdict::Done(Err(ApiFailure::BadHeader {
                    name: "VAULT_TOKEN",
                }));
            };
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-vault-token"), value);
        }
        if let (Some(ns), Scope::Namespaced) = (&self.namespace, scope) {
            headers.insert(HeaderName::from_static("x-vault-namespace"), ns.clone());
        }
        // As Vault's clients do: marks the request as an API call (CSRF guard).
        headers.insert(
            HeaderName::from_static("x-vault-request"),
            HeaderValue::from_static("true"),
        );
        let timeout = self
            .config
            .request_timeout()
            .min(deadline.saturating_duration_since(Instant::now()));
        let exchange = async {
            let response = http.execute(request).await?;
            let status = response.status().as_u16();
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            let content_type = header(CONTENT_TYPE);
            let retry_after = header(RETRY_AFTER);
            let body = read_body(response).await?;
            Ok::<_, Exchange>((status, content_type, retry_after, body))
        };
        let (status, content_type, retry_after, body) =
            match tokio::time::timeout(timeout, exchange).await {
                Err(_) => {
                    let reason = format!("no answer within {}", Secs(timeout));
                    return Verdict::Retry(transport(reason, true));
                }
                Ok(Err(Exchange::Http(e))) => {
                    return Verdict::Retry(transport(describe(&e), e.is_timeout()));
                }
                Ok(Err(Exchange::TooLarge)) => {
                    let reason = format!(
                        "the answer is larger than {} MiB, more than any secret or login answer",
                        MAX_BODY / (1024 * 1024)
                    );
                    return Verdict::Done(Err(transport(reason, false)));
                }
                Ok(Ok(parts)) => parts,
            };
        if (200..300).contains(&status) {
            return Verdict::Done(Ok(Answer {
                status,
                content_type,
                body,
            }));
        }
        let (errors, shape, json) = parse_error_body(content_type.as_deref(), &body);
        let election = is_election(status, &errors);
        let failure = ApiFailure::Status {
            code: status,
            errors,
            body: shape,
            json,
            attempts,
        };
        match status {
            _ if election => Verdict::Election(failure),
            429 => {
                let wait = retry_after
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
                    .unwrap_or_else(|| backoff(attempts));
                Verdict::RetryAfter(failure, wait)
            }
            412 | 500 | 502 | 503 | 504 => Verdict::Retry(failure),
            _ => Verdict::Done(Err(failure)),
        }
    }
}

/// The largest answer read: Vault's own request limit. A larger one is not a
/// secret or a login answer (a proxy's download, a misconfigured address).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Why an exchange ended without an answer to judge.
enum Exchange {
    Http(reqwest::Error),
    TooLarge,
}

impl From<reqwest::Error> for Exchange {
    fn from(e: reqwest::Error) -> Self {
        Exchange::Http(e)
    }
}

/// The body, in memory of our own (wiped on drop), at most [`MAX_BODY`]
/// bytes: read whole when its length is announced (Vault always does), else
/// chunk by chunk, stopping at the limit.
async fn read_body(
    mut response: reqwest::Response,
) -> Result<zeroize::Zeroizing<Vec<u8>>, Exchange> {
    if let Some(length) = response.content_length() {
        if length > MAX_BODY as u64 {
            return Err(Exchange::TooLarge);
        }
        return Ok(zeroize::Zeroizing::new(response.bytes().await?.to_vec()));
    }
    let mut body = zeroize::Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Exchange::TooLarge);
        }
        if body.len() + chunk.len() > body.capacity() {
            // Grow by copying into a wiped-on-drop buffer, not by `Vec`'s own
            // reallocation, which would leave the old bytes behind unwiped.
            let mut bigger = zeroize::Zeroizing::new(Vec::with_capacity(
                (body.len() + chunk.len()).max(body.capacity() * 2),
            ));
            bigger.extend_from_slice(&body);
            body = bigger;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The answers a standby gives while the cluster has no active node (seen on
/// OpenBao's and Vault's HA clusters): 503 "no active Vault instance found", 500 "local
/// node not active but active cluster node not found", or a redirect to the
/// (old or new) active node. The redirect is never followed: the token would
/// go along; the same address is asked again once forwarding is back.
fn is_election(status: u16, errors: &[String]) -> bool {
    let says = |needle: &str| errors.iter().any(|e| e.contains(needle));
    match status {
        307 | 308 => true,
        503 => says("no active Vault instance"),
        500 => says("node not active") || says("active cluster node not found"),
        _ => false,
    }
}

/// The wait before retry `n` (from 1): 250 ms doubling to 2 s, with jitter
/// (each wait is drawn from its upper half), so clients that failed together
/// do not come back together.
pub(crate) fn backoff(n: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1 << n.saturating_sub(1).min(8))
        .min(MAX_BACKOFF);
    let jitter = RandomState::new().hash_one(Instant::now()) % 1000;
    full / 2 + full / 2 * u32::try_from(jitter).unwrap_or(0) / 1000
}

struct Secs(Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} s", self.0.as_secs_f64())
    }
}

fn current_runtime() -> Option<tokio::runtime::Id> {
    tokio::runtime::Handle::try_current().ok().map(|h| h.id())
}

/// The useful part of a transport failure (connection refused, timed out,
/// certificate...); names the URL and the failure, never headers or bodies.
fn describe(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts: Vec<String> = Vec::new();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    let text = parts.join(": ");
    // rustls' words for "this port speaks plain HTTP".
    if text.contains("InvalidContentType") || text.contains("invalid content type") {
        return format!(
            "{text} (the server does not speak TLS on this port: use http:// in VAULT_ADDR, \
             or the port of the HTTPS listener)"
        );
    }
    text
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
        assert!(is_election(307, &[]));
        assert!(!is_election(503, &["Vault is sealed".into()]));
        assert!(!is_election(500, &["internal error".into()]));
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_its_upper_half() {
        for n in 1..12 {
            let full = FIRST_BACKOFF
                .saturating_mul(1 << (n - 1).min(8))
                .min(MAX_BACKOFF);
            let wait = backoff(n);
            assert!(wait >= full / 2 && wait <= full, "{n}: {wait:?}");
        }
        assert!(backoff(20) <= MAX_BACKOFF);
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

    /// Every way an error's text is shown. (Not `ApiFailure`'s derived
    /// `Debug`, which holds the JSON body for the KV reader and is never
    /// formatted: the crate shows failures with `Display` only.)
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
                    // Exactly the messages of `errors` (array or string), then `error`.
                    let mut expected: Vec<String> = match parsed.get("errors") {
                        Some(Value::Array(items)) => items
                            .iter()
                            .filter_map(|e| e.as_str().map(str::to_owned))
                            .collect(),
                        Some(Value::String(one)) => vec![one.clone()],
                        _ => Vec::new(),
                    };
                    if let Some(Value::String(one)) = parsed.get("error") {
                        expected.push(one.clone());
                    }
                    prop_assert_eq!(&errors, &expected);
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

        #[test]
        fn backoff_never_panics_and_stays_capped(n in any::<u32>()) {
            prop_assert!(backoff(n) <= MAX_BACKOFF);
        }
    }
}
