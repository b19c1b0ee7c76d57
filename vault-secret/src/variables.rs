//! The environment variables the library reads, declared once.
//!
//! The configuration and credentials readers read through these
//! declarations, and the CLI's `--help` and `doctor` list them from [`ALL`],
//! so no second list can drift. The table below is generated from [`ALL`]
//! too (a unit test compares it and, with `UPDATE_DOCS=1`, rewrites it).
//! A [`ClientBuilder`](crate::ClientBuilder) setter overrides the variable
//! of its name, and `ClientBuilder::env` replaces the environment they are
//! all read from (tests never need to touch the process's own).
//!
//! The `testing` feature's variables (`VAULT_DEV_BIN`, `VAULT_DEV_ATTACH`,
//! ...) are listed in that module's docs, and the CLI's own (`RUST_LOG`) in
//! its `--help`.
//!
#![doc = include_str!("variables.md")]

/// The default name of the credentials secret.
pub const DEFAULT_CREDENTIALS_SECRET: &str = "VAULT_CREDENTIALS";

/// The default Kubernetes service-account token file.
pub const DEFAULT_KUBE_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// One environment variable the library reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Variable {
    /// Its name, e.g. `VAULT_ADDR`.
    pub name: &'static str,
    /// What it sets, in a few words.
    pub meaning: &'static str,
    /// What applies when it is unset.
    pub default: &'static str,
    /// Read when a client's settings and credentials are resolved (so a
    /// change to it must give other settings).
    pub resolution: bool,
    /// Holds a credential or names a file holding one (a token, a secret
    /// id, a JWT, a private key, the credentials secret): `vault-secret
    /// exec` keeps these from the command it runs unless asked.
    pub credential: bool,
}

const fn resolved(name: &'static str, meaning: &'static str, default: &'static str) -> Variable {
    Variable {
        name,
        meaning,
        default,
        resolution: true,
        credential: false,
    }
}

/// [`resolved`], and a credential.
const fn credential(name: &'static str, meaning: &'static str, default: &'static str) -> Variable {
    Variable {
        credential: true,
        ..resolved(name, meaning, default)
    }
}

