//! `LocalError`: every way the embedded `local` driver fails, each naming the volume (or the
//! root) and keeping its source; and how each maps onto the trait's [`Outcome`]. Refusals
//! ("the driver answered no") are told apart from failures of the host, because callers treat
//! a refused `Get` as "no such volume".

use std::io;
use std::path::PathBuf;

use crate::driver::{DriverError, Operation, Outcome};

/// A local-driver failure.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("local volume {volume:?} does not exist")]
    NoSuchVolume { volume: String },
    #[error("the volume name {volume:?} is reserved by the local driver")]
    ReservedName { volume: String },
    #[error("local volume {volume:?}: unknown option {key:?} (known: size, fstype, type, device, o){hint}")]
    UnknownOption {
        volume: String,
        key: String,
        /// Empty, or why the key may have been meant as part of `o=`.
        hint: &'static str,
    },
    #[error("local volume {volume:?}: option {key}={value:?} is invalid: {reason}")]
    InvalidOption {
        volume: String,
        key: String,
        value: String,
        reason: String,
    },
    #[error("local volume {volume:?}: {reason}")]
    OptionConflict {
        volume: String,
        reason: &'static str,
    },
    /// A new block volume larger than the cap.
    #[error("local volume {volume:?}: size={size_text} ({size} bytes) is larger than {limit}")]
    TooLarge {
        volume: String,
        /// The `size=` value as given.
        size_text: String,
        size: u64,
        limit: SizeLimit,
    },
    #[error("local volume {volume:?} already exists with different options (it has {existing}; asked for {requested})")]
    OptionsDiffer {
        volume: String,
        existing: String,
        requested: String,
    },
    #[error("local volume {volume:?} has no user {id:?}")]
    UnknownUser { volume: String, id: String },
    #[error("local volume {volume:?} is in use by {users} mount(s)")]
    InUse { volume: String, users: usize },
    #[error("local volume {volume:?} is still mounted at {} though no user holds it; it is not removed (an Unmount of the volume retries the release)", .path.display())]
    StillMounted { volume: String, path: PathBuf },
    #[error("local volume {volume:?}: record {} is unreadable: {reason}", .path.display())]
    Corrupt {
        volume: String,
        path: PathBuf,
        reason: String,
    },
    #[error("local volume {volume:?}: cannot {action} {}: {cause}", .path.display())]
    Io {
        volume: String,
        action: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    #[error("local driver root {}: cannot {action}: {cause}", .path.display())]
    Root {
        action: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    /// A failure, and the failure of undoing what was done before it.
    #[error("{primary}; undoing it also failed: {cleanup}")]
    Rollback {
        primary: Box<LocalError>,
        cleanup: Box<LocalError>,
    },
}

impl LocalError {
    /// True when the driver answered and said no (missing volume, bad options, volume in use),
    /// false when the host failed (I/O, mount, loop device, unreadable records).
    pub fn is_refusal(&self) -> bool {
        match self {
            LocalError::NoSuchVolume { .. }
            | LocalError::ReservedName { .. }
            | LocalError::UnknownOption { .. }
            | LocalError::InvalidOption { .. }
            | LocalError::OptionConflict { .. }
            | LocalError::TooLarge { .. }
            | LocalError::OptionsDiffer { .. }
            | LocalError::UnknownUser { .. }
            | LocalError::InUse { .. }
            | LocalError::StillMounted { .. } => true,
            LocalError::Corrupt { .. }
            | LocalError::Io { .. }
            | LocalError::Root { .. }
            | LocalError::Rollback { .. } => false,
        }
    }

    /// What happened to the call, for the callers above the trait. The driver runs in this
    /// process and every operation finishes under the volume's lock, so it always answers:
    ///
    /// - `NoSuchVolume` → [`Outcome::NoSuchVolume`]; `UnknownUser` (an `Unmount` of an id the
    ///   volume does not hold) → [`Outcome::NotHeld`];
    /// - every other refusal ([`LocalError::is_refusal`]: options, reserved name, in use,
    ///   still mounted) → [`Outcome::Refused`];
    /// - a failure of the host (`Io`, `Root`, `Corrupt`) → [`Outcome::Failed`]: the driver
    ///   undid what it had done before returning;
    /// - `Rollback` (that undo failed too) → [`Outcome::NoAnswer`]: the driver may have acted
    ///   — a `Mount` whose users could not be restored still holds the caller's mount id.
    pub fn outcome(&self) -> Outcome {
        match self {
            LocalError::NoSuchVolume { .. } => Outcome::NoSuchVolume,
            LocalError::UnknownUser { .. } => Outcome::NotHeld,
            LocalError::ReservedName { .. }
            | LocalError::UnknownOption { .. }
            | LocalError::InvalidOption { .. }
            | LocalError::OptionConflict { .. }
            | LocalError::TooLarge { .. }
            | LocalError::OptionsDiffer { .. }
            | LocalError::InUse { .. }
            | LocalError::StillMounted { .. } => Outcome::Refused,
            LocalError::Corrupt { .. } | LocalError::Io { .. } | LocalError::Root { .. } => {
                Outcome::Failed
            }
            LocalError::Rollback { .. } => Outcome::NoAnswer,
        }
    }

    /// This failure of `operation`, as the trait says it (the cause is `self`).
    pub fn into_driver_error(self, operation: Operation) -> DriverError {
        DriverError::new(self.outcome(), "local", operation, self)
    }

    /// Keeps `cleanup` beside `self` when undoing after `self` failed too.
    pub(crate) fn with_cleanup(self, cleanup: Result<(), LocalError>) -> LocalError {
        match cleanup {
            Ok(()) => self,
            Err(cleanup) => LocalError::Rollback {
                primary: Box::new(self),
                cleanup: Box::new(cleanup),
            },
        }
    }
}

/// What caps the size of a new `local` block volume, and where the cap comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeLimit {
    /// The operator's `local_max_size`.
    Configured { cap: u64 },
    /// The free space of the local root's filesystem (the default when no cap is set, and a
    /// bound in any case).
    FreeSpace { free: u64, root: PathBuf },
}

