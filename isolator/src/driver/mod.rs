//! The volume-driver interface: the [`VolumeDriver`] trait, what a driver says about a volume
//! ([`VolumeInfo`], [`Scope`]), and the one error every driver returns ([`DriverError`]),
//! which says what happened to the call — not which implementation failed.
//!
//! This module knows no implementation. The Docker plugin client (`plugin`), the embedded
//! `local` driver (`local`) and any later kind each depend on this module and map their own
//! failures onto an [`Outcome`] in their own module; the resolver that builds them for a name
//! lives outside, in `resolver`, so that no module here imports an implementation and
//! nothing forms an import cycle (checked by `isolator/tests/no_import_cycle.rs`).

mod error;

use std::path::PathBuf;

use crate::names::{DriverName, VolumeName};
use crate::opts::VolumeOpts;

pub use error::{DriverError, Operation, Outcome};

/// A volume as a driver describes it (`Get`, `List`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeInfo {
    pub name: String,
    pub mountpoint: Option<PathBuf>,
    pub created_at: Option<String>,
    pub status: Option<serde_json::Value>,
}

/// A driver's declared scope (`VolumeDriver.Capabilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Local,
    Global,
}

/// The operations of the Docker volume plugin protocol.
pub trait VolumeDriver: Send + Sync {
    fn name(&self) -> &DriverName;
    /// Checks the driver is reachable and implements `VolumeDriver`.
    fn activate(&self) -> Result<(), DriverError>;
    fn create(&self, volume: &VolumeName, opts: &VolumeOpts) -> Result<(), DriverError>;
    fn remove(&self, volume: &VolumeName) -> Result<(), DriverError>;
    /// Mounts for user `id`; returns the host mount point.
    fn mount(&self, volume: &VolumeName, id: &str) -> Result<PathBuf, DriverError>;
    /// Releases user `id` (the id given to its `mount`).
    fn unmount(&self, volume: &VolumeName, id: &str) -> Result<(), DriverError>;
    fn path(&self, volume: &VolumeName) -> Result<Option<PathBuf>, DriverError>;
    /// `Ok(None)` when the driver says there is no such volume.
    fn get(&self, volume: &VolumeName) -> Result<Option<VolumeInfo>, DriverError>;
    fn list(&self) -> Result<Vec<VolumeInfo>, DriverError>;
    fn capabilities(&self) -> Result<Scope, DriverError>;

    /// The keys in `opts` that would make this driver mount a host device or path of the
    /// caller's choosing (the `local` driver's `type`, `device`, `o`). A task may set them
    /// only where the operator allows it (`local_device_options`); the plan asks every
    /// driver, so it needs to know no driver's keys. None by default: a plugin's options are
    /// the plugin's to judge.
    fn device_options(&self, opts: &VolumeOpts) -> Vec<String> {
        let _ = opts;
        Vec::new()
    }

    /// Where this driver always mounts `volume`, when that is fixed and known without asking
    /// it (the `local` driver's `root/<name>/_data`). A repair that lost a volume's mount id
    /// looks there to tell the operator a mount is left. None by default: a plugin says its
    /// mount point only in its answers.
    fn fixed_mountpoint(&self, volume: &VolumeName) -> Option<PathBuf> {
        let _ = volume;
        None
    }
}
