//! The embedded `local` driver (SPEC §8): volumes served in-process under a root directory,
//! without a plugin socket.
//!
//! - A volume without options is a directory.
//! - `size=N[K|M|G]` and optional `fstype=ext4|xfs|btrfs` make a block volume: a sparse image
//!   formatted on create, attached to a loop device and mounted on its first user, unmounted and
//!   detached after its last. A new one may be no larger than the operator's cap
//!   (`local_max_size`), nor than the free space of the root's filesystem at create time.
//! - Docker-local `type=`, `device=`, `o=` make a device volume: the device (or tmpfs) is
//!   mounted on the first user and unmounted after the last.
//!
//! Users are the *set* of mount ids given to `Mount`, kept on disk, and every operation on a
//! volume runs under that volume's `flock`, so every process on the host agrees on them.
//! The mount point handed out is always `root/<name>/_data`.
//!
//! Files: `spec` (options → volume kind), `mountopts` (`o=`), `store` (layout and records),
//! `lock` (the per-volume lock), `block` (image and loop devices), `mounting` (bringing `_data`
//! up and down).

mod block;
mod error;
mod lock;
mod mounting;
mod mountopts;
mod spec;
mod store;

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::driver::{DriverError, Operation, Scope, VolumeDriver, VolumeInfo};
use crate::names::{DriverName, VolumeName};
use crate::opts::VolumeOpts;
use crate::sys::Host;

pub use error::{LocalError, SizeLimit};
pub use spec::{device_options, parse_size, FsType, VolumeKind, DEVICE_OPTIONS};
pub use store::FORMAT_VERSION;

use error::io_err;
use lock::VolumeLock;
use store::{Meta, Users, VolumePaths, LOCK_DIR};

/// The `local` driver over a root directory.
pub struct LocalDriver {
    name: DriverName,
    root: PathBuf,
    host: Arc<dyn Host>,
    /// The operator's cap on a new block volume's size, in bytes.
    max_size: Option<u64>,
}

/// A volume's paths while its lock is held.
struct Locked {
    paths: VolumePaths,
    _lock: VolumeLock,
}

impl LocalDriver {
    /// A driver for volumes under `root`. Nothing is touched until the first operation; the
    /// root is created (0700) by the first `create`.
    pub fn new(root: PathBuf, host: Arc<dyn Host>) -> Self {
        let name = DriverName::new("local").expect("static name is valid");
        Self {
            name,
            root,
            host,
            max_size: None,
        }
    }

    /// Caps the size of the block volumes this driver creates (`local_max_size`); the free
    /// space of the root's filesystem caps them in any case.
    pub fn with_max_size(mut self, max_size: Option<u64>) -> Self {
        self.max_size = max_size;
        self
    }

    /// The root as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where volume `volume` under `root` is (or would be) mounted: its `_data`.
    pub fn mountpoint_under(root: &Path, volume: &VolumeName) -> PathBuf {
        store::VolumePaths::new(root, volume).data
    }

