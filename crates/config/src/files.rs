//! Reading the files a configuration names — key files, JWKS files, TLS certificates and
//! keys — wherever they are read (here, or by the gateway when it builds TLS settings). They
//! are small; anything else named there (a device such as `/dev/zero`, a FIFO, a folder, a
//! huge file) is refused at once with a reason, never read until memory runs out or waited
//! on. A file named in a stored document is read on each node, so the same bound holds there.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The largest file a configuration may name, in bytes (1 MiB).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The bytes of `path`: a regular file (a symbolic link to one is fine) of at most
/// [`MAX_FILE_BYTES`]. The error says why, without the path (the caller names it).
pub fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    // Checked before opening: opening a FIFO would wait for a writer.
    check(&std::fs::metadata(path)?)?;
    let file = File::open(path)?;
    // And on what was opened, in case the name changed meanwhile.
    let metadata = file.metadata()?;
    check(&metadata)?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    // A file that grows while it is read is still cut at the bound.
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_bounded`], as UTF-8 text.
pub fn read_bounded_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read_bounded(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn check(metadata: &std::fs::Metadata) -> io::Result<()> {
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(())
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than {MAX_FILE_BYTES} bytes (1 MiB)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn temp_file(name: &str, len: usize) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("portico-files-{}-{name}", std::process::id()));
        std::fs::write(&path, vec![b'a'; len]).unwrap();
        path
    }

    #[test]
    fn a_file_up_to_the_bound_is_read() {
        let path = temp_file("small", MAX_FILE_BYTES as usize);
        assert_eq!(read_bounded(&path).unwrap().len(), MAX_FILE_BYTES as usize);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_larger_file_a_device_and_a_folder_are_refused_at_once() {
        let big = temp_file("big", 2 * 1024 * 1024);
        let start = Instant::now();
        let error = read_bounded(&big).unwrap_err();
        assert_eq!(error.to_string(), "larger than 1048576 bytes (1 MiB)");
        let _ = std::fs::remove_file(big);
        #[cfg(unix)]
        assert_eq!(
            read_bounded(Path::new("/dev/zero"))
                .unwrap_err()
                .to_string(),
            "not a regular file"
        );
        assert_eq!(
            read_bounded(&std::env::temp_dir()).unwrap_err().to_string(),
            "not a regular file"
        );
        // A FIFO with no writer: opening it would wait forever.
        let fifo = std::env::temp_dir().join(format!("portico-files-{}-fifo", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        if std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
        {
            assert_eq!(
                read_bounded(&fifo).unwrap_err().to_string(),
                "not a regular file"
            );
            let _ = std::fs::remove_file(&fifo);
        }
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
