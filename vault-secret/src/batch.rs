//! Several secrets at once: each distinct path read once, then each
//! reference's field taken from its path's mapping. At most
//! [`MAX_CONCURRENT_READS`] paths are read at the same time.

use secret_core::SecretValue;
use serde_json::Value;

use crate::error::Error;
use crate::path::SecretRef;

/// How many distinct paths are read at the same time: each answer may be up
/// to the answer cap in size, so a long list (`exec` with many secrets) is
/// read a few at a time rather than all at once.
pub(crate) const MAX_CONCURRENT_READS: usize = 8;

/// The distinct paths of `refs` (fields aside), and for each reference the
/// index of its path among them.
pub(crate) fn distinct(refs: &[SecretRef]) -> (Vec<SecretRef>, Vec<usize>) {
    let mut paths: Vec<SecretRef> = Vec::new();
    let index = refs
        .iter()
        .map(|r| {
            let whole = SecretRef {
                field: None,
                ..r.clone()
            };
            paths.iter().position(|d| *d == whole).unwrap_or_else(|| {
                paths.push(whole);
                paths.len() - 1
            })
        })
        .collect();
    (paths, index)
}

/// The whole mapping, or the one field `r` asks for (a string field as
/// text), taken from the answer's JSON without another serialize-and-parse.
pub(crate) fn select(r: &SecretRef, data: &Value) -> Result<SecretValue, Error> {
    let Some(field) = &r.field else {
        return Ok(SecretValue::json(data.clone()).with_name(r.path.as_str()));
    };
    let value = match data.get(field) {
        None => {
            return Err(Error::FieldNotFound {
                path: r.path.clone(),
                field: field.clone(),
                // Field names are not secret; they help with a typo.
                available: data
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default(),
            });
        }
        Some(Value::String(text)) => SecretValue::text(text.clone()),
        Some(other) => SecretValue::json(other.clone()),
    };
    Ok(value.with_name(format!("{}#{field}", r.path)))
}

/// Each reference's value (or the first failure, in the order given),
/// from `reads` (one per distinct path) and `index`; the reads are wiped.
pub(crate) fn values(
    refs: &[SecretRef],
    mut reads: Vec<Result<Value, Error>>,
    index: &[usize],
) -> Result<Vec<SecretValue>, Error> {
    let mut values = Vec::with_capacity(refs.len());
    let mut failure = None;
    for (r, &i) in refs.iter().zip(index) {
        match reads[i].as_ref().map(|data| select(r, data)) {
            Ok(Ok(value)) => values.push(value),
            Ok(Err(e)) => {
                failure = Some(e);
                break;
            }
            Err(_) => {
                failure = Some(take_error(&mut reads, i));
                break;
            }
        }
    }
    wipe(&mut reads);
    match failure {
        Some(e) => Err(e),
        None => Ok(values),
    }
}

/// For a source: each reference's value, or why it is not there (the text
/// of a not-found or no-such-field error). Any other failure, the first in
/// the order given, is the error. The reads are wiped.
pub(crate) fn each(
    refs: &[SecretRef],
    mut reads: Vec<Result<Value, Error>>,
    index: &[usize],
) -> Result<Vec<Result<SecretValue, String>>, Error> {
    let failed = index
        .iter()
        .find(|&&i| reads[i].as_ref().is_err_and(|e| !e.is_not_found()));
    let each = match failed {
        Some(&i) => Err(take_error(&mut reads, i)),
        None => Ok(refs
            .iter()
            .zip(index)
            .map(|(r, &i)| match &reads[i] {
                Ok(data) => select(r, data).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            })
            .collect()),
    };
    wipe(&mut reads);
    each
}

/// Moves the error out of `reads[i]`, which holds one.
fn take_error(reads: &mut [Result<Value, Error>], i: usize) -> Error {
    match std::mem::replace(&mut reads[i], Ok(Value::Null)) {
        Err(e) => e,
        // Callers pass only the index of a failed read.
        Ok(mut data) => {
            secret_core::zeroize_json(&mut data);
            Error::Server {
                status: 0,
                path: String::new(),
                errors: vec!["internal: no failure to report".into()],
                attempts: 0,
            }
        }
    }
}

/// Wipes the secret data the reads hold.
fn wipe(reads: &mut [Result<Value, Error>]) {
    for data in reads.iter_mut().flatten() {
        secret_core::zeroize_json(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refs(paths: &[&str]) -> Vec<SecretRef> {
        paths.iter().map(|p| SecretRef::parse(p).unwrap()).collect()
    }

    #[test]
    fn fields_of_one_path_share_its_read() {
        let refs = refs(&["kv/a#user", "kv/a#password", "kv/b", "kv/a?version=2#user"]);
        let (paths, index) = distinct(&refs);
        assert_eq!(paths.len(), 3);
        assert_eq!(index, [0, 0, 1, 2]);
    }

    #[test]
    fn the_first_failure_in_order_is_reported() {
        let refs = refs(&["kv/a#user", "kv/a#nope", "kv/b"]);
        let (_, index) = distinct(&refs);
        let reads = vec![
            Ok(json!({"user": "u"})),
            Err(Error::NotFound {
                path: "kv/b".into(),
                detail: None,
                namespace: None,
            }),
        ];
        let err = values(&refs, reads, &index).unwrap_err();
        assert!(
            matches!(&err, Error::FieldNotFound { field, .. } if field == "nope"),
            "{err}"
        );
    }

    #[test]
    fn a_source_sees_not_found_as_a_miss_and_other_failures_as_errors() {
        let refs = refs(&["kv/a#user", "kv/a#nope"]);
        let (_, index) = distinct(&refs);
        let each = each(&refs, vec![Ok(json!({"user": "u"}))], &index).unwrap();
        assert_eq!(each[0].as_ref().unwrap().expose_secret(), "u");
        assert!(each[1].as_ref().unwrap_err().contains("no field `nope`"));
        let sealed = vec![Err(Error::Sealed {
            address: "http://v".into(),
        })];
        assert!(matches!(
            super::each(&refs, sealed, &index),
            Err(Error::Sealed { .. })
        ));
    }
}
