//! Reading a small file that must be a regular file: the config file here,
//! and the token, JWT, CA and key files of a backend.
//!
//! The file is opened without blocking (on Unix with `O_NONBLOCK`: a FIFO
//! with no writer would hang an ordinary open), then what was opened is
//! checked with `fstat` (so a file swapped between a check and the open
//! cannot slip through), and at most `max` bytes are read into a buffer
//! wiped on drop (a device such as `/dev/zero` is refused before any read).

use std::io::Read as _;
use std::path::Path;

use zeroize::Zeroizing;

/// Why [`read_regular`] read nothing.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileError {
    /// Opening or reading failed (missing, unreadable, ...).
    Io(std::io::Error),
    /// The path names a directory.
    Directory,
    /// The path names something other than a regular file; what, in words
    /// ("a FIFO (named pipe)", "a device", "a socket").
    NotRegular(&'static str),
    /// The file holds more than the most accepted, this many bytes.
    TooLarge {
        /// The most accepted.
        max: u64,
    },
}

/// The bytes of the regular file `path`, at most `max` of them.
pub fn read_regular(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = options.open(path).map_err(FileError::Io)?;
    let metadata = file.metadata().map_err(FileError::Io)?;
    if metadata.is_dir() {
        return Err(FileError::Directory);
    }
    if !metadata.is_file() {
        return Err(FileError::NotRegular(kind_of(&metadata.file_type())));
    }
    let mut content = Zeroizing::new(Vec::with_capacity(
        usize::try_from(metadata.len().min(max + 1)).unwrap_or(0),
    ));
    file.take(max + 1)
        .read_to_end(&mut content)
        .map_err(FileError::Io)?;
    if content.len() as u64 > max {
        return Err(FileError::TooLarge { max });
    }
    Ok(content)
}

/// What a file that is neither a directory nor a regular file is, in words.
fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    let _ = file_type;
    "something other than a file"
}
