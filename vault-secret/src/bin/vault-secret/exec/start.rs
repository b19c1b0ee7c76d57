//! Starting the command: the checks before, and a failure that names the
//! cause when it does not start (126 or 127, as a shell gives).

use std::ffi::OsString;

use crate::exec::env::Vars;
use crate::exit::{Exit, Failure};

/// Linux refuses one `NAME=value` string of 32 pages or more (`MAX_ARG_STRLEN`)
/// with "Argument list too long", which names no variable: checked first.
const MAX_VARIABLE_LEN: usize = 32 * 4096;

/// A failure naming the variable whose value is too large for an environment.
pub(crate) fn check_sizes(env: &Vars) -> Result<(), Failure> {
    for (name, (value, origin)) in env {
        let len = name.len() + 1 + value.len();
        if cfg!(target_os = "linux") && len >= MAX_VARIABLE_LEN {
            return Err(Failure::new(
                Exit::CannotRun,
                format!(
                    "the value for `{name}` (from {origin}) is {} bytes; Linux starts no \
                     command with a variable of {} KiB or more",
                    value.len(),
                    MAX_VARIABLE_LEN / 1024
                ),
            )
            .with_hint(
                "give the command a large value in a file instead: vault-secret get PATH > file",
            ));
        }
    }
    Ok(())
}

/// Why the command did not start, in words that name the cause: a missing
/// command, a script whose interpreter is missing, an environment too large.
pub(crate) fn cannot_spawn(
    program: &OsString,
    e: &std::io::Error,
    sizes: &[(String, usize)],
) -> Failure {
    let shown = program.to_string_lossy();
    if e.raw_os_error() == Some(rustix::io::Errno::TOOBIG.raw_os_error()) {
        let mut largest = sizes.to_vec();
        largest.sort_by_key(|(_, len)| std::cmp::Reverse(*len));
        let named: Vec<String> = largest
            .iter()
            .take(3)
            .map(|(name, len)| format!("`{name}` ({len} bytes)"))
            .collect();
        return Failure::new(
            Exit::CannotRun,
            format!(
                "cannot run `{shown}`: its arguments and environment are too large ({e}); \
                 the largest variables set: {}",
                named.join(", ")
            ),
        );
    }
    if e.kind() != std::io::ErrorKind::NotFound {
        return Failure::new(Exit::CannotRun, format!("cannot run `{shown}`: {e}"));
    }
    match find_program(program) {
        // The file is there: what is missing is what it needs to start.
        Some(file) => match interpreter(&file) {
            Some(interp) => Failure::new(
                Exit::CannotRun,
                format!(
                    "cannot run `{shown}`: its interpreter `{interp}` (from its `#!` line) \
                     was not found"
                ),
            )
            .with_hint(format!(
                "install `{interp}`, or fix the script's first line"
            )),
            None => Failure::new(
                Exit::CannotRun,
                format!(
                    "cannot run `{shown}`: the file exists, but the program loader it \
                     names was not found (built for another system?)"
                ),
            ),
        },
        None => Failure::new(
            Exit::CommandNotFound,
            format!("cannot run `{shown}`: command not found"),
        ),
    }
}

/// The file `program` names: itself when it holds a `/`, else the first
/// match in `PATH` (the command inherits ours).
fn find_program(program: &OsString) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(program);
    if program.as_encoded_bytes().contains(&b'/') {
        return path.is_file().then(|| path.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The interpreter named by a script's `#!` line, if it has one.
fn interpreter(file: &std::path::Path) -> Option<String> {
    use std::io::Read as _;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(file).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    line.split_whitespace()
        .next()
        .map(|interp| interp.chars().filter(|c| !c.is_control()).collect())
}

/// The variables' names and sizes, for [`cannot_spawn`].
pub(crate) fn sizes(env: &Vars) -> Vec<(String, usize)> {
    env.iter().map(|(n, (v, _))| (n.clone(), v.len())).collect()
}
