//! Least privilege and policy: what a task's environment can never choose (binaries, sockets,
//! directories outside the configured roots, host devices through `local`), the allowed-driver
//! list, and records nobody but us may have written.

use std::os::unix::fs::PermissionsExt;

use super::*;

#[test]
fn a_disallowed_driver_is_refused_naming_volume_driver_and_list_before_anything_happens() {
    let f = Fixture::with(|c| {
        c.allowed_drivers = Some(BTreeSet::from([
            DriverName::new("rexray").unwrap(),
            DriverName::new("local").unwrap(),
        ]));
        c.settings.client.plugin_dirs = vec![PathBuf::from("/nonexistent-dvdi-test")];
    });
    let err = f
        .prepare(
            "c1",
            &[
                ("DVDI_VOLUME_NAME", "other"),
                ("DVDI_VOLUME_DRIVER", "fake"),
                ("DVDI_VOLUME_CONTAINERPATH", "made"),
                ("DVDI_VOLUME_NAME1", "data"),
                ("DVDI_VOLUME_DRIVER1", "rexray"),
            ],
        )
        .unwrap_err();
    assert!(
        matches!(err, IsolatorError::DriverNotAllowed { .. }),
        "{err}"
    );
    let text = err.to_string();
    for needle in ["c1", "\"other\"", "driver fake", "allowed: local, rexray"] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
    // Nothing written, nothing mounted, no target made, no driver asked anything.
    assert!(f.driver.calls().is_empty());
    assert!(f.container_files().is_empty());
    assert!(f.volume_files().is_empty());
    assert!(f.host.calls().is_empty(), "{:?}", f.host.calls());
    assert!(!f.sandbox("c1").join("made").exists());
}

const DEVICE_OPTS: [&str; 5] = [
    "type=none,o=bind,device=/etc",
    "device=/dev/sda",
    "type=tmpfs,device=tmpfs,o=size=1m",
    "type=ext4",
    "o=bind",
];

/// A fixture whose `local` driver is the in-memory fake, so that nothing here can touch a
/// real local root even if a refusal were missing.
fn with_fake_local(allow: bool) -> (Fixture, Arc<FakeDriver>, Isolator) {
    let f = Fixture::with(|c| c.local_device_options = allow);
    let local = Arc::new(FakeDriver::new("local"));
    let resolver = DriverResolver::with_host(Settings::default(), f.host.clone())
        .with_driver(f.driver.clone())
        .with_driver(local.clone());
    let iso = Isolator::new(f.iso.config().clone(), resolver, f.host.clone()).unwrap();
    (f, local, iso)
}

#[test]
fn local_device_options_from_a_task_are_refused_naming_the_variable_and_the_volume() {
    let (f, local, iso) = with_fake_local(false);
    for opts in DEVICE_OPTS {
        let env = [
            ("DVDI_VOLUME_NAME", "fine"),
            ("DVDI_VOLUME_DRIVER", "local"),
            ("DVDI_VOLUME_NAME3", "etc"),
            ("DVDI_VOLUME_DRIVER3", "local"),
            ("DVDI_VOLUME_OPTS3", opts),
        ];
        let err = iso.prepare(&cid("c1"), &f.config("c1", &env)).unwrap_err();
        assert!(
            matches!(err, IsolatorError::LocalDeviceOptions { .. }),
            "{opts}: {err}"
        );
        let text = err.to_string();
        for needle in ["DVDI_VOLUME_OPTS3", "\"etc\"", "local_device_options"] {
            assert!(text.contains(needle), "{needle:?} missing from: {text}");
        }
        // Refused while planning: the other volume was not mounted either.
        assert!(local.calls().is_empty());
        assert!(f.container_files().is_empty());
        assert!(f.host.calls().is_empty());
    }
    // Options that keep the volume inside the local root are fine, and so are device options
    // for another driver (a plugin judges its own).
    let env = [
        ("DVDI_VOLUME_NAME", "sized"),
        ("DVDI_VOLUME_DRIVER", "local"),
        ("DVDI_VOLUME_OPTS", "size=1M"),
        ("DVDI_VOLUME_NAME1", "nfs"),
        (
            "DVDI_VOLUME_OPTS1",
            "type=nfs,o=addr=10.0.0.1,device=:/export",
        ),
    ];
    iso.prepare(&cid("c2"), &f.config("c2", &env)).unwrap();
    assert_eq!(local.calls_of("Create sized").len(), 1);
    assert_eq!(f.driver.calls_of("Create nfs").len(), 1);
}