/// A local Vault Agent or proxy; when set, requests go there instead of `VAULT_ADDR`.
pub const VAULT_AGENT_ADDR: Variable = resolved(
    "VAULT_AGENT_ADDR",
    "a local Vault Agent or proxy: when set, requests go there instead of VAULT_ADDR",
    "unset",
);
/// The server's URL.
pub const VAULT_ADDR: Variable = resolved(
    "VAULT_ADDR",
    "the server's URL (http or https), e.g. https://vault.example.com:8200",
    "vault_addr",
);
/// The server's URL, when `VAULT_ADDR` is unset (the workflow library's spelling).
pub const VAULT_ADDR_LOWERCASE: Variable = resolved(
    "vault_addr",
    "the server's URL, when VAULT_ADDR is unset",
    "none: an error naming both",
);
/// The namespace (Vault Enterprise, OpenBao).
pub const VAULT_NAMESPACE: Variable = resolved(
    "VAULT_NAMESPACE",
    "the namespace (Vault Enterprise, OpenBao)",
    "the root namespace",
);
/// A PEM file of CA certificates to trust.
pub const VAULT_CACERT: Variable = resolved(
    "VAULT_CACERT",
    "a PEM file of CA certificates: the only roots trusted (the system's are not, as for Vault's client)",
    "the system's roots",
);
/// A directory of PEM CA certificates to trust.
pub const VAULT_CAPATH: Variable = resolved(
    "VAULT_CAPATH",
    "a directory of PEM CA certificates: the only roots trusted (with VAULT_CACERT's)",
    "none",
);
/// A PEM client certificate (with `VAULT_CLIENT_KEY`).
pub const VAULT_CLIENT_CERT: Variable = resolved(
    "VAULT_CLIENT_CERT",
    "a PEM client certificate (with VAULT_CLIENT_KEY)",
    "none",
);
/// The client certificate's PEM private key (with `VAULT_CLIENT_CERT`).
pub const VAULT_CLIENT_KEY: Variable = credential(
    "VAULT_CLIENT_KEY",
    "the client certificate's PEM private key (with VAULT_CLIENT_CERT)",
    "none",
);
/// `true` skips TLS verification.
pub const VAULT_SKIP_VERIFY: Variable = resolved(
    "VAULT_SKIP_VERIFY",
    "true skips TLS verification (never in production)",
    "false",
);
/// The name the server's certificate is verified against.
pub const VAULT_TLS_SERVER_NAME: Variable = resolved(
    "VAULT_TLS_SERVER_NAME",
    "the name the server's certificate is verified against (and sent as SNI)",
    "the address's host",
);
/// The timeout of each request.
pub const VAULT_CLIENT_TIMEOUT: Variable = resolved(
    "VAULT_CLIENT_TIMEOUT",
    "the timeout of each request: 30, 30s, 2m, 500ms (at most 24h)",
    "60s",
);
/// Retries after a connection error, 412, 429 or 5xx.
pub const VAULT_MAX_RETRIES: Variable = resolved(
    "VAULT_MAX_RETRIES",
    "retries after a connection error, 412, 429 or 5xx (0: none, at most 100)",
    "2",
);
/// The credentials secret: a JSON mapping of the keys below.
pub const VAULT_CREDENTIALS: Variable = credential(
    "VAULT_CREDENTIALS",
    "the credentials: a JSON mapping of the keys below; when set, it wins as a whole over the variables below, the config file and ~/.vault-token",
    "the variables below",
);
/// The credentials secret as the local context (the workflow library's layout) spells it.
pub const PREFECT_VAULT_CREDENTIALS: Variable = credential(
    "PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS",
    "compatibility: VAULT_CREDENTIALS as the workflow library's local context spells it",
    "unset",
);
/// A token.
pub const VAULT_TOKEN: Variable = credential(
    "VAULT_TOKEN",
    "a token, when there is no VAULT_CREDENTIALS variable; beats the config file's and ~/.vault-token",
    "~/.vault-token, when no method is configured elsewhere",
);
/// AppRole's role id.
pub const VAULT_ROLE_ID: Variable = credential(
    "VAULT_ROLE_ID",
    "AppRole's role id (with VAULT_SECRET_ID), when there is no VAULT_CREDENTIALS",
    "none",
);
/// AppRole's secret id.
pub const VAULT_SECRET_ID: Variable = credential(
    "VAULT_SECRET_ID",
    "AppRole's secret id (with VAULT_ROLE_ID), when there is no VAULT_CREDENTIALS",
    "none",
);
/// `true`: `VAULT_SECRET_ID` is a response-wrapping token to unwrap.
pub const VAULT_SECRET_ID_WRAPPED: Variable = resolved(
    "VAULT_SECRET_ID_WRAPPED",
    "true: VAULT_SECRET_ID is a response-wrapping token of AppRole's secret id, unwrapped once at first login (its creation path checked first); also a key of VAULT_CREDENTIALS",
    "false",
);
/// AppRole's auth mount.
pub const VAULT_APPROLE_PATH: Variable = resolved(
    "VAULT_APPROLE_PATH",
    "AppRole's auth mount, when there is no VAULT_CREDENTIALS",
    "approle",
);
/// The Kubernetes auth role.
pub const VAULT_KUBE_AUTH_ROLE: Variable = resolved(
    "VAULT_KUBE_AUTH_ROLE",
    "the Kubernetes auth role, when there is no VAULT_CREDENTIALS",
    "none",
);
/// The Kubernetes auth mount.
pub const VAULT_KUBE_AUTH_PATH: Variable = resolved(
    "VAULT_KUBE_AUTH_PATH",
    "the Kubernetes auth mount, when there is no VAULT_CREDENTIALS",
    "kubernetes",
);
/// The Kubernetes service-account token file.
pub const VAULT_KUBE_TOKEN_FILE: Variable = credential(
    "VAULT_KUBE_TOKEN_FILE",
    "the Kubernetes service-account token file, when there is no VAULT_CREDENTIALS",
    DEFAULT_KUBE_TOKEN_FILE,
);
/// The JWT auth role.
pub const VAULT_JWT_ROLE: Variable = resolved(
    "VAULT_JWT_ROLE",
    "the JWT auth role (CI: GitHub Actions, GitLab), when there is no VAULT_CREDENTIALS",
    "none",
);
/// The JWT auth mount.
pub const VAULT_JWT_PATH: Variable = resolved(
    "VAULT_JWT_PATH",
    "the JWT auth mount, when there is no VAULT_CREDENTIALS",
    "jwt",
);
/// The JWT itself.
pub const VAULT_JWT: Variable = credential(
    "VAULT_JWT",
    "the JWT to log in with (GitLab: set it from the job's id_tokens variable), when there is no VAULT_CREDENTIALS",
    "VAULT_JWT_FILE",
);
/// A file holding the JWT.
pub const VAULT_JWT_FILE: Variable = credential(
    "VAULT_JWT_FILE",
    "a file holding the JWT, when there is no VAULT_CREDENTIALS",
    "in GitHub Actions, a fresh token from its endpoint",
);
/// The audience asked of GitHub Actions' token endpoint.
pub const VAULT_JWT_AUDIENCE: Variable = resolved(
    "VAULT_JWT_AUDIENCE",
    "the aud claim asked of GitHub Actions' token endpoint, when there is no VAULT_CREDENTIALS",
    "GitHub's: https://github.com/<owner>",
);
/// GitHub Actions' OIDC token endpoint (set by GitHub with `id-token: write`).
pub const ACTIONS_ID_TOKEN_REQUEST_URL: Variable = resolved(
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "GitHub Actions' OIDC token endpoint (GitHub sets it with permissions: id-token: write)",
    "unset: no token fetched",
);
/// The bearer token for GitHub Actions' OIDC token endpoint.
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: Variable = credential(
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "the bearer token for that endpoint (GitHub sets it)",
    "unset: no token fetched",
);
/// The TLS certificate auth role (turns certificate login on).
pub const VAULT_CERT_ROLE: Variable = resolved(
    "VAULT_CERT_ROLE",
    "the TLS certificate auth role; it or VAULT_CERT_AUTH_PATH turns certificate login on, with VAULT_CLIENT_CERT/KEY",
    "none: no certificate login",
);
/// The TLS certificate auth mount (turns certificate login on).
pub const VAULT_CERT_AUTH_PATH: Variable = resolved(
    "VAULT_CERT_AUTH_PATH",
    "the TLS certificate auth mount; setting it turns certificate login on",
    "cert",
);
/// The home directory.
pub const HOME: Variable = resolved(
    "HOME",
    "finds ~/.prefect/config.toml (its VAULT_CREDENTIALS, when no variable gives credentials) and ~/.vault-token (when nothing else does)",
    "none: neither file is read",
);

