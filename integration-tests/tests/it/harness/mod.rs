//! Test harness: a real Vault-API server (an OpenBao dev server started on
//! demand, or a Vault you point the tests at), an admin client that
//! provisions it, and a fake Kubernetes API for the Kubernetes auth method.
//!
//! Every test shares one server (see [`server`]) and provisions what it needs
//! under names from [`unique`], so tests never collide. Tests that break the
//! server (sealing it) or need TLS start their own with [`dedicated_server`].

mod admin;
mod kube;
mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use admin::{Admin, RawResponse};
pub use kube::{KubeFixture, ServiceAccount, service_account_jwt};
pub use server::{DedicatedServer, Server, ServerOptions, dedicated_server, server};

/// A name nobody else uses, safe for mount paths, policy, role and
/// namespace names: `<prefix>-<pid><time>-<counter>` (lowercase letters,
/// digits and dashes when `prefix` is made of those).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    // The last ~4.6 hours in milliseconds keep the name short while two
    // processes with a recycled pid still differ.
    format!(
        "{prefix}-{:x}{:x}-{n}",
        std::process::id(),
        millis % 0x100_0000
    )
}
