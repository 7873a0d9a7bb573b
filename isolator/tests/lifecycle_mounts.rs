//! The isolator with real mounts (root): the `local` driver's loop-backed ext4 volumes, launch
//! info carried out in a second process's private mount namespace, sharing, read-only,
//! rollback, failed unmounts, and hostile container paths.

mod common;

use std::path::Path;

use common::{cid, require_root, run_child, Drivers, Outcome, Step, World};
use dvdi::{IsolatorError, LaunchInfo};

#[test]
fn child_entry() {
    common::child_entry();
}

const BLOCK: &str = "size=64M";

/// Launch in a child, then run `steps` there.
fn in_container(world: &World, info: &LaunchInfo, steps: Vec<Step>) -> Vec<Outcome> {
    let mut all = vec![Step::Launch(info.clone())];
    all.extend(steps);
    let got = run_child(&world.child_task(Drivers::default(), all));
    got[0].ok();
    got[1..].to_vec()
}

#[test]
fn elasticsearch_node_lifecycle_keeps_its_data_across_containers() {
    if !require_root("elasticsearch_node_lifecycle_keeps_its_data_across_containers") {
        return;
    }
    let mut world = World::new();
    let config_dir = world.unique_tmp().join("config");
    let env = [
        ("DVDI_VOLUME_DRIVER", "local"),
        ("DVDI_VOLUME_NAME", "es-1-config"),
        ("DVDI_VOLUME_OPTS", BLOCK),
        ("DVDI_VOLUME_CONTAINERPATH", config_dir.to_str().unwrap()),
        ("DVDI_VOLUME_DRIVER1", "local"),
        ("DVDI_VOLUME_NAME1", "es-1-data"),
        ("DVDI_VOLUME_OPTS1", BLOCK),
        ("DVDI_VOLUME_CONTAINERPATH1", "data"),
    ];
    let iso = world.isolator();

    // First container: prepare, write through both container paths, clean up.
    let cfg = world.config("es-run-1", &env);
    let info = iso.prepare(&cid("es-run-1"), &cfg).unwrap().unwrap();
    assert!(info.clone_newns);
    assert_eq!(info.mounts.len(), 2);
    assert_eq!(world.volume_mounts().len(), 2);
    world.assert_ledger_matches_mounts();
    let yml = config_dir.join("elasticsearch.yml");
    let got = in_container(
        &world,
        &info,
        vec![
            Step::Write {
                path: yml.clone(),
                content: "cluster.name: dvdi\n".into(),
            },
            Step::Write {
                path: cfg.sandbox.join("data/index"),
                content: "doc-1".into(),
            },
        ],
    );
    got[0].ok();
    got[1].ok();
    // The writes went into the volumes (seen through the host's mount points) …
    let view = iso.inspect().unwrap();
    let mountpoint = |name: &str| {
        view.volumes
            .iter()
            .find(|v| v.name.as_str() == name)
            .and_then(|v| v.mountpoint.clone())
            .unwrap()
    };
    assert_eq!(
        std::fs::read_to_string(mountpoint("es-1-data").join("index")).unwrap(),
        "doc-1"
    );
    assert!(mountpoint("es-1-config").join("elasticsearch.yml").exists());
    // … and the binds lived only in the child's namespace: the host's directories are empty.
    assert!(!yml.exists());
    assert!(!cfg.sandbox.join("data/index").exists());
    iso.cleanup(&cid("es-run-1")).unwrap();
    assert!(world.volume_mounts().is_empty());
    assert!(
        world.loops_settled().is_empty(),
        "the last unmount detaches the loop device"
    );
    world.assert_ledger_matches_mounts();

    // The node restarts in a new container (new sandbox): its data is there.
    let cfg = world.config("es-run-2", &env);
    let info = iso.prepare(&cid("es-run-2"), &cfg).unwrap().unwrap();
    let got = in_container(
        &world,
        &info,
        vec![
            Step::Read { path: yml },
            Step::Read {
                path: cfg.sandbox.join("data/index"),
            },
        ],
    );
    assert_eq!(got[0].ok(), "cluster.name: dvdi\n");
    assert_eq!(got[1].ok(), "doc-1");
    iso.cleanup(&cid("es-run-2")).unwrap();
    assert!(world.volume_mounts().is_empty());
    assert!(world.loops_settled().is_empty());
}

