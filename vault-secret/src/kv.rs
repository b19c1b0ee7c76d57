//! KV engines: reading a secret's key/value mapping from KV v1 or v2, and
//! the fallbacks when the mount's version is not known in advance.
//!
//! A read takes what it needs (the transport, the token, the client's
//! mount cache) and never calls back into the client: a token the server
//! rejects comes back as [`Attempt::TokenRejected`] for the client's
//! [`Tokens`](crate::token::Tokens) to handle.

use secrecy::SecretString;
use serde_json::Value;

use crate::api;
use crate::error::Error;
use crate::mounts::{KvVersion, Mount, MountCache};
use crate::path::SecretRef;
use crate::token::{self, Attempt};
use crate::transport::{ApiFailure, Transport};

/// The result of one KV request.
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
/// decide by asking the server, not by the message's wording.
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
/// Whether a 404's body says a KV v1-style request reached a KV v2 mount
/// (writes find the version with it when the mount lookup is not allowed).
pub(crate) fn is_kv1_request_on_kv2(body: &Value) -> bool {
    matches!(classify_404_body(body), Read::WrongApiForV2)
}

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

/// Where a read happens: the server, the token, the client's mount cache
/// and namespace (named in errors as a possible cause).
pub(crate) struct KvContext<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) token: &'a SecretString,
    pub(crate) mounts: &'a MountCache,
    pub(crate) namespace: Option<&'a str>,
}

/// Reads `r`'s whole key/value mapping (its field, if any, aside). `kv`
/// skips version detection.
pub(crate) async fn read(
    cx: &KvContext<'_>,
    r: &SecretRef,
    kv: Option<KvVersion>,
) -> Result<Attempt<Value>, Error> {
    Ok(match read_versioned(cx, r, kv, false).await? {
        Attempt::Done((data, _)) => Attempt::Done(data),
        Attempt::TokenRejected => Attempt::TokenRejected,
    })
}

/// [`read`], and the KV v2 version's metadata when `with_metadata` (`None`
/// on KV v1, which has none).
pub(crate) async fn read_versioned(
    cx: &KvContext<'_>,
    r: &SecretRef,
    kv: Option<KvVersion>,
    with_metadata: bool,
) -> Result<Attempt<(Value, Option<api::VersionData>)>, Error> {
    let mount = match cx.mounts.mount_of(cx.transport, cx.token, r).await? {
        Attempt::Done(mount) => mount,
        Attempt::TokenRejected => return Ok(Attempt::TokenRejected),
    };
    let rest = r.below(&mount.path).ok_or_else(|| {
        invalid_path(
            r,
            format!(
                "it names the mount `{}` itself, not a secret in it",
                mount.path
            ),
        )
    })?;
    let mut reader = Reader {
        cx,
        r,
        mount: &mount,
        rest,
        token_good: None,
        metadata: with_metadata.then(api::VersionData::default),
    };
    let (version, read) = match kv.or(mount.version) {
        Some(KvVersion::V1) => reader.read_known_v1(kv.is_some()).await?,
        Some(KvVersion::V2) => (KvVersion::V2, reader.read_v2().await?),
        None => reader.detect().await?,
    };
    let metadata = match version {
        KvVersion::V2 => reader.metadata.take(),
        KvVersion::V1 => None,
    };
    Ok(match reader.finish(version, read)? {
        Attempt::Done(data) => Attempt::Done((data, metadata)),
        Attempt::TokenRejected => Attempt::TokenRejected,
    })
}

/// The current version of the KV v2 secret at `r`'s path, from its
/// metadata, which holds no value. `None` when the mount is not known to be
/// KV v2, nothing is there, or the token may not read the metadata: the
/// caller reads the value instead, and that read says what is wrong.
pub(crate) async fn current_version(
    cx: &KvContext<'_>,
    r: &SecretRef,
) -> Result<Attempt<Option<u64>>, Error> {
    let mount = match cx.mounts.mount_of(cx.transport, cx.token, r).await? {
        Attempt::Done(mount) => mount,
        Attempt::TokenRejected => return Ok(Attempt::TokenRejected),
    };
    let (Some(KvVersion::V2), Some(rest)) = (mount.version, r.below(&mount.path)) else {
        return Ok(Attempt::Done(None));
    };
    match api::kv2_current_version(cx.transport, cx.token, &mount.path, rest).await {
        Ok(version) => Ok(Attempt::Done(version)),
        Err(failure) => match failure.status() {
            Some(401 | 403) => Ok(if token::is_accepted(cx.transport, cx.token).await? {
                Attempt::Done(None)
            } else {
                Attempt::TokenRejected
            }),
            Some(404) => Ok(Attempt::Done(None)),
            _ => Err(failure.into_error(
                cx.transport.address(),
                &format!("{}/metadata/{rest}", mount.path),
            )),
        },
    }
}

/// One read of one path with one token, and whether the server already
/// said the token is good.
struct Reader<'a> {
    cx: &'a KvContext<'a>,
    r: &'a SecretRef,
    mount: &'a Mount,
    /// The path below the mount.
    rest: &'a str,
    token_good: Option<bool>,
    /// Where a KV v2 read leaves its version's metadata, when asked for.
    metadata: Option<api::VersionData>,
}

