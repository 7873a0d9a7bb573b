//! Unit tests of the local driver over a `RecordingHost`: the host calls each operation makes,
//! the user set, and every refusal. No root needed; the real kernel is in `tests/local_real.rs`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::sys::{HostCall, MntFlags, MsFlags, RecordingHost};

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    host: Arc<RecordingHost>,
    driver: LocalDriver,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lib/volumes");
    let host = Arc::new(RecordingHost::new());
    let driver = LocalDriver::new(root.clone(), host.clone());
    Fixture {
        _dir: dir,
        root,
        host,
        driver,
    }
}

impl Fixture {
    fn root(&self) -> PathBuf {
        fs::canonicalize(&self.root).unwrap()
    }
    fn data(&self, name: &str) -> PathBuf {
        self.root().join(name).join("_data")
    }
    fn image(&self, name: &str) -> PathBuf {
        self.root().join(name).join("disk.img")
    }
    fn create(&self, name: &str, opts: &str) -> Result<(), DriverError> {
        self.driver.create(&vol(name), &opts_of(opts))
    }
    fn mount(&self, name: &str, id: &str) -> Result<PathBuf, DriverError> {
        self.driver.mount(&vol(name), id)
    }
    fn unmount(&self, name: &str, id: &str) -> Result<(), DriverError> {
        self.driver.unmount(&vol(name), id)
    }
    fn users(&self, name: &str) -> u64 {
        let info = self.driver.get(&vol(name)).unwrap().unwrap();
        info.status.unwrap()["users"].as_u64().unwrap()
    }
    /// Calls recorded since the last `take_calls`.
    fn take_calls(&self, seen: &mut usize) -> Vec<HostCall> {
        let all = self.host.calls();
        let new = all[*seen..].to_vec();
        *seen = all.len();
        new
    }
}

fn vol(name: &str) -> VolumeName {
    VolumeName::new(name).unwrap()
}

fn opts_of(list: &str) -> VolumeOpts {
    VolumeOpts::parse_lists(&[list]).unwrap()
}

fn mount_call(source: &Path, target: &Path, fstype: &str, flags: MsFlags) -> HostCall {
    HostCall::Mount {
        source: Some(source.to_path_buf()),
        target: target.to_path_buf(),
        fstype: Some(fstype.to_owned()),
        flags,
    }
}

fn refusal_text(err: DriverError) -> String {
    assert!(err.is_refusal(), "expected a refusal: {err}");
    err.to_string()
}

#[test]
fn directory_volume_needs_no_host_calls() {
    let f = fixture();
    assert_eq!(f.driver.get(&vol("d")).unwrap(), None);
    assert!(!f.root.exists(), "get does not create the root");

    f.create("d", "").unwrap();
    let mode = fs::metadata(&f.root).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let info = f.driver.get(&vol("d")).unwrap().unwrap();
    assert_eq!(info.name, "d");
    assert_eq!(info.mountpoint, Some(f.data("d")));
    assert!(info.created_at.unwrap().ends_with('Z'));
    assert_eq!(
        info.status.unwrap(),
        serde_json::json!({"kind": "directory", "users": 0})
    );
    assert_eq!(f.driver.path(&vol("d")).unwrap(), Some(f.data("d")));

    assert_eq!(f.mount("d", "c1").unwrap(), f.data("d"));
    assert!(f.data("d").is_dir());
    f.unmount("d", "c1").unwrap();
    f.driver.remove(&vol("d")).unwrap();
    assert!(!f.root().join("d").exists());
    assert!(f.host.calls().is_empty());
    assert_eq!(f.driver.capabilities().unwrap(), Scope::Local);
    f.driver.activate().unwrap();
}

