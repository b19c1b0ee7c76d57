//! Removing what a test created on a server it attached to (a started
//! server goes away with what it holds).

use std::sync::{Arc, Mutex};

use secrecy::ExposeSecret;
use serde_json::Value;

use super::admin::{Admin, Method, try_http_client};
use super::state::ServerInner;

/// One call undoing something a handle created on an attached server.
#[derive(Debug)]
pub(crate) struct Undo {
    pub(crate) namespace: Option<String>,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Option<Value>,
}

/// What handles of one [`DevVault`](super::DevVault) created on an attached server, undone
/// (newest first) when the last of them drops.
#[derive(Debug)]
pub(crate) struct Cleanup {
    pub(crate) server: Arc<ServerInner>,
    pub(crate) undo: Mutex<Vec<Undo>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let undo = std::mem::take(
            self.undo
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if undo.is_empty() {
            return;
        }
        let server = Arc::clone(&self.server);
        // Drop cannot await, and may run inside the test's runtime: undo on
        // a thread with a runtime of its own, and wait for it.
        let done = std::thread::spawn(move || -> Result<Vec<String>, String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime: {e}"))?;
            runtime.block_on(async move {
                try_http_client(server.ca_cert.as_deref())?;
                let root = Admin::new(
                    &server.addr,
                    server.root_token.expose_secret(),
                    server.ca_cert.as_deref(),
                );
                let mut failures = Vec::new();
                for undo in undo.into_iter().rev() {
                    let admin = match &undo.namespace {
                        Some(namespace) => root.in_namespace(namespace),
                        None => root.clone(),
                    };
                    let answer = admin
                        .try_request(undo.method.clone(), &undo.path, undo.body.as_ref())
                        .await;
                    match answer {
                        Ok(r) if r.is_success() || r.status == 404 => {}
                        Ok(r) => failures.push(format!(
                            "{} {}: HTTP {} {}",
                            undo.method,
                            undo.path,
                            r.status,
                            r.errors()
                        )),
                        Err(e) => failures.push(e),
                    }
                }
                Ok(failures)
            })
        })
        .join();
        match done {
            Ok(Ok(failures)) if failures.is_empty() => {}
            Ok(Ok(failures)) => eprintln!(
                "DevVault: could not remove what the test created on {}: {}",
                self.server.addr,
                failures.join("; ")
            ),
            Ok(Err(e)) => eprintln!("DevVault: clean-up of {} failed: {e}", self.server.addr),
            Err(_) => eprintln!("DevVault: clean-up of {} panicked", self.server.addr),
        }
    }
}
