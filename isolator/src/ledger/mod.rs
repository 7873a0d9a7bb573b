//! The ledger: the isolator's durable record of which containers hold which volumes, and of
//! every driver mount it made, so a crash at any point can be recovered without leaking a
//! mount, losing a reference, or unmounting under a live task (SPEC §5).
//!
//! # Layout
//!
//! ```text
//! <checkpoint dir>/                    0700, default /var/run/mesos/isolators/dvdi (a tmpfs:
//!                                      mounts do not survive a reboot, neither should this)
//!   containers/<stem>.json             one ContainerRecord per container
//!   volumes/<driver>/<stem>.json       one VolumeRecord per volume with a mount, holders or a
//!                                      failed unmount (deleted when it has none of them)
//!   locks/ledger.lock                  flock: shared by every operation, exclusive for recover
//!   locks/ledger.turnstile             flock passed by every operation, held by a waiting
//!                                      recover so other processes' operations cannot starve it
//!   locks/keys.lock                    one byte-range lock (F_OFD_SETLKW) per container and
//!                                      per volume, at the key's hashed slot (see [`locks`])
//!   **/<file>.corrupt                  unreadable records moved aside (by recover, by the
//!                                      reap every `dvdcli exec`/`inspect` runs, by cleanup)
//!   **/.tmp-<pid>-<start>-<hex>        a write in progress, or a temp file kept for reuse by a
//!                                      live ledger (at most 4 per directory); deleted when the
//!                                      ledger is dropped; a dead writer's are swept by recover,
//!                                      `dvdcli recover`, `exec` and `inspect` (see [`durable`])
//! ```
//!
//! `<stem>` is the container id or volume name encoded reversibly (`encode`): bytes of
//! `[A-Za-z0-9_.-]` kept, `%XX` for any other byte and for a leading `.`; a name whose plain
//! form would not fit `NAME_MAX` with our suffixes becomes `<prefix>~<sha256>`. Every record
//! holds the full id/name, and a reader checks it encodes to the file's name (so a hand-copied
//! or colliding file is caught as corrupt).
//!
//! # Records (JSON, `"format": 1`)
//!
//! A **container record**: `container_id`; `state` `preparing` → `prepared` → `cleaning` (an
//! agent container's record is only ever written `prepared`, see *Write order*);
//! `volumes`: per volume its driver, name, container path, host bind target, read-only flag
//! and, once joined, the mount id and mount point it joined; optionally `holder {pid,
//! start_time}` for a `dvdcli exec` container (such a container is alive while that process
//! is, whatever the agent's lists say).
//!
//! A **volume record**: `driver`, `name`; `mount` {`id`, `state` `mounting`/`mounted`/
//! `unmounting`, `mountpoint`} — the one driver Mount of the volume, however many containers
//! share it, matched by one Unmount with the same id after the last holder; `holders` (set of
//! container ids); `failed_unmounts` [{`mount_id`, `mountpoint`, `last_error`, `attempts`}].
//! A failed Unmount does not stay as the volume's state: it moves to `failed_unmounts`, the
//! volume keeps no holder for it, and the next prepare can mount anew at once (MESOS-10126).
//! Every Unmount in that list is retried, with its own id, by the next `recover` and by the
//! next `prepare` of that volume. `inspect` shows it as `unmount_failed`.
//!
//! # Reference counts are derived
//!
//! A container holds a volume when its record lists the volume and is not `cleaning`. The
//! `holders` set in the volume record is a cache of exactly that, kept under the volume lock by
//! `prepare`/`cleanup` and rebuilt from the container records by `recover`; there is no
//! counter that could drift. While an agent container's prepare runs (see *Write order*), the
//! holder entry its join wrote is its only trace; `recover` — which follows any crash of the
//! agent, and runs alone — drops a holder no container record explains, and unmounts what it
//! alone held. Over-counting is the only other possible error after a crash (a `dvdcli exec`
//! container whose intent names a volume it never reached), and it only delays an unmount
//! until that container's cleanup — the safe direction.
//!
//! # Write order
//!
//! 1. prepare: per volume, under its lock, the volume record with the container as a holder
//!    and the new mount id in state `mounting` *before* Mount (the container's intent, on disk
//!    before any driver call that could mount), and `mounted` after; a shared volume only
//!    gets the new holder; finally the container record `prepared` (with the mount ids, so a
//!    lost volume record can be rebuilt). A failed prepare releases what it joined, like
//!    cleanup. A `dvdcli exec` container (one with a `holder`) also writes its record
//!    (`preparing`) first: no agent recover follows its crash, and the next `dvdcli` reaps it
//!    through that record; its failed prepare marks it `cleaning` before releasing.
//! 2. cleanup: the container's references are dropped first, durably — an agent container's
//!    record is deleted, a `dvdcli exec` container's marked `cleaning` (and deleted last);
//!    then per volume the holder is removed, and if it was the last one: `unmounting` before
//!    Unmount, then the mount is dropped, or, when Unmount fails, moved to `failed_unmounts`.
//!
//! An agent container thus costs four record writes and two removals per prepare+cleanup of
//! a volume it mounts alone (the intent-first order cost six and two).
//!
//! # Locks
//!
//! See `locks`: ledger (shared/exclusive), then one container, then at most one volume at a
//! time; each is an in-process lock plus a lock on a file (`flock` for the ledger, a byte-range
//! lock for a key), so threads and processes (`dvdcli exec` next to the agent) agree. A driver call holds only its own volume's lock.
//!
//! Every write is atomic and durable (`durable`); a failed step names itself and the file
//! (`checkpoint PATH: fsync: …`). A record that cannot be read (empty, truncated, corrupt,
//! foreign format, wrong file, a symlink) is moved aside as `<file>.corrupt` by `recover` and
//! handled conservatively; it never aborts recovery. Where no agent recover follows (a host
//! running only `dvdcli exec`), the reap every `dvdcli exec`/`inspect` runs first — and
//! `dvdcli recover` — repair what they can attribute: a damaged volume record is rebuilt from
//! the container records, a damaged container record whose file name is the id of a
//! `dvdcli exec` that is gone is reaped (see `lifecycle/repair.rs`).
//!
//! # Trust
//!
//! The ledger decides what root unmounts, so only root may have written it. `open` makes the
//! directory and its `containers`, `volumes` and `locks` subdirectories 0700 (tightening them
//! if they exist) and refuses any of them that is a symlink or owned by another user. Every
//! read refuses a record that is a symlink, not a regular file, writable by group or others,
//! or owned by another user than the one running (root, for the agent) — and the same of the
//! directory holding it — with [`LedgerError::Untrusted`] naming the path. `recover` treats
//! such a record exactly like a corrupt one: moved aside, never trusted, never fatal.

