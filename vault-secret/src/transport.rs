//! The one place requests are made: the HTTP client, headers and retries.
//! What came back is classified in [`crate::failure`].
//!
//! Requests are described with rustify's `Endpoint` (see [`crate::api`]):
//! their method, path, query and body are built once per call, and each
//! attempt sends them with reqwest, which hands back the whole response
//! (status, headers, body) without judging it. Here the status decides,
//! quietly (an expected failure is the caller's to report, not a log
//! line's), the body is parsed only as far as the caller needs, and what is
//! retried follows Vault's own Go client (`api/client.go`): connection
//! errors, 412, 429 and 500/502/503/504, for every read; a write is retried
//! only where it cannot have been applied (see [`Retries`]).
//!
//! A 429's `Retry-After` (seconds or an HTTP date) sets the wait, within
//! the call's deadline. A 307 or 308 is followed once, and only to the
//! active node the cluster itself names (`sys/leader`, asked with the same
//! client): the token goes there and nowhere else.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use rustify::Endpoint;
use secrecy::{ExposeSecret, SecretString};

use crate::config::VaultConfig;
use crate::error::Error;
use crate::error::TransportKind;
#[cfg(test)]
pub(crate) use crate::failure::Body;
#[cfg(test)]
pub(crate) use crate::failure::proptests;
pub(crate) use crate::failure::{Answer, ApiFailure};
use crate::failure::{is_election, parse_error_body, transport_failure};

/// Longest wait between two attempts (before jitter).
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// First wait between two attempts (before jitter); doubles each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
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

/// One call's request, built once and sent by each attempt.
struct Call {
    method: http::Method,
    url: url::Url,
    /// Wiped on drop: a login's body holds its credentials.
    body: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// The body's content type, when the endpoint needs one said (a merge patch).
    content_type: Option<&'static str>,
}

/// What a call may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retries {
    /// Reads (and calls that are safe to repeat): connection errors,
    /// timeouts, 412, 429, 500/502/503/504 and elections.
    Read,
    /// Writes: only what cannot have been applied (no connection, 412,
    /// 429, sealed, an election). With check-and-set (`cas`), a lost answer
    /// (a timeout, a connection cut after sending) is retried too, as the
    /// version check keeps a second copy from applying; without it, a lost
    /// answer ends the call.
    Write { cas: bool },
}

/// A write's failure, and whether an attempt's answer was lost on the way
/// (so that attempt may have been applied).
#[derive(Debug)]
pub(crate) struct WriteFailure {
    pub(crate) failure: ApiFailure,
    pub(crate) answer_lost: bool,
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
    /// A 307 or 308, with its `Location`.
    Redirect(ApiFailure, Option<String>),
}

/// Where a redirect points, as the cluster itself tells.
enum Leader {
    /// At the active node `sys/leader` names: follow it to this URL.
    Follow(url::Url),
    /// Somewhere else (or the server has no cluster to name): refuse it.
    Elsewhere,
    /// No active node right now: an election.
    Electing,
}

/// A whole answer, status to body.
struct Received {
    status: u16,
    content_type: Option<String>,
    retry_after: Option<String>,
    location: Option<String>,
    body: zeroize::Zeroizing<Vec<u8>>,
}

/// A failure before any request went out.
fn local_failure(reason: String) -> ApiFailure {
    ApiFailure::Transport {
        kind: TransportKind::Request,
        reason,
        attempts: 0,
        source: None,
    }
}

