//! `vault-secret doctor`: checks a set-up in order, one line per check.
//!
//! `[ ok ]` passed, `[warn]` passed with a caveat, `[FAIL]` failed (with a
//! hint), `[skip]` not run because a check it needs failed. Nothing printed
//! is a token, a credential or a secret value. Exit 0 only when no check failed.

use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;
use secret_core::{Env, ValueKind};
use vault_secret::{Error, Health, KvVersion, MountReport, TokenInfo, VaultClient, VaultConfig};

use crate::exit::{self, Exit, Failure};
use crate::{output, vars};

/// A token with less time left than this, and not renewable, gets a warning.
const SHORT_TTL: Duration = Duration::from_secs(10 * 60);

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// A secret (`<mount>/<path>[?version=N][#field]`) to check too: its
    /// mount and KV version, the token's capabilities on it, and the read.
    #[arg(value_name = "PATH")]
    path: Option<String>,
}

/// One check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn tag(self) -> &'static str {
        match self {
            Status::Ok => "[ ok ]",
            Status::Warn => "[warn]",
            Status::Fail => "[FAIL]",
            Status::Skip => "[skip]",
        }
    }
}

/// The lines printed so far, counted for the verdict.
#[derive(Debug, Default)]
struct Report {
    checks: usize,
    warnings: usize,
    failed: Vec<&'static str>,
}

impl Report {
    fn line(
        &mut self,
        status: Status,
        check: &'static str,
        text: &str,
        hint: Option<String>,
    ) -> Result<(), Failure> {
        self.checks += 1;
        match status {
            Status::Warn => self.warnings += 1,
            Status::Fail => self.failed.push(check),
            Status::Ok | Status::Skip => {}
        }
        // Server text (a version, an error) reaches the terminal escaped.
        let mut line = format!("{} {check}: {}", status.tag(), output::escaped(text));
        if let Some(hint) = hint {
            let _ = write!(line, "\n       hint: {}", output::escaped(&hint));
        }
        output::print(&line, true)
    }

    fn ok(&mut self, check: &'static str, text: &str) -> Result<(), Failure> {
        self.line(Status::Ok, check, text, None)
    }

    fn warn(
        &mut self,
        check: &'static str,
        text: &str,
        hint: Option<String>,
    ) -> Result<(), Failure> {
        self.line(Status::Warn, check, text, hint)
    }

    fn fail(
        &mut self,
        check: &'static str,
        text: &str,
        hint: Option<String>,
    ) -> Result<(), Failure> {
        self.line(Status::Fail, check, text, hint)
    }

    fn fail_with(&mut self, check: &'static str, error: &Error) -> Result<(), Failure> {
        self.line(Status::Fail, check, &error.to_string(), exit::hint(error))
    }

    fn skip(&mut self, check: &'static str, because: &str) -> Result<(), Failure> {
        self.line(
            Status::Skip,
            check,
            &format!("not checked: {because}"),
            None,
        )
    }

    fn verdict(&self) -> Result<u8, Failure> {
        let warnings = match self.warnings {
            0 => String::new(),
            1 => " (1 warning)".to_owned(),
            n => format!(" ({n} warnings)"),
        };
        if self.failed.is_empty() {
            output::print(
                &format!("verdict: OK, all {} checks passed{warnings}", self.checks),
                true,
            )?;
            Ok(0)
        } else {
            output::print(
                &format!(
                    "verdict: FAILED, {} of {} checks failed ({}); see the hints above",
                    self.failed.len(),
                    self.checks,
                    self.failed.join(", ")
                ),
                true,
            )?;
            Ok(Exit::Other.code())
        }
    }
}

/// What the login check found.
enum Login {
    /// The token works and the server described it.
    Checked(TokenInfo),
    /// A token was had, but it may not look itself up.
    Unchecked,
}

/// Runs every check in order and prints the verdict.
pub(crate) async fn run(args: DoctorArgs) -> Result<u8, Failure> {
    let mut client = None;
    let verdict = checks(args, &mut client).await;
    // The token doctor logged in with does not outlive it.
    if let Some(client) = client
        && let Err(e) = client.shutdown().await
    {
        tracing::debug!(error = %e, "could not revoke the token");
    }
    verdict
}