#[test]
fn two_containers_share_a_volume_mounted_once() {
    if !require_root("two_containers_share_a_volume_mounted_once") {
        return;
    }
    let world = World::new();
    let iso = world.isolator();
    let env = [
        ("DVDI_VOLUME_DRIVER", "local"),
        ("DVDI_VOLUME_NAME", "shared"),
        ("DVDI_VOLUME_OPTS", BLOCK),
        ("DVDI_VOLUME_CONTAINERPATH", "shared"),
    ];
    let a = iso
        .prepare(&cid("a"), &world.config("a", &env))
        .unwrap()
        .unwrap();
    let b = iso
        .prepare(&cid("b"), &world.config("b", &env))
        .unwrap()
        .unwrap();
    assert_eq!(world.volume_mounts().len(), 1);
    assert_eq!(world.loops().len(), 1);
    world.assert_ledger_matches_mounts();
    assert_eq!(
        world.driver_mount_ids("shared"),
        vec![world.ledger_mount_id("local", "shared").unwrap()],
        "one Mount for two containers"
    );
    // What one writes, the other reads.
    let got = in_container(
        &world,
        &a,
        vec![Step::Write {
            path: world.sandbox("a").join("shared/note"),
            content: "from a".into(),
        }],
    );
    got[0].ok();
    let got = in_container(
        &world,
        &b,
        vec![Step::Read {
            path: world.sandbox("b").join("shared/note"),
        }],
    );
    assert_eq!(got[0].ok(), "from a");

    iso.cleanup(&cid("a")).unwrap();
    assert_eq!(world.volume_mounts().len(), 1, "still held by b");
    world.assert_ledger_matches_mounts();
    iso.cleanup(&cid("b")).unwrap();
    assert!(world.volume_mounts().is_empty());
    assert!(world.loops_settled().is_empty());
    assert!(
        world.driver_mount_ids("shared").is_empty(),
        "its Unmount used the same id"
    );
}

#[test]
fn a_read_only_container_cannot_write() {
    if !require_root("a_read_only_container_cannot_write") {
        return;
    }
    let world = World::new();
    let iso = world.isolator();
    let env = [
        ("DVDI_VOLUME_DRIVER", "local"),
        ("DVDI_VOLUME_NAME", "ro"),
        ("DVDI_VOLUME_OPTS", BLOCK),
        ("DVDI_VOLUME_CONTAINERPATH", "ro"),
        ("DVDI_VOLUME_READONLY", "true"),
    ];
    let info = iso
        .prepare(&cid("r"), &world.config("r", &env))
        .unwrap()
        .unwrap();
    assert_eq!(info.mounts.len(), 2, "a bind, then its read-only remount");
    // Something to read, written through the host's (writable) mount of the volume.
    let mountpoint = world.volume_mounts()[0].clone();
    std::fs::write(mountpoint.join("host-file"), "from the host").unwrap();
    let got = in_container(
        &world,
        &info,
        vec![
            Step::Read {
                path: world.sandbox("r").join("ro/host-file"),
            },
            Step::Write {
                path: world.sandbox("r").join("ro/file"),
                content: "x".into(),
            },
        ],
    );
    assert_eq!(got[0].ok(), "from the host");
    let Outcome::Err { errno, .. } = &got[1] else {
        panic!("the write succeeded on a read-only volume")
    };
    assert_eq!(*errno, Some(libc::EROFS));
    assert!(!mountpoint.join("file").exists());
    iso.cleanup(&cid("r")).unwrap();
    assert!(world.volume_mounts().is_empty());
}

#[test]
fn a_prepare_failing_on_its_second_volume_leaves_nothing_mounted() {
    if !require_root("a_prepare_failing_on_its_second_volume_leaves_nothing_mounted") {
        return;
    }
    let world = World::new();
    let iso = world.isolator();
    let err = iso
        .prepare(
            &cid("p"),
            &world.config(
                "p",
                &[
                    ("DVDI_VOLUME_DRIVER", "local"),
                    ("DVDI_VOLUME_NAME", "good"),
                    ("DVDI_VOLUME_OPTS", BLOCK),
                    ("DVDI_VOLUME_CONTAINERPATH", "good"),
                    ("DVDI_VOLUME_DRIVER1", "local"),
                    ("DVDI_VOLUME_NAME1", "bad"),
                    ("DVDI_VOLUME_OPTS1", "size=lots"),
                ],
            ),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("\"bad\"") && text.contains("local"), "{text}");
    assert!(
        world.volume_mounts().is_empty(),
        "{:?}",
        world.volume_mounts()
    );
    assert!(world.loops_settled().is_empty());
    let ledger = dvdi::ledger::Ledger::open(world.checkpoint()).unwrap();
    assert!(ledger.list_containers().unwrap().is_empty());
    assert!(ledger.list_volumes().unwrap().is_empty());
}

