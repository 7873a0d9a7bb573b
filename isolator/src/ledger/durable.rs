//! The one way ledger files are written and removed: atomic and durable.
//!
//! Write: the new bytes go into a temp file of ours in the same directory (written, `fsync`ed),
//! which then takes the record's name in one `rename`; then the directory is `fsync`ed. A
//! reader sees the old record or the new one, never a mix, and after a crash the rename is
//! either on disk or not. Remove: the record's name goes away in one `rename` or `unlink`,
//! then the directory is `fsync`ed.
//!
//! Creating and freeing a file costs more than everything else in a write (a new inode on
//! tmpfs: ~4 µs of ~6 here), so the temp files are kept and reused (per directory, a few,
//! [`SPARES`]):
//! - over an existing record, the temp file is swapped in with
//!   `renameat2(RENAME_EXCHANGE)` — equally atomic — and the old record's file, now under the
//!   temp name, is kept as the next write's temp file;
//! - a removed record is renamed to a temp name and kept likewise (while there is room).
//!
//! Temp files are named `.tmp-<pid>-<n>`: listings skip them, and `recover` (which runs alone)
//! deletes every one it finds, whoever left it; a process whose kept temp file vanished that
//! way makes a new one.
//!
//! The directory handles are kept too (for the `fsync`s and the `*at` calls): the ledger's
//! directories are its own and are never removed or replaced while it is open.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Temp files start with this; listings skip them and recovery removes leftovers.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Temp files kept per directory for reuse.
pub const SPARES: usize = 4;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_name() -> String {
    format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// One directory records are written in: its handle and our kept temp files.
#[derive(Debug)]
struct Dir {
    fd: File,
    spares: Mutex<Vec<String>>,
    /// Cleared when the filesystem refuses `RENAME_EXCHANGE` (then: plain rename).
    exchange: AtomicBool,
}

impl Dir {
    fn raw(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }

    /// `openat` relative to this directory, never through a symlink.
    fn open(&self, name: &str, flags: libc::c_int) -> io::Result<File> {
        let c = c_name(name)?;
        // SAFETY: openat with a NUL-terminated name; the returned descriptor is ours alone.
        let fd = check(unsafe {
            libc::openat(
                self.raw(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        })?;
        // SAFETY: just opened, owned by nobody else.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    fn rename(&self, from: &str, to: &str, flags: libc::c_uint) -> io::Result<()> {
        crate::fault::io("durable.rename")?;
        let (from, to) = (c_name(from)?, c_name(to)?);
        // SAFETY: renameat2 with two NUL-terminated names relative to our directory.
        check(unsafe { libc::renameat2(self.raw(), from.as_ptr(), self.raw(), to.as_ptr(), flags) })
            .map(drop)
    }

    fn unlink(&self, name: &str) -> io::Result<()> {
        crate::fault::io("durable.unlink")?;
        let c = c_name(name)?;
        // SAFETY: unlinkat with a NUL-terminated name relative to our directory.
        check(unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) }).map(drop)
    }

    fn sync(&self) -> io::Result<()> {
        crate::fault::io("durable.dir_fsync")?;
        self.fd.sync_all()
    }

    fn take_spare(&self) -> Option<String> {
        self.spares.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Keeps `name` (a temp file of ours) for reuse, or deletes it when enough are kept.
    fn keep_spare(&self, name: String) {
        let mut spares = self.spares.lock().unwrap_or_else(|e| e.into_inner());
        if spares.len() < SPARES {
            spares.push(name);
        } else {
            drop(spares);
            let _ = self.unlink(&name);
        }
    }

    /// A temp file of ours holding exactly `bytes`, written and `fsync`ed.
    fn temp_with(&self, bytes: &[u8]) -> io::Result<String> {
        use std::io::Write;
        let reused = self.take_spare().and_then(|name| {
            // Gone (a recover deleted it) or unusable: make a new one instead.
            self.open(&name, libc::O_WRONLY)
                .ok()
                .map(|file| (name, file))
        });
        let (name, mut file) = match reused {
            Some(found) => found,
            None => {
                let name = temp_name();
                crate::fault::io("durable.create_temp")?;
                let file = self.open(&name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL)?;
                (name, file)
            }
        };
        let written = crate::fault::io("durable.write")
            .and_then(|()| file.write_all(bytes))
            .and_then(|()| file.set_len(bytes.len() as u64))
            .and_then(|()| crate::fault::io("durable.fsync"))
            .and_then(|()| file.sync_all());
        match written {
            Ok(()) => Ok(name),
            Err(e) => {
                let _ = self.unlink(&name);
                Err(e)
            }
        }
    }
}

/// Open handles on the directories records are written in, with their kept temp files. One
/// entry per directory (containers, one per driver).
#[derive(Debug, Default)]
pub struct DirHandles(Mutex<HashMap<PathBuf, Arc<Dir>>>);

impl DirHandles {
    fn get(&self, dir: &Path) -> io::Result<Arc<Dir>> {
        let lock = || self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = lock().get(dir) {
            return Ok(d.clone());
        }
        let fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(dir)?;
        let d = Arc::new(Dir {
            fd,
            spares: Mutex::default(),
            exchange: AtomicBool::new(true),
        });
        Ok(lock().entry(dir.to_path_buf()).or_insert(d).clone())
    }
}

/// Replaces `dir/name` with `bytes`, atomically and durably (mode 0600).
pub fn write_atomic(dirs: &DirHandles, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let d = dirs.get(dir)?;
    let temp = d.temp_with(bytes)?;
    crate::fault::point("durable.temp_written");
    let swapped = if d.exchange.load(Ordering::Relaxed) {
        match d.rename(&temp, name, libc::RENAME_EXCHANGE) {
            Ok(()) => Ok(true),
            // No record yet: a plain rename below.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                d.exchange.store(false, Ordering::Relaxed);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    } else {
        Ok(false)
    };
    let result = swapped.and_then(|swapped| {
        if swapped {
            // The old record is under the temp name now: the next write's temp file.
            d.keep_spare(temp.clone());
            Ok(())
        } else {
            d.rename(&temp, name, 0)
        }
    });
    if let Err(e) = result {
        let _ = d.unlink(&temp);
        return Err(e);
    }
    crate::fault::point("durable.renamed");
    d.sync()
}

/// Removes `dir/name` durably; a file that is already gone is fine.
pub fn remove_durable(dirs: &DirHandles, dir: &Path, name: &str) -> io::Result<()> {
    let d = dirs.get(dir)?;
    let keep = d.spares.lock().unwrap_or_else(|e| e.into_inner()).len() < SPARES;
    let gone = if keep {
        // Renamed out of the way and kept as a temp file: no inode freed now, none made later.
        let temp = temp_name();
        d.rename(name, &temp, libc::RENAME_NOREPLACE)
            .map(|()| d.keep_spare(temp))
    } else {
        d.unlink(name)
    };
    match gone {
        Ok(()) => d.sync(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Renames `dir/from` to `dir/to` durably (moving a corrupt record aside).
pub fn rename_durable(dirs: &DirHandles, dir: &Path, from: &str, to: &str) -> io::Result<()> {
    let d = dirs.get(dir)?;
    d.rename(from, to, 0)?;
    d.sync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn records(dir: &Path) -> Vec<String> {
        names(dir)
            .into_iter()
            .filter(|n| !n.starts_with(TEMP_PREFIX))
            .collect()
    }

    #[test]
    fn write_replaces_whole_file_and_leaves_only_kept_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = DirHandles::default();
        write_atomic(&dirs, dir.path(), "r.json", b"first version, longer").unwrap();
        write_atomic(&dirs, dir.path(), "r.json", b"second").unwrap();
        assert_eq!(fs::read(dir.path().join("r.json")).unwrap(), b"second");
        assert_eq!(records(dir.path()), vec!["r.json"]);
        // The first version's file was swapped out and kept: at most SPARES of them.
        let temps = names(dir.path()).len() - 1;
        assert!((1..=SPARES).contains(&temps), "{:?}", names(dir.path()));
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("r.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_reused_temp_file_never_leaks_its_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = DirHandles::default();
        for i in 0..20 {
            let long = format!("{i}: {}", "x".repeat(100 - i));
            write_atomic(&dirs, dir.path(), "a.json", long.as_bytes()).unwrap();
            let short = format!("{i}");
            write_atomic(&dirs, dir.path(), "b.json", short.as_bytes()).unwrap();
            assert_eq!(
                fs::read(dir.path().join("a.json")).unwrap(),
                long.as_bytes()
            );
            assert_eq!(
                fs::read(dir.path().join("b.json")).unwrap(),
                short.as_bytes()
            );
            if i % 3 == 0 {
                remove_durable(&dirs, dir.path(), "b.json").unwrap();
                assert_eq!(records(dir.path()), vec!["a.json"]);
            }
        }
        assert!(
            names(dir.path()).len() <= 2 + SPARES,
            "{:?}",
            names(dir.path())
        );
    }

    #[test]
    fn a_kept_temp_file_deleted_by_someone_else_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = DirHandles::default();
        write_atomic(&dirs, dir.path(), "r.json", b"one").unwrap();
        write_atomic(&dirs, dir.path(), "r.json", b"two").unwrap();
        // What recover does to every temp file it finds.
        for n in names(dir.path()) {
            if n.starts_with(TEMP_PREFIX) {
                fs::remove_file(dir.path().join(n)).unwrap();
            }
        }
        write_atomic(&dirs, dir.path(), "r.json", b"three").unwrap();
        assert_eq!(fs::read(dir.path().join("r.json")).unwrap(), b"three");
    }

    #[test]
    fn remove_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = DirHandles::default();
        write_atomic(&dirs, dir.path(), "r.json", b"x").unwrap();
        remove_durable(&dirs, dir.path(), "r.json").unwrap();
        remove_durable(&dirs, dir.path(), "r.json").unwrap();
        assert!(!dir.path().join("r.json").exists());
        // With no room for another kept file, a remove unlinks.
        for i in 0..(2 * SPARES) {
            let name = format!("r{i}.json");
            write_atomic(&dirs, dir.path(), &name, b"x").unwrap();
            remove_durable(&dirs, dir.path(), &name).unwrap();
        }
        assert!(records(dir.path()).is_empty());
        assert!(names(dir.path()).len() <= SPARES, "{:?}", names(dir.path()));
    }

    #[test]
    fn failed_write_cleans_its_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // A final name longer than NAME_MAX: neither exchange nor rename can make it.
        let name = "r".repeat(300);
        assert!(write_atomic(&DirHandles::default(), dir.path(), &name, b"x").is_err());
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }
}
