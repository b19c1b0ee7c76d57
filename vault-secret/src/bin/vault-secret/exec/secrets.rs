//! Where the command's secrets come from while it runs, and how a change
//! is heard: the supervisor holds a [`Secrets`] and knows nothing else.
//!
//! A source publishes each new [`Snapshot`] on a `watch` channel:
//! [`Secrets::fixed`] (read once, never changes) or [`Secrets::watch`]
//! (`--watch`: each KV secret's version, or its value, checked every
//! interval; and the leases of dynamic secrets, whose rotations publish the
//! new credentials).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vault_secret::VaultClient;
use vault_secret::lease::LeaseEvent;

use crate::exec::env::{Request, Snapshot, parent_has};
use crate::exec::leased::Leased;
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

    /// The secrets of `request`, starting from `first`: the KV ones read
    /// again with `client` every `interval` (with `--watch`; `versions` are
    /// those seen before `first` was read), the leased ones published anew
    /// when their lease is rotated.
    pub(crate) fn watch(
        client: VaultClient,
        request: Arc<Request>,
        leased: Leased,
        versions: Versions,
        first: Snapshot,
        interval: Option<Duration>,
    ) -> Secrets {
        let (tx, current) = watch::channel(Arc::new(first));
        let versions = versions.without(&leased);
        let task = tokio::spawn(poll(client, request, leased, versions, tx, interval));
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

/// How a watched path is checked for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Its KV v2 version, from the metadata (no value travels); the
    /// version last seen with the values the command has.
    Version(Option<u64>),
    /// Its value (KV v1, or a token that may not read the metadata).
    Value,
}

/// How each distinct secret (a `#field` aside) is checked, and what was
/// seen of it.
#[derive(Debug)]
pub(crate) struct Versions(Vec<(String, Check)>);

impl Versions {
    /// Nothing to check (no `--watch`).
    pub(crate) fn none() -> Versions {
        Versions(Vec::new())
    }

    /// Without the leased secrets, whose changes their leases tell.
    fn without(self, leased: &Leased) -> Versions {
        Versions(
            self.0
                .into_iter()
                .filter(|(path, _)| !leased.holds(path))
                .collect(),
        )
    }

    /// The secrets of `paths`, each checked through its metadata; read
    /// before the values the command starts with, so that a change between
    /// the two is seen at the first check, and no read of the values is
    /// needed to learn where they stand.
    pub(crate) async fn before_reading(client: &VaultClient, paths: &[String]) -> Versions {
        let mut checks: Vec<(String, Check)> = Vec::new();
        for path in paths {
            let secret = path.split('#').next().unwrap_or(path).to_owned();
            if !checks.iter().any(|(p, _)| *p == secret) {
                checks.push((secret, Check::Version(None)));
            }
        }
        // A failure here only means the first check reads the values.
        if let Ok((_, seen)) = changed_versions(client, &mut checks).await {
            for ((_, check), now) in checks.iter_mut().zip(seen) {
                *check = now;
            }
        }
        Versions(checks)
    }
}

/// Which secrets to read again: the versions now, or an error. A secret
/// whose metadata cannot be read is checked by its value from then on.
async fn changed_versions(
    client: &VaultClient,
    checks: &mut [(String, Check)],
) -> Result<(bool, Vec<Check>), vault_secret::Error> {
    let asked = checks.iter().map(|(path, check)| async move {
        match check {
            Check::Version(_) => client.kv_current_version(path).await.map(Some),
            Check::Value => Ok(None),
        }
    });
    let answers = futures_util::future::join_all(asked).await;
    let mut read = false;
    let mut seen = Vec::with_capacity(checks.len());
    for ((path, check), answer) in checks.iter_mut().zip(answers) {
        match (answer?, *check) {
            (Some(Some(version)), Check::Version(last)) => {
                // The first time, too: the value may have changed since
                // the command's values were read.
                read |= last != Some(version);
                seen.push(Check::Version(Some(version)));
            }
            (_, Check::Value) => {
                read = true;
                seen.push(Check::Value);
            }
            (_, Check::Version(_)) => {
                tracing::debug!(path = %path, "no KV v2 metadata to read: watching the value");
                *check = Check::Value;
                read = true;
                seen.push(Check::Value);
            }
        }
    }
    Ok((read, seen))
}

/// Checks the paths every `interval` (a KV v2 secret through its metadata,
/// which the token may read, else by its value: one request per secret),
/// reads the values when a version moved, and publishes the variables
/// when they differ. While the server cannot be read the command keeps the
/// values it has: a WARN names the paths and the error (never a value)
/// once, and another says when reading works again.
async fn poll(
    client: VaultClient,
    request: Arc<Request>,
    mut leased: Leased,
    versions: Versions,
    tx: watch::Sender<Arc<Snapshot>>,
    interval: Option<Duration>,
) {
    let paths = request.paths();
    let Versions(mut checks) = versions;
    let mut ticks = interval.map(|interval| {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    let interval = interval.unwrap_or_default();
    let mut failing = false;
    let mut refused = false;
    loop {
        let tick = async {
            match ticks.as_mut() {
                Some(ticks) => drop(ticks.tick().await),
                None => std::future::pending().await,
            }
        };
        let rotated = tokio::select! {
            () = tick => false,
            (secret, event) = leased.changed() => match event {
                LeaseEvent::Rotated(_) => {
                    tracing::info!(path = %secret, "a dynamic secret was rotated: new credentials");
                    true
                }
                LeaseEvent::Lost(lost) => {
                    tracing::warn!(
                        path = %secret,
                        "a dynamic secret's lease could not be kept ({}); the command keeps \
                         the credentials it has",
                        lost.reason
                    );
                    continue;
                }
                _ => continue,
            },
        };
        let read = if rotated {
            let seen = checks.iter().map(|(_, check)| *check).collect();
            leased
                .read_again(&client, &paths)
                .await
                .map(|v| Some((v, seen)))
        } else {
            match changed_versions(&client, &mut checks).await {
                Ok((false, _)) => Ok(None),
                Ok((true, seen)) => leased
                    .read_again(&client, &paths)
                    .await
                    .map(|v| Some((v, seen))),
                Err(e) => Err(e),
            }
        };
        let values = match read {
            Ok(read) => {
                if failing {
                    tracing::warn!(paths = ?paths, "the secrets can be read again; watching resumes");
                    failing = false;
                }
                match read {
                    Some((values, seen)) => {
                        // Only now: a version seen whose value could not
                        // be read is read again next time.
                        for ((_, check), now) in checks.iter_mut().zip(seen) {
                            *check = now;
                        }
                        values
                    }
                    None => continue,
                }
            }
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
