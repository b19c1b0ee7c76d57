//! Provisioning a [`DevVault`]: each call one request or a few, under a
//! unique name, returning what a test needs. Each panics, naming the call and
//! the server's answer, when the server refuses.

use serde_json::{Value, json};

use super::admin::Method;
use super::cert::{CertCredentials, TestCertificates};
use super::credentials::{AppRoleCredentials, KubernetesCredentials, Token};
use super::jwt::{JwtCredentials, JwtSigner};
use super::kube::KubeFixture;
use super::server::DevVault;
use super::unique;
use crate::mounts::KvVersion;

impl DevVault {
    /// Mounts a fresh KV engine of `version` under a unique name (e.g.
    /// `kv2-1a2b3c-7`); returns the mount path.
    pub async fn kv_mount(&self, version: KvVersion) -> String {
        let (prefix, number) = match version {
            KvVersion::V1 => ("kv1", 1),
            KvVersion::V2 => ("kv2", 2),
        };
        let mount = unique(prefix);
        self.client().mount_kv(&mount, number).await;
        self.undo_later(Method::DELETE, format!("sys/mounts/{mount}"), None, false);
        mount
    }

    /// The mount (without trailing slash), the rest of `path` and the KV
    /// version of the mount holding `path` (`mount/rest`).
    pub async fn kv_mount_of(&self, path: &str) -> (String, String, KvVersion) {
        let path = path.trim_matches('/');
        let answer = self
            .client()
            .call_ok(Method::GET, &format!("sys/internal/ui/mounts/{path}"), None)
            .await;
        let mount = answer["data"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("no mount holds {path}: {answer}"))
            .trim_end_matches('/')
            .to_owned();
        let rest = path
            .strip_prefix(&mount)
            .unwrap_or(path)
            .trim_start_matches('/')
            .to_owned();
        let version = if answer["data"]["options"]["version"] == "2" {
            KvVersion::V2
        } else {
            KvVersion::V1
        };
        (mount, rest, version)
    }

    /// Writes the JSON object `data` at `path` (`mount/rest`, the mount
    /// found as the library finds it), KV v1 or v2, whichever the mount is;
    /// returns the new version on KV v2 (`None` on KV v1).
    pub async fn kv_put(&self, path: &str, data: Value) -> Option<u64> {
        let (mount, rest, version) = self.kv_mount_of(path).await;
        match version {
            KvVersion::V2 => Some(self.client().kv2_put(&mount, &rest, data).await),
            KvVersion::V1 => {
                self.client().kv1_put(&mount, &rest, data).await;
                None
            }
        }
    }

    /// Soft-deletes `versions` of the KV v2 secret at `path` (a read of one
    /// then fails as deleted; it can be undeleted).
    pub async fn kv_delete_versions(&self, path: &str, versions: &[u64]) {
        let (mount, rest, _) = self.kv_mount_of(path).await;
        self.client()
            .kv2_delete_versions(&mount, &rest, versions)
            .await;
    }

    /// Soft-deletes the latest version of the KV v2 secret at `path`.
    pub async fn kv_delete_latest(&self, path: &str) {
        let (mount, rest, _) = self.kv_mount_of(path).await;
        self.client().kv2_delete_latest(&mount, &rest).await;
    }

    /// Destroys `versions` of the KV v2 secret at `path` for good.
    pub async fn kv_destroy_versions(&self, path: &str, versions: &[u64]) {
        let (mount, rest, _) = self.kv_mount_of(path).await;
        self.client()
            .kv2_destroy_versions(&mount, &rest, versions)
            .await;
    }

    /// Creates an ACL policy from the HCL text `hcl`, named uniquely after
    /// `name`; returns the policy's name.
    pub async fn policy(&self, name: &str, hcl: &str) -> String {
        let name = unique(name);
        self.client().put_policy(&name, hcl).await;
        self.undo_later(
            Method::DELETE,
            format!("sys/policies/acl/{name}"),
            None,
            false,
        );
        name
    }

    /// A new token with `policies` (plus `default`), valid for an hour. With
    /// no policies it has `default` only (not the root token's policies, as
    /// an empty list would give).
    pub async fn token(&self, policies: &[&str]) -> Token {
        let mut policies = policies.to_vec();
        policies.push("default");
        let body = json!({ "policies": policies, "ttl": "1h" });
        let (token, accessor) = self.client().create_token_auth(&body).await;
        self.undo_later(
            Method::POST,
            "auth/token/revoke-accessor".to_owned(),
            Some(json!({ "accessor": accessor })),
            false,
        );
        Token::new(token)
    }

    /// Enables AppRole at a unique mount with a role granting `policies`;
    /// returns its role id, a fresh secret id and the mount.
    pub async fn approle(&self, policies: &[&str]) -> AppRoleCredentials {
        let mount = unique("approle");
        self.client().enable_auth(&mount, "approle").await;
        self.undo_later(Method::DELETE, format!("sys/auth/{mount}"), None, false);
        let (role_id, secret_id) = self.client().approle_role(&mount, "app", policies).await;
        AppRoleCredentials::new(mount, role_id, secret_id)
    }

