//! Every Vault call the crate makes, and the response types it reads.
//!
//! Requests are rustify `Endpoint`s; answers are parsed into types of our
//! own that require only what the caller uses: `data` for a read,
//! `auth.client_token` for a login. `request_id`, `lease_id`, `renewable`,
//! `lease_duration`, `accessor`, `policies`, `metadata`, `warnings` and
//! `wrap_info` are optional or ignored, because older Vault versions,
//! Vault-compatible servers and proxies leave them out.

use std::time::Duration;

use rustify_derive::Endpoint;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::transport::{ApiFailure, Retries, Scope, Transport, WriteFailure};

/// `GET <mount>/data/<path>[?version=N]` (KV v2).
#[derive(Endpoint)]
#[endpoint(path = "{self.mount}/data/{self.path}")]
struct Kv2Read {
    #[endpoint(skip)]
    mount: String,
    #[endpoint(skip)]
    path: String,
    #[endpoint(query)]
    version: Option<u64>,
}

/// `GET <mount>/<path>` (KV v1).
#[derive(Endpoint)]
#[endpoint(path = "{self.mount}/{self.path}")]
struct Kv1Read {
    #[endpoint(skip)]
    mount: String,
    #[endpoint(skip)]
    path: String,
}

/// `GET <mount>/metadata/<path>` (KV v2): the versions, never a value.
#[derive(Endpoint)]
#[endpoint(path = "{self.mount}/metadata/{self.path}")]
struct Kv2MetadataRead {
    #[endpoint(skip)]
    mount: String,
    #[endpoint(skip)]
    path: String,
}

/// `GET sys/internal/ui/mounts/<path>`, as Vault's CLI uses to find a path's mount.
#[derive(Endpoint)]
#[endpoint(path = "sys/internal/ui/mounts/{self.path}")]
struct UiMounts {
    #[endpoint(skip)]
    path: String,
}

/// `POST auth/<mount>/login` for AppRole. The ids are wiped on drop.
#[derive(Endpoint)]
#[endpoint(path = "auth/{self.mount}/login", method = "POST")]
struct AppRoleLogin {
    #[endpoint(skip)]
    mount: String,
    role_id: String,
    secret_id: String,
}

impl Drop for AppRoleLogin {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.role_id);
        zeroize::Zeroize::zeroize(&mut self.secret_id);
    }
}

/// `POST auth/<mount>/login` for Kubernetes. The JWT is wiped on drop.
#[derive(Endpoint)]
#[endpoint(path = "auth/{self.mount}/login", method = "POST")]
struct KubernetesLogin {
    #[endpoint(skip)]
    mount: String,
    role: String,
    jwt: String,
}

impl Drop for KubernetesLogin {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.jwt);
    }
}

/// `POST auth/<mount>/login` for a JWT role. The JWT is wiped on drop.
#[derive(Endpoint)]
#[endpoint(path = "auth/{self.mount}/login", method = "POST")]
struct JwtLogin {
    #[endpoint(skip)]
    mount: String,
    role: String,
    jwt: String,
}

impl Drop for JwtLogin {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.jwt);
    }
}

/// `POST auth/<mount>/login` for TLS certificates: the credential is the
/// connection's client certificate; `name` picks a role (all tried without it).
#[derive(Endpoint)]
#[endpoint(path = "auth/{self.mount}/login", method = "POST")]
struct CertLogin {
    #[endpoint(skip)]
    mount: String,
    name: Option<String>,
}

/// `POST sys/wrapping/lookup`: a wrapping token's creation path and TTL,
/// without using it up. The token is wiped on drop.
#[derive(Endpoint)]
#[endpoint(path = "sys/wrapping/lookup", method = "POST")]
struct WrappingLookup {
    token: String,
}

impl Drop for WrappingLookup {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token);
    }
}

/// `POST sys/wrapping/unwrap` with the wrapping token as `X-Vault-Token`:
/// what was wrapped, once.
#[derive(Endpoint)]
#[endpoint(path = "sys/wrapping/unwrap", method = "POST")]
struct Unwrap {}