/// Every check in order; the client they built, if any, is left in `held`.
async fn checks(args: DoctorArgs, held: &mut Option<VaultClient>) -> Result<u8, Failure> {
    let env = Env::process();
    let mut report = Report::default();
    let r = &mut report;

    let config = check_address(r, &env)?;
    let health = match &config {
        Some(config) => check_server(r, config).await?,
        None => {
            r.skip("server", "needs the address")?;
            None
        }
    };
    match (&config, &health) {
        (Some(config), Some(_)) => check_tls(r, config)?,
        _ => r.skip("TLS", "needs a server that answers")?,
    }
    let unsealed = match &health {
        Some(health) => check_seal(r, health)?,
        None => {
            r.skip("seal", "needs a server that answers")?;
            false
        }
    };
    let session = match &config {
        Some(_) => check_credentials(r, &env).await?,
        None => {
            r.skip("credentials", "needs the address")?;
            None
        }
    };
    held.clone_from(&session);
    let namespace = config.as_ref().and_then(|c| c.namespace());
    let login = match (&session, unsealed) {
        (Some(session), true) => check_login(r, session, namespace).await?,
        _ => {
            r.skip("login", "needs an unsealed server and credentials")?;
            None
        }
    };
    if let Some(ns) = namespace {
        check_namespace(r, ns, login.as_ref())?;
    }
    match &login {
        Some(Login::Checked(info)) => check_ttl(r, info)?,
        Some(Login::Unchecked) => r.skip("token lifetime", "the token may not look itself up")?,
        None => r.skip("token lifetime", "needs a working login")?,
    }
    if let Some(path) = &args.path {
        check_path(r, session.as_ref().filter(|_| login.is_some()), path).await?;
    }
    report.verdict()
}

async fn check_server(r: &mut Report, config: &VaultConfig) -> Result<Option<Health>, Failure> {
    // `sys/health` needs no token: asked before credentials are looked at.
    match config.health().await {
        Ok(health) => {
            let version = health
                .version
                .as_deref()
                .map(|v| format!(" (version {v})"))
                .unwrap_or_default();
            r.ok(
                "server",
                &format!("{} answered sys/health{version}", shown(config)),
            )?;
            Ok(Some(health))
        }
        Err(e) => {
            r.fail_with("server", &e)?;
            Ok(None)
        }
    }
}

fn check_address(r: &mut Report, env: &Env) -> Result<Option<VaultConfig>, Failure> {
    match VaultConfig::from_env(env) {
        Ok(config) => {
            let from = config.address_variable().unwrap_or("the configuration");
            r.ok("address", &format!("{} (from {from})", shown(&config)))?;
            Ok(Some(config))
        }
        Err(e) => {
            // Not the address itself: another setting (TLS files, timeout...).
            let check = match &e {
                Error::MissingAddress => "address",
                Error::Config { name, .. } if exit::is_address_variable(name) => "address",
                _ => "settings",
            };
            r.fail_with(check, &e)?;
            Ok(None)
        }
    }
}

fn check_tls(r: &mut Report, config: &VaultConfig) -> Result<(), Failure> {
    if config.address().scheme() == "http" {
        return r.warn(
            "TLS",
            "plain http: tokens and secrets cross the network unencrypted",
            Some("fine for a local dev server; use an https address anywhere else".into()),
        );
    }
    if config.skip_verify() {
        return r.warn(
            "TLS",
            "https, but the server's certificate is NOT verified (VAULT_SKIP_VERIFY)",
            Some("unset VAULT_SKIP_VERIFY and export VAULT_CACERT=/path/to/ca.pem".into()),
        );
    }
    // The given CAs are the only roots (the system's are not consulted).
    let shown = |p: &std::path::Path| p.display().to_string();
    let roots = match (config.ca_cert(), config.ca_path()) {
        (Some(file), Some(dir)) => format!(
            "only the CAs in VAULT_CACERT ({}) and VAULT_CAPATH ({})",
            shown(file),
            shown(dir)
        ),
        (Some(file), None) => format!("only the CA in VAULT_CACERT ({})", shown(file)),
        (None, Some(dir)) => format!("only the CAs in VAULT_CAPATH ({})", shown(dir)),
        (None, None) => "the system's roots".to_owned(),
    };
    r.ok(
        "TLS",
        &format!("https, certificate verified against {roots}"),
    )
}