#[test]
fn block_volume_call_sequence() {
    let f = fixture();
    let mut seen = 0;
    f.create("b", "size=64M").unwrap();
    assert_eq!(
        f.take_calls(&mut seen),
        vec![HostCall::Mkfs {
            fstype: "ext4".into(),
            image: f.image("b")
        }]
    );
    assert_eq!(fs::metadata(f.image("b")).unwrap().len(), 64 << 20);
    let info = f.driver.get(&vol("b")).unwrap().unwrap();
    assert_eq!(info.mountpoint, None, "not mounted, so no mount point");
    assert_eq!(
        info.status.unwrap(),
        serde_json::json!({"kind": "block", "size": 64u64 << 20, "fstype": "ext4", "users": 0})
    );
    assert_eq!(f.driver.path(&vol("b")).unwrap(), None);

    // First user: attach, then mount the loop device on _data.
    assert_eq!(f.mount("b", "c1").unwrap(), f.data("b"));
    let loop0 = PathBuf::from("/dev/fakeloop0");
    assert_eq!(
        f.take_calls(&mut seen),
        vec![
            HostCall::LoopAttach {
                image: f.image("b")
            },
            mount_call(&loop0, &f.data("b"), "ext4", MsFlags::empty()),
        ]
    );
    assert_eq!(f.driver.path(&vol("b")).unwrap(), Some(f.data("b")));

    // A second id and a repeated id make no calls; the repeat counts once.
    f.mount("b", "c2").unwrap();
    f.mount("b", "c2").unwrap();
    assert_eq!(f.take_calls(&mut seen), vec![]);
    assert_eq!(f.users("b"), 2);

    // Not the last user: nothing happens.
    f.unmount("b", "c2").unwrap();
    assert_eq!(f.take_calls(&mut seen), vec![]);
    assert_eq!(f.users("b"), 1);

    // The last user: unmount, then detach.
    f.unmount("b", "c1").unwrap();
    assert_eq!(
        f.take_calls(&mut seen),
        vec![
            HostCall::Umount {
                target: f.data("b")
            },
            HostCall::LoopDetach { device: loop0 },
        ]
    );
    assert_eq!(f.users("b"), 0);
    assert!(f.host.mounted().is_empty());
}

#[test]
fn fstype_is_passed_to_mkfs_and_mount() {
    let f = fixture();
    let mut seen = 0;
    f.create("x", "size=300M,fstype=xfs").unwrap();
    f.create("y", "size=128m,fstype=btrfs").unwrap();
    assert_eq!(
        f.take_calls(&mut seen),
        vec![
            HostCall::Mkfs {
                fstype: "xfs".into(),
                image: f.image("x")
            },
            HostCall::Mkfs {
                fstype: "btrfs".into(),
                image: f.image("y")
            },
        ]
    );
    f.mount("y", "c").unwrap();
    assert_eq!(
        f.take_calls(&mut seen)[1],
        mount_call(
            Path::new("/dev/fakeloop0"),
            &f.data("y"),
            "btrfs",
            MsFlags::empty()
        )
    );
}

#[test]
fn create_is_idempotent_for_the_same_options_only() {
    let f = fixture();
    f.create("b", "size=64M").unwrap();
    let calls = f.host.calls().len();
    f.create("b", "size=67108864,fstype=ext4").unwrap();
    assert_eq!(f.host.calls().len(), calls, "no second mkfs");

    let text = refusal_text(f.create("b", "size=128M").unwrap_err());
    assert!(
        text.contains("\"b\"") && text.contains("different options"),
        "{text}"
    );
    let text = refusal_text(f.create("b", "").unwrap_err());
    assert!(text.contains("a directory"), "{text}");

    f.create("d", "").unwrap();
    f.create("d", "").unwrap();
    refusal_text(f.create("d", "type=tmpfs,device=tmpfs").unwrap_err());
}

#[test]
fn bad_options_are_refused_before_anything_is_touched() {
    let f = fixture();
    let text = refusal_text(f.create("v", "size=64M,colour=red").unwrap_err());
    assert!(
        text.contains("\"v\"") && text.contains("\"colour\""),
        "{text}"
    );
    refusal_text(
        f.create("v", "size=64M,type=tmpfs,device=tmpfs")
            .unwrap_err(),
    );
    refusal_text(f.create("v", "size=1M").unwrap_err());
    assert!(!f.root.exists());
    assert!(f.host.calls().is_empty());
}

#[test]
fn reserved_name_is_refused() {
    let f = fixture();
    let text = refusal_text(f.create(".locks", "").unwrap_err());
    assert!(text.contains("reserved"), "{text}");
    refusal_text(f.mount(".locks", "c").unwrap_err());
}

