//! KV engines: finding a path's mount and KV version, and reading KV v1 and v2.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use rustify_derive::Endpoint;
use serde::Deserialize;
use vaultrs::client::VaultClient;

use crate::error::ApiFailure;

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

/// `GET sys/internal/ui/mounts/<path>`, as Vault's CLI uses to find a path's mount.
#[derive(Endpoint)]
#[endpoint(path = "sys/internal/ui/mounts/{self.path}", response = "MountInfo")]
struct UiMountRequest {
    #[endpoint(skip)]
    path: String,
}

#[derive(Debug, Deserialize)]
struct MountInfo {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    options: Option<HashMap<String, String>>,
}

/// What the preflight said about a path.
#[derive(Debug)]
pub(crate) enum Preflight {
    /// The mount (no trailing slash) and its KV version.
    Kv { mount: String, version: KvVersion },
    /// The mount is not a KV engine.
    NotKv { mount: String, kind: String },
    /// The server will not say (least-privilege token, or an old server).
    Unknown,
    /// The token itself was rejected.
    TokenRejected,
}

pub(crate) async fn preflight(client: &VaultClient, path: &str) -> Result<Preflight, ApiFailure> {
    match vaultrs::api::exec_with_result(
        client,
        UiMountRequest {
            path: path.to_owned(),
        },
    )
    .await
    {
        Ok(info) => {
            let mount = info.path.trim_end_matches('/').to_owned();
            if info.kind != "kv" && info.kind != "generic" {
                return Ok(Preflight::NotKv {
                    mount,
                    kind: info.kind,
                });
            }
            let v2 = info
                .options
                .as_ref()
                .and_then(|o| o.get("version"))
                .is_some_and(|v| v == "2");
            let version = if v2 { KvVersion::V2 } else { KvVersion::V1 };
            Ok(Preflight::Kv { mount, version })
        }
        Err(e) => {
            let failure = ApiFailure::from_client(e);
            if token_rejected(&failure) {
                return Ok(Preflight::TokenRejected);
            }
            match failure.status() {
                // 403: the token has no capability under the mount (or there is no such mount);
                // 404/405: a server without this endpoint.
                Some(403..=405) => Ok(Preflight::Unknown),
                _ => Err(failure),
            }
        }
    }
}

/// A bare "permission denied" (or "invalid token") is Vault rejecting the token
/// itself; a policy denial reads "1 error occurred: * permission denied".
pub(crate) fn token_rejected(failure: &ApiFailure) -> bool {
    match failure {
        ApiFailure::Status {
            code: 403,
            errors: Some(errors),
            ..
        } => errors
            .iter()
            .any(|e| e == "permission denied" || e.contains("invalid token")),
        _ => false,
    }
}

/// The result of one KV read.
#[derive(Debug)]
pub(crate) enum Read {
    /// The secret's key/value mapping.
    Found(serde_json::Value),
    /// Nothing there; `no_mount` when no engine is mounted at the path at all.
    Missing { no_mount: bool },
    /// A KV v1-style read that reached a KV v2 mount.
    WrongApiForV2,
    /// A soft-deleted KV v2 version.
    Deleted { version: u64, deleted_at: String },
    /// A destroyed KV v2 version.
    Destroyed { version: u64 },
    /// The policy does not allow the read.
    Denied,
    /// The token itself was rejected.
    TokenRejected,
}

pub(crate) async fn read_v2(
    client: &VaultClient,
    mount: &str,
    rest: &str,
    version: Option<u64>,
) -> Result<Read, ApiFailure> {
    let request = vaultrs::api::kv2::requests::ReadSecretRequest {
        mount: mount.to_owned(),
        path: rest.to_owned(),
        version,
    };
    match vaultrs::api::exec_with_result(client, request).await {
        Ok(response) => Ok(Read::Found(response.data)),
        Err(e) => classify(ApiFailure::from_client(e)),
    }
}

pub(crate) async fn read_v1(
    client: &VaultClient,
    mount: &str,
    rest: &str,
) -> Result<Read, ApiFailure> {
    match vaultrs::kv1::get_raw(client, mount, rest).await {
        Ok(response) => Ok(Read::Found(response.data)),
        Err(e) => classify(ApiFailure::from_client(e)),
    }
}

