//! A real third-party Docker volume plugin for tests: buttervolume (BTRFS subvolumes, from
//! PyPI), served on a loop-mounted btrfs image that lives inside the test's own directory.
//!
//! [`ButterVolume::start`] lays everything out under one directory and points every path
//! buttervolume knows of into it, so a test never touches the machine's `/run/docker/plugins`,
//! `/etc/buttervolume` or `/var/lib/buttervolume`:
//!
//! ```text
//! DIR/btrfs.img                  sparse image, formatted with mkfs.btrfs
//! DIR/btrfs/                     its mount point (loop device)
//! DIR/btrfs/volumes/NAME         one subvolume per volume (BUTTERVOLUME_VOLUMES_PATH)
//! DIR/btrfs/snapshots/           BUTTERVOLUME_SNAPSHOTS_PATH
//! DIR/btrfs/received/            BUTTERVOLUME_TEST_REMOTE_PATH
//! DIR/run/plugins/btrfs.sock     the plugin socket (BUTTERVOLUME_SOCKET, under _RUNPATH)
//! DIR/etc/schedule.csv           BUTTERVOLUME_SCHEDULE (never created: no scheduled jobs)
//! DIR/buttervolume.log           its stdout and stderr
//! ```
//!
//! Dropping the handle stops buttervolume, unmounts every mount under `DIR` (the image and
//! whatever a test mounted there) and detaches the loop device. Needs root, `btrfs-progs` and
//! the venv that `.ci/install-buttervolume.sh` creates.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The environment variable that names the buttervolume executable.
pub const EXECUTABLE_ENV: &str = "DVDI_BUTTERVOLUME";
/// Where `.ci/install-buttervolume.sh` puts the executable by default.
pub const DEFAULT_EXECUTABLE: &str = "/opt/dvdi-ci/venv/bin/buttervolume";

/// Size of the sparse btrfs image; comfortably above mkfs.btrfs's minimum.
const IMAGE_BYTES: u64 = 256 << 20;
/// How long buttervolume gets to accept connections on its socket.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long buttervolume gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The PATH given to every command run here. It leaves out `/usr/local/bin` on purpose:
/// buttervolume runs `docker plugin inspect` through a shell when its socket does not exist
/// yet, and no test should talk to a Docker daemon the machine may have.
const SYSTEM_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
const INSTALL_HINT: &str = "run .ci/install-buttervolume.sh (as root) to install it";

/// A running buttervolume plugin on its own btrfs filesystem. Dropping it tears it all down.
#[derive(Debug)]
pub struct ButterVolume {
    dir: PathBuf,
    image: PathBuf,
    btrfs_root: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    loop_device: Option<PathBuf>,
    child: Option<Child>,
}

impl ButterVolume {
    /// Creates and mounts the btrfs image under `dir` (created if missing), starts buttervolume
    /// on it and waits until its socket accepts connections. On error, whatever was set up is
    /// torn down again.
    pub fn start(dir: &Path) -> io::Result<ButterVolume> {
        ButterVolume::start_with(&executable(), dir)
    }

