//! Building the HTTP client a [`VaultConfig`] describes: TLS roots, client
//! certificate, server name, timeouts and no redirects.
//!
//! `VAULT_CACERT` / `VAULT_CAPATH`, when given, are the *only* roots
//! trusted, as Vault's own client does: the system's store (and a CA
//! added to it, a corporate interception CA for one) is then not consulted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::VaultConfig;
use crate::error::Error;
use crate::error::{ConfigKind, chain};
use crate::input;
use crate::variables as var;

#[cfg(not(any(feature = "rustls", feature = "rustls-ring", feature = "native-tls")))]
compile_error!(
    "vault-secret needs a TLS feature: `rustls` (the default), `rustls-ring` or `native-tls`"
);

/// `builder` on the TLS stack the features pick: rustls (aws-lc-rs, else
/// ring) when a rustls feature is on, else native-tls. Every HTTP client of
/// the crate is built through here, so they all use the same one.
pub(crate) fn backend(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    #[cfg(all(feature = "rustls-ring", not(feature = "rustls")))]
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only when another thread installed one meanwhile: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    #[cfg(any(feature = "rustls", feature = "rustls-ring"))]
    let builder = builder.tls_backend_rustls();
    #[cfg(not(any(feature = "rustls", feature = "rustls-ring")))]
    let builder = builder.tls_backend_native();
    builder
}

/// The HTTP client: the configured TLS, the timeout, and no redirects,
/// because reqwest would resend `X-Vault-Token` to whatever host a
/// redirect names.
pub(crate) fn http_client(config: &VaultConfig) -> Result<reqwest::Client, Error> {
    config.check()?;
    let mut builder = backend(reqwest::Client::builder())
        .redirect(reqwest::redirect::Policy::none())
        // The per-request timeout is the transport's (capped by the call's deadline).
        .connect_timeout(config.timeout().min(Duration::from_secs(10)));
    if config.address().scheme() == "http" {
        // Plain HTTP needs no roots; loading them can fail on minimal systems (reqwest#2988).
        builder = builder.tls_certs_only(Vec::new());
    } else {
        builder = tls(builder, config)?;
    }
    builder.build().map_err(|e| {
        let (name, what) = match config.client_cert() {
            Some(_) => (
                var::VAULT_CLIENT_CERT.name,
                "the client certificate and key cannot be used together",
            ),
            None => ("TLS", "cannot build the HTTP client"),
        };
        Error::config(name, format!("{what}: {}", chain(&e))).caused_by(e)
    })
}

/// The TLS settings of an `https` address: server name, verification, roots
/// and client identity.
fn tls(
    mut builder: reqwest::ClientBuilder,
    config: &VaultConfig,
) -> Result<reqwest::ClientBuilder, Error> {
    if let (Some(name), Some(host)) = (config.tls_server_name(), config.address().host_str()) {
        // Requests name the server by `name` (so TLS verifies and sends it
        // as SNI); this resolver connects them to the address's own host.
        builder = builder.dns_resolver(ServerName {
            name: name.to_owned(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        });
    }
    if config.skip_verify() {
        warn_once(
            &SKIP_VERIFY_WARNED,
            "TLS verification is off (VAULT_SKIP_VERIFY): whoever answers at the address \
             gets the token; never do this in production",
        );
    }
    builder = builder.tls_danger_accept_invalid_certs(config.skip_verify());
    let mut roots = Vec::new();
    for (variable, file) in ca_files(config)? {
        let pem = input::read_file(variable, &file, input::MAX_PEM_FILE_LEN)?;
        let shown = input::shown(&file.display().to_string());
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::config_kind(
                variable,
                ConfigKind::NotPem,
                format!("`{shown}` is not a PEM certificate bundle: {}", chain(&e)),
            )
            .caused_by(e)
        })?;
        if certs.is_empty() {
            return Err(not_pem(
                variable,
                &shown,
                "no PEM certificate (-----BEGIN CERTIFICATE-----)",
            ));
        }
        roots.extend(certs);
    }
    if !roots.is_empty() {
        // The given CAs replace the system's roots rather than join them.
        builder = builder.tls_certs_only(roots);
    }
    if let Some((cert, key)) = config.client_cert() {
        builder = builder.identity(client_identity(cert, key)?);
    }
    Ok(builder)
}

static SKIP_VERIFY_WARNED: std::sync::Once = std::sync::Once::new();
static PLAIN_HTTP_WARNED: std::sync::Once = std::sync::Once::new();

/// Logs `message` at WARN the first time `once` is passed in this process.
fn warn_once(once: &std::sync::Once, message: &str) {
    once.call_once(|| tracing::warn!("{message}"));
}

/// Warns once per process when credentials or a token are about to go over
/// plain `http://` to a host that is not this machine's loopback.
pub(crate) fn warn_if_plain_http(config: &VaultConfig) {
    let address = config.address();
    if address.scheme() != "http" || is_loopback(address) {
        return;
    }
    let host = address.host_str().unwrap_or_default();
    warn_once(
        &PLAIN_HTTP_WARNED,
        &format!(
            "sending Vault credentials over plain http to `{}`, not a loopback address: \
             anyone on the path can read them; use an https address",
            input::shown(host)
        ),
    );
}

