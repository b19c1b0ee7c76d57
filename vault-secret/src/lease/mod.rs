//! Dynamic secrets with managed leases: database credentials (and any other
//! secret an engine issues with a lease) that the client renews, replaces
//! before they end, and revokes when the service stops.
//!
//! ```no_run
//! use vault_secret::{VaultClient, lease::LeaseEvent};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), vault_secret::Error> {
//!     let vault = VaultClient::from_env().await?;
//!     // `GET database/creds/app`: a PostgreSQL user made for this process.
//!     let db = vault.lease("database/creds/app").await?;
//!     let creds = db.current(); // {"username": ..., "password": ...}, redacted
//!     println!("lease {} for {:?}", db.lease().id, db.lease().duration);
//!     # drop(creds);
//!
//!     // Rebuild the connection pool when the credentials are replaced.
//!     let mut changes = db.changes();
//!     let watcher = tokio::spawn(async move {
//!         while changes.changed().await.is_ok() {
//!             let event = changes.borrow_and_update().clone();
//!             if let LeaseEvent::Rotated(lease) = event {
//!                 println!("new credentials, lease {}", lease.id);
//!             }
//!         }
//!     });
//!
//!     // On SIGTERM: revoke every lease (the database users go), then the token.
//!     vault.shutdown().await?;
//!     watcher.await.ok();
//!     Ok(())
//! }
//! ```
//!
//! # Issuing
//!
//! [`VaultClient::lease`](crate::VaultClient::lease) reads a path outside
//! KV (`database/creds/<role>`, `aws/creds/<role>`, `rabbitmq/creds/<role>`);
//! [`VaultClient::lease_with`](crate::VaultClient::lease_with) writes a
//! JSON body for engines that issue on a write (`pki/issue/<role>` with a
//! `common_name`). A `#field` picks one field (`database/creds/app#password`).
//! A KV path is refused with a hint naming `read`, and
//! [`read`](crate::VaultClient::read) refuses a non-KV engine with a hint
//! naming `lease`: KV reads pay nothing for leases.
//!
//! # Kept alive
//!
//! Each [`LeasedSecret`] has a task of its own on the runtime it was made on:
//! - **Renewal** at [`renew_fraction`](LeaseOptions::renew_fraction) of the
//!   lease (default two thirds), less up to a tenth of the lease at random
//!   so many leases issued together do not renew together; each renewal asks
//!   for the lease's first duration again.
//! - **Rotation**: when a renewal grants less than nine tenths of what was
//!   asked (the role's max TTL is near) or is refused (403, lease not
//!   found), new credentials are issued at once; a lease that is not
//!   renewable is replaced [`rotation_lead`](LeaseOptions::rotation_lead)
//!   before it ends (at most a third of its first duration). Either is
//!   published as [`LeaseEvent::Rotated`]. The old lease is revoked after
//!   [`grace_period`](LeaseOptions::grace_period), so a connection pool can
//!   drain its connections (an old lease that ends within the grace period
//!   is left to the server, which revokes it at its end).
//! - **Token re-login**: the server revokes a token's leases with the token.
//!   When the client's token will not be extended any more (its max TTL),
//!   the client logs in again before the token ends, issues every lease
//!   anew under the new token (published as `Rotated`) and leaves the old
//!   token to run out, taking the old leases with it. That end bounds the
//!   grace period of those old credentials.
//! - **Outages**: a renewal or rotation that fails for a transient reason
//!   (the server unreachable, sealed, failing, electing a leader) is
//!   retried with backoff until the lease truly ends; the current
//!   credentials stay current meanwhile. Only a refusal (403, the lease or
//!   role not found) or the end of the lease itself publishes
//!   [`LeaseEvent::Lost`]; the task then keeps trying to issue new
//!   credentials (every 30 s at most), publishing `Rotated` when it can.
//!
//! # Closing
//!
//! [`LeasedSecret::close`] revokes the lease (and any old one in its grace
//! period) now. Dropping the last clone of a handle does the same in the
//! background, on the runtime the lease was issued on (a runtime shut down
//! first takes the task with it, and the lease lives out its TTL). [`VaultClient::shutdown`](crate::VaultClient::shutdown)
//! closes every lease the client holds, then revokes its token.
//! [`LeasedSecret::detach`] stops the task without revoking: the lease then
//! lives out its TTL on the server, as after `vault read`. The change
//! stream ends when the handle is closed, dropped or detached.
//!
//! Revoking a lease needs `update` on `sys/leases/revoke` (not in Vault's
//! `default` policy); renewing needs `update` on `sys/leases/renew` (in
//! it). When a lease cannot be revoked for want of that capability,
//! [`shutdown`](crate::VaultClient::shutdown) still revokes a token the
//! client logged in with, which revokes its leases.

