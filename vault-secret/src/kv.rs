//! KV engines: finding a path's mount and KV version, and reading KV v1 and v2.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use secret_core::SecretValue;
use serde_json::Value;
use tracing::Instrument;

use crate::api;
use crate::path::SecretRef;
use crate::session::{Attempt, Authed, Scope};
use crate::transport::{ApiFailure, Transport};
use crate::{Error, MountReport, VaultSession};

/// A KV secrets engine version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvVersion {
    /// KV v1: `GET <mount>/<path>` returns the mapping as `data`.
    V1,
    /// KV v2: `GET <mount>/data/<path>` returns the mapping as `data.data`, with versions.
    V2,
}

impl KvVersion {
    /// The policy path a token needs `read` on to read `rest` under `mount`.
    pub(crate) fn policy_path(self, mount: &str, rest: &str) -> String {
        match self {
            KvVersion::V1 => format!("{mount}/{rest}"),
            KvVersion::V2 => format!("{mount}/data/{rest}"),
        }
    }
}

impl std::str::FromStr for KvVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().trim_start_matches(['v', 'V']) {
            "1" => Ok(KvVersion::V1),
            "2" => Ok(KvVersion::V2),
            _ => Err(format!("`{s}` is not a KV version (use 1 or 2)")),
        }
    }
}

/// What the preflight said about a path.
#[derive(Debug)]
enum Preflight {
    /// The mount (no trailing slash) and its KV version.
    Kv { mount: String, version: KvVersion },
    /// The mount is not a KV engine.
    NotKv { mount: String, kind: String },
    /// The server will not say (least-privilege token, or an old server).
    Unknown,
    /// The token itself was rejected.
    TokenRejected,
}

/// The result of one KV read.
#[derive(Debug)]
enum Read {
    /// The secret's key/value mapping.
    Found(Value),
    /// Nothing there; `no_mount` when no engine is mounted at the path at all.
    Missing { no_mount: bool },
    /// A KV v1-style read that reached a KV v2 mount.
    WrongApiForV2,
    /// A soft-deleted KV v2 version.
    Deleted { version: u64, deleted_at: String },
    /// A destroyed KV v2 version.
    Destroyed { version: u64 },
    /// The policy does not allow the read (the token itself is good).
    Denied,
    /// The token itself was rejected.
    TokenRejected,
}

/// A 403 or 401 answer, before the server has said which kind it is.
enum Outcome<T> {
    Known(T),
    Forbidden,
}

/// Classifies a read's failure; a 403 is left for [`Reader::forbidden`] to
/// decide by asking the server, not by the message's wording (Vault
/// versions, proxies and other servers word it differently).
fn classify(failure: ApiFailure) -> Result<Outcome<Read>, ApiFailure> {
    match failure.status() {
        Some(401 | 403) => Ok(Outcome::Forbidden),
        Some(404) => {
            let ApiFailure::Status { errors, json, .. } = failure else {
                return Err(failure);
            };
            if errors.iter().any(|e| e.contains("no handler for route")) {
                return Ok(Outcome::Known(Read::Missing { no_mount: true }));
            }
            Ok(Outcome::Known(json.as_ref().map_or(
                Read::Missing { no_mount: false },
                classify_404_body,
            )))
        }
        _ => Err(failure),
    }
}

/// A 404 with a full response body: a deleted or destroyed KV v2 version,
/// or a KV v1-style request on a KV v2 mount (which carries a warning).
fn classify_404_body(body: &Value) -> Read {
    let meta = &body["data"]["metadata"];
    if meta["destroyed"].as_bool() == Some(true)
        && let Some(version) = meta["version"].as_u64()
    {
        return Read::Destroyed { version };
    }
    if let (Some(at), Some(version)) = (meta["deletion_time"].as_str(), meta["version"].as_u64())
        && !at.is_empty()
    {
        return Read::Deleted {
            version,
            deleted_at: at.to_owned(),
        };
    }
    let warned = body["warnings"].as_array().is_some_and(|w| {
        w.iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("versioned K/V")))
    });
    if warned {
        return Read::WrongApiForV2;
    }
    Read::Missing { no_mount: false }
}

