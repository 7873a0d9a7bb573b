//! Every kernel call that changes the host: `mount(2)`, `umount2(2)`, loop devices, `mkfs`,
//! directories created without following symlinks, `chown`, `unshare(CLONE_NEWNS)`.
//!
//! All of it sits behind the `Host` trait so that mount planning and driver logic are testable
//! without root: `RealHost` makes the calls, `RecordingHost` records them, keeps an in-memory
//! mount table and fails the N-th call on request. Hosts are injected, never chosen by `cfg`.
//!
//! The symlink-safe directory walk ([`walk_beneath`]) is also a free function: planning checks
//! paths with it read-only before anything is changed.
//!
//! The library's other host calls are here too, behind safe types, so that this file (and the
//! C ABI in `ffi/`) holds every `unsafe` block (a unit test below checks it): the ledger's
//! directory-relative calls (`DirHandle`: `openat`, `renameat2`, `unlinkat`, `fsync`), the
//! one lock primitive (`flock`; the ledger's per-key byte-range locks with `ofd_lock`),
//! `poll_readable` for the plugin client's idle connections, and `fill_random`
//! (`getrandom`) for mount ids and temp file names.
//!
//! `RecordingHost` is a test double: it exists in this crate's unit tests and, with the cargo
//! feature `test-doubles`, for other crates' tests — never in a release build.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

pub use nix::mount::{MntFlags, MsFlags};

use crate::mountinfo::{self, MountIdentity};

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
    /// What `path` is now, without following a symlink: the mount it is on, whether it is that
    /// mount's root, whether it is a directory (one `statx`; see [`MountIdentity`]).
    fn mount_identity(&self, path: &Path) -> io::Result<MountIdentity>;
    /// Attaches `image` to a free loop device and returns the device path.
    fn loop_attach(&self, image: &Path) -> io::Result<PathBuf>;
    /// Detaches a loop device.
    fn loop_detach(&self, device: &Path) -> io::Result<()>;
    /// Loop devices whose backing file is `image`.
    fn loops_backed_by(&self, image: &Path) -> io::Result<Vec<PathBuf>>;
    /// Formats `image` with `fstype` (`ext4`, `xfs` or `btrfs`).
    fn mkfs(&self, fstype: &str, image: &Path) -> io::Result<()>;
    /// Bytes still free for ordinary users on the filesystem holding `path`
    /// (`statvfs(2)`: `f_bavail * f_frsize`).
    fn free_space(&self, path: &Path) -> io::Result<u64>;
    /// Makes `base/rel` a directory, creating missing components (mode 0755 less the umask)
    /// without following any symlink below `base` ([`walk_beneath`] with [`Missing::Create`]).
    fn mkdir_beneath(&self, base: &Path, rel: &Path) -> Result<DirId, WalkError>;
    /// `lchown(2)`: changes the owner of `path` itself, never of a symlink's target.
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
    /// `unshare(CLONE_NEWNS)`: gives the calling thread its own mount namespace.
    fn unshare_mount_namespace(&self) -> io::Result<()>;
}

/// What [`walk_beneath`] does with a component that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Create it (and every component after it).
    Create,
    /// Fail with `ENOENT` naming it.
    Refuse,
    /// Stop there successfully: the rest would be created later (a read-only dry run).
    Stop,
}

/// Where a directory walk stopped, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", .path.display(), self.reason())]
pub struct WalkError {
    /// The component (joined onto the base) the walk could not pass.
    pub path: PathBuf,
    /// Why (named `cause`, not `source`: the message already says it).
    pub cause: io::Error,
}

impl WalkError {
    fn new(path: PathBuf, cause: impl Into<io::Error>) -> Self {
        Self {
            path,
            cause: cause.into(),
        }
    }