mod calls;
mod keeper;

use std::fmt;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use secret_core::SecretValue;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, LeaseLostKind};
use crate::token::TokenLife;
pub(crate) use calls::{IssueRequest, LeaseContext};

/// When and how leases are renewed and replaced; set on
/// [`ClientBuilder::lease_options`](crate::ClientBuilder::lease_options).
///
/// | Option | Default |
/// |---|---|
/// | renew fraction | 2/3 of the lease (less up to a tenth, at random) |
/// | rotation lead | 30 s before the end (at most a third of the lease) |
/// | grace period | 30 s before old credentials are revoked |
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct LeaseOptions {
    renew_fraction: f64,
    rotation_lead: Duration,
    grace_period: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            renew_fraction: 2.0 / 3.0,
            rotation_lead: Duration::from_secs(30),
            grace_period: Duration::from_secs(30),
        }
    }
}

impl LeaseOptions {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        Self::default()
    }

    /// Renew when this fraction of the lease has passed; kept within
    /// 0.1..=0.9 (a value outside, or not a number, is brought to the
    /// nearest end, or the default).
    pub fn with_renew_fraction(mut self, fraction: f64) -> Self {
        self.renew_fraction = if fraction.is_nan() {
            2.0 / 3.0
        } else {
            fraction.clamp(0.1, 0.9)
        };
        self
    }

    /// The fraction of a lease after which it is renewed.
    pub fn renew_fraction(&self) -> f64 {
        self.renew_fraction
    }

    /// Issue new credentials this long before a lease that is not renewable
    /// ends (at most a third of the lease's first duration), and before the
    /// client's token ends under a lease.
    pub fn with_rotation_lead(mut self, lead: Duration) -> Self {
        self.rotation_lead = lead;
        self
    }

    /// How long before its end a lease is replaced.
    pub fn rotation_lead(&self) -> Duration {
        self.rotation_lead
    }

    /// How long old credentials live after a rotation before their lease
    /// is revoked (bounded by the lease's own end).
    pub fn with_grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace;
        self
    }

    /// How long old credentials outlive a rotation.
    pub fn grace_period(&self) -> Duration {
        self.grace_period
    }
}

/// A lease: its id (not a secret; tokens never appear), how long it was
/// granted for, and when, by this process's monotonic clock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseInfo {
    /// The lease id, e.g. `database/creds/app/Xy12...`.
    pub id: String,
    /// What the server granted at the last issue or renewal.
    pub duration: Duration,
    /// Whether the server will renew it.
    pub renewable: bool,
    /// When it was issued or last renewed (when that request was sent: the
    /// server counts the lease from a moment later).
    pub issued_at: Instant,
    /// When it ends unless renewed.
    pub expires_at: Instant,
}

/// What happened to a leased secret, on [`LeasedSecret::changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseEvent {
    /// The first credentials (the channel's initial value).
    Issued(LeaseInfo),
    /// The lease was renewed: same credentials, a later end.
    Renewed(LeaseInfo),
    /// New credentials replaced the old ones ([`LeasedSecret::current`]
    /// gives them); the old ones are revoked after the grace period.
    Rotated(LeaseInfo),
    /// The credentials could not be kept (see the kind).
    Lost(LeaseLost),
}