fn classify(failure: ApiFailure) -> Result<Read, ApiFailure> {
    if token_rejected(&failure) {
        return Ok(Read::TokenRejected);
    }
    match failure {
        ApiFailure::Status { code: 403, .. } => Ok(Read::Denied),
        ApiFailure::Status {
            code: 404,
            errors: Some(errors),
            ..
        } => Ok(Read::Missing {
            no_mount: errors.iter().any(|e| e.contains("no handler for route")),
        }),
        ApiFailure::Status {
            code: 404,
            body: Some(body),
            errors: None,
        } => Ok(classify_404_body(&body)),
        other => Err(other),
    }
}

/// A 404 with a full response body: a deleted or destroyed KV v2 version,
/// or a KV v1-style request on a KV v2 mount (which carries a warning).
fn classify_404_body(body: &str) -> Read {
    #[derive(Deserialize)]
    struct Body {
        data: Option<Data>,
        #[serde(default)]
        warnings: Option<Vec<String>>,
    }
    #[derive(Deserialize)]
    struct Data {
        metadata: Option<Metadata>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        #[serde(default)]
        deletion_time: String,
        #[serde(default)]
        destroyed: bool,
        version: u64,
    }
    let Ok(parsed) = serde_json::from_str::<Body>(body) else {
        return Read::Missing { no_mount: false };
    };
    if let Some(meta) = parsed.data.and_then(|d| d.metadata) {
        if meta.destroyed {
            return Read::Destroyed {
                version: meta.version,
            };
        }
        if !meta.deletion_time.is_empty() {
            return Read::Deleted {
                version: meta.version,
                deleted_at: meta.deletion_time,
            };
        }
    }
    if parsed
        .warnings
        .unwrap_or_default()
        .iter()
        .any(|w| w.contains("versioned K/V"))
    {
        return Read::WrongApiForV2;
    }
    Read::Missing { no_mount: false }
}

/// A server address and namespace: the scope mounts are cached in.
pub(crate) type Scope = (String, String);

/// Mounts and KV versions already learned, per server address and namespace.
#[derive(Debug, Default)]
pub(crate) struct MountCache {
    entries: Mutex<HashMap<Scope, Vec<(String, KvVersion)>>>,
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

    pub(crate) fn insert(&self, scope: Scope, mount: &str, version: KvVersion) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let list = entries.entry(scope).or_default();
        list.retain(|(m, _)| m != mount);
        list.push((mount.to_owned(), version));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_and_destroyed_bodies() {
        let deleted = r#"{"data":{"data":null,"metadata":{"deletion_time":"2026-11-23T18:12:38Z","destroyed":false,"version":2}},"warnings":null}"#;
        assert!(
            matches!(classify_404_body(deleted), Read::Deleted { version: 2, ref deleted_at } if deleted_at == "2026-11-23T18:12:38Z")
        );
        let destroyed = r#"{"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true,"version":1}}}"#;
        assert!(matches!(
            classify_404_body(destroyed),
            Read::Destroyed { version: 1 }
        ));
        let warning = r#"{"data":null,"warnings":["Invalid path for a versioned K/V secrets engine. See the API docs"]}"#;
        assert!(matches!(classify_404_body(warning), Read::WrongApiForV2));
        assert!(matches!(
            classify_404_body("<html>"),
            Read::Missing { no_mount: false }
        ));
    }

    #[test]
    fn token_rejection_vs_policy_denial() {
        let bare = ApiFailure::Status {
            code: 403,
            errors: Some(vec!["permission denied".into()]),
            body: None,
        };
        assert!(token_rejected(&bare));
        let policy = ApiFailure::Status {
            code: 403,
            errors: Some(vec!["1 error occurred:\n\t* permission denied\n\n".into()]),
            body: None,
        };
        assert!(!token_rejected(&policy));
        assert!(matches!(classify(policy), Ok(Read::Denied)));
        let vault = ApiFailure::Status {
            code: 403,
            errors: Some(vec![
                "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n".into(),
            ]),
            body: None,
        };
        assert!(token_rejected(&vault));
    }

    #[test]
    fn cache_prefers_the_longest_mount_and_respects_segments() {
        let cache = MountCache::default();
        let scope = ("http://a".to_owned(), String::new());
        cache.insert(scope.clone(), "team", KvVersion::V1);
        cache.insert(scope.clone(), "team/kv", KvVersion::V2);
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
        cache.insert(scope.clone(), "team/kv", KvVersion::V1);
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