    /// [`start`](Self::start) with the given buttervolume executable. When it does not exist,
    /// the error says how to install it, and nothing is created.
    pub fn start_with(executable: &Path, dir: &Path) -> io::Result<ButterVolume> {
        if !executable.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "buttervolume not found at {} (set {EXECUTABLE_ENV} to override); {INSTALL_HINT}",
                    executable.display()
                ),
            ));
        }
        fs::create_dir_all(dir).map_err(|e| with_path(e, "create", dir))?;
        // Mount points in /proc/self/mountinfo are canonical; so must ours be to match them.
        let dir = dir
            .canonicalize()
            .map_err(|e| with_path(e, "resolve", dir))?;
        let btrfs_root = dir.join("btrfs");
        let mut bv = ButterVolume {
            image: dir.join("btrfs.img"),
            socket: dir.join("run").join("plugins").join("btrfs.sock"),
            log: dir.join("buttervolume.log"),
            btrfs_root,
            dir,
            loop_device: None,
            child: None,
        };
        bv.make_filesystem()?;
        bv.spawn(executable)?;
        bv.wait_for_socket()?;
        Ok(bv)
    }

    /// The plugin's Unix socket.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The directory everything lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where buttervolume keeps its volumes (each one a btrfs subvolume).
    pub fn volumes_dir(&self) -> PathBuf {
        self.btrfs_root.join("volumes")
    }

    /// The path buttervolume answers for volume `name` (Mount, Path and Get's `Mountpoint`).
    pub fn volume_path(&self, name: &str) -> PathBuf {
        self.volumes_dir().join(name)
    }

    /// The loop device the btrfs image is attached to.
    pub fn loop_device(&self) -> Option<&Path> {
        self.loop_device.as_deref()
    }

    /// The file that collects buttervolume's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// What buttervolume has logged so far (empty when the log cannot be read).
    pub fn log(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The subvolumes of the filesystem, as paths relative to its top
    /// (`volumes/NAME` for a volume), from `btrfs subvolume list`.
    pub fn subvolumes(&self) -> io::Result<Vec<String>> {
        let out = run(Command::new("btrfs")
            .arg("subvolume")
            .arg("list")
            .arg(&self.btrfs_root))?;
        // Lines look like `ID 256 gen 7 top level 5 path volumes/x`.
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(" path ").map(|(_, p)| p.to_owned()))
            .collect())
    }

    /// Mounts the subvolume of volume `name` by itself at `target` (`-o subvol=volumes/NAME`),
    /// a second view of its data that does not go through buttervolume's directory. `target`
    /// should be under [`dir`](Self::dir), so that drop unmounts it.
    pub fn mount_subvolume(&self, name: &str, target: &Path) -> io::Result<()> {
        let device = self.loop_device.as_deref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "the btrfs image is not attached")
        })?;
        fs::create_dir_all(target).map_err(|e| with_path(e, "create", target))?;
        let mut option = OsString::from("subvol=volumes/");
        option.push(name);
        run(Command::new("mount")
            .args(["-t", "btrfs", "-o"])
            .arg(option)
            .arg(device)
            .arg(target))?;
        Ok(())
    }

    fn make_filesystem(&mut self) -> io::Result<()> {
        let image = File::create(&self.image).map_err(|e| with_path(e, "create", &self.image))?;
        image
            .set_len(IMAGE_BYTES)
            .map_err(|e| with_path(e, "size", &self.image))?;
        drop(image);
        run(Command::new("mkfs.btrfs")
            .arg("-q")
            .arg("-f")
            .arg(&self.image))
        .map_err(|e| hint_install(e, "mkfs.btrfs"))?;
        let device = attach_loop(&self.image)?;
        self.loop_device = Some(device.clone());
        fs::create_dir_all(&self.btrfs_root)
            .map_err(|e| with_path(e, "create", &self.btrfs_root))?;
        run(Command::new("mount")
            .args(["-t", "btrfs"])
            .arg(&device)
            .arg(&self.btrfs_root))?;
        Ok(())
    }

    fn spawn(&mut self, executable: &Path) -> io::Result<()> {
        // waitress binds the socket but does not create its directory.
        let socket_dir = self.socket.parent().unwrap_or(&self.dir);
        fs::create_dir_all(socket_dir).map_err(|e| with_path(e, "create", socket_dir))?;
        let etc = self.dir.join("etc");
        fs::create_dir_all(&etc).map_err(|e| with_path(e, "create", &etc))?;
        let log = File::create(&self.log).map_err(|e| with_path(e, "create", &self.log))?;
        let log_err = log.try_clone()?;
        let mut command = Command::new(executable);
        command
            .arg("run")
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .env("PYTHONUNBUFFERED", "1")
            // Every setting buttervolume reads. Environment variables win over
            // /etc/buttervolume/config.ini, whose path cannot be changed; an empty value
            // would fall through to it, so none is empty.
            .env("BUTTERVOLUME_VOLUMES_PATH", self.volumes_dir())
            .env(
                "BUTTERVOLUME_SNAPSHOTS_PATH",
                self.btrfs_root.join("snapshots"),
            )
            .env(
                "BUTTERVOLUME_TEST_REMOTE_PATH",
                self.btrfs_root.join("received"),
            )
            .env("BUTTERVOLUME_RUNPATH", self.dir.join("run"))
            .env("BUTTERVOLUME_SOCKET", &self.socket)
            .env("BUTTERVOLUME_SCHEDULE", etc.join("schedule.csv"))
            .env("BUTTERVOLUME_DRIVERNAME", "dvdi-test/buttervolume:latest")
            .env("BUTTERVOLUME_TIMER", "3600")
            .env("BUTTERVOLUME_DTFORMAT", "%Y-%m-%dT%H:%M:%S.%f")
            .env("BUTTERVOLUME_LOGLEVEL", "DEBUG")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run {}: {e}; {INSTALL_HINT}", executable.display()),
            )
        })?;
        self.child = Some(child);
        Ok(())
    }

    fn wait_for_socket(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(io::Error::other(format!(
                        "buttervolume exited ({status}) before serving {}; its log:\n{}",
                        self.socket.display(),
                        self.log()
                    )));
                }
            }
            if UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "buttervolume did not accept connections on {} within {:?}; its log:\n{}",
                        self.socket.display(),
                        START_DEADLINE,
                        self.log()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (buttervolume then removes its socket and exits 0), SIGKILL after a grace time.
    fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) takes no pointers; `pid` is our own child, not yet reaped (we hold
            // its `Child`), so the id cannot have been reused by another process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => thread::sleep(Duration::from_millis(50)),
                Err(_) => break,
            }
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for ButterVolume {
    fn drop(&mut self) {
        self.stop();
        if let Err(e) = unmount_all_under(&self.dir) {
            eprintln!("buttervolume harness: {e}");
        }
        if let Some(device) = self.loop_device.take() {
            // After a lazy unmount the device may still be busy; `losetup -d` then marks it
            // auto-clear, and the kernel detaches it when the last user goes.
            if let Err(e) = run(Command::new("losetup").arg("-d").arg(&device)) {
                eprintln!("buttervolume harness: {e}");
            }
        }
    }
}

