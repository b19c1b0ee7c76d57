//! KV writes: create or replace a secret's mapping (with check-and-set on
//! KV v2), merge-patch it (KV v2), delete it, and delete or destroy KV v2
//! versions; the mount and its KV version are found as reads find them.
//!
//! Like a read, a write takes what it needs (the transport, the token, the
//! client's mount cache) and never calls back into the client: a token the
//! server rejects comes back as [`Attempt::TokenRejected`]. A write's body
//! is built here, sent as bytes wiped after use, and never logged.
//!
//! Retries: a write (or patch) is sent again only where it cannot have been
//! applied ([`Retries::Write`]); a lost answer ends a write without
//! check-and-set with [`Error::WriteUncertain`], and a check-and-set write
//! retried after one reports a conflict as possibly its own doing.

use std::collections::{BTreeMap, HashMap};

use secret_core::SecretValue;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::api::{self, VersionData};
use crate::error::Error;
use crate::kv::{self, KvContext};
use crate::mounts::KvVersion;
use crate::path::SecretRef;
use crate::token::{self, Attempt};
use crate::transport::{ApiFailure, Retries, WriteFailure};

/// Check-and-set for a KV v2 write: what the secret must be for the write
/// to apply. Another writer's version in between makes the write fail with
/// [`Error::CasMismatch`] and change nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cas {
    /// The secret must not exist yet (Vault's `cas=0`).
    MustNotExist,
    /// The secret's current version must be this one (from 1; a version
    /// comes from [`VaultClient::read_versioned`](crate::VaultClient::read_versioned)
    /// or an earlier write's [`Written::version`]).
    Version(u64),
}

impl Cas {
    /// The `cas` option Vault takes.
    fn option(self) -> u64 {
        match self {
            Cas::MustNotExist => 0,
            Cas::Version(v) => v,
        }
    }

    /// The version expected, as [`Error::CasMismatch`] reports it.
    fn expected(self) -> Option<u64> {
        match self {
            Cas::MustNotExist => None,
            Cas::Version(v) => Some(v),
        }
    }
}

/// A KV v2 version's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VersionMetadata {
    /// The version number, from 1.
    pub version: u64,
    /// When the version was written (RFC 3339, as the server gave it).
    pub created_time: Option<String>,
    /// When the version was soft-deleted; `None` when it was not.
    pub deletion_time: Option<String>,
    /// Whether the version's data was destroyed.
    pub destroyed: bool,
    /// The secret's custom metadata (not secret: any reader of the metadata sees it).
    pub custom_metadata: BTreeMap<String, String>,
}

impl VersionMetadata {
    /// The metadata a server gave, when it named the version.
    pub(crate) fn from_data(data: VersionData) -> Option<Self> {
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        Some(VersionMetadata {
            version: data.version?,
            created_time: nonempty(data.created_time),
            deletion_time: nonempty(data.deletion_time),
            destroyed: data.destroyed.unwrap_or(false),
            custom_metadata: data
                .custom_metadata
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
        })
    }
}

/// What a write or patch made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Written {
    /// The new version on KV v2; `None` on KV v1, which has no versions.
    pub version: Option<u64>,
    /// The new version's metadata on KV v2.
    pub metadata: Option<VersionMetadata>,
}

/// A secret read with its KV v2 metadata.
#[derive(Debug)]
#[non_exhaustive]
pub struct Versioned {
    /// The mapping (or the field asked for with `#field`).
    pub value: SecretValue,
    /// The version's metadata; `None` on KV v1, which has none.
    pub metadata: Option<VersionMetadata>,
}

mod sealed {
    /// Only this crate's implementations of `WriteData`.
    pub trait Sealed {}
}

/// What a write takes as a secret's key/value mapping: a JSON
/// [`SecretValue`] holding a mapping, a `serde_json` object (`Value` or
/// `Map`), or a `BTreeMap`/`HashMap` from `String` to any serializable
/// (and `Sync`) value. A struct of your own: `serde_json::to_value(&it)?` first.
pub trait WriteData: sealed::Sealed + Sync {
    /// The mapping as JSON, or why it cannot be one (never quoting a value).
    fn to_mapping(&self) -> Result<Value, String>;
}