impl Transport {
    pub(crate) fn new(config: VaultConfig) -> Result<Self, Error> {
        let namespace = match config.namespace() {
            Some(ns) => Some(HeaderValue::from_str(ns).map_err(|_| {
                Error::config(
                    "VAULT_NAMESPACE",
                    "holds a character that cannot be sent in an HTTP header",
                )
            })?),
            None => None,
        };
        // Built once now so bad TLS settings fail here, not on first use.
        let http = crate::tls::http_client(&config)?;
        let api_base = url::Url::parse(&format!("{}/v1", config.request_base())).map_err(|e| {
            Error::config_kind(
                "VAULT_ADDR",
                crate::error::ConfigKind::NotAUrl,
                format!("cannot be a base URL: {e}"),
            )
            .caused_by(e)
        })?;
        Ok(Transport {
            api_base,
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
        let client = crate::tls::http_client(&self.config)?;
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
        let mut lost = false;
        self.run(endpoint, token, scope, Retries::Read, None, &mut lost)
            .await
    }

    /// Sends a write: retried only as `retries` allows; a body of
    /// `content_type` when given (else JSON, unsaid, as Vault takes it).
    pub(crate) async fn send_write<E: Endpoint>(
        &self,
        endpoint: &E,
        token: &SecretString,
        retries: Retries,
        content_type: Option<&'static str>,
    ) -> Result<Answer, WriteFailure> {
        let mut answer_lost = false;
        self.run(
            endpoint,
            Some(token),
            Scope::Namespaced,
            retries,
            content_type,
            &mut answer_lost,
        )
        .await
        .map_err(|failure| WriteFailure {
            failure,
            answer_lost,
        })
    }

    /// The attempts of one call; `lost` is set when an attempt's answer was
    /// lost after its request may have gone out.
    async fn run<E: Endpoint>(
        &self,
        endpoint: &E,
        token: Option<&SecretString>,
        scope: Scope,
        retries: Retries,
        content_type: Option<&'static str>,
        lost: &mut bool,
    ) -> Result<Answer, ApiFailure> {
        let path = endpoint.path();
        let http = self.http().map_err(|e| local_failure(e.to_string()))?;
        let mut call = self
            .call(endpoint, &path)
            .map_err(|e| local_failure(format!("cannot build the request for `{path}`: {e}")))?;
        call.content_type = content_type;
        let started = Instant::now();
        let deadline = started + self.config.deadline();
        let max_retries = self.config.max_retries();
        let mut counted = 0u32;
        let mut attempts = 0u32;
        let mut redirected = false;
        loop {
            attempts += 1;
            let verdict = self
                .attempt(&http, &call, token, scope, deadline, attempts)
                .await;
            let verdict = match retries {
                Retries::Read => verdict,
                Retries::Write { cas } => write_verdict(verdict, cas, lost),
            };
            let verdict = match verdict {
                Verdict::Redirect(failure, location) if !redirected => {
                    match self
                        .leader(&http, &call.url, location.as_deref(), deadline)
                        .await
                    {
                        Leader::Follow(url) => {
                            tracing::debug!(path = %path, leader = %url.origin().ascii_serialization(),
                                "redirected to the active node; following once");
                            call.url = url;
                            redirected = true;
                            continue;
                        }
                        Leader::Electing => Verdict::Election(failure),
                        Leader::Elsewhere => Verdict::Done(Err(failure)),
                    }
                }
                Verdict::Redirect(failure, _) => Verdict::Done(Err(failure)),
                other => other,
            };
            let (failure, wait) = match verdict {
                Verdict::Done(result) => return result,
                // Settled above; a second redirect is refused there.
                Verdict::Redirect(failure, _) => return Err(failure),
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
                    if in_budget && Instant::now() + wait < deadline {
                        tracing::debug!(path = %path, attempt = attempts, failure = %failure,
                            wait_ms = wait.as_millis() as u64, "no active node yet; retrying");
                        tokio::time::sleep(wait).await;
                        continue;
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
            content_type: None,
        })
    }

    /// Where the redirect to `location` (from a request to `from`) points,
    /// by the active node `sys/leader` names, asked of the configured address
    /// with the same client (`sys/leader` needs no token). One request, no
    /// retries: an election is settled by the caller's own retries.
    async fn leader(
        &self,
        http: &reqwest::Client,
        from: &url::Url,
        location: Option<&str>,
        deadline: Instant,
    ) -> Leader {
        let Some(target) = location.and_then(|l| from.join(l).ok()) else {
            return Leader::Elsewhere;
        };
        let mut url = self.api_base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(["sys", "leader"]);
        }
        let mut request = reqwest::Request::new(http::Method::GET, url);
        request.headers_mut().insert(
            HeaderName::from_static("x-vault-request"),
            HeaderValue::from_static("true"),
        );
        let timeout = self
            .config
            .timeout()
            .min(deadline.saturating_duration_since(Instant::now()));
        let received =
            match exchange(http, request, timeout, 1, self.config.max_response_size()).await {
                Ok(received) => received,
                Err(_) => return Leader::Electing,
            };
        let said: serde_json::Value = match received.status {
            200 => serde_json::from_slice(&received.body).unwrap_or_default(),
            500 | 503 => return Leader::Electing,
            _ => return Leader::Elsewhere,
        };
        let leader = said["leader_address"].as_str().unwrap_or_default();
        if said["ha_enabled"] != true {
            return Leader::Elsewhere;
        }
        if leader.is_empty() {
            return Leader::Electing;
        }
        match url::Url::parse(leader) {
            Ok(leader) if leader.origin() == target.origin() => Leader::Follow(target),
            _ => Leader::Elsewhere,
        }
    }

    /// Sends `call` once and judges the answer.
    async fn attempt(
        &self,
        http: &reqwest::Client,
        call: &Call,
        token: Option<&SecretString>,
        scope: Scope,
        deadline: Instant,
        attempts: u32,
    ) -> Verdict {
        let request = match self.request(call, token, scope) {
            Ok(request) => request,
            Err(failure) => return Verdict::Done(Err(failure)),
        };
        let timeout = self
            .config
            .timeout()
            .min(deadline.saturating_duration_since(Instant::now()));
        let max_body = self.config.max_response_size();
        match exchange(http, request, timeout, attempts, max_body).await {
            Ok(received) => judge(received, attempts),
            Err(verdict) => verdict,
        }
    }

    /// The request of one attempt: `call` with the token, namespace and
    /// API-call headers.
    fn request(
        &self,
        call: &Call,
        token: Option<&SecretString>,
        scope: Scope,
    ) -> Result<reqwest::Request, ApiFailure> {
        let mut request = reqwest::Request::new(call.method.clone(), call.url.clone());
        if let Some(body) = &call.body {
            *request.body_mut() = Some(body.to_vec().into());
        }
        let headers = request.headers_mut();
        if let Some(content_type) = call.content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if let Some(token) = token {
            let Ok(mut value) = HeaderValue::from_str(token.expose_secret()) else {
                return Err(ApiFailure::BadHeader {
                    name: "VAULT_TOKEN",
                });
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
        Ok(request)
    }
}

/// Sends `request` and reads the whole answer within `timeout`; a failure
/// comes back as its verdict (a transport failure is retried, a body too
/// large is not).
async fn exchange(
    http: &reqwest::Client,
    request: reqwest::Request,
    timeout: Duration,
    attempts: u32,
    max_body: usize,
) -> Result<Received, Verdict> {
    let exchange = async {
        let response = http.execute(request).await?;
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let (content_type, retry_after) = (header(CONTENT_TYPE), header(RETRY_AFTER));
        let location = header(LOCATION);
        let status = response.status().as_u16();
        let body = read_body(response, max_body).await?;
        Ok::<_, Exchange>(Received {
            status,
            content_type,
            retry_after,
            location,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(received)) => Ok(received),
        Err(_) => Err(Verdict::Retry(ApiFailure::Transport {
            kind: TransportKind::Timeout,
            reason: format!("no answer within {}", Secs(timeout)),
            attempts,
            source: None,
        })),
        Ok(Err(Exchange::Http(e))) => Err(Verdict::Retry(transport_failure(e, attempts))),
        Ok(Err(Exchange::TooLarge)) => Err(Verdict::Done(Err(ApiFailure::Transport {
            kind: TransportKind::Body,
            reason: format!(
                "the answer is larger than {max_body} bytes, the most accepted (see \
                 VaultConfig::with_max_response_size)"
            ),
            attempts,
            source: None,
        }))),
    }
}

/// What a whole answer means: success, a failure, or a failure worth
/// another attempt (as Vault's Go client: 412, 429, 500, 502, 503, 504 and
/// the answers of an election).
fn judge(received: Received, attempts: u32) -> Verdict {
    let Received {
        status,
        content_type,
        retry_after,
        location,
        body,
    } = received;
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
        307 | 308 => Verdict::Redirect(failure, location),
        _ if election => Verdict::Election(failure),
        429 => {
            let wait = retry_after
                .and_then(|v| retry_after_wait(&v, SystemTime::now()))
                .unwrap_or_else(|| backoff(attempts));
            Verdict::RetryAfter(failure, wait)
        }
        412 | 500 | 502 | 503 | 504 => Verdict::Retry(failure),
        _ => Verdict::Done(Err(failure)),
    }
}

/// A `Retry-After` value as a wait from `now`: whole seconds, or an HTTP
/// date (a date already past means no wait); `None` when it is neither.
/// The call's deadline bounds what is waited.
fn retry_after_wait(value: &str, now: SystemTime) -> Option<Duration> {
    // Longer than any deadline, short enough to add to an `Instant`.
    const FOREVER: Duration = Duration::from_secs(24 * 3600);
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(FOREVER));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(FOREVER),
    )
}

/// A verdict under the write policy ([`Retries::Write`]); sets `lost` when
/// the attempt's answer was lost after its request may have gone out.
fn write_verdict(verdict: Verdict, cas: bool, lost: &mut bool) -> Verdict {
    let Verdict::Retry(failure) = verdict else {
        // Done, 429, elections and redirects: the server answered without applying it.
        return verdict;
    };
    match &failure {
        // No connection, so no request went out.
        ApiFailure::Transport {
            kind: TransportKind::Connect,
            ..
        } => Verdict::Retry(failure),
        ApiFailure::Transport {
            kind: TransportKind::Timeout | TransportKind::Body | TransportKind::Other,
            ..
        } => {
            *lost = true;
            if cas {
                Verdict::Retry(failure)
            } else {
                Verdict::Done(Err(failure))
            }
        }
        ApiFailure::Status { code: 412, .. } => Verdict::Retry(failure),
        ApiFailure::Status {
            code: 503, errors, ..
        } if errors.iter().any(|e| e.contains("sealed")) => Verdict::Retry(failure),
        // 500, 502, 504 and the rest: the server may have applied it.
        _ => Verdict::Done(Err(failure)),
    }
}

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

/// The body, in memory of our own (wiped on drop), at most `max` bytes
/// ([`VaultConfig::max_response_size`]): refused at once when its announced
/// length is larger, else read chunk by chunk, stopping at the limit. Each
/// chunk is wiped once copied when no one else holds it (reqwest hands them
/// over as `Bytes`, which would otherwise be freed unwiped).
async fn read_body(
    mut response: reqwest::Response,
    max: usize,
) -> Result<zeroize::Zeroizing<Vec<u8>>, Exchange> {
    let announced = response.content_length();
    if announced.is_some_and(|length| length > max as u64) {
        return Err(Exchange::TooLarge);
    }
    let capacity = announced.map_or(0, |length| usize::try_from(length).unwrap_or(max).min(max));
    let mut body = zeroize::Zeroizing::new(Vec::with_capacity(capacity));
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(Exchange::TooLarge);
        }
        if body.len() + chunk.len() > body.capacity() {
            // Grow by copying into a wiped-on-drop buffer, not by `Vec`'s own
            // reallocation, which would leave the old bytes behind unwiped.
            let mut bigger = zeroize::Zeroizing::new(Vec::with_capacity(
                (body.len() + chunk.len()).max(body.capacity() * 2).min(max),
            ));
            bigger.extend_from_slice(&body);
            body = bigger;
        }
        body.extend_from_slice(&chunk);
        // Only the sole handle on the bytes can write them; a shared one is
        // left as it is.
        if let Ok(mut owned) = chunk.try_into_mut() {
            zeroize::Zeroize::zeroize(&mut owned[..]);
        }
    }
    Ok(body)
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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

