//! Finding a path's mount and KV version (`sys/internal/ui/mounts`, as
//! Vault's CLI does), and the client's cache of what was found.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;

use crate::api;
use crate::error::Error;
use crate::path::SecretRef;
use crate::token::{self, Attempt};
use crate::transport::{ApiFailure, Transport};

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

/// Where a path's secret lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MountReport {
    /// The mount (no trailing slash), as the server reported or, when it
    /// would not say, the first segment of the path.
    pub mount: String,
    /// The KV version, when the server said.
    pub kv_version: Option<KvVersion>,
    /// False when the token may not call the preflight (`sys/internal/ui/mounts`).
    pub from_server: bool,
    /// The policy path reading the secret needs (for KV v2 `<mount>/data/<path>`);
    /// two (KV v2 first, then KV v1) when the KV version is unknown.
    pub policy_paths: Vec<String>,
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

/// Asks the server where `r`'s path is mounted.
pub(crate) async fn preflight(
    t: &Transport,
    token: &SecretString,
    r: &SecretRef,
) -> Result<Preflight, Error> {
    match api::ui_mounts(t, token, &r.path).await {
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
            Some(401 | 403) => Ok(if token::is_accepted(t, token).await? {
                // A least-privilege token may not ask: the read will tell.
                Preflight::Unknown
            } else {
                Preflight::TokenRejected
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
            _ => Err(failure.into_error(t.address(), "sys/internal/ui/mounts")),
        },
    }
}

/// A path's mount, and its KV version when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) path: String,
    pub(crate) version: Option<KvVersion>,
    /// Taken from the path's first segment because the server would not say.
    pub(crate) guessed: bool,
}

/// The mount report `doctor` shows for `r`, from one preflight.
pub(crate) fn report(r: &SecretRef, preflight: Preflight) -> Result<MountReport, Error> {
    let (mount, kv_version, from_server) = match preflight {
        Preflight::Kv { mount, version } => (mount, Some(version), true),
        Preflight::NotKv { mount, kind } => return Err(not_kv(r, &mount, &kind)),
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

fn not_kv(r: &SecretRef, mount: &str, kind: &str) -> Error {
    Error::WrongEngine {
        path: r.path.clone(),
        mount: Some(mount.to_owned()),
        engine: Some(kind.to_owned()),
        use_api: crate::error::ReadApi::Lease,
    }
}

/// The turn one preflight takes.
type Flight = Arc<tokio::sync::Mutex<()>>;

/// Mounts and KV versions a client has learned. A client talks to one
/// address and namespace, so the cache needs no other key than the mount.
#[derive(Debug, Default)]
pub(crate) struct MountCache {
    entries: Mutex<Vec<(String, KvVersion)>>,
    /// One preflight at a time per first segment, so concurrent first
    /// reads under one mount share it.
    flights: Mutex<HashMap<String, Flight>>,
}

impl MountCache {
    /// The longest cached mount that `path` is under.
    pub(crate) fn find(&self, path: &str) -> Option<(String, KvVersion)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .filter(|(mount, _)| {
                path.strip_prefix(mount.as_str())
                    .is_some_and(|r| r.starts_with('/'))
            })
            .max_by_key(|(mount, _)| mount.len())
            .cloned()
    }

    pub(crate) fn insert(&self, mount: &str, version: KvVersion) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(m, _)| m != mount);
        entries.push((mount.to_owned(), version));
    }

    /// How many mounts are known (for tests of the client's state).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn flight(&self, first: &str) -> Flight {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights.entry(first.to_owned()).or_default().clone()
    }

    /// `r`'s mount and KV version: from the cache, else one preflight
    /// (concurrent first reads under one first segment share it).
    pub(crate) async fn mount_of(
        &self,
        t: &Transport,
        token: &SecretString,
        r: &SecretRef,
    ) -> Result<Attempt<Mount>, Error> {
        let known = |(path, version): (String, KvVersion)| Mount {
            path,
            version: Some(version),
            guessed: false,
        };
        if let Some(found) = self.find(&r.path) {
            return Ok(Attempt::Done(known(found)));
        }
        let flight = self.flight(r.first_segment());
        let _turn = flight.lock().await;
        if let Some(found) = self.find(&r.path) {
            return Ok(Attempt::Done(known(found)));
        }
        Ok(Attempt::Done(match preflight(t, token, r).await? {
            Preflight::Kv { mount, version } => {
                self.insert(&mount, version);
                known((mount, version))
            }
            Preflight::NotKv { mount, kind } => return Err(not_kv(r, &mount, &kind)),
            // Least privilege: the first segment is the mount, the read finds the version.
            Preflight::Unknown => Mount {
                path: r.first_segment().to_owned(),
                version: None,
                guessed: true,
            },
            Preflight::TokenRejected => return Ok(Attempt::TokenRejected),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_prefers_the_longest_mount_and_respects_segments() {
        let cache = MountCache::default();
        cache.insert("team", KvVersion::V1);
        cache.insert("team/kv", KvVersion::V2);
        assert_eq!(
            cache.find("team/kv/app"),
            Some(("team/kv".into(), KvVersion::V2))
        );
        assert_eq!(
            cache.find("team/other"),
            Some(("team".into(), KvVersion::V1))
        );
        assert_eq!(cache.find("teamx/app"), None);
        cache.insert("team/kv", KvVersion::V1);
        assert_eq!(
            cache.find("team/kv/app"),
            Some(("team/kv".into(), KvVersion::V1))
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn kv_version_parses() {
        assert_eq!("2".parse::<KvVersion>().unwrap(), KvVersion::V2);
        assert_eq!("v1".parse::<KvVersion>().unwrap(), KvVersion::V1);
        assert!("3".parse::<KvVersion>().is_err());
    }

    #[test]
    fn a_report_names_both_policy_paths_when_the_version_is_unknown() {
        let r = SecretRef::parse("kv/app/db").unwrap();
        let report = report(&r, Preflight::Unknown).unwrap();
        assert_eq!(report.mount, "kv");
        assert!(!report.from_server);
        assert_eq!(report.policy_paths, ["kv/data/app/db", "kv/app/db"]);
        let known = super::report(
            &r,
            Preflight::Kv {
                mount: "kv/app".into(),
                version: KvVersion::V2,
            },
        )
        .unwrap();
        assert_eq!(known.policy_paths, ["kv/app/data/db"]);
        let err = super::report(
            &r,
            Preflight::NotKv {
                mount: "kv".into(),
                kind: "pki".into(),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("`pki` secrets engine"), "{err}");
    }
}