    /// The component is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.cause.raw_os_error() == Some(libc::ELOOP)
    }

    /// The component does not exist.
    pub fn is_missing(&self) -> bool {
        self.cause.raw_os_error() == Some(libc::ENOENT)
    }

    fn reason(&self) -> String {
        match self.cause.raw_os_error() {
            Some(libc::ELOOP) => "is a symbolic link, which is never followed".into(),
            Some(libc::ENOTDIR) => "is not a directory".into(),
            Some(libc::ENOENT) => "does not exist".into(),
            _ => self.cause.to_string(),
        }
    }
}

/// Opens the directory `name` in `dir` (or the path `name` when `dir` is `None`), without
/// following a symlink in its last component unless `follow`.
fn open_dir(dir: Option<&OwnedFd>, name: &Path, follow: bool) -> nix::Result<OwnedFd> {
    use nix::fcntl::OFlag;
    let mut flags = OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    if !follow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let raw = nix::fcntl::openat(
        dir.map(|d| d.as_fd().as_raw_fd()),
        name,
        flags,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Whether `name` in `dir` is a symbolic link (the reason an `O_NOFOLLOW` open failed).
fn is_symlink_at(dir: &OwnedFd, name: &OsStr) -> bool {
    nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
    .unwrap_or(false)
}

/// Reads the regular file `path` whole, never through a symlink in its last component
/// (`ELOOP`), refusing anything that is not a regular file (a FIFO would block the read).
pub fn read_nofollow(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Opens (creating, mode 0600) the lock file `path` for `flock`/byte-range locks, never
/// through a symlink; an existing file's content is left alone.
pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Walks `rel` (plain components only) from the directory `base`, one component at a time with
/// `openat(O_DIRECTORY|O_NOFOLLOW)`, creating missing ones with `mkdirat` when `missing` says
/// so. `base` itself is trusted and may be reached through symlinks; a symlink at or below
/// it is an error (`ELOOP`) naming the component, so nothing is ever created through one.
pub fn walk_beneath(base: &Path, rel: &Path, missing: Missing) -> Result<Option<DirId>, WalkError> {
    let mut dir = open_dir(None, base, true).map_err(|e| WalkError::new(base.into(), e))?;
    let mut here = base.to_path_buf();
    for component in rel.components() {
        let name = match component {
            Component::Normal(name) => name,
            Component::CurDir => continue,
            other => {
                return Err(WalkError::new(
                    here.join(other.as_os_str()),
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "only plain path components are allowed here",
                    ),
                ))
            }
        };
        here.push(name);
        let next = match open_dir(Some(&dir), Path::new(name), false) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) if missing == Missing::Stop => return Ok(None),
            Err(nix::errno::Errno::ENOENT) if missing == Missing::Create => {
                match nix::sys::stat::mkdirat(
                    Some(dir.as_raw_fd()),
                    name,
                    nix::sys::stat::Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(WalkError::new(here, e)),
                }
                open_dir(Some(&dir), Path::new(name), false)
                    .map_err(|e| walk_failure(&dir, name, here.clone(), e))?
            }
            Err(e) => return Err(walk_failure(&dir, name, here, e)),
        };
        dir = next;
    }
    let st = nix::sys::stat::fstat(dir.as_raw_fd()).map_err(|e| WalkError::new(here, e))?;
    Ok(Some(DirId::of(&st)))
}

/// A directory's identity (device and inode): what the walk reached, to compare with what a
/// path resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirId {
    pub dev: u64,
    pub ino: u64,
}

impl DirId {
    fn of(st: &libc::stat) -> Self {
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }

    /// The identity of what `path` resolves to (following symlinks, as a mount on it would).
    pub fn resolve(path: &Path) -> io::Result<Self> {
        Ok(Self::of(&nix::sys::stat::stat(path)?))
    }
}