    proptest! {
        #[test]
        fn backoff_never_panics_and_stays_capped(n in any::<u32>()) {
            prop_assert!(backoff(n) <= MAX_BACKOFF);
        }

        #[test]
        fn any_retry_after_text_gives_a_wait_or_none(value in ".{0,40}") {
            let _ = retry_after_wait(&value, SystemTime::now());
        }
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after_wait(" 3 ", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(2));
        assert_eq!(retry_after_wait(&later, now), Some(Duration::from_secs(2)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(60));
        assert_eq!(retry_after_wait(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after_wait("soon", now), None);
        assert_eq!(retry_after_wait("-1", now), None);
        let huge = retry_after_wait(&u64::MAX.to_string(), now).unwrap();
        assert!(std::time::Instant::now().checked_add(huge).is_some());
    }

    fn transport_failure(kind: TransportKind) -> Verdict {
        Verdict::Retry(ApiFailure::Transport {
            kind,
            reason: String::new(),
            attempts: 1,
            source: None,
        })
    }

    fn status(code: u16, message: &str) -> Verdict {
        Verdict::Retry(ApiFailure::Status {
            code,
            errors: vec![message.to_owned()],
            body: Body::Json,
            json: None,
            attempts: 1,
        })
    }

    /// What the write policy makes of `verdict`: retried, and whether the
    /// answer was lost.
    fn under_write(verdict: Verdict, cas: bool) -> (bool, bool) {
        let mut lost = false;
        let retried = matches!(write_verdict(verdict, cas, &mut lost), Verdict::Retry(_));
        (retried, lost)
    }

    #[test]
    fn a_write_is_retried_only_where_it_cannot_have_applied() {
        for cas in [false, true] {
            assert_eq!(
                under_write(transport_failure(TransportKind::Connect), cas),
                (true, false)
            );
            assert_eq!(
                under_write(transport_failure(TransportKind::Tls), cas),
                (false, false)
            );
            assert_eq!(under_write(status(412, "stale"), cas), (true, false));
            assert_eq!(
                under_write(status(503, "Vault is sealed"), cas),
                (true, false)
            );
            for code in [500, 502, 503, 504] {
                assert_eq!(
                    under_write(status(code, "boom"), cas),
                    (false, false),
                    "{code}"
                );
            }
            for kind in [
                TransportKind::Timeout,
                TransportKind::Body,
                TransportKind::Other,
            ] {
                // A lost answer: resent only when check-and-set guards it.
                assert_eq!(
                    under_write(transport_failure(kind), cas),
                    (cas, true),
                    "{kind:?}"
                );
            }
        }
    }
}

/// Failures that only a real connection shows: their kind and their source.
#[cfg(test)]
mod connection_tests {
    use std::error::Error as _;

    use super::*;
    use crate::api;

    /// A transport to `address` with no retries.
    fn transport(address: &str) -> Transport {
        Transport::new(
            VaultConfig::new(address)
                .unwrap()
                .with_max_retries(0)
                .with_timeout(Duration::from_secs(5)),
        )
        .unwrap()
    }

    /// What an https request to a plain-HTTP port is: rustls tells it apart,
    /// native-tls gives a TLS failure like any other.
    #[cfg(any(feature = "rustls", feature = "rustls-ring"))]
    const PLAIN_HTTP_PORT: TransportKind = TransportKind::NotTls;
    #[cfg(not(any(feature = "rustls", feature = "rustls-ring")))]
    const PLAIN_HTTP_PORT: TransportKind = TransportKind::Tls;

    #[tokio::test]
    async fn https_to_a_plain_http_port_is_not_tls_and_keeps_reqwest_as_source() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let t = transport(&format!("https://127.0.0.1:{port}"));
        let failure = api::health(&t).await.unwrap_err();
        let error = failure.into_error(t.address(), "sys/health");
        assert!(
            matches!(error, Error::Transport { kind, .. } if kind == PLAIN_HTTP_PORT),
            "{error:?}"
        );
        if PLAIN_HTTP_PORT == TransportKind::NotTls {
            assert!(error.to_string().contains("use http://"), "{error}");
        }
        let source = error.source().expect("a source");
        assert!(
            source.downcast_ref::<reqwest::Error>().is_some(),
            "{source:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_connect() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let t = transport(&format!("http://127.0.0.1:{port}"));
        let error = api::health(&t)
            .await
            .unwrap_err()
            .into_error(t.address(), "sys/health");
        assert!(
            matches!(
                error,
                Error::Transport {
                    kind: TransportKind::Connect,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.source().is_some());
    }
}
