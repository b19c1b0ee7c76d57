//! `--mask`: the command's stdout and stderr pass through pipes, and every
//! secret value, and its encoded forms, becomes `<redacted>`.
//!
//! Streaming without delay and without leaks: each chunk read is written
//! at once, except its end when that end could be the start of a secret
//! (a proper prefix of one of the patterns); that tail waits for the next
//! chunk, so a value split across two writes is still found. Bytes, not
//! text: output that is not UTF-8 passes unchanged.

use std::io::{Read, Write};
use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, MatchKind, packed};
use base64::Engine as _;
use zeroize::Zeroizing;

/// What a secret becomes in the output.
pub(crate) const REDACTED: &[u8] = b"<redacted>";

/// Values shorter than this are not masked: replacing every `1` or `on` in
/// the output would destroy it and hide nothing worth hiding.
pub(crate) const MIN_MASKED_LEN: usize = 4;

/// How much is read from the command at once (its pipe is made this large).
pub(crate) const CHUNK: usize = 1024 * 1024;

/// Finds the patterns, leftmost-longest: the longest match at each
/// position, so a value and a longer value that starts with it are both
/// hidden whole.
enum Matcher {
    /// SIMD (Teddy) for a few dozen patterns: its speed does not depend on
    /// how often a pattern's bytes occur in the output, as the automaton's
    /// byte prefilters' does.
    Packed(packed::Searcher),
    /// Any number of patterns.
    Automaton(AhoCorasick),
}

impl Matcher {
    fn build(patterns: &[Zeroizing<Vec<u8>>]) -> Option<Matcher> {
        if patterns.is_empty() {
            return None;
        }
        let packed = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostLongest)
            .builder()
            .extend(patterns.iter().map(|p| p.as_slice()))
            .build();
        if let Some(searcher) = packed {
            return Some(Matcher::Packed(searcher));
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns.iter().map(|p| p.as_slice()))
            .ok()
            .map(Matcher::Automaton)
    }

    /// Calls `each(start, end)` for the matches in `buf`, in order, until it
    /// returns `false`.
    fn each(&self, buf: &[u8], mut each: impl FnMut(usize, usize) -> bool) {
        match self {
            Matcher::Packed(s) => {
                for m in s.find_iter(buf) {
                    if !each(m.start(), m.end()) {
                        return;
                    }
                }
            }
            Matcher::Automaton(a) => {
                for m in a.find_iter(buf) {
                    if !each(m.start(), m.end()) {
                        return;
                    }
                }
            }
        }
    }
}

/// The texts to hide and a matcher for all of them. `Debug` shows how
/// many, never what.
pub(crate) struct Masker {
    patterns: Vec<Zeroizing<Vec<u8>>>,
    matcher: Option<Matcher>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masker({} patterns)", self.patterns.len())
    }
}

impl Masker {
    /// A masker hiding each of `values` (those of at least
    /// [`MIN_MASKED_LEN`] bytes) in all its [`forms`].
    pub(crate) fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Masker {
        Masker::with_patterns(Vec::new(), values)
    }

    /// `patterns` (already in every form) and each of `values` in all its
    /// forms.
    fn with_patterns<'a>(
        mut patterns: Vec<Zeroizing<Vec<u8>>>,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Masker {
        for value in values {
            if value.len() < MIN_MASKED_LEN {
                continue;
            }
            for form in forms(value) {
                if !patterns.iter().any(|p| **p == *form) {
                    patterns.push(form);
                }
            }
        }
        let matcher = Matcher::build(&patterns);
        Masker { patterns, matcher }
    }

    /// The length of the longest end of `buf` that is a proper prefix of a
    /// pattern: those bytes may be the start of a secret.
    fn partial_tail(&self, buf: &[u8]) -> usize {
        let mut longest = 0;
        for p in &self.patterns {
            let most = (p.len() - 1).min(buf.len());
            for k in (longest + 1..=most).rev() {
                if buf[buf.len() - k..] == p[..k] {
                    longest = k;
                    break;
                }
            }
        }
        longest
    }

