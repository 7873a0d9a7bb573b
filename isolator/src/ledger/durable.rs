//! The one way durable state is written and removed: atomic and durable. The ledger's records
//! go through it, and so do the `local` driver's state files (`meta.json`, `users.json`,
//! through `local::store::write_atomic`), each with its own fault points ([`Faults`]).
//!
//! Write: the new bytes go into a temp file of ours in the same directory (written, `fsync`ed),
//! which then takes the record's name in one `rename`; then the directory is `fsync`ed. A
//! reader sees the old record or the new one, never a mix, and after a crash the rename is
//! either on disk or not. Remove: the record's name goes away in one `rename` or `unlink`,
//! then the directory is `fsync`ed. On a tmpfs (the agent's `/var/run`) both `fsync`s are
//! left out: there they return at once having done nothing, and what a crash of the process
//! leaves is the same either way (a reboot empties the tmpfs). Their fault points stay.
//!
//! Creating and freeing a file costs more than everything else in a write (a new inode on
//! tmpfs: ~4 µs of ~6 here), so the temp files are kept and reused (per directory, a few,
//! [`SPARES`]) for as long as the ledger is open:
//! - over an existing record, the temp file is swapped in with
//!   `renameat2(RENAME_EXCHANGE)` — equally atomic — and the old record's file, now under the
//!   temp name, is kept as the next write's temp file;
//! - a removed record is renamed to a temp name and kept likewise (while there is room).
//!
//! The kept files are deleted when the ledger is dropped (`Drop` of its directory handles), so
//! a finished process (a `dvdcli exec`, a `dvdcli inspect`) leaves none; a long-lived handle
//! (the agent's) keeps at most [`SPARES`] per directory.
//!
//! # Temp file names
//!
//! `.tmp-<pid>-<start time>-<16 hex digits>`: the writer's identity (its pid and start time in
//! clock ticks since boot, as [`crate::holder::Holder`] reads them) and a number drawn from a
//! per-process random sequence. A name is created with `O_EXCL` (or renamed onto with
//! `RENAME_NOREPLACE`) and a name that exists already — a leftover of an earlier process, even
//! one that had our pid — is skipped for the next one: no leftover blocks a write. Listings skip
//! temp files. [`sweep`] deletes only the temp files of writers that are gone (the owner in the
//! name is dead; a name of the older `.tmp-<pid>-<n>` form when that pid does not run, or the
//! file is older than [`LEGACY_TEMP_AGE`]): never a live writer's file. A process whose kept
//! temp file vanished anyway makes a new one.
//!
//! # Errors
//!
//! Every failure says which step failed ([`DurableError::step`]): `open directory`,
//! `create temp file`, `write`, `fsync`, `rename`, `unlink`, `fsync directory`. Each step is
//! preceded by its I/O fault point (`durable.*`, see [`crate::fault::IO_POINTS`]) — for the
//! ledger's writes; the `local` driver's pass `local.state_write` before `write` only.
//!
//! The directory handles are kept too (for the `fsync`s and the `*at` calls): the ledger's
//! directories are its own and are never removed or replaced while it is open.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::holder::Holder;
use crate::sys::{DirHandle, Rename};

/// Temp files start with this; listings skip them and [`sweep`] removes the stale ones.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Temp files kept per directory for reuse.
pub const SPARES: usize = 4;

/// A temp file named the older way (`.tmp-<pid>-<n>`, no start time) whose pid runs is only
/// taken for stale after this long: no write takes minutes, and a live process of the older
/// build tolerates losing a kept temp file.
pub const LEGACY_TEMP_AGE: Duration = Duration::from_secs(600);

/// How many names a new temp file tries before giving up (each one exists already).
const NAME_ATTEMPTS: usize = 64;

/// A durable step that failed, and how.
#[derive(Debug)]
pub struct DurableError {
    /// What was being done: `open directory`, `create temp file`, `write`, `fsync`,
    /// `rename`, `unlink`, `fsync directory`.
    pub step: &'static str,
    pub error: io::Error,
}

