//! The embedded `local` driver (SPEC §8): volumes served in-process under a root directory.
//! (Skeleton: filled in by the local-driver work.)

use std::path::PathBuf;
use std::sync::Arc;

use crate::driver::{DriverError, Scope, VolumeDriver, VolumeInfo};
use crate::names::{DriverName, VolumeName};
use crate::opts::VolumeOpts;
use crate::sys::Host;

/// A local-driver failure.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("local volume {volume:?} does not exist")]
    NoSuchVolume { volume: String },
}

impl LocalError {
    pub fn is_refusal(&self) -> bool {
        true
    }
}

pub struct LocalDriver {
    name: DriverName,
    root: PathBuf,
    host: Arc<dyn Host>,
}

impl LocalDriver {
    pub fn new(root: PathBuf, host: Arc<dyn Host>) -> Self {
        let name = DriverName::new("local").expect("static name is valid");
        Self { name, root, host }
    }
}

impl VolumeDriver for LocalDriver {
    fn name(&self) -> &DriverName {
        &self.name
    }
    fn activate(&self) -> Result<(), DriverError> {
        let _ = (&self.root, &self.host);
        Ok(())
    }
    fn create(&self, volume: &VolumeName, _opts: &VolumeOpts) -> Result<(), DriverError> {
        Err(LocalError::NoSuchVolume {
            volume: volume.to_string(),
        }
        .into())
    }
    fn remove(&self, volume: &VolumeName) -> Result<(), DriverError> {
        Err(LocalError::NoSuchVolume {
            volume: volume.to_string(),
        }
        .into())
    }
    fn mount(&self, volume: &VolumeName, _id: &str) -> Result<PathBuf, DriverError> {
        Err(LocalError::NoSuchVolume {
            volume: volume.to_string(),
        }
        .into())
    }
    fn unmount(&self, volume: &VolumeName, _id: &str) -> Result<(), DriverError> {
        Err(LocalError::NoSuchVolume {
            volume: volume.to_string(),
        }
        .into())
    }
    fn path(&self, volume: &VolumeName) -> Result<Option<PathBuf>, DriverError> {
        Err(LocalError::NoSuchVolume {
            volume: volume.to_string(),
        }
        .into())
    }
    fn get(&self, _volume: &VolumeName) -> Result<Option<VolumeInfo>, DriverError> {
        Ok(None)
    }
    fn list(&self) -> Result<Vec<VolumeInfo>, DriverError> {
        Ok(Vec::new())
    }
    fn capabilities(&self) -> Result<Scope, DriverError> {
        Ok(Scope::Local)
    }
}
