//! `dvdcli` on the embedded `local` driver with real loop devices (root): data survives unmount
//! and a remount from a second process, mount IDs are a set, and the last unmount detaches.

use std::path::{Path, PathBuf};
use std::process::Output;

use dvdi_testkit::buttervolume::mounts_under;
use dvdi_testkit::env::{command, require_root, workspace_bin};

struct Local {
    dir: tempfile::TempDir,
}

impl Local {
    fn new() -> Local {
        Local {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("volumes")
    }

    fn dvdcli(&self, args: &[&str]) -> Output {
        command(&workspace_bin("dvdcli"))
            .args(args)
            .env("DVDI_LOCAL_ROOT", self.root())
            .env("DVDI_PLUGIN_DIRS", self.dir.path().join("no-plugins"))
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.dvdcli(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "dvdcli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn image(&self, volume: &str) -> PathBuf {
        self.root().join(volume).join("disk.img")
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Leave nothing behind even when an assertion failed half-way.
        for m in mounts_under(self.dir.path()) {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Loop devices whose backing file is `image`.
fn loops_backed_by(image: &Path) -> Vec<String> {
    dvdi_testkit::loops::backed_by(|file| file == image)
}

/// [`loops_backed_by`], once the detaches the kernel deferred are done.
fn loops_settled(image: &Path) -> Vec<String> {
    dvdi_testkit::loops::settled(|| loops_backed_by(image))
}

const VOL: [&str; 2] = ["--volumedriver=local", "--volumename=blk"];

fn args<'a>(sub: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![sub, VOL[0], VOL[1]];
    v.extend_from_slice(extra);
    v
}

#[test]
fn data_survives_unmount_and_remount_from_a_second_process() {
    if !require_root("data_survives_unmount_and_remount_from_a_second_process") {
        return;
    }
    let l = Local::new();
    let path = l.ok(&args("mount", &["--volumeopts=size=32M"]));
    let mp = PathBuf::from(path.trim_end());
    assert_eq!(path, format!("{}\n", mp.display()));
    assert_eq!(mounts_under(l.dir.path()), std::slice::from_ref(&mp));
    assert_eq!(loops_backed_by(&l.image("blk")).len(), 1);
    std::fs::write(mp.join("hello.txt"), "from the first process").unwrap();
    assert_eq!(l.ok(&args("unmount", &[])), "");
    assert!(mounts_under(l.dir.path()).is_empty());
    assert!(
        loops_settled(&l.image("blk")).is_empty(),
        "loop device still attached"
    );
    assert!(
        !mp.join("hello.txt").exists(),
        "data must live in the image, not the directory"
    );

    let again = l.ok(&args("mount", &["--explicitcreate"]));
    assert_eq!(again, path);
    assert_eq!(
        std::fs::read_to_string(mp.join("hello.txt")).unwrap(),
        "from the first process"
    );
    assert_eq!(l.ok(&args("unmount", &[])), "");
    assert_eq!(l.ok(&args("remove", &[])), "");
    assert!(!l.root().join("blk").exists());
}

#[test]
fn mount_ids_are_a_set_and_the_last_unmount_detaches() {
    if !require_root("mount_ids_are_a_set_and_the_last_unmount_detaches") {
        return;
    }
    let l = Local::new();
    l.ok(&args("create", &["--volumeopts=size=32M,fstype=ext4"]));
    l.ok(&args("mount", &["--id=a"]));
    l.ok(&args("mount", &["--id=b"]));
    assert_eq!(
        mounts_under(l.dir.path()).len(),
        1,
        "one physical mount for two ids"
    );
    l.ok(&args("unmount", &["--id=a"]));
    assert_eq!(mounts_under(l.dir.path()).len(), 1, "still mounted for b");
    assert_eq!(loops_backed_by(&l.image("blk")).len(), 1);

    // The same id twice counts once: one unmount of it releases.
    l.ok(&args("mount", &["--id=b"]));
    l.ok(&args("unmount", &["--id=b"]));
    assert!(mounts_under(l.dir.path()).is_empty());
    assert!(loops_settled(&l.image("blk")).is_empty());

    // The default id behaves the same across processes.
    l.ok(&args("mount", &[]));
    l.ok(&args("mount", &[]));
    l.ok(&args("unmount", &[]));
    assert!(mounts_under(l.dir.path()).is_empty());
}

#[test]
fn remove_of_a_mounted_volume_is_refused() {
    if !require_root("remove_of_a_mounted_volume_is_refused") {
        return;
    }
    let l = Local::new();
    l.ok(&args("mount", &["--volumeopts=size=32M"]));
    let out = l.dvdcli(&args("remove", &[]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("blk"), "{err}");
    assert_eq!(mounts_under(l.dir.path()).len(), 1);
    l.ok(&args("unmount", &[]));
    l.ok(&args("remove", &[]));
}

#[test]
fn directory_volumes_list_get_and_path() {
    let l = Local::new();
    if !require_root("directory_volumes_list_get_and_path") {
        return;
    }
    l.ok(&["create", "--volumedriver=local", "--volumename=dir-a"]);
    l.ok(&["create", "--volumedriver=local", "--volumename=dir-b"]);
    assert_eq!(l.ok(&["list", "--volumedriver=local"]), "dir-a\ndir-b\n");
    assert_eq!(
        l.ok(&["get", "--volumedriver=local", "--volumename=dir-a"]),
        "dir-a\n"
    );
    let path = l.ok(&["path", "--volumedriver=local", "--volumename=dir-a"]);
    assert_eq!(
        path,
        format!("{}\n", l.root().join("dir-a/_data").display())
    );
    let out = l.dvdcli(&[
        "create",
        "--volumedriver=local",
        "--volumename=x",
        "--volumeopts=bogus=1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

#[test]
fn an_operator_keeps_the_device_options() {
    if !require_root("an_operator_keeps_the_device_options") {
        return;
    }
    // What a task may not ask for through DVDI_VOLUME_OPTS, `dvdcli mount` by hand still does.
    let l = Local::new();
    let path = l.ok(&[
        "mount",
        "--volumedriver=local",
        "--volumename=scratch",
        "--volumeopts=type=tmpfs,device=tmpfs,o=size=4m",
    ]);
    let path = PathBuf::from(path.trim());
    assert_eq!(mounts_under(l.dir.path()), vec![path]);
    l.ok(&["unmount", "--volumedriver=local", "--volumename=scratch"]);
    assert!(mounts_under(l.dir.path()).is_empty());
}

#[test]
fn local_volume_names_cannot_leave_the_root() {
    let l = Local::new();
    let long = "v".repeat(256);
    for name in [
        "..",
        ".",
        "../escape",
        "a/b",
        "/abs",
        "a\u{1}b",
        long.as_str(),
    ] {
        for sub in ["create", "mount", "remove", "path"] {
            let out = l.dvdcli(&[sub, "--volumedriver=local", &format!("--volumename={name}")]);
            assert_ne!(out.status.code(), Some(0), "{sub} {name:?}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("volume name"),
                "{sub} {name:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // Refused before any file operation: not even the root was created, nothing beside it.
    let left: Vec<_> = std::fs::read_dir(l.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