/// Why a lease could not be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseLost {
    /// Why, to match on.
    pub kind: LeaseLostKind,
    /// Why, in words (the error's message; never a value).
    pub reason: String,
}

/// A dynamic secret whose lease the client keeps: renewed, replaced before
/// it ends, revoked at the end. See the [module docs](crate::lease).
///
/// Clones are cheap and share the lease. Dropping the last clone stops the
/// renewal and revokes the lease in the background;
/// [`close`](Self::close) revokes it now and says whether that worked;
/// [`VaultClient::shutdown`](crate::VaultClient::shutdown) closes every
/// lease of the client. `Debug` shows the path and the lease, never the data.
#[derive(Clone)]
pub struct LeasedSecret {
    handle: Arc<Handle>,
}

/// The part of a handle the clones share: dropping it ends the keeper.
struct Handle {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

/// What the keeper and the handles share.
struct Shared {
    path: String,
    current: RwLock<Arc<Current>>,
    events: watch::Receiver<LeaseEvent>,
}

/// The credentials in use and their lease.
struct Current {
    value: SecretValue,
    info: LeaseInfo,
    /// The login whose token issued it (the lease dies with that token).
    generation: u64,
    /// The duration first granted: what each renewal asks for again.
    first_duration: Duration,
    /// A renewal granted less than asked: the max TTL is near.
    exhausted: bool,
}

/// What a handle asks of its keeper.
enum Command {
    /// Revoke every lease and stop.
    Close(oneshot::Sender<Result<(), Error>>),
    /// Stop without revoking.
    Detach,
}

impl fmt::Debug for LeasedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.handle.shared.current();
        f.debug_struct("LeasedSecret")
            .field("path", &self.handle.shared.path)
            .field("lease", &current.info)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn current(&self) -> Arc<Current> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, current: Current) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(current);
    }
}

impl LeasedSecret {
    /// The current credentials (the mapping, or the `#field` asked for),
    /// redacted in `Debug`: a memory read, no request.
    pub fn current(&self) -> SecretValue {
        self.handle.shared.current().value.clone()
    }

    /// The current credentials deserialized into `T` (a struct of
    /// `secrecy::SecretString` fields keeps them redacted). A missing or
    /// mistyped field is an error naming it, never the value.
    pub fn current_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(self.current().deserialize()?)
    }

    /// The current lease.
    pub fn lease(&self) -> LeaseInfo {
        self.handle.shared.current().info.clone()
    }

    /// The path it was issued from.
    pub fn path(&self) -> &str {
        &self.handle.shared.path
    }

    /// A receiver of what happens to the lease: its value starts at
    /// [`LeaseEvent::Issued`]; `changed()` wakes on each renewal, rotation
    /// or loss, and fails once the handle is closed, dropped or detached.
    pub fn changes(&self) -> watch::Receiver<LeaseEvent> {
        self.handle.shared.events.clone()
    }

    /// Revokes the lease (and any old lease still in its grace period) now
    /// and stops keeping it, for every clone; [`current`](Self::current)
    /// then gives the last credentials, revoked. Closing a closed handle
    /// does nothing. An error says which revocation failed (`update` on
    /// `sys/leases/revoke` missing, the server unreachable).
    pub async fn close(&self) -> Result<(), Error> {
        self.handle.close().await
    }

    /// Stops keeping the lease without revoking it, for every clone: it
    /// lives out its TTL on the server (as after `vault read`).
    pub fn detach(&self) {
        // A keeper already gone has nothing to stop.
        let _ = self.handle.commands.send(Command::Detach);
    }
}

impl Handle {
    async fn close(&self) -> Result<(), Error> {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Close(reply)).is_err() {
            return Ok(());
        }
        done.await.unwrap_or(Ok(()))
    }
}

