//! The task that keeps one lease: it plans the next step from the lease and
//! the token under it (renew, rotate, renew the token, log in again), waits
//! for it or for a command, does it and publishes what happened.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::calls::{IssueRequest, Issued, lost_kind};
use super::{Backend, Command, Current, LeaseEvent, LeaseInfo, LeaseLost, LeaseOptions, Shared};
use crate::error::{Error, LeaseLostKind};
use crate::token::TokenLife;

/// The longest wait between two attempts to issue a lost secret anew.
const LOST_RETRY: Duration = Duration::from_secs(30);

/// A renewal that grants less than this part of what was asked means the
/// max TTL is near (the server rounds grants to whole seconds).
const SHORT_GRANT: f64 = 0.9;

/// The next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Renew,
    Rotate,
    /// Use the token, which renews it (its renewal is due).
    TouchToken,
    /// Log in again, then rotate (the token ends before the lease).
    ReplaceToken,
    /// The lease has ended without a replacement.
    Expire,
}

/// What the plan reads of the keeper's state.
#[derive(Debug, Clone, Copy)]
pub(super) struct Facts {
    pub(super) info_issued: Instant,
    pub(super) info_expires: Instant,
    pub(super) duration: Duration,
    pub(super) first_duration: Duration,
    pub(super) renewable: bool,
    pub(super) exhausted: bool,
    pub(super) generation: u64,
    /// A renewal was refused: replace the credentials now.
    pub(super) refused: bool,
    pub(super) lost: bool,
    /// No step before this (after a failure).
    pub(super) retry_at: Option<Instant>,
    /// Subtracted from the renewal time (a tenth of the lease at most).
    pub(super) jitter: Duration,
}

/// How long before a lease's end it is replaced: the option, at most a
/// third of the lease's first duration.
fn rotation_lead(options: &LeaseOptions, first_duration: Duration) -> Duration {
    options.rotation_lead().min(first_duration / 3)
}

/// The next step and when, from the lease and the token under it.
pub(super) fn plan(
    facts: &Facts,
    token: &TokenLife,
    options: &LeaseOptions,
    now: Instant,
) -> (Instant, Action) {
    if facts.lost {
        return (facts.retry_at.unwrap_or(now), Action::Rotate);
    }
    if now >= facts.info_expires {
        return (now, Action::Expire);
    }
    let mut next = if token.generation != 0 && token.generation != facts.generation {
        // The token that issued the lease was replaced: it ends soon.
        (now, Action::Rotate)
    } else if facts.refused {
        (now, Action::Rotate)
    } else if facts.renewable && !facts.exhausted {
        let at = facts.info_issued + facts.duration.mul_f64(options.renew_fraction());
        (at.checked_sub(facts.jitter).unwrap_or(at), Action::Renew)
    } else if facts.exhausted {
        // The max TTL is near: replace now, with all the time left to do
        // it (many leases issued together reach it together).
        (now, Action::Rotate)
    } else {
        let lead = rotation_lead(options, facts.first_duration);
        let at = facts.info_expires.checked_sub(lead).unwrap_or(now);
        (at, Action::Rotate)
    };
    if token.generation == facts.generation {
        if let Some(due) = token.renewal_due {
            if due < next.0 {
                next = (due, Action::TouchToken);
            }
        } else if let Some(end) = token.expires_at
            && end < facts.info_expires
        {
            let lead = rotation_lead(options, facts.first_duration).max(token.margin);
            let at = end.checked_sub(lead).unwrap_or(now);
            if at < next.0 {
                next = (at, Action::ReplaceToken);
            }
        }
    }
    if let Some(retry) = facts.retry_at {
        next.0 = next.0.max(retry).min(facts.info_expires);
        if next.0 == facts.info_expires {
            next.1 = Action::Expire;
        }
    }
    next
}

/// Up to a tenth of `duration`, drawn at random.
fn jitter(duration: Duration) -> Duration {
    let draw = RandomState::new().hash_one(Instant::now()) % 1000;
    duration / 10 * u32::try_from(draw).unwrap_or(0) / 1000
}

