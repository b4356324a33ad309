//! Files that must be whole after a crash or a power cut: the secret key file and a node's
//! last good configuration. Written to a temporary file in the same folder (mode 0600 from
//! its creation), flushed to disk, moved into place, and the folder flushed too, so the file
//! is either the old one or the new one, never half of either, and the move itself survives.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What happens when the file already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// It is replaced (atomically: readers see the old file or the new one).
    Replace,
    /// It is kept and the write fails with [`io::ErrorKind::AlreadyExists`]: of two
    /// processes creating the same file at once, exactly one wins.
    Keep,
}

/// Writes `contents` to `path` durably and atomically (see the module's documentation); the
/// file is readable and writable by its owner only.
pub fn write_file(path: &Path, contents: &[u8], existing: Existing) -> io::Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let temporary = temporary_name(path, folder)?;
    let written = write_new(&temporary, contents).and_then(|()| match existing {
        Existing::Replace => fs::rename(&temporary, path),
        // A hard link, unlike a rename, fails when the name is taken.
        Existing::Keep => fs::hard_link(&temporary, path),
    });
    // After a rename it is gone already; after a link (or a failure) it is removed here.
    let _ = fs::remove_file(&temporary);
    written?;
    // The folder's entry for the new name, flushed: without it a crash can lose the rename.
    File::open(folder)?.sync_all()
}

/// `.NAME.RANDOM.tmp` beside `path`: hidden, and never an existing file.
fn temporary_name(path: &Path, folder: &Path) -> io::Result<PathBuf> {
    let mut random = [0u8; 8];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| io::Error::other("no system randomness"))?;
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    Ok(folder.join(format!(".{name}.{suffix}.tmp")))
}

fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_testkit::TempDir;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_file_stays() {
        let temp = TempDir::new("durable-replace");
        let dir = temp.path();
        let path = dir.join("last-good-config.sealed");
        write_file(&path, b"first", Existing::Replace).unwrap();
        write_file(&path, b"second", Existing::Replace).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(entries(dir), ["last-good-config.sealed"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn keep_never_replaces_an_existing_file() {
        let temp = TempDir::new("durable-keep");
        let dir = temp.path();
        let path = dir.join("secret.key");
        write_file(&path, b"the key", Existing::Keep).unwrap();
        let second = write_file(&path, b"another key", Existing::Keep).unwrap_err();
        assert_eq!(second.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"the key");
        assert_eq!(entries(dir), ["secret.key"]);
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let temp = TempDir::new("durable-fail");
        let dir = temp.path();
        let missing = dir.join("no-such-folder").join("file");
        assert!(write_file(&missing, b"x", Existing::Replace).is_err());
        assert!(entries(dir).is_empty());
    }
}