/// One read attempt with one token: the session, the token, the path, and
/// whether the server already said the token is good.
struct Reader<'a> {
    session: &'a VaultSession,
    authed: &'a Authed,
    r: &'a SecretRef,
    token_good: Option<bool>,
}

impl Reader<'_> {
    fn transport(&self) -> &Transport {
        self.session.transport()
    }

    /// A 403: a policy denial when the token is good, else a rejected token.
    async fn forbidden(&mut self) -> Result<Read, Error> {
        let good = match self.token_good {
            Some(good) => good,
            None => self.session.token_is_good(self.authed).await?,
        };
        self.token_good = Some(good);
        Ok(if good {
            Read::Denied
        } else {
            Read::TokenRejected
        })
    }

    /// A read's outcome; `api` names the endpoint, built only for an error.
    async fn settle(
        &mut self,
        outcome: Result<Outcome<Read>, ApiFailure>,
        api: impl FnOnce() -> String,
    ) -> Result<Read, Error> {
        match outcome {
            Ok(Outcome::Known(read)) => Ok(read),
            Ok(Outcome::Forbidden) => self.forbidden().await,
            Err(failure) => Err(failure.into_error(self.transport().address(), &api())),
        }
    }

    async fn read_v2(&mut self, mount: &str, rest: &str) -> Result<Read, Error> {
        let token = &self.authed.token;
        let outcome = api::kv2_read(self.transport(), token, mount, rest, self.r.version)
            .await
            .map(|data| Outcome::Known(Read::Found(data)))
            .or_else(classify);
        self.settle(outcome, || KvVersion::V2.policy_path(mount, rest))
            .await
    }

    async fn read_v1(&mut self, mount: &str, rest: &str) -> Result<Read, Error> {
        let token = &self.authed.token;
        let outcome = api::kv1_read(self.transport(), token, mount, rest)
            .await
            .map(|data| Outcome::Known(Read::Found(data)))
            .or_else(classify);
        self.settle(outcome, || KvVersion::V1.policy_path(mount, rest))
            .await
    }

    async fn preflight(&mut self) -> Result<Preflight, Error> {
        let path = &self.r.path;
        match api::ui_mounts(self.transport(), &self.authed.token, path).await {
            Ok(info) => {
                let mount = info.path.trim_matches('/').to_owned();
                match info.kind.as_deref() {
                    // No type: a server that does not say; take it as KV.
                    None | Some("kv" | "generic") => {}
                    Some(kind) => {
                        return Ok(Preflight::NotKv {
                            mount,
                            kind: kind.to_owned(),
                        });
                    }
                }
                if mount.is_empty() {
                    return Ok(Preflight::Unknown);
                }
                let version = match info.kv_version() {
                    Some(2) => KvVersion::V2,
                    _ => KvVersion::V1,
                };
                Ok(Preflight::Kv { mount, version })
            }
            Err(failure) => match failure.status() {
                Some(401 | 403) => Ok(match self.forbidden().await? {
                    Read::TokenRejected => Preflight::TokenRejected,
                    // A least-privilege token may not ask: the read will tell.
                    _ => Preflight::Unknown,
                }),
                // Old servers without the endpoint (404, 405), servers that
                // refuse it (400), and answers that are not the expected JSON:
                // the read itself finds the version and names the secret.
                Some(400..=499) if !matches!(failure.status(), Some(412 | 429)) => {
                    tracing::debug!(%failure, "mount preflight unavailable; reading instead");
                    Ok(Preflight::Unknown)
                }
                None if matches!(failure, ApiFailure::BadAnswer { .. }) => {
                    tracing::debug!(%failure, "mount preflight unreadable; reading instead");
                    Ok(Preflight::Unknown)
                }
                _ => Err(failure.into_error(self.transport().address(), "sys/internal/ui/mounts")),
            },
        }
    }

    /// The path's mount and KV version: from the cache, else one preflight
    /// (concurrent first reads under one first segment share it).
    async fn mount(&mut self) -> Result<Attempt<(String, Option<KvVersion>)>, Error> {
        let scope = self.session.scope();
        let cache = MountCache::global();
        if let Some((mount, version)) = cache.find(scope, &self.r.path) {
            return Ok(Attempt::Done((mount, Some(version))));
        }
        let flight = cache.flight(scope, self.r.first_segment());
        let _turn = flight.lock().await;
        if let Some((mount, version)) = cache.find(scope, &self.r.path) {
            return Ok(Attempt::Done((mount, Some(version))));
        }
        Ok(Attempt::Done(match self.preflight().await? {
            Preflight::Kv { mount, version } => {
                cache.insert(scope, &mount, version);
                (mount, Some(version))
            }
            Preflight::NotKv { mount, kind } => {
                return Err(invalid_path(
                    self.r,
                    format!("`{mount}` is a `{kind}` secrets engine, not KV"),
                ));
            }
            // Least privilege: the first segment is the mount, the read finds the version.
            Preflight::Unknown => (self.r.first_segment().to_owned(), None),
            Preflight::TokenRejected => return Ok(Attempt::TokenRejected),
        }))
    }

    async fn read(&mut self, kv: Option<KvVersion>) -> Result<Attempt<Value>, Error> {
        let r = self.r;
        let (mount, detected) = match self.mount().await? {
            Attempt::Done(found) => found,
            Attempt::TokenRejected => return Ok(Attempt::TokenRejected),
        };
        let rest = r.below(&mount).ok_or_else(|| {
            invalid_path(
                r,
                format!("it names the mount `{mount}` itself, not a secret in it"),
            )
        })?;
        let session = self.session;
        let scope = session.scope();
        let cache = MountCache::global();
        let no_versions = || {
            invalid_path(
                r,
                format!("`{mount}` is a KV v1 engine, which has no versions"),
            )
        };
        let (version, read) = match kv.or(detected) {
            Some(KvVersion::V1) => {
                if r.version.is_some() {
                    return Err(no_versions());
                }
                match self.read_v1(&mount, rest).await? {
                    // The cached version was stale: the mount is KV v2 now.
                    Read::WrongApiForV2 if kv.is_none() => {
                        cache.insert(scope, &mount, KvVersion::V2);
                        (KvVersion::V2, self.read_v2(&mount, rest).await?)
                    }
                    read => (KvVersion::V1, read),
                }
            }
            Some(KvVersion::V2) => (KvVersion::V2, self.read_v2(&mount, rest).await?),
            None => {
                let v2 = self.read_v2(&mount, rest).await?;
                match v2 {
                    Read::Found(_) | Read::Deleted { .. } | Read::Destroyed { .. } => {
                        cache.insert(scope, &mount, KvVersion::V2);
                        (KvVersion::V2, v2)
                    }
                    Read::TokenRejected | Read::Missing { no_mount: true } => (KvVersion::V2, v2),
                    Read::Missing { .. } | Read::Denied | Read::WrongApiForV2 => {
                        let v2_denied = matches!(v2, Read::Denied);
                        match self.read_v1(&mount, rest).await? {
                            Read::Found(data) => {
                                if r.version.is_some() {
                                    return Err(no_versions());
                                }
                                cache.insert(scope, &mount, KvVersion::V1);
                                (KvVersion::V1, Read::Found(data))
                            }
                            Read::WrongApiForV2 => {
                                cache.insert(scope, &mount, KvVersion::V2);
                                (KvVersion::V2, v2)
                            }
                            Read::Denied if v2_denied => {
                                return Err(Error::PermissionDenied {
                                    path: r.path.clone(),
                                    policy_paths: vec![
                                        KvVersion::V2.policy_path(&mount, rest),
                                        KvVersion::V1.policy_path(&mount, rest),
                                    ],
                                    namespace: self.session.namespace(),
                                    mount_guessed: detected.is_none(),
                                });
                            }
                            v1 => (KvVersion::V1, v1),
                        }
                    }
                }
            }
        };
        self.finish(&mount, rest, version, read, detected.is_none())
    }

    /// Turns a read's outcome into the value (or field) or the matching error.
    fn finish(
        &self,
        mount: &str,
        rest: &str,
        version: KvVersion,
        read: Read,
        mount_guessed: bool,
    ) -> Result<Attempt<Value>, Error> {
        let r = self.r;
        match read {
            Read::Found(data) => {
                if !data.is_object() {
                    return Err(Error::Server {
                        status: 200,
                        path: version.policy_path(mount, rest),
                        errors: vec!["the secret's data is not a key/value mapping".into()],
                        attempts: 1,
                    });
                }
                Ok(Attempt::Done(data))
            }
            Read::Missing { no_mount } => Err(Error::NotFound {
                path: r.path.clone(),
                detail: Some(if no_mount {
                    format!("no secrets engine is mounted at `{mount}`")
                } else {
                    match (version, r.version) {
                        (KvVersion::V2, Some(n)) => {
                            format!("no version {n} at `{}`", version.policy_path(mount, rest))
                        }
                        _ => format!("nothing at `{}`", version.policy_path(mount, rest)),
                    }
                }),
                namespace: self.session.namespace(),
            }),
            Read::Deleted {
                version,
                deleted_at,
            } => Err(Error::VersionDeleted {
                path: r.path.clone(),
                version,
                deleted_at,
            }),
            Read::Destroyed { version } => Err(Error::VersionDestroyed {
                path: r.path.clone(),
                version,
            }),
            Read::Denied => Err(Error::PermissionDenied {
                path: r.path.clone(),
                policy_paths: vec![version.policy_path(mount, rest)],
                namespace: self.session.namespace(),
                mount_guessed,
            }),
            Read::WrongApiForV2 => Err(Error::config(
                "kv_version",
                format!("`{mount}` is a KV v2 engine, but KV v1 was requested"),
            )),
            Read::TokenRejected => Ok(Attempt::TokenRejected),
        }
    }
}