/// Every variable the library reads, in the order `--help` and the docs list them.
pub const ALL: &[Variable] = &[
    VAULT_ADDR,
    VAULT_ADDR_LOWERCASE,
    VAULT_AGENT_ADDR,
    VAULT_NAMESPACE,
    VAULT_CACERT,
    VAULT_CAPATH,
    VAULT_CLIENT_CERT,
    VAULT_CLIENT_KEY,
    VAULT_SKIP_VERIFY,
    VAULT_TLS_SERVER_NAME,
    VAULT_CLIENT_TIMEOUT,
    VAULT_MAX_RETRIES,
    VAULT_CREDENTIALS,
    PREFECT_VAULT_CREDENTIALS,
    VAULT_TOKEN,
    VAULT_ROLE_ID,
    VAULT_SECRET_ID,
    VAULT_SECRET_ID_WRAPPED,
    VAULT_APPROLE_PATH,
    VAULT_KUBE_AUTH_ROLE,
    VAULT_KUBE_AUTH_PATH,
    VAULT_KUBE_TOKEN_FILE,
    VAULT_JWT_ROLE,
    VAULT_JWT_PATH,
    VAULT_JWT,
    VAULT_JWT_FILE,
    VAULT_JWT_AUDIENCE,
    ACTIONS_ID_TOKEN_REQUEST_URL,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN,
    VAULT_CERT_ROLE,
    VAULT_CERT_AUTH_PATH,
    HOME,
];

/// The variables resolving a client's settings and credentials reads (with
/// the default credentials secret name).
pub fn resolution() -> impl Iterator<Item = &'static Variable> + Clone {
    ALL.iter().filter(|v| v.resolution)
}

/// The names of every variable holding a credential (or a file of one):
/// those declared [`credential`](Variable::credential), and, for a
/// credentials secret not named `VAULT_CREDENTIALS`, that name and its
/// compatibility spelling. `vault-secret exec` removes them from the
/// environment of the command it runs.
pub fn credentials(secret: &str) -> Vec<String> {
    let mut names: Vec<String> = ALL
        .iter()
        .filter(|v| v.credential)
        .map(|v| v.name.to_owned())
        .collect();
    if secret != DEFAULT_CREDENTIALS_SECRET {
        names.push(secret.to_owned());
        names.push(format!("{}{secret}", secret_core::DEFAULT_ENV_PREFIX));
    }
    names
}

