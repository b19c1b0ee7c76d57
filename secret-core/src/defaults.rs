//! Typed default secrets: AWS, GCP and GitHub credentials under their well-known names.

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::value::json_type_name;
use crate::value::{SecretValue, ValueKind};

/// A credential type looked up by a well-known name and validated on read.
pub trait DefaultSecret: Sized {
    /// The secret's well-known name.
    const NAME: &'static str;

    /// Parses and validates a secret value; errors name the secret and field.
    fn from_secret(value: &SecretValue) -> Result<Self, Error>;
}

/// `AWS_CREDENTIALS`: `ACCESS_KEY`, `SECRET_ACCESS_KEY` and an optional `SESSION_TOKEN`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AwsCredentials {
    /// The access key id.
    pub access_key: SecretString,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials.
    pub session_token: Option<SecretString>,
}

impl DefaultSecret for AwsCredentials {
    const NAME: &'static str = "AWS_CREDENTIALS";

    fn from_secret(value: &SecretValue) -> Result<Self, Error> {
        let fields = Fields::new(Self::NAME, value)?;
        Ok(AwsCredentials {
            access_key: fields.required("ACCESS_KEY")?,
            secret_access_key: fields.required("SECRET_ACCESS_KEY")?,
            session_token: fields.optional("SESSION_TOKEN")?,
        })
    }
}

/// `GCP_CREDENTIALS`: a service-account key, as downloaded from Google Cloud.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GcpCredentials {
    /// The project id.
    pub project_id: String,
    /// The service account's e-mail address.
    pub client_email: String,
    /// The client id, when present.
    pub client_id: Option<String>,
    /// The key's id.
    pub private_key_id: SecretString,
    /// The PEM private key.
    pub private_key: SecretString,
    /// The OAuth token endpoint, when present.
    pub token_uri: Option<String>,
    /// The whole key document, for libraries that take it as is.
    pub key: SecretValue,
}

impl DefaultSecret for GcpCredentials {
    const NAME: &'static str = "GCP_CREDENTIALS";

    fn from_secret(value: &SecretValue) -> Result<Self, Error> {
        let fields = Fields::new(Self::NAME, value)?;
        let kind: SecretString = fields.required("type")?;
        if secrecy::ExposeSecret::expose_secret(&kind) != "service_account" {
            return Err(Error::InvalidField {
                secret: Self::NAME.into(),
                field: "type".into(),
                reason: "expected `service_account`".into(),
            });
        }
        let private_key: SecretString = fields.required("private_key")?;
        if !secrecy::ExposeSecret::expose_secret(&private_key).contains("PRIVATE KEY-----") {
            return Err(Error::InvalidField {
                secret: Self::NAME.into(),
                field: "private_key".into(),
                reason: "not a PEM private key".into(),
            });
        }
        Ok(GcpCredentials {
            project_id: fields.required_plain("project_id")?,
            client_email: fields.required_plain("client_email")?,
            client_id: fields.optional_plain("client_id")?,
            private_key_id: fields.required("private_key_id")?,
            private_key,
            token_uri: fields.optional_plain("token_uri")?,
            key: value.clone().with_name(Self::NAME),
        })
    }
}

/// `GITHUB_ACCESS_TOKEN`: a GitHub token.
#[derive(Debug, Clone)]
pub struct GithubAccessToken(pub SecretString);

impl DefaultSecret for GithubAccessToken {
    const NAME: &'static str = "GITHUB_ACCESS_TOKEN";

    fn from_secret(value: &SecretValue) -> Result<Self, Error> {
        let text = match value.kind() {
            ValueKind::Text => value.expose_secret().to_owned(),
            ValueKind::Json => match value.to_json()? {
                Value::String(s) => s,
                other => {
                    return Err(Error::Shape {
                        secret: Self::NAME.into(),
                        target: "a token string".into(),
                        path: None,
                        detail: format!("it is {}", json_type_name(&other)),
                    });
                }
            },
        };
        let token = text.trim();
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(Error::Shape {
                secret: Self::NAME.into(),
                target: "a token string".into(),
                path: None,
                detail: "it is empty or contains whitespace".into(),
            });
        }
        Ok(GithubAccessToken(SecretString::from(token.to_owned())))
    }
}

/// A structured secret's mapping, read field by field with errors naming secret and field.
struct Fields {
    secret: &'static str,
    map: Map<String, Value>,
}

impl Fields {
    fn new(secret: &'static str, value: &SecretValue) -> Result<Self, Error> {
        let map = value.clone().with_name(secret).to_mapping()?;
        Ok(Fields { secret, map })
    }