impl sealed::Sealed for SecretValue {}
impl WriteData for SecretValue {
    fn to_mapping(&self) -> Result<Value, String> {
        self.to_json()
            .map_err(|_| "the value is text, not a JSON key/value mapping".to_owned())
    }
}

impl sealed::Sealed for Value {}
impl WriteData for Value {
    fn to_mapping(&self) -> Result<Value, String> {
        Ok(self.clone())
    }
}

impl sealed::Sealed for Map<String, Value> {}
impl WriteData for Map<String, Value> {
    fn to_mapping(&self) -> Result<Value, String> {
        Ok(Value::Object(self.clone()))
    }
}

impl<V: Serialize> sealed::Sealed for BTreeMap<String, V> {}
impl<V: Serialize + Sync> WriteData for BTreeMap<String, V> {
    fn to_mapping(&self) -> Result<Value, String> {
        serialized(self)
    }
}

impl<V: Serialize, S> sealed::Sealed for HashMap<String, V, S> {}
impl<V: Serialize + Sync, S: Sync> WriteData for HashMap<String, V, S> {
    fn to_mapping(&self) -> Result<Value, String> {
        serialized(self)
    }
}

impl<T: WriteData + ?Sized> sealed::Sealed for &T {}
impl<T: WriteData + ?Sized> WriteData for &T {
    fn to_mapping(&self) -> Result<Value, String> {
        (**self).to_mapping()
    }
}

fn serialized(value: &impl Serialize) -> Result<Value, String> {
    // serde's message could quote a value: say only that it failed.
    serde_json::to_value(value).map_err(|_| "a value cannot be serialized as JSON".to_owned())
}

/// A write or patch's mapping, checked before any request: a JSON object
/// whose keys are not empty. Wiped on drop.
pub(crate) struct Mapping(Value);

impl Drop for Mapping {
    fn drop(&mut self) {
        secret_core::zeroize_json(&mut self.0);
    }
}

/// What a KV operation is, for its checks, retries and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Write(Option<Cas>),
    Patch(Option<Cas>),
    Delete,
    DeleteVersions,
    DestroyVersions,
}

impl Op {
    /// What it is called in errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Write(Some(_)) => "check-and-set write",
            Op::Write(None) => "write",
            Op::Patch(_) => "patch",
            Op::Delete => "delete",
            Op::DeleteVersions => "delete versions of",
            Op::DestroyVersions => "destroy versions of",
        }
    }

    fn cas(self) -> Option<Cas> {
        match self {
            Op::Write(cas) | Op::Patch(cas) => cas,
            _ => None,
        }
    }

    /// The API path below the mount.
    fn api_rest(self, version: KvVersion, rest: &str) -> String {
        match (self, version) {
            (_, KvVersion::V1) => rest.to_owned(),
            (Op::DeleteVersions, _) => format!("delete/{rest}"),
            (Op::DestroyVersions, _) => format!("destroy/{rest}"),
            _ => format!("data/{rest}"),
        }
    }

    /// Why KV v1 cannot do it, when it cannot.
    fn kv1_refusal(self) -> Option<&'static str> {
        match self {
            Op::Patch(_) => Some(
                "has no atomic merge (PATCH is KV v2 only); write the whole mapping instead, \
                 or move the secret to a KV v2 mount",
            ),
            Op::Write(Some(_)) => Some(
                "has no versions to check and set; write without check-and-set, or move the \
                 secret to a KV v2 mount",
            ),
            Op::DeleteVersions | Op::DestroyVersions => {
                Some("has no versions; `delete` removes the secret")
            }
            _ => None,
        }
    }
}

/// Checks a write's path: `<mount>/<path>`, without a version or a field.
pub(crate) fn write_ref(path: &str, op: Op) -> Result<SecretRef, Error> {
    let r = SecretRef::parse(path)?;
    if r.version.is_some() || r.field.is_some() {
        return Err(invalid(
            &r,
            op,
            "it takes `<mount>/<path>` alone, without `?version=` or `#field`".into(),
        ));
    }
    Ok(r)
}