/// The declaration of `name`, if the library reads it.
pub fn find(name: &str) -> Option<&'static Variable> {
    ALL.iter().find(|v| v.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use secret_core::Env;

    use super::*;
    use crate::client::VaultClient;

    #[test]
    fn credentials_cover_every_method_and_a_renamed_secret() {
        let names = credentials("VAULT_CREDENTIALS");
        for name in [
            "VAULT_TOKEN",
            "VAULT_CREDENTIALS",
            "PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS",
            "VAULT_ROLE_ID",
            "VAULT_SECRET_ID",
            "VAULT_KUBE_TOKEN_FILE",
            "VAULT_JWT",
            "VAULT_JWT_FILE",
            "VAULT_CLIENT_KEY",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        for not in ["VAULT_ADDR", "VAULT_APPROLE_PATH", "HOME", "VAULT_CACERT"] {
            assert!(!names.iter().any(|n| n == not), "{not} in {names:?}");
        }
        let renamed = credentials("APP_VAULT");
        assert!(renamed.iter().any(|n| n == "APP_VAULT"));
        assert!(
            renamed
                .iter()
                .any(|n| n == "PREFECT__CONTEXT__SECRETS__APP_VAULT")
        );
        assert_eq!(renamed.len(), names.len() + 2);
    }

    #[test]
    fn names_are_declared_once() {
        let names: BTreeSet<&str> = ALL.iter().map(|v| v.name).collect();
        assert_eq!(names.len(), ALL.len());
    }

    /// Resolves settings and credentials through a recording `Env` holding
    /// `vars` and a scratch `HOME`, and returns every name asked.
    async fn names_asked(vars: &[(&str, &str)]) -> Vec<String> {
        let home = tempfile::tempdir().unwrap();
        let mut all: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all.push(("HOME".into(), home.path().display().to_string()));
        let env = Env::from_map(all).recording();
        // Resolution only: logging in waits for the first read.
        let _ = VaultClient::builder().env(env.clone()).build().await;
        env.names_asked()
    }

    #[tokio::test]
    async fn resolution_reads_only_declared_variables_and_all_it_marks() {
        let mut union = BTreeSet::new();
        for vars in [
            &[("VAULT_ADDR", "http://127.0.0.1:1")][..],
            &[
                ("VAULT_AGENT_ADDR", "http://127.0.0.1:1"),
                ("VAULT_TOKEN", "t"),
            ],
            &[("vault_addr", "http://127.0.0.1:1"), ("VAULT_ROLE_ID", "r")],
            &[
                ("VAULT_ADDR", "https://127.0.0.1:1"),
                ("VAULT_CREDENTIALS", r#"{"VAULT_TOKEN":"t"}"#),
            ],
        ] {
            let asked = names_asked(vars).await;
            assert!(asked.len() > 10, "{vars:?}: only {asked:?}");
            for name in asked {
                let declared = find(&name).unwrap_or_else(|| panic!("`{name}` is not declared"));
                assert!(declared.resolution, "`{name}` is read but not marked");
                union.insert(name);
            }
        }
        for v in resolution() {
            assert!(
                union.contains(v.name),
                "`{}` is marked but never read",
                v.name
            );
        }
    }

    /// `text` for a Markdown table cell: variable names, URLs and paths in
    /// code spans (a bare URL is a rustdoc warning), and elsewhere `|` and
    /// `<...>` escaped, which would end the cell or read as an HTML tag.
    fn cell(text: &str) -> String {
        let code = |word: &str| {
            find(word).is_some()
                || word.contains("://")
                || word.starts_with('/')
                || word.starts_with("~/")
        };
        let words: Vec<String> = text
            .split(' ')
            .map(|word| {
                let core = word
                    .trim_start_matches('(')
                    .trim_end_matches([',', ';', ':', ')']);
                if core.is_empty() || !code(core) {
                    return word
                        .replace('|', "\\|")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;");
                }
                let at = word.find(core).unwrap_or(0);
                let (before, rest) = word.split_at(at);
                format!("{before}`{core}`{}", &rest[core.len()..])
            })
            .collect();
        words.join(" ")
    }

    /// The default: a single word that is not prose is a value, in a code span.
    fn default_cell(text: &str) -> String {
        if !text.contains(' ') && !matches!(text, "none" | "unset") {
            format!("`{text}`")
        } else {
            cell(text)
        }
    }

    /// The module docs' table, rendered from [`ALL`].
    fn table() -> String {
        let mut out = String::from("| variable | meaning | when unset |\n|---|---|---|\n");
        for v in ALL {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                v.name,
                cell(v.meaning),
                default_cell(v.default)
            ));
        }
        out
    }

    #[test]
    fn the_docs_table_is_generated_from_all() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/variables.md");
        let expected = table();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &expected).expect("write src/variables.md");
        }
        let current = std::fs::read_to_string(path).expect("read src/variables.md");
        assert!(
            current == expected,
            "src/variables.md does not match variables::ALL; regenerate it with \
             `UPDATE_DOCS=1 cargo test -p vault-secret --lib the_docs_table`"
        );
    }
}