pub(crate) mod durable;
pub(crate) mod encode;
pub(crate) mod locks;
pub mod records;

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::container_id::ContainerId;
use crate::names::{DriverName, VolumeName};
use crate::sys::DirHandle;
pub use locks::{KeyGuard, KeyKind, LedgerGuard, LockTable};
pub use records::{
    ContainerRecord, ContainerState, FailedUnmount, MountRecord, MountState, VolumeKey,
    VolumeRecord, VolumeState, VolumeUse, FORMAT,
};

/// A ledger operation that failed; names the file.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// `step`: what was being done (`read`, `rename`, `fsync`, …); `error` is said in the
    /// message (not as a source, so a chain shows it once).
    #[error("checkpoint {}: {step}: {error}", .path.display())]
    Io {
        path: PathBuf,
        step: &'static str,
        error: io::Error,
    },
    #[error("checkpoint record {} is unreadable: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// A record or ledger directory someone else could have written: never trusted.
    #[error("checkpoint {} is not trusted: {reason}", .path.display())]
    Untrusted { path: PathBuf, reason: String },
}

impl LedgerError {
    fn io(path: impl Into<PathBuf>, step: &'static str) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |error| LedgerError::Io { path, step, error }
    }

    /// A durable step on `path` that failed, named by the step.
    fn durable(path: impl Into<PathBuf>) -> impl FnOnce(durable::DurableError) -> Self {
        let path = path.into();
        move |e| LedgerError::Io {
            path,
            step: e.step,
            error: e.error,
        }
    }

    /// Whether the file or directory the error is about does not exist.
    fn is_not_found(&self) -> bool {
        matches!(self, LedgerError::Io { error, .. } if error.kind() == io::ErrorKind::NotFound)
    }
}

/// One record file found by a listing: its stem and what reading it gave.
#[derive(Debug)]
pub struct Listed<T> {
    pub path: PathBuf,
    pub stem: String,
    pub record: Result<T, LedgerError>,
}

/// A volume record file found by a listing, with the key its file name gives (when the name is
/// in plain form).
#[derive(Debug)]
pub struct ListedVolume {
    pub driver: DriverName,
    pub name: Option<VolumeName>,
    pub entry: Listed<VolumeRecord>,
}

