//! Output files that appear whole or not at all: written to a temporary file in the target's
//! folder, flushed to disk, then renamed over the target.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A complete file waiting beside its target; [`PendingFile::commit`] renames it into place.
/// Dropping it instead removes the temporary file and leaves the target untouched.
pub struct PendingFile {
    /// The temporary file, in the target's folder so the rename cannot cross file systems.
    tmp: tempfile::NamedTempFile,
    /// Where the file goes on commit.
    target: PathBuf,
}

impl PendingFile {
    /// Create a temporary file beside `target`, let `write` fill it, and flush it to disk.
    /// Errors are one-line descriptions (the caller adds the target's name).
    pub fn write(
        target: &Path,
        write: impl FnOnce(&mut File) -> Result<(), String>,
    ) -> Result<PendingFile, String> {
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(format!("folder {} does not exist", dir.display()));
        }
        let prefix = format!(
            ".{}.",
            target
                .file_name()
                .map_or_else(|| "output".into(), |n| n.to_string_lossy())
        );
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".part");
        // Like `File::create`: 0o666 less the umask (tempfile's own default is owner-only).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let mut tmp = builder.tempfile_in(dir).map_err(|e| {
            format!(
                "cannot create a temporary file in {}: {}",
                dir.display(),
                e.kind()
            )
        })?;
        write(tmp.as_file_mut())?;
        tmp.as_file_mut().flush().map_err(|e| e.to_string())?;
        tmp.as_file().sync_all().map_err(|e| e.to_string())?;
        Ok(PendingFile {
            tmp,
            target: target.to_path_buf(),
        })
    }

    /// Where the file goes.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Rename the finished file over the target.
    pub fn commit(self) -> Result<(), String> {
        self.tmp
            .persist(&self.target)
            .map(|_| ())
            .map_err(|e| e.error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_writes_and_drop_discards() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.bin");
        let pending =
            PendingFile::write(&target, |f| f.write_all(b"abc").map_err(|e| e.to_string()))
                .unwrap();
        assert!(!target.exists());
        pending.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");

        let other = dir.path().join("b.bin");
        drop(PendingFile::write(&other, |_| Ok(())).unwrap());
        assert!(PendingFile::write(&other, |_| Err("boom".into())).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(PendingFile::write(&dir.path().join("no/such/dir.bin"), |_| Ok(())).is_err());
    }
}