    fn root_err(&self, action: &'static str) -> impl FnOnce(io::Error) -> LocalError + '_ {
        move |source| LocalError::Root {
            action,
            path: self.root.clone(),
            cause: source,
        }
    }

    /// The root with symlinks resolved (mount points are compared with the kernel's view), or
    /// `None` when it does not exist yet.
    fn existing_root(&self) -> Result<Option<PathBuf>, LocalError> {
        match fs::canonicalize(&self.root) {
            Ok(root) => Ok(Some(root)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.root_err("resolve")(e)),
        }
    }

    /// The root, created 0700 (its parents 0755) when missing.
    fn ensure_root(&self) -> Result<PathBuf, LocalError> {
        if let Some(root) = self.existing_root()? {
            return Ok(root);
        }
        if let Some(parent) = self.root.parent() {
            fs::create_dir_all(parent).map_err(self.root_err("create the parent of"))?;
        }
        match DirBuilder::new().mode(0o700).create(&self.root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(self.root_err("create")(e)),
        }
        fs::canonicalize(&self.root).map_err(self.root_err("resolve"))
    }

    /// Takes `volume`'s lock under `root` (resolved by the caller).
    fn lock_at(&self, root: &Path, volume: &VolumeName) -> Result<Locked, LocalError> {
        if volume.as_str() == LOCK_DIR {
            return Err(LocalError::ReservedName {
                volume: volume.to_string(),
            });
        }
        let lock = VolumeLock::acquire(root, volume)?;
        Ok(Locked {
            paths: VolumePaths::new(root, volume),
            _lock: lock,
        })
    }

    /// Locks a volume under the existing root; a refusal when there is no root.
    fn lock(&self, volume: &VolumeName) -> Result<Locked, LocalError> {
        let root = self
            .existing_root()?
            .ok_or_else(|| LocalError::NoSuchVolume {
                volume: volume.to_string(),
            })?;
        self.lock_at(&root, volume)
    }

    /// Locks an existing volume and reads its metadata; a refusal when it does not exist.
    fn lock_existing(&self, volume: &VolumeName) -> Result<(Locked, Meta), LocalError> {
        let locked = self.lock(volume)?;
        let meta =
            store::read_meta(volume, &locked.paths)?.ok_or_else(|| LocalError::NoSuchVolume {
                volume: volume.to_string(),
            })?;
        Ok((locked, meta))
    }

    fn do_create(&self, volume: &VolumeName, opts: &VolumeOpts) -> Result<(), LocalError> {
        let kind = VolumeKind::from_opts(volume, opts)?;
        let root = self.ensure_root()?;
        let locked = self.lock_at(&root, volume)?;
        let paths = &locked.paths;
        if let Some(meta) = store::read_meta(volume, paths)? {
            // Idempotent for the same volume (compared as parsed: `size=64M` = `size=67108864`).
            return if meta.kind == kind {
                Ok(())
            } else {
                Err(LocalError::OptionsDiffer {
                    volume: volume.to_string(),
                    existing: meta.kind.to_string(),
                    requested: kind.to_string(),
                })
            };
        }
        // Only a volume made now is capped: one that exists (above) is used as it is.
        if let VolumeKind::Block { size, .. } = kind {
            self.check_size(volume, opts, size, &root)?;
        }
        // A directory without meta.json is a create that never finished: start over.
        self.remove_leftover(volume, paths)?;
        let built = self.build(volume, paths, kind, opts);
        if let Err(e) = built {
            return Err(e.with_cleanup(self.remove_leftover(volume, paths)));
        }
        Ok(())
    }

    /// Refuses a new block volume of `size` bytes larger than the operator's cap or than the
    /// free space of the filesystem holding `root` (`statvfs` now: the image is sparse, so this
    /// bounds each volume, not the sum of them).
    fn check_size(
        &self,
        volume: &VolumeName,
        opts: &VolumeOpts,
        size: u64,
        root: &Path,
    ) -> Result<(), LocalError> {
        let too_large = |limit| LocalError::TooLarge {
            volume: volume.to_string(),
            size_text: opts.get("size").unwrap_or_default().to_owned(),
            size,
            limit,
        };
        if let Some(cap) = self.max_size.filter(|cap| size > *cap) {
            return Err(too_large(SizeLimit::Configured { cap }));
        }
        let free = self
            .host
            .free_space(root)
            .map_err(self.root_err("read the free space of the filesystem of"))?;
        if size > free {
            return Err(too_large(SizeLimit::FreeSpace {
                free,
                root: root.to_path_buf(),
            }));
        }
        Ok(())
    }

    /// Makes the volume's files; `meta.json`, written last, commits it.
    fn build(
        &self,
        volume: &VolumeName,
        paths: &VolumePaths,
        kind: VolumeKind,
        opts: &VolumeOpts,
    ) -> Result<(), LocalError> {
        let v = volume.as_str();
        crate::fault::io("local.mkdir")
            .and_then(|()| DirBuilder::new().mode(0o755).create(&paths.dir))
            .map_err(io_err(v, "create directory", &paths.dir))?;
        mounting::ensure_dir(volume, &paths.data)?;
        if let VolumeKind::Block { size, fstype } = kind {
            block::create_image(self.host.as_ref(), volume, &paths.image, size, fstype)?;
        }
        store::write_users(volume, paths, &Users::new())?;
        store::write_meta(volume, paths, &Meta::new(kind, opts.clone()))?;
        let root = paths.dir.parent().unwrap_or(Path::new("/"));
        store::sync_dir(root).map_err(io_err(v, "sync directory", root))
    }

    /// Deletes an uncommitted or removed volume's directory, refusing while `_data` is mounted
    /// (deleting would reach into the mounted filesystem).
    fn remove_leftover(&self, volume: &VolumeName, paths: &VolumePaths) -> Result<(), LocalError> {
        let v = volume.as_str();
        let kind = match fs::symlink_metadata(&paths.dir) {
            Ok(m) => m.file_type(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(v, "inspect", &paths.dir)(e)),
        };
        if !kind.is_dir() {
            return fs::remove_file(&paths.dir).map_err(io_err(v, "remove", &paths.dir));
        }
        if mounting::is_mounted(self.host.as_ref(), volume, &paths.data)? {
            return Err(LocalError::StillMounted {
                volume: v.to_owned(),
                path: paths.data.clone(),
            });
        }
        if paths.image.exists() {
            block::detach_all(self.host.as_ref(), volume, &paths.image)?;
        }
        fs::remove_dir_all(&paths.dir).map_err(io_err(v, "remove", &paths.dir))?;
        let root = paths.dir.parent().unwrap_or(Path::new("/"));
        store::sync_dir(root).map_err(io_err(v, "sync directory", root))
    }

    fn do_remove(&self, volume: &VolumeName) -> Result<(), LocalError> {
        let missing = || LocalError::NoSuchVolume {
            volume: volume.to_string(),
        };
        let locked = self.lock(volume)?;
        let paths = &locked.paths;
        // An unreadable meta.json does not stop a remove (the operator's way out of a corrupt
        // volume), but only a committed volume is "there".
        match store::read_meta(volume, paths) {
            Ok(Some(_)) | Err(LocalError::Corrupt { .. }) => {}
            Ok(None) => return Err(missing()),
            Err(e) => return Err(e),
        }
        let users = store::read_users(volume, paths)?;
        if !users.users.is_empty() {
            return Err(LocalError::InUse {
                volume: volume.to_string(),
                users: users.users.len(),
            });
        }
        if mounting::is_mounted(self.host.as_ref(), volume, &paths.data)? {
            return Err(LocalError::StillMounted {
                volume: volume.to_string(),
                path: paths.data.clone(),
            });
        }
        // Uncommit first: a crash from here on leaves a leftover that `create` clears.
        fs::remove_file(&paths.meta).map_err(io_err(volume.as_str(), "remove", &paths.meta))?;
        store::sync_dir(&paths.dir).map_err(io_err(
            volume.as_str(),
            "sync directory",
            &paths.dir,
        ))?;
        self.remove_leftover(volume, paths)
    }

    fn do_mount(&self, volume: &VolumeName, id: &str) -> Result<PathBuf, LocalError> {
        let (locked, meta) = self.lock_existing(volume)?;
        let paths = &locked.paths;
        let before = store::read_users(volume, paths)?;
        let mut after = before.clone();
        let added = after.users.insert(id.to_owned());
        // The user is recorded before the kernel is touched (as the isolator's checkpoint is):
        // a crash in between leaves a user whose Unmount releases the volume, never a mount
        // that no record explains.
        if added {
            store::write_users(volume, paths, &after)?;
        }
        // Every Mount checks the host, so a mount lost since (or a crash) is repaired.
        if let Err(e) = mounting::activate(self.host.as_ref(), volume, &meta.kind, paths) {
            let restore = if added {
                store::write_users(volume, paths, &before)
            } else {
                Ok(())
            };
            return Err(e.with_cleanup(restore));
        }
        Ok(paths.data.clone())
    }

    fn do_unmount(&self, volume: &VolumeName, id: &str) -> Result<(), LocalError> {
        let (locked, meta) = self.lock_existing(volume)?;
        let paths = &locked.paths;
        let host = self.host.as_ref();
        let mut users = store::read_users(volume, paths)?;
        if users.users.remove(id) {
            // The set is written before the release and stays without `id` when the release
            // fails: the error is reported, and the retry of this Unmount (below) or the next
            // Mount repairs the host. Keeping `id` instead would pin the volume if the caller
            // never retries (MESOS-10126).
            store::write_users(volume, paths, &users)?;
            if users.users.is_empty() {
                mounting::deactivate(host, volume, &meta.kind, paths)?;
            }
            return Ok(());
        }
        if users.users.is_empty() && mounting::is_active(host, volume, &meta.kind, paths)? {
            // No users, but still mounted or attached: an earlier release failed or was cut
            // short. Retrying it is what this Unmount is for.
            return mounting::deactivate(host, volume, &meta.kind, paths);
        }
        Err(LocalError::UnknownUser {
            volume: volume.to_string(),
            id: id.to_owned(),
        })
    }

    /// `_data` when callers may use it: always for a directory, while it has users otherwise
    /// (an unmounted `_data` is the empty directory below the filesystem; writing there would
    /// hide data from the volume).
    fn mountpoint(meta: &Meta, users: &Users, paths: &VolumePaths) -> Option<PathBuf> {
        (!meta.kind.is_mounted_kind() || !users.users.is_empty()).then(|| paths.data.clone())
    }

    fn info(volume: &VolumeName, meta: &Meta, users: &Users, paths: &VolumePaths) -> VolumeInfo {
        let mut status = serde_json::json!({
            "kind": meta.kind.name(),
            "users": users.users.len(),
        });
        match &meta.kind {
            VolumeKind::Directory => {}
            VolumeKind::Block { size, fstype } => {
                status["size"] = (*size).into();
                status["fstype"] = fstype.as_str().into();
            }
            VolumeKind::Device {
                fstype,
                device,
                options,
            } => {
                status["type"] = fstype.as_str().into();
                status["device"] = device.as_str().into();
                if let Some(o) = options {
                    status["o"] = o.as_str().into();
                }
            }
        }
        VolumeInfo {
            name: volume.to_string(),
            mountpoint: Self::mountpoint(meta, users, paths),
            created_at: Some(meta.created_at.clone()),
            status: Some(status),
        }
    }

    fn do_get(&self, volume: &VolumeName) -> Result<Option<VolumeInfo>, LocalError> {
        // Not taking (and so not creating) a lock for a name that has never been a volume.
        let Some(root) = self.existing_root()? else {
            return Ok(None);
        };
        if !VolumePaths::new(&root, volume).meta.exists() {
            return Ok(None);
        }
        let locked = self.lock_at(&root, volume)?;
        let Some(meta) = store::read_meta(volume, &locked.paths)? else {
            return Ok(None);
        };
        let users = store::read_users(volume, &locked.paths)?;
        Ok(Some(Self::info(volume, &meta, &users, &locked.paths)))
    }

    fn do_path(&self, volume: &VolumeName) -> Result<Option<PathBuf>, LocalError> {
        let (locked, meta) = self.lock_existing(volume)?;
        let users = store::read_users(volume, &locked.paths)?;
        Ok(Self::mountpoint(&meta, &users, &locked.paths))
    }

    /// Every committed volume, in name order. Takes no lock (records are replaced atomically,
    /// so each read sees a whole record), so it never waits for or blocks an operation. A
    /// volume whose records cannot be read is listed with `{"error": …}` as its status rather
    /// than hidden, so an operator sees it and can remove it; directories without `meta.json`
    /// (a create in progress or cut short) are not volumes and are left out.
    fn do_list(&self) -> Result<Vec<VolumeInfo>, LocalError> {
        let Some(root) = self.existing_root()? else {
            return Ok(Vec::new());
        };
        let entries = fs::read_dir(&root).map_err(self.root_err("read"))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(self.root_err("read"))?;
            let Some(volume) = entry
                .file_name()
                .to_str()
                .and_then(|n| VolumeName::new(n).ok())
            else {
                continue;
            };
            if volume.as_str() == LOCK_DIR || !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let paths = VolumePaths::new(&root, &volume);
            let read = store::read_meta(&volume, &paths).and_then(|meta| {
                meta.map(|m| Ok((m, store::read_users(&volume, &paths)?)))
                    .transpose()
            });
            match read {
                Ok(Some((meta, users))) => out.push(Self::info(&volume, &meta, &users, &paths)),
                Ok(None) => {}
                Err(e) => out.push(VolumeInfo {
                    name: volume.to_string(),
                    mountpoint: None,
                    created_at: None,
                    status: Some(serde_json::json!({ "error": e.to_string() })),
                }),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

impl VolumeDriver for LocalDriver {
    fn name(&self) -> &DriverName {
        &self.name
    }

    fn activate(&self) -> Result<(), DriverError> {
        Ok(())
    }

    fn create(&self, volume: &VolumeName, opts: &VolumeOpts) -> Result<(), DriverError> {
        self.do_create(volume, opts)
            .map_err(|e| e.into_driver_error(Operation::Create))
    }

    fn remove(&self, volume: &VolumeName) -> Result<(), DriverError> {
        self.do_remove(volume)
            .map_err(|e| e.into_driver_error(Operation::Remove))
    }

    fn mount(&self, volume: &VolumeName, id: &str) -> Result<PathBuf, DriverError> {
        self.do_mount(volume, id)
            .map_err(|e| e.into_driver_error(Operation::Mount))
    }

    fn unmount(&self, volume: &VolumeName, id: &str) -> Result<(), DriverError> {
        self.do_unmount(volume, id)
            .map_err(|e| e.into_driver_error(Operation::Unmount))
    }

    fn path(&self, volume: &VolumeName) -> Result<Option<PathBuf>, DriverError> {
        self.do_path(volume)
            .map_err(|e| e.into_driver_error(Operation::Path))
    }

    fn get(&self, volume: &VolumeName) -> Result<Option<VolumeInfo>, DriverError> {
        self.do_get(volume)
            .map_err(|e| e.into_driver_error(Operation::Get))
    }

    fn list(&self) -> Result<Vec<VolumeInfo>, DriverError> {
        self.do_list()
            .map_err(|e| e.into_driver_error(Operation::List))
    }

    fn capabilities(&self) -> Result<Scope, DriverError> {
        Ok(Scope::Local)
    }

    fn device_options(&self, opts: &VolumeOpts) -> Vec<String> {
        device_options(opts)
    }

    fn fixed_mountpoint(&self, volume: &VolumeName) -> Option<PathBuf> {
        Some(Self::mountpoint_under(&self.root, volume))
    }
}

#[cfg(test)]
mod tests;
