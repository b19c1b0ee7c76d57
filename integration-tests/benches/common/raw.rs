//! The baseline the benchmarks compare against: a bare GET of the bench
//! secret with the library's client settings (rustls, no redirects, the same
//! timeouts) and the headers the library sends (`X-Vault-Token`, and
//! `X-Vault-Request: true` as Vault's own clients send and Vault Agent can
//! require), so a ratio measures the library's own work.

use std::future::Future;
use std::time::Duration;

/// A raw GET of one KV v2 secret holding `{"user": "u", ...}`.
pub(crate) struct RawGet {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl RawGet {
    /// GETs `url` (`<addr>/v1/<mount>/data/<path>`) with `token`.
    pub(crate) fn new(url: String, token: &str) -> RawGet {
        let http = reqwest::Client::builder()
            .tls_backend_rustls()
            .tls_certs_only(Vec::new())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        RawGet {
            http,
            url,
            token: token.to_owned(),
        }
    }

    /// One GET, its JSON parsed and checked.
    pub(crate) fn once(&self) -> impl Future<Output = ()> + use<> {
        let request = self
            .http
            .get(&self.url)
            .header("X-Vault-Token", &self.token)
            .header("X-Vault-Request", "true");
        async move {
            let body: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            assert_eq!(body["data"]["data"]["user"], "u");
        }
    }
}

/// A raw POST of one KV v2 write (`{"data": ...}`), with the same client
/// settings and headers as [`RawGet`]: the write benchmark's baseline.
#[allow(dead_code)] // Only the write benchmark uses it.
pub(crate) struct RawPost {
    http: reqwest::Client,
    url: String,
    token: String,
    body: Vec<u8>,
}

#[allow(dead_code)]
impl RawPost {
    /// POSTs `body` to `url` (`<addr>/v1/<mount>/data/<path>`) with `token`.
    pub(crate) fn new(url: String, token: &str, body: &serde_json::Value) -> RawPost {
        RawPost {
            http: RawGet::new(String::new(), token).http,
            url,
            token: token.to_owned(),
            body: serde_json::to_vec(body).unwrap(),
        }
    }

    /// One POST; the answer's new version checked.
    pub(crate) fn once(&self) -> impl Future<Output = ()> + use<> {
        let request = self
            .http
            .post(&self.url)
            .header("X-Vault-Token", &self.token)
            .header("X-Vault-Request", "true")
            .body(self.body.clone());
        async move {
            let body: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            assert!(body["data"]["version"].as_u64().is_some(), "no version");
        }
    }
}
