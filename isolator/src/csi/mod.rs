//! CSI plugins as the third kind of driver, beside Docker plugins and `local` (issue 13).
//!
//! A CSI plugin is named by the operator (a file in `csi_config_dir`, see [`config`]); a task
//! only names the driver. [`CsiDriver`] implements the Docker-shaped [`VolumeDriver`] over it,
//! so the ledger, prepare, cleanup, recover and every `dvdcli` command use a CSI volume the
//! way they use any other: mounted once per host, bound into each container from there.
//!
//! - `create` → `CreateVolume` (keyed by the DVDI name, so every agent gets the same volume
//!   id; a node-only plugin's volumes are pre-provisioned: the name is the id), and the id is
//!   recorded on this host under the plugin's `root`.
//! - `mount` of the first user → `ControllerPublishVolume` (with `NodeGetInfo`'s node id, when
//!   the controller has `PUBLISH_UNPUBLISH_VOLUME`), `NodeStageVolume` (when the node has
//!   `STAGE_UNSTAGE_VOLUME`) at `root/<volume>/staging`, `NodePublishVolume` at
//!   `root/<volume>/target`, which is the mount point handed back.
//! - `unmount` of the last user → the same calls undone, in reverse order.
//! - `remove` → `DeleteVolume` (controller plugins), and the host's record goes.
//!
//! Users are the set of mount ids given to `mount`, kept on disk under the volume's `flock`
//! (as the `local` driver keeps them), so a retried `Unmount` of an id whose release failed
//! never unpublishes a volume that a later `Mount` published again.
//!
//! Every function of the module's code (not its tests) is `#[cold]`: LLVM then places it
//! apart from the code every `dvdcli mount` runs, and the kernel's fault-around maps fewer of
//! the binary's pages into each `dvdcli` (peak RSS of a `local` mount of the static `dvdcli`:
//! 2,288 KiB before CSI, 2,644 KiB with it, 2,468 KiB with it cold; BENCHMARKS.md, issue 13).
//! A CSI operation runs a program and makes gRPC calls: a branch mispredicted there is
//! nothing.
//!
//! The gRPC calls themselves run in the `dvdi-csi` program (the `csi/` crate), one process per
//! operation, so that neither `dvdcli` nor the cdylib links a gRPC stack ([`wire`] is what the
//! two say to each other). The library stays blocking: it writes the request, reads the reply,
//! and kills the program if it outlives every deadline of its calls together.

pub mod config;
mod error;
mod helper;
mod store;
pub mod wire;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Timeouts;
use crate::driver::{DriverError, Operation, Scope, VolumeDriver, VolumeInfo};
use crate::metrics::Counter;
use crate::names::{DriverName, VolumeName};
use crate::opts::VolumeOpts;

pub use crate::config::DEFAULT_CSI_CLIENT as DEFAULT_HELPER;
pub use config::{ConfigError, CsiConfig};
pub use error::CsiError;
use store::{Lock, Record, Store};

pub use crate::config::DEFAULT_CSI_CONFIG_DIR as DEFAULT_CONFIG_DIR;

/// How many more times a CSI call that got no answer is sent, in the same operation, on a new
/// connection. Every CSI call is idempotent (the spec requires it), so a call whose deadline
/// passed may be sent again — which a Docker plugin's `Unmount` (a reference count) never
/// allowed.
pub const RETRIES: u32 = 1;

/// A CSI plugin as a [`VolumeDriver`].
pub struct CsiDriver {
    config: CsiConfig,
    helper: PathBuf,
    timeouts: Timeouts,
    store: Store,
    timeouts_counter: Option<Arc<Counter>>,
}

impl CsiDriver {
    #[cold]
    pub fn new(config: CsiConfig, helper: PathBuf, timeouts: Timeouts) -> Self {
        let store = Store::new(config.root.clone());
        Self {
            config,
            helper,
            timeouts,
            store,
            timeouts_counter: None,
        }
    }

    /// Counts each operation that failed because a call's deadline passed.
    #[cold]
    pub fn counting_timeouts(mut self, counter: Arc<Counter>) -> Self {
        self.timeouts_counter = Some(counter);
        self
    }

    #[cold]
    pub fn config(&self) -> &CsiConfig {
        &self.config
    }

    /// The publish target of `volume`: the mount point every user gets.
    #[cold]
    pub fn target_path(&self, volume: &VolumeName) -> PathBuf {
        self.store.paths(volume).target
    }