/// The buttervolume executable: `$DVDI_BUTTERVOLUME`, else [`DEFAULT_EXECUTABLE`].
pub fn executable() -> PathBuf {
    std::env::var_os(EXECUTABLE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_EXECUTABLE))
}

/// Attaches `image` to a free loop device and returns the device. `losetup --find` can lose a
/// race for the free device against a parallel test; that is retried.
fn attach_loop(image: &Path) -> io::Result<PathBuf> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match run(Command::new("losetup")
            .arg("--find")
            .arg("--show")
            .arg(image))
        {
            Ok(out) => return Ok(PathBuf::from(out.trim())),
            Err(_) if attempt < 5 => thread::sleep(Duration::from_millis(100 * attempt)),
            Err(e) => return Err(e),
        }
    }
}

/// Unmounts every mount point strictly under `dir`, deepest first; a mount that stays busy is
/// detached lazily. Stacked mounts are handled by going round again.
pub fn unmount_all_under(dir: &Path) -> io::Result<()> {
    for _round in 0..8 {
        let mut mounts: Vec<PathBuf> = mount_points()?
            .into_iter()
            .filter(|m| m.starts_with(dir) && m != dir)
            .collect();
        if mounts.is_empty() {
            return Ok(());
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for m in &mounts {
            if umount(m, 0).is_err() {
                umount(m, libc::MNT_DETACH).map_err(|e| with_path(e, "unmount", m))?;
            }
        }
    }
    Err(io::Error::other(format!(
        "mounts under {} keep coming back",
        dir.display()
    )))
}

/// The mount points of this process's mount namespace, from `/proc/self/mountinfo`.
pub fn mount_points() -> io::Result<Vec<PathBuf>> {
    let text = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape_mountinfo(field))))
        .collect())
}

/// The mount points at or below `dir`, in mount order.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mount_points()
        .unwrap_or_else(|e| panic!("reading /proc/self/mountinfo: {e}"))
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for a space, …) in a mountinfo path field.
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn umount(path: &Path, flags: libc::c_int) -> io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in mount point"))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs `command` with [`SYSTEM_PATH`] and returns its stdout; a failure names the command
/// and carries its stderr.
fn run(command: &mut Command) -> io::Result<String> {
    command.env("PATH", SYSTEM_PATH).stdin(Stdio::null());
    let shown = format!("{command:?}");
    let out = command
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {shown}: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn hint_install(e: io::Error, tool: &str) -> io::Error {
    if e.kind() == io::ErrorKind::NotFound {
        io::Error::new(
            e.kind(),
            format!("{e} ({tool} comes with btrfs-progs; {INSTALL_HINT})"),
        )
    } else {
        e
    }
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b"), b"/tmp/a b");
        assert_eq!(unescape_mountinfo(r"/x\134y"), b"/x\\y");
        assert_eq!(unescape_mountinfo(r"/plain"), b"/plain");
        assert_eq!(unescape_mountinfo(r"/trailing\04"), b"/trailing\\04");
    }
}