#[test]
fn an_operator_can_allow_local_device_options() {
    let (f, local, iso) = with_fake_local(true);
    let env = [
        ("DVDI_VOLUME_NAME", "t"),
        ("DVDI_VOLUME_DRIVER", "local"),
        ("DVDI_VOLUME_OPTS", DEVICE_OPTS[2]),
    ];
    iso.prepare(&cid("c1"), &f.config("c1", &env)).unwrap();
    assert_eq!(local.calls_of("Create t").len(), 1);
    assert_eq!(local.calls_of("Mount t").len(), 1);
}

#[test]
fn driver_names_with_a_slash_or_dotdot_never_reach_the_file_system() {
    let f = Fixture::new();
    for driver in ["../evil", "a/b", "/etc/evil", "..", "evil/../../x"] {
        let err = f
            .prepare(
                "c1",
                &[("DVDI_VOLUME_NAME", "v"), ("DVDI_VOLUME_DRIVER", driver)],
            )
            .unwrap_err();
        assert!(
            matches!(err, IsolatorError::Grammar { .. }),
            "{driver}: {err}"
        );
        assert!(err.to_string().contains("DVDI_VOLUME_DRIVER"), "{err}");
        assert!(f.driver.calls().is_empty());
        assert!(f.container_files().is_empty());
    }
    assert_eq!(files(&f.checkpoint().join("volumes")), Vec::<String>::new());
}