/// `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(address: &url::Url) -> bool {
    match address.host() {
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn not_pem(variable: &str, shown: &str, what: &str) -> Error {
    Error::config_kind(
        variable,
        ConfigKind::NotPem,
        format!("`{shown}` holds {what}"),
    )
}

/// The CA files to trust: `VAULT_CACERT`, then every file in `VAULT_CAPATH`.
fn ca_files(config: &VaultConfig) -> Result<Vec<(&'static str, PathBuf)>, Error> {
    let mut files = Vec::new();
    if let Some(file) = config.ca_cert() {
        files.push((var::VAULT_CACERT.name, file.to_owned()));
    }
    if let Some(dir) = config.ca_path() {
        let variable = var::VAULT_CAPATH.name;
        let shown = input::shown(&dir.display().to_string());
        let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotADirectory => Error::config_kind(
                variable,
                ConfigKind::NotADirectory,
                format!("`{shown}` is not a directory (a single CA file goes in VAULT_CACERT)"),
            )
            .caused_by(e),
            _ => input::io_error(variable, &format!("the directory `{shown}`"), e),
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        if found.is_empty() {
            return Err(Error::config_kind(
                variable,
                ConfigKind::Empty,
                format!("the directory `{shown}` holds no certificate files"),
            ));
        }
        found.sort();
        files.extend(found.into_iter().map(|p| (variable, p)));
    }
    Ok(files)
}

/// The client certificate and key, each checked on its own first so that a
/// message names the file at fault rather than saying "builder error".
fn client_identity(cert: &Path, key: &Path) -> Result<reqwest::Identity, Error> {
    let (cert_var, key_var) = (var::VAULT_CLIENT_CERT.name, var::VAULT_CLIENT_KEY.name);
    let cert_pem = input::read_file(cert_var, cert, input::MAX_PEM_FILE_LEN)?;
    let key_pem = input::read_file(key_var, key, input::MAX_PEM_FILE_LEN)?;
    let shown_cert = input::shown(&cert.display().to_string());
    let shown_key = input::shown(&key.display().to_string());
    match reqwest::Certificate::from_pem_bundle(&cert_pem) {
        Ok(certs) if !certs.is_empty() => {}
        _ => {
            return Err(not_pem(
                cert_var,
                &shown_cert,
                "no PEM certificate (-----BEGIN CERTIFICATE-----)",
            ));
        }
    }
    let has_key = key_pem
        .windows(b"PRIVATE KEY-----".len())
        .any(|w| w == b"PRIVATE KEY-----");
    if !has_key {
        return Err(not_pem(
            key_var,
            &shown_key,
            "no PEM private key (-----BEGIN ... PRIVATE KEY-----)",
        ));
    }
    let mut pem = zeroize::Zeroizing::new(Vec::with_capacity(cert_pem.len() + key_pem.len() + 1));
    pem.extend_from_slice(&cert_pem);
    pem.push(b'\n');
    pem.extend_from_slice(&key_pem);
    #[cfg(any(feature = "rustls", feature = "rustls-ring"))]
    let identity = reqwest::Identity::from_pem(&pem);
    // native-tls reads the key as PKCS #8 only.
    #[cfg(not(any(feature = "rustls", feature = "rustls-ring")))]
    let identity = reqwest::Identity::from_pkcs8_pem(&cert_pem, &key_pem);
    identity.map_err(|e| {
        Error::config_kind(
            key_var,
            ConfigKind::NotPem,
            format!(
                "`{shown_key}` and the certificate `{shown_cert}` are not a usable pair: {}",
                chain(&e)
            ),
        )
        .caused_by(e)
    })
}

/// Resolves the TLS server name to the address's host; any other name as usual.
#[derive(Debug)]
struct ServerName {
    name: String,
    host: String,
}

impl reqwest::dns::Resolve for ServerName {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let target = if name.as_str().eq_ignore_ascii_case(&self.name) {
            self.host.clone()
        } else {
            name.as_str().to_owned()
        };
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((target.as_str(), 0))
                .await?
                .collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_told_from_others() {
        for (address, loopback) in [
            ("http://127.0.0.1:8200", true),
            ("http://127.3.2.1:8200", true),
            ("http://[::1]:8200", true),
            ("http://localhost:8200", true),
            ("http://LocalHost:8200", true),
            ("http://vault.localhost:8200", true),
            ("http://10.0.0.5:8200", false),
            ("http://vault.example.com:8200", false),
            ("http://localhost.example.com:8200", false),
            ("http://[::ffff:10.0.0.1]:8200", false),
        ] {
            let url = url::Url::parse(address).unwrap();
            assert_eq!(is_loopback(&url), loopback, "{address}");
        }
    }
}
