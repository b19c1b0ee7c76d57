//! Log output on stderr: warnings only by default, more with `-v`, or
//! exactly what `RUST_LOG` says when it is set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter for `-v` given `count` times: more of the library's own
/// logs (its retries and fallbacks are at DEBUG), then everything.
fn directives(count: u8) -> &'static str {
    match count {
        0 => "warn",
        1 => "warn,vault_secret=info",
        2 => "warn,vault_secret=debug",
        _ => "trace",
    }
}

/// Installs the stderr logger.
pub(crate) fn init(verbose: u8) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (filter, bad_env) = match from_env.as_deref().map(EnvFilter::try_new) {
        Some(Ok(filter)) => (filter, None),
        Some(Err(e)) => (EnvFilter::new(directives(verbose)), Some(e)),
        None => (EnvFilter::new(directives(verbose)), None),
    };
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose >= 2)
        .try_init();
    if let (Ok(()), Some(e)) = (installed, bad_env) {
        tracing::warn!("ignoring RUST_LOG: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_parses_and_the_default_is_warnings_only() {
        for count in 0..4 {
            assert!(EnvFilter::try_new(directives(count)).is_ok(), "{count}");
        }
        assert_eq!(directives(0), "warn");
        assert!(directives(2).contains("vault_secret=debug"));
    }
}
