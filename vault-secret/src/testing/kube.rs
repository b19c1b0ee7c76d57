//! A fake Kubernetes API (only the TokenReview endpoint) and service-account
//! tokens it vouches for, for testing the Kubernetes auth method.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::admin::Admin;

/// Path the Kubernetes auth method posts TokenReviews to.
const TOKEN_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// A Kubernetes service account (what a TokenReview reports a token
/// belongs to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Service-account name.
    pub name: String,
    /// Service-account uid.
    pub uid: String,
}

impl ServiceAccount {
    /// Service account `namespace`/`name` with a fresh uid.
    pub fn new(namespace: &str, name: &str) -> ServiceAccount {
        let b = pseudo_random_bytes(16);
        let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
        let uid = format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        ServiceAccount {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid,
        }
    }

    /// `system:serviceaccount:<namespace>:<name>`.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }
}

/// A fresh, well-formed service-account JWT for `account` with the legacy
/// (secret-based) claims: RS256 header, random signature. The server does
/// not check the signature (no `pem_keys` configured); it asks the
/// TokenReview endpoint instead, so only tokens a [`KubeFixture`] accepts
/// log in.
pub fn service_account_jwt(account: &ServiceAccount) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let claims = json!({
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": account.namespace,
        "kubernetes.io/serviceaccount/secret.name": format!("{}-token-{}", account.name, &account.uid[..5]),
        "kubernetes.io/serviceaccount/service-account.name": account.name,
        "kubernetes.io/serviceaccount/service-account.uid": account.uid,
        "sub": account.username(),
    });
    format!(
        "{}.{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes()),
        // An RSA-2048 signature is 256 bytes.
        base64url(&pseudo_random_bytes(256))
    )
}

/// A stand-in for the Kubernetes API: a TokenReview endpoint (HTTP 201
/// answers, as Kubernetes gives) that authenticates exactly the tokens it
/// issued ([`KubeFixture::jwt`], [`KubeFixture::accept`]) and answers
/// `authenticated: false` for any other, plus the fixture's token in a file
/// (with a trailing newline, like many real token files).
#[derive(Debug)]
pub struct KubeFixture {
    mock: MockServer,
    host: String,
    account: ServiceAccount,
    jwt: SecretString,
    token_path: PathBuf,
    _dir: TempDir,
}