impl DurableError {
    fn at(step: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |error| DurableError { step, error }
    }

    /// Whether the file the step was about did not exist.
    pub fn is_not_found(&self) -> bool {
        self.error.kind() == io::ErrorKind::NotFound
    }
}

type Result<T> = std::result::Result<T, DurableError>;

/// This process as temp file names say it: pid and start time (0 when `/proc` cannot say;
/// such names are only ever swept once the pid is gone). Read again after a `fork`.
fn writer() -> (u32, u64) {
    static WRITER: OnceLock<Mutex<(u32, u64)>> = OnceLock::new();
    let pid = std::process::id();
    let current = || (pid, Holder::current().map(|h| h.start_time).unwrap_or(0));
    let cell = WRITER.get_or_init(|| Mutex::new(current()));
    let mut w = cell.lock().unwrap_or_else(|e| e.into_inner());
    if w.0 != pid {
        *w = current();
    }
    *w
}

/// The next number of this process's random sequence (splitmix64 over a seed from
/// `getrandom`): unpredictable across processes, never repeated within one.
fn next_random() -> u64 {
    let state = random_state();
    mix(state
        .fetch_add(GOLDEN, Ordering::Relaxed)
        .wrapping_add(GOLDEN))
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn random_state() -> &'static AtomicU64 {
    static STATE: OnceLock<AtomicU64> = OnceLock::new();
    STATE.get_or_init(|| {
        let mut seed = [0u8; 8];
        let filled = crate::sys::fill_random(&mut seed);
        let mut s = u64::from_ne_bytes(seed);
        if filled.is_err() {
            // No entropy (never on Linux ≥ 3.17): still distinct per process and per moment.
            s ^= u64::from(std::process::id()) << 32 ^ now_nanos();
        }
        AtomicU64::new(s)
    })
}

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A fresh temp file name of this process (see the module's *Temp file names*).
fn temp_name() -> String {
    let (pid, start) = writer();
    format!("{TEMP_PREFIX}{pid}-{start}-{:016x}", next_random())
}

/// Who wrote a temp file, as its name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempOwner {
    /// `.tmp-<pid>-<start time>-<hex>`.
    Process(Holder),
    /// `.tmp-<pid>-<n>`, the older form (no start time).
    Pid(u32),
}

/// The writer a temp file's name gives; `None` for a name that is not a temp file's.
pub fn temp_owner(name: &str) -> Option<TempOwner> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let parts: Vec<&str> = rest.split('-').collect();
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts[..] {
        [pid, start, hex]
            if number(pid)
                && number(start)
                && !hex.is_empty()
                && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Some(TempOwner::Process(Holder {
                pid: pid.parse().ok()?,
                start_time: start.parse().ok()?,
            }))
        }
        [pid, n] if number(pid) && number(n) => Some(TempOwner::Pid(pid.parse().ok()?)),
        _ => None,
    }
}

/// Whether the temp file `name` (with metadata `meta`) belongs to a writer that is gone.
fn is_stale(name: &str, meta: &std::fs::Metadata) -> bool {
    match temp_owner(name) {
        Some(TempOwner::Process(holder)) => !holder.is_alive(),
        Some(TempOwner::Pid(pid)) => {
            let old = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age >= LEGACY_TEMP_AGE);
            old || matches!(Holder::of_pid(pid), Ok(None))
        }
        // Ours by prefix but not by form (hand-made): only when old.
        None => meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= LEGACY_TEMP_AGE),
    }
}

/// Deletes the temp files in `dir` whose writer is gone (never a live writer's: see the
/// module's *Temp file names*). Returns how many it deleted.
pub fn sweep(dir: &Path) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(DurableError::at("list directory")(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(DurableError::at("list directory"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| n.starts_with(TEMP_PREFIX)) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if !is_stale(name, &meta) {
            continue;
        }
        crate::fault::io("durable.unlink_temp").map_err(DurableError::at("unlink"))?;
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(DurableError::at("unlink")(e)),
        }
    }
    Ok(removed)
}