impl VaultSession {
    /// Reads `<mount>/<path>[?version=N][#field]`: the key/value mapping, or one field.
    pub async fn read(&self, path: &str) -> Result<SecretValue, Error> {
        self.read_ref(&SecretRef::parse(path)?, None).await
    }

    /// Reads several secrets (each `<mount>/<path>[?version=N][#field]`), in
    /// the order given: one login, each distinct path read once, distinct
    /// paths read at the same time. The first failure (in the order given)
    /// is the error.
    pub async fn read_many<S: AsRef<str>>(&self, paths: &[S]) -> Result<Vec<SecretValue>, Error> {
        let refs = paths
            .iter()
            .map(|p| SecretRef::parse(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        self.read_refs(&refs, None).await
    }

    /// [`read_many`](Self::read_many) for parsed references.
    pub(crate) async fn read_refs(
        &self,
        refs: &[SecretRef],
        kv: Option<KvVersion>,
    ) -> Result<Vec<SecretValue>, Error> {
        let (mut reads, index) = self.read_distinct(refs, kv).await;
        // The first failure in the order given (a read's, or a field's) is the one reported.
        let mut values = Vec::with_capacity(refs.len());
        for (r, &i) in refs.iter().zip(&index) {
            let value = match &reads[i] {
                Ok(data) => select(r, data),
                Err(_) => Err(take_error(&mut reads, i)),
            };
            match value {
                Ok(value) => values.push(value),
                Err(e) => {
                    wipe(&mut reads);
                    return Err(e);
                }
            }
        }
        wipe(&mut reads);
        Ok(values)
    }

    /// For a source: each reference's value, or why it is not there (the
    /// text of a not-found or no-such-field error); each distinct path read
    /// once, distinct paths at the same time. Any other failure, the first
    /// in the order given, is the error.
    pub(crate) async fn read_each(
        &self,
        refs: &[SecretRef],
    ) -> Result<Vec<Result<SecretValue, String>>, Error> {
        let (mut reads, index) = self.read_distinct(refs, None).await;
        let each = match index
            .iter()
            .find(|&&i| reads[i].as_ref().is_err_and(|e| !e.is_not_found()))
        {
            Some(&i) => Err(take_error(&mut reads, i)),
            None => Ok(refs
                .iter()
                .zip(&index)
                .map(|(r, &i)| match &reads[i] {
                    Ok(data) => select(r, data).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                })
                .collect()),
        };
        wipe(&mut reads);
        each
    }

    /// Each distinct path of `refs` (fields aside) read once, all at the same
    /// time: the reads, and for each reference the index of its read.
    async fn read_distinct(
        &self,
        refs: &[SecretRef],
        kv: Option<KvVersion>,
    ) -> (Vec<Result<Value, Error>>, Vec<usize>) {
        let mut distinct: Vec<SecretRef> = Vec::new();
        let index = refs
            .iter()
            .map(|r| {
                let whole = SecretRef {
                    field: None,
                    ..r.clone()
                };
                distinct
                    .iter()
                    .position(|d| *d == whole)
                    .unwrap_or_else(|| {
                        distinct.push(whole);
                        distinct.len() - 1
                    })
            })
            .collect();
        let reads =
            futures_util::future::join_all(distinct.iter().map(|r| self.read_whole(r, kv))).await;
        (reads, index)
    }

    pub(crate) async fn read_ref(
        &self,
        r: &SecretRef,
        kv: Option<KvVersion>,
    ) -> Result<SecretValue, Error> {
        let mut data = self.read_whole(r, kv).await?;
        let value = select(r, &data);
        secret_core::zeroize_json(&mut data);
        value
    }

    /// The whole key/value mapping at `r`'s path (its field, if any, aside).
    async fn read_whole(&self, r: &SecretRef, kv: Option<KvVersion>) -> Result<Value, Error> {
        let span = tracing::debug_span!("vault_read", path = %r.path);
        self.with_token(|authed| async move {
            let mut reader = Reader {
                session: self,
                authed: &authed,
                r,
                token_good: None,
            };
            reader.read(kv).await
        })
        .instrument(span)
        .await
    }

    /// The mount and KV version of `path` (`<mount>/<path>`), as a read would find them.
    pub async fn mount_of(&self, path: &str) -> Result<MountReport, Error> {
        let r = SecretRef::parse(path)?;
        let preflight = self
            .with_token(|authed| {
                let r = &r;
                async move {
                    let mut reader = Reader {
                        session: self,
                        authed: &authed,
                        r,
                        token_good: None,
                    };
                    Ok(match reader.preflight().await? {
                        Preflight::TokenRejected => Attempt::TokenRejected,
                        other => Attempt::Done(other),
                    })
                }
            })
            .await?;
        let (mount, kv_version, from_server) = match preflight {
            Preflight::Kv { mount, version } => (mount, Some(version), true),
            Preflight::NotKv { mount, kind } => {
                return Err(invalid_path(
                    &r,
                    format!("`{mount}` is a `{kind}` secrets engine, not KV"),
                ));
            }
            Preflight::Unknown | Preflight::TokenRejected => {
                (r.first_segment().to_owned(), None, false)
            }
        };
        let rest = r.below(&mount).unwrap_or_default();
        let policy_paths = match kv_version {
            Some(version) => vec![version.policy_path(&mount, rest)],
            None => vec![
                KvVersion::V2.policy_path(&mount, rest),
                KvVersion::V1.policy_path(&mount, rest),
            ],
        };
        Ok(MountReport {
            mount,
            kv_version,
            from_server,
            policy_paths,
        })
    }
}

/// Moves the error out of `reads[i]` (which holds one).
fn take_error(reads: &mut [Result<Value, Error>], i: usize) -> Error {
    match reads
        .get_mut(i)
        .map(|r| std::mem::replace(r, Ok(Value::Null)))
    {
        Some(Err(e)) => e,
        _ => Error::config("read", "internal: no failure to report"),
    }
}

/// Wipes the secret data the reads hold.
fn wipe(reads: &mut [Result<Value, Error>]) {
    for data in reads.iter_mut().flatten() {
        secret_core::zeroize_json(data);
    }
}

/// The whole mapping, or the one field `r` asks for (a string field as
/// text), taken from the answer's JSON without another serialize-and-parse.
fn select(r: &SecretRef, data: &Value) -> Result<SecretValue, Error> {
    let Some(field) = &r.field else {
        return Ok(SecretValue::json(data.clone()).with_name(r.path.as_str()));
    };
    let value = match data.get(field) {
        None => {
            return Err(Error::FieldNotFound {
                path: r.path.clone(),
                field: field.clone(),
                available: data
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default(),
            });
        }
        Some(Value::String(text)) => SecretValue::text(text.clone()),
        Some(other) => SecretValue::json(other.clone()),
    };
    Ok(value.with_name(format!("{}#{field}", r.path)))
}

fn invalid_path(r: &SecretRef, reason: String) -> Error {
    Error::InvalidPath {
        path: r.path.clone(),
        reason,
    }
}

/// The turn one preflight takes.
type Flight = Arc<tokio::sync::Mutex<()>>;

/// Mounts and KV versions already learned, per server address and namespace.
#[derive(Debug, Default)]
pub(crate) struct MountCache {
    entries: Mutex<HashMap<Scope, Vec<(String, KvVersion)>>>,
    /// One preflight at a time per scope and first segment, so concurrent
    /// first reads under one mount share it.
    flights: Mutex<HashMap<(Scope, String), Flight>>,
}

impl MountCache {
    /// The process-wide cache.
    pub(crate) fn global() -> &'static MountCache {
        static CACHE: OnceLock<MountCache> = OnceLock::new();
        CACHE.get_or_init(MountCache::default)
    }

    /// The longest cached mount that `path` is under.
    pub(crate) fn find(&self, scope: &Scope, path: &str) -> Option<(String, KvVersion)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(scope)?
            .iter()
            .filter(|(mount, _)| {
                path.strip_prefix(mount.as_str())
                    .is_some_and(|r| r.starts_with('/'))
            })
            .max_by_key(|(mount, _)| mount.len())
            .cloned()
    }

