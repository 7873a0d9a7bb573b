//! Launch info: how a prepared container gets its volumes at their container paths, and the
//! function that carries it out in the current process (used by tests and `dvdcli exec`; a
//! Mesos launcher does the same from the `ContainerLaunchInfo` the C ABI builds).
//!
//! The container gets a private mount namespace, then per container path one bind mount
//! `MS_BIND|MS_REC` from the host mount point onto the host-visible target. For a read-only
//! volume a second entry follows on the same target: `MS_BIND|MS_REMOUNT|MS_RDONLY`. The
//! kernel ignores `MS_RDONLY` when it creates a bind mount — only a remount of the new bind
//! mount makes it read-only — so the launcher needs both entries, in order. The remount is
//! not recursive: mounts below the volume's root inside it keep their own flags.

use std::io;
use std::path::{Path, PathBuf};

use crate::sys::{Host, MsFlags};

/// One mount the launcher makes in the container's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LaunchMount {
    pub source: PathBuf,
    pub target: PathBuf,
    /// `mount(2)` flags, serialised as their numeric value (Mesos' `ContainerMountInfo.flags`).
    #[serde(with = "flags_as_bits")]
    pub flags: MsFlags,
}

/// What the launcher must do for a prepared container.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LaunchInfo {
    /// Give the container its own mount namespace (`CLONE_NEWNS`).
    pub clone_newns: bool,
    /// In order.
    pub mounts: Vec<LaunchMount>,
}

mod flags_as_bits {
    use super::MsFlags;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(flags: &MsFlags, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(flags.bits())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MsFlags, D::Error> {
        let bits = u64::deserialize(d)?;
        MsFlags::from_bits(bits)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown mount flags {bits:#x}")))
    }
}

/// A launch step that failed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot enter a private mount namespace: {0}")]
    Unshare(io::Error),
    #[error("cannot make / a slave mount (so host mounts propagate in, none out): {0}")]
    Slave(io::Error),
    #[error("mount {} on {} ({:?}) failed: {cause}", .source_path.display(), .target.display(), .flags)]
    Mount {
        source_path: PathBuf,
        target: PathBuf,
        flags: MsFlags,
        cause: io::Error,
    },
}

/// Enters a private mount namespace for the calling thread and makes `/` a recursive slave,
/// so the host's later mounts and unmounts still reach the container but nothing mounted in
/// it leaks back to the host.
pub fn enter_private_mount_namespace(host: &dyn Host) -> Result<(), LaunchError> {
    host.unshare_mount_namespace()
        .map_err(LaunchError::Unshare)?;
    host.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )
    .map_err(LaunchError::Slave)
}

/// Makes the mounts of `info`, in order, in the current mount namespace.
pub fn apply_mounts(info: &LaunchInfo, host: &dyn Host) -> Result<(), LaunchError> {
    for m in &info.mounts {
        host.mount(Some(&m.source), &m.target, None, m.flags, None)
            .map_err(|source| LaunchError::Mount {
                source_path: m.source.clone(),
                target: m.target.clone(),
                flags: m.flags,
                cause: source,
            })?;
    }
    Ok(())
}

impl LaunchInfo {
    /// What a task's child must do for this launch info between `fork` and `exec` (see
    /// [`crate::sys::set_task_setup`]): the same steps as [`carry_out`], made with no
    /// allocation.
    pub fn task_setup(&self) -> crate::sys::TaskSetup {
        crate::sys::TaskSetup {
            private_mount_namespace: self.clone_newns,
            mounts: self
                .mounts
                .iter()
                .map(|m| (m.source.clone(), m.target.clone(), m.flags))
                .collect(),
            ..crate::sys::TaskSetup::default()
        }
    }
}

/// Carries out `info` in the calling thread: a private mount namespace when it asks for one
/// (see [`enter_private_mount_namespace`]), then its mounts. Call it in the process that will
/// run the task (after `fork`, or in a single-threaded `dvdcli exec` before `exec`):
/// `unshare(CLONE_NEWNS)` changes the calling thread only.
pub fn carry_out(info: &LaunchInfo, host: &dyn Host) -> Result<(), LaunchError> {
    if info.clone_newns {
        enter_private_mount_namespace(host)?;
    }
    apply_mounts(info, host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{HostCall, RecordingHost};

    fn ro_info() -> LaunchInfo {
        LaunchInfo {
            clone_newns: true,
            mounts: vec![
                LaunchMount {
                    source: "/mnt/v".into(),
                    target: "/sb/data".into(),
                    flags: MsFlags::MS_BIND | MsFlags::MS_REC,
                },
                LaunchMount {
                    source: "/mnt/v".into(),
                    target: "/sb/data".into(),
                    flags: MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                },
            ],
        }
    }

    #[test]
    fn flags_serialise_as_numbers_and_back() {
        let info = ro_info();
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(
            json["mounts"][0]["flags"],
            (MsFlags::MS_BIND | MsFlags::MS_REC).bits()
        );
        let back: LaunchInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back, info);
        assert!(serde_json::from_str::<LaunchMount>(
            r#"{"source":"/a","target":"/b","flags":18446744073709551615}"#
        )
        .is_err());
    }

    #[test]
    fn carry_out_unshares_slaves_then_mounts_in_order() {
        let host = RecordingHost::new();
        carry_out(&ro_info(), &host).unwrap();
        let calls = host.calls();
        assert_eq!(calls[0], HostCall::UnshareMountNamespace);
        assert!(matches!(&calls[1], HostCall::Mount { target, flags, .. }
            if target == Path::new("/") && *flags == MsFlags::MS_SLAVE | MsFlags::MS_REC));
        assert!(matches!(&calls[3], HostCall::Mount { flags, .. }
            if flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY)));
        assert_eq!(calls.len(), 4);
    }

    #[test]
    fn a_failed_mount_names_source_and_target() {
        let host = RecordingHost::new();
        host.fail_call(3);
        let err = carry_out(&ro_info(), &host).unwrap_err().to_string();
        assert!(err.contains("/mnt/v") && err.contains("/sb/data"), "{err}");
    }
}