/// The credentials and lease of a fresh issue, asked for at `asked_at`:
/// the lease is counted from when the request left, not from when the
/// answer came (the server counts from when it got it), so a slow answer
/// never makes the lease look longer than it is.
pub(super) fn current_of(
    request: &IssueRequest,
    issued: &Issued,
    asked_at: Instant,
) -> Result<Current, Error> {
    let value = crate::batch::select(&request.secret, &issued.answer.data)?;
    let now = asked_at;
    let first_duration = issued.answer.duration;
    Ok(Current {
        value,
        info: LeaseInfo {
            id: issued.answer.lease_id.clone(),
            duration: issued.answer.duration,
            renewable: issued.answer.renewable,
            issued_at: now,
            expires_at: now + issued.answer.duration,
        },
        generation: issued.generation,
        first_duration,
        exhausted: false,
    })
}

/// A replaced lease in its grace period.
struct Retired {
    id: String,
    revoke_at: Instant,
    expires_at: Instant,
}

/// One lease's keeper.
pub(super) struct Keeper<B> {
    backend: B,
    shared: Arc<Shared>,
    events: watch::Sender<LeaseEvent>,
    life: watch::Receiver<TokenLife>,
    options: LeaseOptions,
    request: IssueRequest,
    /// Replaced leases, when to revoke them, and when they end anyway.
    retired: Vec<Retired>,
    failures: u32,
    retry_at: Option<Instant>,
    refused: bool,
    lost: bool,
    jitter: Duration,
}

impl<B: Backend> Keeper<B> {
    pub(super) fn new(
        backend: B,
        shared: Arc<Shared>,
        events: watch::Sender<LeaseEvent>,
        life: watch::Receiver<TokenLife>,
        options: LeaseOptions,
        request: IssueRequest,
    ) -> Self {
        let jitter = jitter(shared.current().info.duration);
        Keeper {
            backend,
            shared,
            events,
            life,
            options,
            request,
            retired: Vec::new(),
            failures: 0,
            retry_at: None,
            refused: false,
            lost: false,
            jitter,
        }
    }

    fn facts(&self) -> Facts {
        let current = self.shared.current();
        Facts {
            info_issued: current.info.issued_at,
            info_expires: current.info.expires_at,
            duration: current.info.duration,
            first_duration: current.first_duration,
            renewable: current.info.renewable,
            exhausted: current.exhausted,
            generation: current.generation,
            refused: self.refused,
            lost: self.lost,
            retry_at: self.retry_at,
            jitter: self.jitter,
        }
    }

