//! The on-disk layout of the local driver and its records.
//!
//! ```text
//! root/                      0700
//!   .locks/<name>            per-volume flock file (see `lock.rs`); never removed
//!   <name>/
//!     meta.json              {"version":1,"kind":…,"options":…,"created_at":…}; written last
//!                            on create, removed first on remove: it is the commit mark
//!     users.json             {"version":1,"users":[mount ids…]}
//!     disk.img               block volumes: the sparse image
//!     _data/                 the mount point handed to callers
//! ```
//!
//! Every record is written atomically and durably (temp file in the same directory, write,
//! fsync, rename, fsync the directory) and carries a format version; a record that cannot be
//! read or parsed is an error naming the volume and the path, never a panic.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::error::{io_err, LocalError};
use super::spec::VolumeKind;
use crate::date::rfc3339_utc;
use crate::ledger::durable;
use crate::names::VolumeName;
use crate::opts::VolumeOpts;

/// The record format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The directory of lock files under the root; the one volume name the driver refuses.
pub const LOCK_DIR: &str = ".locks";

/// Where one volume's files are.
#[derive(Debug, Clone)]
pub struct VolumePaths {
    pub dir: PathBuf,
    pub meta: PathBuf,
    pub users: PathBuf,
    pub image: PathBuf,
    pub data: PathBuf,
}

impl VolumePaths {
    pub fn new(root: &Path, volume: &VolumeName) -> VolumePaths {
        let dir = root.join(volume.as_str());
        VolumePaths {
            meta: dir.join("meta.json"),
            users: dir.join("users.json"),
            image: dir.join("disk.img"),
            data: dir.join("_data"),
            dir,
        }
    }
}

/// `meta.json`: what the volume is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub version: u32,
    #[serde(flatten)]
    pub kind: VolumeKind,
    /// The options as given to `Create`.
    pub options: VolumeOpts,
    /// RFC 3339, UTC.
    pub created_at: String,
}

impl Meta {
    pub fn new(kind: VolumeKind, options: VolumeOpts) -> Meta {
        Meta {
            version: FORMAT_VERSION,
            kind,
            options,
            created_at: rfc3339_utc(SystemTime::now()),
        }
    }
}

/// `users.json`: the mount ids holding the volume. A set: a repeated id counts once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Users {
    pub version: u32,
    pub users: BTreeSet<String>,
}

impl Users {
    pub fn new() -> Users {
        Users {
            version: FORMAT_VERSION,
            users: BTreeSet::new(),
        }
    }
}

/// Reads `meta.json`; `Ok(None)` when it does not exist (no volume, or one never completed).
pub fn read_meta(volume: &VolumeName, paths: &VolumePaths) -> Result<Option<Meta>, LocalError> {
    let meta: Option<Meta> = read_record(volume, &paths.meta)?;
    match meta {
        Some(m) if m.version != FORMAT_VERSION => Err(bad_version(volume, &paths.meta, m.version)),
        other => Ok(other),
    }
}

/// Reads `users.json`; a missing file is an empty set.
pub fn read_users(volume: &VolumeName, paths: &VolumePaths) -> Result<Users, LocalError> {
    let users: Option<Users> = read_record(volume, &paths.users)?;
    match users {
        Some(u) if u.version != FORMAT_VERSION => Err(bad_version(volume, &paths.users, u.version)),
        Some(u) => Ok(u),
        None => Ok(Users::new()),
    }
}

pub fn write_meta(volume: &VolumeName, paths: &VolumePaths, meta: &Meta) -> Result<(), LocalError> {
    write_record(volume, &paths.meta, meta)
}

pub fn write_users(
    volume: &VolumeName,
    paths: &VolumePaths,
    users: &Users,
) -> Result<(), LocalError> {
    write_record(volume, &paths.users, users)
}

