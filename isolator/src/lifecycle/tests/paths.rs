//! Container paths: where a volume lands in the container, walked without following a
//! symlink, never outside the sandbox, the image rootfs or the host's `/tmp`.

use super::*;

#[test]
fn a_symlink_planted_in_the_sandbox_is_refused_and_nothing_is_created_outside() {
    let f = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    for (path, link_at, points_to) in [
        ("data", "data", outside.path().to_path_buf()),
        ("data/x", "data", outside.path().to_path_buf()),
        ("a/data", "a", PathBuf::from("/etc")),
    ] {
        let id = format!("c-{}", path.replace('/', "-"));
        let sandbox = f.sandbox(&id);
        std::os::unix::fs::symlink(&points_to, sandbox.join(link_at)).unwrap();
        let err = f
            .iso
            .prepare(
                &cid(&id),
                &ContainerConfig {
                    sandbox: sandbox.clone(),
                    ..f.config(
                        &id,
                        &[
                            ("DVDI_VOLUME_NAME", "data"),
                            ("DVDI_VOLUME_CONTAINERPATH", path),
                        ],
                    )
                },
            )
            .unwrap_err();
        assert!(matches!(err, IsolatorError::ContainerPath { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("symbolic link"), "{text}");
        assert!(
            text.contains(&sandbox.join(link_at).display().to_string()),
            "{text}"
        );
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(!Path::new("/etc/data").exists());
    assert!(f.driver.calls().is_empty());
    assert!(f.host.calls().is_empty());
    assert!(f.container_files().is_empty());
}

#[test]
fn absolute_paths_must_exist_unless_under_tmp_and_never_cross_a_symlink() {
    let f = Fixture::new();
    let rootfs = f.tmp.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("srv/es")).unwrap();
    std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
    std::os::unix::fs::symlink("/etc", rootfs.join("etc-link")).unwrap();
    let cfg = |path: &str| ContainerConfig {
        rootfs: Some(rootfs.clone()),
        ..f.config(
            "c1",
            &[
                ("DVDI_VOLUME_NAME", "data"),
                ("DVDI_VOLUME_CONTAINERPATH", path),
            ],
        )
    };
    // Missing outside /tmp: refused, naming the missing directory.
    let err = f
        .iso
        .prepare(&cid("c1"), &cfg("/srv/missing/x"))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("does not exist") && text.contains("srv/missing"),
        "{text}"
    );
    // An absolute symlink in the rootfs would resolve on the host: refused.
    let err = f.iso.prepare(&cid("c1"), &cfg("/etc-link/x")).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(f.driver.calls().is_empty());

    // Existing: bound at rootfs/path. Under /tmp: created.
    let info = f.iso.prepare(&cid("c1"), &cfg("/srv/es")).unwrap().unwrap();
    assert_eq!(info.mounts[0].target, rootfs.join("srv/es"));
    f.iso.cleanup(&cid("c1")).unwrap();
    let info = f
        .iso
        .prepare(
            &cid("c2"),
            &ContainerConfig {
                rootfs: Some(rootfs.clone()),
                ..f.config(
                    "c2",
                    &[
                        ("DVDI_VOLUME_NAME", "data"),
                        ("DVDI_VOLUME_CONTAINERPATH", "/tmp/new/dir"),
                    ],
                )
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(info.mounts[0].target, rootfs.join("tmp/new/dir"));
    assert!(rootfs.join("tmp/new/dir").is_dir());
}

/// Issue 10, finding 7: the image rootfs is task-controlled, like the sandbox. Every symlink
/// in the components we walk — the rootfs's own `tmp` included — is refused, whatever it
/// points at (a host directory, a relative escape, a directory inside the image, nothing),
/// and nothing is created anywhere.
#[test]
fn an_image_rootfs_is_walked_like_the_sandbox_and_never_left_through_a_symlink() {
    let f = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    // (component made a symlink, container paths that walk through it)
    let layouts: [(&str, &[&str]); 4] = [
        ("tmp", &["/tmp/newdir", "/tmp/newdir/deeper", "/tmp/x"]),
        ("tmp/sub", &["/tmp/sub/newdir", "/tmp/sub"]),
        ("srv", &["/srv/data", "/srv"]),
        ("srv/es", &["/srv/es/config"]),
    ];
    let mut n = 0;
    for (link, paths) in layouts {
        let depth = link.matches('/').count() + 1;
        let kinds: [(&str, PathBuf); 4] = [
            ("absolute to a host dir", outside.path().to_path_buf()),
            (
                "relative, out of the rootfs",
                PathBuf::from("../".repeat(depth + 1)).join(
                    outside
                        .path()
                        .strip_prefix(f.tmp.path().parent().unwrap())
                        .unwrap_or(outside.path()),
                ),
            ),
            ("relative, inside the image", PathBuf::from("inside")),
            ("dangling", PathBuf::from("/nonexistent-dvdi-test-target")),
        ];
        for (kind, points_to) in kinds {
            for path in paths {
                n += 1;
                let id = format!("img{n}");
                let rootfs = f.tmp.path().join(format!("rootfs{n}"));
                std::fs::create_dir_all(rootfs.join("inside")).unwrap();
                let parent = rootfs.join(link);
                std::fs::create_dir_all(parent.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(&points_to, &parent).unwrap();
                let cfg = ContainerConfig {
                    rootfs: Some(rootfs.clone()),
                    ..f.config(
                        &id,
                        &[
                            ("DVDI_VOLUME_NAME", "data"),
                            ("DVDI_VOLUME_CONTAINERPATH", path),
                        ],
                    )
                };
                let err = f.iso.prepare(&cid(&id), &cfg).unwrap_err();
                let text = err.to_string();
                let what = format!("{link} {kind}, {path}: {text}");
                assert!(matches!(err, IsolatorError::ContainerPath { .. }), "{what}");
                assert!(text.contains("symbolic link"), "{what}");
                assert!(text.contains(&format!("{path:?}")), "{what}");
                assert!(
                    text.contains(&parent.display().to_string()),
                    "names the link: {what}"
                );
                assert_eq!(
                    std::fs::read_dir(rootfs.join("inside")).unwrap().count(),
                    0,
                    "{what}"
                );
            }
        }
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(f.host.calls().is_empty(), "{:?}", f.host.calls());
    assert!(f.driver.calls().is_empty());
    assert!(f.container_files().is_empty());
}

#[test]
fn an_image_without_tmp_gets_none_made_and_dotdot_never_reaches_the_walk() {
    let f = Fixture::new();
    let rootfs = f.tmp.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let cfg = |id: &str, path: &str| ContainerConfig {
        rootfs: Some(rootfs.clone()),
        ..f.config(
            id,
            &[
                ("DVDI_VOLUME_NAME", "data"),
                ("DVDI_VOLUME_CONTAINERPATH", path),
            ],
        )
    };
    // The image's `tmp` is walked, never made: only what is below it is created.
    let err = f.iso.prepare(&cid("c1"), &cfg("c1", "/tmp/x")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("does not exist") && text.contains(&rootfs.join("tmp").display().to_string()),
        "{text}"
    );
    assert!(!rootfs.join("tmp").exists());
    // A file where a directory should be is refused too.
    std::fs::write(rootfs.join("tmp"), b"").unwrap();
    let err = f.iso.prepare(&cid("c1"), &cfg("c1", "/tmp/x")).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    // `..` is a grammar error naming the variable, with or without an image.
    for path in ["/tmp/../etc", "/tmp/x/../../etc", "../x", "/srv/.."] {
        let err = f.iso.prepare(&cid("c1"), &cfg("c1", path)).unwrap_err();
        assert!(
            matches!(err, IsolatorError::Grammar { .. }),
            "{path}: {err}"
        );
        assert!(
            err.to_string().contains("DVDI_VOLUME_CONTAINERPATH"),
            "{err}"
        );
    }
    assert!(f.host.calls().is_empty());
    assert!(f.driver.calls().is_empty());
}

#[test]
fn plan_target_maps_paths_and_rechecks_dotdot() {
    use super::plan::plan_target;
    use crate::grammar::ContainerPath;
    use crate::lifecycle::PathRule::{ContainerInfo, Env};
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = tmp.path();
    let t = plan_target(&ContainerPath::new("a/b").unwrap(), sandbox, None, Env).unwrap();
    assert_eq!(
        (t.base.as_path(), t.rel.as_path(), t.create),
        (sandbox, Path::new("a/b"), true)
    );
    let t = plan_target(&ContainerPath::new("/tmp/x/y").unwrap(), sandbox, None, Env).unwrap();
    assert_eq!(
        (t.base.as_path(), t.rel.as_path(), t.create),
        (Path::new("/tmp"), Path::new("x/y"), true)
    );
    // An image's /tmp is one more component walked from its rootfs, which must exist.
    std::fs::create_dir_all(sandbox.join("rootfs/tmp")).unwrap();
    let rootfs = sandbox.join("rootfs");
    let t = plan_target(
        &ContainerPath::new("/tmp/x/y").unwrap(),
        sandbox,
        Some(&rootfs),
        Env,
    )
    .unwrap();
    assert_eq!(
        (t.base.as_path(), t.rel.as_path(), t.create, t.must_exist),
        (rootfs.as_path(), Path::new("tmp/x/y"), true, 1)
    );
    let t = plan_target(&ContainerPath::new("/usr").unwrap(), sandbox, None, Env).unwrap();
    assert_eq!(
        (t.base.as_path(), t.rel.as_path(), t.create),
        (Path::new("/"), Path::new("usr"), false)
    );
    // A DOCKER_VOLUME's absolute path (Mesos' rule): inside an image, anything is created
    // (no `tmp` that must exist); without one the host's path must exist, `/tmp/` included.
    let t = plan_target(
        &ContainerPath::new("/data/x").unwrap(),
        sandbox,
        Some(&rootfs),
        ContainerInfo,
    )
    .unwrap();
    assert_eq!(
        (t.base.as_path(), t.rel.as_path(), t.create, t.must_exist),
        (rootfs.as_path(), Path::new("data/x"), true, 0)
    );
    let missing = sandbox.join("no-such-dir");
    let err = plan_target(
        &ContainerPath::new(missing.to_str().unwrap()).unwrap(),
        sandbox,
        None,
        ContainerInfo,
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            PathError::Missing {
                rule: ContainerInfo,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("must exist on the host"), "{err}");
    let t = plan_target(
        &ContainerPath::new("/tmp").unwrap(),
        sandbox,
        None,
        ContainerInfo,
    )
    .unwrap();
    assert_eq!(
        (t.base.as_path(), t.rel.as_path(), t.create),
        (Path::new("/"), Path::new("tmp"), false)
    );
    let t = plan_target(
        &ContainerPath::new("a/b").unwrap(),
        sandbox,
        None,
        ContainerInfo,
    )
    .unwrap();
    assert_eq!(
        (t.base.as_path(), t.rel.as_path(), t.create),
        (sandbox, Path::new("a/b"), true)
    );
    // `..` cannot even be built as a ContainerPath; a deserialised one is refused too.
    assert!(serde_json::from_str::<ContainerPath>("\"a/../b\"").is_err());
    assert!(matches!(
        plan_target(
            &ContainerPath::new("x").unwrap(),
            Path::new("rel"),
            None,
            Env
        ),
        Err(PathError::SandboxNotAbsolute { .. })
    ));
}

#[test]
fn a_target_swapped_for_a_symlink_after_planning_is_refused() {
    let f = Fixture::new();
    let sandbox = f.sandbox("c1");
    let outside = tempfile::tempdir().unwrap();
    // The walk refuses symlinks below the base; a base that itself resolves elsewhere is
    // trusted, but a target swapped for a symlink after planning is caught by realpath.
    let target = super::plan::Target {
        container_path: "data".into(),
        base: sandbox.clone(),
        rel: PathBuf::from("data"),
        create: true,
        must_exist: 0,
        rule: crate::lifecycle::PathRule::Env,
        existed: None,
    };
    std::os::unix::fs::symlink(outside.path(), sandbox.join("data")).unwrap();
    let err = target.make(f.host.as_ref()).unwrap_err();
    assert!(matches!(err, PathError::Walk { .. }), "{err}");
    // The last line of defence, on its own: the path no longer resolves to the directory the
    // walk reached (here one made for the purpose), and its realpath is outside the base.
    std::fs::create_dir(sandbox.join("walked")).unwrap();
    let reached = crate::sys::DirId::resolve(&sandbox.join("walked")).unwrap();
    let err = target.check_resolves_inside(reached).unwrap_err();
    assert!(matches!(err, PathError::Escapes { .. }), "{err}");
    assert!(err.to_string().contains("outside"), "{err}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

/// A target the plan found already there is not walked again when made, only checked to
/// still resolve to the directory the plan reached: swapped for a symlink (to outside, or to
/// another directory inside) in between, it is refused, and nothing is made anywhere.
#[test]
fn a_target_that_existed_at_planning_and_was_swapped_is_refused() {
    use super::plan::plan_target;
    let f = Fixture::new();
    let sandbox = f.sandbox("c1");
    let outside = tempfile::tempdir().unwrap();
    for swap_to in [outside.path().to_path_buf(), sandbox.join("other")] {
        std::fs::create_dir_all(sandbox.join("data")).unwrap();
        std::fs::create_dir_all(sandbox.join("other")).unwrap();
        let path = crate::grammar::ContainerPath::new("data").unwrap();
        let target = plan_target(&path, &sandbox, None, crate::lifecycle::PathRule::Env).unwrap();
        assert!(target.existed.is_some(), "the plan's walk reached it");
        // Untouched, it is made without another walk.
        target.make(f.host.as_ref()).unwrap();
        std::fs::remove_dir(sandbox.join("data")).unwrap();
        std::os::unix::fs::symlink(&swap_to, sandbox.join("data")).unwrap();
        let err = target.make(f.host.as_ref()).unwrap_err();
        assert!(matches!(err, PathError::Escapes { .. }), "{err}");
        std::fs::remove_file(sandbox.join("data")).unwrap();
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}
