//! A conformance suite every [`SecretSource`] implementation runs in its tests.
//!
//! Enabled with the `testing` feature. Each check panics with a message
//! naming what broke (never the secret's value).

use crate::source::{Lookup, SecretSource};

/// A name the source does not have must come back as [`Lookup::NotFound`], not an error.
pub async fn check_missing_is_not_found(source: &dyn SecretSource, missing_name: &str) {
    match source.resolve(missing_name).await {
        Ok(Lookup::NotFound(detail)) => assert!(
            !detail.is_empty(),
            "{source:?}: not-found for `{missing_name}` should say where it looked"
        ),
        Ok(Lookup::Found(_)) => {
            panic!("{source:?}: `{missing_name}` should be missing but was found")
        }
        Err(e) => panic!("{source:?}: `{missing_name}` should be not-found, got error: {e}"),
    }
}

/// A name the source has must come back found, with exactly `expected` as its text.
pub async fn check_present_is_found(source: &dyn SecretSource, name: &str, expected: &str) {
    match source.resolve(name).await {
        Ok(Lookup::Found(value)) => assert!(
            value.expose_secret() == expected,
            "{source:?}: `{name}` was found with a different value than expected"
        ),
        Ok(Lookup::NotFound(detail)) => panic!("{source:?}: `{name}` should be found: {detail}"),
        Err(e) => panic!("{source:?}: `{name}` should be found, got error: {e}"),
    }
}

/// Neither the source's nor the found value's `Debug`/`Display` may show `secret_text`.
pub async fn check_debug_redacts(source: &dyn SecretSource, name: &str, secret_text: &str) {
    assert!(
        !secret_text.is_empty(),
        "check_debug_redacts needs a non-empty secret"
    );
    let shown = format!("{source:?} {source:#?}");
    assert!(
        !shown.contains(secret_text),
        "the source's Debug shows the secret"
    );
    let value = match source.resolve(name).await {
        Ok(Lookup::Found(value)) => value,
        other => panic!("{source:?}: `{name}` should be found, got {other:?}"),
    };
    let shown = format!("{value:?} {value:#?} {value}");
    assert!(
        !shown.contains(secret_text),
        "the value's Debug/Display shows the secret"
    );
}

/// [`SecretSource::resolve_many`] must agree with `resolve`: one lookup per
/// name, in the order asked (a name asked twice answered twice).
pub async fn check_many_agrees(
    source: &dyn SecretSource,
    present_name: &str,
    present_value: &str,
    missing_name: &str,
) {
    let names = [missing_name, present_name, present_name];
    let lookups = match source.resolve_many(&names).await {
        Ok(lookups) => lookups,
        Err(e) => panic!("{source:?}: resolve_many failed: {e}"),
    };
    assert_eq!(
        lookups.len(),
        names.len(),
        "{source:?}: resolve_many should answer once per name"
    );
    for (name, lookup) in names.iter().zip(lookups) {
        match lookup {
            Lookup::Found(value) if *name == present_name => assert!(
                value.expose_secret() == present_value,
                "{source:?}: resolve_many found `{name}` with a different value than resolve"
            ),
            Lookup::NotFound(_) if *name == missing_name => {}
            other => {
                panic!("{source:?}: resolve_many disagrees with resolve on `{name}`: {other:?}")
            }
        }
    }
}

/// Runs every check: `present_name` must hold `present_value`, `missing_name` must not exist.
pub async fn run_conformance(
    source: &dyn SecretSource,
    present_name: &str,
    present_value: &str,
    missing_name: &str,
) {
    check_missing_is_not_found(source, missing_name).await;
    check_present_is_found(source, present_name, present_value).await;
    check_debug_redacts(source, present_name, present_value).await;
    check_many_agrees(source, present_name, present_value, missing_name).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::SecretChain;
    use crate::env::Env;
    use crate::env_var::EnvironmentSource;
    use crate::local::LocalContext;
    use crate::source::SecretFuture;
    use crate::value::SecretValue;

    #[tokio::test]
    async fn built_in_sources_conform() {
        let local = LocalContext::builder()
            .secret("PRESENT", SecretValue::text("s3cr3t-value"))
            .build()
            .unwrap();
        run_conformance(&local, "PRESENT", "s3cr3t-value", "ABSENT").await;
        let env = EnvironmentSource::new(Env::from_map([("PRESENT", "s3cr3t-value")]));
        run_conformance(&env, "PRESENT", "s3cr3t-value", "ABSENT").await;
        let chain = SecretChain::first_try("local", local).or_else("env", env);
        run_conformance(&chain, "PRESENT", "s3cr3t-value", "ABSENT").await;
    }

    #[derive(Debug)]
    struct Leaky;
    impl SecretSource for Leaky {
        fn resolve<'a>(&'a self, _: &'a str) -> SecretFuture<'a> {
            Box::pin(async { Ok(Lookup::Found(SecretValue::text("x"))) })
        }
    }

    /// Answers `resolve_many` with one lookup too few.
    #[derive(Debug)]
    struct Short;
    impl SecretSource for Short {
        fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
            Box::pin(async move {
                Ok(match name {
                    "A" => Lookup::Found(SecretValue::text("s3cr3t-short")),
                    _ => Lookup::not_found("only A"),
                })
            })
        }
        fn resolve_many<'a>(&'a self, _: &'a [&'a str]) -> crate::source::SecretsFuture<'a> {
            Box::pin(async { Ok(vec![Lookup::not_found("only A")]) })
        }
    }

    #[tokio::test]
    #[should_panic(expected = "should answer once per name")]
    async fn the_suite_catches_a_batch_that_drops_names() {
        run_conformance(&Short, "A", "s3cr3t-short", "ABSENT").await;
    }

    #[tokio::test]
    #[should_panic(expected = "should be missing but was found")]
    async fn the_suite_catches_a_source_that_finds_everything() {
        run_conformance(&Leaky, "A", "x", "ABSENT").await;
    }
}
