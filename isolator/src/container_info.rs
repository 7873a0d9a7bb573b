//! Mesos' own volume grammar: the `DOCKER_VOLUME` entries of `ContainerInfo.volumes`, as the
//! built-in `docker/volume` isolator reads them, become the same [`VolumeRequest`]s the DVDI
//! environment does — and both grammars' requests of one container are merged into one list.
//! Pure logic, no I/O; the front end (the C ABI) only copies the protobuf fields into
//! [`DockerVolume`], and every rule is here.
//!
//! Rules (facts from Mesos' `docker/volume` isolator, and the decisions where we differ):
//! - A volume without a driver is refused, as Mesos refuses it (no default driver: the
//!   framework named a Docker driver or nothing). Driver and name are checked like a
//!   `DVDI_VOLUME_DRIVER`/`NAME` value.
//! - `driver_options.parameter[]` are the plugin's `Create` options, each value taken whole
//!   (no `,` splitting: the protobuf already separates them); a later key wins, as in Mesos'
//!   map. An empty key is refused.
//! - `mode` is `RW` or `RO` (the protobuf's enum names); anything else, or none, is refused.
//! - `container_path` is checked like `DVDI_VOLUME_CONTAINERPATH` (no `..`, normalised).
//!   Where it lands differs from the environment's rule and follows Mesos: absolute → inside
//!   the image's rootfs (created there) or, without an image, on the host (must exist);
//!   relative → under the sandbox (created). See `lifecycle/plan.rs`.
//! - Docker volumes are created on first use unless they exist (Mesos' `dvdcli mount`
//!   without `--explicitcreate`).
//! - The same volume twice in one container — two entries, or an entry and a DVDI slot —
//!   is one mount when both ask for the same container path and mode (Mesos refuses the
//!   duplicate; the DVDI grammar merges it, and one container uses one rule for both); a
//!   different path or mode, or two different option lists, is an error naming both origins.
//!   Two volumes at one container path are an error naming both.
//!   The merged request keeps the first origin — the environment's slot, then the earlier
//!   entry — for its messages and its container-path rule.

use std::fmt;

use crate::grammar::{ContainerPath, ContainerPathError, Origin, VolumeRequest};
use crate::names::{DriverName, NameError, VolumeName};
use crate::opts::VolumeOpts;

/// One `DOCKER_VOLUME` entry of `ContainerInfo.volumes`, its fields as the agent sent them
/// (not yet validated: [`parse_one`] does that).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DockerVolume {
    /// Its index in `container_info.volumes`, counting entries of every type (for messages).
    pub index: usize,
    /// `source.docker_volume.driver` (optional in the protobuf).
    pub driver: Option<String>,
    /// `source.docker_volume.name`.
    pub name: String,
    /// `source.docker_volume.driver_options.parameter[]`, in order.
    #[serde(default)]
    pub options: Vec<(String, String)>,
    /// `container_path`.
    pub container_path: String,
    /// `mode`: `RW` or `RO`.
    pub mode: Option<String>,
}

#[cfg(test)]
impl DockerVolume {
    /// An entry as the tests write one: a driver, no options, a mode.
    pub(crate) fn test(index: usize, driver: &str, name: &str, path: &str, mode: &str) -> Self {
        DockerVolume {
            index,
            driver: Some(driver.into()),
            name: name.into(),
            options: Vec::new(),
            container_path: path.into(),
            mode: Some(mode.into()),
        }
    }
}

/// Why a container's `ContainerInfo` volumes were refused. Every variant names the entry
/// (`container_info.volumes[i]`) and, once known, its driver and name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerVolumeError {
    #[error("{origin} (volume {name:?}): source.docker_volume.driver is not set; a DOCKER_VOLUME needs a driver")]
    NoDriver { origin: Origin, name: String },
    /// A bad driver or volume name; the cause shows the value.
    #[error("{origin}: {cause}")]
    InvalidName { origin: Origin, cause: NameError },
    #[error("{origin} ({volume}): {cause}")]
    InvalidContainerPath {
        origin: Origin,
        volume: Volume,
        cause: ContainerPathError,
    },
    #[error("{origin} ({volume}): mode {} is neither RW nor RO", .mode.as_ref().map_or("(unset)".to_owned(), |m| format!("{m:?}")))]
    InvalidMode {
        origin: Origin,
        volume: Volume,
        mode: Option<String>,
    },
    #[error("{origin} ({volume}): driver option {position} (value {value:?}) has an empty key")]
    EmptyOptionKey {
        origin: Origin,
        volume: Volume,
        position: usize,
        value: String,
    },
    #[error("{volume} is asked for at two container paths, {} by {first} and {} by {second}; a volume is mounted once per container", show_path(.first_path), show_path(.second_path))]
    VolumeAtTwoPaths {
        volume: Volume,
        first: Origin,
        first_path: Option<ContainerPath>,
        second: Origin,
        second_path: Option<ContainerPath>,
    },
    #[error("{volume} is asked for {} by {first} and {} by {second}; one bind mount cannot be both", rw(*.first_readonly), rw(!*.first_readonly))]
    ConflictingReadOnly {
        volume: Volume,
        first: Origin,
        first_readonly: bool,
        second: Origin,
    },
    #[error("{volume}: {first} and {second} give different options; options are used to create it, so they must agree")]
    ConflictingOpts {
        volume: Volume,
        first: Origin,
        second: Origin,
    },
    #[error("two volumes at container path {path}: {first_volume} by {first} and {second_volume} by {second}")]
    SharedContainerPath {
        path: ContainerPath,
        first: Origin,
        first_volume: Volume,
        second: Origin,
        second_volume: Volume,
    },
}

