//! Log output kept in memory, shared by the test binaries that read what
//! the library logged.

/// Formatted log output kept in memory, for tests that read what the
/// library logged (hand `move || capture.clone()` to a `fmt` subscriber's
/// `with_writer`).
#[derive(Clone, Debug, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

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
