//! [`MockVault`]: an in-process fake of the Vault API (wiremock) for unit
//! tests that must not start a process. It answers with the shapes a real
//! server gives for the calls a reader makes: health, token lookup and
//! renewal, mount detection (`sys/internal/ui/mounts`), KV v1 and v2 reads,
//! AppRole login, denials and failures; and, through [`MockAnswer`], the
//! shapes other servers and proxies give (bare envelopes, error bodies of
//! every form, HTML pages, redirects, slow or failing answers).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use secret_core::Env;
use serde_json::{Value, json};
use wiremock::matchers::{
    body_partial_json, header, method, path, path_regex, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockGuard, MockServer, ResponseTemplate};

use super::credentials::{AppRoleCredentials, TestCredentials, Token};
use super::unique;
use crate::mounts::KvVersion;
use crate::secret::VaultSecret;

/// Priority of denials, failures and accepted logins (wiremock: lower wins).
const OVERRIDE: u8 = 1;
/// Priority of the catch-all answers.
const FALLBACK: u8 = 10;

/// The token [`MockVault::root_token`] gives (any token is accepted).
const MOCK_TOKEN: &str = "mock-root-token";

/// A fake Vault API on a loopback port, in the test process.
///
/// ```
/// use serde_json::json;
/// use vault_secret::testing::MockVault;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let vault = MockVault::start().await;
/// vault.kv2("secret/app", json!({"password": "p"})).await;
/// let password = vault.secret("secret/app#password").run().await.unwrap();
/// assert_eq!(password.expose_secret(), "p");
/// assert!(vault.received().await.iter().any(|r| r.path == "secret/data/app"));
/// # }
/// ```
///
/// Any token is accepted. Unknown paths answer 404 `{"errors":[]}` and the
/// mount check of an unknown mount answers 403, as a real server does for a
/// root token. [`answer`](Self::answer) makes any path answer what a test
/// needs; [`start_under`](Self::start_under) serves the API behind a
/// reverse proxy's path prefix.
pub struct MockVault {
    server: MockServer,
    /// The path the API is served under: `/v1`, or `<prefix>/v1`.
    base: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// KV version of each mount written to so far.
    mounts: HashMap<String, KvVersion>,
    /// Number of versions written at each KV v2 path.
    versions: HashMap<String, u64>,
    /// The answer for the latest value at each path (replaced on a write).
    latest: HashMap<String, MockGuard>,
}

impl fmt::Debug for MockVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockVault")
            .field("addr", &self.addr())
            .finish_non_exhaustive()
    }
}

/// What [`MockVault::answer`] answers on one API path: a status, a body,
/// headers and a delay, for every request or the first few, optionally only
/// to requests of one method, token or body.
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use vault_secret::testing::{MockAnswer, MockVault};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let vault = MockVault::start().await;
/// // An old server, rate limited once, then answering with a bare body
/// // (the answer given first applies while it lasts).
/// vault
///     .answer("old/app", MockAnswer::errors(429, &["rate limited"]).header("Retry-After", "1").times(1))
///     .await;
/// vault.answer("old/app", MockAnswer::json(200, json!({"data": {"k": "v"}}))).await;
/// // A proxy's page, slowly.
/// vault
///     .answer("proxied/app", MockAnswer::text(502, "text/html", "<html>Bad Gateway</html>").delay(Duration::from_millis(50)))
///     .await;
/// # }
/// ```
///
/// `Debug` shows the status and the conditions, never the body or the token.
#[derive(Clone)]
pub struct MockAnswer {
    response: ResponseTemplate,
    status: u16,
    method: Option<String>,
    token: Option<Token>,
    body: Option<Value>,
    times: Option<u64>,
}

impl fmt::Debug for MockAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockAnswer")
            .field("status", &self.status)
            .field("method", &self.method)
            .field("for_token", &self.token.is_some())
            .field("times", &self.times)
            .finish_non_exhaustive()
    }
}

impl MockAnswer {
    fn new(status: u16, response: ResponseTemplate) -> MockAnswer {
        MockAnswer {
            response,
            status,
            method: None,
            token: None,
            body: None,
            times: None,
        }
    }

