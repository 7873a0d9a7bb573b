//! Every kernel call that changes the host: `mount(2)`, `umount2(2)`, loop devices, `mkfs`.
//!
//! All of it sits behind the `Host` trait so that mount planning and driver logic are testable
//! without root: `RealHost` makes the calls, `RecordingHost` records them, keeps an in-memory
//! mount table and fails the N-th call on request. Hosts are injected, never chosen by `cfg`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

pub use nix::mount::{MntFlags, MsFlags};

use crate::mountinfo;

/// The host calls the library makes. Errors are plain `io::Error`s; callers add the context.
pub trait Host: Send + Sync {
    /// `mount(2)`.
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// `umount2(2)`.
    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()>;
    /// Whether `path` is a mount point in this mount namespace.
    fn is_mountpoint(&self, path: &Path) -> io::Result<bool>;
    /// Attaches `image` to a free loop device and returns the device path.
    fn loop_attach(&self, image: &Path) -> io::Result<PathBuf>;
    /// Detaches a loop device.
    fn loop_detach(&self, device: &Path) -> io::Result<()>;
    /// Loop devices whose backing file is `image`.
    fn loops_backed_by(&self, image: &Path) -> io::Result<Vec<PathBuf>>;
    /// Formats `image` with `fstype` (`ext4`, `xfs` or `btrfs`).
    fn mkfs(&self, fstype: &str, image: &Path) -> io::Result<()>;
}

/// The real kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealHost;

// Loop device ioctls and structures (linux/loop.h); not in the libc crate.
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_SET_STATUS64: libc::c_ulong = 0x4C04;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_NAME_SIZE: usize = 64;

#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

impl Host for RealHost {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).map_err(io::Error::from)
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        nix::mount::umount2(target, flags).map_err(io::Error::from)
    }

    fn is_mountpoint(&self, path: &Path) -> io::Result<bool> {
        Ok(mountinfo::read_self()?
            .iter()
            .any(|m| m.mount_point == path))
    }

    fn loop_attach(&self, image: &Path) -> io::Result<PathBuf> {
        let backing = OpenOptions::new().read(true).write(true).open(image)?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")?;
        // Another process may take the free device between GET_FREE and SET_FD: retry on EBUSY.
        for _ in 0..64 {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number or -1.
            let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let dev = PathBuf::from(format!("/dev/loop{n}"));
            let loop_file = match OpenOptions::new().read(true).write(true).open(&dev) {
                Ok(f) => f,
                // devtmpfs may not have created the node yet.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                Err(e) => return Err(e),
            };
            // SAFETY: LOOP_SET_FD takes the backing file descriptor by value.
            let rc =
                unsafe { libc::ioctl(loop_file.as_raw_fd(), LOOP_SET_FD, backing.as_raw_fd()) };
            if rc < 0 {
                let err = io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EBUSY) {
                    continue;
                }
                return Err(err);
            }
            set_loop_name(&loop_file, image);
            return Ok(dev);
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "no free loop device after 64 tries",
        ))
    }

    fn loop_detach(&self, device: &Path) -> io::Result<()> {
        let f = File::open(device)?;
        // SAFETY: LOOP_CLR_FD takes no argument.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), LOOP_CLR_FD, 0) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            // ENXIO: not attached (already detached).
            if err.raw_os_error() != Some(libc::ENXIO) {
                return Err(err);
            }
        }
        Ok(())
    }

    fn loops_backed_by(&self, image: &Path) -> io::Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        for entry in fs::read_dir("/sys/block")? {
            let entry = entry?;
            let name = entry.file_name();
            if !name.as_bytes().starts_with(b"loop") {
                continue;
            }
            let Ok(backing) = fs::read(entry.path().join("loop/backing_file")) else {
                continue;
            };
            let backing = backing.strip_suffix(b"\n").unwrap_or(&backing);
            if backing == image.as_os_str().as_bytes() {
                found.push(Path::new("/dev").join(&name));
            }
        }
        found.sort();
        Ok(found)
    }

    fn mkfs(&self, fstype: &str, image: &Path) -> io::Result<()> {
        let (program, force) = match fstype {
            "ext4" => ("mkfs.ext4", "-F"),
            "xfs" => ("mkfs.xfs", "-f"),
            "btrfs" => ("mkfs.btrfs", "-f"),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "unsupported fstype",
                ))
            }
        };
        let out = Command::new(program)
            .arg("-q")
            .arg(force)
            .arg(image)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {program}: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(io::Error::other(format!(
                "{program} failed ({}): {}",
                out.status,
                stderr.trim()
            )));
        }
        Ok(())
    }
}