fn walk_failure(dir: &OwnedFd, name: &OsStr, path: PathBuf, e: nix::errno::Errno) -> WalkError {
    // Linux answers ELOOP or ENOTDIR for a symlink opened with O_DIRECTORY|O_NOFOLLOW; tell a
    // symlink from a plain file by looking at it.
    if matches!(e, nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR)
        && is_symlink_at(dir, name)
    {
        return WalkError::new(path, io::Error::from_raw_os_error(libc::ELOOP));
    }
    WalkError::new(path, e)
}

/// [`walk_beneath`] creating what is missing: it always reaches the last component.
fn created(base: &Path, rel: &Path) -> Result<DirId, WalkError> {
    walk_beneath(base, rel, Missing::Create)?.ok_or_else(|| {
        WalkError::new(
            base.join(rel),
            io::Error::other("the walk stopped before the last component"),
        )
    })
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
        crate::fault::io("host.mount")?;
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

    fn mount_identity(&self, path: &Path) -> io::Result<MountIdentity> {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))?;
        // SAFETY: all-zero is a valid `struct statx`; the kernel fills what the mask asks.
        let mut stx: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: statx with a NUL-terminated path and a buffer that outlives the call.
        let ret = unsafe {
            libc::statx(
                libc::AT_FDCWD,
                c.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
                libc::STATX_TYPE | libc::STATX_MNT_ID,
                &mut stx,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
        let is_dir = u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFDIR;
        let root_bit = libc::STATX_ATTR_MOUNT_ROOT as u64;
        let mount_root = if stx.stx_attributes_mask & root_bit != 0 {
            stx.stx_attributes & root_bit != 0
        } else {
            // Kernels before 5.8 do not say: a mount's root is on another device than its
            // parent (bind mounts of the same filesystem aside).
            let parent = std::fs::metadata(path.join(".."))?;
            std::fs::symlink_metadata(path)?.dev() != parent.dev()
        };
        let mnt_id = (stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id);
        Ok(MountIdentity {
            mnt_id,
            mnt_ns: mount_namespace(),
            mount_root,
            is_dir,
        })
    }

    fn loop_attach(&self, image: &Path) -> io::Result<PathBuf> {
        crate::fault::io("host.loop_attach")?;
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
        crate::fault::io("host.mkfs")?;
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

    fn free_space(&self, path: &Path) -> io::Result<u64> {
        statvfs_free(path)
    }

    fn mkdir_beneath(&self, base: &Path, rel: &Path) -> Result<DirId, WalkError> {
        crate::fault::io("host.mkdir").map_err(|e| WalkError::new(base.join(rel), e))?;
        created(base, rel)
    }

    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        nix::unistd::fchownat(
            None,
            path,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io::Error::from)
    }

    fn unshare_mount_namespace(&self) -> io::Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(io::Error::from)
    }
}

/// `f_bavail * f_frsize` of the filesystem holding `path`.
// `fsblkcnt_t` and `c_ulong` are `u64` on 64-bit Linux but narrower on some 32-bit targets.
#[allow(clippy::useless_conversion)]
fn statvfs_free(path: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path)?;
    Ok(u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size())))
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

/// What a task's process does between `fork` and `exec` (`dvdcli exec`'s child; a Mesos
/// launcher does the same from the launch info): die with its parent, take back the signal
/// mask its parent blocked, enter a private mount namespace with `/` a recursive slave, and
/// make its bind mounts, in order.
#[derive(Debug, Default)]
pub struct TaskSetup {
    /// `PR_SET_PDEATHSIG(SIGKILL)`: the task dies with the process that runs it.
    pub die_with_parent: bool,
    /// Signals to unblock in the child (its parent blocked them to wait for them).
    pub unblock: Option<nix::sys::signal::SigSet>,
    /// `unshare(CLONE_NEWNS)`, then `/` made `MS_SLAVE|MS_REC`.
    pub private_mount_namespace: bool,
    /// `mount(source, target, NULL, flags, NULL)`, in order.
    pub mounts: Vec<(PathBuf, PathBuf, MsFlags)>,
}

