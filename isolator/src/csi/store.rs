//! What this host keeps of each CSI volume, under the plugin's `root`:
//!
//! ```text
//! root/                       0700
//!   .locks/<name>             per-volume flock file; never removed
//!   <name>/
//!     volume.json             {"version":1,"volume_id":…,"capacity":…,"volume_context":…,
//!                              "capability":…,"created_at":…}: the volume as created
//!     users.json              {"version":1,"users":[mount ids…],"published":bool}
//!     staging/                staging_target_path (made here, as the CSI spec asks)
//!     target                  target_path (made and removed by the plugin)
//! ```
//!
//! Records are written atomically and durably (the ledger's durable write) and carry a format
//! version; one that cannot be read is an error naming the volume and the path.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::error::CsiError;
use super::wire::Capability;
use crate::date::rfc3339_utc;
use crate::ledger::durable;
use crate::names::VolumeName;
use crate::sys::{flock, FlockOp};

/// The record format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const LOCK_DIR: &str = ".locks";

/// `volume.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub version: u32,
    pub volume_id: String,
    pub capacity: Option<u64>,
    #[serde(default)]
    pub volume_context: BTreeMap<String, String>,
    pub capability: Capability,
    pub created_at: Option<String>,
}

impl Record {
    #[cold]
    pub fn new(
        volume_id: String,
        capacity: Option<u64>,
        volume_context: BTreeMap<String, String>,
        capability: Capability,
    ) -> Record {
        Record {
            version: FORMAT_VERSION,
            volume_id,
            capacity,
            volume_context,
            capability,
            created_at: Some(rfc3339_utc(SystemTime::now())),
        }
    }
}

/// `users.json`: the mount ids holding the volume, and whether it may be published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    pub version: u32,
    pub users: BTreeSet<String>,
    /// Set before the first publish call, cleared after the last unpublish call succeeded.
    pub published: bool,
}

/// A volume's paths.
pub struct Paths {
    pub dir: PathBuf,
    pub staging: PathBuf,
    pub target: PathBuf,
}

/// Held while one operation on a volume runs; dropping it unlocks.
pub struct Lock {
    file: File,
}

impl Lock {
    /// The locked file: a `dvdi-csi` child given it keeps the volume locked while it runs.
    #[cold]
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.file)
    }
}

impl Drop for Lock {
    #[cold]
    fn drop(&mut self) {
        let _ = flock(&self.file, FlockOp::Unlock);
    }
}

pub struct Store {
    root: PathBuf,
}

impl Store {
    #[cold]
    pub fn new(root: PathBuf) -> Store {
        Store { root }
    }

    #[cold]
    pub fn paths(&self, volume: &VolumeName) -> Paths {
        let dir = self.root.join(volume.as_str());
        Paths {
            staging: dir.join("staging"),
            target: dir.join("target"),
            dir,
        }
    }

    #[cold]
    fn io(
        &self,
        volume: &VolumeName,
        action: &'static str,
        path: &Path,
    ) -> impl Fn(io::Error) -> CsiError {
        let (volume, path) = (volume.to_string(), path.to_owned());
        move |cause| CsiError::Io {
            volume: volume.clone(),
            action,
            path: path.clone(),
            cause,
        }
    }

    #[cold]
    fn mkdir(&self, volume: &VolumeName, path: &Path, recursive: bool) -> Result<(), CsiError> {
        let made = crate::fault::io("csi.mkdir").and_then(|()| {
            DirBuilder::new()
                .recursive(recursive)
                .mode(0o700)
                .create(path)
        });
        match made {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(self.io(volume, "create directory", path)(e)),
        }
    }

    /// Blocks until this process holds `volume`'s lock (making the root if needed).
    #[cold]
    pub fn lock(&self, volume: &VolumeName) -> Result<Lock, CsiError> {
        let dir = self.root.join(LOCK_DIR);
        self.mkdir(volume, &dir, true)?;
        let path = dir.join(volume.as_str());
        let file =
            crate::sys::open_lock_file(&path).map_err(self.io(volume, "open lock file", &path))?;
        flock(&file, FlockOp::Exclusive).map_err(self.io(volume, "lock", &path))?;
        Ok(Lock { file })
    }

