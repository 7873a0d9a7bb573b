//! The local driver against the real kernel: loop devices, ext4/xfs/btrfs, tmpfs, mount(2),
//! and several processes sharing one volume. Needs root (CI is root); each test has its own
//! temporary root and never touches /var/lib/dvdi.

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use dvdi::local::LocalDriver;
use dvdi::mountinfo;
use dvdi::sys::{Host, MntFlags, MsFlags, RealHost};
use dvdi::{VolumeDriver, VolumeName, VolumeOpts};
use dvdi_testkit::env::require_root;

/// A driver over a fresh root; on drop, takes down whatever a failed test left mounted or
/// attached under it, so one failure does not leak into the host.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    driver: LocalDriver,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap().join("volumes");
    let driver = LocalDriver::new(root.clone(), Arc::new(RealHost));
    Fixture {
        _dir: dir,
        root,
        driver,
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let mut mounts: Vec<PathBuf> = mounts_under(&self.root)
            .into_iter()
            .map(|m| m.mount_point)
            .collect();
        mounts.sort();
        for m in mounts.iter().rev() {
            let _ = nix::mount::umount2(m, MntFlags::MNT_DETACH);
        }
        for (dev, _) in loops_under(&self.root) {
            let _ = RealHost.loop_detach(&dev);
        }
    }
}

impl Fixture {
    fn create(&self, name: &str, opts: &str) {
        self.driver
            .create(&vol(name), &VolumeOpts::parse_lists(&[opts]).unwrap())
            .unwrap();
    }
    fn mount(&self, name: &str, id: &str) -> PathBuf {
        self.driver.mount(&vol(name), id).unwrap()
    }
    fn unmount(&self, name: &str, id: &str) {
        self.driver.unmount(&vol(name), id).unwrap();
    }
    fn data(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }
    fn image(&self, name: &str) -> PathBuf {
        self.root.join(name).join("disk.img")
    }
    /// Mount table entries at `name`'s `_data`.
    fn mounts_at(&self, name: &str) -> Vec<mountinfo::MountEntry> {
        let data = self.data(name);
        mountinfo::read_self()
            .unwrap()
            .into_iter()
            .filter(|m| m.mount_point == data)
            .collect()
    }
    /// Nothing of the driver is mounted or attached any more.
    fn assert_released(&self) {
        let mounts = mounts_under(&self.root);
        assert!(mounts.is_empty(), "still mounted: {mounts:?}");
        let loops = loops_under(&self.root);
        assert!(loops.is_empty(), "still attached: {loops:?}");
    }
}

fn vol(name: &str) -> VolumeName {
    VolumeName::new(name).unwrap()
}

fn mounts_under(root: &Path) -> Vec<mountinfo::MountEntry> {
    let all = mountinfo::read_self().unwrap();
    mountinfo::under(&all, root).cloned().collect()
}

/// Loop devices whose backing file is under `root`, read from sysfs directly.
fn loops_under(root: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/sys/block").unwrap() {
        let entry = entry.unwrap();
        if !entry.file_name().as_bytes().starts_with(b"loop") {
            continue;
        }
        let Ok(backing) = fs::read_to_string(entry.path().join("loop/backing_file")) else {
            continue;
        };
        let backing = PathBuf::from(backing.trim_end_matches('\n'));
        if backing.starts_with(root) {
            found.push((Path::new("/dev").join(entry.file_name()), backing));
        }
    }
    found
}

/// Writes, unmounts, mounts again and reads back: the data lives in the image.
fn data_survives_remount(f: &Fixture, name: &str, fstype: &str) {
    let path = f.mount(name, "c1");
    assert_eq!(path, f.data(name));
    let mounts = f.mounts_at(name);
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0].fstype, fstype);
    assert!(mounts[0].source.starts_with("/dev/loop"), "{mounts:?}");
    let mut file = fs::File::create(path.join("hello.txt")).unwrap();
    file.write_all(b"kept across mounts\n").unwrap();
    file.sync_all().unwrap();
    drop(file);

    f.unmount(name, "c1");
    f.assert_released();
    assert!(!path.join("hello.txt").exists(), "written below the mount");

    let path = f.mount(name, "c2");
    assert_eq!(
        fs::read_to_string(path.join("hello.txt")).unwrap(),
        "kept across mounts\n"
    );
    f.unmount(name, "c2");
    f.assert_released();
}