#[test]
fn dvdi_volume_dvdcli_is_ignored_with_a_warning_and_never_run() {
    let f = Fixture::new();
    let marker = f.tmp.path().join("ran");
    let evil = f.tmp.path().join("evil-dvdcli");
    std::fs::write(
        &evil,
        format!("#!/bin/sh\ntouch {}\necho /\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    let evil = evil.to_str().unwrap();
    let info = f
        .prepare(
            "c1",
            &[
                ("DVDI_VOLUME_NAME", "data"),
                ("DVDI_VOLUME_CONTAINERPATH", "data"),
                ("DVDI_VOLUME_DVDCLI", evil),
                ("DVDI_VOLUME_DVDCLI1", evil),
            ],
        )
        .unwrap()
        .unwrap();
    assert_eq!(info.mounts.len(), 1);
    assert!(
        f.logged("DVDI_VOLUME_DVDCLI"),
        "{:?}",
        f.logs.lock().unwrap()
    );
    // The volume went through the configured driver; the task's binary never ran.
    assert_eq!(f.driver.calls_of("Mount data").len(), 1);
    assert!(!marker.exists());
    f.iso.cleanup(&cid("c1")).unwrap();
    assert!(!marker.exists());
}

// ---- records only we may have written ----

fn loosen(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn prepare_refuses_to_trust_a_record_others_could_write() {
    let f = Fixture::new();
    f.prepare("c1", ONE).unwrap();
    let record = f.checkpoint().join("volumes/fake/data.json");
    loosen(&record, 0o666);
    let err = f.prepare("c2", ONE).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not trusted"), "{text}");
    assert!(text.contains("volumes/fake/data.json"), "{text}");
    assert!(
        text.contains("writable by group or others (mode 0666)"),
        "{text}"
    );
    // Nothing was mounted for c2 on the strength of that record.
    assert_eq!(f.driver.calls_of("Mount").len(), 1);
}

#[test]
fn recover_treats_an_untrusted_record_like_a_corrupt_one() {
    // A known container: its record is moved aside, never read, and its mounts kept for it.
    let (f, _) = prepared();
    loosen(&f.checkpoint().join("containers/c1.json"), 0o620);
    let iso = f.restart();
    let report = iso.recover(&[cid("c1")], &[]).unwrap();
    assert_eq!(report.corrupt_records, 1, "{report:?}");
    assert_eq!(report.kept_containers, 1);
    assert!(f.driver.calls_of("Unmount").is_empty());
    assert_eq!(f.container_files(), vec!["c1.json.corrupt"]);
    assert!(
        report
            .messages
            .iter()
            .any(|m| m.contains("c1.json") && m.contains("not trusted")),
        "{:?}",
        report.messages
    );
    iso.cleanup(&cid("c1")).unwrap();
    assert!(f.driver.mounted_ids("data").is_empty());
    assert!(f.volume_files().is_empty());

    // An unknown container: released, not trusted either way.
    let (f, _) = prepared();
    loosen(&f.checkpoint().join("containers/c1.json"), 0o646);
    let report = f.restart().recover(&[], &[]).unwrap();
    assert_eq!(report.corrupt_records, 1);
    assert_eq!(report.unmounted_volumes, 2);
    assert!(f.volume_files().is_empty());
}

#[test]
fn recover_treats_an_untrusted_volume_record_like_a_corrupt_one() {
    let (f, id) = prepared();
    // Someone else's record could name any mount id; the container's own copy is used.
    let path = f.checkpoint().join("volumes/fake/data.json");
    let forged = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&id, "forged-id");
    std::fs::write(&path, forged).unwrap();
    loosen(&path, 0o666);
    let report = f.restart().recover(&[], &[]).unwrap();
    assert_eq!(report.corrupt_records, 1, "{report:?}");
    assert!(f
        .driver
        .calls_of("Unmount data")
        .contains(&format!("Unmount data {id}")));
    assert!(f.driver.calls_of("Unmount data forged-id").is_empty());
    assert!(f.driver.mounted_ids("data").is_empty());
}

// ---- protected host directories (issue 10, finding 8b) ----

fn one_path(slot: &str, path: &str) -> Vec<(String, String)> {
    vec![
        (format!("DVDI_VOLUME_NAME{slot}"), "data".to_owned()),
        (format!("DVDI_VOLUME_CONTAINERPATH{slot}"), path.to_owned()),
    ]
}

fn prepare_env(
    f: &Fixture,
    id: &str,
    env: &[(String, String)],
) -> Result<Option<LaunchInfo>, IsolatorError> {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    f.prepare(id, &env)
}

#[test]
fn every_default_protected_dir_and_what_is_below_it_is_refused_without_an_image() {
    let f = Fixture::new();
    for (n, dir) in crate::protected::DEFAULT_PROTECTED_HOST_DIRS
        .iter()
        .enumerate()
    {
        for path in [
            dir.to_string(),
            format!("{dir}/x"),
            format!("{dir}/local/x/"),
        ] {
            for slot in ["", "7"] {
                let err = prepare_env(&f, &format!("c{n}"), &one_path(slot, &path)).unwrap_err();
                assert!(
                    matches!(&err, IsolatorError::ContainerPath { cause, .. }
                        if matches!(**cause, PathError::ProtectedHostDir { .. })),
                    "{path}: {err}"
                );
                let text = err.to_string();
                let variable = format!("DVDI_VOLUME_CONTAINERPATH{slot}=");
                for needle in [
                    variable.as_str(),
                    dir,
                    "protected_host_dirs",
                    "without an image",
                ] {
                    assert!(text.contains(needle), "{needle:?} missing from: {text}");
                }
                assert!(
                    text.contains(&format!("{:?}", path.trim_end_matches('/'))),
                    "{text}"
                );
            }
        }
    }
    // Refused while validating: nothing written, mounted, created or asked of a driver.
    assert!(f.driver.calls().is_empty());
    assert!(f.host.calls().is_empty());
    assert!(f.container_files().is_empty());
    assert!(f.volume_files().is_empty());
}

#[test]
fn a_refusal_in_a_later_slot_stops_the_whole_prepare_before_anything_happens() {
    let f = Fixture::new();
    let env = [
        ("DVDI_VOLUME_NAME", "config"),
        ("DVDI_VOLUME_CONTAINERPATH", "/tmp/dvdi-test-config"),
        ("DVDI_VOLUME_NAME1", "data"),
        ("DVDI_VOLUME_CONTAINERPATH1", "data"),
        ("DVDI_VOLUME_NAME12", "sneaky"),
        ("DVDI_VOLUME_CONTAINERPATH12", "/usr/local/x"),
    ];
    let err = f.prepare("c1", &env).unwrap_err();
    let text = err.to_string();
    for needle in [
        "DVDI_VOLUME_CONTAINERPATH12=\"/usr/local/x\"",
        "/usr",
        "\"sneaky\"",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
    assert!(f.driver.calls().is_empty());
    assert!(f.host.calls().is_empty());
    assert!(!f.sandbox("c1").join("data").exists());
    assert!(!Path::new("/tmp/dvdi-test-config").exists());
}

/// The Elasticsearch framework's shapes (fixtures/mesos-1.12): `/tmp/config` and `/data`
/// absolute without an image, and a sandbox-relative `data`.
#[test]
fn the_elasticsearch_shapes_pass_the_protected_dirs_rule() {
    let f = Fixture::new();
    // The fake host makes directories for real: /tmp/config is made on this host, and
    // removed afterwards unless it was there before.
    let had_tmp_config = Path::new("/tmp/config").exists();
    let env = [
        ("DVDI_VOLUME_NAME", "esconfig"),
        ("DVDI_VOLUME_CONTAINERPATH", "/tmp/config"),
        ("DVDI_VOLUME_NAME1", "esdata"),
        ("DVDI_VOLUME_CONTAINERPATH1", "/data"),
        ("DVDI_VOLUME_NAME2", "essandbox"),
        ("DVDI_VOLUME_CONTAINERPATH2", "data"),
    ];
    // `/data` is the host's own (no image): it must exist. Where the host has none, the only
    // refusal is that, never the protected-dirs rule.
    match f.prepare("es", &env) {
        Ok(info) => {
            let info = info.unwrap();
            let targets: Vec<_> = info.mounts.iter().map(|m| m.target.clone()).collect();
            assert!(
                targets.contains(&PathBuf::from("/tmp/config")),
                "{targets:?}"
            );
            assert!(targets.contains(&PathBuf::from("/data")), "{targets:?}");
            assert!(
                targets.contains(&f.sandbox("es").join("data")),
                "{targets:?}"
            );
            f.iso.cleanup(&cid("es")).unwrap();
        }
        Err(err) => {
            assert!(
                matches!(&err, IsolatorError::ContainerPath { cause, .. }
                    if matches!(&**cause, PathError::Missing { path, .. } if path == "/data")),
                "{err}"
            );
            assert!(!Path::new("/data").exists());
        }
    }
    // Without `/data`, the other two go all the way.
    let info = f
        .prepare("es2", &[env[0], env[1], env[4], env[5]])
        .unwrap()
        .unwrap();
    assert_eq!(info.mounts.len(), 2);
    f.iso.cleanup(&cid("es2")).unwrap();
    if !had_tmp_config {
        let _ = std::fs::remove_dir("/tmp/config");
    }
    // And the rule itself says yes to all three.
    let rule = crate::protected::ProtectedDirs::default();
    for path in ["/tmp/config", "/data"] {
        assert_eq!(rule.covering(Path::new(path)), None, "{path}");
    }
}

#[test]
fn with_an_image_absolute_paths_are_inside_its_rootfs_and_not_protected() {
    let f = Fixture::new();
    let rootfs = f.tmp.path().join("rootfs");
    for dir in ["etc", "usr/local/x", "var/lib/es"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    for (n, path) in ["/etc", "/usr/local/x", "/var/lib/es"].iter().enumerate() {
        let id = format!("img{n}");
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
        let info = f.iso.prepare(&cid(&id), &cfg).unwrap().unwrap();
        assert_eq!(info.mounts[0].target, rootfs.join(&path[1..]));
        f.iso.cleanup(&cid(&id)).unwrap();
    }
}

#[test]
fn an_operator_widens_and_narrows_the_protected_dirs() {
    use crate::protected::ProtectedDirs;
    let guarded = tempfile::tempdir().unwrap();
    std::fs::create_dir(guarded.path().join("x")).unwrap();
    let guarded_x = guarded.path().join("x");
    let guarded_x = guarded_x.to_str().unwrap();

    // Widened: the default and one more directory.
    let widened = format!("default:{}", guarded.path().display());
    let f = Fixture::with(|c| c.protected_host_dirs = ProtectedDirs::parse(&widened).unwrap());
    let err = prepare_env(&f, "c1", &one_path("", guarded_x)).unwrap_err();
    assert!(err.to_string().contains("protected_host_dirs"), "{err}");
    assert!(prepare_env(&f, "c2", &one_path("", "/etc")).is_err());

    // Narrowed to /etc: /usr is the operator's to allow.
    let f = Fixture::with(|c| c.protected_host_dirs = ProtectedDirs::parse("/etc").unwrap());
    assert!(prepare_env(&f, "c1", &one_path("", "/etc/x")).is_err());
    let info = prepare_env(&f, "c2", &one_path("", "/usr"))
        .unwrap()
        .unwrap();
    assert_eq!(info.mounts[0].target, PathBuf::from("/usr"));
    prepare_env(&f, "c3", &one_path("", guarded_x)).unwrap();

    // none: nothing protected.
    let f = Fixture::with(|c| c.protected_host_dirs = ProtectedDirs::none());
    prepare_env(&f, "c1", &one_path("", "/etc")).unwrap();
}