fn exists(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EEXIST)
}

/// One directory records are written in: its handle and our kept temp files.
#[derive(Debug)]
struct Dir {
    fd: DirHandle,
    spares: Mutex<Vec<String>>,
    /// Cleared when the filesystem refuses `RENAME_EXCHANGE` (then: plain rename).
    exchange: AtomicBool,
    /// On a tmpfs (`/var/run`, where the agent's checkpoint lives): `fsync` there returns at
    /// once having done nothing, so it is not made; its fault points stay where they are.
    volatile: bool,
    faults: Faults,
}

impl Drop for Dir {
    /// A finished ledger leaves no temp file behind.
    fn drop(&mut self) {
        let spares = std::mem::take(self.spares.get_mut().unwrap_or_else(|e| e.into_inner()));
        for name in spares {
            let _ = self.unlink(&name);
        }
    }
}

impl Dir {
    /// `openat` relative to this directory, never through a symlink.
    fn open(&self, name: &str, flags: libc::c_int) -> io::Result<File> {
        self.fd.open_file(OsStr::new(name), flags)
    }

    fn rename(&self, from: &str, to: &str, how: Rename) -> Result<()> {
        let rename = || {
            self.faults.io(Step::Rename)?;
            self.fd.rename(OsStr::new(from), OsStr::new(to), how)
        };
        rename().map_err(DurableError::at("rename"))
    }

    fn unlink(&self, name: &str) -> Result<()> {
        let unlink = || {
            // A temp file of ours and a record are two steps of the matrix: deleting a temp
            // file is best effort (what it leaves, the next sweep removes).
            if name.starts_with(TEMP_PREFIX) {
                self.faults.io(Step::UnlinkTemp)?;
            } else {
                self.faults.io(Step::Unlink)?;
            }
            self.fd.unlink(OsStr::new(name))
        };
        unlink().map_err(DurableError::at("unlink"))
    }

