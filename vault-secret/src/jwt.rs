//! JSON Web Tokens for the `jwt` login: the shape checked before sending one,
//! the claims `doctor` shows (decoded, never verified: the server verifies),
//! and a fresh one fetched from GitHub Actions' OIDC token endpoint.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::ConfigKind;
use crate::error::Error;
use crate::input::{self, Invalid};
use crate::variables as var;

/// How long the Actions endpoint may take to answer.
const ACTIONS_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read from the Actions endpoint (a token is 1-2 KiB).
const MAX_ACTIONS_ANSWER: usize = 64 * 1024;

/// A JWT from a variable, key or file: trimmed, no control character, and
/// three dot-separated base64url parts (header, claims, signature), so a
/// value that cannot be a JWT (a path, a Vault token) is refused here
/// rather than sent.
pub(crate) fn checked(raw: &str) -> Result<SecretString, Invalid> {
    let value = input::credential("a JWT", raw)?;
    let parts: Vec<&str> = value.expose_secret().split('.').collect();
    let base64url = |p: &&str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if parts.len() != 3 || !parts.iter().all(base64url) {
        return Err(Invalid::new(
            ConfigKind::Invalid,
            format!(
                "is not a JWT: it must be three base64url parts separated by dots, \
                 and it has {} part(s)",
                parts.len()
            ),
        ));
    }
    Ok(value)
}

/// The claims of a JWT that `doctor` shows: when it expires and whom it is
/// for. Read from the payload without checking the signature, so they say
/// what the token claims, not that it is genuine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct JwtClaims {
    /// `exp`: seconds since the Unix epoch.
    pub expires: Option<u64>,
    /// `aud`: one audience or several.
    pub audience: Vec<String>,
}