    /// Masks `buf` into `out`, and gives how many bytes of `buf` were
    /// consumed; the rest (a possible start of a secret) waits, unless
    /// `last`.
    #[cfg(test)]
    pub(crate) fn mask(&self, buf: &[u8], last: bool, out: &mut Vec<u8>) -> usize {
        self.mask_into(buf, last, &mut |part| out.extend_from_slice(part))
    }

    /// [`Masker::mask`], handing each part of the output to `emit` (a
    /// chunk without a secret is one part, not copied).
    fn mask_into(&self, buf: &[u8], last: bool, emit: &mut dyn FnMut(&[u8])) -> usize {
        let Some(matcher) = &self.matcher else {
            emit(buf);
            return buf.len();
        };
        let limit = if last {
            buf.len()
        } else {
            buf.len() - self.partial_tail(buf)
        };
        let mut pos = 0;
        matcher.each(buf, |start, end| {
            // A match starting in the kept tail is found again, whole,
            // once more bytes arrive (or at the end).
            if start >= limit {
                return false;
            }
            emit(&buf[pos..start]);
            emit(REDACTED);
            pos = end;
            true
        });
        if pos < limit {
            emit(&buf[pos..limit]);
            pos = limit;
        }
        pos
    }
}

/// The forms of `value` a program may print: as it is, base64 (standard
/// and URL-safe, padded and not), percent-encoded (as in a URL) and
/// JSON-escaped (inside a JSON string).
pub(crate) fn forms(value: &str) -> Vec<Zeroizing<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![Zeroizing::new(value.as_bytes().to_vec())];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        forms.push(Zeroizing::new(engine.encode(value).into_bytes()));
    }
    forms.push(Zeroizing::new(percent_encoded(value).into_bytes()));
    if let Ok(json) = serde_json::to_string(value) {
        let json = Zeroizing::new(json);
        forms.push(Zeroizing::new(json[1..json.len() - 1].as_bytes().to_vec()));
    }
    let mut distinct: Vec<Zeroizing<Vec<u8>>> = Vec::with_capacity(forms.len());
    for form in forms {
        if !distinct.iter().any(|d| **d == *form) {
            distinct.push(form);
        }
    }
    distinct
}

/// Every byte but the URL-unreserved ones as `%XX` (RFC 3986).
fn percent_encoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The masker every stream uses, replaced (with more patterns) when the
/// secrets change: the values before the change stay hidden too.
#[derive(Debug, Clone)]
pub(crate) struct SharedMasker(Arc<RwLock<Arc<Masker>>>);

impl SharedMasker {
    pub(crate) fn new(values: &[Zeroizing<String>]) -> Self {
        SharedMasker(Arc::new(RwLock::new(Arc::new(Masker::new(
            values.iter().map(|v| v.as_str()),
        )))))
    }

    /// Adds `values` to what is hidden.
    pub(crate) fn extend(&self, values: &[Zeroizing<String>]) {
        let mut current = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next =
            Masker::with_patterns(current.patterns.clone(), values.iter().map(|v| v.as_str()));
        *current = Arc::new(next);
    }