#[test]
fn mkfs_failure_removes_the_half_made_volume() {
    let f = fixture();
    f.host.fail_call(1);
    let err = f.create("b", "size=64M").unwrap_err();
    assert!(!err.is_refusal());
    let text = err.to_string();
    assert!(
        text.contains("\"b\"") && text.contains("format image"),
        "{text}"
    );
    assert!(!f.root().join("b").exists());
    assert_eq!(f.driver.get(&vol("b")).unwrap(), None);
    f.create("b", "size=64M").unwrap();
}

#[test]
fn mount_failure_after_attach_detaches_and_records_no_user() {
    let f = fixture();
    f.create("b", "size=64M").unwrap();
    let mut seen = f.host.calls().len();
    f.host.fail_call(2);
    let err = f.mount("b", "c1").unwrap_err();
    assert!(!err.is_refusal());
    assert!(err.to_string().contains("cannot mount"), "{err}");
    let loop0 = PathBuf::from("/dev/fakeloop0");
    assert_eq!(
        f.take_calls(&mut seen),
        vec![
            HostCall::LoopAttach {
                image: f.image("b")
            },
            mount_call(&loop0, &f.data("b"), "ext4", MsFlags::empty()),
            HostCall::LoopDetach { device: loop0 },
        ]
    );
    assert_eq!(f.users("b"), 0);
    assert!(f.host.loops_backed_by(&f.image("b")).unwrap().is_empty());
    // Remove is not refused by a user that never mounted.
    f.mount("b", "c1").unwrap();
    f.unmount("b", "c1").unwrap();
}

#[test]
fn failed_repair_mount_keeps_the_other_users() {
    let f = fixture();
    f.create("b", "size=64M").unwrap();
    f.mount("b", "c1").unwrap();
    // Someone unmounted _data behind our back; the next Mount repairs it.
    f.host.umount(&f.data("b"), MntFlags::empty()).unwrap();
    let mut seen = f.host.calls().len();
    f.host.fail_call(1);
    f.mount("b", "c2").unwrap_err();
    assert_eq!(f.users("b"), 1, "c1 stays, c2 is not recorded");
    assert_eq!(
        f.take_calls(&mut seen),
        vec![mount_call(
            Path::new("/dev/fakeloop0"),
            &f.data("b"),
            "ext4",
            MsFlags::empty()
        )],
        "the attached loop device is reused, and kept for c1"
    );
    f.mount("b", "c2").unwrap();
    assert_eq!(f.users("b"), 2);
    assert_eq!(f.host.mounted(), vec![f.data("b")]);
}

#[test]
fn attach_failure_records_no_user() {
    let f = fixture();
    f.create("b", "size=64M").unwrap();
    f.host.fail_call(1);
    let err = f.mount("b", "c1").unwrap_err();
    assert!(err.to_string().contains("attach a loop device"), "{err}");
    assert_eq!(f.users("b"), 0);
}

#[test]
fn an_attached_image_or_mounted_data_is_reused() {
    let f = fixture();
    f.create("b", "size=64M").unwrap();
    // Left attached by a crash: mounted from that device, no second attach.
    let dev = f.host.loop_attach(&f.image("b")).unwrap();
    let mut seen = f.host.calls().len();
    f.mount("b", "c1").unwrap();
    assert_eq!(
        f.take_calls(&mut seen),
        vec![mount_call(&dev, &f.data("b"), "ext4", MsFlags::empty())]
    );
    // Left mounted with no users recorded: nothing stacked on top.
    f.unmount("b", "c1").unwrap();
    f.host
        .mount(
            Some(&dev),
            &f.data("b"),
            Some("ext4"),
            MsFlags::empty(),
            None,
        )
        .unwrap();
    f.take_calls(&mut seen);
    f.mount("b", "c2").unwrap();
    assert_eq!(f.take_calls(&mut seen), vec![]);
    assert_eq!(f.host.mounted(), vec![f.data("b")]);
}