/// Checks a write's mapping and check-and-set before any request.
pub(crate) fn mapping(r: &SecretRef, op: Op, data: &dyn WriteData) -> Result<Mapping, Error> {
    if op.cas() == Some(Cas::Version(0)) {
        return Err(invalid(
            r,
            op,
            "check-and-set version 0 is not a version (versions start at 1); use \
             `Cas::MustNotExist` for a secret that must not exist yet"
                .into(),
        ));
    }
    let value = Mapping(data.to_mapping().map_err(|reason| invalid(r, op, reason))?);
    let Value::Object(map) = &value.0 else {
        let kind = match &value.0 {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(invalid(
            r,
            op,
            format!("the data is {kind}, not a key/value mapping (a JSON object)"),
        ));
    };
    if map.keys().any(|k| k.trim().is_empty()) {
        return Err(invalid(r, op, "a key is empty".into()));
    }
    if let Some(key) = map.keys().find(|k| k.chars().any(char::is_control)) {
        return Err(invalid(
            r,
            op,
            format!(
                "the key `{}` holds a control character",
                crate::input::shown(key)
            ),
        ));
    }
    Ok(value)
}

/// Checks the versions to delete or destroy.
pub(crate) fn versions(r: &SecretRef, op: Op, versions: &[u64]) -> Result<(), Error> {
    if versions.is_empty() {
        return Err(invalid(r, op, "no versions given".into()));
    }
    if versions.contains(&0) {
        return Err(invalid(
            r,
            op,
            "version 0 is not a version (versions start at 1)".into(),
        ));
    }
    Ok(())
}

fn invalid(r: &SecretRef, op: Op, reason: String) -> Error {
    Error::InvalidWrite {
        path: r.path.clone(),
        operation: op.name(),
        reason,
    }
}

/// Where a write goes: the mount, the path below it and the KV version.
struct Target {
    mount: String,
    rest: String,
    version: KvVersion,
}

impl Target {
    fn api_path(&self, op: Op) -> String {
        format!("{}/{}", self.mount, op.api_rest(self.version, &self.rest))
    }
}

/// One KV operation with one token.
pub(crate) struct Writer<'a> {
    pub(crate) cx: &'a KvContext<'a>,
    pub(crate) r: &'a SecretRef,
    pub(crate) op: Op,
}