/// What the lease keeper needs of a client: the calls, and the token's
/// lifetime. The client implements it, wiring its token to its leases.
pub(crate) trait Backend: Clone + Send + Sync + 'static {
    /// Where the lease calls go.
    fn context(&self) -> LeaseContext<'_>;
    /// The token's lifetime, now and at each login and renewal.
    fn token_life(&self) -> watch::Receiver<TokenLife>;
    /// Uses the token (renewing it when due).
    fn touch_token(&self) -> impl Future<Output = Result<(), Error>> + Send;
    /// Logs in again unless the token is no longer login `generation`.
    fn replace_token(&self, generation: u64) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The leases a client holds, for [`VaultClient::shutdown`](crate::VaultClient::shutdown).
#[derive(Debug, Default)]
pub(crate) struct LeaseRegistry {
    handles: Mutex<Vec<Weak<Handle>>>,
}

impl LeaseRegistry {
    fn add(&self, handle: &Arc<Handle>) {
        let mut handles = self
            .handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        handles.retain(|h| h.strong_count() > 0);
        handles.push(Arc::downgrade(handle));
    }

    /// Closes every lease still held; the first failure is the error, after
    /// all were tried.
    pub(crate) async fn close_all(&self) -> Result<(), Error> {
        let handles: Vec<Arc<Handle>> = {
            let mut handles = self
                .handles
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::take(&mut *handles)
                .into_iter()
                .filter_map(|h| h.upgrade())
                .collect()
        };
        let results = futures_util::future::join_all(handles.iter().map(|h| h.close())).await;
        results.into_iter().collect()
    }

    /// How many leases are held.
    pub(crate) fn len(&self) -> usize {
        self.handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|h| h.strong_count() > 0)
            .count()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

/// Issues the secret of `request` and starts keeping its lease.
pub(crate) async fn start<B: Backend>(
    backend: B,
    registry: &LeaseRegistry,
    request: IssueRequest,
    options: LeaseOptions,
) -> Result<LeasedSecret, Error> {
    if request.secret.version.is_some() {
        return Err(Error::InvalidPath {
            path: request.secret.path.clone(),
            reason: "`?version=` is for KV v2 secrets; a leased secret has no versions".into(),
        });
    }
    // Watched from before the first issue: a token replaced from now on is
    // kept until it runs out rather than revoked with this lease under it.
    let life = backend.token_life();
    let asked_at = Instant::now();
    let issued = backend.context().issue(&request, true).await?;
    let current = match keeper::current_of(&request, &issued, asked_at) {
        Ok(current) => current,
        Err(e) => {
            if let Err(revoke) = backend.context().revoke(&issued.answer.lease_id).await {
                tracing::debug!(failure = %revoke, "could not revoke a lease whose data is unusable");
            }
            return Err(e);
        }
    };
    tracing::debug!(path = %request.secret.path, lease_id = %current.info.id,
        duration_s = current.info.duration.as_secs(), renewable = current.info.renewable, "lease issued");
    let (events_tx, events) = watch::channel(LeaseEvent::Issued(current.info.clone()));
    let shared = Arc::new(Shared {
        path: request.secret.path.clone(),
        current: RwLock::new(Arc::new(current)),
        events,
    });
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let handle = Arc::new(Handle {
        shared: shared.clone(),
        commands,
    });
    registry.add(&handle);
    let keeper = keeper::Keeper::new(backend, shared, events_tx, life, options, request);
    tokio::spawn(keeper.run(commands_rx));
    Ok(LeasedSecret { handle })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_clamp_the_fraction_and_keep_the_rest() {
        let o = LeaseOptions::new()
            .with_renew_fraction(2.0)
            .with_rotation_lead(Duration::from_secs(5))
            .with_grace_period(Duration::from_secs(1));
        assert_eq!(o.renew_fraction(), 0.9);
        assert_eq!(o.rotation_lead(), Duration::from_secs(5));
        assert_eq!(o.grace_period(), Duration::from_secs(1));
        assert_eq!(
            LeaseOptions::new()
                .with_renew_fraction(f64::NAN)
                .renew_fraction(),
            2.0 / 3.0
        );
        assert_eq!(
            LeaseOptions::new()
                .with_renew_fraction(0.0)
                .renew_fraction(),
            0.1
        );
    }
}
