//! Waiting on `sys/health`: the one polling loop of every server here
//! (started, attached, unsealed, restarted, cluster nodes).

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::admin::try_http_client;
use super::process::ServerProcess;

/// Why a server did not answer as wanted.
#[derive(Debug)]
pub(crate) enum NotReady {
    /// The server's process exited (its log says why).
    Exited(ExitStatus),
    /// Time ran out; what the last poll saw.
    TimedOut(String),
}

/// Polls `GET {addr}/v1/sys/health` until `ready` accepts the status
/// (200 active, 429 standby, 501 not initialised, 503 sealed), `process`
/// exits, or `timeout` passes. Returns the accepted status.
pub(crate) async fn wait_for_health(
    addr: &str,
    ca_cert: Option<&Path>,
    ready: impl Fn(u16) -> bool,
    timeout: Duration,
    mut process: Option<&mut ServerProcess>,
) -> Result<u16, NotReady> {
    let url = format!("{addr}/v1/sys/health");
    let deadline = Instant::now() + timeout;
    let mut client = None;
    let mut last = String::from("no answer yet");
    loop {
        if let Some(status) = process.as_mut().and_then(|p| p.exited()) {
            return Err(NotReady::Exited(status));
        }
        // With TLS the CA file only exists once the server generated it.
        if client.is_none() && ca_cert.is_none_or(Path::exists) {
            match try_http_client(ca_cert) {
                Ok(c) => client = Some(c),
                Err(e) => last = e,
            }
        }
        if let Some(client) = &client {
            match client.get(&url).send().await {
                Ok(r) if ready(r.status().as_u16()) => return Ok(r.status().as_u16()),
                Ok(r) => last = format!("GET {url} answered {}", r.status()),
                Err(e) => last = format!("GET {url} failed: {e}"),
            }
        }
        if Instant::now() >= deadline {
            return Err(NotReady::TimedOut(format!(
                "not ready within {timeout:?}; last: {last}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
