//! The lease API's calls with the client's token: issue a secret (a read or
//! a write), renew its lease, revoke it; each failure classified into the
//! crate's error once, here.

use std::time::Duration;

use secrecy::SecretString;

use crate::api::{self, LeasedAnswer, RenewedLease};
use crate::error::{Error, LeaseLostKind, ReadApi};
use crate::mounts::{self, Preflight};
use crate::path::SecretRef;
use crate::token::{self, Attempt, Tokens};
use crate::transport::{ApiFailure, Transport};

/// What to ask the server for a secret: the path and, for an engine that
/// issues on a write, the JSON body (wiped on drop).
#[derive(Clone)]
pub(crate) struct IssueRequest {
    pub(crate) secret: SecretRef,
    pub(crate) body: Option<zeroize::Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for IssueRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssueRequest")
            .field("path", &self.secret.path)
            .field("write", &self.body.is_some())
            .finish()
    }
}

/// A secret the server issued, and the login its token came from.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) answer: LeasedAnswer,
    pub(crate) generation: u64,
}

/// Where the calls go: the server, the client's token and its namespace.
#[derive(Clone, Copy)]
pub(crate) struct LeaseContext<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) tokens: &'a Tokens,
    pub(crate) namespace: Option<&'a str>,
}

impl LeaseContext<'_> {
    /// A 401/403: the token itself rejected (for one new login), or `denied`.
    async fn forbidden<T>(
        &self,
        token: &SecretString,
        denied: impl FnOnce() -> Error,
    ) -> Result<Attempt<T>, Error> {
        if token::is_accepted(self.transport, token).await? {
            Err(denied())
        } else {
            Ok(Attempt::TokenRejected)
        }
    }

    fn denied(&self, path: &str, capability: &'static str, policy_path: &str) -> Error {
        Error::LeaseDenied {
            path: path.to_owned(),
            capability,
            policy_path: policy_path.to_owned(),
            namespace: self.namespace.map(str::to_owned),
        }
    }

    /// Issues the secret. `first` asks the server first whether the path is
    /// KV (which [`VaultClient::read`](crate::VaultClient::read) reads).
    pub(crate) async fn issue(&self, request: &IssueRequest, first: bool) -> Result<Issued, Error> {
        let r = &request.secret;
        let t = self.transport;
        self.tokens
            .with_token(t, |authed| async move {
                let mut mount = None;
                if first {
                    match mounts::preflight(t, &authed.token, r).await? {
                        Preflight::Kv { mount, .. } => {
                            return Err(Error::WrongEngine {
                                path: r.path.clone(),
                                mount: Some(mount),
                                engine: Some("kv".into()),
                                use_api: ReadApi::Read,
                            });
                        }
                        Preflight::NotKv { mount: m, kind } => mount = Some((m, kind)),
                        Preflight::TokenRejected => return Ok(Attempt::TokenRejected),
                        Preflight::Unknown => {}
                    }
                }
                let outcome = match &request.body {
                    None => api::lease_read(t, &authed.token, &r.path).await,
                    Some(body) => api::lease_write(t, &authed.token, &r.path, body).await,
                };
                match outcome {
                    Ok(answer) if answer.lease_id.is_empty() => {
                        let (mount, engine) = mount.unzip();
                        Err(Error::WrongEngine {
                            path: r.path.clone(),
                            mount,
                            engine,
                            use_api: ReadApi::Read,
                        })
                    }
                    Ok(answer) => Ok(Attempt::Done(Issued {
                        answer,
                        generation: authed.generation(),
                    })),
                    Err(f) if matches!(f.status(), Some(401 | 403)) => {
                        let capability = if request.body.is_some() {
                            "update"
                        } else {
                            "read"
                        };
                        self.forbidden(&authed.token, || self.denied(&r.path, capability, &r.path))
                            .await
                    }
                    Err(f) if f.status() == Some(404) => Err(Error::NotFound {
                        path: r.path.clone(),
                        detail: Some(format!("{} (no such role or path?)", f.messages())),
                        namespace: self.namespace.map(str::to_owned),
                    }),
                    Err(f) => Err(f.into_error(t.address(), &r.path)),
                }
            })
            .await
    }

    /// Renews `lease_id` for `increment`.
    pub(crate) async fn renew(
        &self,
        lease_id: &str,
        increment: Duration,
    ) -> Result<RenewedLease, Error> {
        let t = self.transport;
        self.tokens
            .with_token(t, |authed| async move {
                match api::lease_renew(t, &authed.token, lease_id, increment).await {
                    Ok(renewed) => Ok(Attempt::Done(renewed)),
                    Err(f) if matches!(f.status(), Some(401 | 403)) => {
                        self.forbidden(&authed.token, || {
                            self.denied(lease_id, "update", "sys/leases/renew")
                        })
                        .await
                    }
                    Err(f) => Err(lease_failure(f, t, lease_id, "sys/leases/renew")),
                }
            })
            .await
    }

    /// Revokes `lease_id` now; a lease already gone is not an error.
    pub(crate) async fn revoke(&self, lease_id: &str) -> Result<(), Error> {
        let t = self.transport;
        self.tokens
            .with_token(t, |authed| async move {
                match api::lease_revoke(t, &authed.token, lease_id).await {
                    Ok(()) => Ok(Attempt::Done(())),
                    Err(f) if matches!(f.status(), Some(401 | 403)) => {
                        self.forbidden(&authed.token, || {
                            self.denied(lease_id, "update", "sys/leases/revoke")
                        })
                        .await
                    }
                    Err(f) => match lease_failure(f, t, lease_id, "sys/leases/revoke") {
                        Error::LeaseLost { .. } => Ok(Attempt::Done(())),
                        other => Err(other),
                    },
                }
            })
            .await
    }
}

/// A renewal's or revocation's failure: a lease the server no longer knows
/// (400 or 404, whatever the wording) is [`Error::LeaseLost`]; anything
/// else as every call maps it.
fn lease_failure(f: ApiFailure, t: &Transport, lease_id: &str, api_path: &str) -> Error {
    match f.status() {
        Some(400 | 404) => Error::LeaseLost {
            path: lease_id.to_owned(),
            kind: LeaseLostKind::NotFound,
            reason: format!("the server does not know the lease: {}", f.messages()),
        },
        _ => f.into_error(t.address(), api_path),
    }
}

/// What a failure means for a lease: `None` when it is transient (the
/// server unreachable, sealed, failing, electing, a login that failed with
/// it) and worth retrying until the lease runs out; else why it ends.
pub(crate) fn lost_kind(error: &Error) -> Option<LeaseLostKind> {
    match error {
        Error::Transport { .. } | Error::Sealed { .. } | Error::AuthFailed { .. } => None,
        Error::Server { status, .. }
            if *status >= 500 || matches!(status, 307 | 308 | 412 | 429) =>
        {
            None
        }
        Error::LeaseDenied { .. } | Error::PermissionDenied { .. } => Some(LeaseLostKind::Denied),
        Error::LeaseLost { kind, .. } => Some(*kind),
        _ => Some(LeaseLostKind::NotFound),
    }
}