#[test]
fn unmount_refusals() {
    let f = fixture();
    let text = refusal_text(f.unmount("nope", "c1").unwrap_err());
    assert!(text.contains("\"nope\" does not exist"), "{text}");
    f.create("b", "size=64M").unwrap();
    f.mount("b", "c1").unwrap();
    let text = refusal_text(f.unmount("b", "c9").unwrap_err());
    assert!(text.contains("\"b\"") && text.contains("\"c9\""), "{text}");
    f.unmount("b", "c1").unwrap();
    refusal_text(f.unmount("b", "c1").unwrap_err());
}

#[test]
fn failed_release_leaves_no_user_and_a_retry_repairs_it() {
    let f = fixture();
    f.create("b", "size=64M").unwrap();
    f.mount("b", "c1").unwrap();
    let mut seen = f.host.calls().len();
    f.host.fail_call(1);
    let err = f.unmount("b", "c1").unwrap_err();
    assert!(!err.is_refusal());
    assert!(err.to_string().contains("cannot unmount"), "{err}");
    assert_eq!(
        f.take_calls(&mut seen),
        vec![HostCall::Umount {
            target: f.data("b")
        }],
        "no detach under a mount"
    );
    assert_eq!(f.users("b"), 0, "the failed id does not pin the volume");

    // The retry with the same id finishes the release.
    f.unmount("b", "c1").unwrap();
    assert_eq!(
        f.take_calls(&mut seen),
        vec![
            HostCall::Umount {
                target: f.data("b")
            },
            HostCall::LoopDetach {
                device: "/dev/fakeloop0".into()
            },
        ]
    );
    // Now fully released: the id is unknown again.
    refusal_text(f.unmount("b", "c1").unwrap_err());
}

#[test]
fn failed_release_is_repaired_by_the_next_mount() {
    let f = fixture();
    f.create("b", "size=64M").unwrap();
    f.mount("b", "c1").unwrap();
    f.host.fail_call(1);
    f.unmount("b", "c1").unwrap_err();
    let mut seen = f.host.calls().len();
    f.mount("b", "c2").unwrap();
    assert_eq!(f.take_calls(&mut seen), vec![], "still mounted: reused");
    f.unmount("b", "c2").unwrap();
    assert!(f.host.mounted().is_empty());
}