/// Records the file name in the loop device's status, as `losetup` shows it. Best effort.
fn set_loop_name(loop_file: &File, image: &Path) {
    // SAFETY: LoopInfo64 is plain old data; all-zero is a valid value.
    let mut info: LoopInfo64 = unsafe { std::mem::zeroed() };
    let bytes = image.as_os_str().as_bytes();
    let n = bytes.len().min(LO_NAME_SIZE - 1);
    info.lo_file_name[..n].copy_from_slice(&bytes[..n]);
    // SAFETY: LOOP_SET_STATUS64 reads a loop_info64 from the pointer, which outlives the call.
    unsafe {
        libc::ioctl(
            loop_file.as_raw_fd(),
            LOOP_SET_STATUS64,
            &info as *const LoopInfo64,
        )
    };
}

/// One call seen by a `RecordingHost`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCall {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
    },
    Umount {
        target: PathBuf,
    },
    LoopAttach {
        image: PathBuf,
    },
    LoopDetach {
        device: PathBuf,
    },
    Mkfs {
        fstype: String,
        image: PathBuf,
    },
}

#[derive(Debug, Default)]
struct Recorded {
    calls: Vec<HostCall>,
    mounted: Vec<PathBuf>,
    loops: Vec<(PathBuf, PathBuf)>,
    fail_call: Option<usize>,
    next_loop: usize,
}

/// A fake host for unit tests: records every changing call, keeps an in-memory mount table and
/// loop list, and fails the N-th changing call (counted from 1) with `EIO` when asked.
#[derive(Debug, Default)]
pub struct RecordingHost {
    state: Mutex<Recorded>,
}

impl RecordingHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// The `n`-th changing call from now on (1 = the next one) fails with `EIO`.
    pub fn fail_call(&self, n: usize) {
        let mut s = self.lock();
        s.fail_call = Some(s.calls.len() + n);
    }

    pub fn calls(&self) -> Vec<HostCall> {
        self.lock().calls.clone()
    }

    pub fn mounted(&self) -> Vec<PathBuf> {
        self.lock().mounted.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, call: HostCall) -> io::Result<std::sync::MutexGuard<'_, Recorded>> {
        let mut s = self.lock();
        s.calls.push(call);
        if s.fail_call == Some(s.calls.len()) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(s)
    }
}

impl Host for RecordingHost {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        _data: Option<&str>,
    ) -> io::Result<()> {
        let mut s = self.record(HostCall::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_owned),
            flags,
        })?;
        if !flags.intersects(MsFlags::MS_REMOUNT | MsFlags::MS_SLAVE | MsFlags::MS_PRIVATE) {
            s.mounted.push(target.to_path_buf());
        }
        Ok(())
    }

    fn umount(&self, target: &Path, _flags: MntFlags) -> io::Result<()> {
        let mut s = self.record(HostCall::Umount {
            target: target.to_path_buf(),
        })?;
        match s.mounted.iter().rposition(|m| m == target) {
            Some(i) => {
                s.mounted.remove(i);
                Ok(())
            }
            None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    fn is_mountpoint(&self, path: &Path) -> io::Result<bool> {
        Ok(self.lock().mounted.iter().any(|m| m == path))
    }

    fn loop_attach(&self, image: &Path) -> io::Result<PathBuf> {
        let mut s = self.record(HostCall::LoopAttach {
            image: image.to_path_buf(),
        })?;
        let dev = PathBuf::from(format!("/dev/fakeloop{}", s.next_loop));
        s.next_loop += 1;
        s.loops.push((dev.clone(), image.to_path_buf()));
        Ok(dev)
    }

    fn loop_detach(&self, device: &Path) -> io::Result<()> {
        let mut s = self.record(HostCall::LoopDetach {
            device: device.to_path_buf(),
        })?;
        s.loops.retain(|(d, _)| d != device);
        Ok(())
    }

    fn loops_backed_by(&self, image: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(self
            .lock()
            .loops
            .iter()
            .filter(|(_, i)| i == image)
            .map(|(d, _)| d.clone())
            .collect())
    }

    fn mkfs(&self, fstype: &str, image: &Path) -> io::Result<()> {
        drop(self.record(HostCall::Mkfs {
            fstype: fstype.to_owned(),
            image: image.to_path_buf(),
        })?);
        Ok(())
    }
}
