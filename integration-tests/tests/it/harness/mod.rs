//! The tests' harness: a thin layer over [`vault_secret::testing`], keeping
//! the names the tests were written with. New tests may use
//! `vault_secret::testing` directly (`DevVault::shared()`, ...).
//!
//! Every test shares one server (see [`server`]) and provisions what it needs
//! under names from [`unique`], so tests never collide. Tests that break the
//! server (sealing it) or need TLS start their own with [`dedicated_server`].

mod server;

pub use server::{DedicatedServer, Server, ServerOptions, dedicated_server, server};
pub use vault_secret::testing::{
    Admin, KubeFixture, RawResponse, ServiceAccount, service_account_jwt, unique,
};
