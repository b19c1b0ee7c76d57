//! TLS certificate auth for tests: a throwaway CA and a client certificate
//! it signed (clientAuth), made with the `openssl` command, which is on the
//! machines this runs on; a crate for it would be one more to build for a
//! few files made once per test.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tempfile::TempDir;

use super::credentials::TestCredentials;

/// A test CA and a client certificate it signed, as PEM files in a scratch
/// directory (removed on drop).
#[derive(Debug)]
pub struct TestCertificates {
    dir: TempDir,
}

impl TestCertificates {
    /// A fresh CA (P-256, valid one day) and a client certificate for
    /// `common_name` (key usage clientAuth). Panics, naming the step and
    /// `openssl`'s message, when `openssl` is missing or fails.
    pub fn generate(common_name: &str) -> TestCertificates {
        let dir = tempfile::Builder::new()
            .prefix("dev-vault-cert-")
            .tempdir()
            .unwrap_or_else(|e| panic!("create a directory for test certificates: {e}"));
        let d = dir.path();
        std::fs::write(
            d.join("client.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )
        .unwrap_or_else(|e| panic!("write the certificate extensions: {e}"));
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            d,
            "make the test CA",
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca-key.pem",
                    "-out",
                    "ca.pem",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=dev-vault test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        let subject = format!("/CN={common_name}");
        openssl(
            d,
            "make the client key and request",
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "client-key.pem",
                    "-out",
                    "client.csr",
                    "-subj",
                    &subject,
                ],
            ]
            .concat(),
        );
        openssl(
            d,
            "sign the client certificate",
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                "client.pem",
                "-days",
                "1",
                "-extfile",
                "client.ext",
            ],
        );
        TestCertificates { dir }
    }

    /// The CA's certificate (what a cert role trusts).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The client certificate (`VAULT_CLIENT_CERT`).
    pub fn client_cert_path(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    /// The client certificate's private key (`VAULT_CLIENT_KEY`).
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client-key.pem")
    }

    /// The CA's certificate, PEM text.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.ca_path())
            .unwrap_or_else(|e| panic!("read the test CA certificate: {e}"))
    }
}

fn openssl(dir: &Path, step: &str, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("{step}: cannot run `openssl` ({e}); install OpenSSL's command")
        });
    assert!(
        output.status.success(),
        "{step}: `openssl` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A TLS certificate auth role on a TLS [`DevVault`](super::DevVault) and
/// the client certificate it accepts (from
/// [`DevVault::cert`](super::DevVault::cert)). Its
/// [`credentials_json`](TestCredentials::credentials_json) asks for certificate
/// login; the certificate itself goes in
/// [`client_cert_vars`](Self::client_cert_vars).
#[derive(Debug)]
pub struct CertCredentials {
    role: String,
    mount: String,
    certificates: TestCertificates,
}

impl CertCredentials {
    pub(crate) fn new(role: String, mount: String, certificates: TestCertificates) -> Self {
        CertCredentials {
            role,
            mount,
            certificates,
        }
    }

    /// The cert role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The cert auth mount, without the `auth/` prefix.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The CA and client certificate files.
    pub fn certificates(&self) -> &TestCertificates {
        &self.certificates
    }

    /// `VAULT_CLIENT_CERT` and `VAULT_CLIENT_KEY` naming the client
    /// certificate and key.
    pub fn client_cert_vars(&self) -> Vec<(String, String)> {
        vec![
            (
                "VAULT_CLIENT_CERT".to_owned(),
                self.certificates.client_cert_path().display().to_string(),
            ),
            (
                "VAULT_CLIENT_KEY".to_owned(),
                self.certificates.client_key_path().display().to_string(),
            ),
        ]
    }
}

impl TestCredentials for CertCredentials {
    fn credentials_json(&self) -> Value {
        json!({
            "VAULT_CERT_ROLE": self.role,
            "VAULT_CERT_AUTH_PATH": self.mount,
        })
    }
}