const JSON: &str = ".json";

/// The longest file name (Linux `NAME_MAX`).
const NAME_MAX: usize = 255;

/// The checkpoint directory and its locks.
#[derive(Debug)]
pub struct Ledger {
    root: PathBuf,
    locks: LockTable,
    dirs: durable::DirHandles,
}

fn mkdir_private(path: &Path) -> Result<(), LedgerError> {
    crate::fault::io("ledger.mkdir")
        .and_then(|()| {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
        })
        .map_err(LedgerError::io(path, "mkdir"))
}

/// Why a ledger file or directory with metadata `meta` cannot be trusted, if it cannot: it is
/// writable by group or others, or owned by another user than the one running.
fn distrust(meta: &fs::Metadata) -> Option<String> {
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(format!(
            "it is writable by group or others (mode {mode:04o})"
        ));
    }
    foreign_owner(meta)
}

/// Why `meta`'s owner is not the user running the isolator (root, for the agent), if not.
fn foreign_owner(meta: &fs::Metadata) -> Option<String> {
    static EUID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let euid = *EUID.get_or_init(|| nix::unistd::geteuid().as_raw());
    if meta.uid() == euid {
        return None;
    }
    let who = if euid == 0 {
        "root".to_owned()
    } else {
        format!("uid {euid}")
    };
    Some(format!(
        "it is owned by uid {}, not by {who}, who runs the isolator",
        meta.uid()
    ))
}

fn untrusted(path: &Path, reason: String) -> LedgerError {
    LedgerError::Untrusted {
        path: path.into(),
        reason,
    }
}

/// Creates `path` 0700 if missing; refuses it if it is not a directory of ours (`follow`:
/// whether a symlink to one is fine — for the configured root only); tightens its mode.
fn private_dir(path: &Path, follow: bool) -> Result<(), LedgerError> {
    mkdir_private(path)?;
    let meta = if follow {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    }
    .map_err(LedgerError::io(path, "stat"))?;
    if !meta.is_dir() {
        return Err(untrusted(path, "it is not a directory (a symlink?)".into()));
    }
    if let Some(reason) = foreign_owner(&meta) {
        return Err(untrusted(path, reason));
    }
    // It holds which volumes are mounted where: not for other users' eyes or hands.
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(LedgerError::io(path, "chmod"))?;
    }
    Ok(())
}

/// The directory holding a record must be one only we can write.
fn check_dir_trusted(dir: &Path) -> Result<(), LedgerError> {
    let meta = fs::symlink_metadata(dir).map_err(LedgerError::io(dir, "stat"))?;
    if !meta.is_dir() {
        return Err(untrusted(dir, "it is not a directory (a symlink?)".into()));
    }
    match distrust(&meta) {
        Some(reason) => Err(untrusted(dir, reason)),
        None => Ok(()),
    }
}

impl Ledger {
    /// Opens (creating, mode 0700) the checkpoint directory at `root` and its subdirectories;
    /// refuses them when another user owns them (see the module's *Trust*).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, LedgerError> {
        let root = root.into();
        private_dir(&root, true)?;
        for sub in ["containers", "volumes", "locks"] {
            private_dir(&root.join(sub), false)?;
        }
        let locks_dir = root.join("locks");
        let locks =
            LockTable::open(&locks_dir).map_err(LedgerError::io(&locks_dir, "open lock files"))?;
        Ok(Self {
            root,
            locks,
            dirs: durable::DirHandles::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    fn volumes_dir(&self, driver: &DriverName) -> PathBuf {
        self.root.join("volumes").join(driver.as_str())
    }

    /// The record file of container `id`.
    pub fn container_path(&self, id: &ContainerId) -> PathBuf {
        self.record_path(&["containers"], id.as_str())
    }

    /// The record file of volume `key`.
    pub fn volume_path(&self, key: &VolumeKey) -> PathBuf {
        self.volume_path_of(&key.driver, &key.name)
    }

    fn volume_path_of(&self, driver: &DriverName, name: &VolumeName) -> PathBuf {
        self.record_path(&["volumes", driver.as_str()], name.as_str())
    }

    /// `root/dirs…/<encoded name>.json`, built in one buffer: every prepare and cleanup
    /// names a few records, and `join` after `join` allocated once per component.
    fn record_path(&self, dirs: &[&str], name: &str) -> PathBuf {
        let stem = encode::encode(name);
        let root = self.root.as_os_str();
        let len = root.len() + dirs.iter().map(|d| d.len() + 1).sum::<usize>();
        let mut path = std::ffi::OsString::with_capacity(len + stem.len() + JSON.len() + 2);
        path.push(root);
        for dir in dirs.iter().chain([&stem.as_str()]) {
            if !path.as_encoded_bytes().ends_with(b"/") {
                path.push("/");
            }
            path.push(dir);
        }
        path.push(JSON);
        PathBuf::from(path)
    }

    // ---- locks ----

    /// Every operation but `recover` holds this (shared).
    pub fn lock_shared(&self) -> Result<LedgerGuard<'_>, LedgerError> {
        self.locks
            .shared()
            .map_err(|e| LedgerError::io(self.root.join("locks/ledger.lock"), "lock")(e))
    }

    /// `recover` holds this (exclusive).
    pub fn lock_exclusive(&self) -> Result<LedgerGuard<'_>, LedgerError> {
        self.locks
            .exclusive()
            .map_err(|e| LedgerError::io(self.root.join("locks/ledger.lock"), "lock")(e))
    }