fn check_seal(r: &mut Report, health: &Health) -> Result<bool, Failure> {
    if !health.initialized {
        r.fail(
            "seal",
            "the server is not initialized",
            Some("initialize it: vault operator init (or bao operator init)".into()),
        )?;
        return Ok(false);
    }
    if health.sealed {
        r.fail(
            "seal",
            "the server is sealed",
            Some("unseal it: vault operator unseal (or bao operator unseal)".into()),
        )?;
        return Ok(false);
    }
    if health.standby {
        r.warn(
            "seal",
            "unsealed; this node is a standby (it forwards requests to the active node)",
            None,
        )?;
    } else {
        r.ok("seal", "unsealed and active")?;
    }
    Ok(true)
}

async fn check_credentials(r: &mut Report, env: &Env) -> Result<Option<VaultClient>, Failure> {
    match VaultClient::builder().env(env.clone()).build().await {
        Ok(session) => {
            let methods = session.inspect().auth_methods().join(", ");
            let text = format!(
                "from {}; methods: {methods}",
                session.inspect().credentials_origin()
            );
            match session.inspect().ignored_credentials() {
                [] => r.ok("credentials", &text)?,
                ignored => r.warn(
                    "credentials",
                    &format!("{text}; also set but ignored: {}", ignored.join(", ")),
                    Some(
                        "the first source by precedence wins (see the `credentials` module of \
                         vault-secret's docs); remove the others to avoid surprises"
                            .into(),
                    ),
                )?,
            }
            check_jwt(r, &session).await?;
            Ok(Some(session))
        }
        Err(e) => {
            r.fail_with("credentials", &e)?;
            Ok(None)
        }
    }
}

/// The JWT method's token, by its claims (decoded, not verified): when it
/// expires and whom it is for, never the token.
async fn check_jwt(r: &mut Report, session: &VaultClient) -> Result<(), Failure> {
    if !session.inspect().auth_methods().contains(&"jwt") {
        return Ok(());
    }
    match session.inspect().jwt_claims().await {
        Ok(Some(claims)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let expiry = match claims.expires {
                Some(exp) if exp > now => format!(
                    "expires in {} (exp {exp})",
                    human(Duration::from_secs(exp - now))
                ),
                Some(exp) => format!("expired (exp {exp})"),
                None => "no expiry (no exp claim)".to_owned(),
            };
            let audience = match claims.audience.is_empty() {
                true => "no aud claim".to_owned(),
                false => format!("aud {}", claims.audience.join(", ")),
            };
            let detail = format!("{expiry}; {audience}");
            match claims.expires {
                Some(exp) if exp <= now => r.warn(
                    "jwt",
                    &detail,
                    Some("give the login a fresh token (CI tokens last minutes)".into()),
                ),
                _ => r.ok("jwt", &detail),
            }
        }
        Ok(None) => r.warn("jwt", "its payload is not base64url JSON claims", None),
        Err(e) => r.fail_with("jwt", &e),
    }
}

/// The namespace is checked by the login's token lookup, a call made in it
/// (`sys/health` is a root-namespace endpoint and says nothing about it).
fn check_namespace(r: &mut Report, ns: &str, login: Option<&Login>) -> Result<(), Failure> {
    match login {
        Some(Login::Checked(_)) => r.ok(
            "namespace",
            &format!(
                "`{ns}` (from VAULT_NAMESPACE): the token works in it (auth/token/lookup-self)"
            ),
        ),
        Some(Login::Unchecked) => r.warn(
            "namespace",
            &format!(
                "`{ns}` (from VAULT_NAMESPACE): not checked, the token may not look itself up"
            ),
            None,
        ),
        None => r.skip("namespace", "needs a working login"),
    }
}