/// The C strings of a [`TaskSetup`]'s mounts, made before `fork`: the child must not allocate.
struct PreparedMount {
    source: std::ffi::CString,
    target: std::ffi::CString,
    flags: libc::c_ulong,
}

fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

/// Makes `cmd`'s child carry out `setup` after `fork`, before `exec`. A step that fails makes
/// the spawn fail with that step's errno.
pub fn set_task_setup(cmd: &mut Command, setup: TaskSetup) -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    let root = c_path(Path::new("/"))?;
    let mounts = setup
        .mounts
        .iter()
        .map(|(source, target, flags)| {
            Ok(PreparedMount {
                source: c_path(source)?,
                target: c_path(target)?,
                flags: flags.bits() as libc::c_ulong,
            })
        })
        .collect::<io::Result<Vec<_>>>()?;
    let unblock = setup.unblock;
    let (die_with_parent, private) = (setup.die_with_parent, setup.private_mount_namespace);
    let check = |ret: libc::c_int| {
        if ret == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let child = move || -> io::Result<()> {
        if die_with_parent {
            // SAFETY: prctl with integer arguments only.
            check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) })?;
        }
        if let Some(set) = &unblock {
            // SAFETY: pthread_sigmask with a signal set that outlives the call.
            let ret = unsafe {
                libc::pthread_sigmask(libc::SIG_UNBLOCK, set.as_ref(), std::ptr::null_mut())
            };
            if ret != 0 {
                return Err(io::Error::from_raw_os_error(ret));
            }
        }
        if private {
            // SAFETY: unshare with a flag constant.
            check(unsafe { libc::unshare(libc::CLONE_NEWNS) })?;
            let slave = (libc::MS_SLAVE | libc::MS_REC) as libc::c_ulong;
            // SAFETY: mount with NUL-terminated strings made before fork, and NULL for the
            // arguments it does not use.
            check(unsafe {
                libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    slave,
                    std::ptr::null(),
                )
            })?;
        }
        for m in &mounts {
            // SAFETY: as above.
            check(unsafe {
                libc::mount(
                    m.source.as_ptr(),
                    m.target.as_ptr(),
                    std::ptr::null(),
                    m.flags,
                    std::ptr::null(),
                )
            })?;
        }
        Ok(())
    };
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes system calls only (prctl,
    // pthread_sigmask, unshare, mount), on data prepared before the fork, and neither
    // allocates nor takes a lock.
    unsafe {
        cmd.pre_exec(child);
    }
    Ok(())
}

/// The inode of this process's mount namespace, read once.
fn mount_namespace() -> Option<u64> {
    static NS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *NS.get_or_init(|| std::fs::metadata("/proc/self/ns/mnt").ok().map(|m| m.ino()))
}

// ---------------------------------------------------------------------------------------------
// The library's other host calls, behind safe types: the ledger's directory-relative calls
// ([`DirHandle`]), locks ([`flock`], [`ofd_lock`]), [`poll_readable`] and [`fill_random`].
// Every `unsafe` block of the library is in this file (a test in `tests` checks it).

/// An open directory, for the calls made relative to it without following a symlink in the
/// name: `openat`, `renameat2`, `unlinkat`, and `fsync` of the directory itself. Names are
/// single components (a `/` in one is the caller's bug; the kernel would walk it).
#[derive(Debug)]
pub(crate) struct DirHandle(File);

/// How [`DirHandle::rename`] treats an existing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rename {
    /// Replace it (plain `rename`).
    Replace,
    /// Fail with `EEXIST` (`RENAME_NOREPLACE`).
    NoReplace,
    /// Swap the two names atomically (`RENAME_EXCHANGE`); `ENOENT` when the target is missing,
    /// `EINVAL` where the filesystem does not support it.
    Exchange,
}