#[test]
fn a_recorded_user_without_a_mount_is_repaired_by_mount() {
    // A crash between recording a user and mounting.
    let f = fixture();
    f.create("b", "size=64M").unwrap();
    let users = f.root().join("b/users.json");
    fs::write(&users, r#"{"version":1,"users":["c1"]}"#).unwrap();
    f.mount("b", "c2").unwrap();
    assert_eq!(f.host.mounted(), vec![f.data("b")]);
    f.unmount("b", "c1").unwrap();
    f.unmount("b", "c2").unwrap();
    assert!(f.host.mounted().is_empty());
}

#[test]
fn tmpfs_device_volume() {
    let f = fixture();
    let mut seen = 0;
    f.create("t", "type=tmpfs,device=tmpfs,o=size=64m").unwrap();
    f.create("r", "type=tmpfs,device=tmpfs,o=size=1m,ro,nosuid")
        .unwrap();
    assert_eq!(f.take_calls(&mut seen), vec![]);
    let info = f.driver.get(&vol("t")).unwrap().unwrap();
    assert_eq!(
        info.status.unwrap(),
        serde_json::json!({"kind": "device", "type": "tmpfs", "device": "tmpfs", "o": "size=64m", "users": 0})
    );
    f.mount("t", "c1").unwrap();
    f.mount("r", "c1").unwrap();
    assert_eq!(
        f.take_calls(&mut seen),
        vec![
            mount_call(Path::new("tmpfs"), &f.data("t"), "tmpfs", MsFlags::empty()),
            mount_call(
                Path::new("tmpfs"),
                &f.data("r"),
                "tmpfs",
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
            ),
        ]
    );
    f.unmount("t", "c1").unwrap();
    assert_eq!(
        f.take_calls(&mut seen),
        vec![HostCall::Umount {
            target: f.data("t")
        }]
    );
}

#[test]
fn remove_is_refused_while_in_use_or_mounted() {
    let f = fixture();
    f.create("b", "size=64M").unwrap();
    f.mount("b", "c1").unwrap();
    f.mount("b", "c2").unwrap();
    let text = refusal_text(f.driver.remove(&vol("b")).unwrap_err());
    assert!(
        text.contains("volume \"b\" is in use by 2 mount(s)"),
        "{text}"
    );
    f.unmount("b", "c1").unwrap();
    f.unmount("b", "c2").unwrap();

    // Defensively: a mount no user explains still stops a remove.
    f.host
        .mount(None, &f.data("b"), Some("tmpfs"), MsFlags::empty(), None)
        .unwrap();
    let text = refusal_text(f.driver.remove(&vol("b")).unwrap_err());
    assert!(text.contains("still mounted"), "{text}");
    f.host.umount(&f.data("b"), MntFlags::empty()).unwrap();

    f.driver.remove(&vol("b")).unwrap();
    assert!(!f.root().join("b").exists());
    assert_eq!(f.driver.get(&vol("b")).unwrap(), None);
    refusal_text(f.driver.remove(&vol("b")).unwrap_err());
    refusal_text(f.mount("b", "c1").unwrap_err());
}

#[test]
fn remove_detaches_a_leftover_loop_device() {
    let f = fixture();
    f.create("b", "size=64M").unwrap();
    f.host.loop_attach(&f.image("b")).unwrap();
    f.driver.remove(&vol("b")).unwrap();
    assert!(f.host.calls().contains(&HostCall::LoopDetach {
        device: "/dev/fakeloop0".into()
    }));
}

#[test]
fn corrupt_records_are_errors_listed_and_removable() {
    let f = fixture();
    f.create("ok", "").unwrap();
    f.create("bad", "").unwrap();
    let meta = f.root().join("bad/meta.json");
    fs::write(&meta, "{not json").unwrap();

    let err = f.driver.get(&vol("bad")).unwrap_err();
    assert!(!err.is_refusal(), "a corrupt volume is not a missing one");
    let text = err.to_string();
    assert!(
        text.contains("\"bad\"") && text.contains(&meta.display().to_string()),
        "{text}"
    );
    assert!(f.mount("bad", "c").is_err());

    let list = f.driver.list().unwrap();
    assert_eq!(
        list.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["bad", "ok"]
    );
    let status = list[0].status.as_ref().unwrap();
    assert!(
        status["error"].as_str().unwrap().contains("meta.json"),
        "{status}"
    );

    f.driver.remove(&vol("bad")).unwrap();
    assert_eq!(f.driver.list().unwrap().len(), 1);

    fs::write(f.root().join("ok/users.json"), "").unwrap();
    let text = f.driver.remove(&vol("ok")).unwrap_err().to_string();
    assert!(
        text.contains("users.json") && text.contains("empty"),
        "{text}"
    );
}

#[test]
fn unfinished_create_is_invisible_and_cleared_by_the_next_create() {
    let f = fixture();
    f.create("a", "").unwrap();
    // A create cut short before meta.json was written.
    let half = f.root().join("half");
    fs::create_dir_all(half.join("_data")).unwrap();
    fs::write(half.join("disk.img"), b"junk").unwrap();
    // And things in the root that are not volumes.
    fs::write(f.root().join("stray-file"), b"").unwrap();

    assert_eq!(f.driver.get(&vol("half")).unwrap(), None);
    let names: Vec<String> = f
        .driver
        .list()
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["a"]);
    refusal_text(f.driver.remove(&vol("half")).unwrap_err());

    f.create("half", "size=64M").unwrap();
    assert_eq!(fs::metadata(f.image("half")).unwrap().len(), 64 << 20);
}

#[test]
fn list_reports_users_and_mount_points() {
    let f = fixture();
    assert_eq!(f.driver.list().unwrap(), vec![]);
    f.create("b", "size=64M").unwrap();
    f.create("d", "").unwrap();
    f.mount("b", "c1").unwrap();
    let list = f.driver.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].mountpoint, Some(f.data("b")));
    assert_eq!(list[0].status.as_ref().unwrap()["users"], 1);
    assert_eq!(list[1].mountpoint, Some(f.data("d")));
}