impl Reader<'_> {
    /// A 403: a policy denial when the token is good, else a rejected token.
    async fn forbidden(&mut self) -> Result<Read, Error> {
        let good = match self.token_good {
            Some(good) => good,
            None => token::is_accepted(self.cx.transport, self.cx.token).await?,
        };
        self.token_good = Some(good);
        Ok(if good {
            Read::Denied
        } else {
            Read::TokenRejected
        })
    }

    /// A request's outcome as a [`Read`]; `version` names the endpoint in an error.
    async fn settle(
        &mut self,
        outcome: Result<Value, ApiFailure>,
        version: KvVersion,
    ) -> Result<Read, Error> {
        match outcome
            .map(|data| Outcome::Known(Read::Found(data)))
            .or_else(classify)
        {
            Ok(Outcome::Known(read)) => Ok(read),
            Ok(Outcome::Forbidden) => self.forbidden().await,
            Err(failure) => Err(failure.into_error(
                self.cx.transport.address(),
                &version.policy_path(&self.mount.path, self.rest),
            )),
        }
    }

    async fn read_v2(&mut self) -> Result<Read, Error> {
        let cx = self.cx;
        let (mount, rest, version) = (&self.mount.path, self.rest, self.r.version);
        let outcome = if self.metadata.is_some() {
            api::kv2_read_versioned(cx.transport, cx.token, mount, rest, version)
                .await
                .map(|(data, metadata)| {
                    self.metadata = Some(metadata.unwrap_or_default());
                    data
                })
        } else {
            api::kv2_read(cx.transport, cx.token, mount, rest, version).await
        };
        self.settle(outcome, KvVersion::V2).await
    }

    async fn read_v1(&mut self) -> Result<Read, Error> {
        let cx = self.cx;
        let outcome = api::kv1_read(cx.transport, cx.token, &self.mount.path, self.rest).await;
        self.settle(outcome, KvVersion::V1).await
    }

    fn remember(&self, version: KvVersion) {
        self.cx.mounts.insert(&self.mount.path, version);
    }

    fn no_versions(&self) -> Error {
        invalid_path(
            self.r,
            format!(
                "`{}` is a KV v1 engine, which has no versions",
                self.mount.path
            ),
        )
    }

    /// A mount known (or said) to be KV v1; a cached version that has gone
    /// stale (the mount is KV v2 now) is corrected unless it was `forced`.
    async fn read_known_v1(&mut self, forced: bool) -> Result<(KvVersion, Read), Error> {
        if self.r.version.is_some() {
            return Err(self.no_versions());
        }
        match self.read_v1().await? {
            Read::WrongApiForV2 if !forced => {
                self.remember(KvVersion::V2);
                Ok((KvVersion::V2, self.read_v2().await?))
            }
            read => Ok((KvVersion::V1, read)),
        }
    }

    /// The version is unknown (the preflight was not allowed): KV v2 first,
    /// then KV v1, remembering whichever answered.
    async fn detect(&mut self) -> Result<(KvVersion, Read), Error> {
        let v2 = self.read_v2().await?;
        match v2 {
            Read::Found(_) | Read::Deleted { .. } | Read::Destroyed { .. } => {
                self.remember(KvVersion::V2);
                return Ok((KvVersion::V2, v2));
            }
            Read::TokenRejected | Read::Missing { no_mount: true } => {
                return Ok((KvVersion::V2, v2));
            }
            Read::Missing { .. } | Read::Denied | Read::WrongApiForV2 => {}
        }
        let v2_denied = matches!(v2, Read::Denied);
        match self.read_v1().await? {
            Read::Found(_) if self.r.version.is_some() => Err(self.no_versions()),
            Read::Found(data) => {
                self.remember(KvVersion::V1);
                Ok((KvVersion::V1, Read::Found(data)))
            }
            Read::WrongApiForV2 => {
                self.remember(KvVersion::V2);
                Ok((KvVersion::V2, v2))
            }
            Read::Denied if v2_denied => Err(self.denied(vec![
                KvVersion::V2.policy_path(&self.mount.path, self.rest),
                KvVersion::V1.policy_path(&self.mount.path, self.rest),
            ])),
            v1 => Ok((KvVersion::V1, v1)),
        }
    }

    fn denied(&self, policy_paths: Vec<String>) -> Error {
        Error::PermissionDenied {
            path: self.r.path.clone(),
            policy_paths,
            namespace: self.cx.namespace.map(str::to_owned),
            mount_guessed: self.mount.guessed,
        }
    }

    /// Turns a read's outcome into the mapping or the matching error.
    fn finish(&self, version: KvVersion, read: Read) -> Result<Attempt<Value>, Error> {
        let r = self.r;
        let api_path = || version.policy_path(&self.mount.path, self.rest);
        match read {
            Read::Found(data) if data.is_object() => Ok(Attempt::Done(data)),
            Read::Found(_) => Err(Error::Server {
                status: 200,
                path: api_path(),
                errors: vec!["the secret's data is not a key/value mapping".into()],
                attempts: 1,
            }),
            Read::Missing { no_mount } => Err(Error::NotFound {
                path: r.path.clone(),
                detail: Some(match (no_mount, version, r.version) {
                    (true, ..) => format!("no secrets engine is mounted at `{}`", self.mount.path),
                    (false, KvVersion::V2, Some(n)) => {
                        format!("no version {n} at `{}`", api_path())
                    }
                    _ => format!("nothing at `{}`", api_path()),
                }),
                namespace: self.cx.namespace.map(str::to_owned),
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
            Read::Denied => Err(self.denied(vec![api_path()])),
            Read::WrongApiForV2 => Err(Error::config(
                "kv_version",
                format!(
                    "`{}` is a KV v2 engine, but KV v1 was requested",
                    self.mount.path
                ),
            )),
            Read::TokenRejected => Ok(Attempt::TokenRejected),
        }
    }
}

fn invalid_path(r: &SecretRef, reason: String) -> Error {
    Error::InvalidPath {
        path: r.path.clone(),
        reason,
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
}

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
