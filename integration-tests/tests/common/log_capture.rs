//! Log output kept in memory, shared by the test binaries that read what
//! the library logged.

/// Formatted log output kept in memory, for tests that read what the
/// library logged (hand `move || capture.clone()` to a `fmt` subscriber's
/// `with_writer`).
#[derive(Clone, Debug, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Captures every event and span of every target, at TRACE with span
    /// events, on this thread until the guard drops (a current-thread
    /// runtime's tasks included); `log` records (reqwest's) are forwarded
    /// too.
    pub fn trace_everything() -> (LogCapture, tracing::subscriber::DefaultGuard) {
        let capture = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .with_ansi(false)
            .with_writer({
                let capture = capture.clone();
                move || capture.clone()
            })
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        // Already installed (by an earlier test in this process) is fine.
        let _ = tracing_log::LogTracer::init();
        (capture, guard)
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Everything captured so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many bytes were captured so far (a mark for [`since`](Self::since)).
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text captured from byte `from` on.
    pub fn since(&self, from: usize) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes[from.min(bytes.len())..]).into_owned()
    }
}
