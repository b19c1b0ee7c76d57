//! Signal names (`--stop-signal`, `--on-change signal:NAME`), sending a
//! signal to the command, and the signals `exec` passes on to it.

use rustix::process::{Pid, Signal};
use tokio::signal::unix::{SignalKind, signal};

/// The signals a user can name, as `kill -l` spells them.
const NAMES: &[(&str, Signal)] = &[
    ("HUP", Signal::HUP),
    ("INT", Signal::INT),
    ("QUIT", Signal::QUIT),
    ("KILL", Signal::KILL),
    ("USR1", Signal::USR1),
    ("USR2", Signal::USR2),
    ("ALRM", Signal::ALARM),
    ("TERM", Signal::TERM),
    ("CONT", Signal::CONT),
    ("STOP", Signal::STOP),
    ("TSTP", Signal::TSTP),
    ("WINCH", Signal::WINCH),
];

/// A signal by name: `HUP`, `SIGHUP` or `hup`; `None` for a name not in the
/// list.
pub(crate) fn by_name(name: &str) -> Option<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES.iter().find(|(n, _)| *n == bare).map(|(_, s)| *s)
}

/// The names [`by_name`] knows, for messages.
pub(crate) fn known() -> String {
    NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// `SIGHUP` for [`Signal::HUP`], for logs.
pub(crate) fn name(signal: Signal) -> String {
    NAMES.iter().find(|(_, s)| *s == signal).map_or_else(
        || format!("signal {}", signal.as_raw()),
        |(n, _)| format!("SIG{n}"),
    )
}

/// A child's id (`Child::id`) as a process id; `None` for one no process
/// can have.
fn process_id(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// Sends `signal` to the process `pid`; a process already gone is not an
/// error (it exited meanwhile, and its exit is handled where it is awaited).
pub(crate) fn send(pid: u32, signal: Signal) {
    let Some(pid) = process_id(pid) else {
        return;
    };
    if let Err(e) = rustix::process::kill_process(pid, signal) {
        tracing::debug!(error = %e, signal = %name(signal), "could not signal the command");
    }
}

/// Passes `signal`, received by `exec`, on to the command `pid`, unless the
/// terminal has already delivered it there: a terminal sends SIGINT and
/// SIGQUIT (Ctrl-C, Ctrl-\\) and SIGWINCH to its whole foreground process
/// group, which holds the command too when `exec` runs in the foreground
/// and the command has not left `exec`'s group. Passed on then, the
/// command would get Ctrl-C twice, and many programs take a second Ctrl-C
/// as "quit now, skip the clean-up". (The one signal then not passed on is
/// a `kill -INT` from elsewhere while `exec` runs in a terminal's
/// foreground: send it to the command itself.)
pub(crate) fn pass_on(pid: u32, signal: Signal) {
    let from_terminal = matches!(signal, Signal::INT | Signal::QUIT | Signal::WINCH);
    if from_terminal && in_the_terminals_foreground_with(pid) {
        tracing::debug!(
            signal = %name(signal),
            "the terminal delivered the signal to the command as well; not passed on again"
        );
        return;
    }
    send(pid, signal);
}

/// Whether the process `pid` is in `exec`'s process group, and that group
/// is the foreground group of `exec`'s controlling terminal.
fn in_the_terminals_foreground_with(pid: u32) -> bool {
    use rustix::fs::{Mode, OFlags};
    let Some(pid) = process_id(pid) else {
        return false;
    };
    let ours = rustix::process::getpgrp();
    if rustix::process::getpgid(Some(pid)).ok() != Some(ours) {
        return false;
    }
    // The controlling terminal, whichever of stdin, stdout and stderr it is
    // (if any): no terminal, no foreground.
    let flags = OFlags::RDONLY | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let Ok(tty) = rustix::fs::open("/dev/tty", flags, Mode::empty()) else {
        return false;
    };
    rustix::termios::tcgetpgrp(&tty).is_ok_and(|foreground| foreground == ours)
}

/// The signals `exec` receives and passes on: SIGINT, SIGTERM and SIGHUP
/// (what a terminal, a service manager or a reload sends), and SIGQUIT,
/// SIGUSR1, SIGUSR2 and SIGWINCH, which programs use for their own ends.
#[derive(Debug)]
pub(crate) struct Incoming {
    streams: Vec<(Signal, tokio::signal::unix::Signal)>,
}

impl Incoming {
    /// Installs the handlers; from now on these signals no longer end `exec`.
    pub(crate) fn install() -> std::io::Result<Incoming> {
        let kinds = [
            (Signal::INT, SignalKind::interrupt()),
            (Signal::TERM, SignalKind::terminate()),
            (Signal::HUP, SignalKind::hangup()),
            (Signal::QUIT, SignalKind::quit()),
            (Signal::USR1, SignalKind::user_defined1()),
            (Signal::USR2, SignalKind::user_defined2()),
            (Signal::WINCH, SignalKind::window_change()),
        ];
        let mut streams = Vec::with_capacity(kinds.len());
        for (sig, kind) in kinds {
            streams.push((sig, signal(kind)?));
        }
        Ok(Incoming { streams })
    }

    /// The next signal received.
    pub(crate) async fn recv(&mut self) -> Signal {
        std::future::poll_fn(|cx| {
            for (sig, stream) in &mut self.streams {
                if let std::task::Poll::Ready(Some(())) = stream.poll_recv(cx) {
                    return std::task::Poll::Ready(*sig);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_every_spelling() {
        assert_eq!(by_name("HUP"), Some(Signal::HUP));
        assert_eq!(by_name("sighup"), Some(Signal::HUP));
        assert_eq!(by_name(" SIGTERM "), Some(Signal::TERM));
        assert_eq!(by_name("usr1"), Some(Signal::USR1));
        assert_eq!(by_name("NOPE"), None);
        assert_eq!(by_name(""), None);
        assert_eq!(name(Signal::TERM), "SIGTERM");
        assert!(known().contains("HUP, INT"));
    }
}
