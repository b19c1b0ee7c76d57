//! Why a test could not get a server.

/// Why [`DevVault::start`](super::DevVault::start),
/// [`attach`](super::DevVault::attach) or [`shared`](super::DevVault::shared)
/// gave no server. Each message says what to do about it.
///
/// (Provisioning calls panic instead, with the call and the server's answer:
/// they run inside tests, where a panic is the failure report.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No dev server binary was found; the message lists where it looked and
    /// how to get one, or how to attach to a running server instead.
    #[error("{message}")]
    NoServerBinary {
        /// What was looked for, and how to get a binary.
        message: String,
    },
    /// The binary was found but the server did not start or get ready.
    #[error("{message}")]
    Start {
        /// The command, the reason and the server's output.
        message: String,
    },
    /// [`DevVault::attach`](super::DevVault::attach) lacks a variable or the
    /// server does not answer.
    #[error("{message}")]
    Attach {
        /// The variable or the failing call, and what to set.
        message: String,
    },
}