#[derive(Endpoint)]
#[endpoint(path = "auth/token/lookup-self")]
struct LookupSelf {}

#[derive(Endpoint)]
#[endpoint(path = "auth/token/renew-self", method = "POST")]
struct RenewSelf {
    increment: Option<String>,
}

#[derive(Endpoint)]
#[endpoint(path = "auth/token/revoke-self", method = "POST")]
struct RevokeSelf {}

#[derive(Endpoint)]
#[endpoint(path = "sys/health")]
struct HealthRequest {
    // Ask for 200 whatever the state, so the body is always there to read.
    #[endpoint(query)]
    standbyok: bool,
    #[endpoint(query)]
    perfstandbyok: bool,
    #[endpoint(query)]
    sealedcode: u16,
    #[endpoint(query)]
    uninitcode: u16,
}

#[derive(Endpoint)]
#[endpoint(path = "sys/capabilities-self", method = "POST")]
struct CapabilitiesSelf {
    paths: Vec<String>,
}

/// The part of every answer the crate reads: `data`, nothing else required.
#[derive(Deserialize)]
struct Data<T> {
    #[serde(default = "none")]
    data: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

/// A login's (or renewal's) `auth` block: only `client_token` is required.
#[derive(Deserialize)]
struct AuthEnvelope {
    auth: Option<AuthBlock>,
}

#[derive(Deserialize)]
struct AuthBlock {
    client_token: String,
    #[serde(default)]
    lease_duration: Option<u64>,
    #[serde(default)]
    renewable: Option<bool>,
}

/// A token a login or a renewal gave, and its lease.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) token: SecretString,
    /// `None` when the server did not say, or said 0 (never expires).
    pub(crate) ttl: Option<Duration>,
    pub(crate) renewable: bool,
}

/// What `lookup-self` says about a token (never the token, which is its `id`).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenLookup {
    #[serde(default)]
    pub(crate) ttl: Option<i64>,
    #[serde(default)]
    pub(crate) renewable: Option<bool>,
    #[serde(default)]
    pub(crate) policies: Option<Vec<String>>,
}

impl TokenLookup {
    /// The time left; `None` for a token that never expires (TTL 0) or
    /// whose TTL the server did not give.
    pub(crate) fn time_left(&self) -> Option<Duration> {
        self.ttl
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
    }
}

/// `sys/internal/ui/mounts/<path>`'s answer.
#[derive(Debug, Deserialize)]
pub(crate) struct MountInfo {
    pub(crate) path: String,
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) options: Option<serde_json::Map<String, Value>>,
}