/// The login check's hint, naming the namespace as a possible cause when one is set.
fn login_hint(error: &Error, namespace: Option<&str>) -> Option<String> {
    let hint = exit::hint(error);
    let Some(ns) = namespace else {
        return hint;
    };
    let also = format!(
        "VAULT_NAMESPACE is `{ns}`: check that this namespace exists and that the \
         credentials belong to it (or to a parent namespace)"
    );
    Some(match hint {
        Some(hint) => format!("{hint}; {also}"),
        None => also,
    })
}

async fn check_login(
    r: &mut Report,
    session: &VaultClient,
    namespace: Option<&str>,
) -> Result<Option<Login>, Failure> {
    let fail = |r: &mut Report, e: &Error| {
        r.line(
            Status::Fail,
            "login",
            &e.to_string(),
            login_hint(e, namespace),
        )
    };
    if session.inspect().uses_wrapped_secret_id() {
        r.warn(
            "login",
            "not tried: AppRole's secret id is response-wrapped (VAULT_SECRET_ID_WRAPPED), \
             and its wrapping token works once; logging in here would use it up",
            Some(
                "the service's own first login unwraps it; run doctor with a plain secret id"
                    .into(),
            ),
        )?;
        return Ok(None);
    }
    // A lone static token is only checked by its first use: look it up.
    match session.inspect().token_info().await {
        Ok(info) => {
            r.ok(
                "login",
                &format!(
                    "works with method `{}` (keys from {}); policies: {}",
                    info.method,
                    session.inspect().credentials_origin(),
                    info.policies.join(", ")
                ),
            )?;
            Ok(Some(Login::Checked(info)))
        }
        // A valid token whose policies leave out `auth/token/lookup-self`.
        Err(Error::Server { status: 403, .. }) => match session.inspect().login().await {
            Ok(method) => {
                r.warn(
                    "login",
                    &format!(
                        "method `{method}`; the token may not look itself up \
                         (auth/token/lookup-self), so it is not checked here"
                    ),
                    Some("the `default` policy allows that lookup".into()),
                )?;
                Ok(Some(Login::Unchecked))
            }
            Err(e) => {
                fail(r, &e)?;
                Ok(None)
            }
        },
        Err(e) => {
            fail(r, &e)?;
            Ok(None)
        }
    }
}

fn check_ttl(r: &mut Report, info: &TokenInfo) -> Result<(), Failure> {
    let renewable = if info.renewable {
        "renewable"
    } else {
        "not renewable"
    };
    match info.ttl {
        None if info.policies.iter().any(|p| p == "root") => {
            r.ok("token lifetime", "never expires (root token)")
        }
        None => r.ok("token lifetime", "never expires (no TTL)"),
        Some(ttl) if ttl < SHORT_TTL && !info.renewable => r.warn(
            "token lifetime",
            &format!("expires in {} and is not renewable", human(ttl)),
            Some(
                "give the token (or the role's token_ttl) a longer TTL; AppRole and \
                 Kubernetes logins are renewed by logging in again"
                    .into(),
            ),
        ),
        Some(ttl) => r.ok(
            "token lifetime",
            &format!("expires in {}, {renewable}", human(ttl)),
        ),
    }
}

async fn check_path(
    r: &mut Report,
    session: Option<&VaultClient>,
    path: &str,
) -> Result<(), Failure> {
    let Some(session) = session else {
        r.skip("mount", "needs a working login")?;
        r.skip("capabilities", "needs a working login")?;
        return r.skip("read", "needs a working login");
    };
    let mount = match session.inspect().mount_of(path).await {
        Ok(mount) => {
            if mount.from_server {
                r.ok(
                    "mount",
                    &format!(
                        "`{}` is in the mount `{}/`, {}",
                        secret_path(path),
                        mount.mount,
                        kv_name(mount.kv_version)
                    ),
                )?;
            } else {
                r.warn(
                    "mount",
                    &format!(
                        "preflight not permitted; mount guessed: `{}/` \
                         (its KV version is found by the read)",
                        mount.mount
                    ),
                    Some(format!(
                        "fine for a least-privilege token (Vault's CLI does the same); but if \
                         `{}` is misspelled, the read is refused as if forbidden",
                        mount.mount
                    )),
                )?;
            }
            mount
        }
        Err(e) => {
            r.fail_with("mount", &e)?;
            r.skip("capabilities", "needs the mount")?;
            return r.skip("read", "needs the mount");
        }
    };
    let readable = check_capabilities(r, session, &mount).await?;
    if readable == Some(false) {
        return r.skip("read", "the token may not read the path");
    }
    match session.read(path).await {
        Ok(value) => r.ok("read", &format!("`{path}` read: {}", read_summary(&value))),
        Err(e) => r.fail_with("read", &e),
    }
}