fn bad_version(volume: &VolumeName, path: &Path, found: u32) -> LocalError {
    LocalError::Corrupt {
        volume: volume.to_string(),
        path: path.to_path_buf(),
        reason: format!(
            "format version {found} is not supported (this build reads {FORMAT_VERSION})"
        ),
    }
}

fn read_record<T: for<'de> Deserialize<'de>>(
    volume: &VolumeName,
    path: &Path,
) -> Result<Option<T>, LocalError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(volume.as_str(), "read", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| LocalError::Corrupt {
            volume: volume.to_string(),
            path: path.to_path_buf(),
            reason: if bytes.is_empty() {
                "it is empty".to_owned()
            } else {
                e.to_string()
            },
        })
}

fn write_record<T: Serialize>(
    volume: &VolumeName,
    path: &Path,
    record: &T,
) -> Result<(), LocalError> {
    let mut bytes = serde_json::to_vec_pretty(record).map_err(|e| LocalError::Io {
        volume: volume.to_string(),
        action: "encode",
        path: path.to_path_buf(),
        cause: io::Error::other(e),
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes).map_err(io_err(volume.as_str(), "write", path))
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content,
/// through the ledger's durable write ([`durable::write_atomic`]: a temp file in the same
/// directory, write, fsync, rename over `path`, fsync the directory), passing the I/O fault
/// point `local.state_write` right before the bytes are written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name in UTF-8"))?;
    // One write, one directory: the handle (and any temp file it kept) goes when it returns.
    let dirs = durable::DirHandles::with_faults(durable::Faults::LocalState);
    durable::write_atomic(&dirs, dir, name, bytes).map_err(|e| e.error)
}

/// fsyncs a directory, making renames, creations and removals in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, VolumeName, VolumePaths) {
        let root = tempfile::tempdir().unwrap();
        let name = VolumeName::new("v").unwrap();
        let paths = VolumePaths::new(root.path(), &name);
        fs::create_dir(&paths.dir).unwrap();
        (root, name, paths)
    }

    #[test]
    fn records_round_trip() {
        let (_root, name, paths) = setup();
        assert_eq!(read_meta(&name, &paths).unwrap(), None);
        assert_eq!(read_users(&name, &paths).unwrap(), Users::new());

        let mut opts = VolumeOpts::new();
        opts.insert("size", "64M");
        let meta = Meta::new(VolumeKind::from_opts(&name, &opts).unwrap(), opts.clone());
        write_meta(&name, &paths, &meta).unwrap();
        assert_eq!(read_meta(&name, &paths).unwrap(), Some(meta));

        let mut users = Users::new();
        users.users.insert("a".into());
        write_users(&name, &paths, &users).unwrap();
        assert_eq!(read_users(&name, &paths).unwrap(), users);

        let text = fs::read_to_string(&paths.meta).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
        assert!(text.contains("\"kind\": \"block\""), "{text}");
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(&paths.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn corrupt_records_name_the_volume_and_the_path() {
        let (_root, name, paths) = setup();
        for (content, expect) in [
            ("", "it is empty"),
            ("{\"version\":1,", "EOF"),
            (
                "{\"version\":7,\"kind\":\"directory\",\"options\":{},\"created_at\":\"x\"}",
                "format version 7",
            ),
            ("[1,2]", "invalid type"),
        ] {
            fs::write(&paths.meta, content).unwrap();
            let err = read_meta(&name, &paths).unwrap_err();
            assert!(!err.is_refusal());
            let text = err.to_string();
            assert!(text.contains("\"v\""), "{text}");
            assert!(text.contains(&paths.meta.display().to_string()), "{text}");
            assert!(text.contains(expect), "{text}");
        }
        fs::write(&paths.users, "{\"version\":2,\"users\":[]}").unwrap();
        let text = read_users(&name, &paths).unwrap_err().to_string();
        assert!(
            text.contains("users.json") && text.contains("version 2"),
            "{text}"
        );
    }
}
