//! A small admin HTTP client for provisioning the server under test (plain
//! API calls with a root token; independent of the library's own transport,
//! so a bug there cannot hide behind the fixture).

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Client;
pub(crate) use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// Builds an HTTP client trusting `ca_cert` (PEM file) in addition to
/// nothing else when given, the platform roots otherwise. It keeps no idle
/// connection, so one client serves tests on different async runtimes (a
/// pooled connection belongs to the runtime that opened it).
pub(crate) fn try_http_client(ca_cert: Option<&Path>) -> Result<Client, String> {
    let mut builder = crate::tls::backend(Client::builder())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0);
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| format!("parse {}: {e}", path.display()))?;
        builder = builder.tls_certs_only([cert]);
    }
    builder
        .build()
        .map_err(|e| format!("build HTTP client: {e}"))
}

/// [`try_http_client`], panicking on error.
pub(crate) fn http_client(ca_cert: Option<&Path>) -> Client {
    try_http_client(ca_cert).unwrap_or_else(|e| panic!("admin HTTP client: {e}"))
}

/// Status and JSON body of one API call (`Value::Null` for an empty body, a
/// JSON string for a body that is not JSON).
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status code.
    pub status: u16,
    /// Parsed body.
    pub body: Value,
}

impl RawResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body, panicking (with `what`, the status and the body) unless the
    /// status is 2xx.
    #[track_caller]
    pub fn expect_ok(self, what: &str) -> Value {
        assert!(
            self.is_success(),
            "{what}: HTTP {} {}",
            self.status,
            self.body
        );
        self.body
    }

    /// The `errors` array of an error answer, joined (empty if none).
    pub fn errors(&self) -> String {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }
}

/// Admin client: raw API calls plus the provisioning the tests need. All
/// paths are relative to `/v1/` (e.g. `sys/mounts/kv`). Provisioning methods
/// panic with context when the server refuses.
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
    addr: String,
    token: SecretString,
    namespace: Option<String>,
}

impl Admin {
    /// Client for `addr` (e.g. `http://127.0.0.1:8200`) with `token`,
    /// trusting `ca_cert` (PEM file) for https.
    pub fn new(addr: &str, token: &str, ca_cert: Option<&Path>) -> Admin {
        Admin {
            client: http_client(ca_cert),
            addr: addr.trim_end_matches('/').to_owned(),
            token: SecretString::from(token),
            namespace: None,
        }
    }

    /// The same client acting inside namespace `namespace` (sent as
    /// `X-Vault-Namespace`); every method then works relative to it.
    pub fn in_namespace(&self, namespace: &str) -> Admin {
        Admin {
            namespace: Some(namespace.to_owned()),
            ..self.clone()
        }
    }

    /// The same client using another token (e.g. to check what a policy
    /// allows).
    pub fn with_token(&self, token: &str) -> Admin {
        Admin {
            token: SecretString::from(token),
            ..self.clone()
        }
    }

    /// Server address this client talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Namespace this client acts in, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    // ----- raw calls ------------------------------------------------------