    pub fn lock_container(&self, id: &ContainerId) -> Result<KeyGuard<'_>, LedgerError> {
        self.locks
            .key(locks::slot(KeyKind::Container, &[id.as_str()]))
            .map_err(|e| LedgerError::io(self.root.join("locks/keys.lock"), "lock")(e))
    }

    pub fn lock_volume(&self, key: &VolumeKey) -> Result<KeyGuard<'_>, LedgerError> {
        self.locks
            .key(locks::slot(
                KeyKind::Volume,
                &[key.driver.as_str(), key.name.as_str()],
            ))
            .map_err(|e| LedgerError::io(self.root.join("locks/keys.lock"), "lock")(e))
    }

    // ---- container records ----

    /// `Ok(None)` when there is no record; `Err(Corrupt)` when it cannot be read.
    pub fn read_container(&self, id: &ContainerId) -> Result<Option<ContainerRecord>, LedgerError> {
        let path = self.container_path(id);
        let Some(record) = read_record::<ContainerRecord>(&path)? else {
            return Ok(None);
        };
        check_container(&path, record).map(Some)
    }

    pub fn write_container(&self, record: &ContainerRecord) -> Result<(), LedgerError> {
        write_record(
            &self.dirs,
            &self.container_path(&record.container_id),
            record,
        )
    }

    pub fn remove_container(&self, id: &ContainerId) -> Result<(), LedgerError> {
        remove_record(&self.dirs, &self.container_path(id))
    }

    /// Every container record file, read.
    pub fn list_containers(&self) -> Result<Vec<Listed<ContainerRecord>>, LedgerError> {
        let dir = self.containers_dir();
        let stems = list_stems(&dir)?;
        // Checked once for all its records (an untrusted one: per record, which says so).
        let opened = listing_dir(&dir);
        let listed = stems
            .into_iter()
            .map(|stem| {
                let path = dir.join(format!("{stem}{JSON}"));
                let record = read_record_in::<ContainerRecord>(&path, opened.as_ref()).and_then(
                    |r| match r {
                        Some(r) => check_container(&path, r),
                        None => Err(LedgerError::Corrupt {
                            path: path.clone(),
                            reason: "vanished while listed".into(),
                        }),
                    },
                );
                Listed { path, stem, record }
            })
            .collect();
        Ok(sorted_by_stem(listed))
    }

    // ---- volume records ----

    pub fn read_volume(&self, key: &VolumeKey) -> Result<Option<VolumeRecord>, LedgerError> {
        let path = self.volume_path(key);
        let Some(record) = read_record::<VolumeRecord>(&path)? else {
            return Ok(None);
        };
        check_volume(&path, record).map(Some)
    }

    /// Writes `record`, or deletes the file when the record is idle.
    pub fn write_volume(&self, record: &VolumeRecord) -> Result<(), LedgerError> {
        let path = self.volume_path_of(&record.driver, &record.name);
        if record.is_idle() {
            return remove_record(&self.dirs, &path);
        }
        // The driver's directory exists but for its first volume: make it only then. Either
        // way it must be one only we can write (see *Trust*).
        let dir = self.volumes_dir(&record.driver);
        match check_dir_trusted(&dir) {
            Err(e) if e.is_not_found() => mkdir_private(&dir)?,
            other => other?,
        }
        write_record(&self.dirs, &path, record)
    }

    /// Every volume record file, read.
    pub fn list_volumes(&self) -> Result<Vec<ListedVolume>, LedgerError> {
        let top = self.root.join("volumes");
        let mut out = Vec::new();
        let entries = fs::read_dir(&top).map_err(LedgerError::io(&top, "list directory"))?;
        let mut drivers = Vec::new();
        for entry in entries {
            let entry = entry.map_err(LedgerError::io(&top, "list directory"))?;
            let name = entry.file_name();
            // A directory that is not a valid driver name is not ours: skip it.
            if let Some(driver) = name.to_str().and_then(|n| DriverName::new(n).ok()) {
                if entry.path().is_dir() {
                    drivers.push(driver);
                }
            }
        }
        drivers.sort();
        for driver in drivers {
            let dir = self.volumes_dir(&driver);
            let stems = list_stems(&dir)?;
            let opened = listing_dir(&dir);
            let mut read = Vec::with_capacity(stems.len());
            for stem in stems {
                let path = dir.join(format!("{stem}{JSON}"));
                let name = encode::decode(&stem).and_then(|n| VolumeName::new(&n).ok());
                let record =
                    read_record_in::<VolumeRecord>(&path, opened.as_ref()).and_then(|r| match r {
                        Some(r) if r.driver != driver => Err(LedgerError::Corrupt {
                            path: path.clone(),
                            reason: format!("it names driver {}, not {driver}", r.driver),
                        }),
                        Some(r) => check_volume(&path, r),
                        None => Err(LedgerError::Corrupt {
                            path: path.clone(),
                            reason: "vanished while listed".into(),
                        }),
                    });
                read.push(ListedVolume {
                    driver: driver.clone(),
                    name,
                    entry: Listed { path, stem, record },
                });
            }
            read.sort_by(|a, b| a.entry.stem.cmp(&b.entry.stem));
            out.append(&mut read);
        }
        Ok(out)
    }

    // ---- repair ----

    /// Moves an unreadable record aside (`<file>.corrupt`, or `<file>.corrupt.N` when earlier
    /// ones are there: none is overwritten), so it is kept for the operator and no longer read.
    /// Returns the new path.
    pub fn move_aside(&self, path: &Path) -> Result<PathBuf, LedgerError> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return Err(LedgerError::Io {
                path: path.into(),
                step: "move aside",
                error: io::Error::new(io::ErrorKind::InvalidInput, "not a record path"),
            });
        };
        let first = format!("{name}.corrupt");
        let mut n = 1;
        loop {
            let aside = match n {
                1 => first.clone(),
                n => format!("{first}.{n}"),
            };
            // No room for a numbered name (a long stem, or a thousand kept): the last one wins.
            let (to, replace) = if aside.len() > NAME_MAX || n > 1000 {
                (first.clone(), true)
            } else {
                (aside, false)
            };
            match durable::rename_durable(&self.dirs, dir, name, &to, replace) {
                Ok(()) => return Ok(dir.join(to)),
                Err(e) if !replace && e.error.raw_os_error() == Some(libc::EEXIST) => n += 1,
                Err(e) => return Err(LedgerError::durable(path)(e)),
            }
        }
    }

    /// Removes the temp files of writers that are gone (a crash's leftovers, never a live
    /// process's: see `durable`'s *Temp file names*). Returns how many it removed.
    pub fn remove_stale_temp_files(&self) -> Result<usize, LedgerError> {
        let mut dirs = vec![self.containers_dir()];
        let top = self.root.join("volumes");
        for entry in fs::read_dir(&top).map_err(LedgerError::io(&top, "list directory"))? {
            let entry = entry.map_err(LedgerError::io(&top, "list directory"))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path());
            }
        }
        let mut removed = 0;
        for dir in dirs {
            removed += durable::sweep(&dir).map_err(LedgerError::durable(&dir))?;
        }
        Ok(removed)
    }
}

