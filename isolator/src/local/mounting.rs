//! Bringing a volume's `_data` up for its first user and down after its last one, per kind.
//!
//! Both directions look at the host first and reuse or skip what is already there (an image
//! still attached, `_data` still mounted), so a crash or a failed earlier call is repaired by
//! the next one instead of stacking a second mount.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use super::block;
use super::error::{io_err, LocalError};
use super::mountopts::MountOptions;
use super::spec::VolumeKind;
use super::store::VolumePaths;
use crate::names::VolumeName;
use crate::sys::{Host, MntFlags, MsFlags};

/// Most mounts stacked on `_data` that one release takes down.
const MAX_STACKED_MOUNTS: usize = 16;

/// Makes `_data` show the volume. After a failure nothing this call did is left behind.
pub fn activate(
    host: &dyn Host,
    volume: &VolumeName,
    kind: &VolumeKind,
    paths: &VolumePaths,
) -> Result<(), LocalError> {
    ensure_dir(volume, &paths.data)?;
    if !kind.is_mounted_kind() || is_mounted(host, volume, &paths.data)? {
        return Ok(());
    }
    match kind {
        VolumeKind::Directory => Ok(()),
        VolumeKind::Block { fstype, .. } => {
            let (device, attached_now) = block::attach(host, volume, &paths.image)?;
            let mounted = host
                .mount(
                    Some(&device),
                    &paths.data,
                    Some(fstype.as_str()),
                    MsFlags::empty(),
                    None,
                )
                .map_err(io_err(volume.as_str(), "mount", &paths.data));
            match mounted {
                Ok(()) => Ok(()),
                Err(e) if attached_now => Err(e.with_cleanup(block::detach(host, volume, &device))),
                Err(e) => Err(e),
            }
        }
        VolumeKind::Device {
            fstype,
            device,
            options,
        } => {
            let o = MountOptions::parse(options.as_deref().unwrap_or(""));
            host.mount(
                Some(Path::new(device)),
                &paths.data,
                Some(fstype),
                o.flags,
                o.data.as_deref(),
            )
            .map_err(io_err(volume.as_str(), "mount", &paths.data))
        }
    }
}

/// Takes `_data` down: unmounts it (every mount stacked there) and, for a block volume, then
/// detaches every loop device backed by the image. A busy mount is reported, not forced.
pub fn deactivate(
    host: &dyn Host,
    volume: &VolumeName,
    kind: &VolumeKind,
    paths: &VolumePaths,
) -> Result<(), LocalError> {
    if !kind.is_mounted_kind() {
        return Ok(());
    }
    for _ in 0..MAX_STACKED_MOUNTS {
        if !is_mounted(host, volume, &paths.data)? {
            break;
        }
        host.umount(&paths.data, MntFlags::empty()).map_err(io_err(
            volume.as_str(),
            "unmount",
            &paths.data,
        ))?;
    }
    if let VolumeKind::Block { .. } = kind {
        block::detach_all(host, volume, &paths.image)?;
    }
    Ok(())
}

/// Whether anything of the volume is still up: `_data` mounted or, for a block volume, a loop
/// device attached to the image.
pub fn is_active(
    host: &dyn Host,
    volume: &VolumeName,
    kind: &VolumeKind,
    paths: &VolumePaths,
) -> Result<bool, LocalError> {
    if !kind.is_mounted_kind() {
        return Ok(false);
    }
    if is_mounted(host, volume, &paths.data)? {
        return Ok(true);
    }
    if let VolumeKind::Block { .. } = kind {
        let loops = host.loops_backed_by(&paths.image).map_err(io_err(
            volume.as_str(),
            "list loop devices of",
            &paths.image,
        ))?;
        return Ok(!loops.is_empty());
    }
    Ok(false)
}

pub fn is_mounted(host: &dyn Host, volume: &VolumeName, path: &Path) -> Result<bool, LocalError> {
    host.is_mountpoint(path)
        .map_err(io_err(volume.as_str(), "check the mount table for", path))
}

/// Creates `dir` (0755) unless it exists, e.g. after someone removed `_data` by hand.
pub fn ensure_dir(volume: &VolumeName, dir: &Path) -> Result<(), LocalError> {
    match DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(volume.as_str(), "create directory", dir)(e)),
    }
}