    fn string(&self, field: &str) -> Result<Option<&str>, Error> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => {
                Err(self.invalid(field, "it is empty".into()))
            }
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.invalid(
                field,
                format!("expected a string, found {}", json_type_name(other)),
            )),
        }
    }

    fn invalid(&self, field: &str, reason: String) -> Error {
        Error::InvalidField {
            secret: self.secret.into(),
            field: field.into(),
            reason,
        }
    }

    fn missing(&self, field: &str) -> Error {
        Error::MissingField {
            secret: self.secret.into(),
            field: field.into(),
        }
    }

    fn optional(&self, field: &str) -> Result<Option<SecretString>, Error> {
        Ok(self
            .string(field)?
            .map(|s| SecretString::from(s.to_owned())))
    }

    fn required(&self, field: &str) -> Result<SecretString, Error> {
        self.optional(field)?.ok_or_else(|| self.missing(field))
    }

    fn optional_plain(&self, field: &str) -> Result<Option<String>, Error> {
        Ok(self.string(field)?.map(str::to_owned))
    }

    fn required_plain(&self, field: &str) -> Result<String, Error> {
        self.optional_plain(field)?
            .ok_or_else(|| self.missing(field))
    }
}

impl Drop for Fields {
    fn drop(&mut self) {
        // The parsed mapping holds copies of the credentials: wipe its strings.
        self.map.values_mut().for_each(crate::zeroize_json);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn aws_parses_and_redacts() {
        let v = SecretValue::text(r#"{"ACCESS_KEY": "AKIA1", "SECRET_ACCESS_KEY": "hunter2"}"#);
        let c = AwsCredentials::from_secret(&v).unwrap();
        assert_eq!(c.access_key.expose_secret(), "AKIA1");
        assert_eq!(c.secret_access_key.expose_secret(), "hunter2");
        assert!(c.session_token.is_none());
        assert_eq!(
            format!("{c:?}"),
            "AwsCredentials { access_key: SecretBox<str>([REDACTED]), \
             secret_access_key: SecretBox<str>([REDACTED]), session_token: None }"
        );
    }

    #[test]
    fn aws_missing_or_mistyped_field_is_named() {
        let v = SecretValue::text(r#"{"ACCESS_KEY": "AKIA1"}"#);
        assert_eq!(
            AwsCredentials::from_secret(&v).unwrap_err().to_string(),
            "secret `AWS_CREDENTIALS` is missing required field `SECRET_ACCESS_KEY`"
        );
        let v = SecretValue::text(r#"{"ACCESS_KEY": "A", "SECRET_ACCESS_KEY": 7}"#);
        assert_eq!(
            AwsCredentials::from_secret(&v).unwrap_err().to_string(),
            "secret `AWS_CREDENTIALS` has an invalid field `SECRET_ACCESS_KEY`: expected a string, found a number"
        );
        let v = SecretValue::text("hunter2");
        let err = AwsCredentials::from_secret(&v).unwrap_err().to_string();
        assert!(
            err.contains("AWS_CREDENTIALS") && !err.contains("hunter2"),
            "{err}"
        );
    }

    fn gcp_key() -> serde_json::Value {
        serde_json::json!({
            "type": "service_account",
            "project_id": "proj",
            "private_key_id": "kid",
            "private_key": "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
            "client_email": "sa@proj.iam.gserviceaccount.com",
            "client_id": "123",
            "token_uri": "https://oauth2.googleapis.com/token"
        })
    }

    #[test]
    fn gcp_parses_and_validates() {
        let c = GcpCredentials::from_secret(&SecretValue::json(gcp_key())).unwrap();
        assert_eq!(c.project_id, "proj");
        assert_eq!(c.client_id.as_deref(), Some("123"));
        assert_eq!(
            format!("{c:?}"),
            "GcpCredentials { project_id: \"proj\", client_email: \"sa@proj.iam.gserviceaccount.com\", \
             client_id: Some(\"123\"), private_key_id: SecretBox<str>([REDACTED]), \
             private_key: SecretBox<str>([REDACTED]), token_uri: Some(\"https://oauth2.googleapis.com/token\"), \
             key: SecretValue { name: Some(\"GCP_CREDENTIALS\"), kind: Json, content: SecretBox<str>([REDACTED]) } }"
        );
        assert_eq!(c.key.to_json().unwrap(), gcp_key());

        let mut k = gcp_key();
        k.as_object_mut().unwrap().remove("client_email");
        assert!(matches!(
            GcpCredentials::from_secret(&SecretValue::json(k)).unwrap_err(),
            Error::MissingField { field, .. } if field == "client_email"
        ));
        let mut k = gcp_key();
        k["type"] = "user".into();
        assert!(matches!(
            GcpCredentials::from_secret(&SecretValue::json(k)).unwrap_err(),
            Error::InvalidField { field, .. } if field == "type"
        ));
        let mut k = gcp_key();
        k["private_key"] = "hunter2".into();
        let err = GcpCredentials::from_secret(&SecretValue::json(k))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`private_key`") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn github_token() {
        let t = GithubAccessToken::from_secret(&SecretValue::text("ghp_abc\n")).unwrap();
        assert_eq!(t.0.expose_secret(), "ghp_abc");
        assert_eq!(
            format!("{t:?}"),
            "GithubAccessToken(SecretBox<str>([REDACTED]))"
        );
        let t = GithubAccessToken::from_secret(&SecretValue::json("ghp_x".into())).unwrap();
        assert_eq!(t.0.expose_secret(), "ghp_x");
        assert!(GithubAccessToken::from_secret(&SecretValue::text("  ")).is_err());
        assert!(
            GithubAccessToken::from_secret(&SecretValue::json(serde_json::json!({"a": 1})))
                .is_err()
        );
    }
}
