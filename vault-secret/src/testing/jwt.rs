//! JWT auth for tests: a signing key whose public half the server trusts,
//! tokens minted with it, and a stand-in for GitHub Actions' OIDC token
//! endpoint that hands them out.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::credentials::TestCredentials;
use super::kube::{base64url, pseudo_random_bytes};

/// The path of the Actions stand-in's token endpoint.
const ACTIONS_PATH: &str = "/_apis/token";

/// The audience GitHub gives a token asked for without one (it is the
/// repository owner's URL there; any fixed value does here).
pub const ACTIONS_DEFAULT_AUDIENCE: &str = "https://github.com/dev-vault";

/// An RSA key that signs RS256 JWTs, its public half in PEM for the
/// server's `jwt_validation_pubkeys`. `Debug` shows no key material.
pub struct JwtSigner {
    key: RsaKeyPair,
    public_pem: String,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner").finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// A fresh RSA-2048 key.
    pub fn generate() -> JwtSigner {
        let key = RsaKeyPair::generate(KeySize::Rsa2048)
            .unwrap_or_else(|e| panic!("generate an RSA key for JWTs: {e}"));
        let der = key
            .public_key()
            .as_der()
            .unwrap_or_else(|e| panic!("encode the JWT public key: {e}"));
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der.as_ref());
        let mut public_pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            public_pem.push_str(&String::from_utf8_lossy(line));
            public_pem.push('\n');
        }
        public_pem.push_str("-----END PUBLIC KEY-----\n");
        JwtSigner { key, public_pem }
    }

    /// The public key, PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// An RS256 JWT carrying `claims` (a JSON object), signed with this key.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT"});
        let input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .unwrap_or_else(|e| panic!("sign a JWT: {e}"));
        format!("{input}.{}", base64url(&signature))
    }
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A JWT auth role on a [`DevVault`](super::DevVault) and the means to log
/// in to it: tokens minted for its audience and claims, and a stand-in for
/// GitHub Actions' token endpoint (from [`DevVault::jwt`](super::DevVault::jwt)).
/// Keep it alive while the code under test logs in: dropping it stops the
/// stand-in. `Debug` shows no token.
#[derive(Debug)]
pub struct JwtCredentials {
    role: String,
    mount: String,
    audience: String,
    subject: String,
    signer: Arc<JwtSigner>,
    actions: MockServer,
    request_token: SecretString,
}

impl JwtCredentials {
    pub(crate) async fn new(
        role: String,
        mount: String,
        audience: String,
        subject: String,
        signer: JwtSigner,
    ) -> JwtCredentials {
        let signer = Arc::new(signer);
        let request_token = SecretString::from(format!(
            "actions-request-{}",
            base64url(&pseudo_random_bytes(18))
        ));
        let actions = MockServer::start().await;
        let (minter, sub) = (Arc::clone(&signer), subject.clone());
        Mock::given(method("GET"))
            .and(path(ACTIONS_PATH))
            .and(header(
                "authorization",
                format!("Bearer {}", request_token.expose_secret()).as_str(),
            ))
            .respond_with(move |request: &Request| {
                let audience = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "audience")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_else(|| ACTIONS_DEFAULT_AUDIENCE.to_owned());
                let jwt = minter.sign(&claims(&sub, &audience, 300));
                ResponseTemplate::new(200).set_body_json(json!({ "count": 1, "value": jwt }))
            })
            .with_priority(1)
            .named("Actions ID token for the right request token")
            .mount(&actions)
            .await;
        // GitHub's answer to a missing or wrong request token.
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401).set_body_string("Bad credentials"))
            .with_priority(10)
            .named("Actions ID token request refused")
            .mount(&actions)
            .await;
        JwtCredentials {
            role,
            mount,
            audience,
            subject,
            signer,
            actions,
            request_token,
        }
    }

    /// The JWT auth role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The JWT auth mount, without the `auth/` prefix.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The audience the role is bound to.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The key the server trusts (to sign tokens with other claims).
    pub fn signer(&self) -> &JwtSigner {
        &self.signer
    }

    /// A fresh token the role accepts (its audience and subject, valid for
    /// five minutes). A token value: keep it out of messages.
    pub fn mint(&self) -> String {
        self.mint_for(&self.audience)
    }

    /// A fresh token for another audience (the role refuses it unless
    /// `audience` is its own).
    pub fn mint_for(&self, audience: &str) -> String {
        self.signer.sign(&claims(&self.subject, audience, 300))
    }

    /// The variables GitHub's runner sets for a job with `id-token: write`,
    /// pointing at the stand-in: `ACTIONS_ID_TOKEN_REQUEST_URL` (with its
    /// `api-version` query, as GitHub's) and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub fn actions_vars(&self) -> Vec<(String, String)> {
        vec![
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL".to_owned(),
                format!("{}{ACTIONS_PATH}?api-version=2.0", self.actions.uri()),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_owned(),
                self.request_token.expose_secret().to_owned(),
            ),
        ]
    }

    /// The requests the Actions stand-in received, oldest first: whether
    /// each carried the right bearer request token, and the audience it asked for.
    pub async fn actions_requests(&self) -> Vec<ActionsRequest> {
        let bearer = format!("Bearer {}", self.request_token.expose_secret());
        self.actions
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| ActionsRequest {
                bearer_ok: r
                    .headers
                    .get("authorization")
                    .is_some_and(|v| v.as_bytes() == bearer.as_bytes()),
                audience: r
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "audience")
                    .map(|(_, v)| v.into_owned()),
            })
            .collect()
    }
}

/// The claims of a token for `subject` and `audience`, valid `ttl` seconds.
fn claims(subject: &str, audience: &str, ttl: u64) -> Value {
    let now = now();
    json!({
        "iss": "https://token.actions.dev-vault.invalid",
        "sub": subject,
        "aud": audience,
        "iat": now,
        "nbf": now.saturating_sub(5),
        "exp": now + ttl,
    })
}

/// One request the Actions stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActionsRequest {
    /// It carried `Authorization: Bearer <the request token>`.
    pub bearer_ok: bool,
    /// The `audience` query parameter, if any.
    pub audience: Option<String>,
}

impl TestCredentials for JwtCredentials {
    /// The role, the mount and a freshly minted token (`VAULT_JWT`).
    fn credentials_json(&self) -> Value {
        json!({
            "VAULT_JWT_ROLE": self.role,
            "VAULT_JWT_PATH": self.mount,
            "VAULT_JWT": self.mint(),
        })
    }
}