impl DirHandle {
    /// Opens the directory `path` (its last component never through a symlink).
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(path)
            .map(DirHandle)
    }

    /// `openat(2)` of `name` in this directory with `flags` (plus `O_NOFOLLOW | O_CLOEXEC`);
    /// a file it creates gets mode 0600.
    pub(crate) fn open_file(&self, name: &OsStr, flags: libc::c_int) -> io::Result<File> {
        let c = c_name(name)?;
        // SAFETY: openat with a NUL-terminated name and our directory's descriptor.
        let fd = unsafe {
            libc::openat(
                self.0.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `openat` just returned this descriptor; nothing else owns it.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// `renameat2(2)` of `from` to `to`, both in this directory.
    pub(crate) fn rename(&self, from: &OsStr, to: &OsStr, how: Rename) -> io::Result<()> {
        let (from, to) = (c_name(from)?, c_name(to)?);
        let flags = match how {
            Rename::Replace => 0,
            Rename::NoReplace => libc::RENAME_NOREPLACE,
            Rename::Exchange => libc::RENAME_EXCHANGE,
        };
        let fd = self.0.as_raw_fd();
        // SAFETY: renameat2 with two NUL-terminated names relative to our directory.
        errno_result(unsafe { libc::renameat2(fd, from.as_ptr(), fd, to.as_ptr(), flags) })
    }

    /// `unlinkat(2)` of the file `name` in this directory.
    pub(crate) fn unlink(&self, name: &OsStr) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: unlinkat with a NUL-terminated name relative to our directory.
        errno_result(unsafe { libc::unlinkat(self.0.as_raw_fd(), c.as_ptr(), 0) })
    }

    /// `fsync(2)` of the directory: makes the renames, creations and removals in it durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.0.sync_all()
    }

    /// Whether the directory is on a tmpfs, where `fsync` is a no-op (its contents live in
    /// memory and end with the machine) and may be left out. Unknown: not a tmpfs.
    pub(crate) fn on_tmpfs(&self) -> bool {
        nix::sys::statfs::fstatfs(&self.0)
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
    }
}

fn c_name(name: &OsStr) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"))
}

