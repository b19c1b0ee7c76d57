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

/// Text that is not a secret value (a message, a server's version or error)
/// as the terminal is shown it: every control character but the line feed
/// escaped (`\u{1b}` for ESC), as the library shows input it refuses.
pub(crate) fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether stdout is a terminal (a bare value then gets a newline so the
/// prompt does not stick to it; into a pipe or file it is written exactly).
pub(crate) fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}