    /// Runs until closed, dropped or detached.
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let now = Instant::now();
            let token = *self.life.borrow_and_update();
            let (at, action) = plan(&self.facts(), &token, &self.options, now);
            let wake = self
                .retired
                .iter()
                .map(|r| r.revoke_at)
                .fold(at, Instant::min);
            tokio::select! {
                command = commands.recv() => {
                    match command {
                        Some(Command::Detach) => {
                            tracing::debug!(path = %self.shared.path, "lease detached");
                            return;
                        }
                        Some(Command::Close(reply)) => {
                            let _ = reply.send(self.close().await);
                            return;
                        }
                        None => {
                            if let Err(e) = self.close().await {
                                tracing::debug!(path = %self.shared.path, failure = %e,
                                    "could not revoke a dropped lease");
                            }
                            return;
                        }
                    }
                }
                changed = self.life.changed() => {
                    if changed.is_err() {
                        // The client is gone; nothing can be renewed.
                        return;
                    }
                }
                () = tokio::time::sleep_until(wake.into()) => {
                    self.revoke_due().await;
                    if Instant::now() >= at {
                        self.act(action).await;
                    }
                }
            }
        }
    }

    /// Revokes the replaced leases whose grace period is over; one that
    /// ends by then is left to the server, which revokes it at its end (a
    /// second revocation would only add to the server's load, which is at
    /// its highest when many leases reach their max TTL together).
    async fn revoke_due(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retired)
            .into_iter()
            .partition(|r| r.revoke_at <= now);
        self.retired = later;
        for Retired {
            id: lease_id,
            expires_at,
            ..
        } in due
        {
            if expires_at <= now + Duration::from_secs(1) {
                tracing::debug!(%lease_id, "old lease left to end by itself");
                continue;
            }
            match self.backend.context().revoke(&lease_id).await {
                Ok(()) => tracing::debug!(%lease_id, "old lease revoked after its grace period"),
                Err(e) => tracing::debug!(%lease_id, failure = %e, "could not revoke an old lease"),
            }
        }
    }

    async fn act(&mut self, action: Action) {
        let outcome = match action {
            Action::Renew => self.renew().await,
            Action::Rotate => self.rotate().await,
            Action::TouchToken => self.backend.touch_token().await,
            Action::ReplaceToken => {
                let generation = self.shared.current().generation;
                tracing::debug!(path = %self.shared.path,
                    "the token ends before the lease: logging in again to issue it anew");
                match self.backend.replace_token(generation).await {
                    Ok(()) => self.rotate().await,
                    Err(e) => Err(e),
                }
            }
            Action::Expire => {
                self.lose(
                    LeaseLostKind::Expired,
                    "the lease ended before it could be renewed or replaced".into(),
                );
                Ok(())
            }
        };
        match outcome {
            Ok(()) => {
                self.failures = 0;
                self.retry_at = None;
            }
            Err(e) => self.failed(&e),
        }
    }

    /// A step failed: retry later (before the lease ends) if it is
    /// transient, else the credentials are lost.
    fn failed(&mut self, error: &Error) {
        self.failures += 1;
        let kind = lost_kind(error);
        tracing::debug!(path = %self.shared.path, failure = %error, attempt = self.failures,
            transient = kind.is_none(), "lease step failed");
        let wait = if self.lost {
            LOST_RETRY.min(Duration::from_secs(1 << self.failures.min(5)))
        } else {
            crate::transport::backoff(self.failures)
        };
        self.retry_at = Some(Instant::now() + wait);
        if let Some(kind) = kind
            && !self.lost
        {
            self.lose(kind, error.to_string());
        }
    }

    fn lose(&mut self, kind: LeaseLostKind, reason: String) {
        tracing::debug!(path = %self.shared.path, %kind, "lease lost");
        self.lost = true;
        self.failures = self.failures.max(1);
        self.retry_at = Some(Instant::now() + crate::transport::backoff(self.failures));
        self.events
            .send_replace(LeaseEvent::Lost(LeaseLost { kind, reason }));
    }

    async fn renew(&mut self) -> Result<(), Error> {
        let current = self.shared.current();
        let asked = current.first_duration;
        let asked_at = Instant::now();
        match self.backend.context().renew(&current.info.id, asked).await {
            Ok(renewed) => {
                let now = asked_at;
                let exhausted = renewed.duration < asked.mul_f64(SHORT_GRANT) || !renewed.renewable;
                let info = LeaseInfo {
                    id: current.info.id.clone(),
                    duration: renewed.duration,
                    renewable: renewed.renewable,
                    issued_at: now,
                    expires_at: now + renewed.duration,
                };
                tracing::debug!(lease_id = %info.id, granted_s = renewed.duration.as_secs(),
                    exhausted, "lease renewed");
                self.shared.replace(Current {
                    value: current.value.clone(),
                    info: info.clone(),
                    generation: current.generation,
                    first_duration: current.first_duration,
                    exhausted,
                });
                self.jitter = jitter(renewed.duration);
                self.events.send_replace(LeaseEvent::Renewed(info));
                Ok(())
            }
            // Refused (403, lease not found): new credentials now.
            Err(e) if lost_kind(&e).is_some() => {
                tracing::debug!(lease_id = %current.info.id, failure = %e,
                    "renewal refused: issuing new credentials");
                self.refused = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn rotate(&mut self) -> Result<(), Error> {
        let asked_at = Instant::now();
        let issued = self.backend.context().issue(&self.request, false).await?;
        let old = self.shared.current();
        let fresh = match current_of(&self.request, &issued, asked_at) {
            Ok(fresh) => fresh,
            Err(e) => {
                let _ = self.backend.context().revoke(&issued.answer.lease_id).await;
                return Err(e);
            }
        };
        let info = fresh.info.clone();
        tracing::debug!(path = %self.shared.path, lease_id = %info.id,
            old_lease_id = %old.info.id, "credentials rotated");
        self.shared.replace(fresh);
        if !self.lost && old.info.expires_at > Instant::now() {
            let at = (Instant::now() + self.options.grace_period()).min(old.info.expires_at);
            self.retired.push(Retired {
                id: old.info.id.clone(),
                revoke_at: at,
                expires_at: old.info.expires_at,
            });
        }
        self.refused = false;
        self.lost = false;
        self.jitter = jitter(info.duration);
        self.events.send_replace(LeaseEvent::Rotated(info));
        Ok(())
    }

    /// Revokes the current lease and every replaced one; the first failure
    /// is the error.
    async fn close(&mut self) -> Result<(), Error> {
        let current = self.shared.current();
        let now = Instant::now();
        let mut ids: Vec<String> = self
            .retired
            .drain(..)
            .filter(|r| r.expires_at > now)
            .map(|r| r.id)
            .collect();
        if !self.lost {
            ids.insert(0, current.info.id.clone());
        }
        let mut first = None;
        for id in ids {
            match self.backend.context().revoke(&id).await {
                Ok(()) => tracing::debug!(lease_id = %id, "lease revoked"),
                Err(e) => {
                    tracing::debug!(lease_id = %id, failure = %e, "could not revoke a lease");
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(now: Instant, duration: u64) -> Facts {
        Facts {
            info_issued: now,
            info_expires: now + Duration::from_secs(duration),
            duration: Duration::from_secs(duration),
            first_duration: Duration::from_secs(duration),
            renewable: true,
            exhausted: false,
            generation: 1,
            refused: false,
            lost: false,
            retry_at: None,
            jitter: Duration::ZERO,
        }
    }

    fn token(generation: u64) -> TokenLife {
        TokenLife {
            generation,
            expires_at: None,
            renewal_due: None,
            margin: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_renewable_lease_is_renewed_at_its_fraction_less_the_jitter() {
        let now = Instant::now();
        let options = LeaseOptions::new();
        let mut f = facts(now, 30);
        assert_eq!(
            plan(&f, &token(1), &options, now),
            (now + Duration::from_secs(20), Action::Renew)
        );
        f.jitter = Duration::from_secs(2);
        assert_eq!(
            plan(&f, &token(1), &options, now).0,
            now + Duration::from_secs(18)
        );
    }

    #[test]
    fn an_exhausted_lease_is_rotated_now_and_a_non_renewable_one_ahead_of_its_end() {
        let now = Instant::now();
        let options = LeaseOptions::new().with_rotation_lead(Duration::from_secs(5));
        let mut f = facts(now, 30);
        f.exhausted = true;
        assert_eq!(plan(&f, &token(1), &options, now), (now, Action::Rotate));
        let mut f = facts(now, 30);
        f.renewable = false;
        assert_eq!(
            plan(&f, &token(1), &options, now),
            (now + Duration::from_secs(25), Action::Rotate)
        );
        let mut f = facts(now, 6);
        f.renewable = false;
        // The lead is at most a third of the lease.
        assert_eq!(
            plan(&f, &token(1), &options, now),
            (now + Duration::from_secs(4), Action::Rotate)
        );
    }

    #[test]
    fn a_refusal_or_a_replaced_token_rotates_now_and_an_end_expires() {
        let now = Instant::now();
        let options = LeaseOptions::new();
        let mut f = facts(now, 30);
        f.refused = true;
        assert_eq!(plan(&f, &token(1), &options, now), (now, Action::Rotate));
        let f = facts(now, 30);
        assert_eq!(plan(&f, &token(2), &options, now), (now, Action::Rotate));
        let later = now + Duration::from_secs(31);
        assert_eq!(
            plan(&f, &token(1), &options, later),
            (later, Action::Expire)
        );
    }

    #[test]
    fn the_token_is_renewed_or_replaced_before_it_ends_under_the_lease() {
        let now = Instant::now();
        let options = LeaseOptions::new();
        let f = facts(now, 300);
        let mut t = token(1);
        t.renewal_due = Some(now + Duration::from_secs(40));
        t.expires_at = Some(now + Duration::from_secs(60));
        assert_eq!(
            plan(&f, &t, &options, now),
            (now + Duration::from_secs(40), Action::TouchToken)
        );
        // Not renewable any more: log in again a lead before its end.
        t.renewal_due = None;
        assert_eq!(
            plan(&f, &t, &options, now),
            (now + Duration::from_secs(30), Action::ReplaceToken)
        );
    }

    #[test]
    fn after_a_failure_nothing_happens_before_the_retry_but_the_end_does() {
        let now = Instant::now();
        let options = LeaseOptions::new();
        let mut f = facts(now, 30);
        f.info_issued = now - Duration::from_secs(25);
        f.info_expires = now + Duration::from_secs(5);
        f.retry_at = Some(now + Duration::from_secs(2));
        assert_eq!(
            plan(&f, &token(1), &options, now),
            (now + Duration::from_secs(2), Action::Renew)
        );
        f.retry_at = Some(now + Duration::from_secs(9));
        assert_eq!(
            plan(&f, &token(1), &options, now),
            (now + Duration::from_secs(5), Action::Expire)
        );
    }
}
