//! The plugin's real mounts: bind mounts of volume directories, read-only remounts, unmounts,
//! and whether a path is a mount point (from `/proc/self/mountinfo`).

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use tonic::Status;

/// Bind-mounts `source` onto `target`, then, when `readonly`, remounts the bind read-only (a
/// bind mount ignores MS_RDONLY on its first mount(2)).
pub fn bind(source: &Path, target: &Path, readonly: bool) -> Result<(), Status> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        Status::internal(format!(
            "cannot bind-mount {} onto {}: {e}",
            source.display(),
            target.display()
        ))
    })?;
    if readonly {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        if let Err(e) = mount(None::<&str>, target, None::<&str>, flags, None::<&str>) {
            let undone = umount2(target, MntFlags::empty());
            return Err(Status::internal(format!(
                "cannot remount {} read-only: {e}{}",
                target.display(),
                match undone {
                    Ok(()) => String::new(),
                    Err(u) => format!("; and the bind mount stays: cannot unmount it: {u}"),
                }
            )));
        }
    }
    Ok(())
}

/// Unmounts `path` if it is a mount point; a path not mounted is left as it is.
pub fn unmount_if_mounted(path: &Path) -> Result<(), Status> {
    if !is_mount_point(path)? {
        return Ok(());
    }
    umount2(path, MntFlags::empty())
        .map_err(|e| Status::internal(format!("cannot unmount {}: {e}", path.display())))
}

/// Whether `path` is a mount point in this mount namespace.
pub fn is_mount_point(path: &Path) -> Result<bool, Status> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Status::internal(format!("cannot read /proc/self/mountinfo: {e}")))?;
    Ok(mount_points(&text).iter().any(|m| m == path))
}

/// The mount point field (the fifth) of every mountinfo line, unescaped.
fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape(field))))
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for a space) in a mountinfo field.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        let text = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n";
        assert_eq!(mount_points(text), vec![PathBuf::from("/mnt/a b")]);
    }
}
