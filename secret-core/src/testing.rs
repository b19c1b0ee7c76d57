//! A conformance suite every [`SecretSource`] implementation runs in its tests.
//!
//! Enabled with the `testing` feature. Each check panics with a message
//! naming what broke (never the secret's value).

use crate::{Lookup, SecretSource};

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Env, EnvironmentSource, LocalContext, SecretChain, SecretFuture, SecretValue};

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

    #[tokio::test]
    #[should_panic(expected = "should be missing but was found")]
    async fn the_suite_catches_a_source_that_finds_everything() {
        run_conformance(&Leaky, "A", "x", "ABSENT").await;
    }
}