    fn sync(&self) -> Result<()> {
        self.faults
            .io(Step::DirFsync)
            .and_then(|()| {
                if self.volatile {
                    Ok(())
                } else {
                    self.fd.sync()
                }
            })
            .map_err(DurableError::at("fsync directory"))
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

    /// A new temp file under a fresh name: a name that exists already (a leftover of another
    /// process, whatever its pid) is skipped for the next.
    fn create_temp(&self) -> Result<(String, File)> {
        let mut last = None;
        for _ in 0..NAME_ATTEMPTS {
            let name = temp_name();
            let created = self
                .faults
                .io(Step::CreateTemp)
                .and_then(|()| self.open(&name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL));
            match created {
                Ok(file) => return Ok((name, file)),
                Err(e) if exists(&e) => last = Some(e),
                Err(e) => return Err(DurableError::at("create temp file")(e)),
            }
        }
        Err(DurableError::at("create temp file")(last.unwrap_or_else(
            || io::Error::from_raw_os_error(libc::EEXIST),
        )))
    }

    /// A temp file of ours holding exactly `bytes`, written and `fsync`ed.
    fn temp_with(&self, bytes: &[u8]) -> Result<String> {
        use std::io::Write;
        let reused = self.take_spare().and_then(|name| {
            match self.open(&name, libc::O_WRONLY) {
                Ok(file) => Some((name, file)),
                // Gone (swept): make a new one instead.
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                // Unusable (a removed record that was a symlink, say): not kept.
                Err(_) => {
                    let _ = self.unlink(&name);
                    None
                }
            }
        });
        let (name, mut file) = match reused {
            Some(found) => found,
            None => self.create_temp()?,
        };
        let written = self
            .faults
            .io(Step::Write)
            .and_then(|()| file.write_all(bytes))
            // Overwritten in place, then cut to length: emptying it first (`O_TRUNC`) would
            // free its page and make the write allocate and zero another.
            .and_then(|()| file.set_len(bytes.len() as u64))
            .map_err(DurableError::at("write"))
            .and_then(|()| {
                self.faults
                    .io(Step::Fsync)
                    .and_then(|()| {
                        if self.volatile {
                            Ok(())
                        } else {
                            file.sync_all()
                        }
                    })
                    .map_err(DurableError::at("fsync"))
            });
        match written {
            Ok(()) => Ok(name),
            Err(e) => {
                let _ = self.unlink(&name);
                Err(e)
            }
        }
    }

    /// Renames the record `name` to a fresh temp name (kept for reuse); a temp name that exists
    /// already is skipped for the next.
    fn rename_to_spare(&self, name: &str) -> Result<()> {
        let mut last = None;
        for _ in 0..NAME_ATTEMPTS {
            let temp = temp_name();
            match self.rename(name, &temp, Rename::NoReplace) {
                Ok(()) => {
                    self.keep_spare(temp);
                    return Ok(());
                }
                Err(e) if exists(&e.error) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        // Every name taken (never, in practice): remove it the plain way.
        drop(last);
        self.unlink(name)
    }
}

/// Whose durable writes these are, which decides the fault points their steps pass: the
/// ledger's records pass the `durable.*` I/O points and crash points; the `local` driver's
/// state files (`meta.json`, `users.json`) pass one I/O point, `local.state_write`, right
/// before the bytes are written. (Each matrix knows its points by these names.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Faults {
    #[default]
    Ledger,
    LocalState,
    /// A CSI plugin's records on this host (`volume.json`, `users.json`): `csi.state_write`.
    #[cfg_attr(not(feature = "csi"), allow(dead_code))]
    CsiState,
}

/// A durable step that may have an I/O fault point.
#[derive(Debug, Clone, Copy)]
enum Step {
    CreateTemp,
    Write,
    Fsync,
    Rename,
    Unlink,
    UnlinkTemp,
    DirFsync,
}

/// A place in [`write_atomic`] that may have a crash point.
#[derive(Debug, Clone, Copy)]
enum Crash {
    TempWritten,
    Renamed,
}

impl Faults {
    /// The I/O fault point of `step`, if these writes have one there.
    fn io(self, step: Step) -> io::Result<()> {
        match (self, step) {
            (Faults::Ledger, Step::CreateTemp) => crate::fault::io("durable.create_temp"),
            (Faults::Ledger, Step::Write) => crate::fault::io("durable.write"),
            (Faults::Ledger, Step::Fsync) => crate::fault::io("durable.fsync"),
            (Faults::Ledger, Step::Rename) => crate::fault::io("durable.rename"),
            (Faults::Ledger, Step::Unlink) => crate::fault::io("durable.unlink"),
            (Faults::Ledger, Step::UnlinkTemp) => crate::fault::io("durable.unlink_temp"),
            (Faults::Ledger, Step::DirFsync) => crate::fault::io("durable.dir_fsync"),
            (Faults::LocalState, Step::Write) => crate::fault::io("local.state_write"),
            (Faults::LocalState, _) => Ok(()),
            (Faults::CsiState, Step::Write) => crate::fault::io("csi.state_write"),
            (Faults::CsiState, _) => Ok(()),
        }
    }

    /// The crash point at `at`, if these writes have one there.
    fn crash_point(self, at: Crash) {
        match (self, at) {
            (Faults::Ledger, Crash::TempWritten) => crate::fault::point("durable.temp_written"),
            (Faults::Ledger, Crash::Renamed) => crate::fault::point("durable.renamed"),
            (Faults::LocalState | Faults::CsiState, _) => {}
        }
    }
}

/// Open handles on the directories records are written in, with their kept temp files. One
/// entry per directory (containers, one per driver). Dropping it deletes the kept temp files.
#[derive(Debug, Default)]
pub struct DirHandles {
    dirs: Mutex<HashMap<PathBuf, Arc<Dir>>>,
    faults: Faults,
}

impl DirHandles {
    /// Handles whose writes pass the fault points of `faults` (`default()`: the ledger's).
    pub fn with_faults(faults: Faults) -> Self {
        Self {
            dirs: Mutex::default(),
            faults,
        }
    }

    fn get(&self, dir: &Path) -> Result<Arc<Dir>> {
        let lock = || self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = lock().get(dir) {
            return Ok(d.clone());
        }
        let fd = DirHandle::open(dir).map_err(DurableError::at("open directory"))?;
        let d = Arc::new(Dir {
            volatile: fd.on_tmpfs(),
            fd,
            spares: Mutex::default(),
            exchange: AtomicBool::new(true),
            faults: self.faults,
        });
        Ok(lock().entry(dir.to_path_buf()).or_insert(d).clone())
    }
}

/// Replaces `dir/name` with `bytes`, atomically and durably (mode 0600).
pub fn write_atomic(dirs: &DirHandles, dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let d = dirs.get(dir)?;
    let temp = d.temp_with(bytes)?;
    d.faults.crash_point(Crash::TempWritten);
    let swapped = if d.exchange.load(Ordering::Relaxed) {
        match d.rename(&temp, name, Rename::Exchange) {
            Ok(()) => Ok(true),
            // No record yet: a plain rename below.
            Err(e) if e.error.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) if e.error.raw_os_error() == Some(libc::EINVAL) => {
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
            d.rename(&temp, name, Rename::Replace)
        }
    });
    if let Err(e) = result {
        let _ = d.unlink(&temp);
        return Err(e);
    }
    d.faults.crash_point(Crash::Renamed);
    d.sync()
}

/// Removes `dir/name` durably; a file that is already gone is fine.
pub fn remove_durable(dirs: &DirHandles, dir: &Path, name: &str) -> Result<()> {
    let d = dirs.get(dir)?;
    let keep = d.spares.lock().unwrap_or_else(|e| e.into_inner()).len() < SPARES;
    let gone = if keep {
        // Renamed out of the way and kept as a temp file: no inode freed now, none made later.
        d.rename_to_spare(name)
    } else {
        d.unlink(name)
    };
    match gone {
        Ok(()) => d.sync(),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Renames `dir/from` to `dir/to` durably (moving a corrupt record aside); unless `replace`,
/// never over an existing `to` (the error is then `EEXIST`).
pub fn rename_durable(
    dirs: &DirHandles,
    dir: &Path,
    from: &str,
    to: &str,
    replace: bool,
) -> Result<()> {
    let d = dirs.get(dir)?;
    let how = if replace {
        Rename::Replace
    } else {
        Rename::NoReplace
    };
    d.rename(from, to, how)?;
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
    fn failed_write_cleans_its_temp_file_and_names_the_step() {
        let dir = tempfile::tempdir().unwrap();
        // A final name longer than NAME_MAX: neither exchange nor rename can make it.
        let name = "r".repeat(300);
        let err = write_atomic(&DirHandles::default(), dir.path(), &name, b"x").unwrap_err();
        assert_eq!(err.step, "rename");
        assert_eq!(err.error.raw_os_error(), Some(libc::ENAMETOOLONG));
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        let err = write_atomic(
            &DirHandles::default(),
            &dir.path().join("missing"),
            "r.json",
            b"x",
        )
        .unwrap_err();
        assert_eq!(err.step, "open directory");
    }

    /// Writes, rewrites and removes a few records, as prepare + cleanup do.
    fn churn(dirs: &DirHandles, dir: &Path) {
        for i in 0..10 {
            let name = format!("r{}.json", i % 3);
            write_atomic(dirs, dir, &name, format!("{i}").as_bytes()).unwrap();
            write_atomic(dirs, dir, &name, format!("{i}+").as_bytes()).unwrap();
            if i % 2 == 0 {
                remove_durable(dirs, dir, &name).unwrap();
            }
        }
    }

    #[test]
    fn a_dropped_ledger_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = DirHandles::default();
        churn(&dirs, dir.path());
        assert!(names(dir.path()).len() > records(dir.path()).len());
        drop(dirs);
        assert_eq!(names(dir.path()), records(dir.path()));
    }

    #[test]
    fn leftovers_of_an_earlier_process_with_our_pid_never_block_a_write() {
        // pid_max is small: an earlier process had our pid and left its temp files (the older
        // `.tmp-<pid>-<n>` names: every one this process's old counter would have picked).
        let dir = tempfile::tempdir().unwrap();
        let pid = std::process::id();
        for n in 0..256 {
            fs::write(dir.path().join(format!("{TEMP_PREFIX}{pid}-{n}")), "{").unwrap();
        }
        let dirs = DirHandles::default();
        churn(&dirs, dir.path());
        assert_eq!(fs::read(dir.path().join("r0.json")).unwrap(), b"9+");
        drop(dirs);
        assert_eq!(names(dir.path()).len(), records(dir.path()).len() + 256);
    }

    #[test]
    fn every_name_the_next_writer_could_pick_but_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        // The names this process draws next (nothing else draws in this test process).
        let state = random_state().load(Ordering::Relaxed);
        let (pid, start) = writer();
        for i in 1..NAME_ATTEMPTS as u64 {
            let planted = format!(
                "{TEMP_PREFIX}{pid}-{start}-{:016x}",
                mix(state.wrapping_add(GOLDEN.wrapping_mul(i)))
            );
            fs::write(dir.path().join(planted), "{").unwrap();
        }
        let dirs = DirHandles::default();
        write_atomic(&dirs, dir.path(), "r.json", b"x").unwrap();
        assert_eq!(fs::read(dir.path().join("r.json")).unwrap(), b"x");
        // A removal renames to a fresh name too: the taken ones are skipped alike.
        remove_durable(&dirs, dir.path(), "r.json").unwrap();
        assert!(records(dir.path()).is_empty());
    }

    #[test]
    fn temp_names_say_their_writer() {
        let me = Holder::current().unwrap();
        let name = temp_name();
        assert_eq!(temp_owner(&name), Some(TempOwner::Process(me)), "{name}");
        assert_eq!(temp_owner(".tmp-12-3"), Some(TempOwner::Pid(12)));
        for other in [
            ".tmp-",
            ".tmp-x-1",
            ".tmp-1-2-zz",
            ".tmp-1-2-",
            "r.json",
            ".tmp-1-2-3-4",
        ] {
            assert_eq!(temp_owner(other), None, "{other}");
        }
    }

    #[test]
    fn a_sweep_removes_only_the_temp_files_of_writers_that_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = Holder::of_pid(child.id()).unwrap().unwrap();
        child.wait().unwrap();
        let me = Holder::current().unwrap();
        let old = std::time::SystemTime::now() - LEGACY_TEMP_AGE - Duration::from_secs(1);
        let plant = |name: String, modified: Option<std::time::SystemTime>| {
            let file = fs::File::create(dir.path().join(&name)).unwrap();
            if let Some(t) = modified {
                file.set_modified(t).unwrap();
            }
            name
        };
        let gone = [
            plant(format!(".tmp-{}-{}-00ab", dead.pid, dead.start_time), None),
            // Our pid, but another start time: an earlier process.
            plant(format!(".tmp-{}-{}-00ab", me.pid, me.start_time + 1), None),
            plant(format!(".tmp-{}-7", dead.pid), None),
            plant(format!(".tmp-{}-8", me.pid), Some(old)),
        ];
        let kept = [
            plant(format!(".tmp-{}-{}-00cd", me.pid, me.start_time), Some(old)),
            plant(format!(".tmp-{}-9", me.pid), None),
            plant(".tmp-handmade".into(), None),
            plant("r.json".into(), Some(old)),
        ];
        assert_eq!(sweep(dir.path()).unwrap(), gone.len());
        let mut kept = kept.to_vec();
        kept.sort();
        assert_eq!(names(dir.path()), kept);
    }
}