    /// The lock a preflight for paths starting with `first` takes.
    fn flight(&self, scope: &Scope, first: &str) -> Flight {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights
            .entry((scope.clone(), first.to_owned()))
            .or_default()
            .clone()
    }

    pub(crate) fn insert(&self, scope: &Scope, mount: &str, version: KvVersion) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // The scope is copied only the first time it is seen.
        if !entries.contains_key(scope) {
            entries.insert(scope.clone(), Vec::new());
        }
        let Some(list) = entries.get_mut(scope) else {
            return;
        };
        list.retain(|(m, _)| m != mount);
        list.push((mount.to_owned(), version));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_and_destroyed_bodies() {
        let body = |s: &str| classify_404_body(&serde_json::from_str(s).unwrap());
        let deleted = r#"{"data":{"data":null,"metadata":{"deletion_time":"2026-11-23T18:12:38Z","destroyed":false,"version":2}},"warnings":null}"#;
        assert!(
            matches!(body(deleted), Read::Deleted { version: 2, ref deleted_at } if deleted_at == "2026-11-23T18:12:38Z")
        );
        let destroyed = r#"{"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true,"version":1}}}"#;
        assert!(matches!(body(destroyed), Read::Destroyed { version: 1 }));
        let warning = r#"{"data":null,"warnings":["Invalid path for a versioned K/V secrets engine. See the API docs"]}"#;
        assert!(matches!(body(warning), Read::WrongApiForV2));
        assert!(matches!(body("[1]"), Read::Missing { no_mount: false }));
        assert!(matches!(
            body(r#"{"errors":[]}"#),
            Read::Missing { no_mount: false }
        ));
    }

    #[test]
    fn a_forbidden_read_is_left_for_the_server_to_explain_whatever_its_wording() {
        for errors in [
            vec!["permission denied".to_owned()],
            vec!["1 error occurred:\n\t* permission denied\n\n".to_owned()],
            Vec::new(),
        ] {
            for code in [401, 403] {
                let failure = ApiFailure::Status {
                    code,
                    errors: errors.clone(),
                    body: crate::transport::Body::Json,
                    json: None,
                    attempts: 1,
                };
                assert!(matches!(classify(failure), Ok(Outcome::Forbidden)));
            }
        }
        let no_route = ApiFailure::Status {
            code: 404,
            errors: vec!["no handler for route \"kv/app\"".into()],
            body: crate::transport::Body::Json,
            json: None,
            attempts: 1,
        };
        assert!(matches!(
            classify(no_route),
            Ok(Outcome::Known(Read::Missing { no_mount: true }))
        ));
    }

    #[test]
    fn cache_prefers_the_longest_mount_and_respects_segments() {
        let cache = MountCache::default();
        let scope = ("http://a".to_owned(), String::new());
        cache.insert(&scope, "team", KvVersion::V1);
        cache.insert(&scope, "team/kv", KvVersion::V2);
        assert_eq!(
            cache.find(&scope, "team/kv/app"),
            Some(("team/kv".into(), KvVersion::V2))
        );
        assert_eq!(
            cache.find(&scope, "team/other"),
            Some(("team".into(), KvVersion::V1))
        );
        assert_eq!(cache.find(&scope, "teamx/app"), None);
        assert_eq!(
            cache.find(&("http://b".into(), String::new()), "team/kv/app"),
            None
        );
        cache.insert(&scope, "team/kv", KvVersion::V1);
        assert_eq!(
            cache.find(&scope, "team/kv/app"),
            Some(("team/kv".into(), KvVersion::V1))
        );
    }

    #[test]
    fn kv_version_parses() {
        assert_eq!("2".parse::<KvVersion>().unwrap(), KvVersion::V2);
        assert_eq!("v1".parse::<KvVersion>().unwrap(), KvVersion::V1);
        assert!("3".parse::<KvVersion>().is_err());
    }
}

/// Property tests of the KV 404 classification: any body gives one of the
/// read outcomes, never a panic, and the outcome follows the fields it
/// names (destroyed, then deleted, then the KV v2 warning, else missing).
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::transport::proptests::{json, marked_text, text};