#[test]
fn ext4_block_volume_keeps_its_data() {
    if !require_root("ext4_block_volume_keeps_its_data") {
        return;
    }
    let f = fixture();
    f.create("es-data", "size=64M");
    let image = fs::metadata(f.image("es-data")).unwrap();
    assert_eq!(image.len(), 64 << 20);
    data_survives_remount(&f, "es-data", "ext4");

    f.driver.remove(&vol("es-data")).unwrap();
    assert!(!f.root.join("es-data").exists());
}

#[test]
fn xfs_block_volume_keeps_its_data() {
    if !require_root("xfs_block_volume_keeps_its_data") {
        return;
    }
    let f = fixture();
    f.create("x", "size=300M,fstype=xfs");
    data_survives_remount(&f, "x", "xfs");
}

#[test]
fn btrfs_block_volume_keeps_its_data() {
    if !require_root("btrfs_block_volume_keeps_its_data") {
        return;
    }
    let f = fixture();
    f.create("b", "size=128m,fstype=btrfs");
    data_survives_remount(&f, "b", "btrfs");
}

#[test]
fn two_ids_keep_it_mounted_until_the_last_unmount() {
    if !require_root("two_ids_keep_it_mounted_until_the_last_unmount") {
        return;
    }
    let f = fixture();
    // A space and a backslash: escaped in mountinfo, raw in sysfs.
    let v = "my vol\\1";
    f.create(v, "size=16M");
    f.mount(v, "a");
    f.mount(v, "b");
    assert_eq!(f.mounts_at(v).len(), 1, "one mount for two users");
    assert_eq!(loops_under(&f.root).len(), 1);

    f.unmount(v, "a");
    assert_eq!(f.mounts_at(v).len(), 1, "b still uses it");
    let err = f.driver.remove(&vol(v)).unwrap_err();
    assert!(err.to_string().contains("in use by 1 mount(s)"), "{err}");

    f.unmount(v, "b");
    f.assert_released();
}

#[test]
fn the_same_id_twice_is_one_user() {
    if !require_root("the_same_id_twice_is_one_user") {
        return;
    }
    let f = fixture();
    f.create("v", "size=16M");
    f.mount("v", "a");
    f.mount("v", "a");
    assert_eq!(f.mounts_at("v").len(), 1, "no stacked mount");
    f.unmount("v", "a");
    f.assert_released();
    assert!(f.driver.unmount(&vol("v"), "a").unwrap_err().is_refusal());
}

#[test]
fn leftovers_of_a_crash_are_reused_not_stacked() {
    if !require_root("leftovers_of_a_crash_are_reused_not_stacked") {
        return;
    }
    let f = fixture();
    f.create("v", "size=16M");
    // The image attached by a run that died before mounting.
    let dev = RealHost.loop_attach(&f.image("v")).unwrap();
    f.mount("v", "a");
    assert_eq!(loops_under(&f.root), vec![(dev.clone(), f.image("v"))]);
    assert_eq!(f.mounts_at("v")[0].source, dev.display().to_string());
    f.unmount("v", "a");
    f.assert_released();

    // Mounted by a run that died before recording its user.
    let dev = RealHost.loop_attach(&f.image("v")).unwrap();
    RealHost
        .mount(
            Some(&dev),
            &f.data("v"),
            Some("ext4"),
            MsFlags::empty(),
            None,
        )
        .unwrap();
    f.mount("v", "b");
    assert_eq!(f.mounts_at("v").len(), 1);
    f.unmount("v", "b");
    f.assert_released();
}

