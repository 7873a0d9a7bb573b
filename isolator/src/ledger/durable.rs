//! The one way ledger files are written and removed: atomic and durable.
//!
//! Write: a fresh temp file in the same directory, write, `fsync`, `rename` over the final name,
//! `fsync` the directory. A reader sees the old record or the new one, never a mix, and after a
//! crash the rename is either on disk or not. Remove: `unlink`, `fsync` the directory.
//!
//! The directory `fsync`s go through [`DirHandles`]: each directory is opened once and its
//! handle kept, instead of an `open` + `fsync` + `close` of the directory per write.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Temp files start with this; listings skip them and recovery removes leftovers.
pub const TEMP_PREFIX: &str = ".tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Open handles on the directories records are written in, kept for `fsync`. The ledger's
/// directories are its own and are never removed or replaced while it is open, so a kept
/// handle is the directory the path names. One entry per directory (containers, one per driver).
#[derive(Debug, Default)]
pub struct DirHandles(Mutex<HashMap<PathBuf, Arc<File>>>);

impl DirHandles {
    /// `fsync` on a directory, so a rename or unlink in it survives a crash.
    pub fn sync(&self, dir: &Path) -> io::Result<()> {
        let lock = || self.0.lock().unwrap_or_else(|e| e.into_inner());
        let kept = lock().get(dir).cloned();
        let handle = match kept {
            Some(handle) => handle,
            None => {
                let handle = Arc::new(File::open(dir)?);
                lock().insert(dir.to_path_buf(), handle.clone());
                handle
            }
        };
        handle.sync_all()
    }
}

/// Replaces `dir/name` with `bytes`, atomically and durably (mode 0600).
pub fn write_atomic(dirs: &DirHandles, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let result = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            crate::fault::point("durable.temp_written");
            fs::rename(&tmp, dir.join(name))
        })
        .and_then(|()| {
            crate::fault::point("durable.renamed");
            dirs.sync(dir)
        });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes `dir/name` durably; a file that is already gone is fine.
pub fn remove_durable(dirs: &DirHandles, dir: &Path, name: &str) -> io::Result<()> {
    match fs::remove_file(dir.join(name)) {
        Ok(()) => dirs.sync(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Renames `dir/from` to `dir/to` durably (moving a corrupt record aside).
pub fn rename_durable(dirs: &DirHandles, dir: &Path, from: &str, to: &str) -> io::Result<()> {
    fs::rename(dir.join(from), dir.join(to))?;
    dirs.sync(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(
            &DirHandles::default(),
            dir.path(),
            "r.json",
            b"first version, longer",
        )
        .unwrap();
        write_atomic(&DirHandles::default(), dir.path(), "r.json", b"second").unwrap();
        assert_eq!(fs::read(dir.path().join("r.json")).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["r.json"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("r.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn remove_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(&DirHandles::default(), dir.path(), "r.json", b"x").unwrap();
        remove_durable(&DirHandles::default(), dir.path(), "r.json").unwrap();
        remove_durable(&DirHandles::default(), dir.path(), "r.json").unwrap();
        assert!(!dir.path().join("r.json").exists());
    }

    #[test]
    fn failed_write_cleans_its_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // The final name is a non-empty directory: rename fails.
        fs::create_dir_all(dir.path().join("r.json/x")).unwrap();
        assert!(write_atomic(&DirHandles::default(), dir.path(), "r.json", b"x").is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