/// Listed records in the order of their stems.
fn sorted_by_stem<T>(mut listed: Vec<Listed<T>>) -> Vec<Listed<T>> {
    listed.sort_by(|a, b| a.stem.cmp(&b.stem));
    listed
}

/// Stems of the `*.json` files in `dir` (temp files and moved-aside records excluded), in
/// directory order: records are read in that order, which on tmpfs is the order they were
/// made in, close to their order in memory (10,000 records: ~10% faster than by name); the
/// listings sort what they read.
fn list_stems(dir: &Path) -> Result<Vec<String>, LedgerError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LedgerError::io(dir, "list directory")(e)),
    };
    let mut stems = Vec::new();
    for entry in entries {
        let entry = entry.map_err(LedgerError::io(dir, "list directory"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        if let Some(stem) = name.strip_suffix(JSON) {
            stems.push(stem.to_owned());
        }
    }
    Ok(stems)
}

/// The bytes of the record at `path`, `None` when there is none; refused when it (or its
/// directory) is not trusted.
/// Opens `path` for reading, never through a symlink and never blocking on a FIFO: relative
/// to `dir` (its directory, open) when given, saving the walk of the whole path.
fn open_record(path: &Path, dir: Option<&DirHandle>) -> io::Result<fs::File> {
    const FLAGS: libc::c_int = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    match (dir, path.file_name()) {
        (Some(dir), Some(name)) => dir.open_file(name, libc::O_RDONLY | FLAGS),
        _ => fs::OpenOptions::new()
            .read(true)
            .custom_flags(FLAGS)
            .open(path),
    }
}

/// A listing's directory: open, and already found trusted (`None`: check per record, which
/// says why it is not).
fn listing_dir(dir: &Path) -> Option<DirHandle> {
    check_dir_trusted(dir).ok()?;
    DirHandle::open(dir).ok()
}

/// `dir`: the record's directory, open and already found trusted (a listing checks it once,
/// not once per record).
fn read_trusted(path: &Path, dir: Option<&DirHandle>) -> Result<Option<Vec<u8>>, LedgerError> {
    // Never through a symlink, and never blocking on a FIFO planted in a record's place (it
    // is refused below as not a regular file).
    let mut file = match open_record(path, dir) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(untrusted(path, "it is a symlink".into()))
        }
        Err(e) => return Err(LedgerError::io(path, "open")(e)),
    };
    let meta = file.metadata().map_err(LedgerError::io(path, "stat"))?;
    if !meta.is_file() {
        return Err(untrusted(path, "it is not a regular file".into()));
    }
    if let Some(reason) = distrust(&meta) {
        return Err(untrusted(path, reason));
    }
    if let Some(parent) = path.parent().filter(|_| dir.is_none()) {
        check_dir_trusted(parent)?;
    }
    // Records are replaced by rename, never changed in place: the size `fstat` gave is the
    // content's. Read exactly that (one `read`, usually; no end-of-file probe).
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    let mut bytes = vec![0; len];
    let mut filled = 0;
    while filled < len {
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LedgerError::io(path, "read")(e)),
        }
    }
    bytes.truncate(filled);
    Ok(Some(bytes))
}