    /// The request of `op` about `volume` (`None`: the identity calls alone).
    #[cold]
    fn request(
        &self,
        op: wire::Op,
        volume: Option<&VolumeName>,
    ) -> Result<wire::Request, CsiError> {
        let ms = |d: std::time::Duration| d.as_millis().clamp(1, u64::MAX as u128) as u64;
        let controller_secrets = self
            .config
            .read_secrets(self.config.controller_secrets.as_deref())?;
        let node_secrets = self
            .config
            .read_secrets(self.config.node_secrets.as_deref())?;
        Ok(wire::Request {
            version: wire::WIRE_VERSION,
            op,
            driver: self.config.driver.to_string(),
            plugin_name: self.config.plugin_name.clone(),
            node: self.config.node.clone(),
            controller: self.config.controller.clone(),
            volume: volume.map(VolumeName::to_string).unwrap_or_default(),
            volume_id: None,
            volume_context: BTreeMap::new(),
            capability: wire::Capability {
                fs_type: self.config.fs_type.clone(),
                mount_flags: self.config.mount_flags.clone(),
                read_only: false,
            },
            capacity: None,
            parameters: self.config.parameters.clone(),
            staging_path: None,
            target_path: None,
            controller_secrets,
            node_secrets,
            deadlines: wire::Deadlines {
                connect_ms: ms(self.timeouts.connect_window),
                create_ms: ms(self.timeouts.create),
                mount_ms: ms(self.timeouts.mount),
                other_ms: ms(self.timeouts.other),
            },
            retries: RETRIES,
        })
    }

    /// Runs `request`, handing `lock` (the volume's, held by the caller) to the program.
    #[cold]
    fn run(&self, request: &wire::Request, lock: Option<&Lock>) -> Result<wire::Done, CsiError> {
        let result = helper::run(&self.helper, request, lock.map(Lock::fd));
        if let Err(CsiError::Call { error, .. }) = &result {
            if error.kind == wire::ErrorKind::Timeout {
                if let Some(c) = &self.timeouts_counter {
                    c.increment();
                }
            }
        }
        result
    }

    /// The request of a publish or unpublish of the volume `record` describes.
    #[cold]
    fn volume_request(
        &self,
        op: wire::Op,
        volume: &VolumeName,
        record: &Record,
    ) -> Result<wire::Request, CsiError> {
        let paths = self.store.paths(volume);
        let mut request = self.request(op, Some(volume))?;
        request.volume_id = Some(record.volume_id.clone());
        request.volume_context = record.volume_context.clone();
        request.capability = record.capability.clone();
        request.staging_path = Some(paths.staging);
        request.target_path = Some(paths.target);
        Ok(request)
    }

    #[cold]
    fn do_create(&self, volume: &VolumeName, opts: &VolumeOpts) -> Result<(), CsiError> {
        let mut request = self.request(wire::Op::Create, Some(volume))?;
        for (key, value) in opts.iter() {
            match key {
                "size" => {
                    let bytes =
                        crate::local::parse_size(value).map_err(|reason| CsiError::BadOption {
                            driver: self.config.driver.to_string(),
                            volume: volume.to_string(),
                            key: key.to_owned(),
                            reason,
                        })?;
                    request.capacity = Some(bytes);
                }
                "fstype" => request.capability.fs_type = Some(value.to_owned()),
                "readonly" | "ro" => {
                    request.capability.read_only = match value.to_ascii_lowercase().as_str() {
                        "true" | "" => true,
                        "false" => false,
                        _ => {
                            return Err(CsiError::BadOption {
                                driver: self.config.driver.to_string(),
                                volume: volume.to_string(),
                                key: key.to_owned(),
                                reason: "expected true or false".into(),
                            })
                        }
                    }
                }
                _ => {
                    request.parameters.insert(key.to_owned(), value.to_owned());
                }
            }
        }
        let lock = self.store.lock(volume)?;
        let done = self.run(&request, Some(&lock))?;
        let record = Record::new(
            done.volume_id.unwrap_or_else(|| volume.to_string()),
            done.capacity,
            done.volume_context,
            request.capability,
        );
        self.store.write_record(volume, &record)
    }

    /// The volume's record; a node-only plugin's volume needs none (pre-provisioned: its name
    /// is its id).
    #[cold]
    fn record_or_preprovisioned(&self, volume: &VolumeName) -> Result<Option<Record>, CsiError> {
        if let Some(record) = self.store.read_record(volume)? {
            return Ok(Some(record));
        }
        Ok((self.config.controller.is_none()).then(|| {
            Record::new(
                volume.to_string(),
                None,
                BTreeMap::new(),
                wire::Capability {
                    fs_type: self.config.fs_type.clone(),
                    mount_flags: self.config.mount_flags.clone(),
                    read_only: false,
                },
            )
        }))
    }

