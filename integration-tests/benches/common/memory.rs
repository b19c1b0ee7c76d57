//! The process's memory, as `/proc/self/status` gives it (Linux).

/// A field of `/proc/self/status` (`VmRSS`, `VmHWM`), in bytes.
pub(crate) fn status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a size in kB");
    kib * 1024
}

/// The process's resident memory (`VmRSS`), in bytes.
pub(crate) fn resident() -> u64 {
    status("VmRSS")
}
