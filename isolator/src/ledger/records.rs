//! The two record kinds of the ledger and the volume key.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use crate::container_id::ContainerId;
use crate::holder::Holder;
use crate::names::{DriverName, VolumeName};

/// The record format this build writes and reads. A record with another version is treated as
/// unreadable (moved aside, handled conservatively), never guessed at.
pub const FORMAT: u32 = 1;

/// A volume's identity: (driver, name), case-sensitive (SPEC §4).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct VolumeKey {
    pub driver: DriverName,
    pub name: VolumeName,
}

impl VolumeKey {
    pub fn new(driver: DriverName, name: VolumeName) -> Self {
        Self { driver, name }
    }
}

impl fmt::Display for VolumeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "volume {:?} (driver {})",
            self.name.as_str(),
            self.driver
        )
    }
}

/// Where a container is in its life, as far as volumes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    /// Intent written; volumes are being mounted. Holds references to the volumes it lists.
    Preparing,
    /// Every volume mounted or shared, bind targets made. Holds references.
    Prepared,
    /// Cleanup began: holds *no* references any more; the record only says what to release.
    Cleaning,
}

impl ContainerState {
    /// Whether a container in this state holds references to its volumes.
    pub fn holds_references(self) -> bool {
        !matches!(self, ContainerState::Cleaning)
    }
}

/// One volume as a container uses it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeUse {
    pub driver: DriverName,
    pub name: VolumeName,
    /// As given in `DVDI_VOLUME_CONTAINERPATH`; `None`: the task uses the host mount point.
    pub container_path: Option<String>,
    /// The host-visible bind target the container path was planned to.
    pub target: Option<PathBuf>,
    pub readonly: bool,
    /// The mount this container joined, copied from the volume record once mounted, so a lost
    /// volume record can be rebuilt from its containers.
    #[serde(default)]
    pub mount_id: Option<String>,
    #[serde(default)]
    pub mountpoint: Option<PathBuf>,
}

impl VolumeUse {
    pub fn key(&self) -> VolumeKey {
        VolumeKey::new(self.driver.clone(), self.name.clone())
    }
}

/// `containers/<id>.json`: what a container asked for and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerRecord {
    pub format: u32,
    pub container_id: ContainerId,
    pub state: ContainerState,
    pub volumes: Vec<VolumeUse>,
    /// Set by `dvdcli exec`: the process whose death releases the container. Such a container
    /// is governed by that process's liveness, not by the agent's lists in `recover`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
}

impl ContainerRecord {
    pub fn new(container_id: ContainerId, volumes: Vec<VolumeUse>, holder: Option<Holder>) -> Self {
        Self {
            format: FORMAT,
            container_id,
            state: ContainerState::Preparing,
            volumes,
            holder,
        }
    }

    /// Whether this record holds a reference to `key`.
    pub fn holds(&self, key: &VolumeKey) -> bool {
        self.state.holds_references()
            && self
                .volumes
                .iter()
                .any(|u| u.driver == key.driver && u.name == key.name)
    }
}

/// The state of a volume's current mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountState {
    /// The id is on disk; the driver's Mount was called or is about to be. After a crash the
    /// driver may or may not have mounted.
    Mounting,
    Mounted,
    /// The last holder left; the driver's Unmount was called or is about to be.
    Unmounting,
}

/// The current mount of a volume: one driver Mount, to be matched by one Unmount with the id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountRecord {
    pub id: String,
    pub state: MountState,
    pub mountpoint: Option<PathBuf>,
    /// What the mount point was when Mount returned (absent in records of older versions and
    /// while `mounting`): checked before the mount is shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::mountinfo::MountIdentity>,
}

/// A mount whose Unmount failed: no holder pins it; its Unmount is retried (same id) on the
/// next `recover`, `prepare` or `cleanup` that touches the volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailedUnmount {
    pub mount_id: String,
    pub mountpoint: Option<PathBuf>,
    pub last_error: String,
    pub attempts: u32,
    /// The driver may not hold this id (any more): its Mount, or an Unmount of it, got no
    /// answer (timed out, cut off, unreadable) and may or may not have taken effect. A later
    /// retry the driver refuses then forgets it rather than retrying forever.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncertain: bool,
    /// Its Mount got no answer in time and may still be running in the plugin: until this
    /// time (ms since the Unix epoch) a refused Unmount proves nothing — the Mount can land
    /// after it — so the id is kept for another retry rather than forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_may_land_until_ms: Option<u64>,
}

impl FailedUnmount {
    /// Whether a refusal of its Unmount at `now_ms` may still be followed by its late Mount.
    pub fn mount_may_still_land(&self, now_ms: u64) -> bool {
        self.mount_may_land_until_ms
            .is_some_and(|until| now_ms < until)
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `volumes/<driver>/<encoded-name>.json`: one volume's mount and its holders.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeRecord {
    pub format: u32,
    pub driver: DriverName,
    pub name: VolumeName,
    #[serde(default)]
    pub mount: Option<MountRecord>,
    /// Containers holding the volume. A cache of what the container records say (updated
    /// under the volume lock; repaired by `recover`), never a counter.
    #[serde(default)]
    pub holders: BTreeSet<ContainerId>,
    #[serde(default)]
    pub failed_unmounts: Vec<FailedUnmount>,
}

/// A volume's state as an operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeState {
    Mounting,
    Mounted,
    Unmounting,
    /// Not mounted by us any more, but an Unmount failed and will be retried.
    UnmountFailed,
    /// Nothing left to do (such a record is deleted).
    Idle,
}

impl VolumeRecord {
    pub fn new(key: &VolumeKey) -> Self {
        Self {
            format: FORMAT,
            driver: key.driver.clone(),
            name: key.name.clone(),
            mount: None,
            holders: BTreeSet::new(),
            failed_unmounts: Vec::new(),
        }
    }

    pub fn key(&self) -> VolumeKey {
        VolumeKey::new(self.driver.clone(), self.name.clone())
    }

    pub fn state(&self) -> VolumeState {
        match (&self.mount, self.failed_unmounts.is_empty()) {
            (Some(m), _) => match m.state {
                MountState::Mounting => VolumeState::Mounting,
                MountState::Mounted => VolumeState::Mounted,
                MountState::Unmounting => VolumeState::Unmounting,
            },
            (None, false) => VolumeState::UnmountFailed,
            (None, true) => VolumeState::Idle,
        }
    }

    /// Whether the record says nothing worth keeping.
    pub fn is_idle(&self) -> bool {
        self.mount.is_none() && self.failed_unmounts.is_empty() && self.holders.is_empty()
    }

    /// Remembers a failed Unmount of `mount` for retry.
    pub fn remember_failed_unmount(&mut self, mount: &MountRecord, error: String) {
        match self
            .failed_unmounts
            .iter_mut()
            .find(|f| f.mount_id == mount.id)
        {
            Some(f) => {
                f.last_error = error;
                f.attempts += 1;
            }
            None => self.failed_unmounts.push(FailedUnmount {
                mount_id: mount.id.clone(),
                mountpoint: mount.mountpoint.clone(),
                last_error: error,
                attempts: 1,
                uncertain: false,
                mount_may_land_until_ms: None,
            }),
        }
    }
}