    #[cold]
    fn do_remove(&self, volume: &VolumeName) -> Result<(), CsiError> {
        let lock = self.store.lock(volume)?;
        let Some(record) = self.record_or_preprovisioned(volume)? else {
            return Err(self.no_such_volume(volume));
        };
        let users = self.store.read_users(volume)?;
        if !users.users.is_empty() || users.published {
            return Err(CsiError::InUse {
                driver: self.config.driver.to_string(),
                volume: volume.to_string(),
                users: users.users.len(),
            });
        }
        let mut request = self.volume_request(wire::Op::Delete, volume, &record)?;
        request.staging_path = None;
        request.target_path = None;
        self.run(&request, Some(&lock))?;
        self.store.remove_volume(volume)
    }

    #[cold]
    fn no_such_volume(&self, volume: &VolumeName) -> CsiError {
        CsiError::NoSuchVolume {
            driver: self.config.driver.to_string(),
            volume: volume.to_string(),
        }
    }

    #[cold]
    fn do_mount(&self, volume: &VolumeName, id: &str) -> Result<PathBuf, CsiError> {
        let lock = self.store.lock(volume)?;
        let Some(record) = self.record_or_preprovisioned(volume)? else {
            return Err(self.no_such_volume(volume));
        };
        let before = self.store.read_users(volume)?;
        let mut after = before.clone();
        after.users.insert(id.to_owned());
        after.published = true;
        // The user, and that a publish may be under way, are on disk before any call (as the
        // isolator's checkpoint is): a crash in between leaves a user whose Unmount
        // unpublishes, never a publish nothing explains.
        let added = after != before;
        if added {
            self.store.write_users(volume, &after)?;
            crate::fault::point("csi.user_added");
        }
        // Every Mount publishes (idempotent): one lost since, or cut short, is repaired.
        let published = self
            .store
            .make_dirs(volume)
            .and_then(|()| self.volume_request(wire::Op::Publish, volume, &record))
            .and_then(|request| self.run(&request, Some(&lock)));
        match published {
            Ok(_) => {
                crate::fault::point("csi.published");
                Ok(self.target_path(volume))
            }
            // The plugin may have published: the user stays, and its Unmount undoes it.
            Err(e) if e.may_have_acted() => Err(e),
            Err(e) => {
                if added {
                    if let Err(restore) = self.store.write_users(volume, &before) {
                        return Err(CsiError::WithCleanup {
                            error: Box::new(e),
                            cleanup: Box::new(restore),
                        });
                    }
                }
                Err(e)
            }
        }
    }

    #[cold]
    fn do_unmount(&self, volume: &VolumeName, id: &str) -> Result<(), CsiError> {
        let lock = self.store.lock(volume)?;
        let Some(record) = self.record_or_preprovisioned(volume)? else {
            return Err(self.no_such_volume(volume));
        };
        let mut users = self.store.read_users(volume)?;
        let held = users.users.contains(id);
        let others = users.users.iter().any(|u| u != id);
        if held && (others || !users.published) {
            users.users.remove(id);
            return self.store.write_users(volume, &users);
        }
        if !held && (others || !users.published) {
            return Err(CsiError::UnknownUser {
                driver: self.config.driver.to_string(),
                volume: volume.to_string(),
                id: id.to_owned(),
            });
        }
        // The last user goes (now, or went in an earlier Unmount whose release failed or was
        // cut short): unpublish. The calls are idempotent, so a retry after a partial release
        // sends them all again. The user stays on disk until the release is done: one write
        // for the whole Unmount, and a crash in between leaves a user whose retried Unmount
        // releases the volume.
        crate::fault::point("csi.before_unpublish");
        let released = self
            .volume_request(wire::Op::Unpublish, volume, &record)
            .and_then(|request| self.run(&request, Some(&lock)));
        users.users.remove(id);
        if let Err(e) = released {
            // Left without `id` (still to be unpublished): the retry of this Unmount repairs
            // the host, and a caller that never retries does not pin the volume (as the
            // `local` driver does, MESOS-10126).
            if held {
                if let Err(cleanup) = self.store.write_users(volume, &users) {
                    return Err(CsiError::WithCleanup {
                        error: Box::new(e),
                        cleanup: Box::new(cleanup),
                    });
                }
            }
            return Err(e);
        }
        crate::fault::point("csi.unpublished");
        users.published = false;
        self.store.write_users(volume, &users)
    }