    /// What the body says, read independently of `classify_404_body`.
    fn expected(body: &Value) -> &'static str {
        let meta = body.get("data").and_then(|d| d.get("metadata"));
        let field = |name: &str| meta.and_then(|m| m.get(name));
        let version = field("version").and_then(Value::as_u64);
        if field("destroyed") == Some(&Value::Bool(true)) && version.is_some() {
            return "destroyed";
        }
        let deleted_at = field("deletion_time").and_then(Value::as_str);
        if deleted_at.is_some_and(|at| !at.is_empty()) && version.is_some() {
            return "deleted";
        }
        let warned = body
            .get("warnings")
            .and_then(Value::as_array)
            .is_some_and(|w| {
                w.iter()
                    .filter_map(Value::as_str)
                    .any(|w| w.contains("versioned K/V"))
            });
        if warned { "wrong api" } else { "missing" }
    }

    fn outcome(read: &Read) -> &'static str {
        match read {
            Read::Destroyed { .. } => "destroyed",
            Read::Deleted { .. } => "deleted",
            Read::WrongApiForV2 => "wrong api",
            Read::Missing { no_mount: false } => "missing",
            other => panic!("a 404 body cannot mean {other:?}"),
        }
    }

    /// A KV v2 404 body with arbitrary metadata and warnings.
    fn kv2_404() -> impl Strategy<Value = Value> {
        let version = prop_oneof![any::<u64>().prop_map(Value::from), json()];
        let destroyed = prop_oneof![any::<bool>().prop_map(Value::Bool), json()];
        let deletion_time = prop_oneof![
            Just(json!("")),
            Just(json!("2026-01-01T00:00:00Z")),
            marked_text().prop_map(Value::String),
            json(),
        ];
        let warning = prop_oneof![
            Just(json!(
                "Invalid path for a versioned K/V secrets engine. See the API docs for the \
                 appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' \
                 for this operation."
            )),
            text(20).prop_map(Value::String),
            json(),
        ];
        (
            version,
            destroyed,
            deletion_time,
            prop::collection::vec(warning, 0..3),
            json(),
        )
            .prop_map(|(version, destroyed, deletion_time, warnings, data)| {
                json!({
                    "data": { "data": data, "metadata": {
                        "version": version, "destroyed": destroyed, "deletion_time": deletion_time,
                    }},
                    "warnings": warnings,
                })
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_404_body_is_one_read_outcome(body in prop_oneof![json(), kv2_404()]) {
            let read = classify_404_body(&body);
            prop_assert_eq!(outcome(&read), expected(&body), "{:?}", read);
            match read {
                Read::Destroyed { version } | Read::Deleted { version, .. } => {
                    prop_assert_eq!(Some(version), body["data"]["metadata"]["version"].as_u64());
                }
                _ => {}
            }
        }

        #[test]
        fn any_failed_read_is_classified(
            code in prop_oneof![Just(401u16), Just(403), Just(404), 300u16..600],
            errors in prop::collection::vec(
                prop_oneof![Just("no handler for route \"x\"".to_owned()), marked_text()],
                0..3,
            ),
            body in prop::option::of(prop_oneof![json(), kv2_404()]),
        ) {
            let no_route = errors.iter().any(|e| e.contains("no handler for route"));
            let failure = ApiFailure::Status {
                code,
                errors,
                body: crate::transport::Body::Json,
                json: body.clone(),
                attempts: 1,
            };
            match (code, classify(failure)) {
                (401 | 403, Ok(Outcome::Forbidden)) => {}
                (404, Ok(Outcome::Known(Read::Missing { no_mount: true }))) => prop_assert!(no_route),
                (404, Ok(Outcome::Known(read))) => {
                    prop_assert!(!no_route);
                    let expected = body.as_ref().map_or("missing", expected);
                    prop_assert_eq!(outcome(&read), expected);
                }
                (_, Err(failure)) => {
                    prop_assert!(!matches!(code, 401 | 403 | 404));
                    prop_assert_eq!(failure.status(), Some(code));
                }
                (code, Ok(_)) => prop_assert!(false, "HTTP {} misclassified", code),
            }
        }

        #[test]
        fn any_kv_version_text_is_one_or_two_or_refused(
            raw in prop_oneof![
                text(6),
                (prop::sample::select(vec!["", " ", "v", "V", "vV", "\t"]),
                 prop::sample::select(vec!["1", "2", "3", "12", "", "v2"]),
                 prop::sample::select(vec!["", " ", "\n", "v"]))
                    .prop_map(|(a, b, c)| format!("{a}{b}{c}")),
            ],
        ) {
            let digits = raw.trim().trim_start_matches(['v', 'V']);
            match raw.parse::<KvVersion>() {
                Ok(KvVersion::V1) => prop_assert_eq!(digits, "1"),
                Ok(KvVersion::V2) => prop_assert_eq!(digits, "2"),
                Err(message) => prop_assert!(digits != "1" && digits != "2", "{}", message),
            }
        }
    }
}