impl Writer<'_> {
    /// Writes (or patches) `data`.
    pub(crate) async fn write(&self, data: &Mapping) -> Result<Attempt<Written>, Error> {
        let target = match self.target().await? {
            Attempt::Done(target) => target,
            Attempt::TokenRejected => return Ok(Attempt::TokenRejected),
        };
        let cx = self.cx;
        let cas = self.op.cas();
        let retries = Retries::Write { cas: cas.is_some() };
        let body = match target.version {
            KvVersion::V1 => serde_json::to_vec(&data.0),
            KvVersion::V2 => {
                let options = cas.map_or_else(|| json!({}), |c| json!({ "cas": c.option() }));
                serde_json::to_vec(&SerializeV2 {
                    data: &data.0,
                    options,
                })
            }
        }
        .map_err(|_| invalid(self.r, self.op, "the data cannot be sent as JSON".into()))?;
        let outcome = match self.op {
            Op::Patch(_) => {
                api::kv2_patch(
                    cx.transport,
                    cx.token,
                    &target.mount,
                    &target.rest,
                    body,
                    retries,
                )
                .await
            }
            _ => {
                let rest = self.op.api_rest(target.version, &target.rest);
                api::kv_write(cx.transport, cx.token, &target.mount, &rest, body, retries).await
            }
        };
        match outcome {
            Ok(data) => {
                let metadata = data.and_then(VersionMetadata::from_data);
                Ok(Attempt::Done(Written {
                    version: metadata.as_ref().map(|m| m.version),
                    metadata,
                }))
            }
            Err(WriteFailure {
                failure,
                answer_lost,
            }) => self.failed(&target, failure, answer_lost).await,
        }
    }

    /// Deletes the secret (KV v1) or its latest version (KV v2).
    pub(crate) async fn delete(&self) -> Result<Attempt<()>, Error> {
        let target = match self.target().await? {
            Attempt::Done(target) => target,
            Attempt::TokenRejected => return Ok(Attempt::TokenRejected),
        };
        let cx = self.cx;
        let rest = self.op.api_rest(target.version, &target.rest);
        match api::kv_delete(cx.transport, cx.token, &target.mount, &rest).await {
            Ok(()) => Ok(Attempt::Done(())),
            Err(failure) => self.failed(&target, failure, false).await,
        }
    }

    /// Deletes or destroys KV v2 versions.
    pub(crate) async fn versions(&self, versions: &[u64]) -> Result<Attempt<()>, Error> {
        let target = match self.target().await? {
            Attempt::Done(target) => target,
            Attempt::TokenRejected => return Ok(Attempt::TokenRejected),
        };
        let action = match self.op {
            Op::DestroyVersions => "destroy",
            _ => "delete",
        };
        let cx = self.cx;
        let outcome = api::kv2_versions(
            cx.transport,
            cx.token,
            &target.mount,
            action,
            &target.rest,
            versions,
        )
        .await;
        match outcome {
            Ok(()) => Ok(Attempt::Done(())),
            Err(failure) => self.failed(&target, failure, false).await,
        }
    }

    /// The mount, path and KV version, as a read finds them; an operation
    /// KV v1 cannot do is refused here, before it is sent.
    async fn target(&self) -> Result<Attempt<Target>, Error> {
        let cx = self.cx;
        let mount = match cx.mounts.mount_of(cx.transport, cx.token, self.r).await? {
            Attempt::Done(mount) => mount,
            Attempt::TokenRejected => return Ok(Attempt::TokenRejected),
        };
        let rest = self.r.below(&mount.path).ok_or_else(|| {
            invalid(
                self.r,
                self.op,
                format!(
                    "it names the mount `{}` itself, not a secret in it",
                    mount.path
                ),
            )
        })?;
        let version = match mount.version {
            Some(version) => version,
            None => match self.probe(&mount.path, rest).await? {
                Attempt::Done(version) => version,
                Attempt::TokenRejected => return Ok(Attempt::TokenRejected),
            },
        };
        if version == KvVersion::V1
            && let Some(reason) = self.op.kv1_refusal()
        {
            return Err(Error::NeedsKvV2 {
                path: self.r.path.clone(),
                mount: mount.path,
                operation: self.op.name(),
                reason,
            });
        }
        Ok(Attempt::Done(Target {
            mount: mount.path,
            rest: rest.to_owned(),
            version,
        }))
    }

    /// The KV version when the token may not look the mount up: a KV
    /// v1-style read of the path answers with a warning on KV v2. Never a
    /// KV v2-style write to find out: on KV v1 it would write elsewhere.
    async fn probe(&self, mount: &str, rest: &str) -> Result<Attempt<KvVersion>, Error> {
        let cx = self.cx;
        let version = match api::kv1_read(cx.transport, cx.token, mount, rest).await {
            Ok(_) => KvVersion::V1,
            Err(ApiFailure::Status {
                code: 404,
                json: Some(body),
                ..
            }) if kv::is_kv1_request_on_kv2(&body) => KvVersion::V2,
            Err(ApiFailure::Status { code: 404, .. }) => KvVersion::V1,
            Err(failure) if matches!(failure.status(), Some(401 | 403)) => {
                if !token::is_accepted(cx.transport, cx.token).await? {
                    return Ok(Attempt::TokenRejected);
                }
                return Err(invalid(
                    self.r,
                    self.op,
                    format!(
                        "cannot tell whether `{mount}` is KV v1 or v2: the token may neither \
                         look the mount up (`sys/internal/ui/mounts/{}`) nor read the path; \
                         grant `read` on one of them",
                        self.r.path
                    ),
                ));
            }
            Err(failure) => {
                return Err(failure.into_error(cx.transport.address(), &format!("{mount}/{rest}")));
            }
        };
        cx.mounts.insert(mount, version);
        Ok(Attempt::Done(version))
    }

    /// A failed operation as the crate's error.
    async fn failed<T>(
        &self,
        target: &Target,
        failure: ApiFailure,
        answer_lost: bool,
    ) -> Result<Attempt<T>, Error> {
        let cx = self.cx;
        let api_path = target.api_path(self.op);
        match failure.status() {
            Some(401 | 403) => {
                if !token::is_accepted(cx.transport, cx.token).await? {
                    // Refused before it was applied: safe to log in again and resend.
                    return Ok(Attempt::TokenRejected);
                }
                let needed = self.needed(&api_path).await;
                return Err(Error::WriteDenied {
                    path: self.r.path.clone(),
                    operation: self.op.name(),
                    needed,
                    api_path,
                    namespace: cx.namespace.map(str::to_owned),
                });
            }
            Some(400) if says(&failure, "check-and-set parameter did not match") => {
                // Best effort: the token may not read the metadata.
                let current =
                    api::kv2_current_version(cx.transport, cx.token, &target.mount, &target.rest)
                        .await
                        .ok()
                        .flatten();
                return Err(Error::CasMismatch {
                    path: self.r.path.clone(),
                    expected: self.op.cas().and_then(Cas::expected),
                    current,
                    answer_lost,
                });
            }
            Some(400) if says(&failure, "check-and-set parameter required") => {
                return Err(invalid(
                    self.r,
                    self.op,
                    format!(
                        "the mount `{}` requires check-and-set (`cas_required`): give the \
                         current version, or `Cas::MustNotExist` for a new secret",
                        target.mount
                    ),
                ));
            }
            Some(404) => {
                let no_mount = says(&failure, "no handler for route");
                return Err(Error::NotFound {
                    path: self.r.path.clone(),
                    detail: Some(if no_mount {
                        format!("no secrets engine is mounted at `{}`", target.mount)
                    } else {
                        format!("nothing to {} at `{api_path}`", self.op.name())
                    }),
                    namespace: cx.namespace.map(str::to_owned),
                });
            }
            _ => {}
        }
        let lost = answer_lost && matches!(failure, ApiFailure::Transport { .. });
        let error = failure.into_error(cx.transport.address(), &api_path);
        if lost {
            return Err(Error::WriteUncertain {
                path: self.r.path.clone(),
                operation: self.op.name(),
                source: Box::new(error),
            });
        }
        Err(error)
    }

    /// The capability a denied operation needs on `api_path`; for a write,
    /// told apart by what the token has (`create` without `update` cannot
    /// overwrite, `update` without `create` cannot make a new secret).
    async fn needed(&self, api_path: &str) -> Vec<&'static str> {
        match self.op {
            Op::Patch(_) => return vec!["patch"],
            Op::Delete => return vec!["delete"],
            Op::DeleteVersions | Op::DestroyVersions => return vec!["update"],
            Op::Write(_) => {}
        }
        let cx = self.cx;
        let has = api::capabilities_self(cx.transport, cx.token, api_path)
            .await
            .unwrap_or_default();
        let has = |c: &str| has.iter().any(|h| h == c);
        match (has("create"), has("update")) {
            (true, false) => vec!["update"],
            (false, true) => vec!["create"],
            _ => vec!["create", "update"],
        }
    }
}

