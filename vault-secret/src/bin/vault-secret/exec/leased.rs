//! The dynamic secrets among the command's paths (`database/creds/app`):
//! one lease per distinct secret, issued by the client, which renews it
//! while the command runs and replaces it before its max TTL; the client's
//! `shutdown` revokes it when the command is done.

use futures_util::future::select_all;
use secret_core::SecretValue;
use tokio::sync::watch;
use vault_secret::lease::{LeaseEvent, LeasedSecret};
use vault_secret::{Error, ReadApi, VaultClient};

use crate::exit::Failure;

/// The leases the command's secrets come from, by secret (without `#field`).
#[derive(Debug, Default)]
pub(crate) struct Leased {
    held: Vec<Held>,
}

#[derive(Debug)]
struct Held {
    secret: String,
    lease: LeasedSecret,
    changes: watch::Receiver<LeaseEvent>,
    /// The handle closed: no more events from it.
    ended: bool,
}

/// The secret a path names, without its `#field`.
fn secret_of(path: &str) -> &str {
    path.split('#').next().unwrap_or(path)
}

impl Leased {
    /// Reads every path: the KV ones with one `read_many`, the dynamic ones
    /// (those `read` points to the lease API for) from a lease issued for
    /// each distinct secret. The values come in the order of `paths`.
    pub(crate) async fn read_all(
        client: &VaultClient,
        paths: &[String],
    ) -> Result<(Leased, Vec<SecretValue>), Failure> {
        let mut leased = Leased::default();
        let kv_values = loop {
            let kv: Vec<&String> = paths.iter().filter(|p| !leased.holds(p)).collect();
            match client.read_many(&kv).await {
                Ok(values) => break values,
                Err(Error::WrongEngine {
                    path,
                    use_api: ReadApi::Lease,
                    ..
                }) if !leased.holds(&path) => {
                    let secret = secret_of(&path).to_owned();
                    let lease = client.lease(&secret).await?;
                    let info = lease.lease();
                    tracing::info!(
                        path = %secret,
                        lease_id = %info.id,
                        duration_s = info.duration.as_secs(),
                        renewable = info.renewable,
                        "dynamic secret issued; its lease is kept while the command runs"
                    );
                    let changes = lease.changes();
                    leased.held.push(Held {
                        secret,
                        lease,
                        changes,
                        ended: false,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        };
        let values = leased.merge(paths, kv_values)?;
        Ok((leased, values))
    }

    /// Whether any secret is leased.
    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Whether `path`'s secret is a leased one.
    pub(crate) fn holds(&self, path: &str) -> bool {
        let secret = secret_of(path);
        self.held.iter().any(|h| h.secret == secret)
    }

    /// The values of `paths` in order: a leased secret's current
    /// credentials (or one field of them), else the next of `kv_values`.
    pub(crate) fn merge(
        &self,
        paths: &[String],
        kv_values: Vec<SecretValue>,
    ) -> Result<Vec<SecretValue>, Error> {
        let mut kv_values = kv_values.into_iter();
        let mut values = Vec::with_capacity(paths.len());
        for path in paths {
            let secret = secret_of(path);
            let value = match self.held.iter().find(|h| h.secret == secret) {
                Some(held) => {
                    let current = held.lease.current();
                    match path.split_once('#') {
                        Some((_, field)) => current.field(field).map_err(Error::from)?,
                        None => current,
                    }
                }
                // `read_many` answers one value per path asked.
                None => match kv_values.next() {
                    Some(value) => value,
                    None => break,
                },
            };
            values.push(value);
        }
        Ok(values)
    }

    /// The values of `paths` now: the KV ones read again, the leased ones
    /// as their handles hold them.
    pub(crate) async fn read_again(
        &self,
        client: &VaultClient,
        paths: &[String],
    ) -> Result<Vec<SecretValue>, Error> {
        let kv: Vec<&String> = paths.iter().filter(|p| !self.holds(p)).collect();
        let kv_values = client.read_many(&kv).await?;
        self.merge(paths, kv_values)
    }

    /// The next event of any lease, with its secret; never returns when no
    /// lease is held (or every handle has closed).
    pub(crate) async fn changed(&mut self) -> (String, LeaseEvent) {
        loop {
            let waiting: Vec<_> = self
                .held
                .iter_mut()
                .enumerate()
                .filter(|(_, h)| !h.ended)
                .map(|(i, h)| Box::pin(async move { (i, h.changes.changed().await) }))
                .collect();
            if waiting.is_empty() {
                return std::future::pending().await;
            }
            let ((index, result), _, _) = select_all(waiting).await;
            let held = &mut self.held[index];
            if result.is_err() {
                held.ended = true;
                continue;
            }
            let event = held.changes.borrow_and_update().clone();
            return (held.secret.clone(), event);
        }
    }
}
