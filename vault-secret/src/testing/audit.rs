//! Counting the requests a piece of code makes, from a file audit device.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tempfile::TempDir;

use super::admin::Method;
use super::server::DevVault;
use super::unique;

/// The server's file audit log, read from the point it was handed out (or
/// from a [`mark`](AuditLog::mark)): one entry per request the server
/// received. From [`DevVault::audit_requests`].
///
/// On the shared server every test's requests land in the same log: count
/// the requests under the test's own (unique) mounts and auth paths with
/// [`count_since`](AuditLog::count_since), or use a server of the test's own.
/// Its readers are async, as are [`MockVault`](super::MockVault)'s
/// [`count`](super::MockVault::count) and [`received`](super::MockVault::received).
#[derive(Debug, Clone)]
pub struct AuditLog {
    file: PathBuf,
    start: AuditMark,
    _dir: Option<Arc<TempDir>>,
}

/// A point in an [`AuditLog`] (from [`AuditLog::mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AuditMark(u64);

/// One request, as the audit device recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditedRequest {
    /// `read`, `update`, `list`, `delete`, ...
    pub operation: String,
    /// The API path relative to `/v1/` (and to the namespace), e.g.
    /// `secret/data/app`.
    pub path: String,
    /// The namespace's path (e.g. `team/`), `None` for the root namespace.
    pub namespace: Option<String>,
}

impl DevVault {
    /// Enables a file audit device (once per started server; on an attached
    /// server a uniquely named one, removed on drop) and returns its log,
    /// read from now on. For tests asserting how many calls a piece of code
    /// makes:
    ///
    /// ```no_run
    /// # async fn demo(vault: vault_secret::testing::DevVault) {
    /// let audit = vault.audit_requests().await;
    /// let before = audit.mark().await;
    /// // ... run the code under test ...
    /// assert!(audit.count_since(&before, "secret/").await <= 4);
    /// # }
    /// ```
    ///
    /// On an attached server the file is in this machine's temporary
    /// directory, so the server must run here, as a user that may write it.
    pub async fn audit_requests(&self) -> AuditLog {
        // Audit devices live in the root namespace.
        let root = self.root_admin();
        let (file, dir) = match self.server().work_dir() {
            Some(work_dir) => {
                let file = work_dir.join("audit.log");
                self.server()
                    .audit
                    .get_or_init(|| async {
                        enable_file_audit(&root, "dev-vault", &file).await;
                        file.clone()
                    })
                    .await;
                (file, None)
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("dev-vault-audit-")
                    .tempdir()
                    .unwrap_or_else(|e| panic!("cannot create a directory for the audit log: {e}"));
                let file = dir.path().join("audit.log");
                let name = unique("dev-vault-audit");
                enable_file_audit(&root, &name, &file).await;
                self.undo_later(Method::DELETE, format!("sys/audit/{name}"), None, true);
                (file, Some(Arc::new(dir)))
            }
        };
        let mut log = AuditLog {
            file,
            start: AuditMark(0),
            _dir: dir,
        };
        log.start = log.mark().await;
        log
    }
}

async fn enable_file_audit(admin: &super::Admin, name: &str, file: &Path) {
    let body = json!({"type": "file", "options": {"file_path": file.display().to_string()}});
    admin
        .call_ok(Method::PUT, &format!("sys/audit/{name}"), Some(&body))
        .await;
}

impl AuditLog {
    /// The audit log file.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The current end of the log: requests after this point are
    /// [`requests_since`](Self::requests_since) it.
    pub async fn mark(&self) -> AuditMark {
        AuditMark(complete_lines(&self.read().await).len() as u64)
    }

    /// Requests recorded since the log was handed out.
    pub async fn requests(&self) -> Vec<AuditedRequest> {
        self.requests_since(&self.start).await
    }

    /// Requests recorded since `mark`, oldest first.
    pub async fn requests_since(&self, mark: &AuditMark) -> Vec<AuditedRequest> {
        let text = self.read().await;
        let lines = complete_lines(&text);
        let start = usize::try_from(mark.0)
            .unwrap_or(usize::MAX)
            .min(lines.len());
        lines[start..]
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["type"] == "request")
            .map(|entry| AuditedRequest {
                operation: entry["request"]["operation"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                path: entry["request"]["path"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                namespace: entry["request"]["namespace"]["path"]
                    .as_str()
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            })
            .collect()
    }

    /// How many requests since `mark` had a path starting with
    /// `path_prefix` (`""` counts all).
    pub async fn count_since(&self, mark: &AuditMark, path_prefix: &str) -> usize {
        self.requests_since(mark)
            .await
            .iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .count()
    }

    async fn read(&self) -> String {
        tokio::fs::read(&self.file)
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

/// The lines that end with a newline (the last may be half written).
fn complete_lines(text: &str) -> Vec<&str> {
    match text.rfind('\n') {
        Some(end) => text[..end].lines().collect(),
        None => Vec::new(),
    }
}
