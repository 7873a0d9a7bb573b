//! What can go wrong in prepare, cleanup, recover and inspect. Every variant names the
//! container, the volume (driver and name) or the path, and keeps its source.

use std::path::PathBuf;

use crate::container_id::{ContainerId, ContainerIdError};
use crate::container_info::DockerVolumeError;
use crate::driver::DriverError;
use crate::grammar::{GrammarError, Origin};
use crate::ledger::{LedgerError, VolumeKey};
use crate::ops::OpsError;
use crate::sys::WalkError;

/// Why a container path could not be planned or made.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("container path {path:?} has a '..' component")]
    DotDot { path: String },
    #[error("the sandbox {} is not an absolute path", .sandbox.display())]
    SandboxNotAbsolute { sandbox: PathBuf },
    #[error("the rootfs {} is not an absolute path", .rootfs.display())]
    RootfsNotAbsolute { rootfs: PathBuf },
    #[error("container path {path:?}: {} does not exist ({})", .missing.display(), .rule.says())]
    Missing {
        path: String,
        missing: PathBuf,
        /// The grammar's rule for what is created.
        rule: PathRule,
    },
    /// A symlink, a non-directory, or an I/O failure on the way to the target.
    #[error("container path {path:?}: {cause}")]
    Walk { path: String, cause: WalkError },
    /// An absolute path of a container without an image over a protected host directory.
    #[error("{field}={path:?} covers the host directory {}, which the volume of a container without an image may not be mounted over (module parameter protected_host_dirs, DVDI_PROTECTED_HOST_DIRS for dvdcli exec)", .protected.display())]
    ProtectedHostDir {
        /// The `DVDI_VOLUME_CONTAINERPATH…` variable, or `container_info.volumes[i].container_path`.
        field: String,
        path: String,
        protected: PathBuf,
    },
    #[error("container path {path:?}: {} resolves to {}, outside {}", .target.display(), .resolved.display(), .base.display())]
    Escapes {
        path: String,
        target: PathBuf,
        resolved: PathBuf,
        base: PathBuf,
    },
    #[error("container path {path:?}: cannot resolve {}: {cause}", .target.display())]
    Resolve {
        path: String,
        target: PathBuf,
        cause: std::io::Error,
    },
}

/// A task's `DVDI_VOLUME_OPTS` (or a `DOCKER_VOLUME`'s driver options) gave the `local` driver
/// options that mount a host path or device, and the operator did not allow them
/// (`local_device_options`).
#[derive(Debug, thiserror::Error)]
#[error("{field} sets {options}, the local driver's device options, which a task may not use here: they mount a host path or device (an operator allows them with the module parameter local_device_options, or DVDI_LOCAL_DEVICE_OPTIONS=true for dvdcli exec)")]
pub struct DeviceOptionsRefused {
    /// The `DVDI_VOLUME_OPTS…` variable, or `container_info.volumes[i]…driver_options`.
    pub field: String,
    /// The refused keys, comma-separated.
    pub options: String,
}

/// Which of the two container-path rules a target follows: what is created, and what must
/// already exist (see `lifecycle/plan.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRule {
    /// `DVDI_VOLUME_CONTAINERPATH`: created under the sandbox and under `/tmp/`.
    Env,
    /// A `DOCKER_VOLUME`'s `container_path` (Mesos' rule): created under the sandbox and
    /// inside an image's rootfs; an image-less container's absolute path must exist.
    ContainerInfo,
}

impl PathRule {
    fn says(self) -> &'static str {
        match self {
            PathRule::Env => "only paths under /tmp/ and under the sandbox are created",
            PathRule::ContainerInfo => {
                "a DOCKER_VOLUME's absolute container path must exist on the host when the container has no image"
            }
        }
    }
}

/// Why the volume root could not be given to the task's user.
#[derive(Debug, thiserror::Error)]
#[error("cannot give the volume root {} to user {user:?}: {reason}", .path.display())]
pub struct ChownError {
    pub path: PathBuf,
    pub user: String,
    pub reason: String,
}