impl KubeFixture {
    /// Starts the fake API with one accepted token, for service account
    /// `namespace`/`name` (fresh uid), written to [`KubeFixture::token_path`].
    ///
    /// The fake API listens on 127.0.0.1, which a server on this machine
    /// reaches. For a server elsewhere (e.g. a Vault in Docker, reached with
    /// [`DevVault::attach`](super::DevVault::attach)), set
    /// `VAULT_DEV_KUBE_HOST` (or `VAULT_IT_KUBE_HOST`, read too) to this
    /// machine's name as the server sees it (e.g. `host.docker.internal`):
    /// the fake API then listens on all interfaces and
    /// [`KubeFixture::kubernetes_host`] uses that name.
    pub async fn start(namespace: &str, name: &str) -> KubeFixture {
        let public_host = ["VAULT_DEV_KUBE_HOST", "VAULT_IT_KUBE_HOST"]
            .into_iter()
            .find_map(|name| std::env::var(name).ok().filter(|h| !h.is_empty()));
        let bind = if public_host.is_some() {
            "0.0.0.0:0"
        } else {
            "127.0.0.1:0"
        };
        let listener = TcpListener::bind(bind)
            .unwrap_or_else(|e| panic!("bind the fake Kubernetes API on {bind}: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local address of the fake Kubernetes API: {e}"))
            .port();
        let host = match public_host {
            Some(host) => format!("http://{host}:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let mock = MockServer::builder().listener(listener).start().await;
        // Anything not accepted explicitly (lower priority than those).
        Mock::given(method("POST"))
            .and(path(TOKEN_REVIEW_PATH))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "metadata": {"creationTimestamp": null},
                "spec": {},
                "status": {"user": {}, "error": "[invalid bearer token, token lookup failed]"},
            })))
            .with_priority(10)
            .named("TokenReview of an unknown token")
            .mount(&mock)
            .await;
        let dir = tempfile::Builder::new()
            .prefix("dev-vault-kube-")
            .tempdir()
            .unwrap_or_else(|e| panic!("create a directory for the service-account token: {e}"));
        let token_path = dir.path().join("token");
        let account = ServiceAccount::new(namespace, name);
        let fixture = KubeFixture {
            mock,
            host,
            jwt: SecretString::from(String::new()),
            account: account.clone(),
            token_path,
            _dir: dir,
        };
        let jwt = fixture.accept(&account).await;
        fixture.write_token(&jwt);
        KubeFixture {
            jwt: SecretString::from(jwt),
            ..fixture
        }
    }

    /// The service account of [`KubeFixture::jwt`].
    pub fn account(&self) -> &ServiceAccount {
        &self.account
    }

    /// The accepted token (also in [`KubeFixture::token_path`] at first).
    pub fn jwt(&self) -> &str {
        self.jwt.expose_secret()
    }

    /// File holding the token (followed by a newline).
    pub fn token_path(&self) -> &Path {
        &self.token_path
    }

    /// Base URL of the fake API, for `kubernetes_host`.
    pub fn kubernetes_host(&self) -> &str {
        &self.host
    }

    /// Issues a new token for `account` that the TokenReview endpoint
    /// accepts from now on; returns it (it is not written to the file).
    pub async fn accept(&self, account: &ServiceAccount) -> String {
        let jwt = service_account_jwt(account);
        Mock::given(method("POST"))
            .and(path(TOKEN_REVIEW_PATH))
            .and(body_partial_json(json!({"spec": {"token": jwt}})))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "metadata": {"creationTimestamp": null},
                "spec": {"token": jwt},
                "status": {
                    "authenticated": true,
                    "user": {
                        "username": account.username(),
                        "uid": account.uid,
                        "groups": [
                            "system:serviceaccounts",
                            format!("system:serviceaccounts:{}", account.namespace),
                            "system:authenticated",
                        ],
                    },
                },
            })))
            .with_priority(1)
            .named(format!("TokenReview of a token of {}", account.username()))
            .mount(&self.mock)
            .await;
        jwt
    }

    /// Replaces the token file's content with `jwt` and a newline (to
    /// simulate rotation).
    pub fn write_token(&self, jwt: &str) {
        std::fs::write(&self.token_path, format!("{jwt}\n")).unwrap_or_else(|e| {
            panic!(
                "write service-account token {}: {e}",
                self.token_path.display()
            )
        });
    }

    /// Enables Kubernetes auth at `auth/<auth_path>`, points it at this fake
    /// API and creates `role` bound to this fixture's service account,
    /// granting `policies`.
    pub async fn configure(&self, admin: &Admin, auth_path: &str, role: &str, policies: &[&str]) {
        admin.enable_auth(auth_path, "kubernetes").await;
        admin
            .kubernetes_config(auth_path, self.kubernetes_host())
            .await;
        admin
            .kubernetes_role(
                auth_path,
                role,
                &[&self.account.name],
                &[&self.account.namespace],
                policies,
            )
            .await;
    }

    /// Tokens the server sent for review so far, oldest first.
    ///
    /// These are token values: keep them out of messages.
    pub async fn reviewed_tokens(&self) -> Vec<String> {
        self.mock
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|request| request.body_json::<Value>().ok())
            .filter_map(|body| body["spec"]["token"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Unpadded base64url, as JWTs write it.
pub(super) fn base64url(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// Bytes that differ between calls (xorshift seeded with the time, the
/// process id and a counter; not cryptographic, and need not be).
pub(super) fn pseudo_random_bytes(len: usize) -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = nanos
        ^ u64::from(std::process::id()).rotate_left(32)
        ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // Xorshift must not start at zero.
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
