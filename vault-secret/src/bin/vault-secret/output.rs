//! Writing results to stdout.

use std::io::{IsTerminal, Write};

use crate::exit::{Exit, Failure};

/// Writes `text` to stdout, followed by a newline when `newline` is set.
pub(crate) fn print(text: &str, newline: bool) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(Exit::Other, format!("cannot write to standard output: {e}")))
}

/// Whether stdout is a terminal (a bare value then gets a newline so the
/// prompt does not stick to it; into a pipe or file it is written exactly).
pub(crate) fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}