    #[cold]
    fn info(&self, volume: &VolumeName, record: &Record, users: usize) -> VolumeInfo {
        let mut status = serde_json::json!({
            "kind": "csi",
            "volume_id": record.volume_id,
            "users": users,
        });
        if let Some(c) = record.capacity {
            status["capacity"] = c.into();
        }
        VolumeInfo {
            name: volume.to_string(),
            mountpoint: (users > 0).then(|| self.target_path(volume)),
            created_at: record.created_at.clone(),
            status: Some(status),
        }
    }

    #[cold]
    fn do_get(&self, volume: &VolumeName) -> Result<Option<VolumeInfo>, CsiError> {
        let Some(record) = self.record_or_preprovisioned(volume)? else {
            return Ok(None);
        };
        let users = self.store.read_users(volume)?;
        Ok(Some(self.info(volume, &record, users.users.len())))
    }

    #[cold]
    fn do_list(&self) -> Result<Vec<VolumeInfo>, CsiError> {
        let mut out = Vec::new();
        for volume in self.store.volumes()? {
            match self
                .store
                .read_record(&volume)
                .and_then(|r| Ok((r, self.store.read_users(&volume)?)))
            {
                Ok((Some(record), users)) => {
                    out.push(self.info(&volume, &record, users.users.len()))
                }
                Ok((None, _)) => {}
                Err(e) => out.push(VolumeInfo {
                    name: volume.to_string(),
                    mountpoint: None,
                    created_at: None,
                    status: Some(serde_json::json!({ "error": e.to_string() })),
                }),
            }
        }
        Ok(out)
    }
}

impl VolumeDriver for CsiDriver {
    #[cold]
    fn name(&self) -> &DriverName {
        &self.config.driver
    }

    /// The identity calls: the plugin is there, is the one configured, and is ready.
    #[cold]
    fn activate(&self) -> Result<(), DriverError> {
        self.request(wire::Op::Probe, None)
            .and_then(|r| self.run(&r, None))
            .map(|_| ())
            .map_err(|e| e.into_driver_error(Operation::Activate))
    }

    #[cold]
    fn create(&self, volume: &VolumeName, opts: &VolumeOpts) -> Result<(), DriverError> {
        self.do_create(volume, opts)
            .map_err(|e| e.into_driver_error(Operation::Create))
    }

    #[cold]
    fn remove(&self, volume: &VolumeName) -> Result<(), DriverError> {
        self.do_remove(volume)
            .map_err(|e| e.into_driver_error(Operation::Remove))
    }

    #[cold]
    fn mount(&self, volume: &VolumeName, id: &str) -> Result<PathBuf, DriverError> {
        self.do_mount(volume, id)
            .map_err(|e| e.into_driver_error(Operation::Mount))
    }

    #[cold]
    fn unmount(&self, volume: &VolumeName, id: &str) -> Result<(), DriverError> {
        self.do_unmount(volume, id)
            .map_err(|e| e.into_driver_error(Operation::Unmount))
    }

    #[cold]
    fn path(&self, volume: &VolumeName) -> Result<Option<PathBuf>, DriverError> {
        self.do_get(volume)
            .map(|info| info.and_then(|i| i.mountpoint))
            .map_err(|e| e.into_driver_error(Operation::Path))
    }

    #[cold]
    fn get(&self, volume: &VolumeName) -> Result<Option<VolumeInfo>, DriverError> {
        self.do_get(volume)
            .map_err(|e| e.into_driver_error(Operation::Get))
    }

    #[cold]
    fn list(&self) -> Result<Vec<VolumeInfo>, DriverError> {
        self.do_list()
            .map_err(|e| e.into_driver_error(Operation::List))
    }

    /// A CSI volume published on this host serves this host: `local`, as Docker would say.
    #[cold]
    fn capabilities(&self) -> Result<Scope, DriverError> {
        Ok(Scope::Local)
    }

    #[cold]
    fn fixed_mountpoint(&self, volume: &VolumeName) -> Option<PathBuf> {
        Some(self.target_path(volume))
    }
}

/// Where a CSI plugin whose `root` is `root` publishes `volume` on this host.
#[cold]
pub fn target_path(root: &Path, volume: &VolumeName) -> PathBuf {
    Store::new(root.to_owned()).paths(volume).target
}

#[cfg(test)]
mod tests;