fn read_record<T: DeserializeOwned + Versioned>(path: &Path) -> Result<Option<T>, LedgerError> {
    read_record_in(path, None)
}

/// [`read_record`] of a record in `dir`, open and found trusted by a listing.
fn read_record_in<T: DeserializeOwned + Versioned>(
    path: &Path,
    dir: Option<&DirHandle>,
) -> Result<Option<T>, LedgerError> {
    let Some(bytes) = read_trusted(path, dir)? else {
        return Ok(None);
    };
    let corrupt = |reason: String| LedgerError::Corrupt {
        path: path.into(),
        reason,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(corrupt("the file is empty".into()));
    }
    // The common case, a well-formed record of our format, is parsed once, straight into its
    // type (recover reads every record: no intermediate JSON tree); anything else — including
    // a record of another format that happens to have the same fields — goes the slow way
    // below, which says what is wrong with it.
    if let Ok(record) = serde_json::from_slice::<T>(&bytes) {
        if record.format() == FORMAT {
            return Ok(Some(record));
        }
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not JSON ({e})")))?;
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(FORMAT) => {}
        Some(v) => {
            return Err(corrupt(format!(
                "record format {v}, this build reads format {FORMAT}"
            )))
        }
        None => return Err(corrupt("no record format".into())),
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| corrupt(e.to_string()))
}

/// A record that says which format it is in.
trait Versioned {
    fn format(&self) -> u32;
}

impl Versioned for ContainerRecord {
    fn format(&self) -> u32 {
        self.format
    }
}

impl Versioned for VolumeRecord {
    fn format(&self) -> u32 {
        self.format
    }
}

fn write_record<T: Serialize>(
    dirs: &durable::DirHandles,
    path: &Path,
    record: &T,
) -> Result<(), LedgerError> {
    let mut bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| LedgerError::io(path, "serialize")(io::Error::other(e)))?;
    bytes.push(b'\n');
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(LedgerError::io(path, "write")(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a record path",
        )));
    };
    durable::write_atomic(dirs, dir, name, &bytes).map_err(LedgerError::durable(path))
}