#[test]
fn busy_unmount_is_reported_and_repaired_by_a_retry() {
    if !require_root("busy_unmount_is_reported_and_repaired_by_a_retry") {
        return;
    }
    let f = fixture();
    f.create("v", "size=16M");
    let path = f.mount("v", "a");
    // An open file on the filesystem makes umount(2) fail with EBUSY.
    let busy = fs::File::create(path.join("open")).unwrap();
    let err = f.driver.unmount(&vol("v"), "a").unwrap_err();
    assert!(!err.is_refusal());
    assert!(err.to_string().contains("cannot unmount"), "{err}");
    assert_eq!(f.mounts_at("v").len(), 1);
    drop(busy);
    f.unmount("v", "a");
    f.assert_released();
}

#[test]
fn tmpfs_device_volume() {
    if !require_root("tmpfs_device_volume") {
        return;
    }
    let f = fixture();
    f.create("t", "type=tmpfs,device=tmpfs,o=size=64m,nosuid");
    let path = f.mount("t", "a");
    let mounts = f.mounts_at("t");
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].fstype, "tmpfs");
    assert!(
        mounts[0].options.split(',').any(|o| o == "nosuid"),
        "{mounts:?}"
    );
    let st = nix::sys::statvfs::statvfs(&path).unwrap();
    assert_eq!(st.blocks() * st.fragment_size(), 64 << 20);
    fs::write(path.join("x"), b"x").unwrap();
    f.unmount("t", "a");
    f.assert_released();
    f.driver.remove(&vol("t")).unwrap();
}

/// Env var that turns `hammer_child_process` into a worker (set by `processes_hammer_…`).
const HAMMER_ROOT: &str = "DVDI_TEST_HAMMER_ROOT";
const HAMMER_ID: &str = "DVDI_TEST_HAMMER_ID";
const ROUNDS: usize = 15;

/// Mounts and unmounts `volume` as `id` many times; while it holds the volume, `_data` must be
/// mounted and writable.
fn hammer(driver: &LocalDriver, id: &str) {
    let volume = vol("shared");
    for round in 0..ROUNDS {
        let path = driver.mount(&volume, id).unwrap();
        let table = mountinfo::read_self().unwrap();
        assert!(
            table.iter().any(|m| m.mount_point == path),
            "{id} round {round}: not mounted while held"
        );
        fs::write(path.join(format!("{id}-{round}")), id).unwrap();
        driver.unmount(&volume, id).unwrap();
    }
}

/// The worker half of `processes_and_threads_hammer_one_volume`; does nothing when run alone.
#[test]
fn hammer_child_process() {
    let (Ok(root), Ok(id)) = (std::env::var(HAMMER_ROOT), std::env::var(HAMMER_ID)) else {
        return;
    };
    let driver = LocalDriver::new(PathBuf::from(root), Arc::new(RealHost));
    hammer(&driver, &id);
}

#[test]
fn processes_and_threads_hammer_one_volume() {
    if !require_root("processes_and_threads_hammer_one_volume") {
        return;
    }
    let f = fixture();
    f.create("shared", "size=16M");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|i| {
            Command::new(&exe)
                .args(["hammer_child_process", "--exact", "--nocapture"])
                .env(HAMMER_ROOT, &f.root)
                .env(HAMMER_ID, format!("proc{i}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::scope(|s| {
        for i in 0..2 {
            let root = f.root.clone();
            s.spawn(move || {
                // Its own driver, as another caller in the agent would have.
                let driver = LocalDriver::new(root, Arc::new(RealHost));
                hammer(&driver, &format!("thread{i}"));
            });
        }
    });
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "worker process failed: {out:?}");
    }
    let info = f.driver.get(&vol("shared")).unwrap().unwrap();
    assert_eq!(info.status.unwrap()["users"], 0);
    f.assert_released();
    // Every write of every worker went to the image.
    let path = f.mount("shared", "check");
    let written = fs::read_dir(&path)
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .as_bytes()
                .starts_with(b"lost+found")
        })
        .count();
    assert_eq!(written, 4 * ROUNDS);
    f.unmount("shared", "check");
    f.assert_released();
}