impl MountInfo {
    /// `options.version` as a number: `"2"` (or `2`) for KV v2; absent for KV v1.
    pub(crate) fn kv_version(&self) -> Option<u64> {
        match self.options.as_ref()?.get("version")? {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }
}

/// `sys/health`'s answer; every field optional.
#[derive(Debug, Deserialize)]
pub(crate) struct HealthData {
    #[serde(default)]
    pub(crate) initialized: Option<bool>,
    #[serde(default)]
    pub(crate) sealed: Option<bool>,
    #[serde(default)]
    pub(crate) standby: Option<bool>,
    #[serde(default)]
    pub(crate) version: Option<String>,
}

#[derive(Deserialize)]
struct Kv2Data {
    #[serde(default)]
    data: Option<Value>,
}

/// The `data` of an answer, or a failure naming what was missing.
fn data<T: serde::de::DeserializeOwned>(
    answer: &crate::transport::Answer,
) -> Result<T, ApiFailure> {
    answer
        .parse::<Data<T>>()?
        .data
        .ok_or_else(|| ApiFailure::BadAnswer {
            status: answer.status,
            content_type: Some("JSON without `data`".into()),
        })
}

/// KV v2: the secret's key/value mapping (`data.data`).
pub(crate) async fn kv2_read(
    t: &Transport,
    token: &SecretString,
    mount: &str,
    path: &str,
    version: Option<u64>,
) -> Result<Value, ApiFailure> {
    let request = Kv2Read {
        mount: mount.to_owned(),
        path: path.to_owned(),
        version,
    };
    let answer = t.send(&request, Some(token), Scope::Namespaced).await?;
    let inner: Kv2Data = data(&answer)?;
    Ok(inner.data.unwrap_or(Value::Null))
}

#[derive(Deserialize)]
struct Kv2Metadata {
    #[serde(default)]
    current_version: Option<u64>,
}

/// KV v2: the secret's current version (`data.current_version`), from its
/// metadata.
pub(crate) async fn kv2_current_version(
    t: &Transport,
    token: &SecretString,
    mount: &str,
    path: &str,
) -> Result<Option<u64>, ApiFailure> {
    let request = Kv2MetadataRead {
        mount: mount.to_owned(),
        path: path.to_owned(),
    };
    let answer = t.send(&request, Some(token), Scope::Namespaced).await?;
    let meta: Kv2Metadata = data(&answer)?;
    Ok(meta.current_version)
}

/// KV v1: the secret's key/value mapping (`data`).
pub(crate) async fn kv1_read(
    t: &Transport,
    token: &SecretString,
    mount: &str,
    path: &str,
) -> Result<Value, ApiFailure> {
    let request = Kv1Read {
        mount: mount.to_owned(),
        path: path.to_owned(),
    };
    data(&t.send(&request, Some(token), Scope::Namespaced).await?)
}

pub(crate) async fn ui_mounts(
    t: &Transport,
    token: &SecretString,
    path: &str,
) -> Result<MountInfo, ApiFailure> {
    let request = UiMounts {
        path: path.to_owned(),
    };
    data(&t.send(&request, Some(token), Scope::Namespaced).await?)
}

/// What `sys/wrapping/lookup` says of a wrapping token.
#[derive(Debug, Deserialize)]
pub(crate) struct WrappingInfo {
    /// The API path whose answer was wrapped, e.g.
    /// `auth/approle/role/app/secret-id`.
    #[serde(default)]
    pub(crate) creation_path: String,
}

pub(crate) async fn wrapping_lookup(
    t: &Transport,
    wrapping_token: &SecretString,
) -> Result<WrappingInfo, ApiFailure> {
    let request = WrappingLookup {
        token: wrapping_token.expose_secret().to_owned(),
    };
    data(&t.send(&request, None, Scope::Namespaced).await?)
}

/// The wrapped AppRole secret id (`data.secret_id`), unwrapping the token
/// (which then no longer works).
pub(crate) async fn unwrap_secret_id(
    t: &Transport,
    wrapping_token: &SecretString,
) -> Result<SecretString, ApiFailure> {
    #[derive(Deserialize)]
    struct SecretId {
        secret_id: String,
    }
    let answer = t
        .send(&Unwrap {}, Some(wrapping_token), Scope::Namespaced)
        .await?;
    let unwrapped: SecretId = data(&answer)?;
    // Moved, not copied: the only copy is now wiped on drop.
    Ok(SecretString::from(unwrapped.secret_id))
}

fn issued(answer: &crate::transport::Answer) -> Result<Issued, ApiFailure> {
    let auth = answer
        .parse::<AuthEnvelope>()?
        .auth
        .ok_or_else(|| ApiFailure::BadAnswer {
            status: answer.status,
            content_type: Some("JSON without `auth`".into()),
        })?;
    Ok(Issued {
        ttl: auth
            .lease_duration
            .filter(|s| *s > 0)
            .map(Duration::from_secs),
        renewable: auth.renewable.unwrap_or(false),
        // Moved, not copied: the token's only copy is now wiped on drop.
        token: SecretString::from(auth.client_token),
    })
}

pub(crate) async fn approle_login(
    t: &Transport,
    mount: &str,
    role_id: &str,
    secret_id: &str,
) -> Result<Issued, ApiFailure> {
    let request = AppRoleLogin {
        mount: mount.to_owned(),
        role_id: role_id.to_owned(),
        secret_id: secret_id.to_owned(),
    };
    issued(&t.send(&request, None, Scope::Namespaced).await?)
}

pub(crate) async fn kubernetes_login(
    t: &Transport,
    mount: &str,
    role: &str,
    jwt: &str,
) -> Result<Issued, ApiFailure> {
    let request = KubernetesLogin {
        mount: mount.to_owned(),
        role: role.to_owned(),
        jwt: jwt.to_owned(),
    };
    issued(&t.send(&request, None, Scope::Namespaced).await?)
}

pub(crate) async fn jwt_login(
    t: &Transport,
    mount: &str,
    role: &str,
    jwt: &str,
) -> Result<Issued, ApiFailure> {
    let request = JwtLogin {
        mount: mount.to_owned(),
        role: role.to_owned(),
        jwt: jwt.to_owned(),
    };
    issued(&t.send(&request, None, Scope::Namespaced).await?)
}

pub(crate) async fn cert_login(
    t: &Transport,
    mount: &str,
    role: Option<&str>,
) -> Result<Issued, ApiFailure> {
    let request = CertLogin {
        mount: mount.to_owned(),
        name: role.map(str::to_owned),
    };
    issued(&t.send(&request, None, Scope::Namespaced).await?)
}

pub(crate) async fn lookup_self(
    t: &Transport,
    token: &SecretString,
) -> Result<TokenLookup, ApiFailure> {
    data(
        &t.send(&LookupSelf {}, Some(token), Scope::Namespaced)
            .await?,
    )
}

/// A renewed token's new lease.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) ttl: Option<Duration>,
    pub(crate) renewable: bool,
}