impl std::fmt::Display for SizeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SizeLimit::Configured { cap } => write!(
                f,
                "the cap of {} ({cap} bytes) the operator set on local block volumes (module parameter local_max_size, DVDI_LOCAL_MAX_SIZE for dvdcli)",
                human_bytes(*cap)
            ),
            SizeLimit::FreeSpace { free, root } => write!(
                f,
                "the {} ({free} bytes) free on the filesystem of the local root {}: a local block volume may not be larger than the free space there (the default cap when local_max_size is not set, and a bound in any case)",
                human_bytes(*free),
                root.display()
            ),
        }
    }
}

/// Bytes as people read them: `100 GiB`, `74.6 GiB`, `512 KiB`, `17 bytes`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            return if (bytes / scale) * scale == bytes {
                format!("{} {unit}", bytes / scale)
            } else {
                format!("{:.1} {unit}", bytes as f64 / scale as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// Builds `LocalError::Io` for `volume` in `map_err`.
pub(crate) fn io_err(
    volume: &str,
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> LocalError {
    let volume = volume.to_owned();
    let path = path.into();
    move |source| LocalError::Io {
        volume,
        action,
        path,
        cause: source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_says_what_happened_to_the_call() {
        let v = || "v".to_owned();
        let io = || LocalError::Io {
            volume: v(),
            action: "read",
            path: PathBuf::from("/x"),
            cause: io::Error::from_raw_os_error(libc::EIO),
        };
        for (e, outcome) in [
            (
                LocalError::NoSuchVolume { volume: v() },
                Outcome::NoSuchVolume,
            ),
            (
                LocalError::UnknownUser {
                    volume: v(),
                    id: "dvdi-1".into(),
                },
                Outcome::NotHeld,
            ),
            (
                LocalError::InUse {
                    volume: v(),
                    users: 1,
                },
                Outcome::Refused,
            ),
            (io(), Outcome::Failed),
            (io().with_cleanup(Err(io())), Outcome::NoAnswer),
        ] {
            let text = e.to_string();
            let d = e.into_driver_error(Operation::Mount);
            assert_eq!(d.outcome(), outcome, "{text}");
            assert_eq!((d.driver(), d.operation()), ("local", Operation::Mount));
            assert_eq!(d.to_string(), text);
        }
    }
}