#[test]
fn a_driver_failing_unmount_does_not_pin_the_volume() {
    if !require_root("a_driver_failing_unmount_does_not_pin_the_volume") {
        return;
    }
    let world = World::new();
    let iso = world.isolator_with(&Drivers {
        flaky_unmounts: 1,
        ..Drivers::default()
    });
    let env = [
        ("DVDI_VOLUME_DRIVER", "flaky"),
        ("DVDI_VOLUME_NAME", "sticky"),
        ("DVDI_VOLUME_OPTS", BLOCK),
    ];
    iso.prepare(&cid("f1"), &world.config("f1", &env)).unwrap();
    let err = iso.cleanup(&cid("f1")).unwrap_err();
    assert!(matches!(err, IsolatorError::Cleanup { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("\"sticky\"") && text.contains("flaky"),
        "{text}"
    );
    // Still mounted (the driver refused), but held by nobody and remembered for retry.
    assert_eq!(world.volume_mounts().len(), 1);
    let view = iso.inspect().unwrap();
    assert!(view.containers.is_empty());
    assert!(view.volumes[0].holders.is_empty());
    assert_eq!(view.volumes[0].failed_unmounts.len(), 1);

    // The next container retries the old unmount, mounts anew, and its cleanup unmounts.
    iso.prepare(&cid("f2"), &world.config("f2", &env)).unwrap();
    assert_eq!(world.volume_mounts().len(), 1);
    assert_eq!(
        world.driver_mount_ids("sticky"),
        vec![world.ledger_mount_id("flaky", "sticky").unwrap()],
        "the old mount id was released by the retry"
    );
    world.assert_ledger_matches_mounts();
    iso.cleanup(&cid("f2")).unwrap();
    assert!(world.volume_mounts().is_empty());
    assert!(world.loops_settled().is_empty());
}

#[test]
fn hostile_container_paths_create_and_mount_nothing_outside() {
    if !require_root("hostile_container_paths_create_and_mount_nothing_outside") {
        return;
    }
    let world = World::new();
    let iso = world.isolator();
    let outside = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &Path, &str); 3] = [
        ("s1", "data", outside.path(), "data"),
        ("s2", "data/deeper", outside.path(), "data"),
        ("s3", "conf/dvdi-it-planted", Path::new("/etc"), "conf"),
    ];
    for (id, path, points_to, link) in cases {
        let cfg = world.config(
            id,
            &[
                ("DVDI_VOLUME_DRIVER", "local"),
                ("DVDI_VOLUME_NAME", "victim"),
                ("DVDI_VOLUME_CONTAINERPATH", path),
            ],
        );
        std::os::unix::fs::symlink(points_to, cfg.sandbox.join(link)).unwrap();
        let err = iso.prepare(&cid(id), &cfg).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("symbolic link"), "{text}");
        assert!(
            text.contains(&cfg.sandbox.join(link).display().to_string()),
            "{text}"
        );
    }
    // `..` never gets past the grammar.
    let err = iso
        .prepare(
            &cid("s4"),
            &world.config(
                "s4",
                &[
                    ("DVDI_VOLUME_DRIVER", "local"),
                    ("DVDI_VOLUME_NAME", "victim"),
                    ("DVDI_VOLUME_CONTAINERPATH", "../../../../etc/dvdi-it"),
                ],
            ),
        )
        .unwrap_err();
    assert!(err.to_string().contains("'..'"), "{err}");

    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(!Path::new("/etc/dvdi-it-planted").exists());
    assert!(!Path::new("/etc/dvdi-it").exists());
    assert!(world.volume_mounts().is_empty());
    // Refused during planning: the driver never even created the volume.
    assert!(!world.local_root().join("victim").exists());
}

#[test]
fn a_read_only_volume_without_container_path_is_read_only_for_the_task_only() {
    if !require_root("a_read_only_volume_without_container_path_is_read_only_for_the_task_only") {
        return;
    }
    let world = World::new();
    let iso = world.isolator();
    let env = [
        ("DVDI_VOLUME_DRIVER", "local"),
        ("DVDI_VOLUME_NAME", "ro-nopath"),
        ("DVDI_VOLUME_OPTS", BLOCK),
        ("DVDI_VOLUME_READONLY", "true"),
    ];
    let info = iso
        .prepare(&cid("n"), &world.config("n", &env))
        .unwrap()
        .unwrap();
    let mountpoint = world.volume_mounts()[0].clone();
    // The task uses the host mount point itself.
    let got = in_container(
        &world,
        &info,
        vec![Step::Write {
            path: mountpoint.join("file"),
            content: "x".into(),
        }],
    );
    assert!(
        matches!(
            got[0],
            Outcome::Err {
                errno: Some(libc::EROFS),
                ..
            }
        ),
        "{got:?}"
    );
    // The host's mount stays writable, and no bind leaked out of the container.
    std::fs::write(mountpoint.join("host-file"), "ok").unwrap();
    assert_eq!(world.volume_mounts().len(), 1);
    iso.cleanup(&cid("n")).unwrap();
    assert!(world.volume_mounts().is_empty());
}