fn errno_result(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What [`flock`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlockOp {
    /// Waits for the lock, shared.
    Shared,
    /// Waits for the lock, exclusive.
    Exclusive,
    /// Takes the lock exclusive if free now, else fails with `EWOULDBLOCK` (tests: another
    /// process's view).
    #[cfg(test)]
    TryExclusive,
    /// Releases it.
    Unlock,
}

/// `flock(2)` on the whole of `file` (its open file description), retried on `EINTR`. The
/// lock primitive of the library: the ledger's lock and the `local` driver's volume locks.
pub(crate) fn flock(file: &File, op: FlockOp) -> io::Result<()> {
    let op = match op {
        FlockOp::Shared => libc::LOCK_SH,
        FlockOp::Exclusive => libc::LOCK_EX,
        #[cfg(test)]
        FlockOp::TryExclusive => libc::LOCK_EX | libc::LOCK_NB,
        FlockOp::Unlock => libc::LOCK_UN,
    };
    loop {
        // SAFETY: flock on a descriptor `file` owns.
        match errno_result(unsafe { libc::flock(file.as_raw_fd(), op) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// What [`ofd_lock`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OfdOp {
    /// Waits for the write lock (`F_OFD_SETLKW`, `F_WRLCK`).
    Wait,
    /// Takes the write lock if free now, else fails (`F_OFD_SETLK`, `F_WRLCK`; tests:
    /// another process's view).
    #[cfg(test)]
    Try,
    /// Releases it (`F_OFD_SETLK`, `F_UNLCK`).
    Unlock,
}

/// An open-file-description lock on the one byte at `offset` of `file`, retried on `EINTR`.
pub(crate) fn ofd_lock(file: &File, offset: u64, op: OfdOp) -> io::Result<()> {
    // SAFETY: all-zero is a valid `struct flock`; the fields that matter are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    let (l_type, cmd) = match op {
        OfdOp::Wait => (libc::F_WRLCK, libc::F_OFD_SETLKW),
        #[cfg(test)]
        OfdOp::Try => (libc::F_WRLCK, libc::F_OFD_SETLK),
        OfdOp::Unlock => (libc::F_UNLCK, libc::F_OFD_SETLK),
    };
    lock.l_type = l_type as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "lock offset out of range"))?;
    lock.l_len = 1;
    loop {
        // SAFETY: fcntl with a pointer to a `struct flock` that outlives the call.
        match errno_result(unsafe { libc::fcntl(file.as_raw_fd(), cmd, &lock) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Whether `fd` has something to report right now (`poll(2)` with a zero timeout for
/// `POLLIN | POLLRDHUP`): data to read, a hang-up or an error. `Err` when `poll` fails.
pub(crate) fn poll_readable(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<bool> {
    poll_readable_within(fd, std::time::Duration::ZERO)
}

/// [`poll_readable`], waiting up to `wait` (whole milliseconds, rounded up) for it.
pub(crate) fn poll_readable_within(
    fd: std::os::fd::BorrowedFd<'_>,
    wait: std::time::Duration,
) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    let ms = wait.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
    // SAFETY: poll on one pollfd that outlives the call.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n > 0)
}

/// Fills `buf` from the kernel's random source (`getrandom(2)`), retrying on `EINTR` and
/// after a short read.
pub(crate) fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: getrandom(2) writes at most `rest.len()` bytes into the buffer it is given.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(n) {
            Ok(n) => filled += n,
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// The test double of [`Host`], for this crate's unit tests and, with the cargo feature
/// `test-doubles`, for other crates' tests; never in a release build.
#[cfg(any(test, feature = "test-doubles"))]
pub use recording::{HostCall, RecordingHost};

#[cfg(any(test, feature = "test-doubles"))]
mod recording {
    use super::*;
    use std::sync::Mutex;

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
        MkdirBeneath {
            base: PathBuf,
            rel: PathBuf,
        },
        Lchown {
            path: PathBuf,
            uid: u32,
            gid: u32,
        },
        UnshareMountNamespace,
    }

    #[derive(Debug, Default)]
    struct Recorded {
        calls: Vec<HostCall>,
        mounted: Vec<PathBuf>,
        /// Paths [`RecordingHost::vanish`] made disappear.
        vanished: Vec<PathBuf>,
        loops: Vec<(PathBuf, PathBuf)>,
        fail_call: Option<usize>,
        next_loop: usize,
        free_space: Option<u64>,
    }

    /// A fake host for unit tests: records every changing call, keeps an in-memory mount table and
    /// loop list, and fails the N-th changing call (counted from 1) with `EIO` when asked.
    ///
    /// `mkdir_beneath` is the one call it also carries out for real: creating directories needs no
    /// privilege, and the symlink refusals are only worth testing against a real file system (the
    /// tests plant real symlinks in temp dirs). `free_space` asks the real `statvfs` unless a test
    /// sets an answer ([`RecordingHost::set_free_space`]).
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

        /// From now on `free_space` answers `bytes` (`None`: the real `statvfs` again).
        pub fn set_free_space(&self, bytes: Option<u64>) {
            self.lock().free_space = bytes;
        }

        pub fn mounted(&self) -> Vec<PathBuf> {
            self.lock().mounted.clone()
        }

        /// Makes `path` disappear behind the library's back (an operator's unmount, a plugin that
        /// restarted): no longer mounted, and [`Host::mount_identity`] finds nothing there.
        pub fn vanish(&self, path: &Path) {
            let mut s = self.lock();
            s.mounted.retain(|m| m != path);
            s.vanished.push(path.to_path_buf());
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
        /// Every path is a directory on one mount and, when this host mounted it, that mount's
        /// root — until [`RecordingHost::vanish`] and the next mount there.
        fn mount_identity(&self, path: &Path) -> io::Result<MountIdentity> {
            let s = self.lock();
            if s.vanished.iter().any(|v| v == path) {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            Ok(MountIdentity {
                mnt_id: None,
                mnt_ns: None,
                mount_root: s.mounted.iter().any(|m| m == path),
                is_dir: true,
            })
        }

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
                s.vanished.retain(|v| v != target);
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

        fn free_space(&self, path: &Path) -> io::Result<u64> {
            let fake = self.lock().free_space;
            fake.map_or_else(|| statvfs_free(path), Ok)
        }

        fn mkdir_beneath(&self, base: &Path, rel: &Path) -> Result<DirId, WalkError> {
            drop(
                self.record(HostCall::MkdirBeneath {
                    base: base.to_path_buf(),
                    rel: rel.to_path_buf(),
                })
                .map_err(|e| WalkError::new(base.join(rel), e))?,
            );
            created(base, rel)
        }

        fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
            drop(self.record(HostCall::Lchown {
                path: path.to_path_buf(),
                uid,
                gid,
            })?);
            Ok(())
        }

        fn unshare_mount_namespace(&self) -> io::Result<()> {
            drop(self.record(HostCall::UnshareMountNamespace)?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the ledger's writes leave out `fsync` for: a tmpfs, and nothing else.
    #[test]
    fn a_tmpfs_is_told_apart() {
        if !dvdi_testkit::env::require_root("a_tmpfs_is_told_apart") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(!DirHandle::open(Path::new("/proc")).unwrap().on_tmpfs());
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        let on_tmpfs = DirHandle::open(dir.path()).unwrap().on_tmpfs();
        nix::mount::umount(dir.path()).unwrap();
        assert!(on_tmpfs);
        assert!(
            !DirHandle::open(dir.path()).unwrap().on_tmpfs() || {
                // The temp dir itself may live on a tmpfs (a TMPDIR there): then it says so.
                nix::sys::statfs::statfs(dir.path())
                    .unwrap()
                    .filesystem_type()
                    == nix::sys::statfs::TMPFS_MAGIC
            }
        );
    }

    /// Every `.rs` file under `dir`, recursively.
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension() == Some(OsStr::new("rs")) {
                out.push(path);
            }
        }
    }

    #[test]
    fn unsafe_code_lives_in_this_file_only() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let this = src.join("sys.rs");
        let mut files = Vec::new();
        sources(&src, &mut files);
        assert!(files.contains(&this) && files.len() > 20, "{files:?}");
        let mut found = Vec::new();
        for file in files.iter().filter(|f| **f != this) {
            let text = fs::read_to_string(file).unwrap();
            for (n, line) in text.lines().enumerate() {
                // Comments aside (a line comment may say the word).
                let code = line.split("//").next().unwrap_or("");
                let token = code
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|word| word == "unsafe");
                if token {
                    found.push(format!("{}:{}: {line}", file.display(), n + 1));
                }
            }
        }
        assert!(
            found.is_empty(),
            "`unsafe` outside src/sys.rs (put the host call behind a safe function there):\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn fill_random_fills_and_differs() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        assert_ne!(a, b);
        fill_random(&mut []).unwrap();
    }

    #[test]
    fn poll_readable_sees_data_and_hang_up() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(!poll_readable(a.as_fd()).unwrap());
        std::io::Write::write_all(&mut &b, b"x").unwrap();
        assert!(poll_readable(a.as_fd()).unwrap());
        let (c, d) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(d);
        assert!(poll_readable(c.as_fd()).unwrap());
    }

    #[test]
    fn dir_handle_renames_exchanges_and_unlinks_in_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = DirHandle::open(dir.path()).unwrap();
        let (a, b) = (OsStr::new("a"), OsStr::new("b"));
        let mut f = d
            .open_file(a, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL)
            .unwrap();
        std::io::Write::write_all(&mut f, b"1").unwrap();
        fs::write(dir.path().join("b"), "2").unwrap();
        let no = d.rename(a, b, Rename::NoReplace).unwrap_err();
        assert_eq!(no.raw_os_error(), Some(libc::EEXIST));
        d.rename(a, b, Rename::Exchange).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("b")).unwrap(), "1");
        assert_eq!(fs::read_to_string(dir.path().join("a")).unwrap(), "2");
        d.rename(a, b, Rename::Replace).unwrap();
        assert!(!dir.path().join("a").exists());
        d.unlink(b).unwrap();
        d.sync().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("l")).unwrap();
        let e = d.open_file(OsStr::new("l"), libc::O_RDONLY).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn walk_creates_missing_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let reached = walk_beneath(tmp.path(), Path::new("a/b/c"), Missing::Create).unwrap();
        assert!(tmp.path().join("a/b/c").is_dir());
        // The walk says which directory it reached.
        let c = DirId::resolve(&tmp.path().join("a/b/c")).unwrap();
        assert_eq!(reached, Some(c));
        assert_ne!(
            Some(DirId::resolve(&tmp.path().join("a/b")).unwrap()),
            reached
        );
        // Existing ones are fine.
        walk_beneath(tmp.path(), Path::new("a/b"), Missing::Refuse).unwrap();
    }

    #[test]
    fn walk_refuses_symlinks_anywhere_and_creates_nothing_through_them() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("data")).unwrap();
        for rel in ["data", "data/x", "data/x/y"] {
            let err = walk_beneath(tmp.path(), Path::new(rel), Missing::Create).unwrap_err();
            assert!(err.is_symlink(), "{rel}: {err}");
            assert_eq!(err.path, tmp.path().join("data"));
            assert!(err.to_string().contains("symbolic link"), "{err}");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // A symlink to a file is refused as a symlink too.
        std::fs::write(outside.path().join("f"), b"").unwrap();
        std::os::unix::fs::symlink(outside.path().join("f"), tmp.path().join("f")).unwrap();
        let err = walk_beneath(tmp.path(), Path::new("f"), Missing::Create).unwrap_err();
        assert!(err.is_symlink(), "{err}");
    }

    #[test]
    fn walk_modes_for_missing_components() {
        let tmp = tempfile::tempdir().unwrap();
        let err = walk_beneath(tmp.path(), Path::new("a/b"), Missing::Refuse).unwrap_err();
        assert!(err.is_missing());
        assert_eq!(err.path, tmp.path().join("a"));
        // A dry run stops (reaching nothing) where the rest would be created.
        let reached = walk_beneath(tmp.path(), Path::new("a/b"), Missing::Stop).unwrap();
        assert_eq!(reached, None);
        assert!(!tmp.path().join("a").exists());
    }

    #[test]
    fn walk_refuses_files_and_dotdot() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("file"), b"").unwrap();
        let err = walk_beneath(tmp.path(), Path::new("file/x"), Missing::Create).unwrap_err();
        assert!(!err.is_symlink());
        assert!(err.to_string().contains("not a directory"), "{err}");
        let err = walk_beneath(tmp.path(), Path::new("../x"), Missing::Create).unwrap_err();
        assert_eq!(err.cause.kind(), io::ErrorKind::InvalidInput);
        let err = walk_beneath(tmp.path(), Path::new("/etc"), Missing::Create).unwrap_err();
        assert_eq!(err.cause.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn recording_host_fails_the_nth_call() {
        let host = RecordingHost::new();
        host.fail_call(2);
        host.mount(None, Path::new("/a"), None, MsFlags::MS_BIND, None)
            .unwrap();
        assert!(host.lchown(Path::new("/a"), 1, 1).is_err());
        assert_eq!(host.mounted(), vec![PathBuf::from("/a")]);
    }
}