    /// As [`approle`](Self::approle), with the secret id response-wrapped:
    /// the credentials hold the single-use wrapping token and
    /// `VAULT_SECRET_ID_WRAPPED`, so the code under test unwraps it.
    pub async fn approle_wrapped(&self, policies: &[&str]) -> AppRoleCredentials {
        let plain = self.approle(policies).await;
        let wrapped = self
            .client()
            .approle_wrapped_secret_id(plain.mount(), "app")
            .await;
        plain.with_wrapped_secret_id(wrapped)
    }

    /// Enables Kubernetes auth at a unique mount, pointed at a fresh
    /// in-process TokenReview stand-in, with `role` bound to a service
    /// account whose token the stand-in accepts, granting `policies`.
    /// Returns the role, the mount, the token file and the stand-in (keep
    /// the credentials alive while the code under test logs in).
    pub async fn kubernetes(&self, role: &str, policies: &[&str]) -> KubernetesCredentials {
        let fixture = KubeFixture::start(&unique("ns"), role).await;
        let mount = unique("kubernetes");
        self.undo_later(Method::DELETE, format!("sys/auth/{mount}"), None, false);
        fixture
            .configure(self.client(), &mount, role, policies)
            .await;
        KubernetesCredentials::new(role.to_owned(), mount, fixture)
    }

    /// Enables JWT auth at a unique mount trusting a fresh RSA signing key,
    /// with `role` (`role_type=jwt`, `user_claim=sub`) bound to a unique
    /// audience and subject, granting `policies`. Returns the role, the
    /// mount, a way to mint tokens it accepts and a stand-in for GitHub
    /// Actions' token endpoint that hands such tokens out (keep it alive
    /// while the code under test logs in).
    pub async fn jwt(&self, role: &str, policies: &[&str]) -> JwtCredentials {
        let signer = JwtSigner::generate();
        let mount = unique("jwt");
        let audience = unique("aud");
        let subject = format!("repo:dev-vault/{}:ref:refs/heads/main", unique("repo"));
        self.client().enable_auth(&mount, "jwt").await;
        self.undo_later(Method::DELETE, format!("sys/auth/{mount}"), None, false);
        let config = json!({ "jwt_validation_pubkeys": [signer.public_key_pem()] });
        self.client()
            .call_ok(Method::POST, &format!("auth/{mount}/config"), Some(&config))
            .await;
        let body = json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": [audience],
            "bound_claims": { "sub": subject },
            "token_policies": policies,
            "token_ttl": "1h",
        });
        self.client()
            .call_ok(
                Method::POST,
                &format!("auth/{mount}/role/{role}"),
                Some(&body),
            )
            .await;
        JwtCredentials::new(role.to_owned(), mount, audience, subject, signer).await
    }

    /// Enables TLS certificate auth at a unique mount with `role` trusting
    /// a fresh test CA, granting `policies`; returns the role, the mount
    /// and a client certificate that CA signed. Needs a TLS server
    /// ([`DevVault::builder`]`().tls()`): a plain-http one panics.
    pub async fn cert(&self, role: &str, policies: &[&str]) -> CertCredentials {
        assert!(
            self.addr().starts_with("https://"),
            "DevVault::cert needs a TLS server: DevVault::builder().tls()"
        );
        let certificates = TestCertificates::generate(&unique("client"));
        let mount = unique("cert");
        self.client().enable_auth(&mount, "cert").await;
        self.undo_later(Method::DELETE, format!("sys/auth/{mount}"), None, false);
        let body = json!({
            "certificate": certificates.ca_pem(),
            "token_policies": policies,
            "token_ttl": "1h",
        });
        self.client()
            .call_ok(
                Method::POST,
                &format!("auth/{mount}/certs/{role}"),
                Some(&body),
            )
            .await;
        CertCredentials::new(role.to_owned(), mount, certificates)
    }

    /// Creates a namespace named uniquely after `name` (inside this handle's
    /// namespace, if any) and returns a handle acting inside it: its
    /// provisioning works there and its [`env_for`](DevVault::env_for) sets
    /// `VAULT_NAMESPACE`. `None` when the server has no namespaces
    /// (HashiCorp Vault's community edition; OpenBao has them).
    pub async fn namespace(&self, name: &str) -> Option<DevVault> {
        if !self.client().namespaces_supported().await {
            return None;
        }
        let name = unique(name);
        self.client().create_namespace(&name).await;
        self.undo_later(
            Method::DELETE,
            format!("sys/namespaces/{name}"),
            None,
            false,
        );
        let full = match self.namespace_name() {
            Some(parent) => format!("{parent}/{name}"),
            None => name,
        };
        Some(self.in_namespace(full))
    }
}