/// Renews the token; the answer's `auth` carries the new TTL.
pub(crate) async fn renew_self(
    t: &Transport,
    token: &SecretString,
    increment: Option<Duration>,
) -> Result<Lease, ApiFailure> {
    let request = RenewSelf {
        increment: increment.map(|d| format!("{}s", d.as_secs())),
    };
    let answer = t.send(&request, Some(token), Scope::Namespaced).await?;
    // The answer repeats the (same) token; that copy is wiped as it drops here.
    let Issued { ttl, renewable, .. } = issued(&answer)?;
    Ok(Lease { ttl, renewable })
}

pub(crate) async fn revoke_self(t: &Transport, token: &SecretString) -> Result<(), ApiFailure> {
    t.send(&RevokeSelf {}, Some(token), Scope::Namespaced)
        .await
        .map(drop)
}

/// `sys/health`: a root-only endpoint, so never sent with the namespace header.
pub(crate) async fn health(t: &Transport) -> Result<HealthData, ApiFailure> {
    let request = HealthRequest {
        standbyok: true,
        perfstandbyok: true,
        sealedcode: 200,
        uninitcode: 200,
    };
    t.send(&request, None, Scope::Root).await?.parse()
}

/// The token's capabilities on `path`: the answer's `data.<path>`, else
/// `<path>` or `capabilities` at the top (servers differ).
pub(crate) async fn capabilities_self(
    t: &Transport,
    token: &SecretString,
    path: &str,
) -> Result<Vec<String>, ApiFailure> {
    let request = CapabilitiesSelf {
        paths: vec![path.to_owned()],
    };
    let answer = t.send(&request, Some(token), Scope::Namespaced).await?;
    let body: Value = answer.parse()?;
    let pick = |v: &Value| -> Option<Vec<String>> {
        let list = v.get(path).or_else(|| v.get("capabilities"))?;
        serde_json::from_value(list.clone()).ok()
    };
    body.get("data")
        .and_then(pick)
        .or_else(|| pick(&body))
        .ok_or(ApiFailure::BadAnswer {
            status: answer.status,
            content_type: Some("JSON without capabilities".into()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_versions_in_every_shape() {
        let parse = |s: &str| serde_json::from_str::<MountInfo>(s).unwrap().kv_version();
        assert_eq!(
            parse(r#"{"path":"secret/","options":{"version":"2"}}"#),
            Some(2)
        );
        assert_eq!(
            parse(r#"{"path":"secret/","options":{"version":2}}"#),
            Some(2)
        );
        assert_eq!(parse(r#"{"path":"secret/","options":null}"#), None);
        assert_eq!(parse(r#"{"path":"secret/"}"#), None);
        assert_eq!(
            parse(r#"{"path":"secret/","options":{"version":""}}"#),
            None
        );
    }

    #[test]
    fn a_login_needs_only_the_client_token() {
        let auth: AuthEnvelope = serde_json::from_str(r#"{"auth":{"client_token":"t"}}"#).unwrap();
        let block = auth.auth.unwrap();
        assert_eq!(block.lease_duration, None);
        assert_eq!(block.renewable, None);
    }
}

/// Property tests of the answer parsers: any 2xx body gives the type or a
/// `BadAnswer` naming the status (never the body), and a well-formed answer
/// with any extra fields gives what it says.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::*;
    use crate::transport::Answer;
    use crate::transport::proptests::{MARK, body, json, marked_text};

    /// A failure must be a `BadAnswer` with the answer's status, quoting nothing.
    fn check_failure(failure: ApiFailure, status: u16) -> Result<(), TestCaseError> {
        let text = format!("{failure}\n{}", failure.reason());
        let is_bad_answer =
            matches!(&failure, ApiFailure::BadAnswer { status: s, .. } if *s == status);
        prop_assert!(is_bad_answer, "{}", text);
        prop_assert!(!text.contains(MARK), "{}", text);
        let error = failure.into_error("http://127.0.0.1:8200", "auth/approle/login");
        let text = format!("{error}\n{error:?}");
        prop_assert!(!text.contains(MARK), "{}", text);
        Ok(())
    }

    /// Runs every parser over one answer.
    fn parse_all(answer: &Answer) -> Result<(), TestCaseError> {
        let status = answer.status;
        match data::<Value>(answer) {
            Ok(value) => prop_assert!(!value.is_null()),
            Err(f) => check_failure(f, status)?,
        }
        match data::<MountInfo>(answer) {
            Ok(info) => {
                // Any `options.version`, however odd, is a number or nothing.
                let version = info.options.as_ref().and_then(|o| o.get("version"));
                let expected = match version {
                    Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
                    Some(Value::Number(n)) => n.as_u64(),
                    _ => None,
                };
                prop_assert_eq!(info.kv_version(), expected);
            }
            Err(f) => check_failure(f, status)?,
        }
        if let Err(f) = data::<TokenLookup>(answer) {
            check_failure(f, status)?;
        }
        if let Err(f) = data::<Kv2Data>(answer) {
            check_failure(f, status)?;
        }
        if let Err(f) = answer.parse::<HealthData>() {
            check_failure(f, status)?;
        }
        match issued(answer) {
            Ok(issued) => {
                let shown = format!("{issued:?}");
                prop_assert!(!shown.contains(MARK), "{}", shown);
            }
            Err(f) => check_failure(f, status)?,
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_body_gives_each_type_or_a_bad_answer(status in 200u16..300, body in body()) {
            parse_all(&Answer::for_test(status, Some("application/json"), &body))?;
        }

        #[test]
        fn any_data_and_auth_blocks_give_each_type_or_a_bad_answer(
            data in json(),
            auth in json(),
            extra in json(),
        ) {
            for envelope in [
                json!({ "data": data, "auth": auth }),
                json!({ "data": { "data": data.clone(), "metadata": extra.clone() } }),
                json!({ "auth": auth, "data": null, "warnings": extra }),
            ] {
                parse_all(&Answer::for_test(200, None, envelope.to_string().as_bytes()))?;
            }
        }

        #[test]
        fn a_login_answer_gives_its_token_and_lease_whatever_else_it_holds(
            token in marked_text().prop_filter("a token", |t| !t.is_empty()),
            lease in prop::option::of(any::<u64>()),
            renewable in prop::option::of(any::<bool>()),
            extra in prop::collection::vec(
                (prop::sample::select(vec!["accessor", "policies", "metadata", "entity_id"]), json()),
                0..4,
            ),
            top in json(),
        ) {
            let mut auth = json!({ "client_token": token });
            for (key, value) in extra {
                auth[key] = value;
            }
            if let Some(lease) = lease {
                auth["lease_duration"] = json!(lease);
            }
            if let Some(renewable) = renewable {
                auth["renewable"] = json!(renewable);
            }
            let body = json!({ "auth": auth, "data": top, "lease_duration": 0 });
            let answer = Answer::for_test(200, Some("application/json"), body.to_string().as_bytes());
            let issued = match issued(&answer) {
                Ok(issued) => issued,
                Err(f) => return Err(TestCaseError::fail(format!("{f}"))),
            };
            prop_assert_eq!(issued.token.expose_secret(), token.as_str());
            prop_assert_eq!(issued.ttl, lease.filter(|s| *s > 0).map(Duration::from_secs));
            prop_assert_eq!(issued.renewable, renewable.unwrap_or(false));
            let shown = format!("{issued:?}");
            prop_assert!(!shown.contains(MARK), "{}", shown);
        }

        #[test]
        fn a_data_answer_gives_its_data(value in json().prop_filter("not null", |v| !v.is_null())) {
            let body = json!({ "data": value, "request_id": "r", "warnings": null });
            let bytes = body.to_string().into_bytes();
            // As serde_json reads it back (without its `float_roundtrip`
            // feature, a float's last digit may differ from the one written).
            let expected = serde_json::from_slice::<Value>(&bytes).expect("JSON")["data"].clone();
            let answer = Answer::for_test(200, None, &bytes);
            match data::<Value>(&answer) {
                Ok(got) => prop_assert_eq!(got, expected),
                Err(f) => return Err(TestCaseError::fail(format!("{f}"))),
            }
        }
    }
}

// KV writes: write, patch, delete, delete and destroy versions, and the
// reads a write needs (the version metadata). A write's body is built by
// the caller (`kv_write`) and held here as bytes, wiped on drop.

/// `POST <mount>/data/<path>` (KV v2 write) or `POST <mount>/<path>` (KV
/// v1): `path` is the whole API path below the mount.
#[derive(Endpoint)]
#[endpoint(path = "{self.mount}/{self.path}", method = "POST")]
struct KvWrite {
    #[endpoint(skip)]
    mount: String,
    #[endpoint(skip)]
    path: String,
    #[endpoint(raw)]
    body: Vec<u8>,
}

/// `PATCH <mount>/data/<path>` (KV v2 merge patch).
#[derive(Endpoint)]
#[endpoint(path = "{self.mount}/data/{self.path}", method = "PATCH")]
struct Kv2Patch {
    #[endpoint(skip)]
    mount: String,
    #[endpoint(skip)]
    path: String,
    #[endpoint(raw)]
    body: Vec<u8>,
}

impl Drop for KvWrite {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.body);
    }
}

impl Drop for Kv2Patch {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.body);
    }
}

/// `DELETE <mount>/<path>`: `path` is `data/<path>` on KV v2 (the latest version).
#[derive(Endpoint)]
#[endpoint(path = "{self.mount}/{self.path}", method = "DELETE")]
struct KvDelete {
    #[endpoint(skip)]
    mount: String,
    #[endpoint(skip)]
    path: String,
}

/// `POST <mount>/delete/<path>` or `PUT <mount>/destroy/<path>` (KV v2).
#[derive(Endpoint)]
#[endpoint(path = "{self.mount}/{self.action}/{self.path}", method = "POST")]
struct Kv2Versions {
    #[endpoint(skip)]
    mount: String,
    #[endpoint(skip)]
    action: &'static str,
    #[endpoint(skip)]
    path: String,
    versions: Vec<u64>,
}

/// A KV v2 version's metadata, as a write answers it and a read carries it
/// in `data.metadata`; every field optional.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct VersionData {
    #[serde(default)]
    pub(crate) version: Option<u64>,
    #[serde(default)]
    pub(crate) created_time: Option<String>,
    #[serde(default)]
    pub(crate) deletion_time: Option<String>,
    #[serde(default)]
    pub(crate) destroyed: Option<bool>,
    #[serde(default)]
    pub(crate) custom_metadata: Option<serde_json::Map<String, Value>>,
}

/// A KV v2 read's `data`: the mapping and its version's metadata.
#[derive(Deserialize)]
struct Kv2Versioned {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    metadata: Option<VersionData>,
}

/// KV v2: the mapping (`data.data`) and its version's metadata (`data.metadata`).
pub(crate) async fn kv2_read_versioned(
    t: &Transport,
    token: &SecretString,
    mount: &str,
    path: &str,
    version: Option<u64>,
) -> Result<(Value, Option<VersionData>), ApiFailure> {
    let request = Kv2Read {
        mount: mount.to_owned(),
        path: path.to_owned(),
        version,
    };
    let answer = t.send(&request, Some(token), Scope::Namespaced).await?;
    let inner: Kv2Versioned = data(&answer)?;
    Ok((inner.data.unwrap_or(Value::Null), inner.metadata))
}

/// Writes `body` to `<mount>/<api_path>` (`data/<path>` on KV v2); a KV v2
/// write answers the new version's metadata, KV v1 nothing.
pub(crate) async fn kv_write(
    t: &Transport,
    token: &SecretString,
    mount: &str,
    api_path: &str,
    body: Vec<u8>,
    retries: Retries,
) -> Result<Option<VersionData>, WriteFailure> {
    let request = KvWrite {
        mount: mount.to_owned(),
        path: api_path.to_owned(),
        body,
    };
    let answer = t.send_write(&request, token, retries, None).await?;
    Ok(written(&answer))
}

/// Merges `body` (`{"data": {...}, "options": {...}}`) into the KV v2 secret.
pub(crate) async fn kv2_patch(
    t: &Transport,
    token: &SecretString,
    mount: &str,
    path: &str,
    body: Vec<u8>,
    retries: Retries,
) -> Result<Option<VersionData>, WriteFailure> {
    let request = Kv2Patch {
        mount: mount.to_owned(),
        path: path.to_owned(),
        body,
    };
    let answer = t
        .send_write(
            &request,
            token,
            retries,
            Some("application/merge-patch+json"),
        )
        .await?;
    Ok(written(&answer))
}

/// A write's answer: the version's metadata under `data` (KV v2), or
/// nothing (KV v1 answers 204).
fn written(answer: &crate::transport::Answer) -> Option<VersionData> {
    if answer.body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    answer.parse::<Data<VersionData>>().ok()?.data
}

/// Deletes `<mount>/<api_path>`: a KV v1 secret, or a KV v2 secret's latest
/// version (`data/<path>`). Repeating it changes nothing more, so it is
/// retried as a read is.
pub(crate) async fn kv_delete(
    t: &Transport,
    token: &SecretString,
    mount: &str,
    api_path: &str,
) -> Result<(), ApiFailure> {
    let request = KvDelete {
        mount: mount.to_owned(),
        path: api_path.to_owned(),
    };
    t.send(&request, Some(token), Scope::Namespaced)
        .await
        .map(drop)
}

/// Deletes (`action` `delete`) or destroys (`destroy`) KV v2 versions;
/// repeatable, so retried as a read is.
pub(crate) async fn kv2_versions(
    t: &Transport,
    token: &SecretString,
    mount: &str,
    action: &'static str,
    path: &str,
    versions: &[u64],
) -> Result<(), ApiFailure> {
    let request = Kv2Versions {
        mount: mount.to_owned(),
        action,
        path: path.to_owned(),
        versions: versions.to_vec(),
    };
    t.send(&request, Some(token), Scope::Namespaced)
        .await
        .map(drop)
}

// ----- leases: dynamic secrets (`crate::lease`) -----

/// `GET <path>`: a secret an engine issues on a read (`database/creds/<role>`).
#[derive(Endpoint)]
#[endpoint(path = "{self.path}")]
struct LeasedRead {
    #[endpoint(skip)]
    path: String,
}

/// `POST <path>` with a JSON body: a secret an engine issues on a write
/// (`pki/issue/<role>`). The body is wiped on drop.
#[derive(Endpoint)]
#[endpoint(path = "{self.path}", method = "POST")]
struct LeasedWrite {
    #[endpoint(skip)]
    path: String,
    #[endpoint(raw)]
    body: Vec<u8>,
}

impl Drop for LeasedWrite {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.body);
    }
}

/// `PUT sys/leases/renew`.
#[derive(Endpoint)]
#[endpoint(path = "sys/leases/renew", method = "PUT")]
struct RenewLease {
    lease_id: String,
    increment: Option<u64>,
}

/// `PUT sys/leases/revoke`.
#[derive(Endpoint)]
#[endpoint(path = "sys/leases/revoke", method = "PUT")]
struct RevokeLease {
    lease_id: String,
}

/// The envelope of a leased answer: every field optional.
#[derive(Deserialize)]
struct LeaseEnvelope {
    #[serde(default)]
    lease_id: Option<String>,
    #[serde(default)]
    lease_duration: Option<u64>,
    #[serde(default)]
    renewable: Option<bool>,
    #[serde(default)]
    data: Option<Value>,
}

/// A secret an engine issued, with its lease. `Debug` never shows the data.
pub(crate) struct LeasedAnswer {
    /// Empty when the answer carried no lease (a KV read, static data).
    pub(crate) lease_id: String,
    pub(crate) duration: Duration,
    pub(crate) renewable: bool,
    pub(crate) data: Value,
}

impl std::fmt::Debug for LeasedAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasedAnswer")
            .field("lease_id", &self.lease_id)
            .field("duration", &self.duration)
            .field("renewable", &self.renewable)
            .field("data", &"[REDACTED]")
            .finish()
    }
}

impl Drop for LeasedAnswer {
    fn drop(&mut self) {
        secret_core::zeroize_json(&mut self.data);
    }
}

fn leased(answer: &crate::transport::Answer) -> Result<LeasedAnswer, ApiFailure> {
    let envelope: LeaseEnvelope = answer.parse()?;
    Ok(LeasedAnswer {
        lease_id: envelope.lease_id.unwrap_or_default(),
        duration: Duration::from_secs(envelope.lease_duration.unwrap_or(0)),
        renewable: envelope.renewable.unwrap_or(false),
        data: envelope.data.unwrap_or(Value::Null),
    })
}

/// Issues a secret with a read.
pub(crate) async fn lease_read(
    t: &Transport,
    token: &SecretString,
    path: &str,
) -> Result<LeasedAnswer, ApiFailure> {
    let request = LeasedRead {
        path: path.to_owned(),
    };
    leased(&t.send(&request, Some(token), Scope::Namespaced).await?)
}

/// Issues a secret with a write of `body` (JSON).
pub(crate) async fn lease_write(
    t: &Transport,
    token: &SecretString,
    path: &str,
    body: &[u8],
) -> Result<LeasedAnswer, ApiFailure> {
    let request = LeasedWrite {
        path: path.to_owned(),
        body: body.to_vec(),
    };
    leased(&t.send(&request, Some(token), Scope::Namespaced).await?)
}

/// A renewed lease's new duration.
#[derive(Debug)]
pub(crate) struct RenewedLease {
    pub(crate) duration: Duration,
    pub(crate) renewable: bool,
}

/// Renews `lease_id` for `increment` (the server may grant less: the max TTL).
pub(crate) async fn lease_renew(
    t: &Transport,
    token: &SecretString,
    lease_id: &str,
    increment: Duration,
) -> Result<RenewedLease, ApiFailure> {
    let request = RenewLease {
        lease_id: lease_id.to_owned(),
        increment: Some(increment.as_secs().max(1)),
    };
    let answer = t.send(&request, Some(token), Scope::Namespaced).await?;
    let envelope: LeaseEnvelope = answer.parse()?;
    Ok(RenewedLease {
        duration: Duration::from_secs(envelope.lease_duration.unwrap_or(0)),
        renewable: envelope.renewable.unwrap_or(false),
    })
}

/// Revokes `lease_id` now.
pub(crate) async fn lease_revoke(
    t: &Transport,
    token: &SecretString,
    lease_id: &str,
) -> Result<(), ApiFailure> {
    let request = RevokeLease {
        lease_id: lease_id.to_owned(),
    };
    t.send(&request, Some(token), Scope::Namespaced)
        .await
        .map(drop)
}
