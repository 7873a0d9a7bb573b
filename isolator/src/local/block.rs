//! Block volumes on the host side: the sparse image file, formatting it, and the loop devices
//! that back it. Every kernel call goes through `Host`.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::{io_err, LocalError};
use super::spec::FsType;
use crate::names::VolumeName;
use crate::sys::Host;

/// Creates `image` as a sparse file of `size` bytes and formats it with `fstype`.
/// On failure the caller removes the half-made volume.
pub fn create_image(
    host: &dyn Host,
    volume: &VolumeName,
    image: &Path,
    size: u64,
    fstype: FsType,
) -> Result<(), LocalError> {
    let v = volume.as_str();
    crate::fault::io("local.image_create").map_err(io_err(v, "create", image))?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(image)
        .map_err(io_err(v, "create image", image))?;
    file.set_len(size).map_err(io_err(v, "size image", image))?;
    drop(file);
    host.mkfs(fstype.as_str(), image)
        .map_err(io_err(v, "format image", image))?;
    // mkfs wrote through its own descriptor; make its blocks durable before the volume is
    // committed.
    OpenOptions::new()
        .write(true)
        .open(image)
        .and_then(|f| f.sync_all())
        .map_err(io_err(v, "sync image", image))
}

/// A loop device backed by `image`: one already attached (left by an earlier run) is reused,
/// else a new one is attached. The flag says whether this call attached it.
pub fn attach(
    host: &dyn Host,
    volume: &VolumeName,
    image: &Path,
) -> Result<(PathBuf, bool), LocalError> {
    let v = volume.as_str();
    let attached = host
        .loops_backed_by(image)
        .map_err(io_err(v, "list loop devices of", image))?;
    if let Some(dev) = attached.into_iter().next() {
        return Ok((dev, false));
    }
    let dev = host
        .loop_attach(image)
        .map_err(io_err(v, "attach a loop device to", image))?;
    Ok((dev, true))
}

/// Detaches one loop device.
pub fn detach(host: &dyn Host, volume: &VolumeName, device: &Path) -> Result<(), LocalError> {
    host.loop_detach(device)
        .map_err(io_err(volume.as_str(), "detach loop device", device))
}

/// Detaches every loop device backed by `image`; tries them all and reports the first failure.
pub fn detach_all(host: &dyn Host, volume: &VolumeName, image: &Path) -> Result<(), LocalError> {
    let devices = host.loops_backed_by(image).map_err(io_err(
        volume.as_str(),
        "list loop devices of",
        image,
    ))?;
    let mut first_err = None;
    for dev in devices {
        if let Err(e) = detach(host, volume, &dev) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}