    /// The volume's directory and its staging directory (the target's parent is the former).
    #[cold]
    pub fn make_dirs(&self, volume: &VolumeName) -> Result<(), CsiError> {
        let paths = self.paths(volume);
        self.mkdir(volume, &paths.dir, false)?;
        self.mkdir(volume, &paths.staging, false)?;
        // Never made through a symlink: the plugin mounts here as root.
        for p in [&paths.dir, &paths.staging] {
            let meta = fs::symlink_metadata(p).map_err(self.io(volume, "examine", p))?;
            if !meta.is_dir() {
                return Err(self.io(volume, "use", p)(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a directory (a symbolic link is never followed)",
                )));
            }
        }
        Ok(())
    }

    #[cold]
    pub fn read_record(&self, volume: &VolumeName) -> Result<Option<Record>, CsiError> {
        let path = self.paths(volume).dir.join("volume.json");
        let record: Option<Record> = self.read(volume, &path)?;
        match record {
            Some(r) if r.version != FORMAT_VERSION => Err(bad_version(volume, &path, r.version)),
            other => Ok(other),
        }
    }

    #[cold]
    pub fn write_record(&self, volume: &VolumeName, record: &Record) -> Result<(), CsiError> {
        let paths = self.paths(volume);
        self.mkdir(volume, &self.root, true)?;
        self.mkdir(volume, &paths.dir, false)?;
        self.write(volume, &paths.dir, "volume.json", record)
    }

    /// `users.json`; a missing file is no users, nothing published.
    #[cold]
    pub fn read_users(&self, volume: &VolumeName) -> Result<Users, CsiError> {
        let path = self.paths(volume).dir.join("users.json");
        match self.read::<Users>(volume, &path)? {
            Some(u) if u.version != FORMAT_VERSION => Err(bad_version(volume, &path, u.version)),
            Some(u) => Ok(u),
            None => Ok(Users {
                version: FORMAT_VERSION,
                users: BTreeSet::new(),
                published: false,
            }),
        }
    }

    #[cold]
    pub fn write_users(&self, volume: &VolumeName, users: &Users) -> Result<(), CsiError> {
        let paths = self.paths(volume);
        self.mkdir(volume, &self.root, true)?;
        self.mkdir(volume, &paths.dir, false)?;
        self.write(volume, &paths.dir, "users.json", users)
    }

    /// Forgets the volume on this host: its records and its (empty) staging directory.
    #[cold]
    pub fn remove_volume(&self, volume: &VolumeName) -> Result<(), CsiError> {
        let paths = self.paths(volume);
        let dirs = durable::DirHandles::with_faults(durable::Faults::CsiState);
        for name in ["volume.json", "users.json"] {
            match durable::remove_durable(&dirs, &paths.dir, name) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(self.io(volume, "remove", &paths.dir.join(name))(e.error)),
            }
        }
        drop(dirs);
        for p in [&paths.staging, &paths.dir] {
            match fs::remove_dir(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io(volume, "remove", p)(e)),
            }
        }
        Ok(())
    }

    /// Every volume with a directory under the root, in name order.
    #[cold]
    pub fn volumes(&self) -> Result<Vec<VolumeName>, CsiError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(CsiError::Io {
                    volume: String::new(),
                    action: "read",
                    path: self.root.clone(),
                    cause: e,
                })
            }
        };
        let mut out: Vec<VolumeName> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str().and_then(|n| VolumeName::new(n).ok()))
            .filter(|v| v.as_str() != LOCK_DIR)
            .collect();
        out.sort();
        Ok(out)
    }

    #[cold]
    fn read<T: for<'de> Deserialize<'de>>(
        &self,
        volume: &VolumeName,
        path: &Path,
    ) -> Result<Option<T>, CsiError> {
        let bytes = match crate::sys::read_nofollow(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(volume, "read", path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CsiError::Corrupt {
                volume: volume.to_string(),
                path: path.to_owned(),
                reason: if bytes.is_empty() {
                    "it is empty".to_owned()
                } else {
                    e.to_string()
                },
            })
    }

    #[cold]
    fn write<T: Serialize>(
        &self,
        volume: &VolumeName,
        dir: &Path,
        name: &str,
        record: &T,
    ) -> Result<(), CsiError> {
        let mut bytes = serde_json::to_vec_pretty(record)
            .map_err(io::Error::other)
            .map_err(self.io(volume, "encode", &dir.join(name)))?;
        bytes.push(b'\n');
        let dirs = durable::DirHandles::with_faults(durable::Faults::CsiState);
        durable::write_atomic(&dirs, dir, name, &bytes)
            .map_err(|e| self.io(volume, "write", &dir.join(name))(e.error))
    }
}

#[cold]
fn bad_version(volume: &VolumeName, path: &Path, found: u32) -> CsiError {
    CsiError::Corrupt {
        volume: volume.to_string(),
        path: path.to_owned(),
        reason: format!(
            "format version {found} is not supported (this build reads {FORMAT_VERSION})"
        ),
    }
}