#[test]
fn ops_mount_creates_then_mounts_through_the_local_driver() {
    let f = fixture();
    let volume = vol("auto");
    let path = crate::ops::mount(&f.driver, &volume, &opts_of("size=16M"), false, "c1").unwrap();
    assert_eq!(path, f.data("auto"));
    let err = crate::ops::mount(&f.driver, &vol("none"), &VolumeOpts::new(), true, "c1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("explicit create"), "{err}");
    assert_eq!(crate::ops::path(&f.driver, &volume).unwrap(), Some(path));
    crate::ops::unmount(&f.driver, &volume, "c1").unwrap();
    assert_eq!(crate::ops::path(&f.driver, &volume).unwrap(), None);
}

// ---- the size cap (issue 10, finding 8a) ----

const GIB: u64 = 1 << 30;

/// A driver over a fake filesystem with `free` bytes free and the operator's `cap`.
fn capped(free: u64, cap: Option<u64>) -> Fixture {
    let f = fixture();
    f.host.set_free_space(Some(free));
    Fixture {
        driver: LocalDriver::new(f.root.clone(), f.host.clone()).with_max_size(cap),
        ..f
    }
}

#[test]
fn without_a_cap_a_block_volume_may_not_outgrow_the_free_space() {
    // The finding: size=1004G on a filesystem with 251 G free was accepted.
    let f = capped(251 * GIB, None);
    let text = refusal_text(f.create("big", "size=1004G").unwrap_err());
    for needle in [
        "\"big\"",
        "size=1004G",
        &format!("{} bytes", 1004 * GIB),
        "251 GiB",
        "free on the filesystem of the local root",
        &f.root().display().to_string(),
        "local_max_size",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
    // Refused before anything was made: no image, no mkfs, no volume directory.
    assert!(f.host.calls().is_empty(), "{:?}", f.host.calls());
    assert!(!f.root().join("big").exists());
    assert_eq!(f.driver.get(&vol("big")).unwrap(), None);
    // One byte over is over; exactly the free space is fine (the image is sparse).
    f.host.set_free_space(Some(64 << 20));
    assert!(f.create("over", "size=67108865").is_err());
    f.create("fits", "size=64M").unwrap();
}

#[test]
fn an_operator_cap_is_enforced_and_named() {
    let f = capped(251 * GIB, Some(100 * GIB));
    let text = refusal_text(f.create("big", "size=101G").unwrap_err());
    for needle in [
        "\"big\"",
        "size=101G",
        "100 GiB",
        "local_max_size",
        "DVDI_LOCAL_MAX_SIZE",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
    assert!(!text.contains("free on"), "{text}");
    assert!(f.host.calls().is_empty());
    f.create("ok", "size=64M").unwrap();

    // A cap above the free space does not lift the free-space bound.
    let f = capped(GIB, Some(100 * GIB));
    let text = refusal_text(f.create("big", "size=2G").unwrap_err());
    assert!(text.contains("free on the filesystem"), "{text}");

    // Every fstype, and the spellings of a size, are capped alike.
    let f = capped(251 * GIB, Some(300 << 20));
    for opts in [
        "size=301M,fstype=xfs",
        "size=1G,fstype=btrfs",
        "size=307201k",
        "size=314572801",
    ] {
        assert!(f.create("v", opts).is_err(), "{opts}");
    }
    // Directories and device volumes have no size to cap.
    f.create("dir", "").unwrap();
    f.create("tmp", "type=tmpfs,device=tmpfs,o=size=2g")
        .unwrap();
}

#[test]
fn a_volume_that_exists_is_used_whatever_the_cap_now() {
    let f = fixture();
    f.create("old", "size=64M").unwrap();
    // The operator lowers the cap, or the disk fills up: the existing volume is still there
    // to be created idempotently and mounted; only new ones are refused.
    let f = Fixture {
        driver: LocalDriver::new(f.root.clone(), f.host.clone()).with_max_size(Some(32 << 20)),
        ..f
    };
    f.host.set_free_space(Some(0));
    f.create("old", "size=64M").unwrap();
    f.mount("old", "c1").unwrap();
    assert!(f.create("new", "size=64M").is_err());
}
