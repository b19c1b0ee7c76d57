//! What a test hands to the code under test to log in: a token, AppRole ids
//! or a Kubernetes service-account token, each as a `VAULT_CREDENTIALS`
//! mapping. Values are kept in [`SecretString`]s, so `Debug` never shows them.

use std::fmt;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::kube::KubeFixture;

/// Credentials a test can give the code under test, as the
/// `VAULT_CREDENTIALS` mapping the library reads (see
/// [`DevVault::env_for`](super::DevVault::env_for)).
pub trait TestCredentials: fmt::Debug + Send + Sync {
    /// The `VAULT_CREDENTIALS` mapping (e.g. `{"VAULT_TOKEN": "..."}`). It
    /// holds the secret values: hand it to the code under test, never to a
    /// message or a log.
    fn credentials_json(&self) -> Value;
}

/// A Vault token (the root token, or one from
/// [`DevVault::token`](super::DevVault::token)).
#[derive(Debug, Clone)]
pub struct Token(SecretString);

impl Token {
    /// Wraps a token value.
    pub fn new(token: impl Into<String>) -> Token {
        Token(SecretString::from(token.into()))
    }

    /// The token itself (e.g. for an `X-Vault-Token` header).
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl TestCredentials for Token {
    fn credentials_json(&self) -> Value {
        json!({ "VAULT_TOKEN": self.expose_secret() })
    }
}

/// An AppRole's role id and a secret id, on the AppRole mount `auth/<mount>`
/// (from [`DevVault::approle`](super::DevVault::approle) or
/// [`MockVault::login_approle`](super::MockVault::login_approle)).
#[derive(Debug, Clone)]
pub struct AppRoleCredentials {
    role_id: SecretString,
    secret_id: SecretString,
    mount: String,
    /// The secret id is a response-wrapping token.
    wrapped: bool,
}

impl AppRoleCredentials {
    /// Credentials for AppRole mount `mount` (e.g. `approle`).
    pub fn new(
        mount: impl Into<String>,
        role_id: impl Into<String>,
        secret_id: impl Into<String>,
    ) -> AppRoleCredentials {
        AppRoleCredentials {
            role_id: SecretString::from(role_id.into()),
            secret_id: SecretString::from(secret_id.into()),
            mount: mount.into(),
            wrapped: false,
        }
    }

    /// The role id.
    pub fn role_id(&self) -> &str {
        self.role_id.expose_secret()
    }

    /// The secret id.
    pub fn secret_id(&self) -> &str {
        self.secret_id.expose_secret()
    }

    /// Whether the secret id is a response-wrapping token
    /// (`VAULT_SECRET_ID_WRAPPED`).
    pub fn is_wrapped(&self) -> bool {
        self.wrapped
    }

    /// The same role with a response-wrapped secret id: `wrapping_token`
    /// (e.g. from [`Admin::approle_wrapped_secret_id`](super::Admin::approle_wrapped_secret_id)).
    pub fn with_wrapped_secret_id(&self, wrapping_token: impl Into<String>) -> AppRoleCredentials {
        AppRoleCredentials {
            secret_id: SecretString::from(wrapping_token.into()),
            wrapped: true,
            ..self.clone()
        }
    }

    /// The AppRole mount, without the `auth/` prefix.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The same role with another secret id (e.g. a fresh one from
    /// [`Admin::approle_secret_id`](super::Admin::approle_secret_id)).
    pub fn with_secret_id(&self, secret_id: impl Into<String>) -> AppRoleCredentials {
        AppRoleCredentials {
            secret_id: SecretString::from(secret_id.into()),
            wrapped: false,
            ..self.clone()
        }
    }
}

impl TestCredentials for AppRoleCredentials {
    fn credentials_json(&self) -> Value {
        let mut json = json!({
            "VAULT_ROLE_ID": self.role_id(),
            "VAULT_SECRET_ID": self.secret_id(),
            "VAULT_APPROLE_PATH": self.mount,
        });
        if self.wrapped {
            json["VAULT_SECRET_ID_WRAPPED"] = json!("true");
        }
        json
    }
}

/// A Kubernetes auth role and a service-account token file the server
/// accepts, through the in-process TokenReview stand-in it holds (from
/// [`DevVault::kubernetes`](super::DevVault::kubernetes)). Keep it alive while
/// the code under test logs in: dropping it stops the stand-in.
#[derive(Debug)]
pub struct KubernetesCredentials {
    role: String,
    mount: String,
    fixture: KubeFixture,
}

impl KubernetesCredentials {
    pub(crate) fn new(role: String, mount: String, fixture: KubeFixture) -> Self {
        KubernetesCredentials {
            role,
            mount,
            fixture,
        }
    }

    /// The Kubernetes auth role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The Kubernetes auth mount, without the `auth/` prefix.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The file holding the service-account token.
    pub fn token_path(&self) -> &Path {
        self.fixture.token_path()
    }

    /// The TokenReview stand-in (to accept more tokens, rotate the file or
    /// see which tokens the server sent for review).
    pub fn fixture(&self) -> &KubeFixture {
        &self.fixture
    }
}

impl TestCredentials for KubernetesCredentials {
    fn credentials_json(&self) -> Value {
        json!({
            "VAULT_KUBE_AUTH_ROLE": self.role,
            "VAULT_KUBE_AUTH_PATH": self.mount,
            "VAULT_KUBE_TOKEN_FILE": self.token_path().display().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_token_or_id() {
        let token = Token::new("s.token-value");
        assert_eq!(format!("{token:?}"), "Token(SecretBox<str>([REDACTED]))");
        let approle = AppRoleCredentials::new("approle-x", "role-id-value", "secret-id-value");
        assert_eq!(
            format!("{approle:?}"),
            "AppRoleCredentials { role_id: SecretBox<str>([REDACTED]), \
             secret_id: SecretBox<str>([REDACTED]), mount: \"approle-x\", wrapped: false }"
        );
        let wrapped = approle.with_wrapped_secret_id("wrapping-token-value");
        let shown = format!("{wrapped:?}");
        assert!(shown.ends_with("wrapped: true }"), "{shown}");
        assert!(!shown.contains("wrapping-token-value"), "{shown}");
        assert_eq!(
            wrapped.credentials_json()["VAULT_SECRET_ID_WRAPPED"],
            serde_json::json!("true")
        );
    }

    #[test]
    fn credentials_json_has_the_library_keys() {
        assert_eq!(
            Token::new("t").credentials_json(),
            json!({"VAULT_TOKEN": "t"})
        );
        assert_eq!(
            AppRoleCredentials::new("ar", "r", "s").credentials_json(),
            json!({"VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": "s", "VAULT_APPROLE_PATH": "ar"})
        );
    }
}