/// A failed isolator operation.
#[derive(Debug, thiserror::Error)]
pub enum IsolatorError {
    #[error(transparent)]
    InvalidContainerId(#[from] ContainerIdError),
    #[error("container {container}: {cause}")]
    Grammar {
        container: ContainerId,
        cause: Box<GrammarError>,
    },
    /// A bad `DOCKER_VOLUME` of `ContainerInfo.volumes`, or one that conflicts with another
    /// request of the container.
    #[error("container {container}: {cause}")]
    ContainerInfo {
        container: ContainerId,
        cause: Box<DockerVolumeError>,
    },
    #[error("container {container}: {volume} ({origin}): driver {} is not allowed on this agent (allowed: {allowed})", .volume.driver)]
    DriverNotAllowed {
        container: ContainerId,
        volume: VolumeKey,
        origin: Origin,
        allowed: String,
    },
    #[error("container {container}: {volume} ({origin}): {cause}")]
    LocalDeviceOptions {
        container: ContainerId,
        volume: VolumeKey,
        origin: Origin,
        cause: Box<DeviceOptionsRefused>,
    },
    #[error("container {container}: {volume} ({origin}): cannot use the driver: {cause}")]
    Resolve {
        container: ContainerId,
        volume: VolumeKey,
        origin: Origin,
        cause: Box<DriverError>,
    },
    #[error("container {container}: {volume} ({origin}): {cause}")]
    ContainerPath {
        container: ContainerId,
        volume: VolumeKey,
        origin: Origin,
        cause: Box<PathError>,
    },
    /// An agent container with an id only `dvdcli exec` may use (its holder is read from it).
    #[error("container {container}: ids starting with {prefix:?} are reserved for dvdcli exec")]
    ReservedId {
        container: ContainerId,
        prefix: &'static str,
    },
    #[error("container {container} is already prepared (its record is {})", .record.display())]
    AlreadyPrepared {
        container: ContainerId,
        record: PathBuf,
    },
    #[error("container {container}: {volume}: mount (id {mount_id}) failed: {cause}")]
    Mount {
        container: ContainerId,
        volume: VolumeKey,
        mount_id: String,
        cause: Box<OpsError>,
    },
    #[error("{volume}: unmount (id {mount_id}) failed: {cause}; remembered for retry, and it no longer holds the volume")]
    Unmount {
        volume: VolumeKey,
        mount_id: String,
        cause: Box<DriverError>,
    },
    #[error("container {container}: {volume}: {cause}")]
    Chown {
        container: ContainerId,
        volume: VolumeKey,
        cause: Box<ChownError>,
    },
    #[error("container {container}: {cause}")]
    Ledger {
        container: ContainerId,
        cause: Box<LedgerError>,
    },
    #[error("{volume}: {cause}")]
    VolumeLedger {
        volume: VolumeKey,
        cause: Box<LedgerError>,
    },
    #[error(transparent)]
    Checkpoint(Box<LedgerError>),
    #[error("cannot make a mount id: {0}")]
    MountId(std::io::Error),
    /// A prepare failed and releasing what it had done failed too: both are kept.
    #[error("{primary}; rolling back also failed: {}", join(.rollback))]
    Rollback {
        primary: Box<IsolatorError>,
        rollback: Vec<IsolatorError>,
    },
    /// Cleanup released the container's references but not every unmount succeeded.
    #[error("container {container}: cleanup: {}", join(.errors))]
    Cleanup {
        container: ContainerId,
        errors: Vec<IsolatorError>,
    },
}

fn join(errors: &[IsolatorError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl IsolatorError {
    pub(crate) fn checkpoint(e: LedgerError) -> Self {
        IsolatorError::Checkpoint(Box::new(e))
    }

    /// `primary` with the errors of the rollback that followed it, if any.
    pub(crate) fn with_rollback(primary: IsolatorError, mut rollback: Vec<IsolatorError>) -> Self {
        if rollback.is_empty() {
            return primary;
        }
        match primary {
            IsolatorError::Rollback {
                primary,
                rollback: mut first,
            } => {
                first.append(&mut rollback);
                IsolatorError::Rollback {
                    primary,
                    rollback: first,
                }
            }
            primary => IsolatorError::Rollback {
                primary: Box::new(primary),
                rollback,
            },
        }
    }

    /// The error that made the operation fail, below any rollback wrapper.
    pub fn primary(&self) -> &IsolatorError {
        match self {
            IsolatorError::Rollback { primary, .. } => primary.primary(),
            other => other,
        }
    }
}
