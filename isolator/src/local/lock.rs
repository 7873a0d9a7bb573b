//! The per-volume lock: an exclusive `flock` on `root/.locks/<name>`, held for the whole of
//! one operation, so that `dvdcli` processes, the isolator in the agent and threads within one
//! process agree on a volume's records and mounts. Different volumes never contend.
//!
//! The lock file lives outside the volume directory so that it exists before `create` and
//! after `remove`. It is never deleted: removing it would let a process that already opened it
//! lock an orphaned file while another locks a new one.

use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use super::error::{io_err, LocalError};
use super::store::LOCK_DIR;
use crate::names::VolumeName;
use crate::sys::{flock, FlockOp};

/// Held while an operation on one volume runs; dropping it unlocks.
#[derive(Debug)]
pub struct VolumeLock {
    file: File,
}

impl Drop for VolumeLock {
    fn drop(&mut self) {
        // Closing the file would release it too; say so explicitly.
        let _ = flock(&self.file, FlockOp::Unlock);
    }
}

impl VolumeLock {
    /// Blocks until this process holds `volume`'s lock under `root` (which must exist).
    pub fn acquire(root: &Path, volume: &VolumeName) -> Result<VolumeLock, LocalError> {
        let dir = root.join(LOCK_DIR);
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(volume.as_str(), "create lock directory", dir)(e)),
        }
        let path = dir.join(volume.as_str());
        let file = crate::sys::open_lock_file(&path).map_err(io_err(
            volume.as_str(),
            "open lock file",
            &path,
        ))?;
        flock(&file, FlockOp::Exclusive).map_err(io_err(volume.as_str(), "lock", &path))?;
        Ok(VolumeLock { file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn one_holder_per_volume_and_volumes_do_not_contend() {
        let root = tempfile::tempdir().unwrap();
        let a = VolumeName::new("a").unwrap();
        let b = VolumeName::new("b").unwrap();
        let held = VolumeLock::acquire(root.path(), &a).unwrap();
        // Another volume locks at once while `a` is held.
        drop(VolumeLock::acquire(root.path(), &b).unwrap());

        let got = Arc::new(AtomicBool::new(false));
        let t = {
            let (root, a, got) = (root.path().to_path_buf(), a.clone(), got.clone());
            std::thread::spawn(move || {
                let _l = VolumeLock::acquire(&root, &a).unwrap();
                got.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!got.load(Ordering::SeqCst), "second holder got the lock");
        drop(held);
        t.join().unwrap();
        assert!(got.load(Ordering::SeqCst));
        assert!(root.path().join(".locks/a").is_file());
    }
}