    /// `status` with exactly `body` (no envelope added: the shape older
    /// servers and proxies give).
    pub fn json(status: u16, body: Value) -> MockAnswer {
        MockAnswer::new(status, ResponseTemplate::new(status).set_body_json(body))
    }

    /// 200 with `data` in the full envelope Vault wraps every answer in
    /// (`request_id`, `lease_id`, `warnings`, ...).
    pub fn data(data: Value) -> MockAnswer {
        MockAnswer::json(200, envelope(data, 0))
    }

    /// 200 with a KV v2 read's answer: `data` (the secret's mapping) and
    /// the metadata of version 1, in the full envelope.
    pub fn kv2_data(data: Value) -> MockAnswer {
        MockAnswer::data(kv2_data(data, 1))
    }

    /// `status` with Vault's error body, `{"errors": [messages]}`.
    pub fn errors(status: u16, messages: &[&str]) -> MockAnswer {
        MockAnswer::json(status, errors(messages))
    }

    /// `status` with a body that is not JSON (an HTML page, plain text).
    pub fn text(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> MockAnswer {
        MockAnswer::new(
            status,
            ResponseTemplate::new(status).set_body_raw(body.into(), content_type),
        )
    }

    /// `status` with no body at all.
    pub fn empty(status: u16) -> MockAnswer {
        MockAnswer::new(status, ResponseTemplate::new(status))
    }

    /// Adds a response header (`Retry-After`, `Location`, ...).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> MockAnswer {
        self.response = self.response.insert_header(name, value.into());
        self
    }

    /// Answers only after `delay` (a server that hangs: longer than the
    /// client's timeout).
    pub fn delay(mut self, delay: Duration) -> MockAnswer {
        self.response = self.response.set_delay(delay);
        self
    }

    /// Answers only the first `n` matching requests; later ones get what
    /// was there before (the normal answer, or an earlier `answer`).
    pub fn times(mut self, n: u64) -> MockAnswer {
        self.times = Some(n);
        self
    }

    /// Answers only requests of this method (`GET`, `POST`, ...).
    pub fn method(mut self, method: &str) -> MockAnswer {
        self.method = Some(method.to_owned());
        self
    }

    /// Answers only requests carrying this token (e.g. the one a login
    /// answered with, to check the client uses it).
    pub fn for_token(mut self, token: &Token) -> MockAnswer {
        self.token = Some(token.clone());
        self
    }

    /// Answers only requests whose JSON body holds these fields (e.g. the
    /// role id and secret id a login must send).
    pub fn for_body(mut self, fields: Value) -> MockAnswer {
        self.body = Some(fields);
        self
    }
}

/// One request [`MockVault`] received (no headers: they hold the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockRequest {
    /// `GET`, `POST`, `LIST`, ...
    pub method: String,
    /// The API path relative to `/v1/`, e.g. `secret/data/app`.
    pub path: String,
    /// The query string, if any (e.g. `version=2`).
    pub query: Option<String>,
    /// The `X-Vault-Namespace` header, if any.
    pub namespace: Option<String>,
}

fn errors(messages: &[&str]) -> Value {
    json!({ "errors": messages })
}

/// A KV v2 read's `data`: the secret's mapping and its version's metadata.
fn kv2_data(data: Value, version: u64) -> Value {
    json!({
        "data": data,
        "metadata": {
            "created_time": "2026-01-01T00:00:00.000000000Z", "custom_metadata": null,
            "deletion_time": "", "destroyed": false, "version": version,
        },
    })
}

/// A successful answer's envelope around `data`, as Vault wraps it.
fn envelope(data: Value, lease_duration: u64) -> Value {
    json!({
        "request_id": "00000000-0000-0000-0000-000000000000",
        "lease_id": "",
        "renewable": false,
        "lease_duration": lease_duration,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    })
}

fn auth_envelope(token: &str, policies: &[&str]) -> Value {
    json!({
        "request_id": "00000000-0000-0000-0000-000000000000",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": null,
        "wrap_info": null,
        "warnings": null,
        "auth": {
            "client_token": token,
            "accessor": "mock-accessor",
            "policies": policies,
            "token_policies": policies,
            "metadata": {},
            "lease_duration": 3600,
            "renewable": true,
            "entity_id": "",
            "token_type": "service",
            "orphan": true,
        },
    })
}