/// A volume as messages name it: `volume "dv1" of driver "capfast"` (escaped, it is input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub driver: String,
    pub name: String,
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "volume {:?} of driver {:?}", self.name, self.driver)
    }
}

impl Volume {
    fn of(request: &VolumeRequest) -> Self {
        Self {
            driver: request.driver.as_str().to_owned(),
            name: request.name.as_str().to_owned(),
        }
    }
}

fn show_path(path: &Option<ContainerPath>) -> String {
    match path {
        Some(p) => format!("{:?}", p.as_str()),
        None => "none (the host mount point)".to_owned(),
    }
}

fn rw(readonly: bool) -> &'static str {
    if readonly {
        "read-only"
    } else {
        "read-write"
    }
}

/// Validates one entry into a request.
pub fn parse_one(volume: &DockerVolume) -> Result<VolumeRequest, Box<DockerVolumeError>> {
    let origin = Origin::ContainerInfo {
        index: volume.index,
    };
    let Some(driver) = &volume.driver else {
        return Err(Box::new(DockerVolumeError::NoDriver {
            origin,
            name: volume.name.clone(),
        }));
    };
    let invalid = |cause| Box::new(DockerVolumeError::InvalidName { origin, cause });
    let driver = DriverName::new(driver).map_err(invalid)?;
    let name = VolumeName::new(&volume.name).map_err(invalid)?;
    let named = || Volume {
        driver: driver.as_str().to_owned(),
        name: name.as_str().to_owned(),
    };
    let container_path = ContainerPath::new(&volume.container_path).map_err(|cause| {
        Box::new(DockerVolumeError::InvalidContainerPath {
            origin,
            volume: named(),
            cause,
        })
    })?;
    let readonly = match volume.mode.as_deref() {
        Some("RW") => false,
        Some("RO") => true,
        other => {
            return Err(Box::new(DockerVolumeError::InvalidMode {
                origin,
                volume: named(),
                mode: other.map(str::to_owned),
            }))
        }
    };
    let mut opts = VolumeOpts::new();
    for (position, (key, value)) in volume.options.iter().enumerate() {
        if key.is_empty() {
            return Err(Box::new(DockerVolumeError::EmptyOptionKey {
                origin,
                volume: named(),
                position,
                value: value.clone(),
            }));
        }
        opts.insert(key.clone(), value.clone());
    }
    Ok(VolumeRequest {
        origin,
        driver,
        name,
        opts,
        container_path: Some(container_path),
        explicit_create: false,
        readonly,
    })
}

/// Validates every entry, in order, and merges each into `requests` (the DVDI environment's,
/// already merged among themselves). Returns what the operator should know.
pub fn parse_into(
    requests: &mut Vec<VolumeRequest>,
    volumes: &[DockerVolume],
) -> Result<Vec<String>, Box<DockerVolumeError>> {
    let mut warnings = Vec::new();
    // Every entry is checked before any is merged: a bad entry is the first thing reported.
    let parsed = volumes
        .iter()
        .map(parse_one)
        .collect::<Result<Vec<_>, _>>()?;
    for request in parsed {
        merge(requests, request, &mut warnings)?;
    }
    Ok(warnings)
}

/// Adds `later` to `requests`, folding it into a request for the same volume.
fn merge(
    requests: &mut Vec<VolumeRequest>,
    later: VolumeRequest,
    warnings: &mut Vec<String>,
) -> Result<(), Box<DockerVolumeError>> {
    let same = requests
        .iter_mut()
        .find(|r| r.driver == later.driver && r.name == later.name);
    if let Some(first) = same {
        let volume = Volume::of(first);
        if first.container_path != later.container_path {
            return Err(Box::new(DockerVolumeError::VolumeAtTwoPaths {
                volume,
                first: first.origin,
                first_path: first.container_path.clone(),
                second: later.origin,
                second_path: later.container_path,
            }));
        }
        if first.readonly != later.readonly {
            return Err(Box::new(DockerVolumeError::ConflictingReadOnly {
                volume,
                first: first.origin,
                first_readonly: first.readonly,
                second: later.origin,
            }));
        }
        if !first.opts.is_empty() && !later.opts.is_empty() && first.opts != later.opts {
            return Err(Box::new(DockerVolumeError::ConflictingOpts {
                volume,
                first: first.origin,
                second: later.origin,
            }));
        }
        warnings.push(format!(
            "{} and {} name the same {volume} at the same place; it is mounted once",
            first.origin, later.origin
        ));
        if first.opts.is_empty() {
            first.opts = later.opts;
        }
        first.explicit_create |= later.explicit_create;
        return Ok(());
    }
    if let Some(path) = &later.container_path {
        if let Some(first) = requests
            .iter()
            .find(|r| r.container_path.as_ref() == Some(path))
        {
            return Err(Box::new(DockerVolumeError::SharedContainerPath {
                path: path.clone(),
                first: first.origin,
                first_volume: Volume::of(first),
                second: later.origin,
                second_volume: Volume::of(&later),
            }));
        }
    }
    requests.push(later);
    Ok(())
}

#[cfg(test)]
mod tests;
