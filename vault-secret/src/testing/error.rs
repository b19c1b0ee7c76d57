//! Why the testing feature could not give a test its server.

use std::fmt;
use std::sync::Arc;

/// What went wrong, as data to match on (the message says it in words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TestingErrorKind {
    /// No server binary was found; the message lists where it looked and
    /// the one-line fix.
    NoServerBinary,
    /// The binary was found but a server did not start, get ready, get
    /// initialised or come back.
    Start,
    /// Attaching to a server the user runs failed: a variable is missing or
    /// the server does not answer.
    Attach,
}

/// A failure of [`DevVault`](super::DevVault) (or another server of this
/// module) to start, attach or restart.
///
/// `Debug` prints the same text as `Display`, so a test's
/// `.expect("a dev Vault")` shows the message (where to get a binary, the
/// server's output) as lines rather than an escaped struct. The message
/// includes the cause's text; [`source`](std::error::Error::source) gives the
/// cause itself (an I/O or HTTP error) where there is one. Cloneable, since
/// the [shared](super::DevVault::shared) server's failure is returned to
/// every test that asks.
#[derive(Clone)]
pub struct TestingError {
    kind: TestingErrorKind,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl TestingError {
    pub(crate) fn new(kind: TestingErrorKind, message: impl Into<String>) -> Self {
        TestingError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// `message: cause`, with `cause` kept as the [`source`](std::error::Error::source).
    pub(crate) fn caused(
        kind: TestingErrorKind,
        message: impl fmt::Display,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TestingError {
            kind,
            message: format!("{message}: {cause}"),
            source: Some(Arc::new(cause)),
        }
    }

    /// The same error with `context` on a line of its own after the
    /// message (e.g. the server's output).
    pub(crate) fn with_context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{}\n{context}", self.message);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> TestingErrorKind {
        self.kind
    }
}

impl fmt::Display for TestingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for TestingError {
    // A user's `.expect()` prints `Debug`: the message reads better than a
    // struct with `\n` escapes, and it names no credential either way.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TestingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn debug_reads_as_the_message_for_every_kind() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no way");
        let errors = [
            TestingError::new(
                TestingErrorKind::NoServerBinary,
                "No binary.\nSet VAULT_DEV_BIN",
            ),
            TestingError::caused(
                TestingErrorKind::Start,
                "cannot create a scratch directory",
                io,
            )
            .with_context("--- server output ---\nline"),
            TestingError::new(TestingErrorKind::Attach, "needs VAULT_ADDR"),
        ];
        for error in errors {
            assert_eq!(format!("{error:?}"), error.to_string());
            assert!(!format!("{error:?}").contains("\\n"), "{error:?}");
        }
    }

    #[test]
    fn source_is_the_cause_and_kind_is_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no way");
        let error = TestingError::caused(TestingErrorKind::Start, "cannot write dev.hcl", io);
        assert_eq!(error.kind(), TestingErrorKind::Start);
        assert_eq!(error.to_string(), "cannot write dev.hcl: no way");
        let source = error.source().expect("the I/O error");
        assert_eq!(
            source.downcast_ref::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::PermissionDenied)
        );
        assert!(
            TestingError::new(TestingErrorKind::Attach, "x")
                .source()
                .is_none()
        );
    }
}