/// What a read gave, without a value: a mapping's key names, or that a field is there.
fn read_summary(value: &secret_core::SecretValue) -> String {
    match value.kind() {
        ValueKind::Json => match value.to_mapping() {
            Ok(mut map) => {
                let mut keys: Vec<String> = map.keys().cloned().collect();
                vars::wipe_map(&mut map);
                keys.sort();
                format!("{} key(s): {}", keys.len(), keys.join(", "))
            }
            Err(_) => "a JSON value".to_owned(),
        },
        ValueKind::Text => "the field is there".to_owned(),
    }
}

/// `Some(true)` when the token may read the secret, `Some(false)` when it
/// may not, `None` when the server would not say.
async fn check_capabilities(
    r: &mut Report,
    session: &VaultClient,
    mount: &MountReport,
) -> Result<Option<bool>, Failure> {
    // With the KV version unknown, either API path would do.
    let paths = &mount.policy_paths;
    let mut found = Vec::new();
    for path in paths {
        match session.inspect().capabilities(path).await {
            Ok(caps) => found.push((path, caps)),
            Err(e) => {
                r.warn(
                    "capabilities",
                    &format!("cannot ask the server: {e}"),
                    Some(format!(
                        "a read needs {}",
                        exit::policy_hint(&mount.policy_paths)
                    )),
                )?;
                return Ok(None);
            }
        }
    }
    let readable = |caps: &[String]| caps.iter().any(|c| c == "read" || c == "root");
    if let Some((path, caps)) = found.iter().find(|(_, caps)| readable(caps)) {
        r.ok(
            "capabilities",
            &format!("the token may read `{path}` ({})", caps.join(", ")),
        )?;
        return Ok(Some(true));
    }
    let shown: Vec<String> = found
        .iter()
        .map(|(path, caps)| format!("`{path}` ({})", caps.join(", ")))
        .collect();
    let stanzas: Vec<String> = paths.iter().map(|p| exit::policy_stanza(p)).collect();
    r.fail(
        "capabilities",
        &format!("the token may not read {}", shown.join(" or ")),
        Some(format!(
            "add to one of the token's policies: {}",
            stanzas.join("  or  ")
        )),
    )?;
    Ok(Some(false))
}

/// The secret's path without its `#field` (the mount line is about the
/// secret, not one of its fields).
fn secret_path(path: &str) -> &str {
    path.split_once('#').map_or(path, |(secret, _)| secret)
}

/// The address as users write it (no trailing slash).
fn shown(config: &VaultConfig) -> &str {
    config.address().as_str().trim_end_matches('/')
}

fn kv_name(version: Option<KvVersion>) -> &'static str {
    match version {
        Some(KvVersion::V1) => "KV v1",
        Some(KvVersion::V2) => "KV v2",
        _ => "KV version unknown",
    }
}

/// `3h 12m`, `9m 58s`, `42s`: the two largest units.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m {seconds}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_line_shows_the_secret_without_its_field() {
        assert_eq!(secret_path("secret/app/db#password"), "secret/app/db");
        assert_eq!(
            secret_path("secret/app/db?version=2#pw"),
            "secret/app/db?version=2"
        );
        assert_eq!(secret_path("secret/app/db"), "secret/app/db");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(598)), "9m 58s");
        assert_eq!(human(Duration::from_secs(3 * 3600 + 720)), "3h 12m");
        assert_eq!(human(Duration::from_secs(32 * 86_400)), "32d 0h");
    }
}