    fn current(&self) -> Arc<Masker> {
        Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Copies `from` to `to` until the end, masking: runs on a thread of its
/// own per stream, so a slow reader of our output holds up neither the
/// other stream nor signal handling. When `to` is closed (EPIPE) it stops
/// reading, so the command sees a closed pipe as it would unmasked.
pub(crate) fn pump(mut from: impl Read, to: impl Write, masker: SharedMasker) {
    // Small parts (around a `<redacted>`) are gathered; a part this large
    // or larger is written as it is, without a copy.
    let mut to = std::io::BufWriter::with_capacity(16 * 1024, to);
    // The bytes kept from the last read, then the next read, in one buffer
    // allocated once.
    let mut buf = vec![0u8; 2 * CHUNK];
    let mut held = 0;
    loop {
        if buf.len() < held + CHUNK {
            buf.resize(held + CHUNK, 0);
        }
        let n = match from.read(&mut buf[held..held + CHUNK]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => 0,
        };
        let last = n == 0;
        let filled = held + n;
        let mut written = Ok(());
        let used = masker
            .current()
            .mask_into(&buf[..filled], last, &mut |part| {
                if written.is_ok() {
                    written = to.write_all(part);
                }
            });
        if written.and_then(|()| to.flush()).is_err() || last {
            return;
        }
        buf.copy_within(used..filled, 0);
        held = filled - used;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(m: &Masker, chunks: &[&[u8]]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            buf.extend_from_slice(c);
            let used = m.mask(&buf, i + 1 == chunks.len(), &mut out);
            buf.drain(..used);
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn every_form_is_hidden() {
        let m = Masker::new(["hunter2 \"x\"/+?"]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("hunter2 \"x\"/+?");
        let text = format!(
            "a hunter2 \"x\"/+? b {b64} c hunter2%20%22x%22%2F%2B%3F d hunter2 \\\"x\\\"/+? e"
        );
        assert_eq!(
            String::from_utf8(masked(&m, &[text.as_bytes()])).unwrap(),
            "a <redacted> b <redacted> c <redacted> d <redacted> e"
        );
    }

    #[test]
    fn a_value_split_across_reads_at_every_point_is_hidden() {
        let m = Masker::new(["s3cr3t-value", "other-secret"]);
        let text = b"before s3cr3t-value between other-secret after";
        for cut in 0..=text.len() {
            for cut2 in cut..=text.len() {
                let out = masked(&m, &[&text[..cut], &text[cut..cut2], &text[cut2..]]);
                assert_eq!(
                    out, b"before <redacted> between <redacted> after",
                    "cuts {cut} {cut2}"
                );
            }
        }
    }

    #[test]
    fn only_a_possible_start_of_a_secret_waits() {
        let m = Masker::new(["abcdef"]);
        let mut out = Vec::new();
        assert_eq!(m.mask(b"line one\nab", false, &mut out), 9);
        assert_eq!(out, b"line one\n");
        out.clear();
        assert_eq!(m.mask(b"line two\n", false, &mut out), 9);
        assert_eq!(out, b"line two\n");
    }

    #[test]
    fn the_longest_value_wins_and_short_values_are_left() {
        let m = Masker::new(["abcd", "abcdefgh", "on"]);
        assert_eq!(
            masked(&m, &[b"abcdefgh abcd on", b""]),
            b"<redacted> <redacted> on"
        );
    }

    #[test]
    fn binary_output_passes_unchanged() {
        let m = Masker::new(["needle-value"]);
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        assert_eq!(masked(&m, &[&data[..5000], &data[5000..], b""]), data);
    }

    #[test]
    fn a_shared_masker_keeps_old_values_hidden() {
        let shared = SharedMasker::new(&[Zeroizing::new("old-value".to_owned())]);
        shared.extend(&[Zeroizing::new("new-value".to_owned())]);
        let mut out = Vec::new();
        shared
            .current()
            .mask(b"old-value new-value", true, &mut out);
        assert_eq!(out, b"<redacted> <redacted>");
        let debug = format!("{shared:?}");
        assert!(debug.contains("Masker(4 patterns)"), "{debug}");
        assert!(
            !debug.contains("value") && !debug.contains("bmV3"),
            "{debug}"
        );
    }

    #[test]
    fn pump_copies_everything_masked() {
        let shared = SharedMasker::new(&[Zeroizing::new("pumped-secret".to_owned())]);
        let mut input = b"x".repeat(300_000);
        input.extend_from_slice(b"pumped-secret");
        input.extend(b"y".repeat(300_000));
        let mut out = Vec::new();
        pump(&input[..], &mut out, shared);
        assert_eq!(out.len(), 600_000 + REDACTED.len());
        assert!(!out.windows(13).any(|w| w == b"pumped-secret"));
    }
}