/// A KV v2 write's body: the mapping and the options.
#[derive(Serialize)]
struct SerializeV2<'a> {
    data: &'a Value,
    options: Value,
}

/// Whether the server's messages say `needle`.
fn says(failure: &ApiFailure, needle: &str) -> bool {
    matches!(failure, ApiFailure::Status { errors, .. } if errors.iter().any(|e| e.contains(needle)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> SecretRef {
        SecretRef::parse("secret/app").unwrap()
    }

    #[test]
    fn bad_inputs_are_named_before_any_request() {
        let op = Op::Write(None);
        let text = |e: Error| e.to_string();
        let e = mapping(&r(), op, &json!(["a"])).err().unwrap();
        assert!(text(e).contains("an array, not a key/value mapping"));
        let e = mapping(&r(), op, &json!({"": "hunter2"})).err().unwrap();
        let shown = format!("{e}\n{e:?}");
        assert!(
            shown.contains("a key is empty") && !shown.contains("hunter2"),
            "{shown}"
        );
        let e = mapping(&r(), Op::Write(Some(Cas::Version(0))), &json!({"k": "v"}))
            .err()
            .unwrap();
        assert!(text(e).contains("Cas::MustNotExist"));
        let e = mapping(&r(), op, &SecretValue::text("hunter2"))
            .err()
            .unwrap();
        let shown = format!("{e}\n{e:?}");
        assert!(
            shown.contains("is text") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(mapping(&r(), op, &SecretValue::json(json!({"k": "v"}))).is_ok());
        let map: BTreeMap<String, u32> = [("port".to_owned(), 5432)].into();
        assert!(mapping(&r(), op, &map).is_ok());
        let e = versions(&r(), Op::DestroyVersions, &[1, 0]).unwrap_err();
        assert!(text(e).contains("version 0"));
        assert!(versions(&r(), Op::DeleteVersions, &[]).is_err());
        let e = write_ref("secret/app#password", op).unwrap_err();
        assert!(matches!(e, Error::InvalidWrite { .. }), "{e}");
    }

    #[test]
    fn debug_of_a_versioned_read_is_pinned_and_redacts_the_value() {
        let read = Versioned {
            value: SecretValue::json(json!({"password": "hunter2"})),
            metadata: Some(VersionMetadata {
                version: 3,
                created_time: Some("2026-12-04T00:00:00Z".into()),
                deletion_time: None,
                destroyed: false,
                custom_metadata: BTreeMap::new(),
            }),
        };
        let value = format!("{:?}", read.value);
        assert!(!value.contains("hunter2"), "{value}");
        assert_eq!(
            format!("{read:?}"),
            format!(
                "Versioned {{ value: {value}, metadata: Some(VersionMetadata {{ version: 3, \
                 created_time: Some(\"2026-12-04T00:00:00Z\"), deletion_time: None, \
                 destroyed: false, custom_metadata: {{}} }}) }}"
            )
        );
    }

    #[test]
    fn api_paths_follow_the_engine() {
        let rest = "app/db";
        assert_eq!(Op::Write(None).api_rest(KvVersion::V2, rest), "data/app/db");
        assert_eq!(Op::Write(None).api_rest(KvVersion::V1, rest), "app/db");
        assert_eq!(Op::Delete.api_rest(KvVersion::V2, rest), "data/app/db");
        assert_eq!(
            Op::DeleteVersions.api_rest(KvVersion::V2, rest),
            "delete/app/db"
        );
        assert_eq!(
            Op::DestroyVersions.api_rest(KvVersion::V2, rest),
            "destroy/app/db"
        );
    }

    #[test]
    fn errors_name_versions_and_capabilities() {
        let e = Error::CasMismatch {
            path: "secret/app".into(),
            expected: Some(3),
            current: Some(4),
            answer_lost: false,
        };
        assert_eq!(
            e.to_string(),
            "check-and-set conflict on `secret/app`: the write expected version 3, the current \
             version is 4"
        );
        let e = Error::CasMismatch {
            path: "secret/app".into(),
            expected: None,
            current: None,
            answer_lost: true,
        };
        let text = e.to_string();
        assert!(
            text.contains("expected no secret there, but one exists")
                && text.contains("the write may have happened"),
            "{text}"
        );
        let e = Error::WriteDenied {
            path: "secret/app".into(),
            operation: "write",
            needed: vec!["update"],
            api_path: "secret/data/app".into(),
            namespace: None,
        };
        assert_eq!(
            e.to_string(),
            "access forbidden: cannot write `secret/app` (the token needs `update` on \
             `secret/data/app`)"
        );
    }
}