fn remove_record(dirs: &durable::DirHandles, path: &Path) -> Result<(), LedgerError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(());
    };
    durable::remove_durable(dirs, dir, name).map_err(LedgerError::durable(path))
}

/// The file must be the one its content names (also catches hash-form collisions).
fn check_stem(path: &Path, name: &str) -> Result<(), LedgerError> {
    let expected = format!("{}{JSON}", encode::encode(name));
    if path.file_name().and_then(|n| n.to_str()) == Some(expected.as_str()) {
        Ok(())
    } else {
        Err(LedgerError::Corrupt {
            path: path.into(),
            reason: format!("it names {name:?}, which belongs in {expected}"),
        })
    }
}

fn check_container(path: &Path, record: ContainerRecord) -> Result<ContainerRecord, LedgerError> {
    check_stem(path, record.container_id.as_str())?;
    Ok(record)
}

fn check_volume(path: &Path, record: VolumeRecord) -> Result<VolumeRecord, LedgerError> {
    check_stem(path, record.name.as_str())?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(driver: &str, name: &str) -> VolumeKey {
        VolumeKey::new(
            DriverName::new(driver).unwrap(),
            VolumeName::new(name).unwrap(),
        )
    }

    fn cid(id: &str) -> ContainerId {
        ContainerId::new(id).unwrap()
    }

    #[test]
    fn open_makes_a_private_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ck");
        let ledger = Ledger::open(&root).unwrap();
        let mode = fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(ledger.list_containers().unwrap().is_empty());
        assert!(ledger.list_volumes().unwrap().is_empty());
    }

    #[test]
    fn records_round_trip_and_idle_volume_records_vanish() {
        let tmp = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(tmp.path()).unwrap();
        let k = key("rexray", "My Volume");
        let mut vol = VolumeRecord::new(&k);
        vol.mount = Some(MountRecord {
            id: "m1".into(),
            state: MountState::Mounted,
            mountpoint: Some("/mnt/x".into()),
            identity: None,
        });
        vol.holders.insert(cid("c1"));
        ledger.write_volume(&vol).unwrap();
        assert!(ledger
            .volume_path(&k)
            .ends_with("volumes/rexray/My%20Volume.json"));
        assert_eq!(ledger.read_volume(&k).unwrap(), Some(vol.clone()));
        let listed = ledger.list_volumes().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name.as_ref(), Some(&k.name));
        assert_eq!(listed[0].entry.record.as_ref().unwrap(), &vol);

        vol.mount = None;
        vol.holders.clear();
        ledger.write_volume(&vol).unwrap();
        assert_eq!(ledger.read_volume(&k).unwrap(), None);

        let rec = ContainerRecord::new(cid("c1"), vec![], None);
        ledger.write_container(&rec).unwrap();
        assert_eq!(ledger.read_container(&cid("c1")).unwrap(), Some(rec));
        ledger.remove_container(&cid("c1")).unwrap();
        assert_eq!(ledger.read_container(&cid("c1")).unwrap(), None);
    }

    #[test]
    fn unreadable_records_are_reported_as_corrupt_with_a_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(tmp.path()).unwrap();
        let id = cid("c1");
        let path = ledger.container_path(&id);
        let good = serde_json::to_string(&ContainerRecord::new(id.clone(), vec![], None)).unwrap();
        for (content, reason) in [
            ("", "empty"),
            ("  \n", "empty"),
            (&good[..good.len() / 2], "not JSON"),
            ("{\"format\":2}", "format 2"),
            // Every field of ours, but another format: not taken for ours.
            (&good.replace("\"format\":1", "\"format\":2"), "format 2"),
            ("{\"x\":1}", "no record format"),
            (&good.replace("c1", "c2"), "belongs in"),
        ] {
            fs::write(&path, content).unwrap();
            let err = ledger.read_container(&id).unwrap_err().to_string();
            assert!(err.contains(reason), "{content:?}: {err}");
            assert!(err.contains("c1.json"), "{err}");
        }
        let aside = ledger.move_aside(&path).unwrap();
        assert!(aside.ends_with("c1.json.corrupt"));
        assert!(ledger.list_containers().unwrap().is_empty());
        // A second one is kept beside the first, not over it.
        fs::write(&path, "").unwrap();
        let again = ledger.move_aside(&path).unwrap();
        assert!(again.ends_with("c1.json.corrupt.2"), "{}", again.display());
        assert!(aside.exists());
        assert!(ledger.list_containers().unwrap().is_empty());
    }

    #[test]
    fn a_failed_write_names_the_file_and_the_step_once() {
        let tmp = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(tmp.path()).unwrap();
        fs::remove_dir(tmp.path().join("containers")).unwrap();
        let err = ledger
            .write_container(&ContainerRecord::new(cid("c1"), vec![], None))
            .unwrap_err();
        let path = tmp.path().join("containers/c1.json");
        assert_eq!(
            err.to_string(),
            format!(
                "checkpoint {}: open directory: No such file or directory (os error 2)",
                path.display()
            )
        );
        // Said in the message, so not again as a source.
        assert!(std::error::Error::source(&err).is_none());
    }

    #[test]
    fn stale_temp_files_are_skipped_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(tmp.path()).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        fs::write(tmp.path().join(format!("containers/.tmp-{dead}-0")), "{").unwrap();
        assert!(ledger.list_containers().unwrap().is_empty());
        assert_eq!(ledger.remove_stale_temp_files().unwrap(), 1);
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn open_tightens_an_existing_tree_to_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ck");
        for sub in ["containers", "volumes", "locks"] {
            fs::create_dir_all(root.join(sub)).unwrap();
            fs::set_permissions(root.join(sub), fs::Permissions::from_mode(0o777)).unwrap();
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let ledger = Ledger::open(&root).unwrap();
        for dir in ["", "containers", "volumes", "locks"] {
            assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
        }
        // Directories made later are private too.
        let mut vol = VolumeRecord::new(&key("rexray", "v"));
        vol.holders.insert(cid("c1"));
        ledger.write_volume(&vol).unwrap();
        ledger.lock_volume(&key("rexray", "v")).unwrap();
        assert_eq!(mode(&root.join("volumes/rexray")), 0o700);
        assert_eq!(mode(&root.join("volumes/rexray/v.json")), 0o600);
        for file in ["ledger.lock", "ledger.turnstile", "keys.lock"] {
            assert_eq!(mode(&root.join("locks").join(file)), 0o600, "{file}");
        }
    }

    #[test]
    fn open_refuses_a_subdirectory_that_is_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ck");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(tmp.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), root.join("containers")).unwrap();
        let err = Ledger::open(&root).unwrap_err();
        assert!(matches!(err, LedgerError::Untrusted { .. }), "{err}");
        assert!(err.to_string().contains("ck/containers"), "{err}");
    }

    #[test]
    fn records_others_could_write_are_not_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(tmp.path()).unwrap();
        let id = cid("c1");
        let rec = ContainerRecord::new(id.clone(), vec![], None);
        ledger.write_container(&rec).unwrap();
        let path = ledger.container_path(&id);
        for bad in [0o620, 0o602, 0o666] {
            fs::set_permissions(&path, fs::Permissions::from_mode(bad)).unwrap();
            let err = ledger.read_container(&id).unwrap_err();
            assert!(matches!(err, LedgerError::Untrusted { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains("containers/c1.json"), "{text}");
            assert!(text.contains(&format!("mode {bad:04o}")), "{text}");
            assert!(ledger.list_containers().unwrap()[0].record.is_err());
        }
        // Read-only for others is not a threat (the directory keeps them out anyway).
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(ledger.read_container(&id).unwrap(), Some(rec.clone()));

        // A symlink in place of a record is never followed.
        let elsewhere = tmp.path().join("elsewhere.json");
        fs::rename(&path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let err = ledger.read_container(&id).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
    }

    #[test]
    fn a_directory_others_could_write_makes_its_records_untrusted() {
        let tmp = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(tmp.path()).unwrap();
        let k = key("rexray", "v");
        let mut vol = VolumeRecord::new(&k);
        vol.holders.insert(cid("c1"));
        ledger.write_volume(&vol).unwrap();
        let dir = tmp.path().join("volumes/rexray");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = ledger.read_volume(&k).unwrap_err();
        assert!(matches!(err, LedgerError::Untrusted { .. }), "{err}");
        assert!(err.to_string().contains("volumes/rexray"), "{err}");
        assert!(ledger.list_volumes().unwrap()[0].entry.record.is_err());
        // Nor is anything written into it.
        assert!(ledger.write_volume(&vol).is_err());
    }
}
