//! Where the command's secrets come from while it runs, and how a change
//! is heard: the supervisor holds a [`Secrets`] and knows nothing else.
//!
//! A source publishes each new [`Snapshot`] on a `watch` channel. Today
//! there are two: [`Secrets::fixed`] (read once, never changes) and
//! [`Secrets::poll_kv`] (`--watch`: the KV paths read again every
//! interval). A source of leased secrets publishes in the same way when a
//! lease is rotated.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vault_secret::VaultClient;

use crate::exec::env::{Request, Snapshot, parent_has};
use crate::exit::Failure;

/// The secrets the command gets now, and the changes to come.
#[derive(Debug)]
pub(crate) struct Secrets {
    current: watch::Receiver<Arc<Snapshot>>,
    /// The source's task, stopped with the supervisor.
    task: Option<JoinHandle<()>>,
}

impl Drop for Secrets {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Secrets {
    /// Secrets read once.
    pub(crate) fn fixed(snapshot: Snapshot) -> Secrets {
        let (_, current) = watch::channel(Arc::new(snapshot));
        Secrets {
            current,
            task: None,
        }
    }

    /// The secrets of `request`, starting from `first`, read again with
    /// `client` every `interval`.
    pub(crate) fn poll_kv(
        client: VaultClient,
        request: Arc<Request>,
        first: Snapshot,
        interval: Duration,
    ) -> Secrets {
        let (tx, current) = watch::channel(Arc::new(first));
        let task = tokio::spawn(poll(client, request, tx, interval));
        Secrets {
            current,
            task: Some(task),
        }
    }

    /// The latest snapshot.
    pub(crate) fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.borrow())
    }

    /// Waits for a new snapshot; never returns for secrets that cannot change.
    pub(crate) async fn changed(&mut self) -> Arc<Snapshot> {
        if self.current.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        Arc::clone(&self.current.borrow_and_update())
    }
}

/// Reads the paths every `interval` and publishes the variables when they
/// differ. While the server cannot be read the command keeps the values it
/// has: a WARN names the paths and the error (never a value) once, and
/// another says when reading works again.
async fn poll(
    client: VaultClient,
    request: Arc<Request>,
    tx: watch::Sender<Arc<Snapshot>>,
    interval: Duration,
) {
    let paths = request.paths();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut refused = false;
    loop {
        ticks.tick().await;
        let values = match client.read_many(&paths).await {
            Ok(values) => values,
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        paths = ?paths,
                        "cannot check the secrets for changes: {e}; the command keeps \
                         running with the values it has, and checking goes on every {interval:?}"
                    );
                    failing = true;
                }
                continue;
            }
        };
        if failing {
            tracing::warn!(paths = ?paths, "the secrets can be read again; watching resumes");
            failing = false;
        }
        match request.snapshot(&values, &parent_has) {
            Ok(next) => {
                refused = false;
                tx.send_if_modified(|current| {
                    if **current == next {
                        return false;
                    }
                    let changed: Vec<&String> = next
                        .vars
                        .iter()
                        .filter(|(name, (value, _))| {
                            current.vars.get(*name).map(|(v, _)| v) != Some(value)
                        })
                        .map(|(name, _)| name)
                        .collect();
                    tracing::info!(variables = ?changed, "the secrets changed");
                    *current = Arc::new(next);
                    true
                });
            }
            // A change the command cannot be given (a key that is not a
            // name, or a refused one): it keeps what it has.
            Err(failure) if !refused => {
                refused = true;
                let why = match &failure {
                    Failure::Error { message, .. } => message.clone(),
                    Failure::Usage(e) => e.kind().to_string(),
                };
                tracing::warn!(
                    paths = ?paths,
                    "the secrets changed, but not into variables the command can get ({why}); \
                     it keeps the values it has"
                );
            }
            Err(_) => {}
        }
    }
}
