//! `vault-secret delete`: delete a secret (its latest version on KV v2),
//! delete given KV v2 versions, or destroy them.

use clap::Args;
use vault_secret::VaultClient;

use crate::exit::{Exit, Failure};
use crate::output;

/// Arguments of `delete`.
#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// The secret: `<mount>/<path>`, e.g. `secret/app/db`.
    #[arg(value_name = "PATH")]
    path: String,

    /// Delete these KV v2 versions (comma-separated, e.g. `1,2`) instead
    /// of the latest; they can be undeleted.
    #[arg(long, value_name = "N,N...", value_delimiter = ',', num_args = 1..)]
    versions: Vec<String>,

    /// Destroy the `--versions` given: their data is gone for good.
    #[arg(long, requires = "versions")]
    destroy: bool,
}

/// Deletes (or destroys) and says what it did.
pub(crate) async fn run(args: DeleteArgs) -> Result<u8, Failure> {
    let versions = args
        .versions
        .iter()
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                Failure::new(
                    Exit::Config,
                    format!("--versions: `{}` is not a version number", v.trim()),
                )
            })
        })
        .collect::<Result<Vec<u64>, _>>()?;
    let vault = VaultClient::from_env().await?;
    let outcome = match (versions.is_empty(), args.destroy) {
        (true, _) => vault.delete(&args.path).await,
        (false, false) => vault.delete_versions(&args.path, &versions).await,
        (false, true) => vault.destroy_versions(&args.path, &versions).await,
    };
    // The token this run logged in with does not outlive it.
    if let Err(e) = vault.shutdown().await {
        tracing::debug!(error = %e, "could not revoke the token");
    }
    outcome?;
    let list = versions
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let line = match (versions.is_empty(), args.destroy) {
        (true, _) => format!("deleted {}", args.path),
        (false, false) => format!("deleted versions {list} of {}", args.path),
        (false, true) => format!("destroyed versions {list} of {}", args.path),
    };
    output::print(&line, true)?;
    Ok(0)
}