/// `s` with regex metacharacters escaped.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `mount/rest` split at the first slash.
fn split(kv_path: &str) -> (String, String) {
    let kv_path = kv_path.trim_matches('/');
    match kv_path.split_once('/') {
        Some((mount, rest)) => (mount.to_owned(), rest.to_owned()),
        None => panic!("MockVault: `{kv_path}` needs a mount and a path, e.g. secret/app"),
    }
}

impl MockVault {
    /// Starts the fake API with the answers every reader needs (health,
    /// token lookup, renewal and revocation, catch-alls).
    pub async fn start() -> MockVault {
        MockVault::start_under("").await
    }

    /// Starts the fake API under a path prefix (`/vault`: requests go to
    /// `/vault/v1/...`), as a reverse proxy that serves Vault below a path
    /// does; [`addr`](Self::addr) includes the prefix.
    pub async fn start_under(prefix: &str) -> MockVault {
        let server = MockServer::start().await;
        let base = format!("{}/v1", prefix.trim_end_matches('/'));
        let at = |api_path: &str| format!("{base}/{api_path}");
        let escaped = regex_escape(&base);
        let ok = |body: Value| ResponseTemplate::new(200).set_body_json(body);
        Mock::given(method("GET"))
            .and(path(at("sys/health")))
            .respond_with(ok(json!({
                "initialized": true, "sealed": false, "standby": false,
                "performance_standby": false, "version": "mock", "cluster_name": "mock",
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(at("auth/token/lookup-self")))
            .respond_with(ok(envelope(
                json!({
                    "accessor": "mock-accessor", "creation_ttl": 0, "display_name": "token",
                    "entity_id": "", "expire_time": null, "explicit_max_ttl": 0,
                    "meta": null, "num_uses": 0, "orphan": true, "path": "auth/token/create",
                    "policies": ["root"], "renewable": false, "ttl": 0, "type": "service",
                }),
                0,
            )))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(at("auth/token/renew-self")))
            .respond_with(ok(auth_envelope(MOCK_TOKEN, &["root"])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(at("auth/token/revoke-self")))
            .respond_with(ResponseTemplate::new(204))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(format!("^{escaped}/auth/[^/]+/login$")))
            .respond_with(
                ResponseTemplate::new(400).set_body_json(errors(&["invalid role or secret ID"])),
            )
            .with_priority(FALLBACK - 1)
            .mount(&server)
            .await;
        Mock::given(path_regex(format!("^{escaped}/sys/internal/ui/mounts/.+$")))
            .respond_with(ResponseTemplate::new(403).set_body_json(errors(&[
                "preflight capability check returned 403, please ensure client's policies grant access to path",
            ])))
            .with_priority(FALLBACK - 1)
            .mount(&server)
            .await;
        Mock::given(path_regex("^/"))
            .respond_with(ResponseTemplate::new(404).set_body_json(errors(&[])))
            .with_priority(FALLBACK)
            .mount(&server)
            .await;
        MockVault {
            server,
            base,
            state: Mutex::new(State::default()),
        }
    }

    /// Base address, e.g. `http://127.0.0.1:40123` (with the prefix of
    /// [`start_under`](Self::start_under), if any).
    pub fn addr(&self) -> String {
        let prefix = self.base.strip_suffix("/v1").unwrap_or_default();
        format!("{}{prefix}", self.server.uri())
    }

    /// The URL path of `api_path` (relative to `/v1/`).
    fn url_path(&self, api_path: &str) -> String {
        format!("{}/{}", self.base, api_path.trim_start_matches('/'))
    }

    /// Answers requests to `api_path` (relative to `/v1/`, e.g.
    /// `secret/data/app` or `sys/internal/ui/mounts/secret/app`) with
    /// `answer`, ahead of the normal answers. Among answers for the same
    /// request, the one given first applies (until its
    /// [`times`](MockAnswer::times) run out).
    pub async fn answer(&self, api_path: &str, answer: MockAnswer) {
        let mut mock = Mock::given(path(self.url_path(api_path)));
        if let Some(m) = &answer.method {
            mock = mock.and(method(m.as_str()));
        }
        if let Some(token) = &answer.token {
            mock = mock.and(header("X-Vault-Token", token.expose_secret()));
        }
        if let Some(fields) = answer.body {
            mock = mock.and(body_partial_json(fields));
        }
        let mut mock = mock.respond_with(answer.response).with_priority(OVERRIDE);
        if let Some(n) = answer.times {
            mock = mock.up_to_n_times(n);
        }
        mock.mount(&self.server).await;
    }

    /// A token to use (the mock accepts any).
    pub fn root_token(&self) -> Token {
        Token::new(MOCK_TOKEN)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers mount checks under `mount` as a KV mount of `version`.
    async fn mount(&self, mount: &str, version: KvVersion) {
        let known = self.state().mounts.insert(mount.to_owned(), version);
        match known {
            Some(old) if old == version => return,
            Some(old) => panic!("MockVault: mount {mount} is {old:?}, not {version:?}"),
            None => {}
        }
        let number = match version {
            KvVersion::V1 => "1",
            KvVersion::V2 => "2",
        };
        Mock::given(method("GET"))
            .and(path_regex(format!(
                "^{}/sys/internal/ui/mounts/{}(/.*)?$",
                regex_escape(&self.base),
                regex_escape(mount)
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(envelope(
                json!({
                    "accessor": format!("kv_{mount}"), "config": {"default_lease_ttl": 0,
                    "force_no_cache": false, "max_lease_ttl": 0}, "description": "",
                    "local": false, "options": {"version": number}, "path": format!("{mount}/"),
                    "seal_wrap": false, "type": "kv",
                }),
                0,
            )))
            .mount(&self.server)
            .await;
    }

    /// The API path of a read of `kv_path` (`mount/rest`), by the mount's
    /// version (KV v2 when the mount is unknown).
    fn read_path(&self, kv_path: &str) -> String {
        let (mount, rest) = split(kv_path);
        match self.state().mounts.get(&mount) {
            Some(KvVersion::V1) => self.url_path(&format!("{mount}/{rest}")),
            _ => self.url_path(&format!("{mount}/data/{rest}")),
        }
    }

    /// Stores `data` (a JSON object) as a new version of the KV v2 secret at
    /// `kv_path` (`mount/rest`: the first segment is the mount); returns the
    /// version. Reads without `?version=` get the latest.
    pub async fn kv2(&self, kv_path: &str, data: Value) -> u64 {
        let (mount, rest) = split(kv_path);
        self.mount(&mount, KvVersion::V2).await;
        let version = {
            let mut state = self.state();
            let n = state.versions.entry(kv_path.to_owned()).or_insert(0);
            *n += 1;
            *n
        };
        let body = envelope(kv2_data(data, version), 0);
        let api_path = self.url_path(&format!("{mount}/data/{rest}"));
        Mock::given(method("GET"))
            .and(path(api_path.as_str()))
            .and(query_param("version", version.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body.clone()))
            .mount(&self.server)
            .await;
        let latest = Mock::given(method("GET"))
            .and(path(api_path.as_str()))
            .and(query_param_is_missing("version"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount_as_scoped(&self.server)
            .await;
        // Replacing the guard unmounts the previous latest answer.
        self.state().latest.insert(api_path, latest);
        version
    }

    /// Stores `data` (a JSON object) as the KV v1 secret at `kv_path`
    /// (`mount/rest`: the first segment is the mount).
    pub async fn kv1(&self, kv_path: &str, data: Value) {
        let (mount, rest) = split(kv_path);
        self.mount(&mount, KvVersion::V1).await;
        let api_path = self.url_path(&format!("{mount}/{rest}"));
        let answer = Mock::given(method("GET"))
            .and(path(api_path.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(envelope(data, 2_764_800)))
            .mount_as_scoped(&self.server)
            .await;
        self.state().latest.insert(api_path, answer);
    }

    /// Answers reads of `kv_path` (`mount/rest`) with 403 permission denied,
    /// as a real server does for a token whose policy does not cover it
    /// (the mount check still succeeds when the mount is known).
    pub async fn deny(&self, kv_path: &str) {
        let api_path = self.read_path(kv_path);
        Mock::given(path(api_path.as_str()))
            .respond_with(
                ResponseTemplate::new(403)
                    .set_body_json(errors(&["1 error occurred:\n\t* permission denied\n\n"])),
            )
            .with_priority(OVERRIDE)
            .mount(&self.server)
            .await;
    }

    /// Answers the next `times` reads of `kv_path` (`mount/rest`) with
    /// `status` and an `errors` body; later reads get the normal answer.
    pub async fn fail(&self, kv_path: &str, status: u16, times: u64) {
        let api_path = self.read_path(kv_path);
        Mock::given(path(api_path.as_str()))
            .respond_with(ResponseTemplate::new(status).set_body_json(errors(&["mock failure"])))
            .up_to_n_times(times)
            .with_priority(OVERRIDE)
            .mount(&self.server)
            .await;
    }

    /// Accepts AppRole logins at `auth/approle/login` with a new role id and
    /// secret id (any other pair gets 400 "invalid role or secret ID");
    /// returns them.
    pub async fn login_approle(&self) -> AppRoleCredentials {
        let credentials =
            AppRoleCredentials::new("approle", unique("mock-role-id"), unique("mock-secret-id"));
        Mock::given(method("POST"))
            .and(path(self.url_path("auth/approle/login")))
            .and(body_partial_json(json!({
                "role_id": credentials.role_id(),
                "secret_id": credentials.secret_id(),
            })))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(auth_envelope(&unique("mock-approle-token"), &["default"])),
            )
            .with_priority(OVERRIDE)
            .mount(&self.server)
            .await;
        credentials
    }

    /// Every request received so far, oldest first.
    pub async fn received(&self) -> Vec<MockRequest> {
        let base = format!("{}/", self.base);
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| MockRequest {
                method: r.method.to_string(),
                path: r
                    .url
                    .path()
                    .strip_prefix(base.as_str())
                    .unwrap_or(r.url.path())
                    .to_owned(),
                query: r.url.query().map(str::to_owned),
                namespace: r
                    .headers
                    .get("x-vault-namespace")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            })
            .collect()
    }

    /// `VAULT_ADDR` and `VAULT_CREDENTIALS` for the library or the CLI.
    pub fn env_vars_for(&self, credentials: &dyn TestCredentials) -> Vec<(String, String)> {
        vec![
            ("VAULT_ADDR".to_owned(), self.addr()),
            (
                "VAULT_CREDENTIALS".to_owned(),
                credentials.credentials_json().to_string(),
            ),
        ]
    }

    /// An [`Env`] holding [`env_vars_for`](Self::env_vars_for) only.
    pub fn env_for(&self, credentials: &dyn TestCredentials) -> Env {
        Env::from_map(self.env_vars_for(credentials))
    }

    /// How many requests `api_path` (relative to `/v1/`) received so far:
    /// the attempts a client made.
    pub async fn count(&self, api_path: &str) -> usize {
        let api_path = api_path.trim_start_matches('/');
        self.received()
            .await
            .iter()
            .filter(|r| r.path == api_path)
            .count()
    }

    /// An [`Env`] of [`env_vars_for`](Self::env_vars_for) with
    /// [`root_token`](Self::root_token), plus `vars` (a variable in `vars`
    /// replaces one of the same name, e.g. `VAULT_CREDENTIALS`).
    pub fn env_with(&self, vars: &[(&str, &str)]) -> Env {
        let mut all = self.env_vars_for(&self.root_token());
        for (name, value) in vars {
            all.retain(|(n, _)| n != name);
            all.push(((*name).to_owned(), (*value).to_owned()));
        }
        Env::from_map(all)
    }

    /// A [`VaultSecret`] for `path` bound to the mock with
    /// [`root_token`](Self::root_token).
    pub fn secret(&self, path: impl AsRef<str>) -> VaultSecret {
        VaultSecret::new(path).env(self.env_for(&self.root_token()))
    }
}