#[test]
fn two_processes_sharing_a_ledger_mount_a_volume_once() {
    if !require_root("two_processes_sharing_a_ledger_mount_a_volume_once") {
        return;
    }
    let world = World::new();
    let env = [
        ("DVDI_VOLUME_DRIVER", "local"),
        ("DVDI_VOLUME_NAME", "contended"),
        ("DVDI_VOLUME_OPTS", BLOCK),
    ];
    // Both start at once; only the volume's flock orders them.
    let children: Vec<_> = ["p1", "p2", "p3"]
        .iter()
        .map(|id| {
            let task = world.child_task(
                Drivers::default(),
                vec![Step::Prepare {
                    id: id.to_string(),
                    config: world.config(id, &env),
                }],
            );
            common::child_command(&task)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(r#"[{"Ok":{"clone_newns":true"#), "{stdout}");
    }
    assert_eq!(world.volume_mounts().len(), 1);
    world.assert_ledger_matches_mounts();
    // One driver Mount, with the id the ledger recorded.
    assert_eq!(
        world.driver_mount_ids("contended"),
        vec![world.ledger_mount_id("local", "contended").unwrap()]
    );
    let iso = world.isolator();
    assert_eq!(iso.inspect().unwrap().volumes[0].holders.len(), 3);
    for id in ["p1", "p2", "p3"] {
        iso.cleanup(&cid(id)).unwrap();
    }
    assert!(world.volume_mounts().is_empty());
    assert!(world.loops_settled().is_empty());
}

/// Issue 10, finding 2: a volume whose mount went away behind the ledger's back (here a lazy
/// unmount, as an operator freeing a stuck volume would do) is mounted anew by the next
/// prepare that would share it — the task's writes land on the volume, never on the bare
/// mount-point directory of the host's disk.
#[test]
fn a_mount_gone_behind_the_ledgers_back_is_mounted_anew_not_shared() {
    if !require_root("a_mount_gone_behind_the_ledgers_back_is_mounted_anew_not_shared") {
        return;
    }
    let world = World::new();
    let iso = world.isolator();
    let env = [
        ("DVDI_VOLUME_DRIVER", "local"),
        ("DVDI_VOLUME_NAME", "vanishing"),
        ("DVDI_VOLUME_OPTS", BLOCK),
        ("DVDI_VOLUME_CONTAINERPATH", "data"),
    ];
    iso.prepare(&cid("a"), &world.config("a", &env))
        .unwrap()
        .unwrap();
    let mounted = world.volume_mounts();
    assert_eq!(mounted.len(), 1);
    let first_id = world.ledger_mount_id("local", "vanishing").unwrap();
    nix::mount::umount2(&mounted[0], nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert!(world.volume_mounts().is_empty());

    let b = iso
        .prepare(&cid("b"), &world.config("b", &env))
        .unwrap()
        .unwrap();
    assert_eq!(
        world.volume_mounts(),
        mounted,
        "mounted again at the same place"
    );
    let second_id = world.ledger_mount_id("local", "vanishing").unwrap();
    assert_ne!(first_id, second_id, "a fresh Mount, recorded");
    assert_eq!(world.driver_mount_ids("vanishing"), vec![second_id]);
    world.assert_ledger_matches_mounts();
    let got = in_container(
        &world,
        &b,
        vec![Step::Write {
            path: world.sandbox("b").join("data/doc"),
            content: "on the volume".into(),
        }],
    );
    got[0].ok();
    // The write is on the volume's filesystem: gone from the directory once it is unmounted.
    assert_eq!(
        std::fs::read_to_string(mounted[0].join("doc")).unwrap(),
        "on the volume"
    );
    iso.cleanup(&cid("a")).unwrap();
    iso.cleanup(&cid("b")).unwrap();
    assert!(world.volume_mounts().is_empty());
    assert!(
        !mounted[0].join("doc").exists(),
        "the write landed on the host's disk"
    );
    assert!(world.loops_settled().is_empty());
}
