//! The `dvdcli` operations, as flows over a [`VolumeDriver`]: mount with implicit or explicit
//! create, and path lookup. Both front ends use these, so the rules live here once.

use std::path::PathBuf;

use crate::driver::{DriverError, VolumeDriver};
use crate::names::VolumeName;
use crate::opts::VolumeOpts;

/// A failed operation.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("volume {volume:?} does not exist on driver {driver:?} and explicit create is set, so it is not created{}", .detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    MissingExplicit {
        driver: String,
        volume: String,
        detail: Option<String>,
    },
    #[error("volume {volume:?} not found on driver {driver:?}")]
    NotFound { driver: String, volume: String },
}

/// Whether `volume` exists. A driver refusal to `Get` counts as "no" (many plugins answer
/// `Get` of an unknown volume with an error); an unreachable driver is an error.
pub fn exists(
    driver: &dyn VolumeDriver,
    volume: &VolumeName,
) -> Result<(bool, Option<String>), DriverError> {
    match driver.get(volume) {
        Ok(Some(_)) => Ok((true, None)),
        Ok(None) => Ok((false, None)),
        Err(e) if e.is_refusal() => Ok((false, Some(e.to_string()))),
        Err(e) => Err(e),
    }
}

/// `dvdcli mount`: Activate, Get; when missing, fail (explicit create) or Create(opts); Mount.
pub fn mount(
    driver: &dyn VolumeDriver,
    volume: &VolumeName,
    opts: &VolumeOpts,
    explicit_create: bool,
    id: &str,
) -> Result<PathBuf, OpsError> {
    driver.activate()?;
    let (found, detail) = exists(driver, volume)?;
    if !found {
        if explicit_create {
            return Err(OpsError::MissingExplicit {
                driver: driver.name().to_string(),
                volume: volume.to_string(),
                detail,
            });
        }
        driver.create(volume, opts)?;
    }
    Ok(driver.mount(volume, id)?)
}

/// `dvdcli unmount`: Get (the volume must exist), Unmount.
pub fn unmount(driver: &dyn VolumeDriver, volume: &VolumeName, id: &str) -> Result<(), OpsError> {
    let (found, _) = exists(driver, volume)?;
    if !found {
        return Err(OpsError::NotFound {
            driver: driver.name().to_string(),
            volume: volume.to_string(),
        });
    }
    Ok(driver.unmount(volume, id)?)
}

/// `dvdcli path`: the `Get` mount point, else `Path`.
pub fn path(driver: &dyn VolumeDriver, volume: &VolumeName) -> Result<Option<PathBuf>, OpsError> {
    match driver.get(volume)? {
        Some(v) if v.mountpoint.is_some() => Ok(v.mountpoint),
        Some(_) => Ok(driver.path(volume)?),
        None => Err(OpsError::NotFound {
            driver: driver.name().to_string(),
            volume: volume.to_string(),
        }),
    }
}