    /// `method /v1/<path>` with an optional JSON body. Panics only when the
    /// server cannot be reached.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> RawResponse {
        self.try_request(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Admin::request`], with an error (naming the call) instead of a
    /// panic when the server cannot be reached.
    pub async fn try_request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<RawResponse, String> {
        let url = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let mut request = self
            .client
            .request(method.clone(), &url)
            .header("X-Vault-Token", self.token.expose_secret());
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(RawResponse { status, body })
    }

    /// `GET /v1/<path>`.
    pub async fn get(&self, path: &str) -> RawResponse {
        self.request(Method::GET, path, None).await
    }

    /// `LIST /v1/<path>`.
    pub async fn list(&self, path: &str) -> RawResponse {
        let list = Method::from_bytes(b"LIST").expect("LIST is a valid method");
        self.request(list, path, None).await
    }

    /// `POST /v1/<path>` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> RawResponse {
        self.request(Method::POST, path, Some(body)).await
    }

    /// `PUT /v1/<path>` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> RawResponse {
        self.request(Method::PUT, path, Some(body)).await
    }

    /// `DELETE /v1/<path>`.
    pub async fn delete(&self, path: &str) -> RawResponse {
        self.request(Method::DELETE, path, None).await
    }

    /// `method /v1/<path>`, panicking unless the answer is 2xx; returns the
    /// body.
    pub async fn call_ok(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let what = self.describe(&method, path);
        self.request(method, path, body).await.expect_ok(&what)
    }

    fn describe(&self, method: &Method, path: &str) -> String {
        match &self.namespace {
            Some(ns) => format!("{method} {}/v1/{path} (namespace {ns})", self.addr),
            None => format!("{method} {}/v1/{path}", self.addr),
        }
    }

    // ----- secrets engines ------------------------------------------------

    /// Mounts a KV engine of `version` 1 or 2 at `path` (may be nested, e.g.
    /// `team-xyz/kv`). Waits until a KV v2 mount serves requests.
    pub async fn mount_kv(&self, path: &str, version: u8) {
        assert!(
            version == 1 || version == 2,
            "KV version must be 1 or 2, not {version}"
        );
        let body = json!({"type": "kv", "options": {"version": version.to_string()}});
        self.call_ok(Method::POST, &format!("sys/mounts/{path}"), Some(&body))
            .await;
        if version == 2 {
            // A new v2 mount may briefly answer "upgrading"; wait for it.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let r = self.get(&format!("{path}/config")).await;
                if r.is_success() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "KV v2 mount {path} not ready: HTTP {} {}",
                    r.status,
                    r.body
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Writes `data` (a JSON object) at `path` of KV v2 mount `mount`;
    /// returns the new version number.
    pub async fn kv2_put(&self, mount: &str, path: &str, data: Value) -> u64 {
        let body = json!({ "data": data });
        let answer = self
            .call_ok(Method::POST, &format!("{mount}/data/{path}"), Some(&body))
            .await;
        answer["data"]["version"]
            .as_u64()
            .unwrap_or_else(|| panic!("KV v2 write to {mount}/{path}: no version in {answer}"))
    }

    /// Reads the latest (or given) version at `path` of KV v2 mount `mount`
    /// (the `data` of the answer: `{"data": ..., "metadata": ...}`).
    pub async fn kv2_get(&self, mount: &str, path: &str, version: Option<u64>) -> Value {
        let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
        let answer = self
            .call_ok(Method::GET, &format!("{mount}/data/{path}{query}"), None)
            .await;
        answer["data"].clone()
    }

    /// Metadata of `path` in KV v2 mount `mount` (the `data` of the answer,
    /// with `versions`, `current_version`, ...).
    pub async fn kv2_metadata(&self, mount: &str, path: &str) -> Value {
        let answer = self
            .call_ok(Method::GET, &format!("{mount}/metadata/{path}"), None)
            .await;
        answer["data"].clone()
    }

    /// Soft-deletes `versions` of `path` in KV v2 mount `mount`.
    pub async fn kv2_delete_versions(&self, mount: &str, path: &str, versions: &[u64]) {
        let body = json!({ "versions": versions });
        self.call_ok(Method::POST, &format!("{mount}/delete/{path}"), Some(&body))
            .await;
    }

    /// Destroys `versions` of `path` in KV v2 mount `mount` for good.
    pub async fn kv2_destroy_versions(&self, mount: &str, path: &str, versions: &[u64]) {
        let body = json!({ "versions": versions });
        self.call_ok(Method::PUT, &format!("{mount}/destroy/{path}"), Some(&body))
            .await;
    }

    /// Soft-deletes the latest version of `path` in KV v2 mount `mount`.
    pub async fn kv2_delete_latest(&self, mount: &str, path: &str) {
        self.call_ok(Method::DELETE, &format!("{mount}/data/{path}"), None)
            .await;
    }

    /// Writes `data` (a JSON object) at `path` of KV v1 mount `mount`.
    pub async fn kv1_put(&self, mount: &str, path: &str, data: Value) {
        self.call_ok(Method::POST, &format!("{mount}/{path}"), Some(&data))
            .await;
    }

    // ----- policies and tokens --------------------------------------------

    /// Creates or replaces ACL policy `name` with the HCL text `hcl`.
    pub async fn put_policy(&self, name: &str, hcl: &str) {
        let body = json!({ "policy": hcl });
        self.call_ok(
            Method::PUT,
            &format!("sys/policies/acl/{name}"),
            Some(&body),
        )
        .await;
    }

    /// Creates a token with `policies` (plus `default`) and `ttl` (e.g.
    /// `"1h"`; the server default when `None`); returns it.
    pub async fn create_token(&self, policies: &[&str], ttl: Option<&str>) -> String {
        let mut body = json!({ "policies": policies });
        if let Some(ttl) = ttl {
            body["ttl"] = json!(ttl);
        }
        self.create_token_with(&body).await
    }

    /// Creates a token from a full `auth/token/create` request body (for
    /// `num_uses`, `renewable`, `explicit_max_ttl`, ...); returns it.
    pub async fn create_token_with(&self, body: &Value) -> String {
        self.create_token_auth(body).await.0
    }

    /// Creates a token from a full `auth/token/create` request body; returns
    /// the token and its accessor.
    pub(crate) async fn create_token_auth(&self, body: &Value) -> (String, String) {
        let answer = self
            .call_ok(Method::POST, "auth/token/create", Some(body))
            .await;
        let field = |name: &str| {
            answer["auth"][name]
                .as_str()
                .unwrap_or_else(|| panic!("auth/token/create: no {name} in the answer"))
                .to_owned()
        };
        (field("client_token"), field("accessor"))
    }

    // ----- auth methods ---------------------------------------------------

    /// Enables auth method `kind` (e.g. `approle`, `kubernetes`) at
    /// `auth/<path>`.
    pub async fn enable_auth(&self, path: &str, kind: &str) {
        let body = json!({ "type": kind });
        self.call_ok(Method::POST, &format!("sys/auth/{path}"), Some(&body))
            .await;
    }

    /// Creates AppRole `role` on the AppRole mount `auth/<auth_path>` with
    /// `policies`; returns its role id and a new secret id.
    pub async fn approle_role(
        &self,
        auth_path: &str,
        role: &str,
        policies: &[&str],
    ) -> (String, String) {
        let body = json!({ "token_policies": policies, "token_ttl": "1h" });
        self.call_ok(
            Method::POST,
            &format!("auth/{auth_path}/role/{role}"),
            Some(&body),
        )
        .await;
        let answer = self
            .call_ok(
                Method::GET,
                &format!("auth/{auth_path}/role/{role}/role-id"),
                None,
            )
            .await;
        let role_id = answer["data"]["role_id"]
            .as_str()
            .unwrap_or_else(|| panic!("AppRole {role}: no role_id in {answer}"))
            .to_owned();
        let secret_id = self.approle_secret_id(auth_path, role).await;
        (role_id, secret_id)
    }

    /// A new secret id for AppRole `role` on `auth/<auth_path>`.
    pub async fn approle_secret_id(&self, auth_path: &str, role: &str) -> String {
        let answer = self
            .call_ok(
                Method::POST,
                &format!("auth/{auth_path}/role/{role}/secret-id"),
                Some(&json!({})),
            )
            .await;
        answer["data"]["secret_id"]
            .as_str()
            .unwrap_or_else(|| panic!("AppRole {role}: no secret_id in {answer}"))
            .to_owned()
    }

    /// A new secret id for AppRole `role` on `auth/<auth_path>`,
    /// response-wrapped (`X-Vault-Wrap-TTL`): the single-use wrapping token
    /// an orchestrator would hand a service.
    pub async fn approle_wrapped_secret_id(&self, auth_path: &str, role: &str) -> String {
        self.wrapped(
            &format!("auth/{auth_path}/role/{role}/secret-id"),
            &json!({}),
        )
        .await
    }

    /// `data` wrapped by `sys/wrapping/wrap`: a wrapping token whose
    /// creation path is `sys/wrapping/wrap`, not an AppRole's.
    pub async fn wrap(&self, data: &Value) -> String {
        self.wrapped("sys/wrapping/wrap", data).await
    }

    /// `POST <path>` answered wrapped (60 s): the wrapping token.
    async fn wrapped(&self, path: &str, body: &Value) -> String {
        let url = format!("{}/v1/{path}", self.addr);
        let mut request = self
            .client
            .post(&url)
            .header("X-Vault-Token", self.token.expose_secret())
            .header("X-Vault-Wrap-TTL", "60s")
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        let text = async { request.send().await?.text().await }
            .await
            .unwrap_or_else(|e: reqwest::Error| panic!("POST {path} (wrapped): {e}"));
        let answer: Value = serde_json::from_str(&text).unwrap_or_default();
        answer["wrap_info"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("POST {path} (wrapped): no wrap_info.token in the answer"))
            .to_owned()
    }

    /// Configures the Kubernetes auth mount `auth/<auth_path>` to review
    /// tokens at `kubernetes_host` (e.g. a [`KubeFixture`](super::KubeFixture)) with a
    /// placeholder reviewer JWT and CA certificate.
    pub async fn kubernetes_config(&self, auth_path: &str, kubernetes_host: &str) {
        let body = json!({
            "kubernetes_host": kubernetes_host,
            "disable_local_ca_jwt": true,
            "token_reviewer_jwt": "token-reviewer-jwt-for-tests",
            "kubernetes_ca_cert": PLACEHOLDER_CA_PEM,
        });
        self.call_ok(
            Method::POST,
            &format!("auth/{auth_path}/config"),
            Some(&body),
        )
        .await;
    }

    /// Creates Kubernetes auth role `role` on `auth/<auth_path>` bound to the
    /// given service-account names and namespaces, granting `policies`.
    pub async fn kubernetes_role(
        &self,
        auth_path: &str,
        role: &str,
        sa_names: &[&str],
        sa_namespaces: &[&str],
        policies: &[&str],
    ) {
        let body = json!({
            "bound_service_account_names": sa_names,
            "bound_service_account_namespaces": sa_namespaces,
            "token_policies": policies,
            "token_ttl": "1h",
        });
        self.call_ok(
            Method::POST,
            &format!("auth/{auth_path}/role/{role}"),
            Some(&body),
        )
        .await;
    }

    // ----- namespaces and system ------------------------------------------

    /// Creates namespace `name` (a child of this client's namespace, if
    /// any). Act inside it with [`Admin::in_namespace`].
    pub async fn create_namespace(&self, name: &str) {
        self.call_ok(
            Method::POST,
            &format!("sys/namespaces/{name}"),
            Some(&json!({})),
        )
        .await;
    }

    /// Whether the server has namespaces (OpenBao does; HashiCorp Vault only
    /// in its Enterprise edition).
    pub async fn namespaces_supported(&self) -> bool {
        let r = self.list("sys/namespaces").await;
        // 404 with errors [] = none yet; "unsupported path" = no namespaces.
        r.is_success() || (r.status == 404 && !r.errors().contains("unsupported path"))
    }

    /// Seals the server (only on a server of the test's own, e.g. from
    /// [`DevVault::start`](super::DevVault::start)!).
    pub async fn seal(&self) {
        self.call_ok(Method::PUT, "sys/seal", None).await;
    }
}

/// A well-formed self-signed certificate; Kubernetes auth requires some CA
/// when `disable_local_ca_jwt` is set, even for an http host.
const PLACEHOLDER_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIDHTCCAgWgAwIBAgIUPebtD5KMoS1V2jwifxrwcyFoAoUwDQYJKoZIhvcNAQEL
BQAwHTEbMBkGA1UEAwwSZmFrZS1rdWJlcm5ldGVzLWNhMCAXDTI2MTEyMzE4MTYw
N1oYDzIxMjYxMDMwMTgxNjA3WjAdMRswGQYDVQQDDBJmYWtlLWt1YmVybmV0ZXMt
Y2EwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQC8QrwD/Qczf46IyFiU
B0hRqDy1otKRZN6FrGDDMDdFkdbg0cWSrsPf4hv8d9NXDrntngEO1kqTxbQRV/7Y
MKM15gXwbJXMImM7V8YKubtcEWotNkVfHBouoIN6LdurBTIXszj8BR2gvvm582yD
g9KP3yOsu1ogiS7rA9Tj+5wKeqKJJutqB4eT45/er1qTnLE2qvhNoBJAiUrll+yP
NgcFeTkQr0DZPGKA981VtH/ALKi9B6YrkRlAdvw/S9ow+ZbIm3i2PrFtmXmgBOfT
6hnKPw3YzP6r2pmkXeVIyXbP0XDmhUg2fr/yUaLtuhfoFc5HZkH3lLkcqUL7yDhL
2Q6JAgMBAAGjUzBRMB0GA1UdDgQWBBSsBlMYEXIi32zyXlhxQRG/Oc6kkDAfBgNV
HSMEGDAWgBSsBlMYEXIi32zyXlhxQRG/Oc6kkDAPBgNVHRMBAf8EBTADAQH/MA0G
CSqGSIb3DQEBCwUAA4IBAQAOxVXvLNV+YeZYOYNENxF27gv/+qvcUBGWFzk1k2Ey
U/2KFR6CEjxRjRXqvwL2xrKBz8naKcgTmC0MJsJUGHS8MTAmzBIi07c8vZ1Xw4H1
ggWnfGN7aDduYxw58xO2DFsB0+ZjYewMd+UqQRz/8MAXK6FITmnbfTo2hS8rWfqf
xyeConOSEAawF4GU34aVhspLYCoDRcksBaJyvtyD8caVVAOAf+YjEvVSATNpBcy2
Anr+dA0H+gZhKABiV0zw3t3LXlgPxJMS33e/hUYTKlkzToTtbETGoHEONc971gsL
hIlnSKH+dgJ4+KZstrQ0o18FwvckCh+8GhM5ytgfhoB9
-----END CERTIFICATE-----
";