impl JwtClaims {
    /// The claims of `jwt`, or `None` when its payload is not base64url JSON.
    pub(crate) fn decode(jwt: &SecretString) -> Option<JwtClaims> {
        let payload = jwt.expose_secret().split('.').nth(1)?;
        let bytes = Zeroizing::new(base64::Engine::decode(&BASE64URL, payload).ok()?);
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let audience = match &claims["aud"] {
            serde_json::Value::String(one) => vec![one.clone()],
            serde_json::Value::Array(many) => many
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Some(JwtClaims {
            expires: claims["exp"].as_u64(),
            audience,
        })
    }
}

/// base64url as JWTs write it (unpadded), also taking padding and
/// non-canonical trailing bits rather than refusing a payload for them.
const BASE64URL: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// GitHub Actions' OIDC token endpoint, as the runner announces it to a job
/// with `permissions: id-token: write`. `Debug` shows the URL, never the
/// request token.
#[derive(Debug, Clone)]
pub(crate) struct ActionsEndpoint {
    pub(crate) url: url::Url,
    pub(crate) request_token: SecretString,
}

impl ActionsEndpoint {
    /// The endpoint when both `ACTIONS_ID_TOKEN_REQUEST_URL` and
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN` are set; either alone is no endpoint
    /// (the runner sets both or neither).
    pub(crate) fn from_env(env: &secret_core::Env) -> Result<Option<Self>, Error> {
        let read = |v: &var::Variable| -> Result<Option<Zeroizing<String>>, Error> {
            Ok(env
                .get(v.name)?
                .map(Zeroizing::new)
                .filter(|t| !t.trim().is_empty()))
        };
        let url_var = var::ACTIONS_ID_TOKEN_REQUEST_URL;
        let token_var = var::ACTIONS_ID_TOKEN_REQUEST_TOKEN;
        let (Some(url), Some(token)) = (read(&url_var)?, read(&token_var)?) else {
            return Ok(None);
        };
        let url = input::header_value("a URL", &url, input::MAX_ADDRESS_LEN)
            .map_err(|e| e.for_variable(url_var.name))?;
        // Its query (`api-version=2.0`) is kept: `audience` is added to it.
        let url = url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                Error::config_kind(
                    url_var.name,
                    ConfigKind::NotAUrl,
                    format!("`{}` is not an http(s) URL", input::shown_address(url)),
                )
            })?;
        let request_token = input::credential("a request token", &token)
            .map_err(|e| e.for_variable(token_var.name))?;
        Ok(Some(ActionsEndpoint { url, request_token }))
    }

    /// A fresh JWT for `audience` (GitHub's default audience when `None`):
    /// `GET <url>&audience=<aud>` with the request token as bearer, answer
    /// `{"value": "<jwt>"}`. Any failure is a configuration error naming
    /// `ACTIONS_ID_TOKEN_REQUEST_URL`: it is local to the job, not a login
    /// the server refused.
    pub(crate) async fn fetch(&self, audience: Option<&str>) -> Result<SecretString, Error> {
        let name = var::ACTIONS_ID_TOKEN_REQUEST_URL.name;
        let shown = input::shown_address(self.url.as_str());
        let fail = |kind, reason: String| Error::config_kind(name, kind, reason);
        let mut url = self.url.clone();
        if let Some(audience) = audience {
            url.query_pairs_mut().append_pair("audience", audience);
        }
        let http = crate::tls::backend(reqwest::Client::builder())
            .timeout(ACTIONS_TIMEOUT)
            // The request token must not follow a redirect elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                fail(ConfigKind::Invalid, "cannot build its HTTP client".into()).caused_by(e)
            })?;
        let answer = http
            .get(url)
            .bearer_auth(self.request_token.expose_secret())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                fail(
                    ConfigKind::Invalid,
                    format!("GitHub Actions' token endpoint `{shown}` cannot be reached"),
                )
                .caused_by(e.without_url())
            })?;
        let status = answer.status();
        if !status.is_success() {
            return Err(fail(
                ConfigKind::Invalid,
                format!(
                    "GitHub Actions' token endpoint `{shown}` answered {status} \
                     (does the job have `permissions: id-token: write`?)"
                ),
            ));
        }
        let not_a_token = || {
            fail(
                ConfigKind::Invalid,
                format!(
                    "GitHub Actions' token endpoint `{shown}` answered without a JWT in `value`"
                ),
            )
        };
        let body = match read_capped(answer, MAX_ACTIONS_ANSWER).await {
            Ok(Some(body)) => body,
            Ok(None) => return Err(not_a_token()),
            Err(e) => {
                return Err(fail(
                    ConfigKind::Invalid,
                    format!("GitHub Actions' token endpoint `{shown}`: its answer cannot be read"),
                )
                .caused_by(e.without_url()));
            }
        };
        #[derive(serde::Deserialize)]
        struct Answer {
            value: String,
        }
        let mut parsed: Answer = serde_json::from_slice(&body).map_err(|_| not_a_token())?;
        let value = Zeroizing::new(std::mem::take(&mut parsed.value));
        checked(&value).map_err(|_| not_a_token())
    }
}

/// The whole body of `answer`, wiped on drop; `None` when it is longer than `max`.
async fn read_capped(
    mut answer: reqwest::Response,
    max: usize,
) -> Result<Option<Zeroizing<Vec<u8>>>, reqwest::Error> {
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = answer.chunk().await? {
        if body.len() + chunk.len() > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_is_three_base64url_parts() {
        assert!(checked(" aGVhZA.Y2xhaW1z.c2ln\n").is_ok());
        for bad in ["hvs.token", "a.b.c.d", "a..c", "a.b!.c", "/var/run/token"] {
            let e = checked(bad).unwrap_err();
            assert_eq!(e.kind, ConfigKind::Invalid, "{bad}");
            assert!(e.reason.starts_with("is not a JWT"), "{}", e.reason);
            assert!(!e.reason.contains(bad), "{}", e.reason);
        }
    }

    #[test]
    fn claims_are_read_from_the_payload() {
        // {"aud":"vault","exp":1700000000,"sub":"x"}
        let payload = "eyJhdWQiOiJ2YXVsdCIsImV4cCI6MTcwMDAwMDAwMCwic3ViIjoieCJ9";
        let claims = JwtClaims::decode(&SecretString::from(format!("e30.{payload}.c2ln"))).unwrap();
        assert_eq!(claims.expires, Some(1_700_000_000));
        assert_eq!(claims.audience, ["vault"]);
        // {"aud":["a","b"]}
        let claims =
            JwtClaims::decode(&SecretString::from("e30.eyJhdWQiOlsiYSIsImIiXX0.c2ln")).unwrap();
        assert_eq!(
            (claims.expires, claims.audience),
            (None, vec!["a".into(), "b".into()])
        );
        assert_eq!(JwtClaims::decode(&SecretString::from("e30.!!.c2ln")), None);
    }

    #[test]
    fn debug_of_the_endpoint_hides_the_request_token() {
        let endpoint = ActionsEndpoint {
            url: url::Url::parse("http://127.0.0.1:1/token?api-version=2.0").unwrap(),
            request_token: SecretString::from("request-hunter2"),
        };
        let shown = format!("{endpoint:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
